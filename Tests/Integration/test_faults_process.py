"""Process kills (issue 12), against a real broker and the real binaries; expected state from the independent
reference model (reference_model.py reads the input topic and folds it by the product's rules).

- the ingestor killed with SIGKILL 20 times at random moments (during start-up and restore as well as while
  processing) under a continuous generator, exactly_once_v2: each time it comes back, and at the end every
  key's served aggregate and the output topics' last values are exact, key by key;
- the gateway killed with SIGKILL in a loop while clients read: it comes back and answers each time, and the
  ingestor never notices (same process, no rebalance, consuming throughout; its socket server counts the
  gateway's reconnections).
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time

import requests

import statecheck
from conftest import ROOT, wait_until
from faultkit import kill9
from test_ingestor_runtime import socket_get, socket_metrics, socket_ready

# Short group timeouts: a killed member leaves the group after 3 s, and tansu holds a join for half of it.
FAST_GROUP = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500}


def start_generator(pod, total: int, rate: int, keys: int, seed: int) -> subprocess.Popen:
    pod.write_config()
    return subprocess.Popen(
        [str(pod.binaries.ingestor), "generate", "--config", str(pod.config_path), "--total", str(total),
         "--rate", str(rate), "--keys", str(keys), "--seed", str(seed)],
        env=pod.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def served_mismatches(pod, expected: dict) -> list:
    return [k for k, v in expected.items() if socket_get(pod.socket_path, k[0], k[1]) != v]


def test_ingestor_killed_20_times_under_load_stays_exact(tansu, pod_factory):
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu, kafka={"commitInterval": 100, "processingGuarantee": "exactly_once_v2",
                                    "properties": FAST_GROUP})
    pod.start_ingestor()
    wait_until(lambda: socket_ready(pod.socket_path), 60, interval=0.2, what=f"ingestor ready\n{pod.logs_tail()}")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    gen = start_generator(pod, total=4000, rate=50, keys=300, seed=seed % 1000)
    kills = {"processing": 0, "start-up": 0}
    try:
        for _ in range(20):
            if rng.random() < 0.25:
                # A moment during start-up: joining, restoring, or just serving again.
                time.sleep(rng.uniform(0.0, 2.0))
                kills["start-up"] += 1
            else:
                wait_until(lambda: socket_ready(pod.socket_path), 60, interval=0.1,
                           what=f"ingestor back (seed {seed})\n{pod.logs_tail()}")
                time.sleep(rng.uniform(0.0, 2.5))
                kills["processing"] += 1
            assert kill9(pod.procs["ingestor"]) == -signal.SIGKILL
            pod.start_ingestor()
        wait_until(lambda: socket_ready(pod.socket_path), 60, interval=0.2,
                   what=f"ingestor back after the last kill (seed {seed})\n{pod.logs_tail()}")
        assert gen.wait(180) == 0, gen.stderr.read()
    finally:
        if gen.poll() is None:
            gen.kill()
    assert kills["processing"] > 0

    # The reference model's fold of the input topic, read to each partition's end (statecheck).
    expected = statecheck.expected_state(tansu.bootstrap, fallback={})
    assert len(expected) > 300
    wait_until(lambda: not served_mismatches(pod, expected), 120, interval=1,
               what=f"served aggregates exact (seed {seed})")
    wrong = served_mismatches(pod, expected)
    assert not wrong, f"seed {seed}: {len(wrong)} of {len(expected)} served aggregates differ, e.g. {wrong[:3]}"
    assert pod.signal("ingestor", signal.SIGTERM, wait=20) == 0
    # After a graceful stop every epoch is committed; the last value per key on the output topics is exact.
    wrong = statecheck.output_mismatches(tansu.bootstrap, expected)
    assert not wrong, f"seed {seed}: {len(wrong)} output keys differ, e.g. {wrong[:3]}"


def ingestor_metric(pod, name: str) -> float:
    return sum(v for k, v in socket_metrics(pod.socket_path).items() if k.split("{")[0] == name)


def test_gateway_killed_in_a_loop_while_clients_read(tansu, pod_factory):
    tansu.create_topic("input", 2)
    pod = pod_factory(tansu, kafka={"commitInterval": 100}).start()
    gen = start_generator(pod, total=3000, rate=100, keys=50, seed=3)
    try:
        keys = wait_until(lambda: requests.get(f"{pod.api}/chaser", timeout=2).json()["keys"], 30,
                          what="chaser keys")
        ingestor = pod.procs["ingestor"]
        before = {n: ingestor_metric(pod, n)
                  for n in ("rebalances_total", "records_consumed_total", "socket_connections_total")}
        stop = threading.Event()
        answers: dict[int | str, int] = {}

        def client() -> None:  # a reader that never stops: answers while the gateway is up, errors while down
            i = 0
            while not stop.is_set():
                try:
                    status = requests.get(f"{pod.api}/chaser/{keys[i % len(keys)]}", timeout=2).status_code
                except requests.RequestException:
                    status = "down"
                answers[status] = answers.get(status, 0) + 1
                i += 1

        readers = [threading.Thread(target=client) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for round_ in range(10):
                assert kill9(pod.procs["gateway"]) == -signal.SIGKILL
                time.sleep(random.uniform(0.0, 0.5))
                pod.start_gateway()
                wait_until(lambda: requests.get(f"{pod.api}/chaser/{keys[0]}", timeout=1).status_code == 200, 20,
                           interval=0.05, what=f"gateway answering again (round {round_})\n{pod.logs_tail()}")
        finally:
            stop.set()
            for t in readers:
                t.join(10)

        assert answers.get(200, 0) > 0
        # Only three kinds of answer: the aggregate, nobody listening, or (right after a restart, before the
        # new gateway has its socket connection) 503; never a wrong status.
        assert set(answers) <= {200, 503, "down"}, answers
        after = {n: ingestor_metric(pod, n) for n in before}
        assert ingestor.poll() is None and pod.procs["ingestor"] is ingestor  # same process throughout
        assert after["rebalances_total"] == before["rebalances_total"]
        assert after["records_consumed_total"] > before["records_consumed_total"]
        assert after["socket_connections_total"] >= before["socket_connections_total"] + 10  # one per new gateway
    finally:
        gen.kill()
        gen.wait(10)
