"""Ingestor runtime against a real tansu broker: topology end to end, restore, kill -9, dead letters.

State is read over the ingestor's Unix socket (a tiny client of docs/socket-protocol.md below) and, once
the ingestor has stopped, with `k8s-micro-ingestor run --dump-store` (every stored aggregate as JSON lines).
The expected state of every state comparison comes from reference_model.py, which reads the input topic
back and folds it with its own codec (fastavro) and its own rules; the product's code is never the oracle.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import confluent_kafka
import pytest

import reference_model as rm
import socket_frames
from conftest import ROOT, wait_until

CHASER = "com.polecatworks.chaser.Chaser"
AGGREGATE = "com.polecatworks.chaser.Aggregate"
BILL = "com.polecatworks.billing.Bill"
PAYMENT_REQUEST = "com.polecatworks.billing.PaymentRequest"
PAYMENT_FAILED = "com.polecatworks.billing.PaymentFailed"


# --- a minimal blocking client of the socket protocol (version 1) ---------------------------------------


class SocketError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"status {status}: {message}")
        self.status = status
        self.message = message


def _call(path: str, op: int, body: bytes = b"", timeout: float = 5) -> bytes:
    status, rest = socket_frames.call(path, op, body, timeout)
    if status != 0:
        n = struct.unpack(">I", rest[:4])[0]
        raise SocketError(status, rest[4 : 4 + n].decode(errors="replace"))
    return rest


def socket_get(path: str, store: str, key: str) -> dict | None:
    """The aggregate as parsed JSON; None when not found (raises SocketError for notReady and the like)."""
    try:
        rest = _call(path, 3, socket_frames.string(store) + socket_frames.string(key))
    except SocketError as e:
        if e.status == 1:
            return None
        raise
    n = struct.unpack(">I", rest[:4])[0]
    return json.loads(rest[4 : 4 + n])


def socket_metrics(path: str) -> dict[str, float]:
    rest = _call(path, 7)
    n = struct.unpack(">I", rest[:4])[0]
    out: dict[str, float] = {}
    for line in rest[4 : 4 + n].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def socket_ready(path: str) -> bool:
    rest = _call(path, 2)
    return rest[1] == 1


# --- helpers ---------------------------------------------------------------------------------------------


def ingestor_pod(pod_factory, tansu, **kafka):
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu, kafka={"commitInterval": 100, **kafka})
    return pod


def start_ingestor(pod, timeout: float = 60):
    pod.start_ingestor()
    wait_until(lambda: socket_ready(pod.socket_path), timeout, interval=0.2, what=f"ingestor ready\n{pod.logs_tail()}")


def generate(pod, binaries, run_env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    pod.write_config()
    cmd = [str(binaries.ingestor), "generate", "--config", str(pod.config_path), *args]
    out = subprocess.run(cmd, env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def produce_events(pod, binaries, run_env, events: list[dict]) -> None:
    path = pod.workdir / f"events-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    generate(pod, binaries, run_env, "--events-file", str(path))


def dump_store(pod, binaries, run_env) -> dict[tuple[str, str], dict]:
    out = subprocess.run(
        [str(binaries.ingestor), "run", "--config", str(pod.config_path), "--dump-store"],
        env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    got = {}
    for line in out.stdout.splitlines():
        d = json.loads(line)
        got[(d["store"], d["key"])] = d["value"]
    return got


def start_generator(pod, binaries, run_env, *args: str) -> subprocess.Popen:
    pod.write_config()
    return subprocess.Popen(
        [str(binaries.ingestor), "generate", "--config", str(pod.config_path), *args],
        env=run_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_exact(pod, expected: dict[tuple[str, str], dict], timeout: float = 90) -> None:
    """Polls the ingestor's socket until every expected key holds its expected aggregate."""
    pending = dict(expected)

    def done() -> bool:
        for sk in list(pending):
            if socket_get(pod.socket_path, *sk) != pending[sk]:
                return False
            del pending[sk]
        return True

    wait_until(done, timeout, interval=0.5,
               what=f"{len(pending)} keys to hold the reference aggregates, e.g. {next(iter(pending), None)}\n"
                    f"{pod.logs_tail()}")


def assert_same_state(got: dict, expected: dict) -> None:
    wrong = [k for k in expected if got.get(k) != expected[k]]
    assert not wrong, f"{len(wrong)} of {len(expected)} aggregates differ from the reference model, e.g. " + (
        json.dumps([wrong[0], expected[wrong[0]], got.get(wrong[0])]) if wrong else "")
    assert set(got) == set(expected), sorted(set(got) ^ set(expected))[:5]


def chaser(name: str, id: str, sent: int, ttl: int, previous=None) -> dict:
    return {"type": CHASER, "name": name, "id": id, "sent": sent, "ttl": ttl, "previous": previous}


# --- tests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_chaser_example_end_to_end(tansu, pod_factory, binaries, run_env, guarantee):
    pod = ingestor_pod(pod_factory, tansu, processingGuarantee=guarantee)
    start_ingestor(pod)
    produce_events(pod, binaries, run_env, [chaser("A", "dev-1", 1000, 300), chaser("B", "dev-1", 2000, 500)])
    expected = {"type": AGGREGATE, "names": ["A", "B"], "count": 2, "latest": 2000, "longest": 500}
    wait_until(lambda: socket_get(pod.socket_path, "chaser", "dev-1") == expected, 30, what="chaser aggregate")
    metrics = socket_metrics(pod.socket_path)
    assert metrics.get("chaser_received_total") == 2
    assert metrics.get("chaser_ttl_value") == 500
    assert socket_get(pod.socket_path, "chaser", "no-such-key") is None
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


def test_billing_sequence_and_metrics(tansu, pod_factory, binaries, run_env):
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    bill = {"type": BILL, "billId": "b-1", "customerId": "c-1", "orderId": "o-1", "amountCents": 1250,
            "currency": "EUR", "issuedAt": 1000, "dueDate": 90000}
    p1 = {"type": PAYMENT_REQUEST, "paymentId": "p-1", "billId": "b-1", "customerId": "c-1", "amountCents": 1250,
          "currency": "EUR", "requestedAt": 2000}
    f1 = {"type": PAYMENT_FAILED, "paymentId": "p-1", "billId": "b-1", "customerId": "c-1",
          "failureReason": "insufficient-funds", "failedAt": 2500}
    p2 = dict(p1, paymentId="p-2", requestedAt=3000)
    # Bill, request, failure, retry, and the identical Bill again (a duplicate changes nothing).
    produce_events(pod, binaries, run_env, [bill, p1, f1, p2, bill])

    def strip(e: dict) -> dict:
        return {k: v for k, v in e.items() if k != "type"}

    expected = {"type": "com.polecatworks.billing.BillAggregate", "bill": strip(bill),
                "paymentRequests": [strip(p1), strip(p2)], "lastPaymentFailed": None, "errored": False}
    wait_until(lambda: socket_get(pod.socket_path, "billing", "b-1") == expected, 30, what="bill aggregate")
    metrics = socket_metrics(pod.socket_path)
    assert metrics.get("billing_aggregation_total") == 5
    assert metrics.get("billing_customer_bills_total") == 1
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


def test_restart_restores_state(tansu, pod_factory, binaries, run_env):
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    produce_events(pod, binaries, run_env, [chaser("A", "dev-9", 1000, 300), chaser("B", "dev-9", 2000, 500)])
    wait_until(lambda: (socket_get(pod.socket_path, "chaser", "dev-9") or {}).get("count") == 2, 30, what="count 2")
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0

    # Restart on the local store: served at once, and new events fold onto the restored state exactly once.
    start_ingestor(pod)
    assert socket_get(pod.socket_path, "chaser", "dev-9")["count"] == 2
    produce_events(pod, binaries, run_env, [chaser("C", "dev-9", 3000, 100)])
    wait_until(lambda: (socket_get(pod.socket_path, "chaser", "dev-9") or {}).get("count") == 3, 30, what="count 3")
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0

    # A wiped pod restores everything from the changelog.
    shutil.rmtree(pod.config["ingestor"]["stateDir"])
    start_ingestor(pod)
    assert socket_get(pod.socket_path, "chaser", "dev-9") == {
        "type": AGGREGATE, "names": ["A", "B", "C"], "count": 3, "latest": 3000, "longest": 500}
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_kill9_under_load_loses_and_doubles_nothing(tansu, pod_factory, binaries, run_env, guarantee):
    pod = ingestor_pod(pod_factory, tansu, processingGuarantee=guarantee)
    start_ingestor(pod)
    gen = start_generator(pod, binaries, run_env, "--total", "24000", "--rate", "4000", "--keys", "300",
                          "--seed", "7")
    for _ in range(2):
        # Kill while records flow: wait for consumption to move on from what the last start restored.
        consumed = socket_metrics(pod.socket_path).get("records_consumed_total", 0)
        wait_until(lambda: socket_metrics(pod.socket_path).get("records_consumed_total", 0) > consumed + 500, 60,
                   interval=0.2, what="consumption under load")
        assert pod.signal("ingestor", signal.SIGKILL) == -signal.SIGKILL
        start_ingestor(pod)
    assert gen.wait(120) == 0, gen.stderr.read()
    expected = rm.expected_aggregates(tansu.bootstrap)
    assert {s for s, _ in expected} == {"chaser", "billing"}
    wait_exact(pod, expected)
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0
    assert_same_state(dump_store(pod, binaries, run_env), expected)


def test_bad_input_reaches_dead_letter_topic(tansu, pod_factory, binaries, run_env):
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    producer = confluent_kafka.Producer({"bootstrap.servers": tansu.bootstrap, "partitioner": "murmur2_random"})
    bad = {
        "bad-magic": (b"k1", b"\x01hello"),
        "too-short": (b"k2", b"\x00\x00"),
        "unknown-schema-id": (b"k3", b"\x00\x00\x00\x03\xe7xyz"),
        "corrupt-avro": (b"k4", b"\x00\x00\x00\x00\x01\xff\xff\xff\xff\x0f"),
        "wrong-type": (b"k5", b"\x00\x00\x00\x00\x02\x00\x00\x00\x00"),
        "null-key": (None, b"\x00\x00\x00\x00\x01"),
        # A good event whose key is longer than the stores take (once it stopped the ingestor for good).
        "key-too-long": (b"k" * 512, rm.encode(chaser("A", "x", 1, 1))),
        "empty-key": (b"", rm.encode(chaser("A", "", 1, 1))),
    }
    for key, value in bad.values():
        producer.produce("input", key=key, value=value)
    assert producer.flush(10) == 0
    del producer  # no client left retrying a stopped broker after the test
    # Processing goes on after bad records.
    produce_events(pod, binaries, run_env, [chaser("A", "dev-ok", 1000, 300)])
    wait_until(lambda: socket_get(pod.socket_path, "chaser", "dev-ok") is not None, 30, what="good record after bad")

    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": tansu.bootstrap, "group.id": "dlq-reader", "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
    })
    consumer.subscribe(["input-dlq"])
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(seen) < len(bad):
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        headers = {k: v.decode() for k, v in (msg.headers() or [])}
        seen[headers["k8s-micro-dlq-reason"]] = {"headers": headers, "key": msg.key(), "value": msg.value()}
    consumer.close()
    assert set(seen) == set(bad)
    for reason, (key, value) in bad.items():
        rec = seen[reason]
        assert rec["key"] == key and rec["value"] == value
        assert rec["headers"]["k8s-micro-origin-topic"] == "input"
        assert int(rec["headers"]["k8s-micro-origin-offset"]) >= 0
        assert "k8s-micro-origin-partition" in rec["headers"] and rec["headers"]["k8s-micro-dlq-detail"]
    metrics = socket_metrics(pod.socket_path)
    for reason in bad:
        assert metrics.get(f'records_dead_lettered_total{{reason="{reason}"}}') == 1, reason
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


def test_rebalance_between_two_ingestors_keeps_state_exact(tansu, pod_factory, binaries, run_env):
    """A second ingestor joins under load (cooperative rebalance), then leaves: the first one takes its
    partitions back, replays their changelog tail, and ends with exactly the expected aggregates."""
    a = ingestor_pod(pod_factory, tansu)
    b = pod_factory(tansu, name="podb", kafka={"commitInterval": 100})
    start_ingestor(a)
    gen = start_generator(a, binaries, run_env, "--total", "36000", "--rate", "2000", "--keys", "200",
                          "--seed", "11")
    wait_until(lambda: socket_metrics(a.socket_path).get("records_consumed_total", 0) > 1000, 60, interval=0.2,
               what="a consuming under load")
    start_ingestor(b)
    # Ready = joined with its share of partitions restored (tansu holds each join for session.timeout / 2).
    wait_until(lambda: socket_ready(b.socket_path), 40, interval=0.5, what=f"b ready\n{b.logs_tail()}")
    assert socket_metrics(b.socket_path).get("partitions_assigned", 0) >= 1, "b joined without partitions"
    assert gen.wait(120) == 0, gen.stderr.read()
    assert b.signal("ingestor", signal.SIGTERM, wait=20) == 0
    expected = rm.expected_aggregates(tansu.bootstrap)
    wait_until(lambda: socket_metrics(a.socket_path).get("partitions_assigned") == 4, 60, interval=0.5,
               what=f"a takes every partition back\n{a.logs_tail()}")
    wait_exact(a, expected)
    assert a.signal("ingestor", signal.SIGTERM, wait=20) == 0
    assert_same_state(dump_store(a, binaries, run_env), expected)


def test_cache_size_zero_emits_every_update(tansu, pod_factory, binaries, run_env):
    """With no record cache every update reaches the output topics and changelogs; each value, decoded by
    the reference codec (fastavro), is the reference model's aggregate after that event."""
    pod = ingestor_pod(pod_factory, tansu, cacheMaxEntries=0)
    start_ingestor(pod)
    bill = {"type": BILL, "billId": "b-z", "customerId": "c-1", "orderId": "o-1", "amountCents": 1250,
            "currency": "EUR", "issuedAt": 1000, "dueDate": 90000}
    request = {"type": PAYMENT_REQUEST, "paymentId": "p-1", "billId": "b-z", "customerId": "c-1",
               "amountCents": 1250, "currency": "EUR", "requestedAt": 2000}
    failed = {"type": PAYMENT_FAILED, "paymentId": "p-1", "billId": "b-z", "customerId": "c-1",
              "failureReason": "card-expired", "failedAt": 2500}
    chasers = [chaser(n, "dev-z", 1000 * i, 100 * i, previous=None if i == 1 else i) for i, n in enumerate("ABC", 1)]
    produce_events(pod, binaries, run_env, chasers + [bill, request, failed])
    wait_until(lambda: (socket_get(pod.socket_path, "billing", "b-z") or {}).get("lastPaymentFailed"), 30,
               what="the billing sequence folded")
    wait_until(lambda: (socket_get(pod.socket_path, "chaser", "dev-z") or {}).get("count") == 3, 30, what="count 3")
    want = {
        "chaser": [rm.fold(("dev-z", e) for e in chasers[: i + 1])["chaser"]["dev-z"] for i in range(3)],
        "billing": [rm.fold(("b-z", e) for e in [bill, request, failed][: i + 1])["billing"]["b-z"]
                    for i in range(3)],
    }
    ids = {"chaser": rm.EMBEDDED_IDS[rm.AGGREGATE], "billing": rm.EMBEDDED_IDS[rm.BILL_AGGREGATE]}
    for store in ("chaser", "billing"):
        for topic in (store, f"k8s-micro-{store}-changelog"):
            records = rm.read_topic(tansu.bootstrap, topic, timeout=30, headers=True)
            assert all(r[3][:5] == b"\x00" + ids[store].to_bytes(4, "big") for r in records), topic
            assert [rm.decode_output(r[3]) for r in records] == want[store], topic
            if topic.endswith("changelog"):
                offsets = [int(r[4]["k8s-micro-input-offset"]) for r in records]
                assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


def test_publish_over_socket_answers_after_the_ack(tansu, pod_factory, binaries, run_env):
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    event = json.dumps(chaser("A", "dev-pub", 1000, 300)).encode()
    rest = _call(pod.socket_path, 8, struct.pack(">I", len(event)) + event)
    n = struct.unpack(">I", rest[:4])[0]
    topic = rest[4 : 4 + n].decode()
    partition, offset = struct.unpack(">iq", rest[4 + n : 4 + n + 12])
    # Keyed by the chaser's id, on that key's murmur2 partition, and the record there is the event.
    assert topic == "input" and partition == rm.partition_for("dev-pub", 4) and offset >= 0
    records = {(p, o): (k, v) for p, o, k, v in rm.read_topic(tansu.bootstrap, "input", timeout=30)}
    key, value = records[(partition, offset)]
    assert key == b"dev-pub" and rm.decode(value) == chaser("A", "dev-pub", 1000, 300)
    wait_until(lambda: socket_get(pod.socket_path, "chaser", "dev-pub") == rm.flat(rm.expected_state(
        tansu.bootstrap)[0])[("chaser", "dev-pub")], 30, what="published event folded")
    with pytest.raises(SocketError) as bad:
        _call(pod.socket_path, 8, struct.pack(">I", 2) + b"{}")
    assert bad.value.status == 4 and "type" in bad.value.message
    long_id = json.dumps(chaser("A", "d" * 512, 1000, 300)).encode()
    with pytest.raises(SocketError) as bad:
        _call(pod.socket_path, 8, struct.pack(">I", len(long_id)) + long_id)
    assert bad.value.status == 4 and "511" in bad.value.message
    empty_id = json.dumps(chaser("A", "", 1000, 300)).encode()
    with pytest.raises(SocketError) as bad:
        _call(pod.socket_path, 8, struct.pack(">I", len(empty_id)) + empty_id)
    assert bad.value.status == 4 and "empty" in bad.value.message
    assert pod.signal("ingestor", signal.SIGTERM, wait=15) == 0


def test_zombie_after_pause_is_fenced_and_state_stays_exact(tansu, pod_factory, binaries, run_env):
    """A is frozen (SIGSTOP) past its session timeout while B takes over its partitions; when A thaws, its
    open transaction must not commit (EOS v2 fencing by group generation). Final state is exact."""
    a = ingestor_pod(pod_factory, tansu)
    b = pod_factory(tansu, name="podb", kafka={"commitInterval": 100})
    start_ingestor(a)
    start_ingestor(b)
    wait_until(lambda: socket_ready(a.socket_path) and socket_ready(b.socket_path), 40, interval=0.5,
               what="both ready")
    gen = start_generator(a, binaries, run_env, "--total", "30000", "--rate", "2000", "--keys", "200",
                          "--seed", "5")
    # Freeze A while it holds partitions and records flow.
    wait_until(lambda: socket_metrics(a.socket_path).get("records_consumed_total", 0) > 500, 60, interval=0.2,
               what="a consuming under load")
    a.procs["ingestor"].send_signal(signal.SIGSTOP)
    try:
        # Past session.timeout.ms (6 s) the group gives B every partition.
        wait_until(lambda: socket_metrics(b.socket_path).get("partitions_assigned") == 4, 60, interval=0.5,
                   what=f"b takes a's partitions\n{b.logs_tail()}")
    finally:
        a.procs["ingestor"].send_signal(signal.SIGCONT)
    assert gen.wait(120) == 0, gen.stderr.read()
    expected = rm.expected_aggregates(tansu.bootstrap)
    # The thawed zombie has noticed that it lost its partitions (its open transaction was fenced or aborted).
    wait_until(lambda: any(v > 0 for k, v in socket_metrics(a.socket_path).items()
                           if k.startswith("rebalances_total") and "assign" not in k), 60, interval=0.5,
               what=f"a notices it lost its partitions\n{a.logs_tail()}")
    # Once the group has settled with both members, stop both; then A alone takes every partition (replaying
    # B's changelog tail). (Stopping only B, or both in the middle of a rebalance, is not enough on tansu 0.6:
    # when the group leader leaves, tansu keeps it as leader and the remaining or next member loops in
    # SyncGroup "rebalance in progress"; an empty, settled group starts over.)
    def settled() -> bool:
        na = socket_metrics(a.socket_path).get("partitions_assigned", 0)
        nb = socket_metrics(b.socket_path).get("partitions_assigned", 0)
        return na >= 1 and nb >= 1 and na + nb == 4 and socket_ready(a.socket_path) and socket_ready(b.socket_path)

    wait_until(settled, 60, interval=0.5, what=f"the group settles with a and b\n{a.logs_tail()}")
    b.signal("ingestor", signal.SIGTERM, wait=20)
    a.signal("ingestor", signal.SIGTERM, wait=20)
    start_ingestor(a)
    wait_exact(a, expected)
    assert a.signal("ingestor", signal.SIGTERM, wait=20) == 0
    assert_same_state(dump_store(a, binaries, run_env), expected)
