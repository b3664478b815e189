"""An independent reference model of the ingestor's topology, written from the product's rules, for tests.

It shares nothing with the product but the `.avsc` files: the Avro encoding is fastavro's, the aggregation
is the few lines below, and nothing here runs or imports a k8s-micro binary. Tests use it as the expected
side of every state comparison, so a wrong rule or a symmetric codec bug in the product shows up as a
difference instead of agreeing with itself.

The rules (one store per aggregate type, keyed by the input record's key):

  chaser   <- Chaser:  names = distinct names in first-seen order; count = number of Chasers;
                       latest = max sent; longest = max ttl (both null until the first Chaser).
  billing  <- Bill:    bill = b; errored ||= (old bill is not null and old bill != b), field by field.
           <- PaymentRequest p: append p unless a request with the same paymentId is there;
                       lastPaymentFailed = null in every case.
           <- PaymentFailed f: if lastPaymentFailed is not null then errored = true (keep the old one)
                       else lastPaymentFailed = f.
           errored never resets; out-of-order input needs no special case.

Values are Confluent-framed: byte 0 = 0x00, bytes 1-4 = the schema id (big-endian int32), then the Avro
binary body. Embedded ids: Chaser 1, Aggregate 2, Bill 3, PaymentRequest 4, PaymentFailed 5, BillAggregate 6.

Events and aggregates are plain dicts in the gateway's JSON shape: `{"type": "<full name>", ...fields}` at
the top level, nested records without `type`, nulls and defaults written out.

API (everything a test needs):
  encode(event) -> bytes                      a framed value, as a producer would write it
  decode(value) -> event dict                 raises DecodeError(reason) for what belongs in the dead letters
  fold([(key, event), ...]) -> state          {"chaser": {key: aggregate}, "billing": {key: aggregate}}
  fold_framed([(key_bytes, value_bytes)])     the same from raw records; returns (state, [(key, reason)])
  read_topic(bootstrap, topic)                every record of a topic (partition, offset, key, value[, headers]),
                                              partition by partition, in offset order
  expected_state(bootstrap, topic="input")    fold_framed over read_topic: what the stores must hold
  expected_aggregates(bootstrap)              flat(expected_state(...)), raising if any record is bad
  decode_output(value) -> aggregate dict      an output-topic (or changelog) value
  flat(state) -> {(store, key): aggregate}    the shape the integration tests compare with
  partition_for(key, partitions)              Kafka's default partitioner (murmur2, positive, modulo)
"""

from __future__ import annotations

import copy
import io
import json
import struct
from pathlib import Path
from typing import Iterable

import fastavro

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

CHASER = "com.polecatworks.chaser.Chaser"
AGGREGATE = "com.polecatworks.chaser.Aggregate"
BILL = "com.polecatworks.billing.Bill"
PAYMENT_REQUEST = "com.polecatworks.billing.PaymentRequest"
PAYMENT_FAILED = "com.polecatworks.billing.PaymentFailed"
BILL_AGGREGATE = "com.polecatworks.billing.BillAggregate"

EMBEDDED_IDS = {CHASER: 1, AGGREGATE: 2, BILL: 3, PAYMENT_REQUEST: 4, PAYMENT_FAILED: 5, BILL_AGGREGATE: 6}
MAX_KEY_BYTES = 511  # the stores' largest key (LMDB's); longer (and empty) keys are dead-lettered
INPUT_TYPES = {CHASER: "chaser", BILL: "billing", PAYMENT_REQUEST: "billing", PAYMENT_FAILED: "billing"}
OUTPUT_TYPES = {"chaser": AGGREGATE, "billing": BILL_AGGREGATE}


class DecodeError(ValueError):
    """A record the ingestor must dead-letter; `reason` is a short code (bad-magic, unknown-schema-id...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def load_schemas(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict]:
    """Every `.avsc` in the directory, parsed by fastavro, by full name."""
    out = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        raw = json.loads(path.read_text())
        full = f"{raw['namespace']}.{raw['name']}"
        # Each file is self-contained (nested records are inlined), so each parses on its own.
        out[full] = fastavro.parse_schema(raw, named_schemas={})
    return out


class Codec:
    """Framed Avro by schema id. `writer_schemas` adds ids a registry handed out for other writer schemas
    (resolved against our reader schema of the same full name, as Avro schema resolution does)."""

    def __init__(self, ids: dict[str, int] | None = None, schema_dir: Path = SCHEMA_DIR,
                 writer_schemas: dict[int, dict] | None = None):
        self.schemas = load_schemas(schema_dir)
        self.ids = dict(ids or EMBEDDED_IDS)
        self.by_id: dict[int, tuple[str, dict]] = {i: (name, self.schemas[name]) for name, i in self.ids.items()}
        for i, raw in (writer_schemas or {}).items():
            schema = fastavro.parse_schema(raw, named_schemas={})
            self.by_id[i] = (schema["name"], schema)

    def encode(self, event: dict, schema_id: int | None = None) -> bytes:
        name = event["type"]
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self.schemas[name], {k: v for k, v in event.items() if k != "type"})
        return b"\x00" + struct.pack(">i", self.ids[name] if schema_id is None else schema_id) + body.getvalue()

    def decode(self, value: bytes | None) -> dict:
        if value is None or len(value) < 5:
            raise DecodeError("too-short", f"{0 if value is None else len(value)} bytes")
        if value[0] != 0:
            raise DecodeError("bad-magic", f"byte 0 is {value[0]}")
        (schema_id,) = struct.unpack(">i", value[1:5])
        if schema_id not in self.by_id:
            raise DecodeError("unknown-schema-id", str(schema_id))
        name, writer = self.by_id[schema_id]
        reader = self.schemas.get(name, writer)
        body = io.BytesIO(value[5:])
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except Exception as exc:  # noqa: BLE001 - any failure of the body is "corrupt"
            raise DecodeError("corrupt-avro", repr(exc)) from exc
        if body.tell() != len(value) - 5:
            raise DecodeError("corrupt-avro", f"{len(value) - 5 - body.tell()} trailing bytes")
        return {"type": name, **record}


DEFAULT_CODEC: Codec | None = None


def codec() -> Codec:
    global DEFAULT_CODEC
    if DEFAULT_CODEC is None:
        DEFAULT_CODEC = Codec()
    return DEFAULT_CODEC


def encode(event: dict) -> bytes:
    return codec().encode(event)


def decode(value: bytes | None) -> dict:
    return codec().decode(value)


def decode_output(value: bytes) -> dict:
    """An output-topic or changelog value (framed Aggregate / BillAggregate) as the gateway's JSON."""
    out = decode(value)
    if out["type"] not in OUTPUT_TYPES.values():
        raise DecodeError("wrong-type", out["type"])
    return out


# --- the rules -------------------------------------------------------------------------------------------


def new_aggregate(store: str) -> dict:
    if store == "chaser":
        return {"type": AGGREGATE, "names": [], "count": 0, "latest": None, "longest": None}
    return {"type": BILL_AGGREGATE, "bill": None, "paymentRequests": [], "lastPaymentFailed": None, "errored": False}


def _fields(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "type"}


def _max(old: int | None, new: int) -> int:
    return new if old is None else max(old, new)


def apply(aggregate: dict | None, event: dict) -> dict:
    """One event folded onto one key's aggregate (a new dict; the argument is not changed)."""
    store = INPUT_TYPES.get(event["type"])
    if store is None:
        raise DecodeError("wrong-type", event["type"])
    agg = copy.deepcopy(aggregate) if aggregate is not None else new_aggregate(store)
    kind = event["type"]
    if kind == CHASER:
        if event["name"] not in agg["names"]:
            agg["names"].append(event["name"])
        agg["count"] += 1
        agg["latest"] = _max(agg["latest"], event["sent"])
        agg["longest"] = _max(agg["longest"], event["ttl"])
    elif kind == BILL:
        bill = _fields(event)
        if agg["bill"] is not None and agg["bill"] != bill:
            agg["errored"] = True
        agg["bill"] = bill
    elif kind == PAYMENT_REQUEST:
        request = _fields(event)
        if all(r["paymentId"] != request["paymentId"] for r in agg["paymentRequests"]):
            agg["paymentRequests"].append(request)
        agg["lastPaymentFailed"] = None
    else:  # PAYMENT_FAILED
        if agg["lastPaymentFailed"] is not None:
            agg["errored"] = True
        else:
            agg["lastPaymentFailed"] = _fields(event)
    return agg


def fold(records: Iterable[tuple[str, dict]]) -> dict[str, dict[str, dict]]:
    """(key, event) pairs in input order (only the order within a key matters) → every store's state."""
    state: dict[str, dict[str, dict]] = {"chaser": {}, "billing": {}}
    for key, event in records:
        store = INPUT_TYPES.get(event["type"])
        if store is None:
            raise DecodeError("wrong-type", event["type"])
        state[store][key] = apply(state[store].get(key), event)
    return state


def classify(key: bytes | None, value: bytes | None) -> tuple[str, dict]:
    """A raw input record → (key, event); raises DecodeError with the dead-letter reason."""
    if key is None:
        raise DecodeError("null-key")
    if not key:
        raise DecodeError("empty-key")
    if len(key) > MAX_KEY_BYTES:
        raise DecodeError("key-too-long", f"{len(key)} bytes")
    event = decode(value)
    if event["type"] not in INPUT_TYPES:
        raise DecodeError("wrong-type", event["type"])
    return key.decode(), event


def fold_framed(records: Iterable[tuple[bytes | None, bytes | None]]):
    """Raw (key, value) records in input order → (state, dead letters as [(key, reason)])."""
    good: list[tuple[str, dict]] = []
    dead: list[tuple[bytes | None, str]] = []
    for key, value in records:
        try:
            good.append(classify(key, value))
        except DecodeError as e:
            dead.append((key, e.reason))
    return fold(good), dead


def flat(state: dict[str, dict[str, dict]]) -> dict[tuple[str, str], dict]:
    return {(store, key): agg for store, by_key in state.items() for key, agg in by_key.items()}


# --- partitioning ----------------------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as the Java client's `Utils.murmur2`, as a signed int32."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str | bytes, partitions: int) -> int:
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions


# --- reading a real topic --------------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str, timeout: float = 60, headers: bool = False) -> list[tuple]:
    """Every record of `topic` up to its current end: (partition, offset, key, value), plus the headers as a
    dict when `headers`, in offset order per partition. Reads with `read_committed`; a broker that leaks
    aborted records to such readers leaks them here too (tansu 0.6 does), so read output topics through this
    only when no transaction was aborted."""
    import time

    import confluent_kafka  # the tests' venv has it; imported late so the rules work without it

    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "reference-model", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True,
    })
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {topic}: {meta.error}")
        # The end of each partition is where the fetch reports partition EOF: ListOffsets(latest) cannot be
        # trusted (tansu answers the last batch's base offset + 1 when that batch holds several records).
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                         for p in meta.partitions])
        out: list[tuple] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(meta.partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(out)} records of {topic}; partitions "
                                   f"{sorted(set(meta.partitions) - done)} did not reach their end")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    done.add(msg.partition())
                    continue
                raise RuntimeError(f"reading {topic}: {msg.error()}")
            record = (msg.partition(), msg.offset(), msg.key(), msg.value())
            out.append(record + (dict(msg.headers() or []),) if headers else record)
        out.sort(key=lambda r: (r[0], r[1]))
        return out
    finally:
        consumer.close()


def expected_state(bootstrap: str, topic: str = "input", timeout: float = 60):
    """What the stores must hold once the ingestor has consumed `topic` to its current end:
    (state, dead letters), from the records themselves."""
    return fold_framed((key, value) for _, _, key, value in read_topic(bootstrap, topic, timeout))


def latest_outputs(bootstrap: str, topic: str, timeout: float = 60) -> dict[str, dict]:
    """The last value per key on an output topic, decoded (the compacted view)."""
    out = {}
    for _, _, key, value in read_topic(bootstrap, topic, timeout):
        if key is not None and value is not None:
            out[key.decode()] = decode_output(value)
    return out


def expected_aggregates(bootstrap: str, topic: str = "input", timeout: float = 60) -> dict[tuple[str, str], dict]:
    """`flat(expected_state(...))` for an input topic that must hold only good records (a generator's):
    raises if any record of it would be dead-lettered."""
    state, dead = expected_state(bootstrap, topic, timeout)
    if dead:
        raise ValueError(f"{len(dead)} records of {topic} would be dead-lettered, e.g. {dead[:3]}")
    return flat(state)
