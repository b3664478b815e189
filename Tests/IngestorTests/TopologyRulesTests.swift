// Unit tests of the pure aggregation rules: ChaserRules and BillingRules.
import Testing

@testable import Ingestor

@Suite struct TopologyRulesTests {
    @Test func chaserExampleFromSpec() {
        var a = ChaserAggregate()
        a = ChaserRules.apply(a, Chaser(name: "A", id: "1", sent: 1000, ttl: 300))
        a = ChaserRules.apply(a, Chaser(name: "B", id: "2", sent: 2000, ttl: 500))
        #expect(a == ChaserAggregate(names: ["A", "B"], count: 2, latest: 2000, longest: 500))
    }

    @Test func chaserRepeatedNameNotDuplicatedAndMaxima() {
        var a = ChaserAggregate()
        a = ChaserRules.apply(a, Chaser(name: "A", id: "1", sent: 5000, ttl: 100))
        a = ChaserRules.apply(a, Chaser(name: "B", id: "2", sent: 1000, ttl: 900, previous: 5000))
        a = ChaserRules.apply(a, Chaser(name: "A", id: "3", sent: 3000, ttl: 50))
        #expect(a.names == ["A", "B"])
        #expect(a.count == 3)
        #expect(a.latest == 5000)
        #expect(a.longest == 900)
    }

    @Test func chaserNegativeValuesStillTakeMax() {
        let a = ChaserRules.apply(ChaserAggregate(), Chaser(name: "x", id: "i", sent: -5, ttl: -7))
        #expect(a.latest == -5)
        #expect(a.longest == -7)
    }

    static let bill = Bill(
        billId: "BILL-1", customerId: "C-1", orderId: "O-1", amountCents: 1250, currency: "EUR", issuedAt: 1000,
        dueDate: 9000)
    static let request = PaymentRequest(
        paymentId: "PAY-1", billId: "BILL-1", customerId: "C-1", amountCents: 1250, currency: "EUR",
        requestedAt: 2000)
    static let failed = PaymentFailed(
        paymentId: "PAY-1", billId: "BILL-1", customerId: "C-1", failureReason: "card declined", failedAt: 3000)

    @Test func billingSequence() {
        var a = BillAggregate()
        a = BillingRules.apply(a, .bill(Self.bill))
        #expect(a.bill == Self.bill)
        #expect(a.errored == false)

        a = BillingRules.apply(a, .paymentRequest(Self.request))
        #expect(a.paymentRequests == [Self.request])
        #expect(a.lastPaymentFailed == nil)

        a = BillingRules.apply(a, .paymentFailed(Self.failed))
        #expect(a.lastPaymentFailed == Self.failed)
        #expect(a.errored == false)

        var retry = Self.request
        retry.requestedAt = 4000
        a = BillingRules.apply(a, .paymentRequest(retry))
        #expect(a.paymentRequests == [Self.request], "same paymentId is not appended twice")
        #expect(a.lastPaymentFailed == nil, "a request clears the last failure")
        #expect(a.errored == false)

        var changed = Self.bill
        changed.amountCents = 9999
        a = BillingRules.apply(a, .bill(changed))
        #expect(a.bill == changed)
        #expect(a.errored == true)

        // errored never resets
        a = BillingRules.apply(a, .bill(changed))
        a = BillingRules.apply(a, .paymentRequest(Self.request))
        #expect(a.errored == true)
    }

    @Test func identicalDuplicateBillChangesNothing() {
        let once = BillingRules.apply(BillAggregate(), .bill(Self.bill))
        let twice = BillingRules.apply(once, .bill(Self.bill))
        #expect(once == twice)
        #expect(twice.errored == false)
    }

    @Test func paymentFailedTwiceWithoutRequestErrorsAndKeepsFirst() {
        var second = Self.failed
        second.failureReason = "insufficient funds"
        second.failedAt = 5000
        var a = BillingRules.apply(BillAggregate(), .paymentFailed(Self.failed))
        a = BillingRules.apply(a, .paymentFailed(second))
        #expect(a.errored == true)
        #expect(a.lastPaymentFailed == Self.failed)
    }

    @Test func outOfOrderRequestBeforeBill() {
        var a = BillingRules.apply(BillAggregate(), .paymentRequest(Self.request))
        a = BillingRules.apply(a, .bill(Self.bill))
        #expect(a.bill == Self.bill)
        #expect(a.paymentRequests == [Self.request])
        #expect(a.errored == false)
    }

    @Test func secondDistinctRequestIsAppended() {
        var other = Self.request
        other.paymentId = "PAY-2"
        var a = BillingRules.apply(BillAggregate(), .paymentRequest(Self.request))
        a = BillingRules.apply(a, .paymentRequest(other))
        #expect(a.paymentRequests.map(\.paymentId) == ["PAY-1", "PAY-2"])
    }

    @Test func chaserEventLeavesBillingUnchanged() {
        let a = BillingRules.apply(BillAggregate(), .bill(Self.bill))
        #expect(BillingRules.apply(a, .chaser(Chaser(name: "n", id: "i", sent: 1, ttl: 1))) == a)
    }
}
