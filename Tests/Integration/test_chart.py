"""Packaging tests: the helm chart rendered by the real Helm SDK, linted, schema-validated, structurally checked;
the Dockerfiles hadolint-clean; the built binaries started with the chart's own container args (--print-config).

Run: .venv/bin/python -m pytest Tests/Integration/test_chart.py -q   (or `make chart-test`)
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import helm_python as helm  # helm-python-sdk; bash scripts/setup.sh installs it (missing = a failure, not a skip)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "k8s-micro"
VENV_BIN = ROOT / ".venv" / "bin"
KUBE_VERSION = "1.33.0"
RELEASE, NAMESPACE = "demo", "edge"
CONFIG_GROUPS = {"log", "pod", "kafka", "schemaRegistry", "ingestor", "gateway"}  # docs/config.md
MEMORY_BUDGET = 200 * 1024 * 1024  # the reference target: 200 MB for the whole pod
# The dashboard ConfigMap carries Grafana's JSON, whose query strings are single long lines.
YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 120, ignore: [dashboard-configmap.yaml]}}}"

# Values that exercise every optional branch and override keys users are told they may override.
CUSTOM_VALUES = {
    "replicaCount": 3,
    "fullnameOverride": "edge-micro",
    "image": {"registry": "registry.example.com/iot", "tag": "1.2.3", "gateway": {"tag": "1.2.4"}},
    "config": {
        "log": {"level": "debug", "format": "text"},
        "kafka": {
            "bootstrapServers": "broker-0:9092,broker-1:9092",
            "applicationId": "edge-agg",
            "processingGuarantee": "at_least_once",
            "properties": {"session.timeout.ms": "4000", "security.protocol": "SASL_SSL",
                           "sasl.password": "${kafka-password}", "message.max.bytes": 10000000},
        },
        "schemaRegistry": {"url": "http://registry:8081"},
        "ingestor": {"socket": "/run/edge/ingest.sock", "stateDir": "/data/state"},
        "gateway": {"port": 9090, "healthPort": 9091, "prefix": "/api"},
    },
    "secrets": {"existingSecret": "edge-secrets"},
    "state": {"existingClaim": "edge-state"},
    "ingestor": {"extraArgs": ["--set", "kafka.commitInterval=250"],
                 "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
    "gateway": {"preStop": {"enabled": True}},
    "terminationGracePeriodSeconds": 60,
    "podDisruptionBudget": {"minAvailable": 2},
    "metrics": {"podMonitor": {"enabled": True, "labels": {"release": "prom"}},
                "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
                "dashboard": {"enabled": True, "annotations": {"grafana_folder": "edge"}}},
    "nodeSelector": {"kubernetes.io/arch": "arm64"},
    "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
}


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} not installed (bash scripts/setup.sh installs it into .venv)"
    return found


def render(values: dict | None = None) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)


def documents(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def config_map(docs: list[dict]) -> dict:
    """The config ConfigMap (the dashboard's, when enabled, is another)."""
    return one([d for d in docs if "config.yaml" in d.get("data", {})], "ConfigMap")


def containers(docs: list[dict]) -> dict[str, dict]:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def write_manifests(rendered: dict[str, str], directory: Path) -> list[Path]:
    """Each non-empty rendered template as its own file, headed like `helm template` output."""
    files = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml") or not text.strip():
            continue
        out = directory / Path(path).name
        out.write_text(f"---\n# Source: {path}\n{text.strip()}\n")
        files.append(out)
    return files


def memory_bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?", str(quantity))
    assert m, f"unexpected memory quantity {quantity!r}"
    scale = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[m.group(2)]
    return int(float(m.group(1)) * scale)


def walk(node, path=""):
    """Every (path, key, value) in a nested manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


@pytest.fixture(scope="module")
def default_rendered() -> dict[str, str]:
    return render()


@pytest.fixture(scope="module")
def custom_rendered() -> dict[str, str]:
    return render(CUSTOM_VALUES)


@pytest.fixture(params=["default", "custom"])
def variant(request, default_rendered, custom_rendered):
    """(values, rendered manifests) for both the defaults and the non-default values."""
    if request.param == "default":
        return {}, default_rendered
    return CUSTOM_VALUES, custom_rendered


def effective(values: dict) -> dict:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.merge_values(copy.deepcopy(values))


# --- lint and validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, CUSTOM_VALUES], ids=["default", "custom"])
def test_helm_lint_strict(values):
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_values_schema_rejects_typos_and_bad_values():
    for bad in (
        {"config": {"kafka": {"bootstrap": "x:9092"}}},  # misspelled config key
        {"config": {"gateway": {"port": 0}}},
        {"config": {"kafka": {"processingGuarantee": "exactly_once"}}},
        {"config": {"log": {"level": "verbose"}}},
        {"gateway": {"resources": {"limits": {"memory": "lots"}}}},
    ):
        with pytest.raises(helm.HelmValuesError):
            render(bad)


def test_kubernetes_validate_strict(variant, tmp_path):
    _, rendered = variant
    files = write_manifests(rendered, tmp_path)
    builtin = [f for f in files if "monitoring.coreos.com" not in f.read_text()]
    assert len(builtin) >= 6
    out = subprocess.run([tool("kubernetes-validate"), "-k", KUBE_VERSION, "--strict", *map(str, builtin)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(builtin), out.stdout


def test_kubernetes_validate_catches_misspelled_fields(default_rendered, tmp_path):
    """Negative control: the validator really checks field names (without --strict it would not)."""
    deployment = next(p for p in write_manifests(default_rendered, tmp_path) if p.name == "deployment.yaml")
    deployment.write_text(deployment.read_text().replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"))
    out = subprocess.run([tool("kubernetes-validate"), "-k", KUBE_VERSION, "--strict", str(deployment)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout


def test_yamllint_rendered_manifests(variant, tmp_path):
    _, rendered = variant
    write_manifests(rendered, tmp_path)
    out = subprocess.run([tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile.ingestor", "Dockerfile.gateway"])
def test_hadolint_clean(dockerfile):
    out = subprocess.run([tool("hadolint"), "--no-color", str(ROOT / dockerfile)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfiles_shape():
    for process in ("ingestor", "gateway"):
        text = (ROOT / f"Dockerfile.{process}").read_text()
        assert re.search(r"^FROM \$\{SWIFT_IMAGE\} AS build$", text, re.M)
        assert re.search(r"^ARG SWIFT_IMAGE=swift:6\.\d+", text, re.M)
        assert f"--static-swift-stdlib --product k8s-micro-{process}" in text
        assert text.index("COPY Package.* ./") < text.index("RUN swift package resolve") < text.index("COPY . .")
        assert f"strip /out/k8s-micro-{process}" in text
        assert "USER 65532:65532" in text
        assert f'ENTRYPOINT ["/usr/local/bin/k8s-micro-{process}"]' in text
        for label in ("title", "version", "revision", "source", "created"):
            assert f"org.opencontainers.image.{label}=" in text
    ingestor = (ROOT / "Dockerfile.ingestor").read_text()
    assert "COPY schemas /opt/k8s-micro/schemas" in ingestor
    assert "dpkg --compare-versions" in ingestor and "ge 2.2" in ingestor


# --- structure --------------------------------------------------------------------------------------------------


def test_two_containers_share_the_socket_volume(variant):
    values, rendered = variant
    v = effective(values)
    docs = documents(rendered)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    cs = containers(docs)
    assert set(cs) == {"ingestor", "gateway"}
    volumes = {vol["name"]: vol for vol in pod["volumes"]}
    assert "emptyDir" in volumes["socket"]
    socket_dir = os.path.dirname(v["config"]["ingestor"]["socket"])
    for c in cs.values():
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["socket"] == socket_dir
        assert mounts["config"] == "/etc/k8s-micro/config.yaml"
    state = {m["name"]: m["mountPath"] for m in cs["ingestor"]["volumeMounts"]}["state"]
    assert state == v["config"]["ingestor"]["stateDir"]
    if v["state"]["existingClaim"]:
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == v["state"]["existingClaim"]
    else:
        assert "emptyDir" in volumes["state"]
    assert "state" not in {m["name"] for m in cs["gateway"]["volumeMounts"]}


def test_container_args_and_images(variant):
    values, rendered = variant
    v = effective(values)
    cs = containers(documents(rendered))
    common = ["--config", "/etc/k8s-micro/config.yaml", "--secrets", "/etc/k8s-micro/secrets"]
    assert cs["ingestor"]["args"] == ["run", *common, *v["ingestor"]["extraArgs"]]
    assert cs["gateway"]["args"] == [*common, *v["gateway"]["extraArgs"]]
    for name, c in cs.items():
        tag = v["image"][name]["tag"] or v["image"]["tag"] or "0.1.0"
        assert c["image"].endswith(f"/k8s-micro-{name}:{tag}")


def test_downward_api_env(variant):
    _, rendered = variant
    for c in containers(documents(rendered)).values():
        env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c["env"]}
        assert env["POD_NAME"] == "metadata.name"
        assert env["POD_NAMESPACE"] == "metadata.namespace"
        assert env["POD_IP"] == "status.podIP"


def test_gateway_probes_and_prestop_on_health_port(variant):
    values, rendered = variant
    v = effective(values)
    gateway = containers(documents(rendered))["gateway"]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports == {"http": v["config"]["gateway"]["port"], "health": v["config"]["gateway"]["healthPort"]}
    expected = {"startupProbe": "/hams/startup", "readinessProbe": "/hams/ready", "livenessProbe": "/hams/alive"}
    for probe, path in expected.items():
        get = gateway[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in ("health", ports["health"])
    pre_stop = gateway["lifecycle"]["preStop"]["httpGet"]
    assert pre_stop["path"] == "/hams/stop" and pre_stop["port"] in ("health", ports["health"])


def test_ingestor_exec_liveness_probe(variant):
    _, rendered = variant
    ingestor = containers(documents(rendered))["ingestor"]
    command = ingestor["livenessProbe"]["exec"]["command"]
    assert command == ["/usr/local/bin/k8s-micro-ingestor", "probe", "alive", "--config", "/etc/k8s-micro/config.yaml"]
    assert "ports" not in ingestor and "httpGet" not in ingestor["livenessProbe"]


def test_graceful_shutdown_budget(variant):
    values, rendered = variant
    v = effective(values)
    pod = one(documents(rendered), "Deployment")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace == v["terminationGracePeriodSeconds"] >= 30
    timeout_ms = int(v["config"]["kafka"]["properties"].get("session.timeout.ms", 45000))
    assert grace * 1000 > timeout_ms, "grace period must cover leaving the group"


def test_security_context_everywhere(variant):
    _, rendered = variant
    docs = documents(rendered)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in containers(docs).values():
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert not sc.get("privileged")
    for doc in docs:
        for path, key, value in walk(doc):
            if key in ("runAsUser", "runAsGroup"):
                assert value != 0, f"root {key} at {doc['kind']}{path}"
            if key == "runAsNonRoot":
                assert value is True, f"runAsNonRoot false at {doc['kind']}{path}"


def test_resources_requests_and_limits(variant):
    _, rendered = variant
    limits = 0
    for name, c in containers(documents(rendered)).items():
        res = c["resources"]
        assert memory_bytes(res["requests"]["memory"]) <= memory_bytes(res["limits"]["memory"]), name
        assert "cpu" in res["requests"], name
        limits += memory_bytes(res["limits"]["memory"])
    assert limits < MEMORY_BUDGET


def test_default_memory_well_under_budget(default_rendered):
    cs = containers(documents(default_rendered))
    assert sum(memory_bytes(c["resources"]["limits"]["memory"]) for c in cs.values()) <= 128 * 2**20


def test_services_expose_api_not_health(variant):
    values, rendered = variant
    v = effective(values)
    health = v["config"]["gateway"]["healthPort"]
    services = by_kind(documents(rendered), "Service")
    assert len(services) == 2
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1 and headless[0]["spec"]["publishNotReadyAddresses"] is True
    api = next(s for s in services if s is not headless[0])
    assert [(p["name"], p["port"], p["targetPort"]) for p in api["spec"]["ports"]] == [
        ("http", v["service"]["port"], "http")]
    for svc in services:
        for port in svc["spec"]["ports"]:
            assert port["port"] != health and port["targetPort"] not in (health, "health")
        assert svc["spec"]["selector"] == one(documents(rendered), "Deployment")["spec"]["selector"]["matchLabels"]


def test_pod_disruption_budget(variant):
    values, rendered = variant
    pdb = one(documents(rendered), "PodDisruptionBudget")["spec"]
    if values:
        assert pdb == {"minAvailable": 2, "selector": pdb["selector"]}
    else:
        assert pdb["maxUnavailable"] == 1


def test_metrics_annotations_and_optional_podmonitor(default_rendered, custom_rendered):
    annotations = one(documents(default_rendered), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8079"
    assert annotations["prometheus.io/path"] == "/hams/metrics"
    assert not by_kind(documents(default_rendered), "PodMonitor"), "off by default"
    monitor = one(documents(custom_rendered), "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "health", "path": "/hams/metrics", "interval": "30s"}]
    custom = one(documents(custom_rendered), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert custom["prometheus.io/port"] == "9091"


def test_secrets_mounted_as_files_only_when_named(default_rendered, custom_rendered):
    default_pod = one(documents(default_rendered), "Deployment")["spec"]["template"]["spec"]
    assert "secrets" not in {v["name"] for v in default_pod["volumes"]}
    pod = one(documents(custom_rendered), "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
    assert volume["secret"]["secretName"] == "edge-secrets"
    for c in pod["containers"]:
        mount = next(m for m in c["volumeMounts"] if m["name"] == "secrets")
        assert mount == {"name": "secrets", "mountPath": "/etc/k8s-micro/secrets", "readOnly": True}


def test_configmap_holds_spec_config(variant):
    values, rendered = variant
    v = effective(values)
    cm = config_map(documents(rendered))
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert set(config) == CONFIG_GROUPS
    assert config == v["config"]
    assert config["kafka"]["properties"]["session.timeout.ms"] in ("6000", "4000")
    if values:
        assert config["kafka"]["bootstrapServers"] == "broker-0:9092,broker-1:9092"
        assert config["gateway"]["port"] == 9090
        assert config["kafka"]["properties"]["sasl.password"] == "${kafka-password}"
        assert config["kafka"]["properties"]["message.max.bytes"] == 10000000, "large numbers keep their form"
    checksum = one(documents(rendered), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum["checksum/config"])


def test_config_change_rolls_the_pods(default_rendered):
    changed = render({"config": {"log": {"level": "debug"}}})

    def checksum(r):
        return one(documents(r), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(changed) != checksum(default_rendered)


def test_notes_render(default_rendered):
    notes = next(text for path, text in default_rendered.items() if path.endswith("NOTES.txt"))
    assert "port-forward svc/demo-k8s-micro" in notes and "/hams/metrics" in notes


def test_readme_documents_every_value():
    readme = (CHART / "README.md").read_text()
    leaves = []

    def collect(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and key != "properties":
                collect(value, path + ".")
            else:
                leaves.append(path)

    collect(yaml.safe_load((CHART / "values.yaml").read_text()), "")
    missing = [p for p in leaves if f"`{p}`" not in readme]
    assert not missing, f"values missing from charts/k8s-micro/README.md: {missing}"


# --- the binaries with the chart's own args -------------------------------------------------------------------


SAMPLE_POD = {"POD_NAME": "demo-k8s-micro-7d9f8b6c5-x2x4q", "POD_NAMESPACE": "edge", "POD_IP": "10.42.0.17"}


@pytest.mark.parametrize("process", ["ingestor", "gateway"])
@pytest.mark.parametrize("which", ["default", "custom"])
def test_binaries_accept_rendered_args_and_config(process, which, binaries, run_env, tmp_path, default_rendered,
                                                  custom_rendered):
    rendered = default_rendered if which == "default" else custom_rendered
    docs = documents(rendered)
    config_text = config_map(docs)["data"]["config.yaml"]
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config_text)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "kafka-password").write_text("s3cret-value\n")

    container = containers(docs)[process]
    args = [{"/etc/k8s-micro/config.yaml": str(config_path), "/etc/k8s-micro/secrets": str(secrets)}.get(a, a)
            for a in container["args"]]
    binary = binaries.ingestor if process == "ingestor" else binaries.gateway
    env = dict(run_env, **SAMPLE_POD)
    out = subprocess.run([str(binary), *args, "--print-config"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    try:
        printed = yaml.safe_load(out.stdout)
    except yaml.YAMLError:
        printed = None
    assert isinstance(printed, dict) and "pod" in printed, (
        f"k8s-micro-{process} --print-config did not print the config: {out.stdout.strip()[:200]!r}")
    assert set(printed) >= CONFIG_GROUPS
    assert printed["pod"] == {"name": SAMPLE_POD["POD_NAME"], "namespace": SAMPLE_POD["POD_NAMESPACE"],
                              "ip": SAMPLE_POD["POD_IP"]}
    expected = yaml.safe_load(config_text)
    assert str(printed["gateway"]["port"]) == str(expected["gateway"]["port"])
    assert printed["kafka"]["bootstrapServers"] == expected["kafka"]["bootstrapServers"]
    assert printed["ingestor"]["socket"] == expected["ingestor"]["socket"]
    assert str(printed["kafka"]["properties"]["session.timeout.ms"]) == \
        expected["kafka"]["properties"]["session.timeout.ms"]
    if which == "custom":
        assert "s3cret-value" not in out.stdout, "secrets must be redacted"
        assert printed["kafka"]["properties"]["sasl.password"] == "<redacted>"
