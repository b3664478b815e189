#!/usr/bin/env python3
"""Forwarding benchmark (make bench-forwarding): two pods on 127.0.0.2/.3 (same ports) and one fresh tansu.

Finds a key owned by each pod (each pod's local key listing), then runs `wrk --latency` through pod A's
gateway against A's own key (served over its ingestor socket) and B's key (forwarded to B's gateway over the
keep-alive pool). Prints req/s, p50 and p99 of both and the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))

from conftest import Binaries, Pod, Tansu, run_environment, wait_until  # noqa: E402

HOSTS = ["127.0.0.2", "127.0.0.3"]


def port_free_on_all(hosts: list[str]) -> int:
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on every pod address")


def make_pod(binaries: Binaries, tansu: Tansu, workdir: Path, host: str, port: int, health: int) -> Pod:
    d = workdir / host
    (d / "sock").mkdir(parents=True)
    config = {
        "log": {"level": "warning"},
        "pod": {"name": f"pod-{host}", "ip": host},
        "kafka": {
            "bootstrapServers": tansu.bootstrap,
            "commitInterval": 100,
            "properties": {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500},
        },
        "ingestor": {"socket": str(d / "sock" / "ingestor.sock"), "stateDir": str(d / "state"),
                     "schemaDir": str(ROOT / "schemas")},
        "gateway": {"bindAddress": host, "port": port, "healthPort": health},
    }
    return Pod(binaries, d, config, run_environment(), host)


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no p{pct} in wrk output:\n{out}")
        return float(m.group(1)) * units[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50": latency("50"), "p90": latency("90"), "p99": latency("99"), "non2xx": int(bad.group(1)) if bad else 0,
            "errors": errors.group(0) if errors else ""}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory of the built executables")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    binaries = Binaries(Path(args.bin) / "k8s-micro-ingestor", Path(args.bin) / "k8s-micro-gateway")
    with tempfile.TemporaryDirectory(prefix="k8s-micro-fwd-") as tmp:
        workdir = Path(tmp)
        tansu = Tansu(workdir)
        pods: list[Pod] = []
        try:
            tansu.create_topic("input", 4)
            port, health = port_free_on_all(HOSTS), port_free_on_all(HOSTS)
            pods = [make_pod(binaries, tansu, workdir, h, port, health) for h in HOSTS]
            for pod in pods:
                pod.start_ingestor()
                pod.start_gateway()
            for pod in pods:
                pod.wait_ready(90)
            pods[0].write_config()
            subprocess.run([str(binaries.ingestor), "generate", "--config", str(pods[0].config_path), "--total",
                            "400", "--rate", "0", "--keys", "20", "--seed", "1"],
                           env=run_environment(), cwd=ROOT, check=True, capture_output=True, timeout=120)
            a, b = pods

            def keys_settled():
                # Each pod's own keys (default scope), both non-empty, and B's key answered through A.
                ka = requests.get(f"{a.api}/chaser", timeout=2).json()["keys"]
                kb = requests.get(f"{b.api}/chaser", timeout=2).json()["keys"]
                if not ka or not kb:
                    return None
                la, fb = quote(ka[0], safe=""), quote(kb[0], safe="")
                ok = all(requests.get(f"{a.api}/chaser/{k}", timeout=2).status_code == 200 for k in (la, fb))
                return (la, fb) if ok else None

            local_key, remote_key = wait_until(keys_settled, 90, interval=0.5, what="a key on each pod")
            time.sleep(2)  # let the last announcements and commits settle
            results = {}
            for name, key in (("local", local_key), ("forwarded", remote_key)):
                target = f"{a.api}/chaser/{key}"
                wrk(target, 2, args.connections)  # warm-up: connections, pools, caches
                procs = {f"{p.host[-1]}.{n}": p.procs[n].pid for p in pods for n in ("gateway", "ingestor")}
                before = {k: cpu_seconds(pid) for k, pid in procs.items()}
                results[name] = wrk(target, args.seconds, args.connections)
                # CPU per request of each process: what a lookup costs, whatever else runs on the machine.
                n = results[name]["rps"] * args.seconds
                results[name]["cpu"] = {k: (cpu_seconds(pid) - before[k]) / n * 1e6 for k, pid in procs.items()}
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"\nforwarding benchmark: wrk -t1 -c{args.connections} -d{args.seconds}s through {a.host}'s gateway"
                  f" (local key {local_key!r}, forwarded key {remote_key!r} owned by {b.host}); {args.bin}; "
                  f"load average {load}")
            print(f"{'':10} {'req/s':>10} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
            for name, r in results.items():
                print(f"{name:10} {r['rps']:>10.0f} {r['p50']:>9.2f} {r['p90']:>9.2f} {r['p99']:>9.2f} "
                      f"{r['non2xx']:>8} {r['errors']}")
            print("CPU µs per request (pod .2 = A, .3 = B):")
            for name, r in results.items():
                cpu = r["cpu"]
                print(f"{name:10} " + " ".join(f"{k} {v:5.1f}" for k, v in sorted(cpu.items()))
                      + f"  total {sum(cpu.values()):5.1f}")
            lo, fw = results["local"], results["forwarded"]
            print(f"forwarded/local: req/s x{fw['rps'] / lo['rps']:.2f}, p50 x{fw['p50'] / lo['p50']:.2f}, "
                  f"p90 x{fw['p90'] / lo['p90']:.2f}, p99 x{fw['p99'] / lo['p99']:.2f}")
            return 1 if lo["non2xx"] or fw["non2xx"] else 0
        finally:
            for pod in pods:
                pod.stop()
            tansu.stop()


if __name__ == "__main__":
    sys.exit(main())
