#!/usr/bin/env python3
"""Benchmark pictures for docs/benchmarks.md (make bench-plots; `make bench` and `make bench-peers` end with it).

Reads the JSON the bench scripts write to docs/bench/data (ingestor.json, gateway.json, restore-<keys>.json,
peers.json, sweep.json) and writes PNGs to docs/bench. A picture whose fresh data is missing is drawn from
docs/bench/data/recorded.json (figures transcribed from docs/benchmarks.md) and says so in its title.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.exists() else None


def provenance(fresh: dict | None, recorded_source: str) -> str:
    if fresh:
        return f"make bench run {fresh.get('time', '?')}, load {fresh.get('load', 0):.1f}"
    return "\n".join(textwrap.wrap(f"recorded figures, not a fresh run: {recorded_source}", 95))


def save(fig, out: Path, name: str) -> Path:
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ingest(data: Path, out: Path, recorded: dict) -> Path:
    """Events/s per guarantee against the raw consume ceiling of the same run."""
    fresh = load(data / "ingestor.json")
    if fresh:
        groups = {k: [fresh[k]["events_per_s"]] for k in ("ceiling", "at_least_once", "exactly_once_v2")
                  if fresh.get(k)}
        subtitle = f"{fresh['events']:,} events, {fresh['keys']:,} keys; " + provenance(fresh, "")
    else:
        r = recorded["ingestor"]
        groups = {k: r[k] for k in ("ceiling", "at_least_once", "exactly_once_v2")}
        subtitle = provenance(None, r["source"])
    labels = {"ceiling": "raw consume\nceiling", "at_least_once": "at_least_once", "exactly_once_v2": "exactly_once_v2"}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (k, values) in enumerate(groups.items()):
        ax.bar(i, max(values), color="#bbbbbb" if k == "ceiling" else "#3b75af", width=0.6)
        ax.scatter([i] * len(values), values, color="black", zorder=3, s=12)
        ax.text(i, max(values), f"{sorted(values)[len(values) // 2] / 1000:,.0f}k", ha="center", va="bottom")
    ax.set_xticks(range(len(groups)), [labels[k] for k in groups])
    ax.set_ylabel("events/s (dots: runs; label: median)")
    ax.set_title("Ingest rate per guarantee vs the raw consume ceiling\n" + subtitle, fontsize=9)
    return save(fig, out, "ingest.png")


def latency(data: Path, out: Path, recorded: dict) -> Path:
    """`/chaser/{key}` latency percentiles against nginx, per connection count."""
    fresh = load(data / "gateway.json")
    rows = fresh["rows"] if fresh else recorded["gateway"]["rows"]
    subtitle = provenance(fresh, recorded["gateway"]["source"])
    conns = sorted({r["connections"] for r in rows})
    fig, axes = plt.subplots(1, len(conns), figsize=(10, 4.5), squeeze=False)
    for ax, c in zip(axes[0], conns):
        these = [r for r in rows if r["connections"] == c]
        pcts = [p for p in ("p50", "p75", "p90", "p99") if all(r.get(p) is not None for r in these)]
        width = 0.8 / len(these)
        for j, r in enumerate(these):
            ax.bar([i + j * width for i in range(len(pcts))], [r[p] for p in pcts], width,
                   label=f"{r['target']} ({r['rps'] / 1000:,.1f}k req/s)")
        ax.set_xticks([i + width * (len(these) - 1) / 2 for i in range(len(pcts))], pcts)
        ax.set_ylabel("latency, ms")
        ax.set_title(f"{c} connections", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("/chaser/{key} latency percentiles vs nginx (wrk -t1)\n" + subtitle, fontsize=9)
    return save(fig, out, "gateway-latency.png")


def memory(data: Path, out: Path, recorded: dict) -> Path:
    """The ingestor's anonymous and file-backed resident memory over a run (or recorded peaks)."""
    fresh = load(data / "ingestor.json")
    runs = {k: fresh[k] for k in ("at_least_once", "exactly_once_v2") if fresh and fresh.get(k, {}).get("memory")}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if runs:
        for (name, run), color in zip(runs.items(), ("#3b75af", "#e07b39")):
            t = [m[0] for m in run["memory"]]
            ax.plot(t, [m[1] for m in run["memory"]], color=color, label=f"{name}: anonymous")
            ax.plot(t, [m[2] for m in run["memory"]], color=color, linestyle="--", label=f"{name}: file-backed")
        ax.set_xlabel("seconds since start")
        subtitle = f"{fresh['events']:,} events, {fresh['keys']:,} keys; " + provenance(fresh, "")
        title = "Ingestor resident memory over a run"
    else:
        r = recorded["memory"]
        peaks = r["peaks"]
        xs = range(len(peaks))
        ax.bar(xs, [p["anon_mb"] for p in peaks], 0.5, label="anonymous (malloc, stacks)")
        ax.bar(xs, [p["file_mb"] for p in peaks], 0.5, bottom=[p["anon_mb"] for p in peaks],
               label="file-backed (LMDB pages, libraries)")
        ax.set_xticks(list(xs), [f"{p['keys']:,} keys" for p in peaks])
        subtitle = provenance(None, r["source"])
        title = "Ingestor peak resident memory (no time series recorded yet)"
    ax.axhline(40, color="grey", linestyle=":", label="anonymous target 40 MB")
    ax.set_ylabel("MB")
    ax.legend(fontsize=7)
    ax.set_title(title + "\n" + subtitle, fontsize=9)
    return save(fig, out, "memory.png")


def restore(data: Path, out: Path, recorded: dict) -> Path:
    """Time to serving after a warm restart and a cold restore, against the number of keys."""
    fresh = [r for f in sorted(data.glob("restore-*.json")) for r in load(f) or [] if r.get("phase") in ("warm", "cold")]
    if fresh:
        points = [{"keys": r["keys"], "phase": r["phase"], "seconds": r["assign_to_ready_s"]} for r in fresh]
        subtitle = f"make bench-restore runs ({len({p['keys'] for p in points})} key counts)"
    else:
        points = recorded["restore"]["points"]
        subtitle = provenance(None, recorded["restore"]["source"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for phase, marker in (("cold", "o"), ("warm", "s")):
        ps = sorted((p for p in points if p["phase"] == phase), key=lambda p: p["keys"])
        ax.plot([p["keys"] for p in ps], [p["seconds"] for p in ps], marker=marker, linestyle="-" if fresh else "",
                label={"cold": "cold: restore from the changelog", "warm": "warm: local store, tail only"}[phase])
    ax.axhline(5, color="grey", linestyle=":", label="target: serving within 5 s")
    ax.set_xscale("log")
    ax.set_xlabel("keys")
    ax.set_ylabel("seconds, assignment to ready")
    ax.legend(fontsize=7)
    ax.set_title("Restore time vs number of keys\n" + subtitle, fontsize=9)
    return save(fig, out, "restore.png")


def peers(data: Path, out: Path, recorded: dict) -> Path:
    """The same chaser workload on this service and on Quix Streams."""
    fresh = load(data / "peers.json")
    if fresh:
        values = {"k8s-micro": fresh["k8s-micro"]["events_per_s"], "Quix Streams": fresh["quixstreams"]["events_per_s"]}
        subtitle = (f"{fresh['events']:,} chaser events, {fresh['keys']:,} keys, {fresh['guarantee']}; "
                    + provenance(fresh, ""))
    else:
        r = recorded["peers"]
        values = {"k8s-micro": r["k8s-micro"], "Quix Streams": r["quixstreams"]}
        subtitle = provenance(None, r["source"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(list(values), list(values.values()), color=["#3b75af", "#999999"])
    for i, v in enumerate(values.values()):
        ax.text(v, i, f" {v / 1000:,.1f}k", va="center")
    ratio = values["k8s-micro"] / max(values["Quix Streams"], 1e-9)
    ax.set_xlabel("events/s")
    ax.set_xlim(0, max(values.values()) * 1.2)
    ax.set_title(f"Same workload, same broker: {ratio:.0f}x\n" + subtitle, fontsize=9)
    return save(fig, out, "peers.png")


def sweep(data: Path, out: Path, recorded: dict) -> Path | None:
    """CPU per event and anonymous memory peak against the key count (make bench-sweep); none without its data."""
    fresh = load(data / "sweep.json")
    if not fresh:
        return None
    runs = [r for r in fresh["runs"] if r["guarantee"] != "ceiling" and r.get("cpu_us_per_event")]
    fig, (cpu, mem) = plt.subplots(1, 2, figsize=(10, 4.5))
    for guarantee, color in (("at_least_once", "#3b75af"), ("exactly_once_v2", "#e07b39")):
        rs = sorted((r for r in runs if r["guarantee"] == guarantee), key=lambda r: r["keys"])
        keys = [r["keys"] for r in rs]
        cpu.plot(keys, [r["cpu_us_per_event"] for r in rs], marker="o", color=color, label=guarantee)
        mem.plot(keys, [r["peak_anon_mb"] for r in rs], marker="o", color=color, label=f"{guarantee}: anonymous")
        mem.plot(keys, [r["peak_file_mb"] for r in rs], marker="s", linestyle="--", color=color,
                 label=f"{guarantee}: mapped (LMDB page cache)")
    cpu.set_ylabel("CPU µs per event (all ingestor threads)")
    mem.set_ylabel("peak resident MB")
    mem.axhline(40, color="grey", linestyle=":", label="anonymous target 40 MB")
    for ax in (cpu, mem):
        ax.set_xscale("log")
        ax.set_xlabel("keys")
        ax.legend(fontsize=7)
    fig.suptitle(f"Cost as keys grow (make bench-sweep run {fresh.get('time', '?')}, "
                 f"load {fresh.get('load_start', 0):.1f} at start)", fontsize=9)
    return save(fig, out, "sweep.png")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=ROOT / "docs" / "bench" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = p.parse_args()
    recorded = json.loads((args.data / "recorded.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for plot in (ingest, latency, memory, restore, peers, sweep):
        path = plot(args.data, args.out, recorded)
        if path:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
