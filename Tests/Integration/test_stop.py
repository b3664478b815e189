"""`./scripts/run.sh` and `make dev` stop completely: on SIGINT to their process group (a terminal's Ctrl-C) and on
SIGTERM to the script alone, no process they started is left and every port they used is free. On the way, the
README's "Try it" commands run as written against run.sh, and a durable run.sh keeps its aggregates across a
restart. About 2-3 minutes (each start checks setup and the build, then waits for the group join)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from conftest import ROOT, free_port, run_environment, wait_until
from doc_examples import section

MARK = "K8S_MICRO_STOP_TEST"


def _terminal_signals() -> None:
    # A shell's foreground job gets Ctrl-C's default disposition, even when this suite was started in the
    # background (which ignores SIGINT and SIGQUIT for it and, through it, for bash, which then cannot trap them).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Script:
    """A front-door script started like a user starts it (its own session, as a shell gives a foreground job)."""

    def __init__(self, command: list[str], tmp_path: Path, name: str, **env: str):
        self.marker = uuid.uuid4().hex
        self.ports = {
            "BROKER_PORT": free_port(),
            "BUCKET_PORT": free_port(),
            "GATEWAY_PORT": free_port(),
            "GATEWAY_HEALTH_PORT": free_port(),
        }
        self.output = tmp_path / f"{name}.out"
        environment = run_environment()
        environment.update({k: str(v) for k, v in self.ports.items()})
        environment.update(RUN_DIR=str(tmp_path / "run"), GENERATE_RATE="2", **env)
        environment[MARK] = self.marker
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=self.output.open("wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_terminal_signals,
        )

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for(self, line: str, timeout: float = 300) -> None:
        def seen():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text()}"
            return line in self.text()

        wait_until(seen, timeout, interval=0.5, what=f"{line!r} from the script")

    def stop(self, sig: int) -> None:
        if sig == signal.SIGINT:
            os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            self.proc.send_signal(sig)
        self.proc.wait(120)

    def leftovers(self) -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if f"{MARK}={self.marker}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except (OSError, ValueError):
                continue
        return found

    def busy_ports(self) -> list[int]:
        busy = []
        for port in self.ports.values():
            with socket.socket() as s:
                # As a server binds: connections of the stopped run in TIME_WAIT do not make a port busy.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
        return busy

    def assert_stopped_completely(self) -> None:
        try:
            wait_until(lambda: not self.leftovers() and not self.busy_ports(), 60, interval=0.5, what="a full stop")
        except TimeoutError:
            raise AssertionError(f"left running: {self.leftovers()}, ports busy: {self.busy_ports()}") from None

    def kill_leftovers(self) -> None:
        for entry in Path("/proc").iterdir():
            try:
                if f"{MARK}={self.marker}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue


@pytest.fixture
def scripts():
    started: list[Script] = []
    yield started
    for script in started:
        if script.proc.poll() is None:
            os.killpg(script.proc.pid, signal.SIGKILL)
        script.kill_leftovers()


def readme_json(pattern: str) -> dict:
    match = re.search(r"`(\{\"" + pattern + r"[^`]*\})`", (ROOT / "README.md").read_text())
    assert match, f"README shows {pattern}"
    return json.loads(match.group(1))


def test_run_sh_serves_the_readme_examples_and_stops_on_ctrl_c(scripts, tmp_path):
    script = Script(["./scripts/run.sh"], tmp_path, "run")
    scripts.append(script)
    script.wait_for("k8s-micro is running")
    # The README's commands, as written, with this run's ports.
    [try_it] = [e for e in section(ROOT / "README.md", "Try it") if e.language == "sh"]
    env = run_environment()
    outputs = []
    for command in try_it.commands():
        command = command.replace("127.0.0.1:8080", f"127.0.0.1:{script.ports['GATEWAY_PORT']}")
        command = command.replace("127.0.0.1:8079", f"127.0.0.1:{script.ports['GATEWAY_HEALTH_PORT']}")
        if "/chaser/" in command:  # the aggregate appears after the next commit
            wait_until(lambda c=command: "names" in subprocess.run(["bash", "-c", c], capture_output=True,
                                                                    text=True).stdout, 30, what=command)
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=30)
        assert out.returncode == 0, f"{command}: {out.stderr}"
        outputs.append(out.stdout)
    receipt = json.loads(next(o for o in outputs if '"offset"' in o))
    shown = readme_json("topic")
    assert set(receipt) == set(shown) and receipt["store"] == shown["store"] and receipt["key"] == shown["key"]
    aggregate = json.loads(next(o for o in outputs if '"names"' in o))
    assert aggregate == readme_json("type\":\"com.polecatworks.chaser.Aggregate")
    # Every dead-letter reason is exported from the start, before any record was dead-lettered.
    metrics = requests.get(f"http://127.0.0.1:{script.ports['GATEWAY_HEALTH_PORT']}/hams/metrics", timeout=10).text
    assert 'records_dead_lettered_total{reason="null-key"} 0' in metrics
    assert 'records_dead_lettered_total{reason="corrupt-avro"} 0' in metrics

    script.stop(signal.SIGINT)
    assert script.proc.returncode == 0, script.text()
    assert script.text().rstrip().endswith("run: stopped"), script.text()[-500:]
    script.assert_stopped_completely()
    # Stopped in order: the ingestor still had its broker while it committed and left the group.
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "run" / "logs").glob("*.log")}
    assert "Connection refused" not in logs["ingestor.log"]
    # The demo config gives librdkafka no property of the wrong client kind (it would warn: CONFWARN).
    assert not [name for name, text in logs.items() if "CONFWARN" in text]


def test_durable_run_sh_keeps_aggregates_across_a_restart_and_stops_on_sigterm(scripts, tmp_path):
    event = {"type": "com.polecatworks.chaser.Chaser", "name": "A", "id": "durable-1", "sent": 1000, "ttl": 300}
    for attempt in range(2):
        script = Script(["./scripts/run.sh"], tmp_path, f"durable-{attempt}", BROKER_STORAGE="durable")
        scripts.append(script)
        script.wait_for("k8s-micro is running")
        if attempt == 0:
            r = requests.post(f"{script.api}/events", json=event, timeout=30)
            assert r.status_code == 202, r.text
        aggregate = wait_until(
            lambda s=script: (r := requests.get(f"{s.api}/chaser/durable-1", timeout=5)).status_code == 200
            and r.json(), 60, what="the aggregate")
        assert aggregate["count"] == 1 and aggregate["names"] == ["A"]  # kept, not lost, not counted twice
        script.stop(signal.SIGTERM)
        assert script.proc.returncode == 0, script.text()
        script.assert_stopped_completely()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_dev_stops_completely(scripts, tmp_path, sig):
    script = Script(["make", "--no-print-directory", "dev"], tmp_path, "dev")
    scripts.append(script)
    script.wait_for("dev: generating")
    script.stop(sig)
    script.assert_stopped_completely()
    assert "dev: stopped" in script.text()
