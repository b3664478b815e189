"""Documented promises that had no test: the exec probe run for real, SIGHUP reload, restore's two recovery
branches, schema-registry mode end to end, and the documented metrics asserted by value or by change.

Expected state comes from reference_model.py. About 2 minutes in all.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from prometheus_client.parser import text_string_to_metric_families

import reference_model as rm
from conftest import ROOT, wait_until
from test_ingestor_runtime import (
    assert_same_state, chaser, dump_store, generate, ingestor_pod, produce_events, socket_metrics, socket_ready,
    start_ingestor, wait_exact,
)


def probe(pod, binaries, run_env, check: str) -> subprocess.CompletedProcess:
    pod.write_config()
    return subprocess.run([str(binaries.ingestor), "probe", check, "--config", str(pod.config_path)],
                          env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_exec_probe_alive_and_ready(tansu, pod_factory, binaries, run_env):
    """`k8s-micro-ingestor probe alive|ready` (the chart's exec liveness probe) against a real ingestor."""
    pod = ingestor_pod(pod_factory, tansu)
    # No ingestor: both fail, naming the socket.
    for check in ("alive", "ready"):
        out = probe(pod, binaries, run_env, check)
        assert out.returncode != 0 and pod.socket_path in out.stderr, out
    start_ingestor(pod)
    for check in ("alive", "ready"):
        out = probe(pod, binaries, run_env, check)
        assert out.returncode == 0 and f"{check}=true" in out.stdout, out
    assert pod.signal("ingestor", signal.SIGTERM) == 0
    out = probe(pod, binaries, run_env, "alive")
    assert out.returncode != 0


def test_sighup_reloads_the_log_section(tansu, pod_factory, binaries, run_env):
    """Both processes re-read the log section on SIGHUP: the ingestor's debug lines appear only after the
    level went to debug; the gateway's reload notice is already written in the new (JSON) format."""
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu).start()
    log = pod.log_path("ingestor")
    probe(pod, binaries, run_env, "alive")  # a socket client at info level: no debug line
    assert "socket client connected" not in log.read_text()
    pod.config["log"] = {"level": "debug", "format": "json"}
    pod.write_config()
    for name in ("ingestor", "gateway"):
        pod.procs[name].send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in log.read_text(), 30, what="ingestor reload")
    wait_until(lambda: "config reloaded" in pod.log_path("gateway").read_text(), 30, what="gateway reload")
    probe(pod, binaries, run_env, "alive")
    wait_until(lambda: "socket client connected" in log.read_text(), 30, what="an ingestor debug line")
    reload_line = next(line for line in pod.log_path("gateway").read_text().splitlines() if "config reloaded" in line)
    assert json.loads(reload_line[reload_line.index("{"):])["msg"] == "config reloaded", reload_line
    # A config that does not load keeps the running one (and says so).
    pod.config_path.write_text("log: [not, a, map\n")
    pod.procs["ingestor"].send_signal(signal.SIGHUP)
    wait_until(lambda: "config reload failed" in log.read_text(), 30, what="a failed reload reported")
    assert pod.procs["ingestor"].poll() is None and socket_ready(pod.socket_path)


def test_store_ahead_of_the_group_is_wiped_and_restored(tansu, pod_factory, binaries, run_env):
    """A local store whose checkpoint is ahead of the group's committed offsets (here: a new broker, so no
    committed offsets and an empty changelog) is wiped, never served: the state is exactly what the new
    broker's input gives."""
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    produce_events(pod, binaries, run_env, [chaser(n, f"old-{i}", 1000 + i, 10) for i in range(20) for n in "AB"])
    wait_until(lambda: (socket_metrics(pod.socket_path).get('store_keys{store="chaser"}') or 0) == 20, 30,
               what="20 keys stored")
    assert pod.signal("ingestor", signal.SIGTERM) == 0
    # The same state directory against a brand-new broker.
    tansu.stop()
    from conftest import Tansu

    fresh = Tansu(pod.workdir)
    try:
        fresh.create_topic("input", 4)
        pod.config["kafka"]["bootstrapServers"] = fresh.bootstrap
        start_ingestor(pod)
        produce_events(pod, binaries, run_env, [chaser("N", "new-1", 5, 5), chaser("A", "old-3", 1, 1)])
        expected = rm.expected_aggregates(fresh.bootstrap)
        wait_exact(pod, expected, 60)
        assert "local store ahead of committed offsets" in pod.log_path("ingestor").read_text()
        assert pod.signal("ingestor", signal.SIGTERM) == 0
        assert_same_state(dump_store(pod, binaries, run_env), expected)
    finally:
        fresh.stop()


def test_changelog_ending_before_the_checkpoint_means_a_full_replay(tansu, pod_factory, binaries, run_env):
    """Pod A's checkpoint points far into a long changelog; the broker is replaced by one whose group has
    committed further input (from pod B) but whose changelog is shorter than A's checkpoint. A must wipe and
    replay everything, and end with exactly the new broker's state."""
    from conftest import Tansu

    a = ingestor_pod(pod_factory, tansu, cacheMaxEntries=0)  # every update → a changelog record
    start_ingestor(a)
    produce_events(a, binaries, run_env, [chaser("A", f"k{i % 7}", i, i) for i in range(300)])
    wait_until(lambda: socket_metrics(a.socket_path).get("chaser_received_total") == 300, 60, what="300 folded")
    assert a.signal("ingestor", signal.SIGTERM) == 0
    tansu.stop()

    fresh = Tansu(a.workdir)
    try:
        fresh.create_topic("input", 4)
        # B (its own state) folds more input into fewer changelog records (the cache folds repeats).
        b = pod_factory(fresh, name="podb", kafka={"commitInterval": 100})
        start_ingestor(b)
        produce_events(b, binaries, run_env, [chaser("B", f"k{i % 7}", i, i) for i in range(400)])
        expected = rm.expected_aggregates(fresh.bootstrap)
        wait_exact(b, expected, 60)
        assert b.signal("ingestor", signal.SIGTERM) == 0
        a.config["kafka"]["bootstrapServers"] = fresh.bootstrap
        start_ingestor(a)
        wait_exact(a, expected, 60)
        text = a.log_path("ingestor").read_text()
        branch = "changelog ends before the local checkpoint" in text
        ahead = "local store ahead of committed offsets" in text
        assert branch or ahead, "neither recovery branch ran"
        assert a.signal("ingestor", signal.SIGTERM) == 0
        assert_same_state(dump_store(a, binaries, run_env), expected)
        assert branch, "the store was wiped as 'ahead' instead (the changelog-shorter branch did not run)"
    finally:
        fresh.stop()


# --- schema registry mode ----------------------------------------------------------------------------------


class Registry:
    """The Confluent REST calls the ingestor uses: register a schema under a subject, fetch a schema by id."""

    def __init__(self):
        self.schemas: list[str] = []
        self.subjects: dict[str, int] = {}
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, doc: dict):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # /subjects/{subject}/versions
                parts = self.path.split("/")
                doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if len(parts) != 4 or parts[1] != "subjects" or parts[3] != "versions":
                    return self._answer(404, {"error_code": 404, "message": "not found"})
                schema = json.dumps(json.loads(doc["schema"]), sort_keys=True)
                if schema not in registry.schemas:
                    registry.schemas.append(schema)
                sid = 100 + registry.schemas.index(schema)
                registry.subjects[requests.utils.unquote(parts[2])] = sid
                self._answer(200, {"id": sid})

            def do_GET(self):  # /schemas/ids/{id}
                parts = self.path.split("/")
                if len(parts) == 4 and parts[1:3] == ["schemas", "ids"] and parts[3].isdigit():
                    i = int(parts[3]) - 100
                    if 0 <= i < len(registry.schemas):
                        return self._answer(200, {"schema": registry.schemas[i]})
                self._answer(404, {"error_code": 40403, "message": "Schema not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, topic: str = "input") -> dict[str, int]:
        return {name: self.subjects[f"{topic}-{name}"] for name in rm.EMBEDDED_IDS}

    def stop(self):
        self.server.shutdown()


def test_schema_registry_mode_end_to_end(tansu, pod_factory, binaries, run_env):
    """The ingestor registers the six schemas under `<topic>-<full name>`, uses the registry's ids on the
    wire, and decodes a record written with an evolved writer schema it has to fetch by id."""
    registry = Registry()
    try:
        pod = ingestor_pod(pod_factory, tansu)
        pod.config["schemaRegistry"] = {"url": registry.url}
        start_ingestor(pod)
        ids = registry.ids()
        assert sorted(ids.values()) == list(range(100, 106)) and set(ids.values()).isdisjoint({1, 2, 3, 4, 5, 6})
        generate(pod, binaries, run_env, "--total", "400", "--rate", "0", "--keys", "20", "--seed", "9")
        # A producer with an evolved Chaser (one more field, with a default), registered by that producer.
        evolved = json.loads((ROOT / "schemas" / "com.polecatworks.chaser.Chaser.avsc").read_text())
        evolved["fields"].append({"name": "firmware", "type": "string", "default": ""})
        registry.schemas.append(json.dumps(evolved, sort_keys=True))
        evolved_id = 100 + len(registry.schemas) - 1
        codec = rm.Codec(ids=ids, writer_schemas={evolved_id: evolved})
        import io
        import struct

        import confluent_kafka
        import fastavro

        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(evolved, named_schemas={}),
                                   {"name": "E", "id": "evolved-1", "sent": 7, "ttl": 8, "previous": None,
                                    "firmware": "v2"})
        producer = confluent_kafka.Producer({"bootstrap.servers": tansu.bootstrap, "partitioner": "murmur2_random"})
        producer.produce("input", key=b"evolved-1", value=b"\x00" + struct.pack(">i", evolved_id) + body.getvalue())
        assert producer.flush(10) == 0
        del producer
        records = rm.read_topic(tansu.bootstrap, "input", timeout=30)
        assert {struct.unpack(">i", v[1:5])[0] for _, _, _, v in records} <= set(ids.values()) | {evolved_id}
        good = [(k.decode(), codec.decode(v)) for _, _, k, v in records]
        expected = rm.flat(rm.fold(good))
        assert expected[("chaser", "evolved-1")]["names"] == ["E"]
        wait_exact(pod, expected, 60)
        # Output values carry the registry's Aggregate id.
        out = rm.read_topic(tansu.bootstrap, "chaser", timeout=30)
        assert out and all(struct.unpack(">i", v[1:5])[0] == ids[rm.AGGREGATE] for _, _, _, v in out)
        assert pod.signal("ingestor", signal.SIGTERM) == 0
    finally:
        registry.stop()


# --- metrics ------------------------------------------------------------------------------------------------


def families(url: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=10).text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(fams: dict, name: str, **labels) -> float:
    return sum(s.value for s in fams.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_documented_metrics_move_with_the_work(tansu, pod_factory, binaries, run_env):
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu, kafka={"commitInterval": 100}).start()
    metrics_url = f"{pod.health}/hams/metrics"
    before = families(metrics_url)
    events = [chaser("A", f"m-{i}", 1000 + i, 10) for i in range(30)]
    for e in events:
        assert requests.post(f"{pod.api}/events", json=e, timeout=30).status_code == 202
    expected = rm.expected_aggregates(tansu.bootstrap)
    for (store, key), agg in expected.items():
        wait_until(lambda: requests.get(f"{pod.api}/{store}/{key}", timeout=5).json() == agg, 30, what=key)
    requests.get(f"{pod.api}/chaser/nope", timeout=5)

    def settled():
        f = families(metrics_url)
        # store_keys is sampled after commits: wait for it too.
        done = value(f, "records_produced_total", topic="chaser") >= 30 and value(f, "store_keys", store="chaser") == 30
        return f if done else None

    after = wait_until(settled, 60, interval=0.5, what="the output records and stored keys counted")
    # Ingestor: by value where the work is known, by change otherwise.
    assert value(after, "records_consumed_total") == 30
    assert value(after, "chaser_received_total") == 30
    assert value(after, "records_produced_total", topic="k8s-micro-chaser-changelog") >= 30
    assert value(after, "commit_latency_seconds_count") > value(before, "commit_latency_seconds_count")
    assert value(after, "transaction_aborts_total") == 0
    assert value(after, "partitions_restoring") == 0 and value(after, "partitions_assigned") == 4
    assert value(after, "store_keys", store="chaser") == 30
    # Gateway: requests by route and status, counted exactly.
    assert value(after, "http_requests_total", status="202") - value(before, "http_requests_total", status="202") == 30
    assert value(after, "http_requests_total", status="404") - value(before, "http_requests_total", status="404") >= 1
    routes = {s.labels.get("route") for s in after.get("http_requests_total", [])}
    assert any(r and "chaser" in r for r in routes) and any(r and "events" in r for r in routes), routes
    # Process metrics of both processes: a live RSS, open fds and a start time for each.
    for process in ("gateway", "ingestor"):
        for name in ("process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
                     "process_threads"):
            assert value(after, name, process=process) > 0, (process, name)
        assert value(after, "process_cpu_seconds_total", process=process) >= \
            value(before, "process_cpu_seconds_total", process=process)


# --- graceful leave -----------------------------------------------------------------------------------------


def test_graceful_leave_withdraws_the_claim_and_hands_partitions_over(tansu, pod_factory, binaries, run_env):
    """A SIGTERM'd ingestor's last routing claim is empty (its partitions lose their owner at once, not after
    the claim's 10 s expiry); the survivor takes every partition and serves every key exactly. (That the
    LeaveGroup spares the session timeout is not asserted: on tansu every join is held for half the session
    timeout, so the two cannot be told apart without timing.)"""
    a = ingestor_pod(pod_factory, tansu)
    b = pod_factory(tansu, name="podb", kafka={"commitInterval": 100})
    start_ingestor(a)
    start_ingestor(b)
    wait_until(lambda: socket_metrics(a.socket_path).get("partitions_assigned", 0) >= 1
               and socket_metrics(b.socket_path).get("partitions_assigned", 0) >= 1
               and socket_ready(a.socket_path) and socket_ready(b.socket_path), 90, interval=0.5,
               what="both members hold partitions")
    generate(a, binaries, run_env, "--total", "600", "--rate", "0", "--keys", "30", "--seed", "4")
    expected = rm.expected_aggregates(tansu.bootstrap)
    assert b.signal("ingestor", signal.SIGTERM, wait=30) == 0
    b_endpoint = f"127.0.0.1:{b.config['gateway']['port']}"
    claims = [json.loads(v) for _, _, _, v in rm.read_topic(tansu.bootstrap, "k8s-micro-routing", timeout=30) if v]
    mine = [c for c in claims if c.get("endpoint") == b_endpoint]
    assert any(c["partitions"] for c in mine) and mine[-1]["partitions"] == [], mine[-3:]
    wait_until(lambda: socket_metrics(a.socket_path).get("partitions_assigned") == 4, 60, interval=0.5,
               what=f"a takes b's partitions after b left\n{a.logs_tail()}")
    wait_exact(a, expected, 60)
    assert a.signal("ingestor", signal.SIGTERM, wait=30) == 0
