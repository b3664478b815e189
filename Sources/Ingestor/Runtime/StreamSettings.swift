// The stream thread's settings and the librdkafka properties of its clients, derived from AppConfig.
import Shared

/// What a stream thread needs, derived from AppConfig at the composition root.
struct StreamSettings: Sendable {
    var inputTopic: String
    var outputTopics: [StoreKind: String]
    var changelogTopics: [StoreKind: String]
    var deadLetterTopic: String
    var exactlyOnce: Bool
    var commitIntervalMs: Int
    var cacheMaxEntries: Int
    /// The most entries one epoch collects before the stream thread commits: cacheMaxEntries, or 10,000 when
    /// it is 0 (every update is emitted, but an epoch still ends).
    var epochBound: Int { cacheMaxEntries > 0 ? cacheMaxEntries : 10_000 }
    /// Bound of the record cache's clean entries (decoded aggregates kept across commits for hot keys). 8,192:
    /// ~30 MB less anon memory than 32,768 for no measurable loss since a miss costs an LMDB read plus the
    /// hand-written Avro decode (docs/benchmarks.md, throughput pass 2).
    var hotKeys = 8_192
    /// Records taken from the consumer queue per `rd_kafka_consume_batch_queue`.
    var pollBatchSize = 1_000
    var autoOffsetReset: AutoOffsetReset
    /// Bound of each blocking librdkafka call (transaction operations, flush, offset commit): a call that runs
    /// out is retried (librdkafka classes a timeout as retriable) until `commitDeadline`.
    let kafkaCallTimeoutMs: Int32 = 10_000
    /// When a running librdkafka call counts as stuck (fatal). A transactional call learns of a timed-out request
    /// only when the request itself times out, socket.timeout.ms after it was (re)queued, so a call can overrun
    /// its own timeout by that much while the broker restarts (seen: 15.8 s for a 10 s call); 5 s more on top.
    var callStuckAfter: Duration
    /// How long one commit (or abort) may stay unfinished before it is fatal (the process exits and restarts
    /// with exact state): twice `transaction.timeout.ms` (60 s by default), so a broker outage shorter than that
    /// is ridden through; librdkafka's own calls can block past their timeouts, which this bounds too.
    var commitDeadline: Duration
    /// The graceful shutdown's budget for the final commit and leaving the group; what does not finish in it
    /// is abandoned (the restart replays it). Well inside the chart's 45 s termination grace period.
    var shutdownBudget: Duration = .seconds(12)
    var consumerProperties: [String: String]
    var producerProperties: [String: String]
    var restoreProperties: [String: String]
    var adminProperties: [String: String]
    /// The routing thread's clients (it derives its producer's and reader's own keys from these).
    var routingProperties: [String: String]

    init(config: AppConfig) {
        let k = config.kafka
        inputTopic = k.inputTopic
        outputTopics = [.chaser: k.chaserTopic, .billing: k.billingTopic]
        changelogTopics = [.chaser: k.chaserChangelogTopic, .billing: k.billingChangelogTopic]
        deadLetterTopic = k.deadLetterTopic
        exactlyOnce = k.processingGuarantee == .exactlyOnceV2
        commitIntervalMs = max(1, k.commitIntervalMs)
        cacheMaxEntries = max(0, k.cacheMaxEntries)
        autoOffsetReset = k.autoOffsetReset
        let client = "\(k.applicationId)-\(config.pod.name)"
        // librdkafka (2.16) re-bootstraps when every broker it knows is down (one broker restarting is enough):
        // it drops its broker handles, and a transactional call's TxnOffsetCommit then waited for the group
        // coordinator's old handle forever, past every timeout (seen in the chaos run after each broker restart).
        // The bootstrap address is a stable Service name here, so reconnecting to the known brokers is enough.
        var base = ["bootstrap.servers": k.bootstrapServers, "metadata.recovery.strategy": "none"]
        base.merge(k.properties) { _, user in user }

        var consumer = base
        consumer["client.id"] = consumer["client.id"] ?? "\(client)-consumer"
        consumer["partition.assignment.strategy"] = consumer["partition.assignment.strategy"] ?? "cooperative-sticky"
        consumer["statistics.interval.ms"] = consumer["statistics.interval.ms"] ?? "5000"
        // librdkafka prefetches up to 64 MB per consumer by default: bound it for the memory target. A shallow
        // queue is enough once librdkafka stops pausing a partition's fetches for fetch.queue.backoff.ms (1 s by
        // default) whenever the queue is over these thresholds: that pause, not the depth, capped 10000/2048 at
        // ~23k events/s; with 10 ms it matches 100000/16384 at a third of the anon memory (docs/benchmarks.md).
        // 1024 kB rather than 2048: librdkafka counts payload bytes only, and each queued record also holds a
        // ~300-byte op, so 2048 kB of ~60-byte records was ~14 MB of heap; 1024 cut the anon peak by 5-8 MB at
        // 10k and 100k keys with no throughput loss (docs/benchmarks.md, "Session 3: ingestor memory").
        // 2500 records rather than 10000: the records (~50 bytes each) hit the record bound first, and at a
        // million keys librdkafka's ops for 4 × 10000 queued records were the largest block of heap (8 MB).
        consumer["queued.max.messages.kbytes"] = consumer["queued.max.messages.kbytes"] ?? "1024"
        consumer["queued.min.messages"] = consumer["queued.min.messages"] ?? "2500"
        consumer["fetch.queue.backoff.ms"] = consumer["fetch.queue.backoff.ms"] ?? "10"
        consumer["group.id"] = k.applicationId
        consumer["enable.auto.commit"] = "false"
        consumer["enable.auto.offset.store"] = "false"
        consumer["auto.offset.reset"] = k.autoOffsetReset.rawValue
        consumer["isolation.level"] = "read_committed"
        consumerProperties = consumer

        var producer = Self.producerOnly(base)
        producer["client.id"] = producer["client.id"] ?? "\(client)-producer"
        producer["linger.ms"] = producer["linger.ms"] ?? "5"
        producer["enable.idempotence"] = "true"
        producer["partitioner"] = producer["partitioner"] ?? "murmur2_random"
        // librdkafka times its transactional requests (AddOffsetsToTxn, TxnOffsetCommit, EndTxn) out after
        // socket.timeout.ms, 60 s by default, and send_offsets_to_transaction waits for them without a bound of
        // its own: with the broker away it blocked past the stuck bound and the process exited (chaos run). With
        // the call timeout here the call returns a retriable timeout in time and is retried.
        producer["socket.timeout.ms"] = producer["socket.timeout.ms"] ?? String(kafkaCallTimeoutMs)
        if exactlyOnce {
            producer["transactional.id"] = producer["transactional.id"] ?? client
        } else {
            producer.removeValue(forKey: "transactional.id")
        }
        producerProperties = producer
        let socketTimeoutMs = producer["socket.timeout.ms"].flatMap { Int($0) } ?? Int(kafkaCallTimeoutMs)
        callStuckAfter = .milliseconds(Int(kafkaCallTimeoutMs) + socketTimeoutMs) + .seconds(5)
        let transactionTimeoutMs = producer["transaction.timeout.ms"].flatMap { Int($0) } ?? 60_000
        commitDeadline = .milliseconds(max(20_000, 2 * transactionTimeoutMs))

        var restore = base
        restore["client.id"] = "\(client)-restore"
        Self.capRestorePrefetch(&restore)
        restore["fetch.wait.max.ms"] = restore["fetch.wait.max.ms"] ?? "100"
        // Never subscribes or commits; librdkafka wants a group id for incremental assignment.
        restore["group.id"] = "\(client)-restore"
        restoreProperties = restore
        var admin = Self.producerOnly(base)
        admin["client.id"] = "\(client)-admin"
        adminProperties = admin
        // The routing thread's producer and reader start from the same base: built from the bootstrap address
        // alone, they re-bootstrapped whenever the broker was down and reconnected every few milliseconds
        // (408 librdkafka log lines in the 8 s outage of test_started_while_broker_down_becomes_exact; 8 with it).
        var routing = base
        routing["client.id"] = routing["client.id"] ?? "\(client)-routing"
        routingProperties = routing
    }
}

extension StreamSettings {
    /// Consumer-only librdkafka keys (left out of producer/admin configs to avoid CONFWARN noise).
    static let consumerOnlyKeys: Set<String> = [
        "session.timeout.ms", "heartbeat.interval.ms", "group.id", "group.instance.id", "group.protocol",
        "group.remote.assignor", "partition.assignment.strategy", "auto.offset.reset", "max.poll.interval.ms",
        "isolation.level", "enable.auto.commit", "enable.auto.offset.store", "auto.commit.interval.ms",
        "enable.partition.eof", "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes", "fetch.error.backoff.ms",
        "max.partition.fetch.bytes", "fetch.message.max.bytes", "queued.min.messages", "queued.max.messages.kbytes",
        "fetch.queue.backoff.ms",
        "check.crcs", "coordinator.query.interval.ms", "client.rack",
    ]

    /// The restore consumer's prefetch bounds: the cold restore's memory is nearly all prefetched changelog
    /// records (librdkafka counts `queued.max.messages.kbytes` in payload bytes, while each queued record also
    /// costs a ~300-byte op and pins its whole fetch response, and a fetch may overshoot the queue by
    /// `max.partition.fetch.bytes` per partition: 8 changelog partitions at 1 MiB by default). Smaller is not
    /// slower here: the restore drains its queue in milliseconds and re-fetches after fetch.queue.backoff.ms
    /// (10 ms). Measured (1M records, 4 partitions, MDB_WRITEMAP): anon peak 77-85 MB → 16-17 MB, restore time
    /// unchanged within the noise (2.3-4.2 s against 2.8-4.4 s; docs/benchmarks.md, "Session 3: ingestor
    /// memory"). `kafka.properties` may only lower these.
    static let restorePrefetchCaps: [(key: String, cap: Int)] = [
        ("queued.max.messages.kbytes", 1_024), ("queued.min.messages", 10_000), ("max.partition.fetch.bytes", 131_072),
    ]

    static func capRestorePrefetch(_ properties: inout [String: String]) {
        // fetch.message.max.bytes is librdkafka's older name of max.partition.fetch.bytes.
        if let alias = properties.removeValue(forKey: "fetch.message.max.bytes") {
            properties["max.partition.fetch.bytes"] = properties["max.partition.fetch.bytes"] ?? alias
        }
        for (key, cap) in restorePrefetchCaps {
            let given = properties[key].flatMap { Int($0) }
            properties[key] = String(min(given ?? cap, cap))
        }
    }

    /// `properties` without consumer-only keys.
    static func producerOnly(_ properties: [String: String]) -> [String: String] {
        properties.filter { !consumerOnlyKeys.contains($0.key) || $0.key == "client.rack" }
    }
}
