#!/usr/bin/env python3
"""Connection-abuse benchmark (make bench-abuse): the real gateway alone (no broker; /hello is its own route).

For each attack, started in its own process, a well-behaved client sends `GET /hello` on fresh connections for
`--seconds` and the gateway's RSS is sampled; prints the client's p50/p99/max latency, its non-200 answers and
the gateway's peak RSS, next to a no-attack baseline. Attacks: N idle half-open connections (slowloris heads),
byte-a-second drippers, 1 MiB headers, pipelining floods that read, clients that never read. Loopback only;
every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def attack_idle(port: int, seconds: float, count: int) -> None:
    held = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except OSError:
            pass
    time.sleep(seconds)


def attack_drip(port: int, seconds: float, count: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(min(count, 2_000))]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                pass
        time.sleep(1)


def attack_big_header(port: int, seconds: float, count: int) -> None:
    big = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(big)
                s.recv(4096)
        except OSError:
            pass


def attack_pipeline(port: int, seconds: float, count: int) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(HELLO * 2_000)
            got = 0
            while got < 2_000 and time.monotonic() < end + 5:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk.count(b"Hello back")


def attack_no_read(port: int, seconds: float, count: int) -> None:
    socks = []
    for _ in range(100):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        try:
            s.send(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 2_000)
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(seconds)


ATTACKS = {
    "none": None,
    "idle half-open": attack_idle,
    "drippers (1 B/s)": attack_drip,
    "1 MiB headers": attack_big_header,
    "pipelining floods": attack_pipeline,
    "clients never reading": attack_no_read,
}


def polite(port: int, seconds: float) -> tuple[list[float], int]:
    latencies, bad = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                bad += 1
        except OSError:
            bad += 1
        latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(0.01)
    return latencies, bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=10_000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{'attack':24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-200':>8} {'RSS MB':>8}")
    for name, attack in ATTACKS.items():
        port, health = free_port(), free_port()
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.Popen(
                [args.bin, "--set", f"gateway.port={port}", "--set", f"gateway.healthPort={health}",
                 "--set", "gateway.bindAddress=127.0.0.1", "--set", f"ingestor.socket={tmp}/none.sock",
                 "--set", "log.level=error"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                attacker = None
                if attack:
                    attacker = multiprocessing.Process(target=attack, args=(port, args.seconds + 3, args.idle))
                    attacker.start()
                    time.sleep(2)  # let the attack build up
                peak = rss_mb(proc.pid)
                sampler_end = time.monotonic() + args.seconds
                latencies, bad = [], 0
                while time.monotonic() < sampler_end:
                    lat, b = polite(port, 1.0)
                    latencies += lat
                    bad += b
                    peak = max(peak, rss_mb(proc.pid))
                if attacker:
                    attacker.join(args.seconds + 30)
                    if attacker.is_alive():
                        attacker.kill()
                latencies.sort()
                p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
                print(f"{name:24} {p(0.5):8.2f} {p(0.99):8.2f} {latencies[-1]:8.2f} {bad:8d} {peak:8.1f}")
            finally:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
