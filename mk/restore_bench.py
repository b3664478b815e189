#!/usr/bin/env python3
"""Restart and restore benchmark (make bench-restore; target: serving within 5 s of a restart with 1M keys).

One fresh tansu; N distinct keys pre-produced as real framed Avro events (Chaser, schema id 1, and Bill, id 3:
one event per key, so every key becomes one changelog record); one ingestor consumes them all and is stopped
with SIGTERM. Then:

- warm restart: the same ingestor.stateDir; time from process start and from partition assignment (first
  health answer listing assigned partitions) to serving (health ready, and GETs of sample keys of every store
  answer from the store);
- cold restore: the state dir wiped; the same times plus the restore rate from the changelogs (records/s and
  MB/s of changelog key+value bytes).

Prints each phase's peak RSS (VmHWM), the store size on disk and `uptime` load. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "Integration"))
import socket_frames  # noqa: E402
from ingestor_bench import Broker, metrics, peak_rss_mb, rss_split_mb, write_config  # noqa: E402

CHASER_ID, BILL_ID = 1, 3


def zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(s: str) -> bytes:
    b = s.encode()
    return zigzag(len(b)) + b


def framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">i", schema_id) + payload


def chaser(key: str, i: int) -> bytes:
    # name, id, sent, ttl, previous (union branch 0 = null)
    return framed(CHASER_ID, avro_string("bench") + avro_string(key) + zigzag(1_700_000_000_000 + i)
                  + zigzag(100 + i % 4_900) + zigzag(0))


def bill(key: str, i: int) -> bytes:
    # billId, customerId, orderId, amountCents, currency, issuedAt, dueDate
    return framed(BILL_ID, avro_string(key) + avro_string(f"customer-{i % 100_000:06d}")
                  + avro_string(f"order-{i:07d}") + zigzag(100 + i % 100_000) + avro_string("EUR")
                  + zigzag(1_700_000_000_000 + i) + zigzag(1_700_086_400_000 + i))


def keys_of(n: int, bill_share: float) -> tuple[list[str], list[str]]:
    bills = int(n * bill_share)
    return [f"device-{i:07d}" for i in range(n - bills)], [f"bill-{i:07d}" for i in range(bills)]


def produce(bootstrap: str, chasers: list[str], bills: list[str]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 50,
                  "batch.num.messages": 10_000, "queue.buffering.max.messages": 500_000,
                  "enable.idempotence": True})
    for keys, encode in ((chasers, chaser), (bills, bill)):
        for i, key in enumerate(keys):
            while True:
                try:
                    p.produce("input", key=key.encode(), value=encode(key, i))
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 10_000 == 0:
                p.poll(0)
    if p.flush(120) != 0:
        raise RuntimeError("produce did not complete")


def changelog_bytes(bootstrap: str, topics: list[str]) -> tuple[int, int]:
    """(records, key+value bytes) of the changelog topics, read to their ends."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "restore-bench-size", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True, "session.timeout.ms": 6000})
    meta = c.list_topics(timeout=10)
    parts = [TopicPartition(t, p, 0) for t in topics for p in meta.topics[t].partitions]
    c.assign(parts)
    left = {(tp.topic, tp.partition) for tp in parts}
    records = size = 0
    deadline = time.monotonic() + 300
    while left and time.monotonic() < deadline:
        for m in c.consume(10_000, 1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    left.discard((m.topic(), m.partition()))
                continue
            records += 1
            size += len(m.key() or b"") + len(m.value() or b"")
    c.close()
    return records, size


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1]


def health(sock: str) -> tuple[bool, list[int], list[int]] | None:
    """(ready, assigned, restoring) from the socket's health answer; None while the socket is not up."""
    try:
        status, body = socket_frames.call(sock, socket_frames.HEALTH, timeout=1)
    except OSError:
        return None
    if status != 0:
        return None
    ready = body[1] == 1
    pos = 3

    def array() -> list[int]:
        nonlocal pos
        n = struct.unpack(">I", body[pos:pos + 4])[0]
        vals = list(struct.unpack(f">{n}i", body[pos + 4:pos + 4 + 4 * n]))
        pos += 4 + 4 * n
        return vals

    assigned = array()
    return ready, assigned, array()


def get_ok(sock: str, store: str, key: str) -> bool:
    try:
        status, _ = socket_frames.call(sock, socket_frames.GET, socket_frames.string(store)
                                       + socket_frames.string(key), timeout=1)
    except OSError:
        return False
    return status == 0


def dir_size_mb(path: Path) -> tuple[float, float]:
    """(apparent, allocated) MB of the files under path."""
    apparent = allocated = 0
    for f in path.rglob("*"):
        if f.is_file():
            st = f.stat()
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent / 1e6, allocated / 1e6


def copy_sparse(src: Path, dst: Path) -> None:
    """Copies a state dir keeping holes: LMDB files opened with MDB_WRITEMAP are sparse files as large as the map
    (4 GiB each) and a plain shutil copy would write every hole out as zeros."""
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dst)], check=True)


def page_cache_mb(path: Path) -> float:
    """MB of the store files resident in the page cache (fincore): charged to the container's memory cgroup
    whether or not the process maps them, and reclaimable once written back."""
    files = [str(f) for f in path.rglob("*.mdb")]
    if not files or not shutil.which("fincore"):
        return float("nan")
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", *files], capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split() if x.isdigit()) / 2**20


def restored_total(sock: str) -> float:
    try:
        m = metrics(sock)
    except OSError:
        return 0.0
    return sum(v for k, v in m.items() if k.startswith("restore_records_total"))


def serve_phase(name: str, binary: str, cfg: Path, workdir: Path, samples: list[tuple[str, str]]) -> dict:
    """Starts the ingestor, times assignment → ready → sample GETs answered; stops it with SIGTERM."""
    sock = str(workdir / "ingestor.sock")
    log = (workdir / f"{name}.log").open("wb")
    load_before = load()
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "run", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    t_assign = t_ready = t_serving = None
    peak_anon = peak_file = 0.0
    last_sample = 0.0
    deadline = t0 + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            h = health(sock)
            now = time.monotonic()
            if now - last_sample >= 0.05:
                last_sample = now
                try:
                    a, f = rss_split_mb(proc.pid)
                    peak_anon, peak_file = max(peak_anon, a), max(peak_file, f)
                except OSError:
                    pass
            if h is not None:
                ready, assigned, _ = h
                if t_assign is None and assigned:
                    t_assign = now
                if t_assign is not None and ready and t_ready is None:
                    t_ready = now
                if t_ready is not None and all(get_ok(sock, s, k) for s, k in samples):
                    t_serving = time.monotonic()
                    break
            time.sleep(0.005)
        restored = restored_total(sock)
        cached = page_cache_mb(workdir / "state")
        rss = peak_rss_mb(proc.pid)
        anon, file_backed = rss_split_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    if t_serving is None or t_assign is None:
        raise RuntimeError(f"{name}: never served (exit {rc}); see {workdir}/{name}.log")
    return {"phase": name, "start_to_assign_s": t_assign - t0, "assign_to_ready_s": (t_ready or t_serving) - t_assign,
            "assign_to_serving_s": t_serving - t_assign, "start_to_serving_s": t_serving - t0,
            "restored_records": restored, "peak_rss_mb": rss, "anon_mb": anon, "file_mb": file_backed,
            "peak_anon_mb": max(peak_anon, anon), "peak_file_mb": max(peak_file, file_backed), "page_cache_mb": cached,
            "exit": rc, "load_before": load_before, "load_after": load()}


def ingest(binary: str, cfg: Path, workdir: Path, total: int) -> dict:
    sock = str(workdir / "ingestor.sock")
    load_before = load()
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "run", "--config", str(cfg)], stdout=(workdir / "ingest.log").open("wb"),
                            stderr=subprocess.STDOUT)
    consumed = 0.0
    try:
        while time.monotonic() < t0 + 900 and proc.poll() is None:
            time.sleep(0.2)
            try:
                consumed = metrics(sock).get("records_consumed_total", 0)
            except OSError:
                continue
            if consumed >= total:
                break
        took = time.monotonic() - t0
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
    if consumed < total or rc != 0:
        raise RuntimeError(f"ingest incomplete ({consumed:.0f} of {total}, exit {rc}); see {workdir}/ingest.log")
    return {"phase": "ingest", "seconds": took, "peak_rss_mb": rss, "load_before": load_before, "load_after": load()}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", type=int, default=1_000_000, help="distinct keys (one event each)")
    p.add_argument("--bill-share", type=float, default=0.5, help="share of keys that are bills (billing store)")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--guarantee", default="exactly_once_v2", choices=["exactly_once_v2", "at_least_once"])
    p.add_argument("--bin", required=True, help="the k8s-micro-ingestor binary to start")
    p.add_argument("--compare-bin", action="append", default=[],
                   help="another binary (e.g. the 'before' build) to run warm/cold with too (repeatable)")
    p.add_argument("--repeat", type=int, default=1, help="warm and cold runs per binary")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE", help="extra kafka.properties")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", help="also write the phase results to this file")
    args = p.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="k8s-micro-restore-"))
    broker = Broker(workdir)
    results: list[dict] = []
    try:
        bootstrap = f"127.0.0.1:{broker.port}"
        subprocess.run(["tansu", "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions",
                        str(args.partitions), "input"], check=True, capture_output=True)
        extra = {"session.timeout.ms": "3000", **dict(kv.split("=", 1) for kv in args.property)}
        cfg = write_config(workdir, broker.port, args.guarantee, extra_properties=extra)
        chasers, bills = keys_of(args.keys, args.bill_share)
        print(f"# {args.keys:,} keys ({len(chasers):,} chaser, {len(bills):,} billing), {args.partitions} partitions, "
              f"{args.guarantee}; workdir {workdir}", flush=True)
        t = time.monotonic()
        produce(bootstrap, chasers, bills)
        print(f"produced {args.keys:,} events in {time.monotonic() - t:.1f}s (load {load()})", flush=True)
        r = ingest(args.bin, cfg, workdir, args.keys)
        results.append(r)
        print(f"ingest: {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.1f} MB (load {r['load_before']} →"
              f"{r['load_after']})", flush=True)
        records, size = changelog_bytes(bootstrap, ["k8s-micro-chaser-changelog", "k8s-micro-billing-changelog"])
        state = workdir / "state"
        apparent, allocated = dir_size_mb(state)
        print(f"changelogs: {records:,} records, {size / 1e6:.1f} MB key+value; store on disk {allocated:.1f} MB "
              f"allocated ({apparent:.1f} MB apparent)", flush=True)
        rng = random.Random(1)
        samples = [("chaser", k) for k in rng.sample(chasers, min(10, len(chasers)))]
        samples += [("billing", k) for k in rng.sample(bills, min(10, len(bills)))]
        binaries = [args.bin] + args.compare_bin
        saved = workdir / "state-saved"
        copy_sparse(state, saved)
        for _ in range(args.repeat):
            for binary in binaries:
                label = "" if len(binaries) == 1 else f" [{Path(binary).parent.name}/{Path(binary).name}]"
                shutil.rmtree(state)
                copy_sparse(saved, state)
                w = serve_phase("warm", binary, cfg, workdir, samples)
                w["binary"] = binary
                results.append(w)
                print(f"warm restart{label}: serving {w['assign_to_serving_s']:.2f}s after assignment "
                      f"(ready {w['assign_to_ready_s']:.2f}s), {w['start_to_serving_s']:.2f}s after start "
                      f"(assignment at {w['start_to_assign_s']:.2f}s), replayed {w['restored_records']:,.0f} records, "
                      f"peak RSS {w['peak_rss_mb']:.1f} MB (now {w['anon_mb']:.1f} anon + {w['file_mb']:.1f} file) "
                      f"(load {w['load_before']} →{w['load_after']})", flush=True)
                shutil.rmtree(state)
                c = serve_phase("cold", binary, cfg, workdir, samples)
                c["binary"] = binary
                results.append(c)
                secs = max(c["assign_to_ready_s"], 1e-6)
                rate = c["restored_records"] / secs
                mbs = size * (c["restored_records"] / max(records, 1)) / secs / 1e6
                apparent, allocated = dir_size_mb(state)
                c.update(records_per_s=rate, mb_per_s=mbs, store_mb=allocated)
                print(f"cold restore{label}: {c['restored_records']:,.0f} records in {secs:.2f}s = {rate:,.0f} "
                      f"records/s, {mbs:.1f} MB/s; serving {c['assign_to_serving_s']:.2f}s after assignment, "
                      f"{c['start_to_serving_s']:.2f}s after start; peak RSS {c['peak_rss_mb']:.1f} MB (now "
                      f"{c['anon_mb']:.1f} anon + {c['file_mb']:.1f} file; sampled peaks {c['peak_anon_mb']:.1f} "
                      f"anon, {c['peak_file_mb']:.1f} file); store {allocated:.1f} MB on disk "
                      f"({apparent:.1f} MB apparent, {c['page_cache_mb']:.1f} MB of it in the page cache) "
                      f"(load {c['load_before']} →{c['load_after']})", flush=True)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps([dict(r, keys=args.keys) for r in results], indent=1))
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
