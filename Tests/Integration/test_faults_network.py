"""Network faults on the broker link (the fault proxy the durable broker advertises), exactly_once_v2:

- one of two pods black-holed past its session and transaction timeouts: the other takes every partition, the
  cut-off one is fenced and writes nothing, and rejoins when the link returns; state exact key by key;
- 200 ms added on every chunk of the broker link: slower, nothing lost or doubled;
- the broker already down when the pod starts: alive, not ready, and exact soon after the broker comes up.
Figures print as `FIGURE name=value` (`pytest -s`).
"""

from __future__ import annotations

import time

import requests

from conftest import wait_until
from faultkit import Supervisor
from statecheck import ready_detail
from test_faults_broker import check_exact, fault_pod, figure, generate_expected, probe_events, sigterm_seconds
from test_cluster import _port_free_on_all as port_free_on_all
from test_ingestor_runtime import socket_metrics, socket_ready

# Short timeouts so a fault outlasts them quickly: 6 s session, 10 s transactions, 10 s socket requests.
SHORT = {"transaction.timeout.ms": 10000, "socket.timeout.ms": 10000}
HOST_A, HOST_B = "127.0.0.2", "127.0.0.3"


def test_blackholed_pod_is_fenced_and_rejoins(durable_tansu, pod_factory):
    broker = durable_tansu
    broker.create_topic("input", 4)
    port, health = port_free_on_all([HOST_A, HOST_B]), port_free_on_all([HOST_A, HOST_B])
    pods = [
        pod_factory(broker, host=h, name=n, gateway={"port": port, "healthPort": health},
                    kafka={"commitInterval": 100, "processingGuarantee": "exactly_once_v2",
                           "properties": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, **SHORT}})
        for h, n in ((HOST_A, "poda"), (HOST_B, "podb"))
    ]
    a, b = pods
    for pod in pods:
        pod.start_ingestor()
        pod.start_gateway()
    for pod in pods:
        pod.wait_ready(90)
    # Produced as fast as the broker takes them (tansu's durable storage answered a slower, steadier
    # idempotent producer with OUT_OF_ORDER_SEQUENCE here); both pods are still folding and committing when
    # B's link goes.
    fallback = generate_expected(a, total=8000, keys=300, seed=51)
    with Supervisor(a) as sa, Supervisor(b) as sb:
        broker.proxy.blackhole(clients="-podb-")
        cut = time.monotonic()
        # A is given every partition (B's session times out; tansu holds the join for session.timeout / 2).
        wait_until(lambda: a_owns_all(a), 90, interval=1, what=f"A owns every partition\n{a.logs_tail()}")
        figure("seconds_until_the_other_pod_owns_everything", round(time.monotonic() - cut, 1))
        check_exact(a, broker, fallback, timeout=120)
        # Cut off, B commits nothing (its epochs cannot reach the broker; stale generation when they could).
        b_commits = socket_metrics(b.socket_path).get("commits_total", 0)
        time.sleep(max(0.0, 25 - (time.monotonic() - cut)))  # past transaction.timeout.ms
        assert socket_metrics(b.socket_path).get("commits_total", 0) == b_commits
        broker.proxy.passthrough(clients="-podb-")
        back = time.monotonic()
        # B rejoins and gets its share back; new events on fresh keys are processed wherever they land.
        wait_until(lambda: socket_ready(b.socket_path) and not a_owns_all(a), 120, interval=1,
                   what=f"B rejoined with partitions\n{b.logs_tail()}")
        figure("seconds_until_the_cut_pod_rejoined", round(time.monotonic() - back, 1))
        fallback.update(probe_events(a, "after-link-returns", n=8))
        check_exact(a, broker, fallback, timeout=120)
        check_exact(b, broker, fallback, timeout=60)
    figure("ingestor_exits_blackhole", {"a": sa.exits, "b": sb.exits})
    for pod in pods:
        seconds, code = sigterm_seconds(pod)
        figure(f"sigterm_exit_seconds_{pod.workdir.name}", round(seconds, 2))
        assert code == 0, pod.logs_tail(30)


def a_owns_all(pod) -> bool:
    return socket_metrics(pod.socket_path).get("partitions_assigned") == 4


def test_broker_link_latency_200ms_stays_exact(durable_tansu, pod_factory):
    broker = durable_tansu
    pod = fault_pod(pod_factory, broker, properties=SHORT).start()
    broker.proxy.latency(200)
    started = time.monotonic()
    with Supervisor(pod) as supervisor:
        fallback = generate_expected(pod, total=3000, keys=150, seed=61)
        check_exact(pod, broker, fallback, timeout=180)
    figure("seconds_to_exact_with_200ms_latency", round(time.monotonic() - started, 1))
    figure("ingestor_exits_latency", supervisor.exits)
    assert supervisor.exits == [], "the ingestor restarted under latency alone"
    seconds, code = sigterm_seconds(pod)
    figure("sigterm_exit_seconds_with_latency", round(seconds, 2))
    assert code == 0, pod.logs_tail(30)


def test_started_while_broker_down_becomes_exact(durable_tansu, pod_factory):
    broker = durable_tansu
    pod = fault_pod(pod_factory, broker, properties=SHORT)
    broker.stop()
    pod.start_ingestor()
    pod.start_gateway()
    time.sleep(8)
    assert requests.get(f"{pod.health}/hams/alive", timeout=2).status_code == 200
    status, _ = ready_detail(pod)
    assert status == 429
    seconds, code = sigterm_seconds(pod)
    figure("sigterm_exit_seconds_broker_down_at_start", round(seconds, 2))
    assert code == 0, pod.logs_tail(30)
    # Every client backs off while the broker is down: the routing clients, made from the bootstrap address
    # alone, re-bootstrapped and reconnected every few ms (408 librdkafka log lines in these 8 s; now 8).
    routing_lines = [line for line in pod.log_path("ingestor").read_text(errors="replace").splitlines()
                     if line.startswith("%") and "-routing#" in line]
    figure("routing_client_log_lines_8s_broker_down", len(routing_lines))
    assert len(routing_lines) <= 60, routing_lines[-5:]
    pod.start_ingestor()
    time.sleep(3)
    broker.restart()
    up = time.monotonic()
    pod.wait_ready(90)
    fallback = generate_expected(pod, total=2000, keys=100, seed=71)
    check_exact(pod, broker, fallback)
    figure("seconds_from_broker_up_to_exact", round(time.monotonic() - up, 1))
    seconds, code = sigterm_seconds(pod)
    assert code == 0, pod.logs_tail(30)
