"""Fault tooling for integration tests: a durable broker, a TCP fault proxy, process signals. Loopback only.

    from faultkit import DurableTansu, FaultProxy, kill9, sigstop, sigcont, frozen

DurableTansu(workdir)
    tansu on `s3://tansu/` served by `localbucket` from `workdir/s3` (topics, records and group offsets survive a
    broker restart). Clients reach it THROUGH its FaultProxy: tansu advertises the proxy's address in metadata,
    so every connection (bootstrap and the broker connections learned from metadata) crosses the proxy.
    `.bootstrap` (the proxy's host:port: give this to clients), `.direct` (the broker's own host:port),
    `.proxy` (the FaultProxy), `.create_topic(name, partitions)`, `.kill9()`, `.restart()` (same ports, same
    storage), `.stop()` (broker, proxy and S3 server), `.pause()` / `.resume()` (SIGSTOP / SIGCONT: a stalled
    broker whose sockets stay open).

FaultProxy(upstream_host, upstream_port)
    A thread-per-direction TCP proxy on 127.0.0.1 with modes switchable at run time, for all connections or
    only those of some Kafka clients (`clients="podb"` matches the client.id of the connection's first
    request, e.g. `k8s-micro-podb-consumer`):
      pass()           forward as is
      latency(ms)      forward every chunk `ms` later, in each direction (a round trip gains 2 * ms)
      blackhole()      accept and hold: nothing is forwarded either way and nothing is closed (packets to a
                       dead link); existing connections freeze too, and resume when the mode goes back to pass
      reset()          close every matching connection with a TCP RST, existing and new ones
    `.port`, `.address`, `.stop()`. `.connections(clients=None)` counts live connections.

kill9(proc) / sigstop(proc) / sigcont(proc); `with frozen(proc): ...` (SIGSTOP for the block).

Supervisor(pod, "ingestor")
    Kubernetes' restartPolicy Always for one of a pod's processes: when it exits on its own it is started
    again (after `backoff` s); `.exits` lists the exit statuses seen. Use as a context manager; stop it
    (leave the block) before a deliberate SIGTERM.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import requests

from conftest import ROOT, TANSU, VENV, create_topic, free_port, run_environment, stop_process, wait_until

# --- processes ------------------------------------------------------------------------------------------------


def kill9(proc: subprocess.Popen, wait: float = 10) -> int | None:
    """SIGKILL and reap; returns the exit status (-9), or the status it already had."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(wait)


def sigstop(proc: subprocess.Popen) -> None:
    """Freezes the process (its sockets stay open: a stalled peer, not a dead one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGSTOP)


def sigcont(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def frozen(proc: subprocess.Popen):
    sigstop(proc)
    try:
        yield proc
    finally:
        sigcont(proc)


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class BackgroundLoop:
    """A daemon thread running `_run` for the duration of a `with` block; `_run` ends when `_stop` is set."""

    def __init__(self, name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        raise NotImplementedError


class Supervisor(BackgroundLoop):
    def __init__(self, pod, name: str = "ingestor", backoff: float = 1.0):
        super().__init__(f"supervise-{name}")
        self.pod = pod
        self.name = name
        self.backoff = backoff
        self.exits: list[int] = []

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            proc = self.pod.procs.get(self.name)
            if proc is None or proc.poll() is None:
                continue
            self.exits.append(proc.returncode)
            if self._stop.wait(self.backoff):
                return
            getattr(self.pod, f"start_{self.name}")()


# --- the fault proxy ------------------------------------------------------------------------------------------

PASS, LATENCY, BLACKHOLE, RESET = "pass", "latency", "blackhole", "reset"


def kafka_client_id(first: bytes) -> str | None:
    """The client.id of a Kafka request (size, api key, version, correlation id, nullable int16 string)."""
    if len(first) < 14:
        return None
    n = struct.unpack(">h", first[12:14])[0]
    if n < 0 or len(first) < 14 + n:
        return None
    return first[14 : 14 + n].decode(errors="replace")


class _Link:
    """One proxied connection: a reader thread per direction, a writer thread per direction (for latency)."""

    def __init__(self, proxy: "FaultProxy", client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.client_id: str | None = None
        self.closed = threading.Event()

    def rule(self) -> tuple[str, int]:
        return self.proxy._rule_for(self.client_id)

    def start(self) -> None:
        threading.Thread(target=self._open, daemon=True, name="faultproxy-open").start()

    def _open(self) -> None:
        try:
            self.client.settimeout(None)
            first = self._read_first()
            if first is None:
                return self.close()
            self.client_id = kafka_client_id(first)
            if not self._hold_while_blackholed():
                return
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=5)
            self.upstream.settimeout(None)
            self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            return self.close(rst=True)
        self._pipe(self.client, self.upstream, first)
        self._pipe(self.upstream, self.client, b"")

    def _read_first(self) -> bytes | None:
        """Reads the first request in full (its header names the client), or None if the peer went away."""
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = self.client.recv(65536)
            if not chunk:
                return None
            buf += chunk
            if len(buf) >= 4 and struct.unpack(">i", buf[:4])[0] > 1 << 24:
                break  # not Kafka: forward as is
        return buf

    def _hold_while_blackholed(self) -> bool:
        """Blocks while the connection's rule is blackhole; False if it must be reset or the proxy stopped."""
        with self.proxy._cond:
            while True:
                mode, _ = self.rule()
                if self.proxy._stopped or self.closed.is_set():
                    return False
                if mode == RESET:
                    break
                if mode != BLACKHOLE:
                    return True
                self.proxy._cond.wait(0.5)
        self.close(rst=True)
        return False

    def _pipe(self, src: socket.socket, dst: socket.socket, first: bytes) -> None:
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        ready = threading.Condition()

        def reader() -> None:
            if first:
                with ready:
                    queue.append((self._due(), first))
                    ready.notify()
            try:
                while not self.closed.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    with ready:
                        queue.append((self._due(), data))
                        ready.notify()
            except OSError:
                pass
            with ready:
                queue.append((0.0, b""))
                ready.notify()

        def writer() -> None:
            try:
                while True:
                    with ready:
                        while not queue:
                            ready.wait()
                        due, data = queue.popleft()
                    if not data:
                        break
                    if not self._hold_while_blackholed():
                        return
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    dst.sendall(data)
            except OSError:
                pass
            self.close()

        threading.Thread(target=reader, daemon=True, name="faultproxy-read").start()
        threading.Thread(target=writer, daemon=True, name="faultproxy-write").start()

    def _due(self) -> float:
        mode, ms = self.rule()
        return time.monotonic() + (ms / 1000.0 if mode == LATENCY else 0.0)

    def close(self, rst: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            if s is None:
                continue
            try:
                if rst:  # SO_LINGER 0: close sends RST, not FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        self.proxy._forget(self)


class FaultProxy:
    """A TCP proxy on loopback in front of one upstream; modes switch at run time (see the module doc)."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int | None = None, host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self._cond = threading.Condition()
        self._default: tuple[str, int] = (PASS, 0)
        self._rules: dict[str, tuple[str, int]] = {}
        self._links: set[_Link] = set()
        self._stopped = False
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port or 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
        threading.Thread(target=self._accept, daemon=True, name="faultproxy-accept").start()

    # modes

    def set(self, mode: str, ms: int = 0, clients: str | None = None) -> None:
        with self._cond:
            if clients is None:
                self._default = (mode, ms)
                self._rules.clear()
            else:
                self._rules[clients] = (mode, ms)
            self._cond.notify_all()
            links = list(self._links)
        if mode == RESET:
            for link in links:
                if link.rule()[0] == RESET:
                    link.close(rst=True)

    def passthrough(self, clients: str | None = None) -> None:
        self.set(PASS, clients=clients)

    def latency(self, ms: int, clients: str | None = None) -> None:
        self.set(LATENCY, ms, clients=clients)

    def blackhole(self, clients: str | None = None) -> None:
        self.set(BLACKHOLE, clients=clients)

    def reset(self, clients: str | None = None) -> None:
        self.set(RESET, clients=clients)

    def _rule_for(self, client_id: str | None) -> tuple[str, int]:
        if client_id:
            for pattern, rule in self._rules.items():
                if pattern in client_id:
                    return rule
        return self._default

    def connections(self, clients: str | None = None) -> int:
        with self._cond:
            return sum(1 for link in self._links if clients is None or (link.client_id and clients in link.client_id))

    # plumbing

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            link = _Link(self, conn)
            with self._cond:
                self._links.add(link)
            if self._default[0] == RESET and not self._rules:
                link.close(rst=True)
                continue
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._cond:
            self._links.discard(link)

    def close_all(self, rst: bool = True) -> None:
        """Drops every live connection (clients reconnect through the proxy)."""
        with self._cond:
            links = list(self._links)
        for link in links:
            link.close(rst=rst)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        try:
            self._listener.close()
        except OSError:
            pass
        self.close_all()


# --- the durable broker ---------------------------------------------------------------------------------------

# localbucket with If-Match honoured: tansu's metadata updates rely on it (scripts/s3server.py says why).
S3_SERVER = [str(VENV / "bin" / "python"), str(ROOT / "scripts" / "s3server.py")]
S3_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_ALLOW_HTTP": "true"}


class LocalBucket:
    """`localbucket` (scripts/s3server.py) serving `root` (one folder per bucket) on a loopback port."""

    def __init__(self, root: Path, log: Path, host: str = "127.0.0.1"):
        self.root = root
        self.host = host
        self.port = free_port(host)
        self.endpoint = f"http://{host}:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([*S3_SERVER, "--host", host, "--port", str(self.port), str(root)],
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT, env=run_environment())
        wait_until(lambda: listening(host, self.port), 20, what=f"localbucket on {self.port}")

    def create_bucket(self, name: str) -> None:
        answer = requests.put(f"{self.endpoint}/{name}", timeout=5)
        assert answer.status_code in (200, 409), answer.text  # 409: it exists (a restart)

    def stop(self) -> None:
        stop_process(self.proc, 5)


class DurableTansu:
    """tansu on s3://tansu/ (localbucket), reached through a FaultProxy that it advertises (see module doc)."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1"):
        self.host = host
        self.workdir = workdir
        self.log = workdir / "tansu-durable.log"
        self.s3 = LocalBucket(workdir / "s3", workdir / "localbucket.log", host)
        self.s3.create_bucket("tansu")
        self.port = free_port(host)
        self.direct = f"{host}:{self.port}"
        self.proxy = FaultProxy(host, self.port)
        self.bootstrap = self.proxy.address
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        env = run_environment()
        env.update(S3_ENV, AWS_ENDPOINT=self.s3.endpoint)
        self.proc = subprocess.Popen(
            [str(TANSU), "broker", "--listener-url", f"tcp://{self.direct}",
             "--advertised-listener-url", f"tcp://{self.bootstrap}", "--storage-engine", "s3://tansu/"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: listening(self.host, self.port), 30, what=f"durable tansu on {self.direct}")

    def create_topic(self, name: str, partitions: int = 4, config: str | None = None) -> None:
        create_topic(self.direct, name, partitions, config)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """The broker dies at once (no flush, no goodbye); clients see their connections reset."""
        if self.proc is not None:
            kill9(self.proc)
        self.proxy.close_all()

    def stop(self, timeout: float = 5) -> None:
        """Broker only (graceful); `close()` also stops the proxy and the S3 server."""
        if self.running and self.proc is not None:
            stop_process(self.proc, timeout)
        self.proxy.close_all()

    def restart(self) -> None:
        """Same ports, same storage; kills a running broker first."""
        if self.running:
            self.kill9()
        wait_until(lambda: not listening(self.host, self.port), 10, what="broker port free")
        self.restarts += 1
        self._start()

    def pause(self) -> None:
        if self.proc is not None:
            sigstop(self.proc)

    def resume(self) -> None:
        if self.proc is not None:
            sigcont(self.proc)

    def close(self) -> None:
        self.resume()
        self.stop()
        self.proxy.stop()
        self.s3.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
