#!/usr/bin/env python3
"""Ingestor benchmark (make bench-ingestor): per run a fresh tansu, N pre-produced events, one ingestor.

Prints the raw consume ceiling (same librdkafka, no processing) and, for at_least_once and exactly_once_v2,
events/s from the first to the last consumed record (group join excluded) and the ingestor's peak RSS.
`--json FILE` also writes the figures and the memory sampled over each run (mk/bench_plots.py draws them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(sock: str) -> dict[str, float]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(struct.pack(">IBBIBB", 8, 1, 0, 1, 7, 0))
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    text = buf[16:].decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def consume_until(sock: str, events: int, timeout: float, on_first=None) -> tuple[tuple[float, float] | None, float]:
    """Polls the ingestor's records_consumed_total until `events`: ((monotonic, consumed) at the first record seen,
    or None; consumed at the end). `on_first` runs once, when the first records show."""
    first, consumed = None, 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and consumed < events:
        time.sleep(0.05)
        try:
            consumed = metrics(sock).get("records_consumed_total", 0)
        except OSError:
            continue
        if consumed > 0 and first is None:
            first = (time.monotonic(), consumed)
            if on_first:
                on_first()
    return first, consumed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int, int]:
    """The whole machine's CPU time so far, from /proc/stat: (total, idle + iowait, steal) in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[7]


def machine_shares(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[float, float]:
    """Idle and steal shares of all CPUs between two `machine_jiffies` readings. Idle is what no process used
    (the stages of the pipeline all waited at once); steal is time the hypervisor gave another guest."""
    total = max(after[0] - before[0], 1)
    return (after[1] - before[1]) / total, (after[2] - before[2]) / total


def thread_files(pid: int, name: str):
    """(thread name, text of /proc/<pid>/task/<tid>/<name>) per thread still there."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            yield (task / "comm").read_text().strip(), (task / name).read_text()
        except OSError:
            continue


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name summed): shows which thread is the bottleneck."""
    out: dict[str, float] = {}
    hz = os.sysconf("SC_CLK_TCK")
    for comm, stat in thread_files(pid, "stat"):
        fields = stat.rsplit(")", 1)[1].split()
        out[comm] = out.get(comm, 0.0) + (int(fields[11]) + int(fields[12])) / hz
        out[comm + " sys"] = out.get(comm + " sys", 0.0) + int(fields[12]) / hz
    return out


def thread_switches(pid: int) -> dict[str, int]:
    """Voluntary context switches per thread name: tens of thousands per run on the stream or commit thread
    mean it kept blocking on a lock (glibc's malloc arena, shared with another busy thread)."""
    out: dict[str, int] = {}
    for comm, status in thread_files(pid, "status"):
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                out[comm] = out.get(comm, 0) + int(line.split()[1])
    return out


def rss_split_mb(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MB now: file-backed is mostly LMDB pages and shared libraries."""
    vals = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Rss:", "Anonymous:"):
            vals[parts[0]] = int(parts[1]) / 1024
    anon = vals.get("Anonymous:", 0.0)
    return anon, vals.get("Rss:", 0.0) - anon


def smaps_groups(pid: int) -> dict[str, dict[str, float]]:
    """Resident MB per kind of mapping: "heap" (anonymous: malloc arenas, stacks), "lmdb" (the stores' data.mdb
    maps), "libs" (shared libraries and the binary), "other"; each with its anon, clean and dirty shares."""
    groups: dict[str, dict[str, float]] = {}
    cur: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else ""
            kind = ("heap" if name in ("", "[heap]") or name.startswith("[stack") else "lmdb"
                    if name.endswith(".mdb") else "libs" if ".so" in name or name.startswith("/") else "other")
            cur = groups.setdefault(kind, {})
        elif len(head) >= 2 and head[0] in ("Rss:", "Anonymous:", "Private_Dirty:", "Shared_Dirty:"):
            cur[head[0][:-1]] = cur.get(head[0][:-1], 0.0) + int(head[1]) / 1024
    return groups


def format_smaps(groups: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{kind} {g.get('Rss', 0):.1f} (anon {g.get('Anonymous', 0):.1f}, dirty "
                     f"{g.get('Private_Dirty', 0) + g.get('Shared_Dirty', 0):.1f})"
                     for kind, g in sorted(groups.items(), key=lambda kv: -kv[1].get("Rss", 0)))


def store_size(bin_path: str, cfg: Path, state: Path) -> dict:
    """Keys per store (`run --dump-store`, the ingestor stopped) and the bytes LMDB uses in each data.mdb: its last
    page number (from the newer of the two meta pages) times the page size, not the file's sparse or reserved size."""
    out = subprocess.run([bin_path, "run", "--config", str(cfg), "--dump-store"], check=True, capture_output=True)
    keys = {"chaser": 0, "billing": 0}
    for line in out.stdout.splitlines():
        store = json.loads(line).get("store")
        keys[store] = keys.get(store, 0) + 1
    used = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for store in keys:
        with (state / store / "data.mdb").open("rb") as f:
            metas = []
            for n in range(2):  # MDB_meta after a 16-byte page header: last_pg at +136, txnid at +144 (64-bit)
                f.seek(n * page + 16 + 120)
                last_pg, txnid = struct.unpack("<QQ", f.read(16))
                metas.append((txnid, last_pg))
            used += (max(metas)[1] + 1) * page
    return {"store_keys": keys, "store_bytes": used}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Broker:
    def __init__(self, workdir: Path):
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(["tansu", "broker", "--listener-url", url, "--advertised-listener-url", url],
                                     stdout=(workdir / "tansu.log").open("wb"), stderr=subprocess.STDOUT)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("tansu did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def write_config(workdir: Path, port: int, guarantee: str, commit_interval: int = 100,
                 extra_properties: dict[str, str] | None = None, cache_max_entries: int | None = None) -> Path:
    cfg = workdir / "config.yaml"
    cfg.write_text(json.dumps({
        "log": {"level": "warning"},
        "kafka": {"bootstrapServers": f"127.0.0.1:{port}", "processingGuarantee": guarantee,
                  "commitInterval": commit_interval,
                  **({"cacheMaxEntries": cache_max_entries} if cache_max_entries is not None else {}),
                  "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000",
                                 **(extra_properties or {})}},
        "ingestor": {"socket": str(workdir / "ingestor.sock"), "stateDir": str(workdir / "state"),
                     "schemaDir": str(ROOT / "schemas")},
    }))
    return cfg


def run(args, guarantee: str | None) -> dict:
    """One run; returns its figures (empty when incomplete)."""
    workdir = Path(tempfile.mkdtemp(prefix="k8s-micro-bench-"))
    broker = Broker(workdir)
    try:
        subprocess.run(["tansu", "topic", "create", "--broker", f"tcp://127.0.0.1:{broker.port}", "--partitions",
                        str(args.partitions), "input"], check=True, capture_output=True)
        extra = dict(p.split("=", 1) for p in args.property)
        cfg = write_config(workdir, broker.port, guarantee or "at_least_once", args.commit_interval, extra,
                           args.cache_max_entries)
        t0 = time.monotonic()
        subprocess.run([args.bin, "generate", "--config", str(cfg), "--total", str(args.events), "--rate", "0",
                        "--keys", str(args.keys), "--seed", "1"], check=True, capture_output=True)
        produce_s = time.monotonic() - t0
        if guarantee is None:
            out = subprocess.run([args.bin, "generate", "--config", str(cfg), "--consume-ceiling", "--total",
                                  str(args.events)], check=True, capture_output=True, text=True)
            print(f"raw consume ceiling: {out.stdout.strip()} (produce took {produce_s:.1f}s)")
            rate = re.search(r"= (\d+) msg/s", out.stdout)
            return {"events_per_s": float(rate.group(1))} if rate else {}
        proc = subprocess.Popen([args.bin, "run", "--config", str(cfg)], stdout=(workdir / "run.log").open("wb"),
                                stderr=subprocess.STDOUT)
        first = None
        switches0: dict[str, int] = {}
        profiler = None
        peak_anon = peak_file = 0.0
        last_sample = 0.0
        started = time.monotonic()
        memory: list[tuple[float, float, float]] = []  # (seconds since start, anon MB, file MB)
        consumed = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                consumed = metrics(str(workdir / "ingestor.sock")).get("records_consumed_total", 0)
            except OSError:
                continue
            if consumed > 0 and first is None:
                first = (time.monotonic(), consumed)
                cpu0 = cpu_seconds(proc.pid)
                threads0 = thread_cpu(proc.pid)
                switches0 = thread_switches(proc.pid)
                broker0 = cpu_seconds(broker.proc.pid)
                machine0 = machine_jiffies()
                if args.perf:
                    profiler = subprocess.Popen(
                        ["perf", "record", *(["-e", args.perf_event] if args.perf_event else ["-F", "499"]),
                         "-g", "--call-graph", "dwarf,16384", "-p", str(proc.pid),
                         "-o", args.perf, "--", "sleep", str(args.perf_seconds)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if time.monotonic() - last_sample >= 0.5:
                last_sample = time.monotonic()
                a, f = rss_split_mb(proc.pid)
                peak_anon, peak_file = max(peak_anon, a), max(peak_file, f)
                memory.append((round(last_sample - started, 2), round(a, 1), round(f, 1)))
            if consumed >= args.events:
                break
        end = time.monotonic()
        machine1 = machine_jiffies()
        try:
            final = metrics(str(workdir / "ingestor.sock"))
        except OSError:
            final = {}
        commits = final.get("commits_total", 0.0)
        latency = sum(v for k, v in final.items() if k.startswith("commit_latency_seconds_sum"))
        rss = peak_rss_mb(proc.pid)
        anon, file_backed = rss_split_mb(proc.pid)
        peak_anon, peak_file = max(peak_anon, anon), max(peak_file, file_backed)
        smaps = format_smaps(smaps_groups(proc.pid)) if args.smaps else ""
        cpu = cpu_seconds(proc.pid) - cpu0 if first else 0.0
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(proc.pid).items()} if first else {}
        switches = ({k: v - switches0.get(k, 0) for k, v in thread_switches(proc.pid).items()
                     if k in ("stream", "commit")} if first else {})
        broker_cpu = cpu_seconds(broker.proc.pid) - broker0 if first else 0.0
        if profiler:
            profiler.wait(60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if first is None or consumed < args.events:
            print(f"{guarantee}: incomplete ({consumed:.0f} of {args.events}); see {workdir}/run.log")
            return {}
        hits, misses = final.get("record_cache_hits_total", 0.0), final.get("record_cache_misses_total", 0.0)
        extra_figures = {"cache_hit_ratio": round(hits / max(hits + misses, 1), 4),
                         "threads_cpu_us_per_event": {k: round(v / max(args.events - first[1], 1) * 1e6, 3)
                                                      for k, v in threads.items() if not k.endswith(" sys")},
                         "broker_cpu_us_per_event": round(broker_cpu / max(args.events - first[1], 1) * 1e6, 3),
                         "voluntary_switches": switches}
        idle, steal = machine_shares(machine0, machine1)
        extra_figures.update(machine_idle=round(idle, 4), machine_steal=round(steal, 4))
        if args.store_size:
            extra_figures.update(store_size(args.bin, cfg, workdir / "state"))
        rate = (args.events - first[1]) / max(end - first[0], 1e-6)
        per_event_us = cpu / max(args.events - first[1], 1) * 1e6
        print(f"{guarantee}: {rate:,.0f} events/s over {end - first[0]:.1f}s, {per_event_us:.1f} us CPU/event "
              f"(all ingestor threads), peak RSS {rss:.1f} MB (now {anon:.1f} anon + {file_backed:.1f} file; "
              f"sampled peaks {peak_anon:.1f} anon, {peak_file:.1f} file) "
              f"({args.events} events, {args.keys} keys, {args.partitions} partitions, "
              f"commit every {args.commit_interval} ms)")
        wall = max(end - first[0], 1e-6)
        busiest = sorted(threads.items(), key=lambda kv: -kv[1])[:6]
        print("  CPU share of wall time: " + ", ".join(f"{name} {sec / wall:.0%}" for name, sec in busiest)
              + f"; tansu {broker_cpu / wall:.0%}; machine idle {idle:.0%}, steal {steal:.0%}; "
              f"load {os.getloadavg()[0]:.1f}")
        if switches:
            print("  voluntary context switches: " + ", ".join(f"{k} {v:,}" for k, v in sorted(switches.items())))
        if commits:
            print(f"  {commits:.0f} commits, {args.events / commits:,.0f} events and "
                  f"{latency / commits * 1e3:.1f} ms from hand-off to local store per commit")
        if smaps:
            print(f"  resident MB by mapping at the end: {smaps}")
        return {"events_per_s": rate, "cpu_us_per_event": per_event_us, "peak_rss_mb": rss, "peak_anon_mb": peak_anon,
                "peak_file_mb": peak_file, "first_record_s": round(first[0] - started, 2), **extra_figures,
                "memory": memory}
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--bin", default=str(ROOT / ".build" / "release" / "k8s-micro-ingestor"))
    p.add_argument("--only", choices=["ceiling", "at_least_once", "exactly_once_v2"])
    p.add_argument("--keep", action="store_true")
    p.add_argument("--commit-interval", type=int, default=100, help="kafka.commitInterval in ms")
    p.add_argument("--cache-max-entries", type=int, help="kafka.cacheMaxEntries (default: the binary's)")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="extra kafka.properties entry (repeatable), e.g. queued.max.messages.kbytes=2048")
    p.add_argument("--perf", metavar="FILE", help="perf record (dwarf call graphs) the ingestor into FILE once it "
                   "consumes (the profile itself slows the run: take its rate with a grain of salt)")
    p.add_argument("--perf-seconds", type=float, default=4.0)
    p.add_argument("--perf-event", metavar="EVENT", help="perf event to record instead of CPU samples, e.g. "
                   "sched:sched_switch for where threads block (off-CPU stacks)")
    p.add_argument("--store-size", action="store_true", help="after each run, count the stored keys and LMDB's used "
                   "bytes (adds a store dump per run)")
    p.add_argument("--json", metavar="FILE", help="also write the figures (and memory over each run) to FILE")
    p.add_argument("--smaps", action="store_true", help="print resident MB by kind of mapping at the end (malloc "
                   "heap and stacks, LMDB maps, libraries) with their anon and dirty shares")
    args = p.parse_args()
    results = {"events": args.events, "keys": args.keys, "partitions": args.partitions,
               "load": os.getloadavg()[0], "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for g in [None, "at_least_once", "exactly_once_v2"]:
        if args.only and (g or "ceiling") != args.only:
            continue
        results[g or "ceiling"] = run(args, g)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
