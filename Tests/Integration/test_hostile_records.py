"""Record flood: tens of thousands of mutated records mixed into a clean stream, against the real ingestor
and a real tansu broker. Mutations: bit flips, truncation, trailing bytes, other and unknown schema ids,
absurd lengths inside the Avro body, bad magic, empty values, null keys.

The ingestor stays up, its memory stays bounded, every consumed record is either aggregated or dead-lettered
with its reason (the metrics add up, and the dead-letter metric equals the dead-letter topic), and the clean
keys hold exactly what the independent reference model (reference_model.py, fastavro) computes. Mutated
records use keys of their own, so whatever a mutated record that still decodes does, it never touches a
clean key.
"""

from __future__ import annotations

import random
import signal
import struct
import time
from pathlib import Path

import pytest

import reference_model as rm
from conftest import wait_until
from test_ingestor_runtime import ingestor_pod, socket_get, socket_metrics, start_ingestor

CLEAN_KEYS = 500
CLEAN_RECORDS = 2_500
MUTATED_RECORDS = 20_000
REASONS = {"bad-magic", "too-short", "unknown-schema-id", "corrupt-avro", "wrong-type", "null-key"}


def clean_events(rng: random.Random) -> list[tuple[str, dict]]:
    out = []
    for i in range(CLEAN_RECORDS):
        key = f"clean-{rng.randrange(CLEAN_KEYS)}"
        kind = rng.randrange(4)
        if kind == 0:
            event = {"type": rm.CHASER, "name": rng.choice("ABCD"), "id": f"id-{i}", "sent": rng.randrange(1 << 40),
                     "ttl": rng.randrange(1000), "previous": rng.choice([None, i])}
        elif kind == 1:
            event = {"type": rm.BILL, "billId": f"b-{key}", "customerId": "c", "orderId": f"o-{rng.randrange(3)}",
                     "amountCents": rng.randrange(10_000), "currency": "EUR", "issuedAt": i, "dueDate": i + 1}
        elif kind == 2:
            event = {"type": rm.PAYMENT_REQUEST, "paymentId": f"p-{rng.randrange(5)}", "billId": f"b-{key}",
                     "customerId": "c", "amountCents": rng.randrange(10_000), "currency": "EUR", "requestedAt": i}
        else:
            event = {"type": rm.PAYMENT_FAILED, "paymentId": f"p-{rng.randrange(5)}", "billId": f"b-{key}",
                     "customerId": "c", "failureReason": "declined", "failedAt": i}
        out.append((key, event))
    return out


def zigzag(n: int) -> bytes:
    u = ((n << 1) ^ (n >> 63)) & ((1 << 64) - 1)
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mutate(rng: random.Random, value: bytes) -> tuple[bytes | None, bytes | None]:
    """One hostile variant of a clean framed value: (key override or b"" for a normal key, value)."""
    kind = rng.randrange(9)
    v = bytearray(value)
    if kind == 0:  # bit flips anywhere
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(v))
            v[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        v = v[: rng.randrange(len(v))]
    elif kind == 2:  # trailing bytes
        v += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
    elif kind == 3:  # another of our ids (other type, or an aggregate)
        v[1:5] = struct.pack(">i", rng.choice([1, 2, 3, 4, 5, 6]))
    elif kind == 4:  # an unknown id
        v[1:5] = struct.pack(">i", rng.choice([0, 7, 999, -1, 1 << 30]))
    elif kind == 5:  # an absurd length where the first string's length is
        v = v[:5] + zigzag(rng.choice([1 << 40, (1 << 62) - 1, -5, 1 << 31])) + v[6:]
    elif kind == 6:  # bad magic
        v[0] = rng.randrange(1, 256)
    elif kind == 7:  # empty or header-only
        v = v[: rng.choice([0, 1, 4, 5])]
    else:  # a clean value with no key
        return None, bytes(v)
    return b"", bytes(v)


def read_dlq(confluent_kafka, bootstrap: str, expected: int, timeout: float) -> list[dict]:
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "flood-dlq-reader", "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
    })
    consumer.subscribe(["input-dlq"])
    seen = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            # Past the expected count, a few seconds of silence means nothing more is coming.
            if len(seen) >= expected and time.monotonic() - idle_since > 3:
                break
            continue
        idle_since = time.monotonic()
        seen.append({k: v.decode() for k, v in (msg.headers() or [])})
    consumer.close()
    return seen


def anonymous_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("RssAnon:")[1].split()[0]) / 1024


def test_record_flood_is_aggregated_or_dead_lettered_and_clean_keys_stay_exact(tansu, pod_factory, binaries):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    rng = random.Random(1313)
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    pid = pod.procs["ingestor"].pid
    before = anonymous_mb(pid)

    clean = clean_events(rng)
    encoded = [(key, rm.encode(event)) for key, event in clean]
    records: list[tuple[bytes | None, bytes]] = [(key.encode(), value) for key, value in encoded]
    for i in range(MUTATED_RECORDS):
        key_override, value = mutate(rng, rng.choice(encoded)[1])
        key = None if key_override is None else f"junk-{i % 1000}".encode()
        records.insert(rng.randrange(len(records) + 1), (key, value))
    producer = confluent_kafka.Producer({
        "bootstrap.servers": tansu.bootstrap, "partitioner": "murmur2_random", "linger.ms": 20,
        "queue.buffering.max.messages": 100_000,
    })
    for key, value in records:
        producer.produce("input", key=key, value=value)
        producer.poll(0)
    assert producer.flush(60) == 0
    total = len(records)

    def consumed() -> float:
        return socket_metrics(pod.socket_path).get("records_consumed_total", 0)

    wait_until(lambda: consumed() >= total, 240, interval=1, what=f"all {total} records consumed\n{pod.logs_tail()}")
    assert pod.procs["ingestor"].poll() is None, pod.logs_tail()
    metrics = socket_metrics(pod.socket_path)
    dead = {r: metrics.get(f'records_dead_lettered_total{{reason="{r}"}}', 0) for r in REASONS}
    aggregated = metrics.get("chaser_received_total", 0) + metrics.get("billing_aggregation_total", 0)
    assert metrics["records_consumed_total"] == total
    assert aggregated + sum(dead.values()) == total, (aggregated, dead)
    assert sum(dead.values()) >= MUTATED_RECORDS // 2, dead  # most mutations cannot decode
    assert all(dead[r] > 0 for r in REASONS), dead

    # The dead-letter topic holds exactly what the metric counted, each with its reason and detail.
    topic = read_dlq(confluent_kafka, tansu.bootstrap, int(sum(dead.values())), 120)
    assert len(topic) == sum(dead.values())
    for reason in REASONS:
        assert sum(1 for h in topic if h["k8s-micro-dlq-reason"] == reason) == dead[reason], reason
    assert all(h["k8s-micro-dlq-detail"] and h["k8s-micro-origin-topic"] == "input" for h in topic)

    # Clean keys: exactly the reference model's fold of the clean records.
    expected = rm.fold(clean)
    for store in ("chaser", "billing"):
        for key, aggregate in expected[store].items():
            assert socket_get(pod.socket_path, store, key) == aggregate, (store, key)

    # Memory: bounded, not proportional to the flood (anonymous memory; the LMDB map is page cache).
    after = anonymous_mb(pid)
    assert after - before < 64, f"anonymous memory {before:.1f} -> {after:.1f} MB"
    assert pod.signal("ingestor", signal.SIGTERM, wait=20) == 0
