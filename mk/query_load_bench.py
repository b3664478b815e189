#!/usr/bin/env python3
"""Queries never block consumption (issue 4): the ingest rate with and without 10k socket gets/s.

make bench-query-load [BENCH_EVENTS=300000]: per run a fresh tansu with the same pre-produced events and one
at_least_once ingestor; the second run adds a client thread that pipelines GETs of known keys over the
ingestor's socket at a fixed rate for the whole ingest. Prints both rates, their difference, and the gets
actually answered per second.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingestor_bench import Broker, consume_until, write_config  # noqa: E402


def string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">I", len(b)) + b


class QueryLoad(threading.Thread):
    """Sends `rate` GETs per second in batches every 10 ms on one connection; counts the answers."""

    def __init__(self, path: str, rate: int, keys: list[str]):
        super().__init__(daemon=True)
        self.path, self.rate, self.keys = path, rate, keys
        self.stop = threading.Event()
        self.answered = 0
        self.started = 0.0
        self.ended = 0.0

    def run(self) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.path)
            s.setblocking(False)
            per_tick = max(1, self.rate // 100)
            next_id, i, buf = 1, 0, b""
            self.started = time.monotonic()
            tick = self.started
            while not self.stop.is_set():
                frames = []
                for _ in range(per_tick):
                    body = string("chaser") + string(self.keys[i % len(self.keys)])
                    frames.append(struct.pack(">IBBIBB", 8 + len(body), 1, 0, next_id, 3, 0) + body)
                    next_id, i = next_id + 1, i + 1
                data = b"".join(frames)
                while data:
                    try:
                        data = data[s.send(data):]
                    except BlockingIOError:
                        buf = self._drain(s, buf)
                tick += 0.01
                while time.monotonic() < tick:
                    buf = self._drain(s, buf)
                    time.sleep(0.001)
            self.ended = time.monotonic()

    def _drain(self, s: socket.socket, buf: bytes) -> bytes:
        try:
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    return buf
                buf += chunk
        except BlockingIOError:
            pass
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            buf = buf[4 + n:]
            self.answered += 1
        return buf


def ingest(bin_path: str, events: int, keys: int, partitions: int, query_rate: int) -> tuple[float, float]:
    workdir = Path(tempfile.mkdtemp(prefix="k8s-micro-bench-q-"))
    broker = Broker(workdir)
    try:
        subprocess.run(["tansu", "topic", "create", "--broker", f"tcp://127.0.0.1:{broker.port}", "--partitions",
                        str(partitions), "input"], check=True, capture_output=True)
        cfg = write_config(workdir, broker.port, "at_least_once")
        subprocess.run([bin_path, "generate", "--config", str(cfg), "--total", str(events), "--rate", "0",
                        "--keys", str(keys), "--seed", "1", "--mix", "1"], check=True, capture_output=True)
        proc = subprocess.Popen([bin_path, "run", "--config", str(cfg)], stdout=(workdir / "run.log").open("wb"),
                                stderr=subprocess.STDOUT)
        sock = str(workdir / "ingestor.sock")
        load = None

        def start_queries() -> None:
            nonlocal load
            if query_rate:
                load = QueryLoad(sock, query_rate, [f"device-{k:05d}" for k in range(keys)])
                load.start()

        first, consumed = consume_until(sock, events, 600, start_queries)
        end = time.monotonic()
        answered_rate = 0.0
        if load:
            load.stop.set()
            load.join(5)
            answered_rate = load.answered / max(load.ended - load.started, 1e-6)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if first is None or consumed < events:
            raise SystemExit(f"incomplete run ({consumed:.0f} of {events}); see {workdir}/run.log")
        return (events - first[1]) / max(end - first[0], 1e-6), answered_rate
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--query-rate", type=int, default=10_000)
    a = p.parse_args()
    quiet, _ = ingest(a.bin, a.events, a.keys, a.partitions, 0)
    loaded, answered = ingest(a.bin, a.events, a.keys, a.partitions, a.query_rate)
    print(f"ingest without queries: {quiet:,.0f} events/s; with {a.query_rate:,} gets/s offered "
          f"({answered:,.0f}/s answered): {loaded:,.0f} events/s; difference {100 * (quiet - loaded) / quiet:+.1f}%"
          f" ({a.events} chaser events, {a.keys} keys, at_least_once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
