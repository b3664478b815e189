"""Connection abuse against the real gateway binary: 10,000 half-open connections (slowloris heads), byte-a-
second drippers, a 1 MiB header, pipelining floods and clients that never read their answers. Under each
attack the gateway stays up with bounded memory, sheds idle/incomplete/non-reading connections first (oldest
first), answers what it refuses with the right status, and a well-behaved client is still served.

No broker is needed: the gateway runs alone (`/hello` is answered by the gateway itself).
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from test_gateway_http import (  # noqa: F401 (gateway is a fixture)
    Gateway, _wait, gateway, raw, read_to_close, split_responses, status_of)

HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
# The gateway's buffered-bytes budget per listener (HTTPLimits.maxBufferedBytes).
BUDGET_BYTES = 8 << 20


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def metric(gw: Gateway, name: str, label: str = "") -> float:
    total = 0.0
    for line in requests.get(f"{gw.health}/hams/metrics", timeout=5).text.splitlines():
        if line.startswith(name) and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def well_behaved(gw: Gateway) -> int:
    """One fresh connection, one request, the status (what a polite client sees during the attack)."""
    data = raw(gw.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
    assert data.endswith(b"Hello back") or status_of(data) != 200, data[:200]
    return status_of(data)


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard < wanted and os.geteuid() == 0:
        hard = wanted  # root may raise the hard limit too
    if hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def test_ten_thousand_half_open_connections_do_not_lock_out_a_client(binaries, run_env, tmp_path):
    attackers = 10_000
    raise_fd_limit(attackers + 2_000)  # this process holds them; the gateway (a child) inherits the limit
    gw = Gateway(binaries.gateway, tmp_path, run_env)
    held: list[socket.socket] = []
    try:
        base = rss_mb(gw.proc.pid)
        statuses = []
        for i in range(attackers):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
            held.append(s)
            if i % 1_000 == 999:
                statuses.append(well_behaved(gw))
        statuses += [well_behaved(gw) for _ in range(20)]
        assert statuses == [200] * len(statuses), statuses
        assert gw.proc.poll() is None
        peak = rss_mb(gw.proc.pid)
        # Default cap 4096 connections: the rest were shed, oldest first, each holding a few hundred bytes.
        assert metric(gw, "gateway_connections_shed_total", 'reason="connections"') >= attackers - 4_096
        assert metric(gw, "gateway_connections_rejected_total") == 0
        assert peak <= 40, f"RSS {base:.1f} -> {peak:.1f} MB (the bound: 40 MB)"
        # The first connections were the ones shed.
        held[0].settimeout(5)
        assert held[0].recv(1) == b""
    finally:
        for s in held:
            s.close()
        assert gw.stop() == 0


def test_drippers_are_shed_before_a_new_client_is_refused(binaries, run_env, tmp_path):
    gw = Gateway(binaries.gateway, tmp_path, run_env, "--set", "gateway.maxConnections=50")
    drippers = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(50)]
    stop = threading.Event()

    def drip():  # slowloris: one byte of the head every half second on every connection
        line = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        for i in range(len(line)):
            if stop.is_set():
                return
            for s in drippers:
                try:
                    s.send(line[i : i + 1])
                except OSError:
                    pass
            time.sleep(0.5)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)
        # Each polite client takes a dripper's slot (its own frees again when it closes).
        assert [well_behaved(gw) for _ in range(10)] == [200] * 10
        assert metric(gw, "gateway_connections_shed_total", 'reason="connections"') >= 1
        assert metric(gw, "gateway_connections_rejected_total") == 0
    finally:
        stop.set()
        thread.join(5)
        for s in drippers:
            s.close()
        assert gw.stop() == 0


def test_one_mebibyte_header_gets_431_and_close(gateway):
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    big = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    sender = threading.Thread(target=lambda: _send_quietly(s, big), daemon=True)
    sender.start()
    data = read_to_close(s)
    sender.join(10)
    s.close()
    (status, headers, body), = split_responses(data)
    assert status == 431 and headers["connection"] == "close", (status, headers)
    assert well_behaved(gateway) == 200


def _send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass  # the gateway closed after answering: the rest of the header is never read


def test_pipelining_floods_are_answered_in_order_and_others_still_served(gateway):
    count = 5_000
    clients = 8
    results: list[int] = []

    def flood():
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
            sender = threading.Thread(target=lambda: s.sendall(HELLO * count), daemon=True)
            sender.start()
            received = b""
            while received.count(b"Hello back") < count:
                chunk = s.recv(1 << 20)
                assert chunk, "connection closed early"
                received += chunk
            sender.join(10)
            results.append(received.count(b"HTTP/1.1 200 OK"))

    threads = [threading.Thread(target=flood) for _ in range(clients)]
    for t in threads:
        t.start()
    polite = [well_behaved(gateway) for _ in range(10)]
    for t in threads:
        t.join(60)
    assert results == [count] * clients
    assert polite == [200] * 10


def test_clients_that_never_read_are_bounded_then_shed(gateway):
    # Each asks for the 27 KB OpenAPI document many times and reads nothing: once the kernel's socket buffers
    # are full the gateway holds at most its per-connection output bound, stops reading, and past the
    # listener's budget sheds the oldest of them.
    clients = 60
    request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = []
    base = rss_mb(gateway.proc.pid)
    for _ in range(clients):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        s.connect(("127.0.0.1", gateway.port))
        s.setblocking(False)
        try:
            s.send(request * 2_000)  # as much as the kernel takes; never read
        except BlockingIOError:
            pass
        socks.append(s)
    try:
        _wait(lambda: metric(gateway, "gateway_connections_shed_total", 'reason="memory"') > 0, 30, "memory shedding")
        assert [well_behaved(gateway) for _ in range(10)] == [200] * 10
        peak = rss_mb(gateway.proc.pid)
        assert peak - base < BUDGET_BYTES / (1 << 20) + 24, f"RSS {base:.1f} -> {peak:.1f} MB"
        assert gateway.proc.poll() is None
    finally:
        for s in socks:
            s.close()


def test_when_every_connection_is_busy_a_new_one_gets_503(binaries, run_env, tmp_path):
    # A silent ingestor: it accepts the gateway's socket connection and never answers, so requests for data
    # stay in flight and their connections are busy (not sheddable).
    sock_path = tmp_path / "ingestor.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(4)
    accepted: list[socket.socket] = []

    def silent():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=silent, daemon=True).start()
    gw = Gateway(binaries.gateway, tmp_path, run_env, "--set", "gateway.maxConnections=3",
                 "--set", "gateway.upstreamTimeoutMs=30000")
    busy = []
    try:
        _wait(lambda: accepted, 10, "the gateway connected to the silent ingestor")
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            s.sendall(b"GET /chaser/some-key HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(s)
        time.sleep(0.5)
        data = raw(gw.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        (status, headers, body), = split_responses(data)
        assert status == 503 and headers["retry-after"] == "1" and b"too-many-connections" in body
        assert metric(gw, "gateway_connections_rejected_total") >= 1
        for s in busy:
            s.close()
        _wait(lambda: well_behaved(gw) == 200, 10, "served once the busy connections left")
    finally:
        for s in busy:
            s.close()
        server.close()
        for conn in accepted:
            conn.close()
        gw.stop()
