// The record cache folds events into encoded aggregates: the bytes must be the ones the rules and the codec give.
import Testing

@testable import Ingestor

@Suite struct EncodedAggregateFolderTests {
    /// A folder on the hand-written path, and one whose codec has it off (every fold decodes and encodes again).
    static func folders() throws -> [(String, EncodedAggregateFolder, FastEventCodec)] {
        let fast = FastEventCodec(codec: try AvroFixtures.codec(), schemaDir: AvroFixtures.schemaDir)
        let slow = FastEventCodec(codec: try AvroFixtures.codec(), schemaDir: "/nonexistent")
        #expect(fast.isActive && !slow.isActive)
        return [
            ("fast", EncodedAggregateFolder(codec: fast), fast), ("slow", EncodedAggregateFolder(codec: slow), slow),
        ]
    }

    /// Few distinct texts, so names and payment ids repeat; "é" twice, precomposed and combined (equal as Swift
    /// strings, different bytes), the Kelvin sign (equal to an ASCII "K"), and a long one (not a small string).
    static let texts = ["a", "b", "\u{e9}", "e\u{301}", "", "a name longer than fifteen bytes", "K", "\u{212A}"]

    static func text(_ r: inout SeededRandom) -> String { texts[Int.random(in: 0..<texts.count, using: &r)] }
    static func long(_ r: inout SeededRandom) -> Int64 {
        Bool.random(using: &r) ? Int64.random(in: -3...3, using: &r) : Int64.random(in: .min ... .max, using: &r)
    }

    static func billingEvent(_ r: inout SeededRandom) -> InputEvent {
        switch Int.random(in: 0..<3, using: &r) {
        case 0:
            return .bill(
                Bill(
                    billId: text(&r), customerId: "c", orderId: text(&r),
                    amountCents: Int64.random(in: 1...2, using: &r),
                    currency: "EUR", issuedAt: 1, dueDate: 2))
        case 1:
            return .paymentRequest(
                PaymentRequest(
                    paymentId: text(&r), billId: text(&r), customerId: "c", amountCents: long(&r), currency: text(&r),
                    requestedAt: long(&r)))
        default:
            return .paymentFailed(
                PaymentFailed(
                    paymentId: text(&r), billId: "b", customerId: text(&r), failureReason: text(&r), failedAt: long(&r))
            )
        }
    }

    @Test func chaserFoldsGiveTheRulesBytes() throws {
        for (name, folderMade, codec) in try Self.folders() {
            var folder = folderMade
            var r = SeededRandom(seed: 11)
            for _ in 0..<40 {
                var expected = ChaserAggregate()
                var value = folder.emptyChaser
                for _ in 0..<Int.random(in: 1...12, using: &r) {
                    let chaser = Chaser(
                        name: Self.text(&r), id: "k", sent: Self.long(&r), ttl: Self.long(&r), previous: nil)
                    ChaserRules.fold(&expected, chaser)
                    try folder.fold(&value, chaser)
                    #expect(value == codec.encode(expected), "\(name)")
                }
            }
        }
    }

    @Test func billingFoldsGiveTheRulesBytes() throws {
        for (name, folderMade, codec) in try Self.folders() {
            var folder = folderMade
            var r = SeededRandom(seed: 12)
            for _ in 0..<300 {
                var expected = BillAggregate()
                var value = folder.emptyBilling
                for _ in 0..<Int.random(in: 1...12, using: &r) {
                    let event = Self.billingEvent(&r)
                    let firstBill = { if case .bill = event { expected.bill == nil } else { false } }()
                    BillingRules.fold(&expected, event)
                    #expect(try folder.fold(&value, event) == firstBill, "\(name)")
                    #expect(value == codec.encode(expected), "\(name): \(event)")
                }
            }
        }
    }

    @Test func aChaserLeavesABillingAggregateAlone() throws {
        for (_, folderMade, _) in try Self.folders() {
            var folder = folderMade
            var value = folder.emptyBilling
            #expect(try folder.fold(&value, .chaser(Chaser(name: "n", id: "i", sent: 1, ttl: 2))) == false)
            #expect(value == folder.emptyBilling)
        }
    }

    @Test func anUnreadableValueThrowsAndIsLeftAsItWas() throws {
        for (name, folderMade, _) in try Self.folders() {
            var folder = folderMade
            let chaser = Chaser(name: "n", id: "i", sent: 1, ttl: 2)
            // Truncated: the frame of an aggregate, then a names block of 3 with one name.
            var value = Array(folder.emptyChaser.prefix(ConfluentFrame.headerSize)) + [6, 2, 0x61]
            let before = value
            #expect(throws: DecodeFailure.self, "\(name)") { try folder.fold(&value, chaser) }
            #expect(value == before)
            var billing = Array(folder.emptyBilling.prefix(ConfluentFrame.headerSize)) + [2, 200]
            let billingBefore = billing
            #expect(throws: DecodeFailure.self, "\(name)") {
                try folder.fold(
                    &billing,
                    .paymentFailed(
                        PaymentFailed(paymentId: "p", billId: "b", customerId: "c", failureReason: "r", failedAt: 1)))
            }
            #expect(billing == billingBefore)
            // The fold still works on a good value afterwards (no scratch state left behind).
            var good = folder.emptyChaser
            try folder.fold(&good, chaser)
            #expect(good.count > folder.emptyChaser.count)
        }
    }
}
