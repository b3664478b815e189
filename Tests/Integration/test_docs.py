"""Every example in README.md and docs/ works as written, and what they promise holds: YAML configs load (through --print-config, with a
secrets folder for their ${name} values), shell examples parse and name scripts and make targets that exist, and
the documented config error is exactly what a process prints. The README's curl examples run against a real
`run.sh` in test_stop.py. About 15 s."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
import requests
import yaml
from conftest import ROOT, wait_until
from doc_examples import DOCUMENTS, examples

CONFIG_GROUPS = {"log", "pod", "kafka", "schemaRegistry", "ingestor", "gateway"}
SECRET = "pw-from-the-secret-file"


def leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path != "kafka.properties":
            yield from leaves(value, path + ".")
        elif isinstance(value, dict):
            for name, v in value.items():
                yield f"{path}.{name}", v
        else:
            yield path, value


def test_every_yaml_example_parses():
    found = examples("yaml")
    assert len(found) >= 2, "README and docs/config.md show configs"
    for example in found:
        try:
            yaml.safe_load(example.text)
        except yaml.YAMLError as error:
            raise AssertionError(f"{example}: not valid YAML: {error}") from error


def test_config_examples_load_with_their_secrets(binaries, run_env, tmp_path):
    configs = [e for e in examples("yaml") if set(yaml.safe_load(e.text) or {}) <= CONFIG_GROUPS]
    assert len(configs) >= 2
    for index, example in enumerate(configs):
        config = tmp_path / f"config-{index}.yaml"
        config.write_text(example.text)
        secrets = tmp_path / f"secrets-{index}"
        secrets.mkdir()
        for name in re.findall(r"\$\{([A-Za-z0-9._-]+)\}", example.text):
            (secrets / name).write_text(SECRET + "\n")
        documented = dict(leaves(yaml.safe_load(example.text)))
        for command in ([str(binaries.gateway)], [str(binaries.ingestor), "run"]):
            out = subprocess.run(
                [*command, "--config", str(config), "--secrets", str(secrets), "--print-config"],
                capture_output=True, text=True, env=run_env, timeout=30,
            )
            assert out.returncode == 0, f"{example}: {out.stderr}"
            assert SECRET not in out.stdout
            printed = dict(leaves(yaml.safe_load(out.stdout)))
            for path, value in documented.items():
                expected = "<redacted>" if "${" in str(value) else value
                assert printed.get(path) == expected, f"{example}: {path} printed as {printed.get(path)!r}"


def test_shell_examples_parse_and_name_real_scripts_and_targets():
    found = examples("sh") + examples("bash")
    assert found
    for example in found:
        syntax = subprocess.run(["bash", "-n"], input=example.text, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{example}: {syntax.stderr}"
        for command in example.commands():
            for word in shlex.split(command):
                if word.startswith(("./scripts/", "scripts/")):
                    assert os.access(ROOT / word, os.X_OK), f"{example}: {word} is not an executable script"


def test_every_make_target_the_docs_name_exists():
    targets = set()
    for document in DOCUMENTS:
        targets |= set(re.findall(r"`make ([a-z][\w-]*)", document.read_text()))
    assert {"dev", "bench", "lint"} <= targets
    for target in sorted(targets):
        out = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"make {target}: {out.stderr}"


def test_documented_config_error_is_what_the_process_prints(binaries, run_env, tmp_path):
    """docs/config.md shows a command and its output: run the command, compare the output byte for byte."""
    text = (ROOT / "docs" / "config.md").read_text()
    command = re.search(r"`(LOG_LEVEL=\S+) k8s-micro-gateway ([^`]+)` with a typo in the file", text)
    assert command, "docs/config.md shows the command of its error example"
    [shown] = [e for e in examples("text") if e.document.name == "config.md" and "invalid configuration" in e.text]
    typo = re.search(r"- (\w+)\.(\w+): unknown key", shown.text)
    assert typo
    (tmp_path / "config.yaml").write_text(f"{typo.group(1)}:\n  {typo.group(2)}: broker:9092\n")
    name, value = command.group(1).split("=", 1)
    out = subprocess.run(
        [str(binaries.gateway), *shlex.split(command.group(2))],
        cwd=tmp_path, capture_output=True, text=True, env=dict(run_env, **{name: value}), timeout=30,
    )
    assert out.returncode == 78
    assert out.stderr == shown.text


def test_without_the_input_topic_ready_and_listings_say_why(tansu, pod_factory, binaries, run_env):
    """README: with a config whose input topic does not exist, /hams/ready stays 429 and says so; a key listing
    answers the documented 503 + Retry-After, not an empty 200 that looks like an empty store."""
    pod = pod_factory(tansu, ingestor={"schemaDir": ""})  # the built-in schemas
    pod.start_ingestor()
    pod.start_gateway()
    ready = wait_until(
        lambda: (r := requests.get(f"{pod.health}/hams/ready", timeout=2)).status_code == 429
        and {d["name"]: d["valid"] for d in r.json()["detail"]}.get("ingestor-input-topic") is False
        and r.json(), 60, what="/hams/ready naming the input topic")
    assert ready["valid"] is False
    # docs/operations.md shows the probe's line for this very case.
    shown = re.search(r"`(ready=false joinedGroup[^`]*)`", (ROOT / "docs" / "operations.md").read_text())
    assert shown
    probe = subprocess.run(
        [str(binaries.ingestor), "probe", "ready", "--config", str(pod.config_path)],
        capture_output=True, text=True, env=run_env, timeout=30,
    )
    assert probe.returncode == 1 and probe.stdout.strip() == shown.group(1), probe.stdout + probe.stderr
    listing = requests.get(f"{pod.api}/chaser", timeout=5)
    assert listing.status_code == 503 and "Retry-After" in listing.headers
    assert "waiting for the input topic" in listing.json()["message"]
    tansu.create_topic("input", 2)
    pod.wait_ready(60)  # and it goes on once the topic exists
    assert requests.get(f"{pod.api}/chaser", timeout=5).json()["keys"] == []


def test_no_config_as_an_unprivileged_user_names_the_keys_to_change(binaries, run_env, tmp_path):
    """docs/config.md: a user who may not write the default directories gets each key, its variable and path."""
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*nobody, "test", "-x", str(binaries.ingestor)], env=run_env).returncode != 0:
        pytest.skip("the build directory is not reachable by uid 65534")
    out = subprocess.run(
        [*nobody, str(binaries.ingestor), "run"], cwd=tmp_path, capture_output=True, text=True, env=run_env, timeout=60
    )
    assert out.returncode == 78, out.stderr
    for key, variable in [("ingestor.stateDir", "INGESTOR_STATE_DIR"), ("ingestor.socket", "INGESTOR_SOCKET")]:
        assert f"- {key}: /var/" in out.stderr and variable in out.stderr, out.stderr
    assert "Permission denied" in out.stderr and "CocoaError" not in out.stderr


def test_the_repository_cites_no_document_outside_it():
    """Docs, scripts, code and tests state facts themselves instead of pointing at files that are not here."""
    outside = ["SPEC " + "\u00a7", "SPEC " + "\\u00a7", "PLATFORM" + "-NOTES", "SPEC" + ".md"]
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    cited = []
    for name in files:
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            text = path.read_text(errors="replace")
            cited += [f"{name}: {word}" for word in outside if word in text]
    assert not cited, cited


def test_generate_with_an_old_librdkafka_fails_at_once_naming_the_fix(binaries, run_env, tmp_path):
    """README troubleshooting: without scripts/env.sh, Debian 12's librdkafka loads; generate must not hang."""
    env = dict(run_env)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in env["LD_LIBRARY_PATH"].split(":") if not p.endswith("rdkafka"))
    out = subprocess.run(
        [str(binaries.ingestor), "generate", "--total", "1", "--set", "kafka.bootstrapServers=127.0.0.1:1"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )
    loaded = re.search(r"librdkafka version=(\d+)\.(\d+)", out.stdout + out.stderr)
    assert loaded, out.stdout + out.stderr
    if (int(loaded.group(1)), int(loaded.group(2))) >= (2, 2):
        pytest.skip(f"the system librdkafka is {loaded.group(0)}: new enough")
    assert out.returncode == 69
    assert "source scripts/env.sh" in out.stderr
