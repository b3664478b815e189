// The consume → process → record cache → commit loop (Kafka Streams' StreamThread + TaskManager in one).
import Logging
import Shared

/// One aggregate waiting in the record cache until the next commit.
struct PendingAggregate<A> {
    var aggregate: A
    var partition: Int32
    /// The max input offset folded into it (the changelog header).
    var inputOffset: Int64
    /// The framed bytes once produced (output + changelog); what the local store gets after the commit.
    var encoded: [UInt8]?
}

/// A record key as a dictionary key: hashed in bulk (an `[UInt8]` key would be hashed byte by byte).
struct KeyBytes: Hashable {
    let bytes: [UInt8]
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// The group took partitions away without a revoke (session timed out): their work cannot be committed.
struct PartitionsLost: Error, CustomStringConvertible {
    var partitions: [Int32]
    var description: String { "partitions lost (session timed out): \(partitions.sorted())" }
}

/// Per assigned input partition.
struct PartitionTask {
    /// The group's committed next offset (KafkaOffset.invalid when none).
    var committed: Int64
    /// Next offset after the last record processed since the last commit.
    var consumedNext: Int64?
    /// First offset seen when nothing was committed yet (rewind target).
    var firstSeen: Int64?
    var active = false
    /// A record arrived while restoring (dropped): seek to the committed offset on activation.
    var needsSeek = false
    var checkpoints: [Checkpoint?] = Array(repeating: nil, count: StoreKind.allCases.count)
}

/// What a stream thread needs, derived from AppConfig at the composition root.
struct StreamSettings: Sendable {
    var inputTopic: String
    var outputTopics: [StoreKind: String]
    var changelogTopics: [StoreKind: String]
    var deadLetterTopic: String
    var exactlyOnce: Bool
    var commitIntervalMs: Int
    var cacheMaxEntries: Int
    var autoOffsetReset: AutoOffsetReset
    var consumerProperties: [String: String]
    var producerProperties: [String: String]
    var restoreProperties: [String: String]
    var adminProperties: [String: String]

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
        var base = ["bootstrap.servers": k.bootstrapServers]
        base.merge(k.properties) { _, user in user }

        var consumer = base
        consumer["client.id"] = consumer["client.id"] ?? "\(client)-consumer"
        consumer["partition.assignment.strategy"] = consumer["partition.assignment.strategy"] ?? "cooperative-sticky"
        consumer["statistics.interval.ms"] = consumer["statistics.interval.ms"] ?? "5000"
        // librdkafka prefetches up to 64 MB per consumer by default: bound it for the memory target.
        consumer["queued.max.messages.kbytes"] = consumer["queued.max.messages.kbytes"] ?? "8192"
        consumer["queued.min.messages"] = consumer["queued.min.messages"] ?? "20000"
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
        if exactlyOnce {
            producer["transactional.id"] = producer["transactional.id"] ?? client
        } else {
            producer.removeValue(forKey: "transactional.id")
        }
        producerProperties = producer

        var restore = base
        restore["client.id"] = "\(client)-restore"
        restore["queued.max.messages.kbytes"] = restore["queued.max.messages.kbytes"] ?? "8192"
        restore["fetch.wait.max.ms"] = restore["fetch.wait.max.ms"] ?? "100"
        // Never subscribes or commits; librdkafka wants a group id for incremental assignment.
        restore["group.id"] = "\(client)-restore"
        restoreProperties = restore
        var admin = Self.producerOnly(base)
        admin["client.id"] = "\(client)-admin"
        adminProperties = admin
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
        "check.crcs", "coordinator.query.interval.ms", "client.rack",
    ]

    /// `properties` without consumer-only keys.
    static func producerOnly(_ properties: [String: String]) -> [String: String] {
        properties.filter { !consumerOnlyKeys.contains($0.key) || $0.key == "client.rack" }
    }
}

/// The loop. Bound to the stream thread: everything here runs on it (rebalance callbacks included, they
/// run inside `consumer.poll`), except `StreamThread.requestStop`.
final class StreamLoop: RebalanceListener {
    private let settings: StreamSettings
    private let stores: StateStores
    private let registry: PartitionRegistry
    private let metrics: IngestorMetrics
    private let logger: Logger
    private let codec: EventCodec
    private let tracker: DeliveryTracker
    private var consumer: KafkaConsumer?
    private let producer: KafkaProducer
    private let restorer: ChangelogRestorer
    private let partitionCount: Int32
    private let dlqPartitions: Int32

    private var tasks: [Int32: PartitionTask] = [:]
    private var chaserPending: [KeyBytes: PendingAggregate<ChaserAggregate>] = [:]
    private var billingPending: [KeyBytes: PendingAggregate<BillAggregate>] = [:]
    private var transactionOpen = false
    /// An error raised inside a rebalance callback (C cannot propagate it); rethrown after poll.
    private var callbackError: (any Error)?
    private let clock = ContinuousClock()
    private var lastStatsUpdate = ContinuousClock.now

    init(
        settings: StreamSettings, stores: StateStores, registry: PartitionRegistry, metrics: IngestorMetrics,
        codec: EventCodec, partitionCount: Int32, dlqPartitions: Int32, logger: Logger
    ) throws {
        self.settings = settings
        self.stores = stores
        self.registry = registry
        self.metrics = metrics
        self.codec = codec
        self.partitionCount = partitionCount
        self.dlqPartitions = dlqPartitions
        self.logger = logger
        let tracker = DeliveryTracker(metrics: metrics)
        self.tracker = tracker
        producer = try KafkaProducer(properties: settings.producerProperties) { tracker.delivered($0) }
        restorer = try ChangelogRestorer(
            properties: settings.restoreProperties, stores: stores, topics: settings.changelogTopics,
            metrics: metrics, logger: logger)
    }

    // MARK: start-up and the loop

    func start() throws {
        if settings.exactlyOnce {
            try retrying("init_transactions") { () throws(KafkaError) in
                try producer.initTransactions(timeoutMs: 30_000)
            }
        }
        let consumer = try KafkaConsumer(
            properties: settings.consumerProperties, listener: self,
            onStats: { [metrics] stats in
                for s in stats { metrics.lag(topic: s.topic, partition: s.partition).record(s.lag) }
            }, logger: logger)
        self.consumer = consumer
        try consumer.subscribe([settings.inputTopic])
        registry.update { $0.partitionCount = partitionCount }
        logger.info(
            "consuming",
            metadata: [
                "topic": "\(settings.inputTopic)", "partitions": "\(partitionCount)",
                "guarantee": "\(settings.exactlyOnce ? "exactly_once_v2" : "at_least_once")",
                "commitIntervalMs": "\(settings.commitIntervalMs)", "cacheMaxEntries": "\(settings.cacheMaxEntries)",
            ])
    }

    /// Runs until `shouldStop` returns true; throws on fatal errors (the process exits and restarts).
    func run(shouldStop: () -> Bool) throws {
        guard let consumer else { return }
        let interval = Duration.milliseconds(settings.commitIntervalMs)
        var nextCommit = clock.now + interval
        while !shouldStop() {
            do {
                if !restorer.isIdle {
                    for p in try restorer.poll(maxEvents: 5_000, timeoutMs: 10) { try activate(p) }
                }
                let untilCommit = max(0, (nextCommit - clock.now) / .milliseconds(1))
                let timeout = Int32(restorer.isIdle ? min(100, untilCommit) : 0)
                var served = 0
                var batches = 0
                while served < 5_000, !cacheFull {
                    let n = try consumer.pollBatch(max: 500, timeoutMs: batches == 0 ? timeout : 0) { event in
                        try handle(event)
                    }
                    if let error = callbackError {
                        callbackError = nil
                        throw error
                    }
                    if n == 0 { break }
                    served += n
                    batches += 1
                }
                if let error = callbackError {
                    callbackError = nil
                    throw error
                }
                producer.poll(timeoutMs: 0)
                if clock.now >= nextCommit || cacheFull {
                    try commit()
                    nextCommit = clock.now + interval
                }
                periodicStats()
            } catch let error as KafkaError where error.kind == .abortable || error.kind == .retriable {
                try abortAndRewind(because: error)
            }
        }
    }

    /// Graceful end: commit (or abort), leave the group, flush, sync the stores.
    func shutdown() {
        do {
            try commit()
        } catch {
            logger.warning("final commit failed; aborting", metadata: ["error": "\(error)"])
            try? abortAndRewind(because: error)
        }
        registry.update {
            $0.running = false
            $0.joinedGroup = false
        }
        consumer?.close()
        if settings.exactlyOnce, transactionOpen {
            try? producer.abortTransaction(timeoutMs: 5_000)
            transactionOpen = false
        }
        try? producer.flush(timeoutMs: 5_000)
        stores.syncAll()
        logger.info("stream thread stopped")
    }

    private var cacheFull: Bool {
        settings.cacheMaxEntries > 0 && chaserPending.count + billingPending.count >= settings.cacheMaxEntries
    }

    private func handle(_ event: ConsumerEvent) throws {
        switch event {
        case .record(let record):
            try process(record)
        case .partitionEOF:
            break
        case .error(let error):
            if error.kind == .fatal { throw consumer?.fatalError ?? error }
            logger.warning("consumer error", metadata: ["error": "\(error)"])
        }
    }

    // MARK: processing

    private func process(_ record: KafkaRecord) throws {
        guard var task = tasks[record.partition] else { return }
        guard task.active else {
            // Fetched before the pause took effect: drop it and seek back on activation.
            task.needsSeek = true
            tasks[record.partition] = task
            return
        }
        metrics.recordsConsumed.increment()
        if task.firstSeen == nil, task.committed < 0 { task.firstSeen = record.offset }
        task.consumedNext = record.offset + 1
        tasks[record.partition] = task

        guard let key = record.key else {
            try deadLetter(record, reason: "null-key", detail: "record has no key")
            return
        }
        let event: InputEvent
        do {
            event = try codec.decodeInput(record.value ?? [])
        } catch {
            try deadLetter(record, reason: error.reason, detail: error.detail)
            return
        }
        let cacheKey = KeyBytes(bytes: key)
        switch event {
        case .chaser(let chaser):
            // Taken out of the cache while updated, so the aggregate's buffers stay uniquely referenced.
            var entry =
                chaserPending.removeValue(forKey: cacheKey)
                ?? PendingAggregate(
                    aggregate: loadChaser(partition: record.partition, key: key), partition: record.partition,
                    inputOffset: record.offset, encoded: nil)
            entry.aggregate = ChaserRules.apply(entry.aggregate, chaser)
            entry.inputOffset = record.offset
            entry.partition = record.partition
            metrics.chaserReceived.increment()
            metrics.chaserTTL.record(chaser.ttl)
            if settings.cacheMaxEntries == 0 {
                let bytes = codec.encode(entry.aggregate)
                try emit(.chaser, key: key, value: bytes, partition: record.partition, inputOffset: record.offset)
                entry.encoded = bytes
            } else {
                entry.encoded = nil
            }
            chaserPending[cacheKey] = entry
        case .bill, .paymentRequest, .paymentFailed:
            var entry =
                billingPending.removeValue(forKey: cacheKey)
                ?? PendingAggregate(
                    aggregate: loadBilling(partition: record.partition, key: key), partition: record.partition,
                    inputOffset: record.offset, encoded: nil)
            if case .bill = event, entry.aggregate.bill == nil { metrics.billingCustomerBills.increment() }
            entry.aggregate = BillingRules.apply(entry.aggregate, event)
            entry.inputOffset = record.offset
            entry.partition = record.partition
            metrics.billingAggregations.increment()
            if settings.cacheMaxEntries == 0 {
                let bytes = codec.encode(entry.aggregate)
                try emit(.billing, key: key, value: bytes, partition: record.partition, inputOffset: record.offset)
                entry.encoded = bytes
            } else {
                entry.encoded = nil
            }
            billingPending[cacheKey] = entry
        }
    }

    private func loadChaser(partition: Int32, key: [UInt8]) -> ChaserAggregate {
        let decoded = stores.chaser.writerGet(partition: partition, key: key) { raw in
            Result { () throws(DecodeFailure) in try codec.decodeChaserAggregate(raw) }
        }
        switch decoded {
        case .none: return ChaserAggregate()
        case .success(let a): return a
        case .failure(let error):
            logger.error("undecodable chaser store value; starting over", metadata: ["error": "\(error)"])
            return ChaserAggregate()
        }
    }

    private func loadBilling(partition: Int32, key: [UInt8]) -> BillAggregate {
        let decoded = stores.billing.writerGet(partition: partition, key: key) { raw in
            Result { () throws(DecodeFailure) in try codec.decodeBillAggregate(raw) }
        }
        switch decoded {
        case .none: return BillAggregate()
        case .success(let a): return a
        case .failure(let error):
            logger.error("undecodable billing store value; starting over", metadata: ["error": "\(error)"])
            return BillAggregate()
        }
    }

    private func ensureTransaction() throws(KafkaError) {
        guard settings.exactlyOnce, !transactionOpen else { return }
        try producer.beginTransaction()
        transactionOpen = true
    }

    /// Produces an aggregate to its output topic and its changelog (same partition as the input).
    private func emit(_ store: StoreKind, key: [UInt8], value: [UInt8], partition: Int32, inputOffset: Int64)
        throws(KafkaError)
    {
        try ensureTransaction()
        try producer.produce(
            topic: settings.outputTopics[store] ?? store.name, partition: partition, key: key, value: value)
        try producer.produce(
            topic: settings.changelogTopics[store] ?? "\(store.name)-changelog", partition: partition, key: key,
            value: value, headers: [KafkaHeader(ChangelogHeader.inputOffset, ChangelogHeader.encode(inputOffset))],
            tag: DeliveryTracker.tag(store: store, partition: partition))
    }

    private func deadLetter(_ record: KafkaRecord, reason: String, detail: String) throws(KafkaError) {
        try ensureTransaction()
        let headers = [
            KafkaHeader("k8s-micro-dlq-reason", reason),
            KafkaHeader("k8s-micro-dlq-detail", detail),
            KafkaHeader("k8s-micro-origin-topic", record.topic),
            KafkaHeader("k8s-micro-origin-partition", String(record.partition)),
            KafkaHeader("k8s-micro-origin-offset", String(record.offset)),
        ]
        let partition: Int32? = record.partition < dlqPartitions ? record.partition : nil
        try producer.produce(
            topic: settings.deadLetterTopic, partition: partition, key: record.key, value: record.value,
            headers: headers)
        metrics.deadLettered(reason: reason).increment()
        logger.debug(
            "dead-lettered",
            metadata: [
                "reason": "\(reason)", "detail": "\(detail)", "topic": "\(record.topic)",
                "partition": "\(record.partition)", "offset": "\(record.offset)",
            ])
    }

    // MARK: commit

    /// Emits the record cache, commits (transaction or offsets), then writes values + checkpoints locally.
    private func commit() throws {
        var offsets: [TopicPartition: Int64] = [:]
        for (p, task) in tasks where task.active {
            if let next = task.consumedNext, next != task.committed {
                offsets[TopicPartition(settings.inputTopic, p)] = next
            }
        }
        guard !offsets.isEmpty || !chaserPending.isEmpty || !billingPending.isEmpty || transactionOpen else {
            return
        }
        let started = clock.now
        // Walk by index and mutate values in place (iterating a copy would copy the whole dictionary).
        var ci = chaserPending.startIndex
        while ci != chaserPending.endIndex {
            let (key, entry) = chaserPending[ci]
            if entry.encoded == nil {
                let bytes = codec.encode(entry.aggregate)
                try emit(
                    .chaser, key: key.bytes, value: bytes, partition: entry.partition, inputOffset: entry.inputOffset)
                chaserPending.values[ci].encoded = bytes
            }
            ci = chaserPending.index(after: ci)
        }
        var bi = billingPending.startIndex
        while bi != billingPending.endIndex {
            let (key, entry) = billingPending[bi]
            if entry.encoded == nil {
                let bytes = codec.encode(entry.aggregate)
                try emit(
                    .billing, key: key.bytes, value: bytes, partition: entry.partition, inputOffset: entry.inputOffset)
                billingPending.values[bi].encoded = bytes
            }
            bi = billingPending.index(after: bi)
        }
        if settings.exactlyOnce {
            guard let consumer else { return }
            try ensureTransaction()
            try retrying("send_offsets_to_transaction") { () throws(KafkaError) in
                try producer.sendOffsetsToTransaction(offsets, consumer: consumer, timeoutMs: 30_000)
            }
            try retrying("commit_transaction") { () throws(KafkaError) in
                try producer.commitTransaction(timeoutMs: 60_000)
            }
            transactionOpen = false
            producer.poll(timeoutMs: 0)
        } else {
            try retrying("flush") { () throws(KafkaError) in try producer.flush(timeoutMs: 30_000) }
            if let failure = tracker.failure {
                throw KafkaError(
                    code: failure.code, name: failure.name, message: failure.message, kind: .abortable,
                    operation: failure.operation)
            }
            do {
                try consumer?.commit(offsets)
            } catch {
                throw KafkaError(
                    code: error.code, name: error.name, message: error.message, kind: .abortable,
                    operation: error.operation)
            }
        }
        // Kafka has the work: now the local store may follow (never ahead of the committed offsets).
        var touched = Set(offsets.keys.map(\.partition))
        for (tp, next) in offsets { tasks[tp.partition]?.committed = next }
        var batches = Array(repeating: StoreWriteBatch(), count: StoreKind.allCases.count)
        for (key, entry) in chaserPending {
            guard let bytes = entry.encoded else { continue }
            batches[StoreKind.chaser.rawValue].put(partition: entry.partition, key: key.bytes, value: bytes)
            touched.insert(entry.partition)
        }
        for (key, entry) in billingPending {
            guard let bytes = entry.encoded else { continue }
            batches[StoreKind.billing.rawValue].put(partition: entry.partition, key: key.bytes, value: bytes)
            touched.insert(entry.partition)
        }
        for p in touched {
            guard var task = tasks[p] else { continue }
            for kind in StoreKind.allCases {
                var checkpoint = task.checkpoints[kind.rawValue] ?? Checkpoint(inputOffset: 0, changelogOffset: 0)
                checkpoint.inputOffset = max(task.committed, 0)
                if let high = tracker.changelogHigh[kind.rawValue][p] { checkpoint.changelogOffset = high + 1 }
                task.checkpoints[kind.rawValue] = checkpoint
                batches[kind.rawValue].checkpoints[p] = checkpoint
            }
            task.consumedNext = nil
            tasks[p] = task
        }
        for kind in StoreKind.allCases { try stores[kind].write(batches[kind.rawValue]) }
        chaserPending.removeAll(keepingCapacity: true)
        billingPending.removeAll(keepingCapacity: true)
        tracker.reset()
        metrics.commits.increment()
        metrics.commitLatency.recordNanoseconds(
            Int64((clock.now - started) / .nanoseconds(1)))
    }

    /// Retries `body` while it fails with a retriable error (a few times), rethrowing anything else.
    private func retrying(_ what: String, _ body: () throws(KafkaError) -> Void) throws(KafkaError) {
        var attempt = 0
        while true {
            do {
                try body()
                return
            } catch  where error.kind == .retriable && attempt < 10 {
                attempt += 1
                logger.warning(
                    "retrying", metadata: ["operation": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                producer.poll(timeoutMs: Int32(min(1_000, 50 * attempt)))
            }
        }
    }

    /// Abortable failure: abort the transaction, drop the cache, seek every partition back to its committed
    /// offset. The local store was never written for that work, so state stays exact.
    private func abortAndRewind(because error: any Error) throws {
        logger.warning("aborting and rewinding to committed offsets", metadata: ["error": "\(error)"])
        metrics.aborts.increment()
        if settings.exactlyOnce, transactionOpen {
            do {
                try producer.abortTransaction(timeoutMs: 60_000)
            } catch {
                if error.kind == .fatal { throw error }
                logger.error("abort_transaction failed", metadata: ["error": "\(error)"])
                throw KafkaError(
                    code: error.code, name: error.name, message: error.message, kind: .fatal,
                    operation: error.operation)
            }
            transactionOpen = false
        }
        chaserPending.removeAll()
        billingPending.removeAll()
        tracker.reset()
        var seeks: [TopicPartition: Int64] = [:]
        for (p, var task) in tasks where task.active {
            seeks[TopicPartition(settings.inputTopic, p)] = rewindOffset(task)
            task.consumedNext = nil
            tasks[p] = task
        }
        try consumer?.seek(seeks)
    }

    private func rewindOffset(_ task: PartitionTask) -> Int64 {
        if task.committed >= 0 { return task.committed }
        if let first = task.firstSeen { return first }
        return settings.autoOffsetReset == .earliest ? KafkaOffset.beginning : KafkaOffset.end
    }

    // MARK: rebalance (inside consumer.poll)

    func partitionsAssigned(_ partitions: [TopicPartition]) {
        metrics.rebalancesAssign.increment()
        let mine = partitions.filter { $0.topic == settings.inputTopic }
        guard let consumer, !mine.isEmpty else {
            registry.update { $0.joinedGroup = true }
            return
        }
        consumer.pause(mine)
        do {
            let committed = try committedOffsets(mine, consumer: consumer)
            for tp in mine {
                let c = committed[tp] ?? KafkaOffset.invalid
                tasks[tp.partition] = PartitionTask(committed: c)
                registry.update { $0.states[tp.partition] = .restoring }
                try restorer.start(partition: tp.partition, committedInput: c)
            }
        } catch {
            callbackError = error
        }
        registry.update {
            $0.joinedGroup = true
            $0.memberId = consumer.memberId
        }
        updateAssignmentGauges()
        logger.info("partitions assigned", metadata: ["partitions": "\(mine.map(\.partition).sorted())"])
    }

    /// The group's committed offsets, retried a few times (a wrong answer here would wipe stores).
    private func committedOffsets(_ partitions: [TopicPartition], consumer: KafkaConsumer) throws
        -> [TopicPartition: Int64]
    {
        var lastError: KafkaError?
        for attempt in 0..<5 {
            do {
                return try consumer.committed(partitions)
            } catch {
                lastError = error
                logger.warning(
                    "committed offsets unavailable; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
        }
        throw lastError ?? KafkaError(config: "committed offsets unavailable")
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
        (lost ? metrics.rebalancesLost : metrics.rebalancesRevoke).increment()
        let mine = partitions.filter { $0.topic == settings.inputTopic }.map(\.partition)
        do {
            if lost {
                try abortAndRewind(because: PartitionsLost(partitions: mine))
            } else {
                do {
                    try commit()
                } catch let error as KafkaError where error.kind == .abortable || error.kind == .retriable {
                    try abortAndRewind(because: error)
                }
            }
        } catch {
            callbackError = error
        }
        for p in mine {
            tasks.removeValue(forKey: p)
            restorer.cancel(partition: p)
        }
        registry.update { snapshot in for p in mine { snapshot.states.removeValue(forKey: p) } }
        updateAssignmentGauges()
        logger.info("partitions revoked", metadata: ["partitions": "\(mine.sorted())", "lost": "\(lost)"])
    }

    /// Restore done: serve the partition and start consuming it.
    private func activate(_ partition: Int32) throws {
        guard var task = tasks[partition], let consumer else { return }
        task.active = true
        for kind in StoreKind.allCases {
            task.checkpoints[kind.rawValue] = stores[kind].checkpoint(partition: partition)
        }
        let tp = TopicPartition(settings.inputTopic, partition)
        let seek = task.needsSeek
        task.needsSeek = false
        tasks[partition] = task
        registry.update { $0.states[partition] = .active }
        consumer.resume([tp])
        if seek { try consumer.seek([tp: rewindOffset(task)]) }
        updateAssignmentGauges()
        logger.info("partition active", metadata: ["partition": "\(partition)", "committed": "\(task.committed)"])
    }

    private func updateAssignmentGauges() {
        metrics.partitionsAssigned.record(tasks.count)
        metrics.partitionsRestoring.record(tasks.values.filter { !$0.active }.count)
    }

    private func periodicStats() {
        let now = clock.now
        guard now - lastStatsUpdate >= .seconds(5) else { return }
        lastStatsUpdate = now
        // Bound what an OS crash can take from the local store (MDB_NOSYNC); the changelog replays the rest.
        stores.syncAll()
        for kind in StoreKind.allCases {
            let store = stores[kind]
            let keys = tasks.keys.reduce(0) { $0 + store.count(partition: $1) }
            metrics.storeKeys(store: kind.name).record(keys)
        }
    }
}
