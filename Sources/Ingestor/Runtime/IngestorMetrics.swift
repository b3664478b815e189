// The ingestor's metrics (the documented Prometheus names), created once; cheap to use from the stream thread.
import Metrics
import Synchronization

/// Metric handles. Labelled families are cached per label value.
final class IngestorMetrics: Sendable {
    let chaserReceived = Counter(label: "chaser_received_total")
    let chaserTTL = Gauge(label: "chaser_ttl_value")
    let billingAggregations = Counter(label: "billing_aggregation_total")
    let billingCustomerBills = Counter(label: "billing_customer_bills_total")
    let recordsConsumed = Counter(label: "records_consumed_total")
    let rebalancesAssign = Counter(label: "rebalances_total", dimensions: [("kind", "assign")])
    let rebalancesRevoke = Counter(label: "rebalances_total", dimensions: [("kind", "revoke")])
    let rebalancesLost = Counter(label: "rebalances_total", dimensions: [("kind", "lost")])
    let commitLatency: Metrics.Timer
    let commits = Counter(label: "commits_total")
    let aborts = Counter(label: "transaction_aborts_total")
    /// Clean record-cache entries dropped past the hot-key bound (the next record of the key reads LMDB).
    let cacheEvictions = Counter(label: "record_cache_evictions_total")
    /// Records folded into an aggregate the record cache held (no store read).
    let cacheHits = Counter(label: "record_cache_hits_total")
    /// Records whose key was not cached: the aggregate was read from LMDB (or started empty).
    let cacheMisses = Counter(label: "record_cache_misses_total")
    let partitionsRestoring = Gauge(label: "partitions_restoring")
    let partitionsAssigned = Gauge(label: "partitions_assigned")
    /// 1 while the stream thread reaches the broker, 0 while it does not (BrokerLink).
    let brokerReachable = Gauge(label: "kafka_broker_reachable")

    private let produced = Mutex<[String: Counter]>([:])
    private let deadLettered = Mutex<[String: Counter]>([:])
    private let lags = Mutex<[String: Gauge]>([:])
    private let storeKeys = Mutex<[String: Gauge]>([:])
    private let restored = Mutex<[String: Counter]>([:])
    private let restoreRemaining = Mutex<[String: Gauge]>([:])

    /// Every reason a record can be dead-lettered for (the DLQ header values).
    static let deadLetterReasons = ["null-key"] + DecodeFailure.Reason.allCases.map(\.rawValue)

    init(guarantee: String) {
        commitLatency = Metrics.Timer(label: "commit_latency_seconds", dimensions: [("guarantee", guarantee)])
        // Each known reason is exported at 0 from the start: rate() and alerts see the series before the first.
        for reason in Self.deadLetterReasons { _ = deadLettered(reason: reason) }
    }

    func produced(topic: String) -> Counter {
        produced.withLock { map in
            if let c = map[topic] { return c }
            let c = Counter(label: "records_produced_total", dimensions: [("topic", topic)])
            map[topic] = c
            return c
        }
    }

    func deadLettered(reason: String) -> Counter {
        deadLettered.withLock { map in
            if let c = map[reason] { return c }
            let c = Counter(label: "records_dead_lettered_total", dimensions: [("reason", reason)])
            map[reason] = c
            return c
        }
    }

    func lag(topic: String, partition: Int32) -> Gauge {
        lags.withLock { map in
            let key = "\(topic)/\(partition)"
            if let g = map[key] { return g }
            let g = Gauge(label: "kafka_consumer_lag", dimensions: [("topic", topic), ("partition", "\(partition)")])
            map[key] = g
            return g
        }
    }

    func storeKeys(store: String) -> Gauge {
        storeKeys.withLock { map in
            if let g = map[store] { return g }
            let g = Gauge(label: "store_keys", dimensions: [("store", store)])
            map[store] = g
            return g
        }
    }

    func restored(store: String) -> Counter {
        restored.withLock { map in
            if let c = map[store] { return c }
            let c = Counter(label: "restore_records_total", dimensions: [("store", store)])
            map[store] = c
            return c
        }
    }

    func restoreRemaining(store: String, partition: Int32) -> Gauge {
        restoreRemaining.withLock { map in
            let key = "\(store)/\(partition)"
            if let g = map[key] { return g }
            let g = Gauge(
                label: "restore_remaining_records", dimensions: [("store", store), ("partition", "\(partition)")])
            map[key] = g
            return g
        }
    }
}
