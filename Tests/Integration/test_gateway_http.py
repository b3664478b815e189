"""Gateway HTTP core against the real binary: static routes, errors, limits, garbage, timeouts, pipelining,
health without an ingestor, a fake ingestor speaking the socket protocol, drain, and a schemathesis run.

The gateway is started with `--set` overrides only (no broker needed); the fake ingestor is a small Python
server implementing docs/socket-protocol.md for the operations the gateway uses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "openapi" / "openapi.json"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} (last error: {last})")


class Gateway:
    def __init__(self, binary: Path, workdir: Path, env: dict[str, str], *extra: str):
        self.port = free_port()
        self.health_port = free_port()
        self.socket_path = str(workdir / "ingestor.sock")
        self.log = workdir / f"gateway-{self.port}.log"
        cmd = [
            str(binary),
            "--set", f"gateway.port={self.port}",
            "--set", f"gateway.healthPort={self.health_port}",
            "--set", "gateway.bindAddress=127.0.0.1",
            "--set", f"ingestor.socket={self.socket_path}",
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _wait(self._up, 20, f"gateway on {self.port} ({self.tail()})")

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.tail()
        return requests.get(f"{self.health}/hams/startup", timeout=1).status_code == 200

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode


@pytest.fixture
def gateway(binaries, run_env, tmp_path):
    gw = Gateway(binaries.gateway, tmp_path, run_env)
    yield gw
    gw.stop()


# --- raw socket helpers -------------------------------------------------------------------------


def read_to_close(s: socket.socket) -> bytes:
    """Everything the peer sends until it closes or resets the connection."""
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def raw(port: int, data: bytes, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_to_close(s) if read_until_close else read_response(s)


def read_response(s: socket.socket) -> bytes:
    """Reads exactly one Content-Length framed response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if head.startswith(b"HEAD"):
        length = 0
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length]


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def status_of(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split()[1])


def assert_error_shape(body: bytes) -> dict:
    doc = json.loads(body)
    assert set(doc) == {"error", "message"}, doc
    assert isinstance(doc["error"], str) and isinstance(doc["message"], str)
    return doc


# --- static routes ------------------------------------------------------------------------------


def test_static_routes(gateway):
    r = requests.get(f"{gateway.api}/")
    assert r.status_code == 200 and r.json() == {"str": "params.a"}
    r = requests.get(f"{gateway.api}/hello")
    assert r.status_code == 200 and r.text == "Hello back" and r.headers["content-type"].startswith("text/plain")
    r = requests.get(f"{gateway.api}/string/abc")
    assert r.status_code == 200 and r.text == "Smokeabc"
    r = requests.get(f"{gateway.api}/string/a%20b%2Fc%C3%A9")
    assert r.status_code == 200 and r.text == "Smokea b/cé"
    first = requests.get(f"{gateway.api}/count").json()["count"]
    second = requests.get(f"{gateway.api}/count").json()["count"]
    assert second == first + 1
    r = requests.get(f"{gateway.api}/openapi.json")
    assert r.status_code == 200 and r.json() == json.loads(OPENAPI.read_text())
    assert r.content == OPENAPI.read_bytes()


def test_head_keepalive_and_http10(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = read_response(s)
            assert status_of(resp) == 200 and resp.endswith(b"Hello back")
        s.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        head = s.recv(4096)
        assert status_of(head) == 200 and b"Content-Length: 10" in head and head.endswith(b"\r\n\r\n")
    data = raw(gateway.port, b"GET /hello HTTP/1.0\r\n\r\n")
    assert status_of(data) == 200 and b"Connection: close" in data and data.endswith(b"Hello back")


def test_not_found_and_method_not_allowed(gateway):
    r = requests.get(f"{gateway.api}/nope")
    assert r.status_code == 404
    assert_error_shape(r.content)
    r = requests.delete(f"{gateway.api}/hello")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    assert_error_shape(r.content)
    r = requests.get(f"{gateway.api}/events")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    # Methods http-parser does not know (QUERY) and TRACE: 405 with Allow, not 400.
    for method in (b"QUERY", b"TRACE", b"FOO"):
        data = raw(gateway.port, method + b" /hello HTTP/1.1\r\nHost: x\r\n\r\n", read_until_close=False)
        assert status_of(data) == 405, data
        assert b"Allow: GET, HEAD" in data
    # Unknown route + unknown method → 404.
    assert status_of(raw(gateway.port, b"QUERY /nope HTTP/1.1\r\nHost: x\r\n\r\n", read_until_close=False)) == 404


# --- limits -------------------------------------------------------------------------------------


def test_limits(gateway):
    data = raw(gateway.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(data) == 431
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    data = raw(gateway.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(data) == 431
    body = b"x" * (64 * 1024 + 1)
    data = raw(
        gateway.port,
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % len(body) + body,
    )
    assert status_of(data) == 413
    assert_error_shape(split_responses(data)[0][2])
    chunk = b"y" * 40000
    chunked = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2 + b"0\r\n\r\n"
    data = raw(gateway.port, b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status_of(data) == 413
    # The server is still fine.
    assert requests.get(f"{gateway.api}/hello").status_code == 200


def test_request_bodies(gateway):
    # Content-Length and chunked bodies reach the handler (validated there: 400 with the reason).
    r = requests.post(f"{gateway.api}/events", data=b'{"type":"nope"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "unknown event type" in r.json()["message"]
    chunked = b'5\r\n{"typ\r\na\r\ne":"nope"}\r\n0\r\n\r\n'
    data = raw(
        gateway.port,
        b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\n\r\n" + chunked,
    )
    assert status_of(data) == 400 and b"unknown event type" in data
    # A valid event without an ingestor: 503 + Retry-After.
    event = {"type": "com.polecatworks.chaser.Chaser", "name": "A", "id": "1", "sent": 1000, "ttl": 300}
    r = requests.post(f"{gateway.api}/events", json=event)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    # Expect: 100-continue gets the interim answer.
    body = json.dumps(event).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        assert status_of(read_response(s)) == 503


# --- garbage ------------------------------------------------------------------------------------

GARBAGE = [
    b"GET\r\n\r\n",  # malformed request line
    b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",  # header without colon
    b"GET /hello HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",  # bad version
    b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",  # bad chunk
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",  # bad length
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",  # ambiguous
    b"GET /he%zzllo HTTP/1.1\r\nHost: x\r\n\r\n",  # bad percent escape
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS ClientHello
    b"\x00\xff\xfe garbage \r\n\r\n",
]


@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_gets_4xx_and_server_survives(gateway, payload):
    data = raw(gateway.port, payload, read_until_close=False)
    assert 400 <= status_of(data) < 500, data[:300]
    assert_error_shape(split_responses(data)[0][2])
    assert requests.get(f"{gateway.api}/hello").status_code == 200


def test_truncated_body_and_random_bytes(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"type\":")
    for seed in range(30):
        blob = os.urandom(1 + seed * 37)
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
            s.sendall(blob)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(65536)
            except ConnectionResetError:
                pass
    assert requests.get(f"{gateway.api}/hello").status_code == 200
    assert gateway.proc.poll() is None


# --- timeouts, pipelining -----------------------------------------------------------------------


def test_slow_client_is_cut(binaries, run_env, tmp_path):
    """Slowloris: a header line now and then does not extend the header deadline; the client gets 408 while it
    is still trickling. (The deadline is 2 s here; how close to it the cut lands is not a test.)"""
    gw = Gateway(binaries.gateway, tmp_path, run_env, "--set", "gateway.headerTimeoutMs=2000")
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=60) as s:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            stop = threading.Event()

            def trickle():
                while not stop.wait(0.3):
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        return

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            data = read_to_close(s)
            stop.set()
            t.join(5)
        assert status_of(data) == 408
        assert requests.get(f"{gw.api}/hello").status_code == 200
    finally:
        assert gw.stop() == 0


def test_pipelined_requests_answered_in_order(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(
            b"GET /string/one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /chaser/k HTTP/1.1\r\nHost: x\r\n\r\n"  # async (ingestor) route between sync ones
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /string/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    responses = split_responses(data)
    assert [r[0] for r in responses] == [200, 200, 503, 404, 200]
    assert responses[0][2] == b"Smokeone" and responses[4][2] == b"Smoketwo"
    many = b"".join(b"GET /string/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(200))
    data = raw(gateway.port, many + b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    bodies = [r[2] for r in split_responses(data)]
    assert bodies == [b"Smoke%d" % i for i in range(200)] + [b"Hello back"]


# --- health without an ingestor -----------------------------------------------------------------


def test_health_without_ingestor(gateway):
    r = requests.get(f"{gateway.health}/hams/version")
    assert r.status_code == 200 and r.text.startswith("0.") and r.headers["content-type"].startswith("text/plain")
    assert requests.get(f"{gateway.health}/hams/startup").status_code == 200
    r = requests.get(f"{gateway.health}/hams/alive")
    assert r.status_code == 200
    doc = r.json()
    assert doc["name"] == "alive" and doc["valid"] is True
    assert all(set(d) == {"name", "valid"} for d in doc["detail"])
    r = requests.get(f"{gateway.health}/hams/ready")
    assert r.status_code == 429 and r.json()["valid"] is False
    for path in ("/chaser/k", "/chaser", "/billing/k", "/billing"):
        r = requests.get(f"{gateway.api}{path}")
        assert r.status_code == 503 and r.headers["retry-after"].isdigit(), path
        assert_error_shape(r.content)
    requests.get(f"{gateway.api}/hello")
    r = requests.get(f"{gateway.health}/hams/metrics")
    assert r.status_code == 200
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert "http_requests" in families or "http_requests_total" in families
    assert "http_request_duration_seconds" in families
    assert "gateway_open_connections" in families
    # The API routes are not on the health port and vice versa.
    assert requests.get(f"{gateway.health}/hello").status_code == 404
    assert requests.get(f"{gateway.api}/hams/alive").status_code == 404


def test_prefix(binaries, run_env, tmp_path):
    gw = Gateway(binaries.gateway, tmp_path, run_env, "--set", "gateway.prefix=/api")
    try:
        assert requests.get(f"{gw.api}/api/hello").text == "Hello back"
        assert requests.get(f"{gw.api}/api").json() == {"str": "params.a"}
        assert requests.get(f"{gw.api}/hello").status_code == 404
        # Clients generated from the document call server URL + path: the prefix is the server URL.
        document = requests.get(f"{gw.api}/api/openapi.json").json()
        assert document["servers"][0]["url"] == "/api" and "/hello" in document["paths"]
    finally:
        assert gw.stop() == 0


def test_connection_cap_sheds_the_oldest_idle_connection(binaries, run_env, tmp_path):
    # At the cap an idle connection makes room for a new client (the 503 when every connection is busy is in
    # test_hostile_connections.py).
    gw = Gateway(binaries.gateway, tmp_path, run_env, "--set", "gateway.maxConnections=3")
    try:
        held = []
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", gw.port)))
            time.sleep(0.05)  # accepted in this order: the first is the oldest
        time.sleep(0.2)
        data = raw(gw.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(data) == 200 and data.endswith(b"Hello back")
        held[0].settimeout(5)
        assert held[0].recv(1) == b"", "the oldest idle connection was not the one shed"
        for s in held:
            s.close()
    finally:
        gw.stop()


# --- a fake ingestor on the Unix socket ---------------------------------------------------------

OP_PING, OP_HEALTH, OP_GET, OP_LIST, OP_OWNER, OP_ROUTING, OP_METRICS, OP_PUBLISH, OP_STOP = range(1, 10)


def accept_forever(server: socket.socket, serve) -> None:
    """Accepts on `server` until it is closed; each connection is served by `serve(conn)` on its own thread."""

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


class FakeIngestor:
    """Answers the gateway's frames: get/list/health/metrics/publish/stop; `delay` slows get answers."""

    def __init__(self, path: str, not_owner: dict[bytes, str | None] | None = None,
                 keys: list[bytes] | None = None, owners: dict[int, str] | None = None,
                 local: str = "127.0.0.1:8080", name: str = "fake"):
        self.path = path
        self.name = name  # in every billing answer (bill.customerId): shows which ingestor answered
        self.not_owner = not_owner or {}  # key → owner's gateway endpoint (None = unknown)
        self.keys = sorted(keys if keys is not None else [b"a", b"b"])  # the listing (byte order)
        self.local = local  # this pod's advertised endpoint
        self.owners = owners if owners is not None else {p: local for p in range(4)}  # routing table
        self.fail_list = False
        self.delay = 0.0
        self.stopped = threading.Event()
        self.requests: list[int] = []
        self.clients: list[socket.socket] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        accept_forever(self.server, self._accepted)

    def _accepted(self, conn: socket.socket):
        self.clients.append(conn)
        self._serve(conn)

    def _serve(self, conn):
        buf = b""
        lock = threading.Lock()
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 4:
                (length,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + length:
                    break
                frame, buf = buf[4 : 4 + length], buf[4 + length :]
                version, kind, rid, op, _status = struct.unpack(">BBIBB", frame[:8])
                assert version == 1 and kind == 0
                self.requests.append(op)
                threading.Thread(target=self._answer, args=(conn, lock, rid, op, frame[8:]), daemon=True).start()

    def _answer(self, conn, lock, rid, op, body):
        status, payload = 0, b""
        if op == OP_HEALTH:
            payload = bytes([1, 1, 1]) + struct.pack(">Ii", 1, 0) + struct.pack(">I", 0) + struct.pack(">I", 0)
        elif op == OP_GET:
            time.sleep(self.delay)
            (n,) = struct.unpack(">I", body[:4])
            store = body[4 : 4 + n]
            key = body[8 + n :]
            if key in self.not_owner:
                endpoint = self.not_owner[key]
                opt = b"\x01" + _string(endpoint.encode()) if endpoint else b"\x00"
                status, payload = 3, _string(b"") + struct.pack(">i", 1) + opt
            elif key == b"missing":
                status, payload = 1, _string(b"")
            elif key == b"restoring":
                status, payload = 2, _string(b"partition 3 restoring") + struct.pack(">I", 2500)
            elif store == b"chaser":
                doc = {"type": "com.polecatworks.chaser.Aggregate", "names": [key.decode()], "count": 1,
                       "latest": 1000, "longest": None}
                payload = _string(json.dumps(doc).encode())
            else:
                payload = _string(json.dumps(self.billing(key.decode())).encode())
        elif op == OP_LIST:  # store string, limit u32, cursor string? → keys after the cursor, next = last key
            (n,) = struct.unpack(">I", body[:4])
            (limit,) = struct.unpack(">I", body[4 + n : 8 + n])
            cursor = body[13 + n :] if body[8 + n] == 1 else None
            rest = [k for k in self.keys if cursor is None or k > cursor]
            page = rest[:limit]
            more = len(rest) > limit
            payload = struct.pack(">I", len(page)) + b"".join(_string(k) for k in page)
            payload += b"\x01" + _string(page[-1]) if more else b"\x00"
            if self.fail_list:
                status, payload = 2, _string(b"partition 1 restoring") + struct.pack(">I", 1000)
        elif op == OP_ROUTING:
            payload = struct.pack(">Qi", 1, 4) + _string(self.local.encode()) + struct.pack(">I", len(self.owners))
            for partition, endpoint in sorted(self.owners.items()):
                payload += struct.pack(">i", partition) + _string(endpoint.encode())
        elif op == OP_OWNER:
            (n,) = struct.unpack(">I", body[:4])
            endpoint = self.not_owner.get(body[4 : 4 + n])
            opt = b"\x01" + _string(endpoint.encode()) if endpoint else b"\x00"
            payload = struct.pack(">i", 1) + opt + (b"\x00" if endpoint else b"\x01")
        elif op == OP_METRICS:
            payload = _string(b"# TYPE chaser_received_total counter\nchaser_received_total 7\n")
        elif op == OP_PUBLISH:
            # Like the real ingestor, refuse keys the stores cannot hold (1 to 511 UTF-8 bytes).
            (n,) = struct.unpack(">I", body[:4])
            event = json.loads(body[4 : 4 + n])
            key = str(event.get("id") if event.get("type", "").endswith("Chaser") else event.get("billId", "")).encode()
            if 1 <= len(key) <= 511:
                payload = _string(b"input") + struct.pack(">iq", 2, 41)
            else:
                status, payload = 4, _string(b"key of %d bytes; keys are 1 to 511 bytes" % len(key))
        elif op == OP_STOP:
            self.stopped.set()
        else:
            status, payload = 5, _string(b"unsupported")
        frame = struct.pack(">BBIBB", 1, 1, rid, op, status) + payload
        with lock:
            try:
                conn.sendall(struct.pack(">I", len(frame)) + frame)
            except OSError:
                pass  # the gateway went away (test teardown)

    def billing(self, key: str) -> dict:
        bill = {"billId": key, "customerId": self.name, "orderId": "o", "amountCents": 1, "currency": "EUR",
                "issuedAt": 1, "dueDate": 2}
        return {"type": "com.polecatworks.billing.BillAggregate", "bill": bill, "paymentRequests": [],
                "lastPaymentFailed": None, "errored": False}

    def close(self):
        self.server.close()

    def close_clients(self):
        for conn in self.clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass


def test_with_fake_ingestor(gateway):
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        r = requests.get(f"{gateway.api}/chaser/k%201")
        assert r.status_code == 200 and r.json()["names"] == ["k 1"]
        assert requests.get(f"{gateway.api}/billing/x").json() == fake.billing("x")
        r = requests.get(f"{gateway.api}/chaser/missing")
        assert r.status_code == 404
        assert_error_shape(r.content)
        r = requests.get(f"{gateway.api}/chaser/restoring")
        assert r.status_code == 503 and r.headers["retry-after"] == "3"
        assert requests.get(f"{gateway.api}/chaser?limit=2").json() == {"keys": ["a", "b"], "next": None}
        assert requests.get(f"{gateway.api}/billing?scope=cluster").json() == {"keys": ["a", "b"], "next": None}
        assert requests.get(f"{gateway.api}/chaser?limit=0").status_code == 400
        event = {"type": "com.polecatworks.chaser.Chaser", "name": "A", "id": "1", "sent": 1000, "ttl": 300}
        r = requests.post(f"{gateway.api}/events", json=event)
        assert r.status_code == 202
        assert r.json() == {"topic": "input", "partition": 2, "offset": 41, "store": "chaser", "key": "1"}
        text = requests.get(f"{gateway.health}/hams/metrics").text
        from prometheus_client.parser import text_string_to_metric_families

        names = {f.name for f in text_string_to_metric_families(text)}
        assert "chaser_received" in names and "http_request_duration_seconds" in names
        # Many concurrent multiplexed requests.
        with requests.Session() as s:
            for i in range(50):
                assert s.get(f"{gateway.api}/chaser/key{i}").json()["names"] == [f"key{i}"]
    finally:
        fake.close()


def test_ingestor_timeout_and_reconnect(gateway):
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        # An answer that would take 60 s: the gateway's own deadline (2 s) answers 503 long before that (the
        # client's 30 s limit would fail the test otherwise).
        fake.delay = 60.0
        r = requests.get(f"{gateway.api}/chaser/slow", timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert assert_error_shape(r.content)["error"]
        fake.delay = 0.0
        assert requests.get(f"{gateway.api}/chaser/fast").status_code == 200
    finally:
        fake.close()
        fake.close_clients()
    # The ingestor goes away: data routes 503, ready 429; it comes back: the client reconnects.
    _wait(lambda: requests.get(f"{gateway.api}/chaser/k", timeout=1).status_code == 503, 5, "503 after loss")
    assert requests.get(f"{gateway.health}/hams/ready").status_code == 429
    os.unlink(gateway.socket_path)
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.api}/chaser/k", timeout=1).status_code == 200, 10, "reconnect")
        assert requests.get(f"{gateway.health}/hams/ready").status_code == 200
    finally:
        fake.close()


def test_client_gone_before_ingestor_answers(gateway):
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        fake.delay = 0.5
        gets = fake.requests.count(OP_GET)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
                s.sendall(b"GET /chaser/a HTTP/1.1\r\nHost: x\r\n\r\nGET /chaser/b HTTP/1.1\r\nHost: x\r\n\r\n")
        # The gateway passes requests on although their clients are gone, and copes with the late answers.
        _wait(lambda: fake.requests.count(OP_GET) >= gets + 20, 30, "the orphaned requests reach the ingestor")
        fake.delay = 0.0
        assert requests.get(f"{gateway.api}/chaser/c").status_code == 200
        assert gateway.proc.poll() is None
    finally:
        fake.close()


def test_forwarding_to_the_owner(gateway, binaries, run_env, tmp_path):
    other_dir = tmp_path / "b"
    other_dir.mkdir()
    owner = Gateway(binaries.gateway, other_dir, run_env)
    owner_endpoint = f"127.0.0.1:{owner.port}"
    fake_a = FakeIngestor(gateway.socket_path, {b"remote": owner_endpoint, b"moved": owner_endpoint, b"lost": None})
    fake_b = FakeIngestor(owner.socket_path, {b"moved": None}, name="owner")
    try:
        for gw in (gateway, owner):
            _wait(lambda: requests.get(f"{gw.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        # A key of another pod: forwarded to its gateway, which answers from its ingestor.
        r = requests.get(f"{gateway.api}/chaser/remote")
        assert r.status_code == 200 and r.json()["names"] == ["remote"]
        with requests.Session() as s:
            for _ in range(20):  # keep-alive pool reused; the owner's ingestor answers, byte for byte
                r = s.get(f"{gateway.api}/billing/remote")
                assert r.status_code == 200 and r.json() == fake_b.billing("remote")
        # The owner no longer owns it (421 to the forwarder), the routing still says so: 503, retry later.
        r = requests.get(f"{owner.api}/chaser/moved", headers={"X-K8s-Micro-Forwarded": "1"})
        assert r.status_code == 421
        r = requests.get(f"{gateway.api}/chaser/moved")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        # No known owner.
        r = requests.get(f"{gateway.api}/chaser/lost")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        metrics = requests.get(f"{gateway.health}/hams/metrics").text
        assert 'gateway_forwarded_requests_total{outcome="ok"}' in metrics
        # The owner pod goes away: 503 + Retry-After, not a hang.
        owner.stop()
        r = requests.get(f"{gateway.api}/chaser/remote", timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        fake_a.close()
        fake_b.close()
        owner.stop()


def test_cluster_listing_merges_pods(gateway, binaries, run_env, tmp_path):
    other_dir = tmp_path / "b"
    other_dir.mkdir()
    peer = Gateway(binaries.gateway, other_dir, run_env)
    here, there = f"127.0.0.1:{gateway.port}", f"127.0.0.1:{peer.port}"
    owners = {0: here, 1: here, 2: there, 3: there}
    keys_a = [f"k{i:03d}".encode() for i in range(0, 50, 2)] + ["é".encode()]
    keys_b = [f"k{i:03d}".encode() for i in range(1, 50, 2)] + [b"k000", b"Z"]  # k000 on both: listed once
    fake_a = FakeIngestor(gateway.socket_path, keys=keys_a, owners=owners, local=here)
    fake_b = FakeIngestor(peer.socket_path, keys=keys_b, owners=owners, local=there)
    try:
        for gw in (gateway, peer):
            _wait(lambda: requests.get(f"{gw.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        expected = sorted(set(keys_a) | set(keys_b))  # byte order: "Z" < "k…" < "é"
        for gw in (gateway, peer):
            # Local scope (the default) lists only this pod's keys.
            local = requests.get(f"{gw.api}/chaser?limit=1000").json()
            assert local["next"] is None and len(local["keys"]) in (len(keys_a), len(set(keys_b)))
            got, cursor, pages = [], None, 0
            while pages < 50:
                params = {"scope": "cluster", "limit": 7} | ({"cursor": cursor} if cursor else {})
                r = requests.get(f"{gw.api}/chaser", params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                assert len(page["keys"]) <= 7
                got += page["keys"]
                pages += 1
                cursor = page["next"]
                if cursor is None:
                    break
            assert [k.encode() for k in got] == expected and pages == -(-len(expected) // 7)
        # A peer that cannot list (restoring): 503, never a partial page.
        fake_b.fail_list = True
        r = requests.get(f"{gateway.api}/billing?scope=cluster")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        fake_b.fail_list = False
        # A partition without a live owner: 503.
        fake_a.owners = {0: here, 1: here, 2: there}
        r = requests.get(f"{gateway.api}/billing?scope=cluster")
        assert r.status_code == 503 and r.json()["error"] == "owner-unknown"
        fake_a.owners = owners
        assert requests.get(f"{gateway.api}/chaser?scope=cluster&cursor=not*base64").status_code == 400
        # The peer is gone: 503 + Retry-After.
        peer.stop()
        r = requests.get(f"{gateway.api}/chaser?scope=cluster", timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        fake_a.close()
        fake_b.close()
        peer.stop()


def test_drain_finishes_in_flight_then_exits_zero(gateway):
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        fake.delay = 1.5  # under the 2 s upstream deadline
        result = {}

        def slow():
            result["r"] = requests.get(f"{gateway.api}/chaser/slow", timeout=10)

        t = threading.Thread(target=slow)
        t.start()
        _wait(lambda: OP_GET in fake.requests, 10, "the slow request in flight")
        gateway.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                requests.get(f"{gateway.api}/hello", timeout=1)
            except requests.ConnectionError:
                return True
            return False

        _wait(refused, 10, "the draining gateway stops accepting")
        t.join()
        assert result["r"].status_code == 200 and result["r"].headers.get("connection") == "close"
        assert gateway.proc.wait(10) == 0
    finally:
        fake.close()


def test_hams_stop_stops_ingestor_and_exits_zero(gateway):
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        r = requests.get(f"{gateway.health}/hams/stop")
        assert r.status_code == 200 and r.json() == {"stopping": True, "ingestor": "stopping"}
        assert fake.stopped.wait(5)
        assert gateway.proc.wait(10) == 0
    finally:
        fake.close()


# --- schemathesis -------------------------------------------------------------------------------


def _schemathesis(gateway, cwd: Path):
    st = ROOT / ".venv" / "bin" / "schemathesis"
    assert st.exists(), "schemathesis is not installed in .venv (bash scripts/setup.sh installs it)"
    cmd = [
        str(st), "run", str(OPENAPI), "--url", gateway.api, "--checks", "all", "--max-examples", "50",
        "--workers", "1", "--seed", "1", "--generation-database", "none",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert gateway.proc.poll() is None


def test_schemathesis_with_ingestor(gateway, tmp_path):
    """Every documented answer, with a (fake) ingestor behind the data routes: no 5xx allowed."""
    fake = FakeIngestor(gateway.socket_path)
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        _schemathesis(gateway, tmp_path)
    finally:
        fake.close()


def test_schemathesis_without_ingestor(gateway, tmp_path):
    """No ingestor: data routes answer the documented 503 + Retry-After, which schemathesis's
    not_a_server_error check must be told is expected."""
    (tmp_path / "schemathesis.toml").write_text(
        '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
    )
    _schemathesis(gateway, tmp_path)


# --- end to end with the real ingestor and a broker ---------------------------------------------


def test_end_to_end_with_real_ingestor(tansu, pod_factory):
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu)
    pod.start(ready_timeout=90)
    event = {"type": "com.polecatworks.chaser.Chaser", "name": "A", "id": "e2e-1", "sent": 1000, "ttl": 300}
    r = requests.post(f"{pod.api}/events", json=event, timeout=15)
    assert r.status_code == 202, r.text
    receipt = r.json()
    assert receipt["topic"] == "input" and receipt["offset"] >= 0
    bad = requests.post(f"{pod.api}/events", json={"type": "com.polecatworks.chaser.Chaser"}, timeout=5)
    assert bad.status_code == 400

    def keys():
        page = requests.get(f"{pod.api}/chaser", timeout=2)
        return page.status_code == 200 and page.json()["keys"]

    _wait(keys, 60, f"a chaser key ({pod.logs_tail()})")
    key = requests.get(f"{pod.api}/chaser", timeout=2).json()["keys"][0]
    agg = requests.get(f"{pod.api}/chaser/{requests.utils.quote(key, safe='')}", timeout=2)
    assert agg.status_code == 200, agg.text
    body = agg.json()
    assert body["type"] == "com.polecatworks.chaser.Aggregate" and body["count"] >= 1 and "A" in body["names"]
    assert requests.get(f"{pod.api}/chaser/no-such-key-xyz", timeout=2).status_code == 404
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{pod.health}/hams/metrics", timeout=5).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "http_request_duration_seconds" in names and "chaser_received" in names, sorted(names)
    r = requests.get(f"{pod.health}/hams/stop", timeout=5)
    assert r.status_code == 200 and r.json()["ingestor"] == "stopping"
    assert pod.procs["gateway"].wait(20) == 0
    assert pod.procs["ingestor"].wait(30) == 0


def test_pipelining_client_that_does_not_read_is_bounded(gateway):
    count = 30000
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    sender = threading.Thread(target=lambda: s.sendall(request * count), daemon=True)
    sender.start()
    # While the client reads nothing, sample the gateway's RSS until the sender is stuck or done (answers are
    # not buffered without bound; debug build baseline ~30 MB): every sample counts, not one after a sleep.
    peak_kb = 0
    for _ in range(50):
        peak_kb = max(peak_kb, int(Path(f"/proc/{gateway.proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]))
        sender.join(0.1)
    assert peak_kb < 80_000, peak_kb
    received = b""
    expected = count * len(b"Hello back")
    while received.count(b"Hello back") < count:
        chunk = s.recv(1 << 20)
        assert chunk, "connection closed early"
        received += chunk
    sender.join(5)
    s.close()
    assert received.count(b"HTTP/1.1 200 OK") == count and len(received) > expected


# --- a peer gateway that drops connections (only a stand-in can do that on cue) ------------------------------


class FlakyPeer:
    """A peer pod's gateway on TCP: reads each request, closes the first `drop` connections without answering,
    then answers every request with a chaser aggregate naming the key."""

    def __init__(self, drop: int):
        self.drop = drop
        self.connections = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.server.getsockname()[1]}"
        accept_forever(self.server, self._serve)

    def _serve(self, conn: socket.socket):
        with self.lock:  # each connection thread takes its own number
            self.connections += 1
            drop = self.connections <= self.drop
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    if drop:
                        return  # the request was read, never answered: the connection just closes
                    key = head.split(b" ")[1].rsplit(b"/", 1)[-1].decode()
                    body = json.dumps({"type": "com.polecatworks.chaser.Aggregate", "names": [key], "count": 1,
                                       "latest": 5, "longest": 6}).encode()
                    # Counted before sending: the client may read the answer (and the test check the count)
                    # before this thread runs again.
                    with self.lock:
                        self.answered += 1
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                 % len(body) + body)

    def close(self):
        self.server.close()


def test_forwarder_retries_once_on_another_connection_then_gives_up(gateway):
    once = FlakyPeer(drop=1)
    never = FlakyPeer(drop=1_000)
    fake = FakeIngestor(gateway.socket_path, {b"remote": once.endpoint, b"gone": never.endpoint})
    try:
        _wait(lambda: requests.get(f"{gateway.health}/hams/ready", timeout=1).status_code == 200, 10, "ready")
        # The first connection closes with the request unanswered: sent again on a second one, answered there.
        r = requests.get(f"{gateway.api}/chaser/remote", timeout=10)
        assert r.status_code == 200 and r.json()["names"] == ["remote"], r.text
        assert once.connections >= 2 and once.answered == 1
        # Every connection closes: one retry, then 503 owner-unreachable with Retry-After (no endless loop).
        r = requests.get(f"{gateway.api}/chaser/gone", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert assert_error_shape(r.content)["error"] == "owner-unreachable"
        assert never.connections == 2
    finally:
        fake.close()
        once.close()
        never.close()
