// Pure aggregation rule of the `chaser` store; no I/O, tested without Kafka.

enum ChaserRules {
    /// Folds one Chaser into the per-key aggregate: distinct names in first-seen order, count,
    /// max `sent` as `latest`, max `ttl` as `longest`.
    static func apply(_ aggregate: ChaserAggregate, _ event: Chaser) -> ChaserAggregate {
        var next = aggregate
        if !next.names.contains(event.name) {
            next.names.append(event.name)
        }
        next.count &+= 1
        next.latest = max(next.latest ?? event.sent, event.sent)
        next.longest = max(next.longest ?? event.ttl, event.ttl)
        return next
    }
}
