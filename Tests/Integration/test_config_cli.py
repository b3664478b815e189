"""The config contract through the real binaries: --print-config, redaction, env naming, all-errors exit."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import ROOT

CONFIG_EXIT = 78


def run(binary, args, env, timeout=20):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.fixture
def secret_config(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "kafka-password").write_text("s3cr3t-Value-9\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "log": {"level": "debug"},
                "kafka": {
                    "bootstrapServers": "file-broker:9092",
                    "inputTopic": "from-file",
                    "properties": {"sasl.password": "${kafka-password}", "session.timeout.ms": 6000},
                },
                "gateway": {"port": 18080},
            }
        )
    )
    return config, secrets


@pytest.mark.parametrize("which", ["gateway", "ingestor"])
def test_print_config_applies_precedence_and_redacts(binaries, run_env, secret_config, which):
    config, secrets = secret_config
    env = dict(run_env, KAFKA_INPUT_TOPIC="from-env", POD_NAME="pod-x", POD_IP="10.1.2.3")
    binary = binaries.gateway if which == "gateway" else binaries.ingestor
    prefix = [] if which == "gateway" else ["run"]
    out = run(binary, [*prefix, "--config", str(config), "--secrets", str(secrets), "--set", "gateway.port=18081",
                       "--print-config"], env)
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)
    assert printed["kafka"]["bootstrapServers"] == "file-broker:9092"  # file over default
    assert printed["kafka"]["inputTopic"] == "from-env"  # env over file
    assert printed["gateway"]["port"] == 18081  # --set over env and file
    assert printed["kafka"]["chaserTopic"] == "chaser"  # default
    assert printed["pod"] == {"name": "pod-x", "namespace": "default", "ip": "10.1.2.3"}
    assert printed["kafka"]["properties"]["sasl.password"] == "<redacted>"
    assert printed["kafka"]["properties"]["session.timeout.ms"] == 6000
    assert "s3cr3t" not in out.stdout + out.stderr


@pytest.mark.parametrize("which", ["gateway", "ingestor"])
def test_bad_config_lists_every_key_path_and_exits_78(binaries, run_env, tmp_path, which):
    config = tmp_path / "bad.yaml"
    config.write_text("log:\n  level: loud\nkafka:\n  bootstrapServres: x\ngateway:\n  port: 0\n")
    binary = binaries.gateway if which == "gateway" else binaries.ingestor
    prefix = [] if which == "gateway" else ["run"]
    out = run(binary, [*prefix, "--config", str(config)], dict(run_env, GATEWAY_HEALTH_PORT="many"))
    assert out.returncode == CONFIG_EXIT, (out.returncode, out.stderr)
    for path in ("log.level", "kafka.bootstrapServres", "gateway.port", "gateway.healthPort"):
        assert f"- {path}:" in out.stderr, out.stderr


def test_missing_config_file_is_a_config_error(binaries, run_env, tmp_path):
    out = run(binaries.gateway, ["--config", str(tmp_path / "absent.yaml")], run_env)
    assert out.returncode == CONFIG_EXIT
    assert "absent.yaml" in out.stderr


def test_version_flag(binaries, run_env):
    for binary in (binaries.gateway, binaries.ingestor):
        out = run(binary, ["--version"], run_env)
        assert out.returncode == 0
        assert out.stdout.startswith("0.1.0 (")


def test_secrets_never_reach_the_logs(binaries, run_env, secret_config, tmp_path):
    """The gateway logs its effective config at debug level on start-up: redacted."""
    config, secrets = secret_config
    from conftest import free_port, wait_until

    port, health = free_port(), free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binaries.gateway), "--config", str(config), "--secrets", str(secrets),
             "--set", f"gateway.port={port}", "--set", f"gateway.healthPort={health}",
             "--set", f"ingestor.socket={tmp_path}/absent.sock", "--set", "gateway.bindAddress=127.0.0.1"],
            stdout=out, stderr=subprocess.STDOUT, env=run_env, cwd=ROOT)
    try:
        wait_until(lambda: "sasl.password" in log.read_text(errors="replace"), 20, what="debug config in the log")
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    assert "sasl.password: <redacted>" in text
    assert "s3cr3t" not in text
