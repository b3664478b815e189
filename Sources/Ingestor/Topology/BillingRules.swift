// Pure aggregation rule of the `billing` store; no I/O, tested without Kafka.

enum BillingRules {
    /// Folds one billing event into the per-key aggregate. Chaser events leave it unchanged.
    /// - Bill: replaces `bill`; a different bill over an existing one sets `errored`.
    /// - PaymentRequest: appended unless its `paymentId` is known; always clears `lastPaymentFailed`.
    /// - PaymentFailed: a second failure without a clearing request sets `errored` (first one kept).
    /// `errored` never resets.
    static func apply(_ aggregate: BillAggregate, _ event: InputEvent) -> BillAggregate {
        var next = aggregate
        fold(&next, event)
        return next
    }

    /// `apply` in place: the record cache's aggregate is updated without copying its `paymentRequests` array.
    static func fold(_ aggregate: inout BillAggregate, _ event: InputEvent) {
        switch event {
        case .bill(let bill):
            if let old = aggregate.bill, old != bill {
                aggregate.errored = true
            }
            aggregate.bill = bill
        case .paymentRequest(let request):
            if !aggregate.paymentRequests.contains(where: { $0.paymentId == request.paymentId }) {
                aggregate.paymentRequests.append(request)
            }
            aggregate.lastPaymentFailed = nil
        case .paymentFailed(let failed):
            if aggregate.lastPaymentFailed != nil {
                aggregate.errored = true
            } else {
                aggregate.lastPaymentFailed = failed
            }
        case .chaser:
            break
        }
    }
}
