"""The gateway in front of the REAL ingestor (test_gateway_http.py's FakeIngestor stays for what only a stand-in
can do: timeouts, garbage, a peer that vanishes).

Two pods on one tansu broker. Events go in through `POST /events`; every answer is compared with the reference
model (reference_model.py: the input topic read back and folded with fastavro and its own rules) and every JSON
body is validated against openapi/openapi.json. Then forwarding and 421 between the real pods, a partition held
in restore (503 + Retry-After), and a schemathesis run against the real pod. About 90 s in all.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
import requests

import reference_model as rm
import socket_frames
from conftest import ROOT, Tansu, new_pod, wait_until
from test_cluster import key_owner, routing_table
from test_ingestor_runtime import socket_metrics

OPENAPI = json.loads((ROOT / "openapi" / "openapi.json").read_text())
PARTITIONS = 4


def _nullable_to_json_schema(node):
    """OpenAPI 3.0 `nullable: true` → JSON Schema's type union (what jsonschema validates)."""
    if isinstance(node, dict):
        out = {k: _nullable_to_json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        elif node.get("nullable"):  # e.g. {"allOf": [{"$ref": ...}], "nullable": true}
            out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_nullable_to_json_schema(v) for v in node]
    return node


COMPONENTS = _nullable_to_json_schema(OPENAPI["components"])


def assert_schema(body, name: str) -> None:
    jsonschema.validate(body, {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS})


def chaser(name: str, id: str, sent: int, ttl: int, **extra) -> dict:
    return {"type": rm.CHASER, "name": name, "id": id, "sent": sent, "ttl": ttl, **extra}


def billing_lifecycle(bill_id: str, changed_bill: bool, double_failure: bool) -> list[dict]:
    bill = {"type": rm.BILL, "billId": bill_id, "customerId": "c-1", "orderId": f"o-{bill_id}",
            "amountCents": 1250, "currency": "EUR", "issuedAt": 1000, "dueDate": 90000}
    common = {"billId": bill_id, "customerId": "c-1"}
    p1 = {"type": rm.PAYMENT_REQUEST, "paymentId": f"{bill_id}-p1", **common, "amountCents": 1250,
          "currency": "EUR", "requestedAt": 2000}
    f1 = {"type": rm.PAYMENT_FAILED, "paymentId": f"{bill_id}-p1", **common, "failureReason": "declined",
          "failedAt": 2500}
    events = [bill, p1, f1, dict(p1, paymentId=f"{bill_id}-p2", requestedAt=3000), bill]
    if double_failure:
        events += [f1, dict(f1, failedAt=2600)]
    if changed_bill:
        events.append(dict(bill, amountCents=999))
    return events


EVENTS = (
    [chaser(n, f"dev-{i}", 1000 * (j + 1) + i, 100 * (3 - j), previous=None if j == 0 else j)
     for i in range(12) for j, n in enumerate(["A", "B", "A"][: 1 + i % 3])]
    # Late arrivals: an older `sent` and a shorter `ttl` than already seen (max, not last, must win).
    + [chaser("C", f"dev-{i}", 500 + i, 10) for i in range(0, 12, 4)]
    + [e for i in range(6) for e in billing_lifecycle(f"bill-{i}", changed_bill=i % 3 == 0, double_failure=i % 2 == 1)]
)


def get(pod, store: str, key: str, **kw) -> requests.Response:
    return requests.get(f"{pod.api}/{store}/{quote(key, safe='')}", timeout=10, **kw)


def every_key_matches(pods, expected) -> bool:
    return all(get(pod, store, key).json() == value for pod in pods for (store, key), value in expected.items())


@pytest.fixture(scope="module")
def pair(binaries, run_env, tmp_path_factory):
    """Two ready pods sharing the partitions, EVENTS published through pod 0, every key served by both."""
    workdir = tmp_path_factory.mktemp("real")
    broker = Tansu(workdir)
    broker.create_topic("input", PARTITIONS)
    pods = [new_pod(binaries, run_env, broker, workdir / f"pod{i}", f"pod{i}", kafka={"commitInterval": 100})
            for i in range(2)]
    try:
        for pod in pods:
            pod.start_ingestor()
            pod.start_gateway()
        for pod in pods:
            pod.wait_ready(90)

        def shared() -> bool:
            tables = [routing_table(p.socket_path) for p in pods]
            owners = tables[0][1]
            return all(t[1] == owners for t in tables) and len(owners) == PARTITIONS and \
                {t[0] for t in tables} == set(owners.values())

        wait_until(shared, 90, interval=0.5, what="the two pods share the partitions")
        receipts = []
        with requests.Session() as s:
            for event in EVENTS:
                r = s.post(f"{pods[0].api}/events", json=event, timeout=30)
                assert r.status_code == 202, r.text
                receipts.append(r.json())
        expected = rm.expected_aggregates(broker.bootstrap)
        assert len(expected) == 12 + 6
        wait_until(lambda: every_key_matches(pods, expected), 60, interval=0.5,
                   what=f"every key through both gateways\n{pods[0].logs_tail()}")
        yield broker, pods, receipts, expected
    finally:
        for pod in pods:
            pod.stop()
        broker.stop()


def test_publish_receipts_name_the_record_on_its_murmur2_partition(pair):
    broker, _, receipts, _ = pair
    records = {(p, o): (k, v) for p, o, k, v in rm.read_topic(broker.bootstrap, "input", timeout=30)}
    assert len(records) == len(EVENTS)
    for event, receipt in zip(EVENTS, receipts):
        assert_schema(receipt, "PublishReceipt")
        key = event["id"] if event["type"] == rm.CHASER else event["billId"]
        assert receipt["topic"] == "input" and receipt["partition"] == rm.partition_for(key, PARTITIONS), receipt
        got_key, value = records[(receipt["partition"], receipt["offset"])]
        want = dict(event, previous=event.get("previous")) if event["type"] == rm.CHASER else event
        assert got_key == key.encode() and rm.decode(value) == want


def test_every_aggregate_through_both_gateways_is_the_reference_and_matches_openapi(pair):
    _, pods, _, expected = pair
    # The rule edges are in the data: a changed bill (errored), a double failure (errored), clean retries.
    errored = {k for (s, k), v in expected.items() if s == "billing" and v["errored"]}
    assert errored == {f"bill-{i}" for i in range(6) if i % 3 == 0 or i % 2 == 1}
    for pod in pods:
        for (store, key), value in expected.items():
            r = get(pod, store, key)
            assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
            assert r.json() == value
            assert_schema(r.json(), "ChaserAggregate" if store == "chaser" else "BillAggregate")
        r = get(pod, "chaser", "no-such-key")
        assert r.status_code == 404
        assert_schema(r.json(), "Error")


def test_listings_local_and_cluster(pair):
    _, pods, _, expected = pair
    for store in ("chaser", "billing"):
        want = sorted((k for s, k in expected if s == store), key=str.encode)
        for pod in pods:
            local_endpoint, owners = routing_table(pod.socket_path)
            mine = [k for k in want if owners[rm.partition_for(k, PARTITIONS)] == local_endpoint]
            page = requests.get(f"{pod.api}/{store}", timeout=10).json()
            assert_schema(page, "KeyPage")
            assert page == {"keys": mine, "next": None}, pod.host
            keys, cursor = [], None
            while True:
                params = {"scope": "cluster", "limit": 5} | ({"cursor": cursor} if cursor else {})
                page = requests.get(f"{pod.api}/{store}", params=params, timeout=10).json()
                assert_schema(page, "KeyPage")
                keys += page["keys"]
                cursor = page["next"]
                if cursor is None:
                    break
            assert keys == want


def forwarded_ok(pod) -> float:
    text = requests.get(f"{pod.health}/hams/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('gateway_forwarded_requests_total{outcome="ok"}'))


def test_forwarding_and_misdirected_between_real_pods(pair):
    _, pods, _, expected = pair
    a, b = pods
    for store in ("chaser", "billing"):
        # A key pod b owns, asked through pod a: forwarded, the owner's exact body comes back.
        remote = next(k for s, k in expected if s == store and not key_owner(a.socket_path, k)[2])
        before = forwarded_ok(a)
        r = get(a, store, remote)
        assert r.status_code == 200 and r.json() == expected[(store, remote)]
        assert forwarded_ok(a) > before
        # Marked as forwarded but sent to the pod that does not own it: 421, never an answer.
        r = get(a, store, remote, headers={"X-K8s-Micro-Forwarded": "1"})
        assert r.status_code == 421
        assert_schema(r.json(), "Error")
        # To the owner, a marked request is served.
        r = get(b, store, remote, headers={"X-K8s-Micro-Forwarded": "1"})
        assert r.status_code == 200 and r.json() == expected[(store, remote)]


def test_schemathesis_against_the_real_pod(pair, tmp_path):
    """Every documented operation against a real pod (last in this module: it publishes events)."""
    _, pods, _, _ = pair
    cmd = [str(ROOT / ".venv" / "bin" / "schemathesis"), "run", str(ROOT / "openapi" / "openapi.json"),
           "--url", pods[0].api, "--checks", "all", "--max-examples", "30", "--workers", "1", "--seed", "1",
           "--generation-database", "none"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert all(p.procs["gateway"].poll() is None and p.procs["ingestor"].poll() is None for p in pods)


# --- restoring → 503 --------------------------------------------------------------------------------------


def test_a_partition_in_restore_answers_503_with_retry_after(tansu, pod_factory):
    """A changelog partition of many records (uncommitted work, skipped but read) keeps its partition in
    restore; the broker is frozen (SIGSTOP) the moment the restore shows, so the window stays open while the
    gateway is asked. The restore metrics move, and the pod serves once the broker thaws."""
    import confluent_kafka

    tansu.create_topic("input", PARTITIONS)
    changelog = "k8s-micro-chaser-changelog"
    tansu.create_topic(changelog, PARTITIONS, config="cleanup.policy=compact")
    key = "held-key"
    partition = rm.partition_for(key, PARTITIONS)
    producer = confluent_kafka.Producer({"bootstrap.servers": tansu.bootstrap, "linger.ms": 50,
                                         "queue.buffering.max.messages": 1_000_000})
    value = rm.encode(rm.new_aggregate("chaser"))
    n = 200_000
    for i in range(n):
        while True:
            try:
                producer.produce(changelog, key=f"k{i}".encode(), value=value, partition=partition,
                                 headers={"k8s-micro-input-offset": str(i)})
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    pod = pod_factory(tansu)
    pod.start_ingestor()
    pod.start_gateway()

    def restoring() -> bool:
        status, body = socket_frames.call(pod.socket_path, socket_frames.METRICS, timeout=3)
        return status == 0 and any(line.startswith("partitions_restoring ") and float(line.split()[-1]) > 0
                                   for line in body[4:].decode().splitlines())

    wait_until(restoring, 90, interval=0.01, what=f"the partition in restore\n{pod.logs_tail()}")
    tansu.proc.send_signal(signal.SIGSTOP)
    try:
        r = get(pod, "chaser", key)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
        assert_schema(r.json(), "Error")
        assert requests.get(f"{pod.health}/hams/ready", timeout=10).status_code == 429
        page = requests.get(f"{pod.api}/chaser", timeout=10)  # a listing missing that partition: refused
        assert page.status_code == 503
    finally:
        tansu.proc.send_signal(signal.SIGCONT)
    pod.wait_ready(120)
    assert get(pod, "chaser", key).status_code == 404  # every restored record was uncommitted work: skipped
    m = socket_metrics(pod.socket_path)
    assert m.get('restore_records_total{store="chaser"}', 0) >= n
    assert m.get("partitions_restoring") == 0
    assert m.get(f'restore_remaining_records{{store="chaser",partition="{partition}"}}') == 0
