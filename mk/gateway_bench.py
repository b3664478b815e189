#!/usr/bin/env python3
"""Gateway benchmark (make bench-gateway): wrk against the real gateway + ingestor + tansu, nginx as ceiling.

One run: a fresh tansu, events for N keys, one ingestor and one gateway (release builds), and nginx with one
worker serving a static body of the same size as an aggregate, all on this machine. Prints req/s and latency
percentiles for /hello and /chaser/{key} (keys rotate through a wrk Lua script) at 50 and 200 connections,
nginx in the same run, and the gateway's RSS idle and with 1,000 open keep-alive connections. Two nginx
ceilings: a static file with nginx's default keep-alive (`keepalive_requests 1000`: wrk reconnects after every
1000 requests), and `return 200` with the same body and unlimited keep-alive, nginx at its best (the ratio). `--json FILE` also writes
the rows (mk/bench_plots.py draws them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_detail(pid: int) -> str:
    """RSS split into anonymous and file-backed pages (smaps_rollup), plus the thread count."""
    kb = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            kb[parts[0].rstrip(":")] = int(parts[1])
    anon, rss = kb.get("Anonymous", 0), kb.get("Rss", 0)
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return f"{rss / 1024:.1f} MB (anon {anon / 1024:.1f}, file {(rss - anon) / 1024:.1f}; {threads} threads)"


def open_connections(port: int, count: int) -> list[socket.socket]:
    """`count` keep-alive connections, each having completed one request (so each has its buffers)."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        s.recv(4096)
    time.sleep(0.5)
    return socks


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            lat[pct] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p75": lat.get("75"), "p90": lat.get("90"), "p99": lat.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory of the release binaries")
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--gateway", help="gateway binary to measure (default: <bin>/k8s-micro-gateway)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows and RSS figures to FILE")
    ap.add_argument("--rss-only", action="store_true",
                    help="only the gateway's RSS, idle and with 1,000 connections (no wrk, no nginx)")
    args = ap.parse_args()
    bin_dir = Path(args.bin)
    gateway_bin = Path(args.gateway) if args.gateway else bin_dir / "k8s-micro-gateway"
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="k8s-micro-bench-gw-"))
    procs: list[subprocess.Popen] = []
    try:
        broker = free_port()
        url = f"tcp://127.0.0.1:{broker}"
        procs.append(subprocess.Popen(["tansu", "broker", "--listener-url", url, "--advertised-listener-url", url],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        time.sleep(1)
        subprocess.run(["tansu", "topic", "create", "--broker", url, "--partitions", "4", "input"], check=True,
                       capture_output=True, env=env)
        api, health = free_port(), free_port()
        config = work / "config.yaml"
        config.write_text(f"""log: {{level: warning}}
kafka:
  bootstrapServers: 127.0.0.1:{broker}
  properties: {{session.timeout.ms: 6000, heartbeat.interval.ms: 1000}}
ingestor: {{socket: {work}/sock/ingestor.sock, stateDir: {work}/state, schemaDir: {ROOT}/schemas}}
gateway: {{bindAddress: 127.0.0.1, port: {api}, healthPort: {health}, maxConnections: 4096}}
""")
        log = (work / "processes.log").open("wb")
        procs.append(subprocess.Popen([str(bin_dir / "k8s-micro-ingestor"), "run", "--config", str(config)],
                                      stdout=log, stderr=log, env=env))
        gateway = subprocess.Popen([str(gateway_bin), "--config", str(config)],
                                   stdout=log, stderr=log, env=env)
        procs.append(gateway)
        base, hbase = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{health}"
        wait(lambda: get(f"{hbase}/hams/ready")[0] == 200, 90, "gateway ready")
        time.sleep(1)
        idle_rss = rss_mb(gateway.pid)
        if args.rss_only:
            idle = rss_detail(gateway.pid)
            socks = open_connections(api, 1000)
            busy = rss_detail(gateway.pid)
            for s in socks:
                s.close()
            print(f"{gateway_bin}: RSS idle {idle}; with 1,000 open connections {busy}")
            return
        subprocess.run([str(bin_dir / "k8s-micro-ingestor"), "generate", "--config", str(config), "--rate", "0",
                        "--total", str(args.keys * 4), "--keys", str(args.keys), "--mix", "1"],
                       check=True, capture_output=True, env=env)

        def chaser_keys() -> list[str]:
            status, body = get(f"{base}/chaser?limit=10000")
            return json.loads(body)["keys"] if status == 200 else []

        # Random keys: a few of N may get no event. Wait until the served set stops growing.
        seen = {"n": -1, "stable": 0}

        def settled() -> bool:
            n = len(chaser_keys())
            seen["stable"] = seen["stable"] + 1 if n == seen["n"] and n > 0 else 0
            seen["n"] = n
            return seen["stable"] >= 10

        wait(settled, 90, "the served keys to settle")
        keys = chaser_keys()
        aggregate = get(f"{base}/chaser/{keys[0]}")[1]

        lua = work / "keys.lua"
        lua.write_text("keys = {" + ",".join(json.dumps(k) for k in keys) + "}\n"
                       "i = 0\nrequest = function()\n  i = i % #keys + 1\n"
                       "  return wrk.format(\"GET\", \"/chaser/\" .. keys[i])\nend\n")

        nginx_port, nginx_best = free_port(), free_port()
        (work / "www").mkdir()
        work.chmod(0o755)  # nginx workers run as www-data
        (work / "www" / "aggregate.json").write_bytes(aggregate)
        body = aggregate.decode().replace("\\", "\\\\").replace("'", "\\'")
        # Second server: nginx at its best, no file system, a connection kept for any number of requests.
        (work / "nginx.conf").write_text(f"""worker_processes 1; daemon off; pid {work}/nginx.pid;
error_log {work}/nginx-error.log; events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{nginx_port}; root {work}/www; }}
  server {{ listen 127.0.0.1:{nginx_best}; keepalive_requests 1000000000; keepalive_timeout 3600s;
    location / {{ default_type application/json; return 200 '{body}'; }} }} }}
""")
        procs.append(subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait(lambda: get(f"http://127.0.0.1:{nginx_port}/aggregate.json")[0] == 200, 10, "nginx")
        assert get(f"http://127.0.0.1:{nginx_best}/chaser")[1] == aggregate, "nginx return 200 body"

        rows = []
        for conns in (50, 200):
            best = wrk(f"http://127.0.0.1:{nginx_best}/chaser", conns, args.seconds)
            nginx = wrk(f"http://127.0.0.1:{nginx_port}/aggregate.json", conns, args.seconds)
            hello = wrk(f"{base}/hello", conns, args.seconds)
            chaser = wrk(base, conns, args.seconds, lua)
            rows.append((conns, best, nginx, hello, chaser))

        socks = open_connections(api, 1000)
        busy_rss = rss_mb(gateway.pid)
        for s in socks:
            s.close()

        print(f"\nGateway benchmark ({len(keys)} keys, wrk -t1 -d{args.seconds}s, nginx 1 worker, "
              f"{len(aggregate)}-byte body; 'of nginx' = of nginx return 200)")
        print(f"{'conns':>5} {'target':<18} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'of nginx':>9} {'non-2xx':>8}")
        table = []
        for conns, best, nginx, hello, chaser in rows:
            for name, r in (("nginx return 200", best), ("nginx static file", nginx), ("/hello", hello),
                            ("/chaser/{key}", chaser)):
                share = f"{100 * r['rps'] / best['rps']:.0f}%"
                print(f"{conns:>5} {name:<18} {r['rps']:>10.0f} {r['p50'] or 0:>8.2f} {r['p99'] or 0:>8.2f} "
                      f"{share:>9} {r['non2xx']:>8}")
                table.append({"connections": conns, "target": name, **r})
        print(f"gateway RSS idle: {idle_rss:.1f} MB; with 1,000 open connections: {busy_rss:.1f} MB")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({
                "keys": len(keys), "seconds": args.seconds, "load": os.getloadavg()[0],
                "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": table,
                "rss_idle_mb": idle_rss, "rss_1k_connections_mb": busy_rss}, indent=1) + "\n")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
