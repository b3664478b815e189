#!/usr/bin/env python3
"""Chaos soak (make chaos): random broker, network and process faults against a continuous generator under
exactly_once_v2, then an exact comparison with an independent computation from the input.

One pod (ingestor + gateway, the real binaries) on a durable tansu (s3:// on localbucket) reached through a
TCP fault proxy (Tests/Integration/faultkit.py). A generator produces events for the whole run; a supervisor
restarts a process that exits, as the kubelet would; two readers GET known keys through the gateway all the
time. Every few seconds one fault, picked at random:

  broker-kill9      broker SIGKILL, restarted after 1-5 s (same storage)
  broker-outage     broker stopped for 10-25 s, then started
  broker-sigstop    broker frozen (SIGSTOP) for 2-10 s
  latency           200 ms added each way on every broker connection for 10-20 s
  blackhole         broker connections accept and never forward, 8-20 s (past the 6 s session timeout)
  ingestor-kill9    ingestor SIGKILL, restarted at once
  ingestor-sigterm  ingestor SIGTERM (graceful), restarted once it exited (SIGKILL after the chart's 45 s)
  ingestor-sigstop  ingestor frozen for 2-10 s
  gateway-kill9     gateway SIGKILL, restarted at once

After each broker fault, the time until results are fresh: one probe event per partition is published through
the gateway (POST /events, retried until accepted) and the time from the broker's return until every probe's
aggregate is served is recorded.

At the end: faults healed, the generator stopped, and once the ingestor has caught up every key the reference
model (Tests/Integration/reference_model.py: reads the input topic, folds it by the product's rules) computes
is read through the gateway and compared, and so are the output topics' last values. Prints a table; exits 1
if anything was lost, counted twice or differs.

The rate is low on purpose (20 events/s, commits every second, the generator batching for 500 ms): durable tansu
keeps every batch as one object in S3 and lists a partition's objects on every fetch, so its reads slow down as
the number of batches grows (measured: ~60 records/s read back after a minute at 200 events/s in tiny batches).

  .venv/bin/python mk/chaos.py --seconds 60 [--seed N] [--kinds a,b] [--rate 20] [--keys 300] [--bin-dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))
import requests  # noqa: E402

import reference_model  # noqa: E402
from statecheck import read_to_end  # noqa: E402
from conftest import Binaries, Pod, bin_dir, free_port, run_environment, wait_until  # noqa: E402
from faultkit import DurableTansu, kill9, sigcont, sigstop  # noqa: E402

PARTITIONS = 4
GRACE_SECONDS = 45  # the chart's terminationGracePeriodSeconds
BROKER_KINDS = ("broker-kill9", "broker-outage", "broker-sigstop", "latency", "blackhole")
PROCESS_KINDS = ("ingestor-kill9", "ingestor-sigterm", "ingestor-sigstop", "gateway-kill9")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Supervisor(threading.Thread):
    """Restarts a pod process that exited, like the kubelet (1 s back-off). Faults that restart a process
    themselves hold `lock` while they do."""

    def __init__(self, pod: Pod):
        super().__init__(daemon=True)
        self.pod = pod
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.exits: collections.Counter[str] = collections.Counter()  # exits nobody asked for, by process

    def start_process(self, name: str) -> None:
        (self.pod.start_ingestor if name == "ingestor" else self.pod.start_gateway)()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                for name in ("ingestor", "gateway"):
                    proc = self.pod.procs.get(name)
                    if proc is not None and proc.poll() is not None:
                        self.exits[f"{name} exit {proc.returncode}"] += 1
                        log(f"{name} exited with {proc.returncode} by itself; restarting in 1 s")
                        time.sleep(1)
                        self.start_process(name)


class Readers:
    """Two threads reading known keys through the gateway; keeps every non-200 window."""

    def __init__(self, pod: Pod, keys: list[str]):
        self.pod = pod
        self.keys = keys
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: collections.Counter[str] = collections.Counter()
        self.last_ok = time.monotonic()
        self.outages: list[tuple[float, float]] = []  # (start, length) of windows with no 200
        self.threads = [threading.Thread(target=self.read, daemon=True) for _ in range(2)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def read(self) -> None:
        i = random.randrange(len(self.keys))
        while not self.stop.is_set():
            try:
                status = str(requests.get(f"{self.pod.api}/chaser/{self.keys[i % len(self.keys)]}", timeout=2)
                             .status_code)
            except requests.RequestException:
                status = "no answer"
            now = time.monotonic()
            with self.lock:
                self.answers[status] += 1
                if status == "200":
                    gap = now - self.last_ok
                    if gap > 1.0:
                        self.outages.append((self.last_ok, gap))
                    self.last_ok = now
            i += 1
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)
        gap = time.monotonic() - self.last_ok
        if gap > 1.0:
            self.outages.append((self.last_ok, gap))


class Chaos:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = workdir
        self.broker = DurableTansu(workdir)
        self.broker.create_topic("input", PARTITIONS)
        d = Path(args.bin_dir) if args.bin_dir else bin_dir()
        binaries = Binaries(d / "k8s-micro-ingestor", d / "k8s-micro-gateway")
        (workdir / "pod" / "sock").mkdir(parents=True)
        config = {
            "log": {"level": "info"},
            "pod": {"name": "chaos0", "ip": "127.0.0.1"},
            "kafka": {
                "bootstrapServers": self.broker.bootstrap,
                "processingGuarantee": "exactly_once_v2",
                "commitInterval": 1000,
                "properties": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
            },
            "ingestor": {
                "socket": str(workdir / "pod" / "sock" / "ingestor.sock"),
                "stateDir": str(workdir / "pod" / "state"),
                "schemaDir": str(ROOT / "schemas"),
            },
            "gateway": {"bindAddress": "127.0.0.1", "port": free_port(), "healthPort": free_port()},
        }
        self.pod = Pod(binaries, workdir / "pod", config, run_environment())
        # The generator batches for 500 ms: every batch is an object in the broker's S3 storage, and tansu lists
        # a partition's objects on every fetch, so many tiny batches slow every reader down as the run goes on.
        self.generator_config = workdir / "generator.yaml"
        gen_config = json.loads(json.dumps(config))
        gen_config["kafka"]["properties"] = {"linger.ms": 500}
        self.generator_config.write_text(json.dumps(gen_config))
        self.supervisor = Supervisor(self.pod)
        self.generator: subprocess.Popen | None = None
        self.generators = 0
        self.faults: collections.Counter[str] = collections.Counter()
        self.fault_log: list[tuple[float, str, str]] = []
        self.fresh: list[float] = []
        self.not_fresh = 0
        self.shutdowns: list[float] = []
        self.probes = 0
        self.started = time.monotonic()

    # --- processes ---------------------------------------------------------------------------------------

    def start_generator(self) -> None:
        self.generators += 1
        self.generator = subprocess.Popen(
            [str(self.pod.binaries.ingestor), "generate", "--config", str(self.generator_config),
             "--rate", str(self.args.rate), "--keys", str(self.args.keys), "--duration", "100000",
             "--seed", str(self.rng.randrange(1 << 30))],
            env=self.pod.env, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "generator.log").open("ab"))

    def keep_generating(self) -> None:
        # The generator's producer gives up after its delivery timeout in a long outage: start another.
        if self.generator is not None and self.generator.poll() is not None:
            log(f"generator exited with {self.generator.returncode}; starting another")
            self.start_generator()

    # --- faults ------------------------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        r = self.rng
        self.faults[kind] += 1
        t = time.monotonic() - self.started
        detail = ""
        # Faults that hold for a while: (begin, end, seconds range, how to describe the hold).
        held = {
            "broker-kill9": (self.broker.kill9, self.broker.restart, (1, 5), "down"),
            "broker-outage": (self.broker.stop, self.broker.restart, (10, 25), "down"),
            "broker-sigstop": (self.broker.pause, self.broker.resume, (2, 10), "frozen"),
            "latency": (lambda: self.broker.proxy.latency(200), self.broker.proxy.passthrough, (10, 20), "200 ms for"),
            "blackhole": (self.broker.proxy.blackhole, self.broker.proxy.passthrough, (8, 20), "cut for"),
            "ingestor-sigstop": (lambda: sigstop(self.pod.procs["ingestor"]),
                                 lambda: sigcont(self.pod.procs["ingestor"]), (2, 10), "frozen"),
        }
        if kind in held:
            begin, finish, (lo, hi), what = held[kind]
            down = r.uniform(lo, hi)
            begin()
            time.sleep(down)
            finish()
            detail = f"{what} {down:.1f} s"
        elif kind in ("ingestor-kill9", "gateway-kill9"):
            name = kind.split("-")[0]
            with self.supervisor.lock:
                kill9(self.pod.procs[name])
                self.supervisor.start_process(name)
        elif kind == "ingestor-sigterm":
            with self.supervisor.lock:
                proc = self.pod.procs["ingestor"]
                asked = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    code = kill9(proc)
                took = time.monotonic() - asked
                self.shutdowns.append(took)
                detail = f"exit {code} after {took:.1f} s"
                self.supervisor.start_process("ingestor")
        self.fault_log.append((t, kind, detail))
        log(f"fault {kind} {detail}")
        if kind in BROKER_KINDS:
            self.measure_freshness()

    def probe_keys(self) -> list[str]:
        """One new key per input partition."""
        keys: dict[int, str] = {}
        while len(keys) < PARTITIONS:
            self.probes += 1
            key = f"chaos-probe-{self.probes}"
            keys.setdefault(reference_model.partition_for(key, PARTITIONS), key)
        return list(keys.values())

    def measure_freshness(self, limit: float = 120) -> None:
        """Time from the broker's return until a new event in every partition is served."""
        back = time.monotonic()
        deadline = back + limit
        pending = set(self.probe_keys())
        published: set[str] = set()
        while pending and time.monotonic() < deadline:
            for key in sorted(pending - published):
                event = {"type": reference_model.CHASER, "name": "probe", "id": key, "sent": 1, "ttl": 1,
                         "previous": None}
                try:
                    if requests.post(f"{self.pod.api}/events", json=event, timeout=5).status_code == 202:
                        published.add(key)
                except requests.RequestException:
                    pass
            for key in sorted(published & pending):
                try:
                    answer = requests.get(f"{self.pod.api}/chaser/{key}", timeout=2)
                    if answer.status_code == 200 and answer.json().get("count") == 1:
                        pending.discard(key)
                except (requests.RequestException, ValueError):
                    pass
            time.sleep(0.1)
        if pending:
            self.not_fresh += 1
            log(f"results not fresh {limit:.0f} s after the broker returned ({len(pending)} probes pending)")
        else:
            self.fresh.append(time.monotonic() - back)
            log(f"fresh {self.fresh[-1]:.1f} s after the broker returned")

    # --- the run -----------------------------------------------------------------------------------------

    def run(self) -> int:
        log(f"workdir {self.workdir}; seed {self.args.seed}; {self.args.seconds} s of faults")
        self.pod.start_ingestor()
        self.pod.start_gateway()
        self.pod.wait_ready(120)
        self.start_generator()
        keys = wait_until(lambda: requests.get(f"{self.pod.api}/chaser", timeout=2).json()["keys"], 180,
                          what="chaser keys")
        self.supervisor.start()
        readers = Readers(self.pod, keys)
        readers.start()
        end = time.monotonic() + self.args.seconds
        kinds = tuple(self.args.kinds.split(",")) if self.args.kinds else BROKER_KINDS + PROCESS_KINDS
        while time.monotonic() < end:
            time.sleep(self.rng.uniform(3, 10))
            self.keep_generating()
            self.inject(self.rng.choice(kinds))
        self.broker.proxy.passthrough()
        self.broker.resume()
        if self.generator is not None:
            self.generator.send_signal(signal.SIGINT)
            try:
                self.generator.wait(30)
            except subprocess.TimeoutExpired:
                kill9(self.generator)
        readers.finish()
        return self.verify(readers)

    def verify(self, readers: Readers) -> int:
        log("faults over; computing the expected state from the input topic")
        # Read to each partition's end-of-partition event: ListOffsets(latest) is wrong on tansu when the last
        # batch holds several records, and would leave the newest records out of the expectation.
        records = read_to_end(self.broker.bootstrap, "input", timeout=600)
        state, dead = reference_model.fold_framed(records)
        expected = reference_model.flat(state)
        events_in = len(records)

        def served(store: str, key: str):
            try:
                answer = requests.get(f"{self.pod.api}/{store}/{key}", timeout=5)
            except requests.RequestException:
                return None  # the gateway or the ingestor is down: nothing served
            return answer.json() if answer.status_code == 200 else None

        def differing() -> list[tuple[str, str]]:
            return [k for k, v in expected.items() if served(*k) != v]

        caught_up = True
        try:
            wait_until(lambda: not differing(), 180, interval=2, what="served state to catch up")
        except TimeoutError:
            caught_up = False
        self.supervisor.stop.set()
        wrong = differing()
        lost = doubled = other = missing = 0
        for store, key in wrong:
            got, want = served(store, key), expected[(store, key)]
            if got is None:
                missing += 1
            elif store == "chaser" and got["count"] != want["count"]:
                lost += max(0, want["count"] - got["count"])
                doubled += max(0, got["count"] - want["count"])
            else:
                other += 1
        # Output topics: read after a graceful stop, so every epoch is committed.
        with self.supervisor.lock:
            self.pod.stop()
        out_wrong = 0
        for store in ("chaser", "billing"):
            last = {k.decode(): reference_model.decode_output(v)
                    for k, v in read_to_end(self.broker.bootstrap, store, timeout=600)
                    if k is not None and v is not None}
            want = {k: v for (s, k), v in expected.items() if s == store}
            out_wrong += sum(1 for k in want if last.get(k) != want[k]) + sum(1 for k in last if k not in want)

        self.print_table(readers, events_in, len(expected), len(dead), lost, doubled, other, missing, out_wrong,
                         caught_up, wrong)
        return 0 if caught_up and not wrong and not out_wrong else 1

    def print_table(self, readers, events_in, keys, dead, lost, doubled, other, missing, out_wrong, caught_up,
                    wrong) -> None:
        if readers.outages:
            began, length = max(readers.outages, key=lambda o: o[1])
            at = began - self.started
            cause = next((f"{k} at {t:.0f} s" for t, k, _ in reversed(self.fault_log) if t <= at + 0.5), "start-up")
            unavailable = f"{length:.1f} s (began {at:.0f} s in; last fault before: {cause})"
        else:
            unavailable = "never over 1 s"
        rows = [
            ("run", f"{self.args.seconds} s of faults, seed {self.args.seed}, exactly_once_v2"),
            ("faults injected", ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items())) or "none"),
            ("restarts by faults", f"ingestor {self.faults['ingestor-kill9'] + self.faults['ingestor-sigterm']}, "
                                   f"gateway {self.faults['gateway-kill9']}"),
            ("exits nobody asked for", ", ".join(f"{k}: {n}" for k, n in self.supervisor.exits.items()) or "none"),
            ("SIGTERM to exit", "max %.1f s (grace %d s)" % (max(self.shutdowns), GRACE_SECONDS)
             if self.shutdowns else "-"),
            ("generators", f"{self.generators} (a new one when one gave up)"),
            ("events in", f"{events_in} (dead letters {dead})"),
            ("keys checked", f"{keys} served + output topics"),
            ("caught up", "yes" if caught_up else "NO (180 s after the faults)"),
            ("lost" if caught_up else "behind (not caught up: lost or late)",
             f"{lost} events (chaser counts); missing keys {missing}"),
            ("double-counted", f"{doubled} events (chaser counts)"),
            ("other differing keys", f"{other}" + (f", e.g. {wrong[:3]}" if wrong else "")),
            ("output topics, last value wrong", f"{out_wrong} keys"),
            ("reads", ", ".join(f"{k}: {n}" for k, n in sorted(readers.answers.items()))),
            ("longest reads unavailable", unavailable),
            ("fresh after broker returned", "max %.1f s, median %.1f s over %d; not fresh in 120 s: %d" % (
                max(self.fresh), statistics.median(self.fresh), len(self.fresh), self.not_fresh)
             if self.fresh else f"- (not fresh in 120 s: {self.not_fresh})"),
        ]
        width = max(len(r[0]) for r in rows)
        print("\n== chaos ==")
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        print("\nfaults (seconds into the run):")
        for t, kind, detail in self.fault_log:
            print(f"  {t:6.1f}  {kind:<17} {detail}")
        if self.args.json:
            Path(self.args.json).write_text(json.dumps({name: value for name, value in rows}, indent=1))

    def close(self) -> None:
        self.supervisor.stop.set()
        if self.generator is not None and self.generator.poll() is None:
            kill9(self.generator)
        with self.supervisor.lock:
            for name in ("gateway", "ingestor"):
                proc = self.pod.procs.get(name)
                if proc is not None:
                    sigcont(proc)
                    if proc.poll() is None:
                        kill9(proc)
        self.broker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600, help="how long faults are injected (default 600)")
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--rate", type=int, default=20, help="generator events/s (default 20: see the docstring)")
    parser.add_argument("--keys", type=int, default=300, help="generator keys")
    parser.add_argument("--kinds", help="only these faults (comma-separated names from the list above)")
    parser.add_argument("--bin-dir", help="directory of the built binaries (default: swift build's)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, state)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="k8s-micro-chaos-"))
    chaos = Chaos(args, workdir)
    try:
        code = chaos.run()
    finally:
        chaos.close()
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs and state kept in {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
