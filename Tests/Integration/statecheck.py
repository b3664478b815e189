"""Key-by-key state checks and read probes shared by the fault tests.

  expected_state(broker, fallback)      {(store, key): aggregate} the stores must hold: folded from the input
                                        topic by the independent reference model when it is there, else the
                                        generator's `--expect` file(s) given as `fallback`
  served_mismatches(pod, expected)      keys whose aggregate served over HTTP differs (GET /chaser|billing/{key})
  output_mismatches(broker, expected)   keys whose last value in the output topics differs (None: no decoder)
  ReadProbe(pod, keys)                  a thread reading known keys through the gateway, counting answers
  metric(pod, name)                     one ingestor metric (labels summed), through the gateway's exposition
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from faultkit import BackgroundLoop

try:  # the independent reference model (Tests/Integration/reference_model.py), when it has landed
    import reference_model
except ImportError:  # pragma: no cover - depends on the checkout
    reference_model = None


def read_expect_files(*paths: Path) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            d = json.loads(line)
            out[(d["store"], d["key"])] = d["value"]
    return out


def read_to_end(bootstrap: str, topic: str, timeout: float = 60) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of `topic`, partition by partition, up to each partition's end-of-partition
    event (the reference model's reader: ListOffsets(latest) is wrong on tansu)."""
    return [(key, value) for _, _, key, value in reference_model.read_topic(bootstrap, topic, timeout)]


def expected_state(bootstrap: str, fallback: dict[tuple[str, str], dict]) -> dict[tuple[str, str], dict]:
    """The reference model's fold of the whole input topic (what really landed there, duplicates a producer
    retry wrote included), else the generator's expectation."""
    if reference_model is None:
        return fallback
    state, _dead_letters = reference_model.fold_framed(read_to_end(bootstrap, "input"))
    return reference_model.flat(state)


def served(pod, store: str, key: str, timeout: float = 3) -> tuple[int, dict | None]:
    answer = requests.get(f"{pod.api}/{store}/{key}", timeout=timeout)
    return answer.status_code, (answer.json() if answer.status_code == 200 else None)


def served_mismatches(pod, expected: dict[tuple[str, str], dict]) -> list[tuple[str, str]]:
    wrong = []
    with requests.Session() as session:
        for (store, key), value in expected.items():
            answer = session.get(f"{pod.api}/{store}/{key}", timeout=5)
            if answer.status_code != 200 or answer.json() != value:
                wrong.append((store, key))
    return wrong


def wait_served_exact(pod, expected: dict[tuple[str, str], dict], timeout: float) -> float:
    """Polls until every expected key is served exactly; returns the seconds it took."""
    start = time.monotonic()
    wrong: list = []
    while time.monotonic() - start < timeout:
        try:
            wrong = served_mismatches(pod, expected)
        except requests.RequestException as exc:
            wrong = [("error", str(exc))]
        if not wrong:
            return time.monotonic() - start
        time.sleep(1)
    sample = wrong[0]
    got = None
    if sample[0] != "error":
        got = requests.get(f"{pod.api}/{sample[0]}/{sample[1]}", timeout=5).text
    raise AssertionError(
        f"{len(wrong)} of {len(expected)} aggregates not served exactly after {timeout}s, e.g. {sample}: "
        f"expected {json.dumps(expected.get(sample))}, got {got}\n{pod.logs_tail(30)}")


def output_mismatches(bootstrap: str, expected: dict[tuple[str, str], dict]) -> list[tuple[str, str]] | None:
    """Keys whose last output-topic value differs from `expected` (None when no decoder is available)."""
    if reference_model is None:
        return None
    wrong = []
    for store in ("chaser", "billing"):
        last = {k.decode(): reference_model.decode_output(v) for k, v in read_to_end(bootstrap, store)
                if k is not None and v is not None}
        want = {k: v for (s, k), v in expected.items() if s == store}
        wrong += [(store, k) for k, v in want.items() if last.get(k) != v]
        wrong += [(store, k) for k in last if k not in want]
    return wrong


def metric(pod, name: str) -> float | None:
    text = requests.get(f"{pod.health}/hams/metrics", timeout=3).text
    total = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total = (total or 0.0) + sample.value
    return total


def ready_detail(pod) -> tuple[int, dict[str, bool]]:
    answer = requests.get(f"{pod.health}/hams/ready", timeout=3)
    return answer.status_code, {d["name"]: d["valid"] for d in answer.json().get("detail", [])}


class ReadProbe(BackgroundLoop):
    """Reads known keys through the gateway in a loop (one connection); counts answers by status."""

    def __init__(self, pod, keys: list[tuple[str, str]]):
        super().__init__("read-probe")
        self.pod = pod
        self.keys = keys
        self.counts: dict[int | str, int] = {}
        self.longest_gap = 0.0
        self._last_ok = time.monotonic()

    def reset(self) -> None:
        self.counts = {}
        self.longest_gap = 0.0
        self._last_ok = time.monotonic()

    def _run(self) -> None:
        i = 0
        with requests.Session() as session:
            while not self._stop.is_set():
                store, key = self.keys[i % len(self.keys)]
                i += 1
                try:
                    status: int | str = session.get(f"{self.pod.api}/{store}/{key}", timeout=3).status_code
                except requests.RequestException:
                    status = "error"
                self.counts[status] = self.counts.get(status, 0) + 1
                now = time.monotonic()
                if status == 200:
                    self._last_ok = now
                self.longest_gap = max(self.longest_gap, now - self._last_ok)
                time.sleep(0.02)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok_share(self) -> float:
        return self.counts.get(200, 0) / max(1, self.total)
