#!/usr/bin/env python3
"""The chaser aggregation as a Quix Streams application (run by mk/peers_bench.py in .venv-peers).

Reads the same Confluent-framed Avro Chaser events from the input topic, folds them per key in Quix's state
store (RocksDB with a changelog topic, at-least-once) with the same rules as the service (names distinct in
first-seen order, count, latest = max sent, longest = max ttl) and writes every updated aggregate as JSON to the
output topic. Stops after --events records and writes {first, last, events, cpu_first, cpu_last} (monotonic and
process CPU seconds at the first and the last record) to --result.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import time
from pathlib import Path

import fastavro
from quixstreams import Application
from quixstreams.models.serializers import Deserializer


class ConfluentAvro(Deserializer):
    """Confluent wire format: magic byte 0, big-endian schema id, Avro binary (no registry: one reader schema)."""

    def __init__(self, schema: dict, schema_id: int):
        super().__init__()
        self.schema = fastavro.parse_schema(schema)
        self.schema_id = schema_id

    def __call__(self, value: bytes, ctx) -> dict:
        if len(value) < 5 or value[0] != 0 or struct.unpack(">i", value[1:5])[0] != self.schema_id:
            raise ValueError("not a Confluent-framed Chaser")
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), self.schema)


def fold(event: dict, state) -> dict:
    agg = state.get("agg") or {"names": [], "count": 0, "latest": None, "longest": None}
    if event["name"] not in agg["names"]:
        agg["names"].append(event["name"])
    agg["count"] += 1
    agg["latest"] = event["sent"] if agg["latest"] is None else max(agg["latest"], event["sent"])
    agg["longest"] = event["ttl"] if agg["longest"] is None else max(agg["longest"], event["ttl"])
    state.set("agg", agg)
    return agg


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", default="input")
    p.add_argument("--output", default="chaser-quix")
    p.add_argument("--schema", required=True, help="com.polecatworks.chaser.Chaser.avsc")
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--result", required=True)
    args = p.parse_args()

    app = Application(
        broker_address=args.bootstrap, consumer_group="quix-bench", auto_offset_reset="earliest",
        processing_guarantee="at-least-once", state_dir=args.state_dir, loglevel="WARNING",
        # tansu holds JoinGroup for half the session timeout: keep it short (as the service's benchmarks do).
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
    source = app.topic(args.input, key_deserializer="str",
                       value_deserializer=ConfluentAvro(json.loads(Path(args.schema).read_text()), 1))
    sink = app.topic(args.output, key_serializer="str", value_serializer="json")
    progress = {"first": None, "last": None, "events": 0, "cpu_first": None, "cpu_last": None}

    def count(_value: dict) -> None:
        if progress["first"] is None:
            progress["first"], progress["cpu_first"] = time.monotonic(), time.process_time()
        progress["events"] += 1
        if progress["events"] >= args.events:
            progress["last"], progress["cpu_last"] = time.monotonic(), time.process_time()
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.apply(fold, stateful=True)
    sdf = sdf.update(count)
    sdf.to_topic(sink)
    app.run()
    Path(args.result).write_text(json.dumps(progress))


if __name__ == "__main__":
    main()
