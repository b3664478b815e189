#!/usr/bin/env python3
"""Peers benchmark (make bench-peers): the same chaser workload on this service and on Quix Streams.

One fresh tansu; N chaser events for K keys produced once by `k8s-micro-ingestor generate --mix 1` (Confluent-
framed Avro), with the expected final aggregate of every key (`--expect`). Then, on that broker and that input:

- k8s-micro-ingestor (release build, at_least_once by default) in its own consumer group;
- the Quix Streams application mk/peers_quix_app.py (.venv-peers) in another group: same rules, RocksDB state
  with a changelog, at-least-once.

Rate = events from the first to the last consumed record (group join excluded), as `make bench-ingestor`
counts it; CPU = the process' CPU seconds over that span per event. Output check: each one's output topic
read to its end (partition EOF, not ListOffsets, which tansu answers wrong), the last aggregate of every key
compared with the expected one. Runs under .venv-peers' Python (fastavro decodes the service's Avro output).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingestor_bench import Broker, consume_until, cpu_seconds, write_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"


def read_topic(bootstrap: str, topic: str, decode) -> dict[str, dict]:
    """The last value of every key in `topic`, read from the start to the end of every partition."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peers-check-{topic}",
                         "enable.partition.eof": True, "enable.auto.commit": False})
    partitions = len(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    last: dict[str, dict] = {}
    done: set[int] = set()
    deadline = time.monotonic() + 600
    try:
        while len(done) < partitions and time.monotonic() < deadline:
            for m in consumer.consume(10_000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                        continue
                    raise RuntimeError(f"{topic}: {m.error()}")
                done.discard(m.partition())
                last[m.key().decode()] = decode(m.value())
    finally:
        consumer.close()
    return last


def avro_decoder(schema_file: str):
    import fastavro

    schema = fastavro.parse_schema(json.loads((SCHEMAS / schema_file).read_text()))
    return lambda value: fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)


def check(expected: dict[str, dict], got: dict[str, dict]) -> dict:
    fields = ("names", "count", "latest", "longest")
    wrong = [k for k, v in expected.items() if k not in got or any(got[k].get(f) != v.get(f) for f in fields)]
    return {"keys": len(expected), "wrong": len(wrong), "extra": len(set(got) - set(expected)),
            "example": [expected[wrong[0]], got.get(wrong[0])] if wrong else None}


def run_service(args, cfg: Path, workdir: Path) -> dict:
    sock = str(workdir / "ingestor.sock")
    proc = subprocess.Popen([args.bin, "run", "--config", str(cfg)], stdout=(workdir / "service.log").open("wb"),
                            stderr=subprocess.STDOUT)
    cpu = {}
    try:
        first, consumed = consume_until(sock, args.events, args.timeout,
                                        lambda: cpu.setdefault("first", cpu_seconds(proc.pid)))
        end, cpu_end = time.monotonic(), cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: the last commit writes the last aggregates
        proc.wait(60)
    if first is None or consumed < args.events:
        raise RuntimeError(f"service consumed {consumed:.0f} of {args.events}; see {workdir}/service.log")
    events = args.events - first[1]
    return {"events_per_s": events / max(end - first[0], 1e-6),
            "cpu_us_per_event": (cpu_end - cpu["first"]) / max(events, 1) * 1e6, "seconds": end - first[0]}


def run_quix(args, bootstrap: str, workdir: Path) -> dict:
    result = workdir / "quix-result.json"
    cmd = [sys.executable, str(ROOT / "mk" / "peers_quix_app.py"), "--bootstrap", bootstrap,
           "--schema", str(SCHEMAS / "com.polecatworks.chaser.Chaser.avsc"), "--events", str(args.events),
           "--state-dir", str(workdir / "quix-state"), "--result", str(result)]
    proc = subprocess.Popen(cmd, stdout=(workdir / "quix.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        proc.wait(args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError(f"quix did not finish in {args.timeout}s; see {workdir}/quix.log") from None
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"quix exited {proc.returncode}; see {workdir}/quix.log")
    r = json.loads(result.read_text())
    span = max(r["last"] - r["first"], 1e-6)
    return {"events_per_s": r["events"] / span, "seconds": span,
            "cpu_us_per_event": (r["cpu_last"] - r["cpu_first"]) / max(r["events"], 1) * 1e6}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once_v2"])
    p.add_argument("--bin", required=True, help="the k8s-micro-ingestor binary")
    p.add_argument("--timeout", type=float, default=1800, help="seconds each consumer may take")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="k8s-micro-peers-"))
    broker = Broker(workdir)
    bootstrap = f"127.0.0.1:{broker.port}"
    try:
        # retention.ms explicit: Quix derives its changelog topics' config from the input topic's, and tansu's
        # DescribeConfigs returns only the configs set at creation (Quix fails with KeyError 'retention.ms').
        subprocess.run(["tansu", "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions",
                        str(args.partitions), "--config", "retention.ms=604800000", "input"],
                       check=True, capture_output=True)
        # Quix would create its output topic with one partition; the service's has the input's count.
        subprocess.run(["tansu", "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions",
                        str(args.partitions), "chaser-quix"], check=True, capture_output=True)
        cfg = write_config(workdir, broker.port, args.guarantee)
        expect = workdir / "expected.jsonl"
        t = time.monotonic()
        subprocess.run([args.bin, "generate", "--config", str(cfg), "--total", str(args.events), "--rate", "0",
                        "--keys", str(args.keys), "--mix", "1", "--seed", "1", "--expect", str(expect)],
                       check=True, capture_output=True)
        expected = {r["key"]: r["value"] for r in map(json.loads, expect.read_text().splitlines())
                    if r["store"] == "chaser"}
        print(f"# {args.events:,} chaser events, {len(expected):,} keys, {args.partitions} partitions, one tansu; "
              f"produced in {time.monotonic() - t:.1f}s; load {os.getloadavg()[0]:.1f}", flush=True)

        service = run_service(args, cfg, workdir)
        service["check"] = check(expected, read_topic(bootstrap, "chaser",
                                                      avro_decoder("com.polecatworks.chaser.Aggregate.avsc")))
        print(f"k8s-micro ({args.guarantee}): {service['events_per_s']:,.0f} events/s over {service['seconds']:.1f}s, "
              f"{service['cpu_us_per_event']:.1f} us CPU/event; output {service['check']}", flush=True)

        quix = run_quix(args, bootstrap, workdir)
        quix["check"] = check(expected, read_topic(bootstrap, "chaser-quix", json.loads))
        print(f"Quix Streams (at-least-once): {quix['events_per_s']:,.0f} events/s over {quix['seconds']:.1f}s, "
              f"{quix['cpu_us_per_event']:.1f} us CPU/event; output {quix['check']}", flush=True)
        ratio = service["events_per_s"] / max(quix["events_per_s"], 1e-9)
        print(f"ratio: {ratio:.1f}x (load {os.getloadavg()[0]:.1f})")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({
                "events": args.events, "keys": len(expected), "partitions": args.partitions,
                "guarantee": args.guarantee, "load": os.getloadavg()[0],
                "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "k8s-micro": service, "quixstreams": quix, "ratio": ratio}, indent=1) + "\n")
        ok = service["check"]["wrong"] == 0 and quix["check"]["wrong"] == 0
        return 0 if ok else 1
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
