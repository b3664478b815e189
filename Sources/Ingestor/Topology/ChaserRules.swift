// Pure aggregation rule of the `chaser` store; no I/O, tested without Kafka.

enum ChaserRules {
    /// Folds one Chaser into the per-key aggregate: distinct names in first-seen order, count,
    /// max `sent` as `latest`, max `ttl` as `longest`.
    static func apply(_ aggregate: ChaserAggregate, _ event: Chaser) -> ChaserAggregate {
        var next = aggregate
        fold(&next, event)
        return next
    }

    /// `apply` in place: the record cache's aggregate is updated without copying its `names` array.
    static func fold(_ aggregate: inout ChaserAggregate, _ event: Chaser) {
        if !aggregate.names.contains(event.name) {
            aggregate.names.append(event.name)
        }
        aggregate.count &+= 1
        aggregate.latest = max(aggregate.latest ?? event.sent, event.sent)
        aggregate.longest = max(aggregate.longest ?? event.ttl, event.ttl)
    }
}
