// Tests of EventJSON.parse (POST /events bodies) and of the JSON parser on malformed input.
import Testing

@testable import Ingestor

@Suite struct JSONEventTests {
    private func parse(_ text: String) throws(EventJSONError) -> InputEvent {
        try EventJSON.parse(Array(text.utf8))
    }

    private func rejection(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func chaserWithAndWithoutPrevious() throws {
        let a = try parse(
            #"{"type":"com.polecatworks.chaser.Chaser","name":"Peacock","id":"id0","sent":123,"ttl":22,"previous":null}"#
        )
        #expect(a == .chaser(Chaser(name: "Peacock", id: "id0", sent: 123, ttl: 22, previous: nil)))
        let b = try parse(#"{"type":"com.polecatworks.chaser.Chaser","name":"P","id":"i","sent":1,"ttl":2}"#)
        #expect(b == .chaser(Chaser(name: "P", id: "i", sent: 1, ttl: 2)))
        let c = try parse(
            #" { "previous" : -9 , "ttl":2,"sent":1,"id":"i","name":"P","type":"com.polecatworks.chaser.Chaser"} "#)
        #expect(c == .chaser(Chaser(name: "P", id: "i", sent: 1, ttl: 2, previous: -9)))
    }

    @Test func billingTypes() throws {
        let bill = TopologyRulesTests.bill
        let request = TopologyRulesTests.request
        let failed = TopologyRulesTests.failed
        for event in [InputEvent.bill(bill), .paymentRequest(request), .paymentFailed(failed)] {
            #expect(try parse(EventJSON.render(event)) == event)
        }
        #expect(
            try parse(
                #"{"type":"com.polecatworks.billing.Bill","billId":"B","customerId":"C","orderId":"O","#
                    + #""amountCents":100,"currency":"EUR","issuedAt":1,"dueDate":2}"#)
                == .bill(
                    Bill(
                        billId: "B", customerId: "C", orderId: "O", amountCents: 100, currency: "EUR", issuedAt: 1,
                        dueDate: 2)))
    }

    @Test func renderRoundTripsChaserWithEscapes() throws {
        let event = InputEvent.chaser(Chaser(name: "a\"b\u{0}c\n", id: "ü", sent: Int64.max, ttl: Int64.min))
        #expect(try parse(EventJSON.render(event)) == event)
    }

    @Test func rejectsAggregatesAndUnknownTypes() {
        #expect(
            rejection(#"{"type":"com.polecatworks.chaser.Aggregate","names":[],"count":1}"#)?
                .contains("aggregate") == true)
        #expect(rejection(#"{"type":"com.polecatworks.billing.BillAggregate"}"#)?.contains("aggregate") == true)
        #expect(rejection(#"{"type":"com.example.Nope"}"#)?.contains("unknown type 'com.example.Nope'") == true)
        #expect(rejection(#"{"name":"x"}"#)?.contains("missing field 'type'") == true)
        #expect(rejection(#"{"type":42}"#)?.contains("'type' must be a string") == true)
    }

    @Test func fieldErrorsNameTheField() {
        let base = #"{"type":"com.polecatworks.chaser.Chaser","name":"P","id":"i","sent":1"#
        #expect(rejection(base + "}")?.contains("missing field 'ttl'") == true)
        #expect(rejection(base + #","ttl":"2"}"#)?.contains("'ttl'") == true)
        #expect(rejection(base + #","ttl":2.5}"#)?.contains("'ttl'") == true)
        #expect(rejection(base + #","ttl":2e3}"#)?.contains("'ttl'") == true)
        #expect(rejection(base + #","ttl":99999999999999999999}"#)?.contains("'ttl'") == true)
        #expect(rejection(base + #","ttl":2,"previous":"x"}"#)?.contains("'previous'") == true)
        #expect(rejection(base + #","ttl":2,"colour":"red"}"#)?.contains("unknown field 'colour'") == true)
        #expect(rejection(base + #","ttl":2,"ttl":3}"#)?.contains("duplicate field 'ttl'") == true)
        #expect(
            rejection(#"{"type":"com.polecatworks.chaser.Chaser","name":7,"id":"i","sent":1,"ttl":2}"#)?
                .contains("'name'") == true)
    }

    @Test func malformedJSONIsRejectedNotCrashing() {
        let bad = [
            "", " ", "{", "}", "[", "[1,]", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "nul", "tru", "01", "-", "1.",
            "1e", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}\"", "{} {}", "[]]",
            String(repeating: "[", count: 10_000), "{\"type\":\"com.polecatworks.chaser.Chaser\"", "[1 2]",
            "\u{FEFF}{}", "{'a':1}", "NaN", "Infinity",
        ]
        for text in bad {
            #expect(rejection(text) != nil, "accepted: \(text.prefix(40))")
        }
        // Invalid UTF-8 inside a string.
        var bytes = Array(#"{"type":""#.utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array(#""}"#.utf8)
        #expect(throws: EventJSONError.self) { try EventJSON.parse(bytes) }
        #expect(rejection("[1,2]")?.contains("JSON object") == true)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 42)
        let alphabet = Array(#"{}[]:,"\ tfnu0123456789.-eE"#.utf8) + [0x00, 0xFF, 0x80]
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 40)
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = try? EventJSON.parse(bytes)
        }
    }
}

/// Deterministic PRNG for fuzz-style tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
