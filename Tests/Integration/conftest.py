"""Integration harness: a real tansu broker per test, the real built binaries, real sockets and HTTP.

Fixtures:
  tansu        a fresh memory-storage broker on a free port (`.bootstrap`, `.create_topic(name, partitions)`)
  durable_tansu  a broker on s3:// storage (localbucket) behind a fault proxy: `.kill9()`, `.restart()`,
               `.proxy.blackhole()` ... (faultkit.py); `.bootstrap` is the proxy, so pods use it unchanged
  binaries     paths of the built executables (`.ingestor`, `.gateway`); fails the test if they are missing
  pod_factory  `pod_factory(tansu, **config)` → an unstarted `Pod` (the pod's two processes on one socket dir)
  run_env      the environment processes run with (librdkafka >= 2.2 on LD_LIBRARY_PATH)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
TANSU = VENV / "bin" / "tansu"


def run_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{VENV / 'rdkafka'}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
    # Keep the operator's environment from leaking config keys into tests.
    for key in list(env):
        if key.startswith(("KAFKA_", "GATEWAY_", "INGESTOR_", "LOG_", "POD_", "SCHEMA_REGISTRY_")):
            del env[key]
    return env


def bin_dir() -> Path:
    # K8S_MICRO_BIN_DIR runs the suite on other builds (a sanitizer's, a release's).
    if os.environ.get("K8S_MICRO_BIN_DIR"):
        return Path(os.environ["K8S_MICRO_BIN_DIR"])
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True)
    return Path(out.stdout.strip()) if out.returncode == 0 else ROOT / ".build" / "debug"


_handed_out: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now and never handed out before in this run: the kernel may give the same ephemeral port to
    two binds in a row once the first is closed (a gateway got one port for gateway.port and healthPort)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if (host, port) not in _handed_out:
            _handed_out.add((host, port))
            return port


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it is still running after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Binaries:
    ingestor: Path
    gateway: Path


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    d = bin_dir()
    b = Binaries(d / "k8s-micro-ingestor", d / "k8s-micro-gateway")
    if not b.ingestor.exists() or not b.gateway.exists():
        pytest.fail(f"binaries not built in {d}; run `swift build` (scripts/test.sh does)")
    return b


@pytest.fixture(scope="session")
def run_env() -> dict[str, str]:
    return run_environment()


class Tansu:
    """One memory-storage tansu broker; stopped (and its records gone) at teardown."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1"):
        self.host = host
        self.port = free_port(host)
        self.bootstrap = f"{host}:{self.port}"
        self.log = workdir / f"tansu-{self.port}.log"
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=run_environment(),
        )
        wait_until(self._listening, 20, what=f"tansu on {self.bootstrap}")

    def _listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex((self.host, self.port)) == 0

    def create_topic(self, name: str, partitions: int = 4, config: str | None = None) -> None:
        create_topic(self.bootstrap, name, partitions, config)

    def stop(self) -> None:
        stop_process(self.proc, 5)


def create_topic(bootstrap: str, name: str, partitions: int = 4, config: str | None = None) -> None:
    cmd = [str(TANSU), "topic", "create", "--broker", f"tcp://{bootstrap}", "--partitions", str(partitions)]
    if config:
        cmd += ["--config", config]
    subprocess.run(cmd + [name], check=True, capture_output=True, env=run_environment(), timeout=30)


@pytest.fixture
def tansu(tmp_path: Path):
    broker = Tansu(tmp_path)
    yield broker
    broker.stop()


@pytest.fixture
def durable_tansu(tmp_path: Path):
    from faultkit import DurableTansu

    broker = DurableTansu(tmp_path)
    yield broker
    broker.close()


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class Pod:
    """One pod's two processes exactly as the chart runs them: same args, one config, one socket directory."""

    binaries: Binaries
    workdir: Path
    config: dict
    env: dict[str, str]
    host: str = "127.0.0.1"
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yaml"

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.config['gateway']['port']}"

    @property
    def health(self) -> str:
        return f"http://{self.host}:{self.config['gateway']['healthPort']}"

    @property
    def socket_path(self) -> str:
        return self.config["ingestor"]["socket"]

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start_ingestor(self, *extra: str) -> subprocess.Popen:
        self.write_config()
        return self._start("ingestor", [str(self.binaries.ingestor), "run", "--config", str(self.config_path), *extra])

    def start_gateway(self, *extra: str) -> subprocess.Popen:
        self.write_config()
        return self._start("gateway", [str(self.binaries.gateway), "--config", str(self.config_path), *extra])

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = self.log_path(name).open("ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        self.procs[name] = proc
        return proc

    def start(self, ready_timeout: float = 60) -> "Pod":
        self.start_ingestor()
        self.start_gateway()
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: requests.get(f"{self.health}/hams/ready", timeout=1).status_code == 200,
            timeout,
            what=f"pod ready ({self.logs_tail()})",
        )

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for name in self.procs:
            path = self.log_path(name)
            if path.exists():
                out.append(f"--- {name}.log ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def signal(self, name: str, sig: int = signal.SIGTERM, wait: float = 15) -> int | None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return self._reported(name, proc.returncode) if proc else None
        proc.send_signal(sig)
        try:
            return self._reported(name, proc.wait(wait))
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def crashes(self) -> list[str]:
        """Processes that died of a crash signal (SIGSEGV, SIGABRT, a Swift trap...), never one a test sends."""
        return [c for name, p in self.procs.items() if p.returncode is not None and (c := crash(name, p.returncode))]

    def _reported(self, name: str, rc: int) -> int:
        # A crash's backtrace (Swift's runtime prints one to stderr) is in the log: show it with the failure.
        if c := crash(name, rc):
            print(f"{c}\n{self.logs_tail(120)}")
        return rc

    def stop(self) -> None:
        for name in ("gateway", "ingestor"):
            self.signal(name, signal.SIGTERM)


# What a crash ends with (a Swift trap raises SIGILL or SIGTRAP); tests send SIGTERM, SIGKILL, SIGSTOP/SIGCONT.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGTRAP, signal.SIGFPE}


def crash(name: str, rc: int) -> str | None:
    """"NAME died of SIGNAL" when the exit status `rc` is a crash signal's."""
    return f"{name} died of {signal.Signals(-rc).name}" if -rc in CRASH_SIGNALS else None


def new_pod(binaries: Binaries, run_env: dict[str, str], tansu: Tansu, workdir: Path, name: str,
            host: str = "127.0.0.1", **config) -> Pod:
    """An unstarted pod in `workdir` (what `pod_factory` makes; usable from module-scoped fixtures)."""
    (workdir / "sock").mkdir(parents=True, exist_ok=True)
    base = {
        "log": {"level": "info"},
        "pod": {"name": name, "ip": host},
        "kafka": {
            "bootstrapServers": tansu.bootstrap,
            "properties": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        },
        "ingestor": {
            "socket": str(workdir / "sock" / "ingestor.sock"),
            "stateDir": str(workdir / "state"),
            "schemaDir": str(ROOT / "schemas"),
        },
        "gateway": {"bindAddress": host, "port": free_port(host), "healthPort": free_port(host)},
    }
    return Pod(binaries, workdir, deep_merge(base, config), dict(run_env), host)


@pytest.fixture
def pod_factory(binaries: Binaries, run_env: dict[str, str], tmp_path: Path):
    pods: list[Pod] = []

    def make(tansu: Tansu, host: str = "127.0.0.1", name: str | None = None, **config) -> Pod:
        name = name or f"pod{len(pods)}"
        pod = new_pod(binaries, run_env, tansu, tmp_path / name, name, host, **config)
        pods.append(pod)
        return pod

    yield make
    for pod in pods:
        pod.stop()
    crashed = [c for pod in pods for c in pod.crashes()]
    assert not crashed, f"a process crashed: {crashed}"
