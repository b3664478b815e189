"""Disk faults of the ingestor's state directory (issue 12), against a real broker and the real binary.

- the state directory's file system fills up (a small tmpfs mounted on it, tens of thousands of new keys):
  the ingestor stops with a clear error naming the path and the free space (never SIGBUS), refuses to start
  on the still-full disk with the same message, and once space returns a restart recovers with exact state;
- a read-only or unwritable state directory, and an unwritable socket directory, are a clear error at
  start-up naming the path and the config key.

Needs root (mount). Root bypasses file permissions, so the permission case runs the binary without
CAP_DAC_OVERRIDE (`setpriv --bounding-set`), which makes it obey the mode bits like any user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, wait_until
from reference_model import expected_aggregates
from test_ingestor_runtime import dump_store, ingestor_pod, socket_get, socket_metrics, start_ingestor

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount")


@pytest.fixture
def small_disk(tmp_path: Path):
    """`mount(size)` mounts a tmpfs of that size on a fresh directory; `resize(size)` grows it in place."""
    mounted: list[Path] = []

    class Disk:
        def mount(self, path: Path, size: str, *options: str) -> Path:
            path.mkdir(parents=True, exist_ok=True)
            opts = ",".join([f"size={size}", *options])
            subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
            mounted.append(path)
            return path

        def resize(self, path: Path, size: str) -> None:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)

    yield Disk()
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def exited(proc: subprocess.Popen, timeout: float) -> int:
    wait_until(lambda: proc.poll() is not None, timeout, interval=0.2, what="the ingestor to exit")
    return proc.returncode


def test_full_state_disk_is_a_clear_error_and_a_restart_with_space_is_exact(
    tansu, pod_factory, binaries, run_env, small_disk, tmp_path
):
    # 4 MB: room to start (each store wants 1 MiB free at start-up), not for 50,000 keys.
    state = small_disk.mount(tmp_path / "state", "4m")
    pod = ingestor_pod(pod_factory, tansu)
    pod.config["ingestor"]["stateDir"] = str(state)
    start_ingestor(pod)
    # Free space is reported while running, before anything goes wrong.
    free = socket_metrics(pod.socket_path)
    assert 0 < free['store_disk_free_bytes{store="chaser"}'] <= 4 << 20
    assert free['store_disk_reserved_bytes{store="chaser"}'] >= free['store_disk_used_bytes{store="chaser"}'] > 0

    pod.write_config()
    gen = subprocess.run(
        [str(binaries.ingestor), "generate", "--config", str(pod.config_path), "--total", "50000", "--rate", "0",
         "--keys", "50000", "--mix", "0.5", "--seed", "11"],
        env=run_env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr

    # The disk fills: the ingestor exits non-zero with a log line naming the path and the free space.
    code = exited(pod.procs["ingestor"], 120)
    log = pod.log_path("ingestor").read_text(errors="replace")
    assert code > 0, f"exit {code} (negative = killed by a signal)\n{log[-3000:]}"
    assert "Bus error" not in log
    full = [line for line in log.splitlines() if "no space left" in line.lower()]
    assert full and str(state) in full[0] and "free" in full[0], log[-3000:]

    # Restarted on the still-full disk: the same clear error at once, at start-up (exit 74) before joining the
    # group; no store is moved aside as damaged.
    log_before = len(log)
    restart = pod.start_ingestor()
    assert exited(restart, 60) == 74
    again = pod.log_path("ingestor").read_text(errors="replace")[log_before:]
    assert "no space left" in again.lower() and str(state) in again, again[-3000:]
    assert "Bus error" not in again
    assert not list(state.glob("*.damaged"))

    # Space returns: a restart recovers, and every aggregate is exact.
    small_disk.resize(state, "256m")
    # The independent reference model's fold of the input topic is the expected side.
    expected = expected_aggregates(tansu.bootstrap)
    start_ingestor(pod)

    sample = sorted(expected)[::97]

    def exact(keys) -> bool:
        return all(socket_get(pod.socket_path, s, k) == expected[(s, k)] for s, k in keys)

    def caught_up() -> bool:
        # Not the lag gauge: it is sampled every 5 s and a partition without a committed offset shows none.
        return exact(sample) and exact(expected)

    try:
        wait_until(caught_up, 180, interval=2, what=f"ingestor caught up\n{pod.logs_tail()}")
    finally:
        assert pod.signal("ingestor", signal.SIGTERM, wait=20) == 0
        got = dump_store(pod, binaries, run_env)
        wrong = [k for k in expected if got.get(k) != expected[k]]
        assert not wrong, f"{len(wrong)} of {len(expected)} aggregates differ, e.g. " + json.dumps(
            [[k, expected[k], got.get(k)] for k in wrong[:3]])
    assert set(got) == set(expected)


def start_failure(pod, cmd_prefix: list[str] | None = None) -> tuple[int, str]:
    pod.write_config()
    cmd = [*(cmd_prefix or []), str(pod.binaries.ingestor), "run", "--config", str(pod.config_path)]
    out = subprocess.run(cmd, env=pod.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def test_read_only_state_dir_is_a_clear_startup_error(tansu, pod_factory, small_disk, tmp_path):
    state = small_disk.mount(tmp_path / "ro-state", "1m", "ro")
    pod = ingestor_pod(pod_factory, tansu)
    pod.config["ingestor"]["stateDir"] = str(state / "stores")
    code, out = start_failure(pod)
    assert code > 0 and "ingestor.stateDir" in out and str(state) in out, out[-2000:]
    assert "read-only" in out.lower(), out[-2000:]


def test_unwritable_state_and_socket_dirs_are_clear_startup_errors(tansu, pod_factory, tmp_path):
    # Without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH root obeys mode bits, as the chart's non-root user does.
    no_override = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    pod = ingestor_pod(pod_factory, tansu)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    pod.config["ingestor"]["stateDir"] = str(locked / "state")
    code, out = start_failure(pod, no_override)
    assert code > 0 and "ingestor.stateDir" in out and str(locked) in out, out[-2000:]
    assert "permission denied" in out.lower(), out[-2000:]

    pod.config["ingestor"]["stateDir"] = str(tmp_path / "state-ok")
    pod.config["ingestor"]["socket"] = str(locked / "sock" / "ingestor.sock")
    code, out = start_failure(pod, no_override)
    assert code > 0 and "ingestor.socket" in out and str(locked) in out, out[-2000:]
