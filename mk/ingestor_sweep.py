#!/usr/bin/env python3
"""Key-count sweep of the ingestor (make bench-sweep): how the cost per event grows with the number of keys.

For each key count (10k, 100k, 1M by default, with enough events that each chaser device is updated several times),
the same steps as mk/ingestor_bench.py: a fresh tansu per run, the raw consume ceiling (same librdkafka, no
processing), then at_least_once and exactly_once_v2. Per run: events/s, CPU µs per event over all ingestor
threads (and per thread), anonymous memory peak apart from the file-backed (mapped LMDB) peak, LMDB bytes used
per stored key, the record cache's hit ratio, the machine's idle and steal shares while the run consumed (`idle`:
no process had work, the pipeline's stages all waited at once; `steal`: the hypervisor ran another guest), and the
commit thread's voluntary context switches in thousands (`vcs k`: tens of thousands mean it kept blocking on a
lock shared with the stream thread, a slow run). Prints one table; `--json` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingestor_bench  # noqa: E402


def events_for(keys: int, per_key: float) -> int:
    """Events for `keys`: `per_key` updates per key, at least 1M (smaller runs are dominated by the group join)."""
    return max(1_000_000, int(keys * per_key))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", default="10000,100000,1000000", help="comma-separated key counts")
    p.add_argument("--events", default="", help="comma-separated event counts, one per key count (default: "
                   "--per-key updates per key, at least 1M)")
    p.add_argument("--per-key", type=float, default=5.0, help="events per key when --events is not given")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--guarantees", default="ceiling,at_least_once,exactly_once_v2")
    p.add_argument("--bin", default=str(ingestor_bench.ROOT / ".build" / "release" / "k8s-micro-ingestor"))
    p.add_argument("--commit-interval", type=int, default=100)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    keys = [int(k) for k in args.keys.split(",")]
    events = [int(e) for e in args.events.split(",")] if args.events else [events_for(k, args.per_key) for k in keys]
    if len(events) != len(keys):
        p.error("--events needs one count per key count")
    guarantees = [g for g in args.guarantees.split(",") if g]
    results = {"partitions": args.partitions, "load_start": os.getloadavg()[0], "cpus": os.cpu_count(),
               "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": []}
    for k, n in zip(keys, events):
        for g in guarantees:
            run_args = argparse.Namespace(
                events=n, keys=k, partitions=args.partitions, bin=args.bin, keep=False,
                commit_interval=args.commit_interval, cache_max_entries=None, property=[], perf=None,
                perf_seconds=0.0, smaps=False, store_size=True)
            print(f"--- {k:,} keys, {n:,} events, {g}", flush=True)
            figures = ingestor_bench.run(run_args, None if g == "ceiling" else g)
            figures.pop("memory", None)
            results["runs"].append({"keys": k, "events": n, "guarantee": g, "load": os.getloadavg()[0], **figures})
            if args.json:  # after every run: a sweep cut short keeps what it measured
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print_table(results["runs"])
    return 0


def share(run: dict, key: str) -> str:
    """A 0-1 figure of `run` as a 5-wide percentage, or a dash when the run has none (sweeps before it existed)."""
    return f"{run[key]:>5.0%}" if key in run else f"{'-':>5}"


def print_table(runs: list[dict]) -> None:
    ceiling = {r["keys"]: r.get("events_per_s", 0.0) for r in runs if r["guarantee"] == "ceiling"}
    first_keys = min((r["keys"] for r in runs), default=0)
    base = {r["guarantee"]: r.get("events_per_s", 0.0) for r in runs if r["keys"] == first_keys}
    print()
    print(f"{'keys':>9} {'events':>10} {'guarantee':<16} {'events/s':>9} {'%raw':>5} {'%first':>6} {'us/ev':>6} "
          f"{'anon MB':>7} {'file MB':>7} {'B/key':>6} {'hit':>5} {'idle':>5} {'steal':>5} {'vcs k':>6}")
    for r in runs:
        rate = r.get("events_per_s", 0.0)
        if r["guarantee"] == "ceiling":
            print(f"{r['keys']:>9,} {r['events']:>10,} {'raw consume':<16} {rate:>9,.0f}")
            continue
        stored = sum(r.get("store_keys", {}).values())
        per_key = r.get("store_bytes", 0) / stored if stored else 0.0
        raw = ceiling.get(r["keys"]) or 0.0
        first = base.get(r["guarantee"]) or 0.0
        print(f"{r['keys']:>9,} {r['events']:>10,} {r['guarantee']:<16} {rate:>9,.0f} "
              f"{rate / raw if raw else 0:>5.0%} {rate / first if first else 0:>6.0%} "
              f"{r.get('cpu_us_per_event', 0):>6.2f} {r.get('peak_anon_mb', 0):>7.1f} {r.get('peak_file_mb', 0):>7.1f} "
              f"{per_key:>6.0f} {r.get('cache_hit_ratio', 0):>5.0%} {share(r, 'machine_idle')} {share(r, 'machine_steal')} "
              f"{r.get('voluntary_switches', {}).get('commit', 0) / 1000:>6.1f}")


if __name__ == "__main__":
    sys.exit(main())
