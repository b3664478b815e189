// Tests of the hand-written Avro path: the same bytes and values as avro-c, the same failure reasons.
import Testing

@testable import Ingestor

@Suite struct AvroFastPathTests {
    static func codecs() throws -> (FastEventCodec, EventCodec) {
        let plain = try AvroFixtures.codec()
        return (FastEventCodec(codec: try AvroFixtures.codec(), schemaDir: AvroFixtures.schemaDir), plain)
    }

    static func text(_ random: inout SeededRandom) -> String {
        let alphabet = Array("abcXYZ-09 \u{e9}\u{1F600}")
        return String(
            (0..<Int.random(in: 0...20, using: &random)).map { _ in alphabet.randomElement(using: &random) ?? "a" })
    }

    static func long(_ random: inout SeededRandom) -> Int64 {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return Int64.random(in: -64...64, using: &random)
        case 1: return [Int64.min, Int64.max, 0, -1][Int.random(in: 0..<4, using: &random)]
        default: return Int64.random(in: .min ... .max, using: &random)
        }
    }

    @Test func aggregatesAppendedToOneBufferAreTheirOwnEncodingsBackToBack() throws {
        let (fast, plain) = try Self.codecs()
        let chaser = ChaserAggregate(
            names: ["a", "a name longer than fifteen bytes"], count: 2, latest: 7, longest: nil)
        var bill = BillAggregate()
        bill.errored = true
        var buffer: [UInt8] = [9, 9]
        fast.encode(chaser, appendingTo: &buffer)
        fast.encode(bill, appendingTo: &buffer)
        #expect(buffer == [9, 9] + plain.encode(chaser) + plain.encode(bill))
    }

    @Test func activeWithTheRepoSchemas() throws {
        #expect(try Self.codecs().0.isActive)
    }

    @Test func sameBytesAndValuesAsAvroC() throws {
        let (fast, plain) = try Self.codecs()
        var r = SeededRandom(seed: 7)
        for _ in 0..<300 {
            let bill = Bill(
                billId: Self.text(&r), customerId: Self.text(&r), orderId: Self.text(&r), amountCents: Self.long(&r),
                currency: Self.text(&r), issuedAt: Self.long(&r), dueDate: Self.long(&r))
            let request = PaymentRequest(
                paymentId: Self.text(&r), billId: Self.text(&r), customerId: Self.text(&r),
                amountCents: Self.long(&r), currency: Self.text(&r), requestedAt: Self.long(&r))
            let failed = PaymentFailed(
                paymentId: Self.text(&r), billId: Self.text(&r), customerId: Self.text(&r),
                failureReason: Self.text(&r), failedAt: Self.long(&r))
            let chaser = Chaser(
                name: Self.text(&r), id: Self.text(&r), sent: Self.long(&r), ttl: Self.long(&r),
                previous: Bool.random(using: &r) ? nil : Self.long(&r))
            for event in [InputEvent.chaser(chaser), .bill(bill), .paymentRequest(request), .paymentFailed(failed)] {
                let bytes = fast.encode(event)
                #expect(bytes == plain.encode(event))
                #expect(try bytes.withUnsafeBytes { try fast.decodeInput($0) } == event)
            }
            let aggregate = ChaserAggregate(
                names: (0..<Int.random(in: 0...3, using: &r)).map { _ in Self.text(&r) }, count: Self.long(&r),
                latest: Bool.random(using: &r) ? nil : Self.long(&r),
                longest: Bool.random(using: &r) ? nil : Self.long(&r))
            let aggregateBytes = fast.encode(aggregate)
            #expect(aggregateBytes == plain.encode(aggregate))
            #expect(try aggregateBytes.withUnsafeBytes { try fast.decodeChaserAggregate($0) } == aggregate)
            let billAggregate = BillAggregate(
                bill: Bool.random(using: &r) ? nil : bill,
                paymentRequests: Array(repeating: request, count: Int.random(in: 0...3, using: &r)),
                lastPaymentFailed: Bool.random(using: &r) ? nil : failed, errored: Bool.random(using: &r))
            let billBytes = fast.encode(billAggregate)
            #expect(billBytes == plain.encode(billAggregate))
            #expect(try billBytes.withUnsafeBytes { try fast.decodeBillAggregate($0) } == billAggregate)
        }
    }

    @Test func failuresHaveAvroCsReasons() throws {
        let (fast, plain) = try Self.codecs()
        let good = plain.encode(.chaser(Chaser(name: "n", id: "i", sent: 1, ttl: 2, previous: 3)))
        let aggregate = plain.encode(ChaserAggregate(names: ["a"], count: 1, latest: nil, longest: nil))
        let cases: [[UInt8]] = [
            [], [1], [0, 0, 0], AvroFixtures.frame(1, []), Array(good.dropLast()), Array(good.dropLast(3)),
            AvroFixtures.frame(1, [0x0e, 0x41]), AvroFixtures.frame(1, [0x02, 0x41, 0x02, 0x41, 0x02, 0x04, 0x04]),
            AvroFixtures.frame(1, [0x01]), AvroFixtures.frame(1, Array(repeating: 0xff, count: 12)),
            AvroFixtures.frame(99, [0]), aggregate,
            // Absurd string lengths (fuzz regressions, Tests/Fuzz/AvroRecordFuzz/regressions): avro-c's
            // allocation of the declared length fails; both sides reject the record as corrupt.
            AvroFixtures.frame(1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x41]),
            AvroFixtures.frame(
                3,
                [0x04, 0x62, 0x31, 0x04, 0x63, 0x31, 0x04, 0x6f, 0xcf, 0x17, 0xf8, 0xf9, 0xba, 0xaa, 0xad, 0xf8, 0x7a]),
        ]
        func reason(_ codec: (UnsafeRawBufferPointer) throws(DecodeFailure) -> InputEvent, _ bytes: [UInt8]) -> String?
        {
            bytes.withUnsafeBytes { raw -> String? in
                do {
                    _ = try codec(raw)
                    return nil
                } catch let failure as DecodeFailure {
                    return failure.reason
                } catch {
                    return "\(error)"
                }
            }
        }
        for bytes in cases {
            let fastReason = reason({ (raw) throws(DecodeFailure) in try fast.decodeInput(raw) }, bytes)
            let plainReason = reason({ (raw) throws(DecodeFailure) in try plain.decodeInput(raw) }, bytes)
            #expect(fastReason == plainReason, "\(AvroFixtures.hex(bytes))")
            #expect(fastReason != nil)
        }
        // Trailing bytes are ignored by both.
        #expect(try (good + [1, 2]).withUnsafeBytes { try fast.decodeInput($0) } == (try plain.decodeInput(good)))
    }

    @Test func negativeBlockCountsAreRead() throws {
        let (fast, _) = try Self.codecs()
        // names: one block of -2 items with its byte size (4), "a", "b", then the end; count 1; nulls.
        let bytes = AvroFixtures.frame(2, [0x03, 0x08, 0x02, 0x61, 0x02, 0x62, 0x00, 0x02, 0x00, 0x00])
        let decoded = try bytes.withUnsafeBytes { try fast.decodeChaserAggregate($0) }
        #expect(decoded == ChaserAggregate(names: ["a", "b"], count: 1, latest: nil, longest: nil))
    }
}
