// Pure aggregation rule of the `billing` store; no I/O, tested without Kafka.

enum BillingRules {
    /// Folds one billing event into the per-key aggregate. Chaser events leave it unchanged.
    /// - Bill: replaces `bill`; a different bill over an existing one sets `errored`.
    /// - PaymentRequest: appended unless its `paymentId` is known; always clears `lastPaymentFailed`.
    /// - PaymentFailed: a second failure without a clearing request sets `errored` (first one kept).
    /// `errored` never resets.
    static func apply(_ aggregate: BillAggregate, _ event: InputEvent) -> BillAggregate {
        var next = aggregate
        switch event {
        case .bill(let bill):
            if let old = next.bill, old != bill {
                next.errored = true
            }
            next.bill = bill
        case .paymentRequest(let request):
            if !next.paymentRequests.contains(where: { $0.paymentId == request.paymentId }) {
                next.paymentRequests.append(request)
            }
            next.lastPaymentFailed = nil
        case .paymentFailed(let failed):
            if next.lastPaymentFailed != nil {
                next.errored = true
            } else {
                next.lastPaymentFailed = failed
            }
        case .chaser:
            break
        }
        return next
    }
}
