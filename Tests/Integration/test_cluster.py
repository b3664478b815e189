"""Three pods against one tansu broker (docs/routing.md): every key through every gateway, kill -9 of a pod with no
wrong value ever served, its restart, and `scope=cluster` listings.

Pods run on 127.0.0.2, .3 and .4 with the same ports (as pods on their own IPs); the broker on 127.0.0.1.
Expected aggregates come from reference_model.py (the input topic read back and folded independently).
How long recovery takes is printed, not asserted (a figure for the benchmarks, not a test).
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests

import reference_model as rm
import socket_frames
from conftest import ROOT, wait_until

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
PARTITIONS = 6


def _port_free_on_all(hosts: list[str]) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts[1:]:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no port free on every pod address")


def routing_table(path: str) -> tuple[str, dict[int, str]]:
    """The ingestor's routing table over its socket (op 6): (local endpoint, partition → endpoint)."""
    status, body = socket_frames.call(path, socket_frames.ROUTING_TABLE, timeout=3)
    assert status == 0, f"routingTable status {status}"
    i = 12  # epoch u64, partitionCount i32
    n = struct.unpack(">I", body[i : i + 4])[0]
    local = body[i + 4 : i + 4 + n].decode()
    i += 4 + n
    (count,) = struct.unpack(">I", body[i : i + 4])
    i += 4
    owners = {}
    for _ in range(count):
        (p,) = struct.unpack(">i", body[i : i + 4])
        n = struct.unpack(">I", body[i + 4 : i + 8])[0]
        owners[p] = body[i + 8 : i + 8 + n].decode()
        i += 8 + n
    return local, owners


def url(pod, store: str, key: str) -> str:
    return f"{pod.api}/{store}/{quote(key, safe='')}"


_local = threading.local()


def _get(u: str) -> requests.Response:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session.get(u, timeout=10)


def all_readable(pods, expected, pool: ThreadPoolExecutor) -> bool:
    """Every key through every given gateway, right value (the reads run 8 at a time)."""
    items = [(url(pod, store, key), value) for pod in pods for (store, key), value in expected.items()]
    answers = pool.map(lambda item: _get(item[0]), items)
    return all(r.status_code == 200 and r.json() == value for r, (_, value) in zip(answers, items))


def readable_since(pods, expected, pool: ThreadPoolExecutor, timeout: float, what: str) -> float:
    """Waits for a full pass where every read succeeds; returns the monotonic time that pass started."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        try:
            if all_readable(pods, expected, pool):
                return started
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def key_owner(path: str, key: str) -> tuple[int, str | None, bool]:
    """The ingestor's `owner` answer over its socket (op 5): (partition, endpoint, is local)."""
    status, body = socket_frames.call(path, socket_frames.OWNER, socket_frames.string(key), timeout=3)
    assert status == 0, f"owner status {status}"
    (partition,) = struct.unpack(">i", body[:4])
    endpoint, i = None, 5
    if body[4] == 1:
        n = struct.unpack(">I", body[5:9])[0]
        endpoint, i = body[9 : 9 + n].decode(), 9 + n
    return partition, endpoint, body[i] == 1


def socket_requests(pod) -> float:
    """The ingestor's socket_requests_total, read over its own socket (the metrics op, not through the gateway)."""
    status, body = socket_frames.call(pod.socket_path, socket_frames.METRICS, timeout=3)
    assert status == 0
    text = body[4:].decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("socket_requests_total"))


class BackgroundCheck:
    """A checker thread over the gateways in `pods` (changed while it runs) that collects what it finds `wrong`."""

    def __init__(self):
        self.pods: list = []
        self.wrong: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        raise NotImplementedError


class Lister(BackgroundCheck):
    """Lists a store cluster-wide (scope=cluster, small pages) through the given gateways over and over during
    rebalances. A page may be refused (503: a pod restores, a partition is between owners) and is then asked
    again; every listing that completes must be exactly the expected key set: never silently partial. A
    request that gets no answer at all (refused connection, timeout) is wrong too: the listed pods are up."""

    def __init__(self, store: str, want: list[str]):
        super().__init__()
        self.store, self.want = store, want
        self.complete = 0
        self.refused = 0

    def _run(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                for pod in list(self.pods):
                    keys, cursor = [], None
                    while not self.stop.is_set():
                        params = {"scope": "cluster", "limit": 9} | ({"cursor": cursor} if cursor else {})
                        try:
                            r = s.get(f"{pod.api}/{self.store}", params=params, timeout=10)
                        except requests.RequestException as e:
                            self.wrong.append(f"{pod.host}: no answer: {e!r}")
                            break
                        if r.status_code in (502, 503, 504):
                            self.refused += 1
                            time.sleep(0.05)
                            continue
                        if r.status_code != 200:
                            self.wrong.append(f"{pod.host}: {r.status_code} {r.text}")
                            break
                        page = r.json()
                        keys += page["keys"]
                        cursor = page["next"]
                        if cursor is None:
                            self.complete += 1
                            if keys != self.want:
                                missing = sorted(set(self.want) - set(keys))
                                self.wrong.append(f"{pod.host}: {len(keys)} keys, missing {missing[:5]}")
                            break


def cluster_keys(pod, store: str, limit: int) -> list[str]:
    keys, cursor = [], None
    for _ in range(10_000):
        params = {"scope": "cluster", "limit": limit} | ({"cursor": cursor} if cursor else {})
        r = requests.get(f"{pod.api}/{store}", params=params, timeout=5)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["keys"]) <= limit
        keys += page["keys"]
        cursor = page["next"]
        if cursor is None:
            return keys
    raise AssertionError("listing never ended")


class Watcher(BackgroundCheck):
    """Reads every key through the given gateways in a loop; any 200 must be the expected value, and any
    other answer must be 503/504. No answer at all (refused, timed out) is wrong: the listed pods are up."""

    def __init__(self, expected: dict):
        super().__init__()
        self.expected = expected
        self.reads = 0

    def _run(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                for pod in list(self.pods):
                    for (store, key), value in self.expected.items():
                        if self.stop.is_set():
                            return
                        try:
                            r = s.get(url(pod, store, key), timeout=10)
                        except requests.RequestException as e:
                            self.wrong.append(f"{pod.host} {store}/{key}: no answer: {e!r}")
                            continue
                        self.reads += 1
                        if r.status_code == 200:
                            if r.json() != value:
                                self.wrong.append(f"{pod.host} {store}/{key}: {r.text} != {value}")
                        elif r.status_code not in (503, 504):
                            self.wrong.append(f"{pod.host} {store}/{key}: {r.status_code} {r.text}")


def test_three_pods(tansu, pod_factory, binaries, run_env):
    tansu.create_topic("input", PARTITIONS)
    port, health = _port_free_on_all(HOSTS), _port_free_on_all(HOSTS)
    pods = [
        pod_factory(
            tansu, host=h, name=f"pod{i}", gateway={"port": port, "healthPort": health},
            kafka={"commitInterval": 100,
                   "properties": {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500}},
        )
        for i, h in enumerate(HOSTS)
    ]
    for pod in pods:
        pod.start_ingestor()
        pod.start_gateway()
    for pod in pods:
        pod.wait_ready(60)
    endpoints = {f"{h}:{port}" for h in HOSTS}

    def spread(among: list) -> bool:
        want = {f"{p.host}:{port}" for p in among}
        for pod in among:
            _, owners = routing_table(pod.socket_path)
            if len(owners) != PARTITIONS or set(owners.values()) != want:
                return False
        return all(requests.get(f"{p.health}/hams/ready", timeout=1).status_code == 200 for p in among)

    wait_until(lambda: spread(pods), 60, interval=0.3, what="partitions spread over three pods")

    # A known set of events; expected aggregates per key from the reference model over the input topic.
    pods[0].write_config()
    out = subprocess.run(
        [str(binaries.ingestor), "generate", "--config", str(pods[0].config_path), "--total", "3000", "--rate", "0",
         "--keys", "40", "--seed", "3"],
        env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    expected = rm.expected_aggregates(tansu.bootstrap)
    stores = {s for s, _ in expected}
    assert stores == {"chaser", "billing"} and len(expected) >= 40

    pool = ThreadPoolExecutor(8)
    readable_since(pods, expected, pool, 60, "every key through every pod")

    # Issue 6: a key another pod owns goes from pod 0's gateway straight to the owner's gateway (the gateway's
    # cached routing table), not through pod 0's ingestor first, and gets the owner's value.
    a = pods[0]
    remote = next(
        (sk, v) for sk, v in expected.items() if not key_owner(a.socket_path, sk[1])[2])
    (store, key), value = remote

    def skips_its_ingestor() -> bool:  # the gateway's cached table (refreshed every second) knows the owner
        before = socket_requests(a)
        for _ in range(10):
            _get(url(a, store, key))
        return socket_requests(a) - before < 5

    wait_until(skips_its_ingestor, 30, interval=0.5, what="pod 0's gateway forwards straight to the owner")
    before = socket_requests(a)
    with requests.Session() as s:
        for _ in range(200):
            r = s.get(url(a, store, key), timeout=3)
            assert r.status_code == 200 and r.json() == value
    skipped = socket_requests(a) - before
    assert skipped < 50, f"{skipped} requests reached pod 0's ingestor for 200 lookups of another pod's key"
    # Many lookups in flight at once share a few pipelined connections per peer: each answer must still be its
    # own key's (answers are matched to requests by order).
    with ThreadPoolExecutor(32) as wide:
        for _ in range(3):
            assert all_readable([a], expected, wide), "a concurrent lookup through pod 0 got a wrong answer"
    # The owner re-checks: a marked request to a pod that does not own the key is refused, never answered.
    wrong_pod = next(p for p in pods if p.host != a.host and f"{p.host}:{port}" != key_owner(a.socket_path, key)[1])
    r = requests.get(url(wrong_pod, store, key), headers={"X-K8s-Micro-Forwarded": "1"}, timeout=3)
    assert r.status_code == 421

    # The cluster listing: every key of the store from every gateway, paginated.
    for store in stores:
        want = sorted(k for s_, k in expected if s_ == store)
        for pod in pods:
            got = cluster_keys(pod, store, limit=7)
            assert got == sorted(want, key=str.encode), f"{pod.host} {store}"
            local = requests.get(f"{pod.api}/{store}", timeout=5).json()
            assert local["next"] is None and 0 < len(local["keys"]) < len(want)  # default scope: local keys only

    # kill -9 one pod (both processes): the other two serve every key again, never a wrong value.
    watcher = Watcher(expected)  # a second client, reading serially all along
    watcher.pods = pods[:2]
    watcher.thread.start()
    lister = Lister("chaser", sorted((k for s_, k in expected if s_ == "chaser"), key=str.encode))
    lister.pods = pods[:2]
    lister.thread.start()
    try:
        victim = pods[2]
        killed_at = time.monotonic()
        assert victim.signal("gateway", signal.SIGKILL) == -signal.SIGKILL
        assert victim.signal("ingestor", signal.SIGKILL) == -signal.SIGKILL
        recovered_s = readable_since(pods[:2], expected, pool, 90, "every key through the survivors") - killed_at
        wait_until(lambda: spread(pods[:2]), 20, interval=0.3, what="partitions over the two survivors")
        for store in stores:
            assert cluster_keys(pods[0], store, limit=11) == sorted(
                (k for s_, k in expected if s_ == store), key=str.encode)

        # Restart it on the same state directory: partitions spread again; every key through all three.
        victim.start_ingestor()
        victim.start_gateway()
        victim.wait_ready(60)
        watcher.pods = pods
        lister.pods = pods
        wait_until(lambda: spread(pods), 60, interval=0.3, what=f"partitions spread again\n{victim.logs_tail()}")
        local, owners = routing_table(victim.socket_path)
        assert local == f"{victim.host}:{port}" and local in owners.values()
        readable_since(pods, expected, pool, 30, "every key through the three pods")
        for store in stores:
            want = sorted((k for s_, k in expected if s_ == store), key=str.encode)
            for pod in pods:
                assert cluster_keys(pod, store, limit=5) == want, f"{pod.host} {store}"
        # A few more full passes of both checkers through all three after the move settled.
        reads, complete = watcher.reads, lister.complete
        wait_until(lambda: watcher.reads > reads + 3 * len(expected) and lister.complete > complete + 3, 60,
                   interval=0.2, what="the checkers read through the three pods")
    finally:
        watcher.stop.set()
        lister.stop.set()
        watcher.thread.join(10)
        lister.thread.join(10)
        pool.shutdown()
    assert not watcher.wrong, f"{len(watcher.wrong)} wrong answers, e.g. {watcher.wrong[:3]}"
    assert not lister.wrong, f"{len(lister.wrong)} partial or failed cluster listings, e.g. {lister.wrong[:3]}"
    metrics = requests.get(f"{pods[0].health}/hams/metrics", timeout=2).text
    misdirected = [line for line in metrics.splitlines() if 'outcome="misdirected"' in line]
    print(f"recovered after kill -9 in {recovered_s:.1f} s; {watcher.reads} reads during the transitions; "
          f"{lister.complete} complete cluster listings, {lister.refused} pages refused (503); "
          f"pod 0 forwarded-then-421: {misdirected}")
    # Each ingestor advertises its own pod's endpoint, and the routing tables name exactly the three pods.
    for pod in pods:
        local, owners = routing_table(pod.socket_path)
        assert local == f"{pod.host}:{port}" and set(owners.values()) == endpoints, (pod.host, local, owners)
