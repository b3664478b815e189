"""Hand-checked cases for the reference model (reference_model.py): every rule edge, the wire bytes worked
out by hand, and Kafka's murmur2 vectors. No broker, no product binary: runs in well under a second."""

from __future__ import annotations

import io
import struct

import fastavro
import pytest

import reference_model as rm
from reference_model import AGGREGATE, BILL, BILL_AGGREGATE, CHASER, PAYMENT_FAILED, PAYMENT_REQUEST


def chaser(name: str, sent: int, ttl: int, previous=None, id: str = "dev-1") -> dict:
    return {"type": CHASER, "name": name, "id": id, "sent": sent, "ttl": ttl, "previous": previous}


def bill(amount: int = 1250, bill_id: str = "b-1") -> dict:
    return {"type": BILL, "billId": bill_id, "customerId": "c-1", "orderId": "o-1", "amountCents": amount,
            "currency": "EUR", "issuedAt": 1000, "dueDate": 90000}


def request(payment_id: str, at: int = 2000) -> dict:
    return {"type": PAYMENT_REQUEST, "paymentId": payment_id, "billId": "b-1", "customerId": "c-1",
            "amountCents": 1250, "currency": "EUR", "requestedAt": at}


def failed(payment_id: str, at: int = 2500, reason: str = "insufficient-funds") -> dict:
    return {"type": PAYMENT_FAILED, "paymentId": payment_id, "billId": "b-1", "customerId": "c-1",
            "failureReason": reason, "failedAt": at}


def nested(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "type"}


def billing(events: list[dict], key: str = "b-1") -> dict:
    return rm.fold((key, e) for e in events)["billing"][key]


def chasers(events: list[dict], key: str = "dev-1") -> dict:
    return rm.fold((key, e) for e in events)["chaser"][key]


# --- chaser ----------------------------------------------------------------------------------------------


def test_chaser_example():
    assert chasers([chaser("A", 1000, 300), chaser("B", 2000, 500)]) == {
        "type": AGGREGATE, "names": ["A", "B"], "count": 2, "latest": 2000, "longest": 500}


def test_chaser_latest_and_longest_start_null_and_take_the_first_values():
    assert rm.new_aggregate("chaser") == {"type": AGGREGATE, "names": [], "count": 0, "latest": None,
                                           "longest": None}
    # A zero or negative first value still replaces null (null is "none seen", not 0).
    assert chasers([chaser("A", -5, 0)]) == {"type": AGGREGATE, "names": ["A"], "count": 1, "latest": -5,
                                              "longest": 0}


def test_chaser_out_of_order_keeps_the_maximum_not_the_last():
    got = chasers([chaser("A", 3000, 100), chaser("B", 1000, 900), chaser("C", 2000, 50)])
    assert (got["latest"], got["longest"]) == (3000, 900)


def test_chaser_duplicates_count_but_names_stay_distinct_in_first_seen_order():
    got = chasers([chaser("B", 1, 1), chaser("A", 2, 2), chaser("B", 3, 3), chaser("B", 3, 3)])
    assert got["names"] == ["B", "A"] and got["count"] == 4


def test_chaser_previous_and_id_do_not_matter():
    assert chasers([chaser("A", 1, 1, previous=None)]) == chasers([chaser("A", 1, 1, previous=7, id="x")])


def test_keys_are_independent():
    state = rm.fold([("k1", chaser("A", 1, 1)), ("k2", chaser("B", 5, 5)), ("k1", chaser("C", 2, 2))])
    assert state["chaser"]["k1"]["names"] == ["A", "C"] and state["chaser"]["k2"]["names"] == ["B"]
    assert state["billing"] == {}


# --- billing ---------------------------------------------------------------------------------------------


def test_billing_initial_aggregate():
    assert rm.new_aggregate("billing") == {"type": BILL_AGGREGATE, "bill": None, "paymentRequests": [],
                                           "lastPaymentFailed": None, "errored": False}


def test_bill_request_failure_retry_and_identical_bill():
    p1, p2 = request("p-1"), request("p-2", 3000)
    assert billing([bill(), p1, failed("p-1"), p2, bill()]) == {
        "type": BILL_AGGREGATE, "bill": nested(bill()), "paymentRequests": [nested(p1), nested(p2)],
        "lastPaymentFailed": None, "errored": False}


def test_identical_duplicate_bill_changes_nothing():
    assert billing([bill(), bill()]) == billing([bill()])


def test_changed_bill_replaces_and_errors():
    got = billing([bill(1250), bill(999)])
    assert got["bill"]["amountCents"] == 999 and got["errored"] is True


def test_errored_never_resets():
    # Back to the first bill, then a clean request: still errored.
    got = billing([bill(1250), bill(999), bill(1250), request("p-1")])
    assert got["errored"] is True and got["bill"]["amountCents"] == 1250


def test_duplicate_payment_request_is_not_appended_but_still_clears_the_failure():
    first = request("p-1", 2000)
    got = billing([bill(), first, failed("p-1"), request("p-1", 9999)])
    assert got["paymentRequests"] == [nested(first)]  # the first one stays, not the later copy
    assert got["lastPaymentFailed"] is None and got["errored"] is False


def test_failed_then_retried_then_failed_again_is_not_an_error():
    got = billing([bill(), request("p-1"), failed("p-1"), request("p-2"), failed("p-2", 4000)])
    assert got["lastPaymentFailed"] == nested(failed("p-2", 4000)) and got["errored"] is False
    assert [r["paymentId"] for r in got["paymentRequests"]] == ["p-1", "p-2"]


def test_two_failures_without_a_request_between_error_and_keep_the_first():
    f1, f2 = failed("p-1", 2500), failed("p-1", 2600, "card-expired")
    got = billing([bill(), request("p-1"), f1, f2])
    assert got["errored"] is True and got["lastPaymentFailed"] == nested(f1)


def test_out_of_order_needs_no_special_case():
    # Payment events before their bill: folded as they come; the Bill lands on a null bill (no error).
    got = billing([failed("p-1"), request("p-1"), bill()])
    assert got == {"type": BILL_AGGREGATE, "bill": nested(bill()), "paymentRequests": [nested(request("p-1"))],
                   "lastPaymentFailed": None, "errored": False}
    # A failure arriving before the request it answers stays until the request clears it.
    got = billing([bill(), failed("p-1"), request("p-1")])
    assert got["lastPaymentFailed"] is None and got["errored"] is False


def test_apply_does_not_change_its_argument():
    before = rm.new_aggregate("billing")
    rm.apply(before, bill())
    assert before == rm.new_aggregate("billing")


def test_an_output_type_is_not_an_input_event():
    with pytest.raises(rm.DecodeError) as e:
        rm.fold([("k", {"type": AGGREGATE, "names": [], "count": 0, "latest": None, "longest": None})])
    assert e.value.reason == "wrong-type"


# --- wire format -----------------------------------------------------------------------------------------


def test_chaser_bytes_by_hand():
    # 0x00, id 1, then: "A" (len 1 → zigzag 2), "dev-1" (len 5 → 10), sent 1000 → zigzag 2000 → d0 0f,
    # ttl 300 → 600 → d8 04, previous = union branch 0 (null).
    want = bytes.fromhex("00 00000001 02 41 0a") + b"dev-1" + bytes.fromhex("d00f d804 00")
    assert rm.encode(chaser("A", 1000, 300)) == want
    assert rm.decode(want) == chaser("A", 1000, 300)
    # previous = 7: union branch 1 (zigzag 2), then 7 → 14.
    assert rm.encode(chaser("A", 1000, 300, previous=7))[-4:] == bytes.fromhex("d804 020e")


def test_bill_field_order_by_hand():
    b = {"type": BILL, "billId": "b", "customerId": "c", "orderId": "o", "amountCents": 1, "currency": "E",
         "issuedAt": 2, "dueDate": 3}
    want = bytes.fromhex("00 00000003") + b"\x02b\x02c\x02o\x02\x02E\x04\x06"
    assert rm.encode(b) == want and rm.decode(want) == b


def test_aggregates_round_trip_in_the_gateway_shape():
    agg = billing([bill(), request("p-1"), failed("p-1")])
    value = rm.encode(agg)
    assert value[:5] == bytes.fromhex("00 00000006")
    assert rm.decode_output(value) == agg
    ch = chasers([chaser("A", 1000, 300)])
    assert rm.decode_output(rm.encode(ch)) == ch


def test_bill_aggregate_bytes_by_hand():
    # bill: union branch 1 then the Bill; paymentRequests: empty array (block count 0);
    # lastPaymentFailed: branch 0 (null); errored: true (1).
    agg = {"type": BILL_AGGREGATE, "bill": nested({"type": BILL, "billId": "b", "customerId": "c",
           "orderId": "o", "amountCents": 1, "currency": "E", "issuedAt": 2, "dueDate": 3}),
           "paymentRequests": [], "lastPaymentFailed": None, "errored": True}
    want = bytes.fromhex("00 00000006 02") + b"\x02b\x02c\x02o\x02\x02E\x04\x06" + b"\x00\x00\x01"
    assert rm.encode(agg) == want and rm.decode_output(want) == agg


@pytest.mark.parametrize("value, reason", [
    (b"\x01hello", "bad-magic"),
    (b"\x00\x00", "too-short"),
    (b"\x00\x00\x00\x03\xe7xyz", "unknown-schema-id"),
    (b"\x00\x00\x00\x00\x01\xff\xff\xff\xff\x0f", "corrupt-avro"),
])
def test_dead_letter_reasons(value, reason):
    state, dead = rm.fold_framed([(b"k", value), (b"ok", rm.encode(chaser("A", 1, 1)))])
    assert dead == [(b"k", reason)] and list(state["chaser"]) == ["ok"]


def test_null_key_and_wrong_type_are_dead_letters():
    agg = rm.encode(chasers([chaser("A", 1, 1)]))
    _, dead = rm.fold_framed([(None, rm.encode(chaser("A", 1, 1))), (b"k", agg)])
    assert dead == [(None, "null-key"), (b"k", "wrong-type")]
    _, dead = rm.fold_framed([(b"k" * 512, rm.encode(chaser("A", 1, 1))), (b"k" * 511, rm.encode(chaser("A", 1, 1)))])
    assert dead == [(b"k" * 512, "key-too-long")]
    _, dead = rm.fold_framed([(b"", rm.encode(chaser("A", 1, 1)))])
    assert dead == [(b"", "empty-key")]


def test_registry_writer_schema_resolves_against_the_reader():
    # A producer's evolved Chaser with an extra field (and a default-less reorder is not allowed, so append).
    evolved = {"type": "record", "name": "Chaser", "namespace": "com.polecatworks.chaser", "fields": [
        {"name": "name", "type": "string"}, {"name": "id", "type": "string"}, {"name": "sent", "type": "long"},
        {"name": "ttl", "type": "long"}, {"name": "previous", "type": ["null", "long"], "default": None},
        {"name": "firmware", "type": "string", "default": ""}]}
    c = rm.Codec(writer_schemas={42: evolved})
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(evolved, named_schemas={}),
                               {**nested(chaser("A", 1, 2)), "firmware": "v9"})
    assert c.decode(b"\x00" + struct.pack(">i", 42) + body.getvalue()) == chaser("A", 1, 2)


# --- partitioning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, want", [
    # Kafka's own test vectors (clients UtilsTest.testMurmur2).
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_vectors(data, want):
    assert rm.murmur2(data) == want


def test_partition_for_is_positive_modulo():
    assert rm.partition_for("foobar", 4) == (-790332482 & 0x7FFFFFFF) % 4
    assert {rm.partition_for(f"k{i}", 4) for i in range(100)} == {0, 1, 2, 3}


# --- reading a real topic --------------------------------------------------------------------------------


def test_read_topic_returns_every_record_in_order(tansu):
    """Batches of many records (where the broker's ListOffsets answer is wrong) and an empty partition."""
    import confluent_kafka

    tansu.create_topic("t", 3)
    producer = confluent_kafka.Producer({"bootstrap.servers": tansu.bootstrap, "linger.ms": 50})
    sent = [(f"k{i % 17}".encode(), rm.encode(chaser("A", i, i, id=f"k{i % 17}"))) for i in range(600)]
    for i, (key, value) in enumerate(sent):
        producer.produce("t", key=key, value=value, partition=i % 2, headers={"n": str(i)})
    assert producer.flush(30) == 0
    records = rm.read_topic(tansu.bootstrap, "t", timeout=30, headers=True)
    assert [(r[0], r[1]) for r in records] == sorted((p, o) for p in (0, 1) for o in range(300))
    assert sorted(int(r[4]["n"]) for r in records) == list(range(600))
    assert {(r[2], r[3]) for r in records} == set(sent)
    state, dead = rm.expected_state(tansu.bootstrap, "t", timeout=30)
    assert not dead and sum(a["count"] for a in state["chaser"].values()) == 600
