"""Monitoring shipped with the chart, against Debian's real Prometheus (apt `prometheus`: server and promtool).

- the dashboard JSON is what charts/k8s-micro/dashboards/dashboard.py makes, and Grafana's model reads it back;
- the rendered PrometheusRule passes `promtool check rules` and the unit tests of Tests/Prometheus;
- a real Prometheus scrapes a running pod (real tansu, real binaries) under traffic, then every dashboard query
  and every alert expression is evaluated through its HTTP API: all parse, the core panels return data, and
  the dead-letter alert fires for the bad record the test sends.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT, free_port, stop_process, wait_until

helm = pytest.importorskip("helm_python", reason="helm-python-sdk not installed (bash scripts/setup.sh)")

CHART = ROOT / "charts" / "k8s-micro"
DASHBOARD = CHART / "dashboards" / "k8s-micro.json"
RULE_TESTS = ROOT / "Tests" / "Prometheus" / "alerts.test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
RELEASE, NAMESPACE = "k8s-micro", "default"
POD_LABEL = "k8s-micro-test"  # matched by the rules' default selector pod=~"k8s-micro-.*"
RATE_INTERVAL = "20s"  # what Grafana's $__rate_interval is at a 1 s scrape and a short range

# Panels an operator reads first: each must return at least one sample under traffic.
CORE_PANELS = {
    "Events/s", "Consumer lag", "Store keys", "Ingest rate per guarantee", "Consumer lag per partition",
    "Records produced per topic", "Commits and aborts", "Commit latency", "Dead letters by reason",
    "Requests per route and status", "Latency per route", "Memory per container", "CPU per container",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed (Debian package prometheus; bash scripts/setup.sh)")
    return found


def render(values: dict) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def rules_file(directory: Path) -> Path:
    """The chart's PrometheusRule spec as a plain Prometheus rule file."""
    rendered = render({"metrics": {"prometheusRule": {"enabled": True}}})
    rule = yaml.safe_load(rendered[f"{RELEASE}/templates/prometheusrule.yaml"])
    assert rule["kind"] == "PrometheusRule"
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def alert_rules(path: Path) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r]


def dashboard_targets() -> list[tuple[str, str]]:
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


# --- the dashboard ----------------------------------------------------------------------------------------------


def test_dashboard_json_is_what_the_code_makes():
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk not installed (scripts/setup.sh)")
    out = subprocess.run([sys.executable, str(CHART / "dashboards" / "dashboard.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_dashboard_reads_back_through_grafanas_model():
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk not installed (scripts/setup.sh)")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    data = json.loads(DASHBOARD.read_text())
    again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    assert again == data
    panels = data["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]
    titles = {p["title"] for p in panels}
    assert CORE_PANELS <= titles, CORE_PANELS - titles


def test_dashboard_configmap_is_labelled_for_the_sidecar():
    assert not any("dashboard" in k and v.strip() for k, v in render({}).items())  # opt-in
    rendered = render({"metrics": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "edge"}}}})
    cm = yaml.safe_load(rendered[f"{RELEASE}/templates/dashboard-configmap.yaml"])
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "edge"}
    assert json.loads(cm["data"]["k8s-micro.json"]) == json.loads(DASHBOARD.read_text())


# --- the alerts -------------------------------------------------------------------------------------------------


def test_rules_pass_promtool_check_and_unit_tests(tmp_path):
    promtool = tool("promtool")
    assert not any("prometheusrule" in k and v.strip() for k, v in render({}).items())  # opt-in
    rules = rules_file(tmp_path)
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 7 rules found" in out.stdout
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    out = subprocess.run([promtool, "test", "rules", str(tmp_path / RULE_TESTS.name)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_test_and_a_runbook(tmp_path):
    alerts = alert_rules(rules_file(tmp_path))
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if not case.get("exp_alerts")}
    anchors = {github_anchor(line[4:]) for line in OPERATIONS.read_text().splitlines() if line.startswith("### ")}
    base = "https://github.com/polecatworks/k8s-micro/blob/main/docs/operations.md#"
    for rule in alerts:
        name = rule["alert"]
        assert name in firing and name in quiet, name
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(base) and url[len(base):] in anchors, (name, url)
        assert rule["labels"]["severity"] in ("warning", "critical"), name


# --- a real Prometheus scraping a running pod ------------------------------------------------------------------


class Prometheus:
    """Debian's Prometheus server scraping one target every second, with the chart's rules loaded."""

    def __init__(self, workdir: Path, target: str, rules: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{
                "job_name": "k8s-micro",
                "metrics_path": "/hams/metrics",
                "static_configs": [{"targets": [target], "labels": {"namespace": NAMESPACE, "pod": POD_LABEL}}],
            }],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_until(lambda: requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 60,
                   what=f"prometheus ready ({self.log})")

    def query(self, expr: str) -> dict:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]

    def get(self, path: str) -> dict:
        answer = requests.get(f"{self.url}/api/v1/{path}", timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def stop(self) -> None:
        stop_process(self.proc, 10)


def grafana_substitute(expr: str) -> str:
    """What Grafana sends for the dashboard's variables: this namespace, every pod (regex), the rate window."""
    return (expr.replace("$namespace", NAMESPACE).replace("$pod", ".*")
            .replace("$__rate_interval", RATE_INTERVAL))


def has_data(data: dict) -> bool:
    return any(v != "NaN" for r in data["result"] for v in ([r["value"][1]] if "value" in r else []))


def test_real_prometheus_evaluates_every_dashboard_query_and_alert(tansu, pod_factory, binaries, run_env,
                                                                    tmp_path):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    tool("prometheus")
    tansu.create_topic("input", 4)
    pod = pod_factory(tansu, name="prom", kafka={"properties": {"statistics.interval.ms": 1000}}).start(120)
    prometheus = Prometheus(tmp_path, pod.health.removeprefix("http://"), rules_file(tmp_path))
    generator = subprocess.Popen(
        [str(binaries.ingestor), "generate", "--config", str(pod.config_path), "--rate", "200", "--keys", "50",
         "--duration", "300"], env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The bad record after Prometheus has seen its counter at 0 (a first sample of 1 is no increase).
        wait_until(lambda: prometheus.query('records_dead_lettered_total{reason="bad-magic"} == 0')["result"], 60,
                   what="first scrape")
        producer = confluent_kafka.Producer({"bootstrap.servers": tansu.bootstrap})
        producer.produce("input", key=b"bad", value=b"\x01not avro")
        assert producer.flush(30) == 0

        def some_keys() -> list[str]:
            keys = requests.get(f"{pod.api}/chaser", timeout=2).json()["keys"]
            return keys if len(keys) >= 5 else []

        keys = wait_until(some_keys, 60, what="chaser keys served")
        # Traffic until Prometheus holds enough samples for every rate window, then a little more.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for key in keys[:5]:
                assert requests.get(f"{pod.api}/chaser/{key}", timeout=2).status_code == 200
            requests.get(f"{pod.api}/chaser/no-such-key", timeout=2)
            ready = prometheus.query(f"count_over_time(records_consumed_total[{RATE_INTERVAL}]) >= 10")["result"]
            lag = prometheus.query("kafka_consumer_lag")["result"]
            dead = prometheus.query('records_dead_lettered_total{reason="bad-magic"}')["result"]
            if ready and lag and dead:
                break
            time.sleep(0.5)
        assert prometheus.query("up")["result"][0]["value"][1] == "1"

        # Lag per partition now comes from librdkafka's statistics on this broker too.
        partitions = {r["metric"]["partition"] for r in prometheus.query("kafka_consumer_lag")["result"]}
        assert partitions == {"0", "1", "2", "3"}

        empty = []
        for title, expr in dashboard_targets():
            data = prometheus.query(grafana_substitute(expr))  # asserts it parses and evaluates
            if title in CORE_PANELS and not has_data(data):
                empty.append((title, expr))
        # A core panel may have several queries; each needs one that returns data.
        core_with_data = {t for t, e in dashboard_targets() if t in CORE_PANELS and (t, e) not in empty}
        assert core_with_data == CORE_PANELS, empty

        alerts = alert_rules(tmp_path / "rules.yaml")
        assert len(alerts) == 7
        for rule in alerts:
            prometheus.query(rule["expr"])

        # The server loaded every rule and evaluated each without error (an unevaluated rule's lastEvaluation is
        # Go's zero time, year 0001).
        def loaded() -> list[dict]:
            return [r for g in prometheus.get("rules")["groups"] for r in g["rules"]]

        assert {r["name"] for r in loaded()} == {r["alert"] for r in alerts}
        wait_until(lambda: all(not r["lastEvaluation"].startswith("0001") for r in loaded()), 30,
                   what="every rule evaluated")
        assert all(r["health"] == "ok" for r in loaded()), loaded()

        # The bad record fires the dead-letter alert (no `for`), and nothing else fires on a healthy pod.
        def firing() -> set[tuple[str, str]]:
            return {(a["labels"]["alertname"], a["labels"].get("reason", ""))
                    for a in prometheus.get("alerts")["alerts"] if a["state"] == "firing"}

        try:
            wait_until(lambda: ("K8sMicroDeadLetters", "bad-magic") in firing(), 60, what="dead-letter alert firing")
        except TimeoutError:
            series = prometheus.query('records_dead_lettered_total{reason="bad-magic"}[2m]')
            raise AssertionError(f"alerts {prometheus.get('alerts')}; series {series}") from None
        assert firing() == {("K8sMicroDeadLetters", "bad-magic")}
    finally:
        generator.terminate()
        generator.wait(15)
        prometheus.stop()
