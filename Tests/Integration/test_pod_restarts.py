"""Independent restarts of the pod's two processes (issue 4): the socket is the seam between them.

- kill -9 the gateway under load and start a new one: the ingestor keeps consuming without a rebalance and
  the new gateway serves the data routes (how soon is a benchmark figure, not asserted here);
- stop the ingestor: the gateway turns not-ready (429) and data routes answer 503 + Retry-After; both recover
  by themselves when the ingestor returns.
Every data answer is compared with reference_model.py's aggregate for the key (the input topic folded
independently), not just its status.
"""

from __future__ import annotations

import signal
import struct
import subprocess
from urllib.parse import quote

import requests
from prometheus_client.parser import text_string_to_metric_families

import reference_model as rm
import socket_frames
from conftest import wait_until


def ingestor_metrics(pod) -> dict[str, float]:
    """Sums of the ingestor's samples by name (labels folded), read through the gateway's merged exposition."""
    text = requests.get(f"{pod.health}/hams/metrics", timeout=2).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def consumed_over_socket(pod) -> float:
    """records_consumed_total straight from the ingestor's socket (works while no gateway runs)."""
    status, body = socket_frames.call(pod.socket_path, socket_frames.METRICS, timeout=3)
    assert status == 0
    (n,) = struct.unpack(">I", body[:4])
    return sum(float(line.split()[-1]) for line in body[4 : 4 + n].decode().splitlines()
               if line.startswith("records_consumed_total"))


def assert_serves_reference(pod, tansu, timeout: float = 60) -> None:
    """Every key of the input topic, read through the gateway, is the reference model's aggregate."""
    expected = rm.expected_aggregates(tansu.bootstrap)
    assert expected

    def all_match() -> bool:
        for (store, key), value in expected.items():
            r = requests.get(f"{pod.api}/{store}/{quote(key, safe='')}", timeout=5)
            if r.status_code != 200 or r.json() != value:
                return False
        return True

    wait_until(all_match, timeout, interval=0.5, what=f"every key through the gateway\n{pod.logs_tail()}")


def start_generator(pod, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(pod.binaries.ingestor), "generate", "--config", str(pod.config_path), "--rate", "200",
         "--keys", "50", "--duration", str(seconds), "--mix", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=pod.env)


def any_chaser_key(pod) -> str:
    keys = wait_until(lambda: requests.get(f"{pod.api}/chaser", timeout=2).json()["keys"], 30, what="chaser keys")
    return keys[0]


def test_gateway_kill9_leaves_the_ingestor_consuming(tansu, pod_factory):
    tansu.create_topic("input", 2)
    pod = pod_factory(tansu).start()
    generator = start_generator(pod, 15)
    try:
        key = any_chaser_key(pod)
        before = wait_until(lambda: ingestor_metrics(pod), 10, what="metrics")
        assert before.get("records_consumed_total", 0) > 0

        assert pod.signal("gateway", signal.SIGKILL) == -signal.SIGKILL
        # The ingestor works on alone: consumption moves on while no gateway runs.
        alone = consumed_over_socket(pod)
        wait_until(lambda: consumed_over_socket(pod) > alone + 100, 30, what="consuming without a gateway")
        pod.start_gateway()
        wait_until(lambda: requests.get(f"{pod.health}/hams/startup", timeout=1).status_code == 200, 30,
                   what="new gateway listening")
        wait_until(lambda: requests.get(f"{pod.api}/chaser/{key}", timeout=2).status_code == 200, 30,
                   what="data route through the new gateway")

        after = ingestor_metrics(pod)
        assert after["records_consumed_total"] > before["records_consumed_total"]
        # The ingestor kept its group membership: no revoke or lost partitions while the gateway was gone.
        assert after.get("rebalances_total", 0) == before.get("rebalances_total", 0)
        assert pod.procs["ingestor"].poll() is None
        assert generator.wait(60) == 0
    finally:
        if generator.poll() is None:
            generator.terminate()
            generator.wait(10)
    assert_serves_reference(pod, tansu)


def test_gateway_follows_the_ingestor_down_and_up(tansu, pod_factory):
    tansu.create_topic("input", 2)
    pod = pod_factory(tansu).start()
    generator = start_generator(pod, 3)
    assert generator.wait(30) == 0
    key = any_chaser_key(pod)
    assert_serves_reference(pod, tansu)

    assert pod.signal("ingestor", signal.SIGTERM) == 0
    wait_until(lambda: requests.get(f"{pod.health}/hams/ready", timeout=1).status_code == 429, 10,
               what="gateway not ready")
    answer = requests.get(f"{pod.api}/chaser/{key}", timeout=3)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["error"]
    assert requests.get(f"{pod.health}/hams/alive", timeout=1).status_code == 200  # the gateway itself is fine

    pod.start_ingestor()
    pod.wait_ready(60)  # the gateway reconnects by itself
    assert_serves_reference(pod, tansu)
