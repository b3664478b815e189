// Deterministic generator of realistic input events: chaser streams and billing lifecycles (pure, no I/O).

import Shared

/// SplitMix64: small, fast, reproducible from a seed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Produces keyed events one at a time. Chasers: `keys` devices, each a stream of pings with a few names.
/// Billing: `keys` concurrent bill lifecycles Bill → PaymentRequest → sometimes PaymentFailed → retry ...;
/// with duplicates and out-of-order pairs, and rarely a conflicting Bill (which marks the aggregate errored).
struct EventGenerator {
    struct Settings {
        var keys = 100
        /// Share of chaser events (0...1).
        var chaserShare = 0.5
        var seed: UInt64 = 1
        var startTime: Int64 = 1_700_000_000_000
    }

    private struct Lifecycle {
        var bill: Bill
        var attempt = 0
        var queue: [InputEvent] = []
        var finished = false
    }

    private let settings: Settings
    private var random: SeededRandom
    private var now: Int64
    private var lastSent: [Int: Int64] = [:]
    private var lifecycles: [Int: Lifecycle] = [:]
    private var nextBill = 0
    private let names = ["alpha", "bravo", "charlie", "delta", "echo"]
    private let reasons = ["insufficient-funds", "card-expired", "network-error", "fraud-suspected"]
    private let currencies = ["EUR", "GBP", "USD"]

    init(_ settings: Settings) {
        self.settings = settings
        random = SeededRandom(seed: settings.seed)
        now = settings.startTime
    }

    /// The next event and its record key.
    mutating func next() -> (key: String, event: InputEvent) {
        now += Int64.random(in: 1...20, using: &random)
        if Double.random(in: 0..<1, using: &random) < settings.chaserShare {
            return nextChaser()
        }
        return nextBilling()
    }

    private mutating func nextChaser() -> (key: String, event: InputEvent) {
        let device = Int.random(in: 0..<max(1, settings.keys), using: &random)
        let id = "device-\(pad(device, 5))"
        let name = names[(device + Int.random(in: 0..<2, using: &random)) % names.count]
        let chaser = Chaser(
            name: name, id: id, sent: now, ttl: Int64.random(in: 100...5_000, using: &random),
            previous: lastSent[device])
        lastSent[device] = now
        return (id, .chaser(chaser))
    }

    private mutating func nextBilling() -> (key: String, event: InputEvent) {
        let slot = Int.random(in: 0..<max(1, settings.keys), using: &random)
        var life = lifecycles[slot] ?? newLifecycle()
        if life.finished { life = newLifecycle() }
        if life.queue.isEmpty { plan(&life) }
        // Out-of-order pair: now and then the second queued event goes first.
        if life.queue.count >= 2, Double.random(in: 0..<1, using: &random) < 0.05 {
            life.queue.swapAt(0, 1)
        }
        let event = life.queue.removeFirst()
        // Duplicate: sometimes the same event again later.
        if Double.random(in: 0..<1, using: &random) < 0.05 { life.queue.append(event) }
        if life.queue.isEmpty, life.attempt > 0, isTerminal(event) { life.finished = true }
        lifecycles[slot] = life
        return (life.bill.billId, event)
    }

    private func isTerminal(_ event: InputEvent) -> Bool {
        if case .paymentRequest = event { return true }
        return false
    }

    private mutating func newLifecycle() -> Lifecycle {
        let n = nextBill
        nextBill += 1
        let customer = "customer-\(pad(Int.random(in: 0..<max(1, settings.keys * 4), using: &random), 6))"
        let bill = Bill(
            billId: "bill-\(pad(n, 7))", customerId: customer, orderId: "order-\(pad(n, 7))",
            amountCents: Int64.random(in: 100...100_000, using: &random),
            currency: currencies[Int.random(in: 0..<currencies.count, using: &random)], issuedAt: now,
            dueDate: now + 30 * 86_400_000)
        var life = Lifecycle(bill: bill)
        life.queue = [.bill(bill)]
        // Rarely a conflicting re-issue of the bill (different amount): the aggregate becomes errored.
        if Double.random(in: 0..<1, using: &random) < 0.01 {
            var other = bill
            other.amountCents += 1
            life.queue.append(.bill(other))
        }
        return life
    }

    /// Next step: a payment request, failing now and then (then a retry follows).
    private mutating func plan(_ life: inout Lifecycle) {
        life.attempt += 1
        let b = life.bill
        let paymentId = "\(b.billId)-pay-\(life.attempt)"
        life.queue.append(
            .paymentRequest(
                PaymentRequest(
                    paymentId: paymentId, billId: b.billId, customerId: b.customerId, amountCents: b.amountCents,
                    currency: b.currency, requestedAt: now)))
        if Double.random(in: 0..<1, using: &random) < 0.3 {
            life.queue.append(
                .paymentFailed(
                    PaymentFailed(
                        paymentId: paymentId, billId: b.billId, customerId: b.customerId,
                        failureReason: reasons[Int.random(in: 0..<reasons.count, using: &random)], failedAt: now + 5)))
        }
    }

    private func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// The final aggregates the generated events must produce, computed with the pure rules.
struct ExpectedAggregates {
    private(set) var chaser: [String: ChaserAggregate] = [:]
    private(set) var billing: [String: BillAggregate] = [:]

    mutating func apply(key: String, _ event: InputEvent) {
        switch event {
        case .chaser(let c): chaser[key] = ChaserRules.apply(chaser[key] ?? ChaserAggregate(), c)
        default: billing[key] = BillingRules.apply(billing[key] ?? BillAggregate(), event)
        }
    }

    /// JSON lines `{"store":..,"key":..,"value":<aggregate JSON>}` sorted by store then key.
    func jsonLines() -> String {
        var out = ""
        for key in chaser.keys.sorted() {
            guard let a = chaser[key] else { continue }
            out += #"{"store":"chaser","key":\#(JSONText.quote(key)),"value":\#(AggregateJSON.render(a))}"# + "\n"
        }
        for key in billing.keys.sorted() {
            guard let a = billing[key] else { continue }
            out += #"{"store":"billing","key":\#(JSONText.quote(key)),"value":\#(AggregateJSON.render(a))}"# + "\n"
        }
        return out
    }
}
