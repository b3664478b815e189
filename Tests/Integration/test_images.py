"""The container images, run here without a Docker engine (buildah, chroot isolation).

By default the images are those of the runtime stages of Dockerfile.gateway and Dockerfile.ingestor, built from
the debug binaries of the test build (`scripts/images.sh runtime-images`), so a broken runtime stage fails the test
command. `make images-check` runs the same tests against the full images of `make images-local`, named by
K8S_MICRO_GATEWAY_IMAGE and K8S_MICRO_INGESTOR_IMAGE.

Each container runs as the image's own user, on the host's network (tansu, the gateway's ports), with the pod's
volumes as bind mounts exactly where the chart mounts them: the shared socket directory, the state directory,
/tmp, the config file and the secrets directory.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT, deep_merge, free_port, run_environment, wait_until

PROCESSES = ("gateway", "ingestor")
CHASER = "com.polecatworks.chaser.Chaser"
AGGREGATE = "com.polecatworks.chaser.Aggregate"
CONFIG = "/etc/k8s-micro/config.yaml"
SECRETS = "/etc/k8s-micro/secrets"


def buildah(*args: str, timeout: float = 120) -> str:
    out = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"buildah {' '.join(args)}: {out.stderr}"
    return out.stdout.strip()


@pytest.fixture(scope="module")
def images(request) -> dict[str, str]:
    given = {p: os.environ.get(f"K8S_MICRO_{p.upper()}_IMAGE", "") for p in PROCESSES}
    if all(given.values()):
        return given
    request.getfixturevalue("binaries")  # the debug binaries the runtime stages are built from (skips without)
    out = subprocess.run(["bash", "scripts/images.sh", "runtime-images"], cwd=ROOT, capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {p: f"localhost/k8s-micro-{p}:runtime-test" for p in PROCESSES}


def image_config(image: str) -> dict:
    return json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]


class Container:
    """A buildah working container of one image; `run` executes a command in it as the image's user."""

    def __init__(self, image: str):
        self.image = image
        self.config = image_config(image)
        self.name = f"k8s-micro-test-{uuid.uuid4().hex[:10]}"
        buildah("from", "--pull=false", "--name", self.name, image)

    def command(self, args: list[str], volumes: dict[str, str] | None = None, env: dict[str, str] | None = None):
        cmd = ["buildah", "run", "--isolation", "chroot", "--network", "host", "--user", self.config["User"]]
        for host, inside in (volumes or {}).items():
            cmd += ["-v", f"{host}:{inside}"]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        return cmd + [self.name, "--", *self.config["Entrypoint"], *args]

    def files(self) -> Path:
        return Path(buildah("mount", self.name))

    def remove(self) -> None:
        subprocess.run(["buildah", "rm", self.name], capture_output=True, timeout=60)


@pytest.fixture
def containers(images):
    made: list[Container] = []

    def make(process: str) -> Container:
        made.append(Container(images[process]))
        return made[-1]

    yield make
    for c in made:
        c.remove()


def release() -> str:
    text = (ROOT / "Sources" / "Shared" / "Version.swift").read_text()
    return re.search(r'release = "([^"]+)"', text).group(1)


@pytest.mark.parametrize("process", PROCESSES)
def test_entrypoint_runs_as_nonroot_user(containers, process):
    c = containers(process)
    uid, _, gid = c.config["User"].partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0, c.config["User"]
    assert c.config["Entrypoint"] == [f"/usr/local/bin/k8s-micro-{process}"]
    assert c.config["Labels"]["org.opencontainers.image.title"] == f"k8s-micro-{process}"
    out = subprocess.run(c.command(["--version"]), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(f"{release()} ("), out.stdout


@pytest.mark.parametrize("process", PROCESSES)
def test_sbom_lists_what_the_image_holds(containers, process):
    c = containers(process)
    root = c.files()
    sbom = json.loads((root / f"usr/share/doc/k8s-micro-{process}/sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    binary = (root / f"usr/local/bin/k8s-micro-{process}").read_bytes()
    assert sbom["metadata"]["component"]["hashes"][0]["content"] == hashlib.sha256(binary).hexdigest()
    components = {comp["name"]: comp for comp in sbom["components"]}
    assert components["swift-log"]["purl"].startswith("pkg:swift/github.com/apple/swift-log@")
    assert re.fullmatch(r"\d+\.\d+\.\d+", components["swift-log"]["version"])
    libdir = next((root / "usr/lib").glob("*-linux-gnu"))
    if process == "gateway":
        libuv = next(comp for name, comp in components.items() if name.startswith("libuv1"))
        assert libuv["purl"].startswith(f"pkg:deb/debian/{libuv['name']}@{libuv['version']}")
        assert libuv["hashes"][0]["content"] == hashlib.sha256((libdir / "libuv.so.1").read_bytes()).hexdigest()
    else:
        rdkafka = components["confluent-kafka"]
        assert rdkafka["purl"] == f"pkg:pypi/confluent-kafka@{rdkafka['version']}"
        library = libdir / "librdkafka.so.1"
        assert rdkafka["hashes"][0]["content"] == hashlib.sha256(library.read_bytes()).hexdigest()
        # The runtime library is the wheel's (>= 2.2), never Debian 12's 2.0.2: ask the library itself.
        lib = ctypes.CDLL(str(library))
        lib.rd_kafka_version_str.restype = ctypes.c_char_p
        version = lib.rd_kafka_version_str().decode()
        assert tuple(map(int, version.split(".")[:3])) >= (2, 2, 0), version


def chart_config() -> dict:
    return yaml.safe_load((ROOT / "charts" / "k8s-micro" / "values.yaml").read_text())["config"]


def test_pod_from_the_images_serves_an_event_produced_on_the_host(containers, tansu, binaries, tmp_path):
    tansu.create_topic("input", 4)
    chart = chart_config()
    cs = {process: containers(process) for process in ("ingestor", "gateway")}
    uid, gid = (int(x) for x in cs["ingestor"].config["User"].split(":"))
    for name in ("sock", "state", "tmp-ingestor", "tmp-gateway", "secrets"):
        (tmp_path / name).mkdir()
        os.chown(tmp_path / name, uid, gid)
    port, health = free_port(), free_port()
    config = deep_merge(chart, {
        "log": {"format": "text"},
        "kafka": {"bootstrapServers": tansu.bootstrap},
        "gateway": {"bindAddress": "127.0.0.1", "port": port, "healthPort": health},
    })
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    socket_dir = os.path.dirname(chart["ingestor"]["socket"])
    common = {str(tmp_path / "config.yaml"): f"{CONFIG}:ro", str(tmp_path / "secrets"): SECRETS}
    volumes = {
        "ingestor": {**common, str(tmp_path / "sock"): socket_dir, str(tmp_path / "state"): chart["ingestor"]["stateDir"],
                     str(tmp_path / "tmp-ingestor"): "/tmp"},
        "gateway": {**common, str(tmp_path / "sock"): socket_dir, str(tmp_path / "tmp-gateway"): "/tmp"},
    }
    env = {"POD_NAME": "images-pod", "POD_NAMESPACE": "default", "POD_IP": "127.0.0.1"}
    args = {"ingestor": ["run", "--config", CONFIG, "--secrets", SECRETS], "gateway": ["--config", CONFIG, "--secrets", SECRETS]}
    procs = {}
    try:
        for process, c in cs.items():
            log = (tmp_path / f"{process}.log").open("wb")
            procs[process] = subprocess.Popen(c.command(args[process], volumes[process], env), stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)

        def logs() -> str:
            return "\n".join(f"--- {p}\n" + (tmp_path / f"{p}.log").read_text(errors="replace")[-2000:] for p in procs)

        base, hams = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health}"
        wait_until(lambda: requests.get(f"{hams}/hams/ready", timeout=2).status_code == 200, 180,
                   interval=0.5, what=f"/hams/ready 200 from the images\n{logs()}")
        # The librdkafka the ingestor loaded inside its image (logged at start-up) is >= 2.2.
        loaded = re.search(r"librdkafka.*version=(\d+)\.(\d+)", (tmp_path / "ingestor.log").read_text())
        assert loaded and (int(loaded[1]), int(loaded[2])) >= (2, 2), logs()
        # The socket in the shared directory was made by the ingestor's (non-root) user.
        sock = tmp_path / "sock" / os.path.basename(chart["ingestor"]["socket"])
        assert sock.stat().st_uid == uid

        # One event produced on the host, with the host's build of the generator.
        host_config = tmp_path / "host-config.yaml"
        host_config.write_text(yaml.safe_dump({"kafka": {"bootstrapServers": tansu.bootstrap},
                                               "ingestor": {"schemaDir": str(ROOT / "schemas")}}))
        events = tmp_path / "events.jsonl"
        events.write_text(json.dumps({"type": CHASER, "name": "A", "id": "img-1", "sent": 1000, "ttl": 300,
                                      "previous": None}) + "\n")
        out = subprocess.run([str(binaries.ingestor), "generate", "--config", str(host_config), "--events-file",
                              str(events)], env=run_environment(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr

        expected = {"type": AGGREGATE, "names": ["A"], "count": 1, "latest": 1000, "longest": 300}
        wait_until(lambda: requests.get(f"{base}/chaser/img-1", timeout=2).json() == expected, 60,
                   interval=0.5, what=f"GET /chaser/img-1 from the gateway image\n{logs()}")

        # /hams/stop (the chart's preStop) ends both processes gracefully.
        assert requests.get(f"{hams}/hams/stop", timeout=5).status_code == 200
        for process, proc in procs.items():
            assert proc.wait(60) == 0, f"{process} exited {proc.returncode}\n{logs()}"
        # As with the chart's readOnlyRootFilesystem: nothing was written outside the volumes. The container's
        # overlay upper directory holds only the mount points and what `buildah run` itself adds (/etc/hosts, /run).
        for process, c in cs.items():
            upper = c.files().parent / "diff"
            allowed = {"etc/hosts", "etc/resolv.conf", "etc/hostname", "run", "run/.containerenv"}
            for target in volumes[process].values():
                path = Path(target.split(":")[0].lstrip("/"))
                allowed |= {str(path), *(str(p) for p in path.parents if str(p) != ".")}
            written = {str(p.relative_to(upper)) for p in upper.rglob("*")}
            assert written <= allowed, f"{process} wrote outside its volumes: {sorted(written - allowed)}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
