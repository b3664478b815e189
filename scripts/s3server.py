"""localbucket (the PyPI S3 server that keeps objects as files) with conditional writes that hold.

Same command line as `localbucket`: `python scripts/s3server.py [--host H] [--port P] DATA_ROOT`.

Why: tansu's s3:// storage keeps its metadata (producer ids and sequence numbers, transactions, watermarks,
consumer groups) in a few JSON objects and updates them optimistically: read the object and its ETag, write
with `If-Match: <that ETag>`, re-read on 412 Precondition Failed. localbucket 1.2.1 breaks that twice:
- PutObject honours `If-None-Match: *` only and ignores `If-Match`, so of two updates at once both succeed
  and the later one silently undoes the other;
- GetObject opens the file, then computes the ETag from the path, so a read racing with a replace can pair the
  old content with the new ETag, and the next update based on it passes `If-Match` with stale content.
Seen with two idempotent producers and no fault at all: a producer's id or sequence numbers vanish and tansu
answers UNKNOWN_PRODUCER_ID or OUT_OF_ORDER_SEQUENCE_NUMBER, fatal for the producer. Here a write with
`If-Match` or `If-None-Match` checks and replaces under one lock, and a read or write of a JSON object (all of tansu's metadata
objects are) takes the same lock, so exactly one of two concurrent updates wins and the other gets 412, as on
S3. Record batches (`.batch`: written once, read often) are read without the lock.
"""

from __future__ import annotations

import threading

import localbucket

_lock = threading.Lock()
_write_object = localbucket.S3Handler._write_object
_get = localbucket.S3Handler._get


def _write_object_conditionally(self, bucket: str, key: str, write) -> str:
    if_match = self.headers.get("If-Match")
    if if_match is None and self.headers.get("If-None-Match") is None and not key.endswith(".json"):
        return _write_object(self, bucket, key, write)
    target = self._object_path(bucket, key)
    with _lock:
        if if_match is not None and (
            not target.is_file() or not localbucket.etag_matches(if_match, localbucket.object_etag(target))
        ):
            raise self._precondition_failed_error()
        return _write_object(self, bucket, key, write)


def _get_consistently(self, bucket: str, key: str, include_body: bool):
    if not key.endswith(".json"):
        return _get(self, bucket, key, include_body)
    with _lock:
        return _get(self, bucket, key, include_body)


localbucket.S3Handler._write_object = _write_object_conditionally
localbucket.S3Handler._get = _get_consistently

if __name__ == "__main__":
    localbucket.main()
