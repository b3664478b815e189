"""Independent restarts of the pod's two processes (issue 4): the socket is the seam between them.

- kill -9 the gateway under load and start a new one: the ingestor keeps consuming without a rebalance and
  the new gateway answers data routes within a second of listening;
- stop the ingestor: the gateway turns not-ready (429) and data routes answer 503 + Retry-After; both recover
  by themselves when the ingestor returns.
"""

from __future__ import annotations

import signal
import subprocess
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_until


def ingestor_metrics(pod) -> dict[str, float]:
    """Sums of the ingestor's samples by name (labels folded), read through the gateway's merged exposition."""
    text = requests.get(f"{pod.health}/hams/metrics", timeout=2).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


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
    generator = start_generator(pod, 25)
    try:
        key = any_chaser_key(pod)
        before = wait_until(lambda: ingestor_metrics(pod), 10, what="metrics")
        assert before.get("records_consumed_total", 0) > 0

        assert pod.signal("gateway", signal.SIGKILL) == -signal.SIGKILL
        time.sleep(3)  # the ingestor works on alone
        pod.start_gateway()
        # Ready as soon as it listens and reconnects; the first data answer within a second of listening.
        wait_until(lambda: requests.get(f"{pod.health}/hams/startup", timeout=1).status_code == 200, 10,
                   what="new gateway listening")
        listening = time.monotonic()
        wait_until(lambda: requests.get(f"{pod.api}/chaser/{key}", timeout=1).status_code == 200, 5,
                   interval=0.02, what="data route through the new gateway")
        assert time.monotonic() - listening < 1.0

        after = ingestor_metrics(pod)
        assert after["records_consumed_total"] > before["records_consumed_total"]
        # The ingestor kept its group membership: no revoke or lost partitions while the gateway was gone.
        assert after.get("rebalances_total", 0) == before.get("rebalances_total", 0)
        assert pod.procs["ingestor"].poll() is None
    finally:
        generator.terminate()
        generator.wait(10)


def test_gateway_follows_the_ingestor_down_and_up(tansu, pod_factory):
    tansu.create_topic("input", 2)
    pod = pod_factory(tansu).start()
    generator = start_generator(pod, 3)
    generator.wait(30)
    key = any_chaser_key(pod)

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
    assert requests.get(f"{pod.api}/chaser/{key}", timeout=3).status_code == 200
