"""The doors: who may talk to the ingestor's socket, and where secrets must never show.

- The socket file is mode 0660 (group `ingestor.socketGid`), and each connection's peer credentials
  (SO_PEERCRED) are checked against the ingestor's uid and that gid: tested with clients running as another
  uid (root drops to `nobody` with setpriv), through the file mode and, with the mode loosened on purpose,
  through the credential check alone.
- Secrets (`--secrets` files) never appear in logs, metrics, error messages, `/hams/*` bodies or
  `--print-config`, including on error paths (a secret in an invalid value; a broker that refuses SASL).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import yaml

from conftest import ROOT, free_port, wait_until
from test_ingestor_runtime import ingestor_pod, socket_metrics, start_ingestor

NOBODY = 65534
SOCKET_GID = 4242
SECRET = "s3cr3t-Door-Value-77"

# A ping over the socket protocol from whichever uid runs it: prints ok, refused:<errno name> or closed.
CLIENT = r"""
import errno, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("refused:" + errno.errorcode.get(e.errno, str(e.errno))); sys.exit(0)
try:
    s.sendall(struct.pack(">IBBIBB", 8, 1, 0, 7, 1, 0))
    data = s.recv(64)
except OSError:
    data = b""
print("ok" if data else "closed")
"""


def as_user(uid: int, gid: int, socket_path: str) -> str:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a client as another uid")
    out = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", sys.executable, "-c", CLIENT, socket_path],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_socket_file_mode_and_peer_credentials(tansu, pod_factory):
    # The socket lives where another uid can reach the directory, so only the socket's own doors decide.
    sock_dir = Path(tempfile.mkdtemp(prefix="k8s-micro-doors-"))
    sock_dir.chmod(0o755)
    path = str(sock_dir / "ingestor.sock")
    pod = ingestor_pod(pod_factory, tansu)
    pod.config["ingestor"]["socket"] = path
    pod.config["ingestor"]["socketGid"] = SOCKET_GID
    try:
        start_ingestor(pod)
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
        assert st.st_gid == SOCKET_GID
        # Same uid as the ingestor: served.
        assert as_user(os.geteuid(), os.getegid(), path) == "ok"
        # Another uid in the configured group: the file mode lets it in and SO_PEERCRED accepts its gid.
        assert as_user(NOBODY, SOCKET_GID, path) == "ok"
        # Another uid, another group: the file mode keeps it out.
        assert as_user(NOBODY, NOBODY, path) == "refused:EACCES"
        # With the mode loosened (a misconfiguration), the credential check still refuses it.
        rejected = socket_metrics(path).get("socket_connections_rejected_total", 0)
        os.chmod(path, 0o666)
        assert as_user(NOBODY, NOBODY, path) == "closed"
        wait_until(lambda: socket_metrics(path).get("socket_connections_rejected_total", 0) == rejected + 1, 10,
                   what="the rejected peer counted")
        assert "socket peer rejected" in pod.log_path("ingestor").read_text(errors="replace")
        assert pod.signal("ingestor", signal.SIGTERM, wait=20) == 0
    finally:
        pod.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "kafka-password").write_text(SECRET + "\n")
    return d


@pytest.mark.parametrize("which", ["gateway", "ingestor"])
def test_secret_in_an_invalid_value_is_not_echoed(binaries, run_env, secrets_dir, tmp_path, which):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"gateway": {"port": "${kafka-password}"}, "log": {"level": "debug"}}))
    binary = binaries.gateway if which == "gateway" else binaries.ingestor
    args = ([] if which == "gateway" else ["run"]) + ["--config", str(config), "--secrets", str(secrets_dir)]
    for extra in ([], ["--print-config"]):
        out = subprocess.run([str(binary), *args, *extra], capture_output=True, text=True, env=run_env, cwd=ROOT,
                             timeout=30)
        assert out.returncode == 78, out.stdout + out.stderr
        assert "gateway.port" in out.stderr and SECRET not in out.stdout + out.stderr


def test_secrets_stay_out_of_logs_metrics_and_health_bodies_when_sasl_fails(
    tansu, pod_factory, binaries, run_env, secrets_dir
):
    # tansu speaks no SASL: the ingestor's broker connections fail authentication over and over (an error
    # path that names the mechanism and the broker), while the gateway serves /hams/*.
    pod = pod_factory(tansu)
    pod.config["kafka"]["properties"].update({
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "k8s-micro",
        "sasl.password": "${kafka-password}",
    })
    pod.config["log"]["level"] = "debug"
    pod.write_config()
    pod._start("ingestor", [str(binaries.ingestor), "run", "--config", str(pod.config_path),
                            "--secrets", str(secrets_dir)])
    pod._start("gateway", [str(binaries.gateway), "--config", str(pod.config_path), "--secrets", str(secrets_dir)])
    try:
        wait_until(lambda: requests.get(f"{pod.health}/hams/startup", timeout=1).status_code == 200, 30,
                   what=f"gateway started ({pod.logs_tail()})")
        wait_until(lambda: Path(pod.socket_path).exists(), 30, what="ingestor socket")
        bodies = []
        for path in ("/hams/version", "/hams/startup", "/hams/alive", "/hams/ready", "/hams/metrics"):
            bodies.append(requests.get(f"{pod.health}{path}", timeout=5).text)
        bodies.append(requests.get(f"{pod.api}/chaser/k", timeout=5).text)
        def sasl_failed() -> bool:
            lines = pod.log_path("ingestor").read_text(errors="replace").lower().splitlines()
            return any("sasl" in line and "failed" in line for line in lines)

        wait_until(sasl_failed, 60, what="librdkafka's SASL failure in the ingestor log")
        logs = pod.log_path("ingestor").read_text(errors="replace") + pod.log_path("gateway").read_text(errors="replace")
        assert SECRET not in logs
        assert all(SECRET not in body for body in bodies)
        printed = subprocess.run([str(binaries.ingestor), "run", "--config", str(pod.config_path), "--secrets",
                                  str(secrets_dir), "--print-config"], capture_output=True, text=True, env=run_env,
                                 cwd=ROOT, timeout=30)
        assert printed.returncode == 0 and "sasl.password" in printed.stdout
        assert SECRET not in printed.stdout + printed.stderr
    finally:
        pod.stop()
