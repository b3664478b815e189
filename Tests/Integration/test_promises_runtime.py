"""Runtime promises of the docs, caused for real: a stalled gateway loop fails its liveness probe (a timeout,
then 406), the record cache evicts past its hot-key bound and back-pressures at `cacheMaxEntries`, and the
ingestor's abort/rewind and fatal paths keep state exact.

Expected state comes from reference_model.py. About 70 s in all.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests

import reference_model as rm
from conftest import wait_until
from faultkit import frozen
from test_ingestor_runtime import (
    assert_same_state, chaser, dump_store, ingestor_pod, produce_events, socket_metrics, start_generator,
    start_ingestor, wait_exact,
)

STALL_S = 6.5  # the gateway's heartbeat goes stale after 5 s


def alive(pod, timeout: float) -> requests.Response:
    return requests.get(f"{pod.health}/hams/alive", timeout=timeout)


def test_stalled_gateway_loop_fails_liveness(tansu, pod_factory):
    """A stalled loop answers no probe (the probe times out: a failure to Kubernetes); once it runs again,
    /hams/alive answers 406 naming the loop heartbeat, then 200 again."""
    pod = pod_factory(tansu)
    pod.start_gateway()
    wait_until(lambda: alive(pod, 1).status_code == 200, 30, what="gateway alive")
    queued: dict[str, requests.Response | Exception] = {}

    def ask() -> None:
        try:
            queued["answer"] = alive(pod, 60)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            queued["answer"] = e

    with frozen(pod.procs["gateway"]):
        # A probe with the chart's 2 s timeout gets no answer while the loop is stalled.
        with pytest.raises(requests.exceptions.Timeout):
            alive(pod, 2)
        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(STALL_S - 2)  # the fault itself: the loop stays stalled past the 5 s threshold
    asker.join(60)
    answer = queued["answer"]
    assert isinstance(answer, requests.Response), answer
    body = answer.json()
    assert answer.status_code == 406 and body["valid"] is False, (answer.status_code, body)
    assert {d["name"]: d["valid"] for d in body["detail"]} == {"loop-heartbeat": False, "watchdog": True}, body
    wait_until(lambda: alive(pod, 2).status_code == 200, 60, interval=0.5, what="alive again after the stall")
    assert alive(pod, 2).json()["valid"] is True


HOT_KEYS = 8_192  # StreamSettings.hotKeys
CACHE_MAX = 200


def test_cache_evicts_past_hot_keys_and_back_pressures(tansu, pod_factory, binaries, run_env):
    """More keys than the record cache keeps: clean entries are evicted (and a key seen again after its
    eviction folds onto its LMDB value); with commits not due for 10 minutes, `cacheMaxEntries` alone forces
    them. State is exact key by key."""
    keys = HOT_KEYS + 1_000
    pod = ingestor_pod(pod_factory, tansu, cacheMaxEntries=CACHE_MAX, commitInterval=600_000)
    start_ingestor(pod)
    first = [chaser("A", f"k-{i}", 1000 + i, 10) for i in range(keys)]
    produce_events(pod, binaries, run_env, first)
    wait_until(lambda: socket_metrics(pod.socket_path).get("records_consumed_total", 0) >= keys, 120,
               interval=0.5, what=f"first pass consumed\n{pod.logs_tail()}")
    wait_until(lambda: socket_metrics(pod.socket_path).get("record_cache_evictions_total", 0) > 0, 60,
               interval=0.5, what="evictions past the hot-key bound")
    # No commit is due for 10 minutes: only the bound forces them, each epoch at most CACHE_MAX keys (the last
    # partial one waits for the stop, the one before it may still be in flight).
    forced = keys // CACHE_MAX - 2
    wait_until(lambda: socket_metrics(pod.socket_path).get("commits_total", 0) >= forced, 60, interval=0.5,
               what=f"{forced} commits forced by cacheMaxEntries, got "
                    f"{socket_metrics(pod.socket_path).get('commits_total')}")
    # The oldest produced keys are the evicted ones: a second event for them reads LMDB.
    again = [chaser("B", f"k-{i}", 900_000 + i, 20, previous=1) for i in range(500)]
    produce_events(pod, binaries, run_env, again)
    total = keys + len(again)
    wait_until(lambda: socket_metrics(pod.socket_path).get("records_consumed_total", 0) >= total, 120,
               interval=0.5, what="second pass consumed")
    # Every folded record is a cache hit or a miss; every first sight of a key and every evicted key seen
    # again is a miss.
    metrics = socket_metrics(pod.socket_path)
    hits, misses = metrics.get("record_cache_hits_total", 0), metrics.get("record_cache_misses_total", 0)
    assert hits + misses == total and misses >= keys, (hits, misses, total)
    # Between commits, each miss past the bound evicts one clean entry at once (not only after the next commit):
    # new keys that leave the collecting epoch short of CACHE_MAX raise the evictions with no commit.
    time.sleep(2)  # the epoch in flight, if any, is applied
    before = socket_metrics(pod.socket_path)
    fresh = 50
    assert (total % CACHE_MAX) + fresh < CACHE_MAX  # one dirty key per record: no commit is forced
    produce_events(pod, binaries, run_env, [chaser("C", f"n-{i}", 950_000 + i, 30) for i in range(fresh)])
    wait_until(lambda: socket_metrics(pod.socket_path).get("record_cache_evictions_total", 0)
               >= before.get("record_cache_evictions_total", 0) + fresh, 60, interval=0.5,
               what=f"{fresh} evictions by misses between commits")
    assert socket_metrics(pod.socket_path).get("commits_total") == before.get("commits_total")
    # The last (partial) epoch commits on the graceful stop.
    assert pod.signal("ingestor", wait=30) == 0
    assert_same_state(dump_store(pod, binaries, run_env), rm.expected_aggregates(tansu.bootstrap))


def consuming(pod, more_than: float = 300) -> None:
    start = socket_metrics(pod.socket_path).get("records_consumed_total", 0)
    wait_until(lambda: socket_metrics(pod.socket_path).get("records_consumed_total", 0) > start + more_than, 60,
               interval=0.2, what=f"consumption under load\n{pod.logs_tail()}")


def restart_alone_and_check(pod, binaries, run_env, gen, bootstrap: str) -> None:
    assert gen.wait(120) == 0, gen.stderr.read()
    expected = rm.expected_aggregates(bootstrap)
    if pod.procs["ingestor"].poll() is not None:
        start_ingestor(pod)
    wait_exact(pod, expected)
    assert pod.signal("ingestor", signal.SIGTERM, wait=20) == 0
    assert_same_state(dump_store(pod, binaries, run_env), expected)


def test_lost_partitions_abort_drop_the_cache_and_rewind(tansu, pod_factory, binaries, run_env):
    """Frozen past its session timeout (6 s) under load, the ingestor's assignment is lost: it aborts its
    open transaction, drops the record cache and seeks back to the committed offsets. It keeps running and
    the state is exact."""
    pod = ingestor_pod(pod_factory, tansu)
    start_ingestor(pod)
    gen = start_generator(pod, binaries, run_env, "--total", "16000", "--rate", "2000", "--keys", "200",
                          "--seed", "11")
    consuming(pod)
    assert socket_metrics(pod.socket_path).get("transaction_aborts_total") == 0
    with frozen(pod.procs["ingestor"]):
        time.sleep(9)  # the fault itself: past session.timeout.ms
    wait_until(lambda: socket_metrics(pod.socket_path).get("transaction_aborts_total", 0) >= 1, 60, interval=0.5,
               what=f"an abort after the lost assignment\n{pod.logs_tail()}")
    aborts = [line for line in pod.log_path("ingestor").read_text().splitlines() if "aborting and rewinding" in line]
    assert aborts and "partitions lost" in aborts[0], pod.logs_tail()
    assert pod.procs["ingestor"].poll() is None, "an abort must not end the process"
    restart_alone_and_check(pod, binaries, run_env, gen, tansu.bootstrap)


def test_fenced_producer_exits_non_zero_and_restarts_exact(tansu, pod_factory, binaries, run_env):
    """A second instance with the same transactional.id fences the first one's producer: the first exits
    non-zero (fatal), and started again alone it serves exactly the reference state."""
    shared = {"commitInterval": 100, "properties": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                                                    "transactional.id": "k8s-micro-shared-txn"}}
    a = ingestor_pod(pod_factory, tansu, **shared)
    start_ingestor(a)
    gen = start_generator(a, binaries, run_env, "--total", "16000", "--rate", "2000", "--keys", "200",
                          "--seed", "13")
    consuming(a)
    b = pod_factory(tansu, name="podb", kafka=shared)
    start_ingestor(b)
    wait_until(lambda: a.procs["ingestor"].poll() is not None, 90, interval=0.5,
               what=f"the fenced ingestor exits\n{a.logs_tail()}")
    assert a.procs["ingestor"].returncode not in (0, None), a.procs["ingestor"].returncode
    log = a.log_path("ingestor").read_text()
    fatal = [line for line in log.splitlines() if "stream thread failed" in line]
    assert fatal and "(fatal)" in fatal[0] and "fenced by a newer instance" in log, a.logs_tail()
    # Only the stream's producer is transactional: the routing claim's producer ignores transactional.id.
    assert "announce failed" not in log, a.logs_tail()
    assert b.procs["ingestor"].poll() is None, b.logs_tail()
    assert gen.wait(120) == 0, gen.stderr.read()
    # B alone would go on; stop it so that A, started again, owns every partition (and B's epochs).
    assert b.signal("ingestor", signal.SIGTERM, wait=20) == 0
    restart_alone_and_check(a, binaries, run_env, gen, tansu.bootstrap)


