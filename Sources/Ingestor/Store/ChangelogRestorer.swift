// Restores a partition's stores from their changelogs: the tail after the local checkpoint, or everything.
import Logging

/// Header carried by changelog records: the (max) input offset the value derives from, decimal ASCII.
package enum ChangelogHeader {
    package static let inputOffset = "k8s-micro-input-offset"

    package static func encode(_ offset: Int64) -> [UInt8] { Array(String(offset).utf8) }

    package static func decode(_ bytes: [UInt8]) -> Int64? { Int64(String(decoding: bytes, as: UTF8.self)) }

    /// `decode` of borrowed bytes; plain digits without allocating (the restore's per-record path).
    package static func decode(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return decode(Array(bytes)) }
        var n: Int64 = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return decode(Array(bytes)) }
            n = n * 10 + Int64(b - UInt8(ascii: "0"))
        }
        return n
    }
}

/// Drives the restore consumer. Bound to the stream thread.
///
/// Rules: start at the checkpointed changelog offset when the local checkpoint is not ahead of the group's
/// committed input offset, else wipe and start at the beginning; skip records whose input-offset header is at
/// or beyond the committed input offset (aborted or uncommitted work, which tansu leaks to read_committed);
/// the end of the log is the partition EOF (fetch high watermark), never ListOffsets.
final class ChangelogRestorer {
    /// One changelog partition being restored. A class so per-record updates mutate in place (a struct
    /// copied out of the dictionary made every append copy the batch: quadratic, ~80 µs per record).
    private final class Task {
        let topic: String
        let store: StoreKind
        let partition: Int32
        let start: Int64
        let committedInput: Int64
        var applied = 0
        var skipped = 0
        /// Records since the metrics were last updated.
        var unreported = 0
        var lastOffset: Int64 = -1
        /// Last record or end seen: a task without progress is checked against the fetch's high watermark.
        var lastProgress = ContinuousClock.now
        /// How long without progress counts as stuck. Doubled after each fetch restart (up to a minute): on a
        /// broker slower than the first bound, restarting every 5 s threw each fetch away before it answered
        /// and the restore never moved (seen in a chaos run on a durable broker).
        var patience = ChangelogRestorer.firstPatience

        init(topic: String, store: StoreKind, partition: Int32, start: Int64, committedInput: Int64) {
            self.topic = topic
            self.store = store
            self.partition = partition
            self.start = start
            self.committedInput = committedInput
        }

        /// The checkpoint after `changelogOffset - 1`: stored values are exact for the committed input offset.
        func checkpoint(changelogOffset: Int64) -> Checkpoint {
            Checkpoint(inputOffset: max(committedInput, 0), changelogOffset: changelogOffset)
        }
    }

    private let consumer: KafkaConsumer
    private let stores: StateStores
    private let topics: [StoreKind: String]
    private let metrics: IngestorMetrics
    private let logger: Logger
    private var tasks: [TopicPartition: Task] = [:]
    /// The task of the previous record (records come in runs per partition: skips a dictionary lookup).
    private var lastTask: Task?
    /// Records between metric updates (restore_records_total, restore_remaining_records).
    private let reportEvery = 5_000

    init(
        properties: [String: String], stores: StateStores, topics: [StoreKind: String], metrics: IngestorMetrics,
        logger: Logger
    ) throws(KafkaError) {
        var props = properties
        props["enable.partition.eof"] = "true"
        props["enable.auto.commit"] = "false"
        props["auto.offset.reset"] = "earliest"
        props["isolation.level"] = "read_committed"
        props.removeValue(forKey: "group.instance.id")
        props.removeValue(forKey: "statistics.interval.ms")
        // librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1 s by default) whenever the
        // consumer queue is over its thresholds; a restore drains the queue in milliseconds, so those pauses were
        // most of a cold restore (1M records: ~8 s → 4–5 s with 10 ms, docs/benchmarks.md).
        props["fetch.queue.backoff.ms"] = props["fetch.queue.backoff.ms"] ?? "10"
        consumer = try KafkaConsumer(properties: props, logger: logger)
        self.stores = stores
        self.topics = topics
        self.metrics = metrics
        self.logger = logger
    }

    var isIdle: Bool { tasks.isEmpty }

    /// Partitions still restoring.
    var restoringPartitions: Set<Int32> { Set(tasks.values.map(\.partition)) }

    /// Starts restoring both stores of `partition`. `committedInput` is the group's committed offset
    /// (KafkaOffset.invalid when none: then every changelog record is uncommitted work and skipped).
    func start(partition: Int32, committedInput: Int64) throws {
        var offsets: [TopicPartition: Int64] = [:]
        for kind in StoreKind.allCases {
            guard let topic = topics[kind] else { continue }
            let store = stores[kind]
            let checkpoint = store.checkpoint(partition: partition)
            var start = KafkaOffset.beginning
            if let checkpoint, committedInput >= 0, checkpoint.inputOffset <= committedInput {
                start = checkpoint.changelogOffset
            } else if checkpoint != nil || store.count(partition: partition) > 0 {
                logger.warning(
                    "local store ahead of committed offsets or unusable; wiping for a full restore",
                    metadata: [
                        "store": "\(kind.name)", "partition": "\(partition)",
                        "checkpoint": "\(checkpoint.map { "\($0.inputOffset)/\($0.changelogOffset)" } ?? "none")",
                        "committed": "\(committedInput)",
                    ])
                try store.wipe(partition: partition)
            }
            let tp = TopicPartition(topic, partition)
            tasks[tp] = Task(
                topic: topic, store: kind, partition: partition, start: start, committedInput: committedInput)
            offsets[tp] = start
            logger.info(
                "restore started",
                metadata: [
                    "store": "\(kind.name)", "partition": "\(partition)", "from": "\(start)",
                    "committedInput": "\(committedInput)",
                ])
        }
        try consumer.assign(offsets)
    }

    /// Stops restoring a partition (revoked); what was written so far stays, with its checkpoint.
    func cancel(partition: Int32) {
        let gone = tasks.filter { $0.value.partition == partition }
        lastTask = nil
        for (tp, task) in gone {
            tasks.removeValue(forKey: tp)
            do {
                try stores[task.store].commitRestore()
            } catch {
                logger.warning("cannot keep restore progress", metadata: ["topic": "\(tp)", "error": "\(error)"])
            }
        }
        if !gone.isEmpty { try? consumer.unassign(Array(gone.keys)) }
    }

    /// Serves up to `maxEvents` restore records; returns partitions whose stores are now all restored.
    /// Records are borrowed from librdkafka (no copies) and their values are never decoded: they go straight
    /// into each store's restore transaction, which is committed with the checkpoints when full, at a
    /// partition's end, and by the periodic store sync.
    func poll(maxEvents: Int, timeoutMs: Int32) throws -> [Int32] {
        var finished: [Int32] = []
        var served = 0
        while served < maxEvents, !tasks.isEmpty {
            let n = try consumer.pollBatch(
                max: min(1_000, maxEvents - served), timeoutMs: served == 0 ? timeoutMs : 0,
                header: ChangelogHeader.inputOffset, onRecord: { record in try apply(record) },
                onEvent: { event in
                    switch event {
                    case .record:
                        break
                    case .partitionEOF(let tp, let offset):
                        if let p = try finish(tp, endOffset: offset) { finished.append(p) }
                    case .error(let error):
                        if error.kind == .fatal { throw error }
                        logger.warning("restore consumer error", metadata: ["error": "\(error)"])
                    }
                })
            if n == 0 { break }
            served += n
        }
        finished += try unstick()
        return finished
    }

    /// After a broker restart the partition-EOF event of a changelog partition was seen never to come (the
    /// restore then hung: "partition N is restoring" for minutes). A task without progress for its patience
    /// (5 s, doubled after each restart) is finished if the fetch's high watermark says it is at the end, else
    /// its fetch is started again at its position (unassign + assign); nothing is skipped either way.
    private func unstick() throws -> [Int32] {
        let now = ContinuousClock.now
        var finished: [Int32] = []
        for (tp, task) in tasks where now - task.lastProgress > task.patience {
            task.lastProgress = now
            let position = max(task.start, task.lastOffset + 1)
            if let hw = consumer.cachedWatermarks(tp), task.start >= 0 || task.lastOffset >= 0, position >= hw.high {
                logger.info(
                    "restore at the high watermark without an end-of-partition event; finishing",
                    metadata: ["topic": "\(tp)", "position": "\(position)", "high": "\(hw.high)"])
                if let p = try finish(tp, endOffset: hw.high) { finished.append(p) }
            } else {
                logger.warning(
                    "restore made no progress; restarting its fetch",
                    metadata: ["topic": "\(tp)", "position": "\(position)"])
                try consumer.unassign([tp])
                try consumer.assign([tp: task.lastOffset >= 0 ? task.lastOffset + 1 : task.start])
                task.patience = min(task.patience * 2, Self.longestPatience)
            }
        }
        return finished
    }

    private static let firstPatience = Duration.seconds(5)
    private static let longestPatience = Duration.seconds(60)

    private func apply(_ record: ConsumedRecord) throws {
        let task: Task
        if let last = lastTask, last.partition == record.partition, last.topic == record.topic {
            task = last
        } else {
            guard let found = tasks[TopicPartition(record.topic, record.partition)] else { return }
            task = found
            lastTask = found
        }
        task.lastOffset = record.offset
        task.lastProgress = ContinuousClock.now
        task.patience = Self.firstPatience
        let store = stores[task.store]
        let checkpoint = task.checkpoint(changelogOffset: record.offset + 1)
        let derivedFrom = record.header.flatMap(ChangelogHeader.decode)
        let committed = task.committedInput
        if let key = record.key, let value = record.value,
            committed >= 0, derivedFrom.map({ $0 < committed }) ?? true
        {
            try store.restorePut(partition: record.partition, key: key, value: value, checkpoint: checkpoint)
            task.applied += 1
        } else {
            store.restoreAdvance(partition: record.partition, checkpoint: checkpoint)
            task.skipped += 1
        }
        task.unreported += 1
        if task.unreported >= reportEvery { report(task, TopicPartition(task.topic, task.partition)) }
    }

    private func report(_ task: Task, _ tp: TopicPartition) {
        metrics.restored(store: task.store.name).increment(by: Int64(task.unreported))
        task.unreported = 0
        if let hw = consumer.cachedWatermarks(tp) {
            metrics.restoreRemaining(store: task.store.name, partition: task.partition)
                .record(max(0, hw.high - task.lastOffset - 1))
        }
    }

    /// End of a changelog partition: commit the rest with the checkpoint; returns the partition when all its
    /// stores are done.
    private func finish(_ tp: TopicPartition, endOffset: Int64) throws -> Int32? {
        guard let task = tasks[tp] else { return nil }
        let store = stores[task.store]
        if task.start >= 0, endOffset < task.start {
            // The log ends before our checkpoint: the broker lost data (e.g. a new memory broker). Start over.
            logger.warning(
                "changelog ends before the local checkpoint; wiping for a full restore",
                metadata: ["topic": "\(tp)", "end": "\(endOffset)", "checkpoint": "\(task.start)"])
            try store.wipe(partition: task.partition)
            tasks[tp] = Task(
                topic: task.topic, store: task.store, partition: task.partition, start: KafkaOffset.beginning,
                committedInput: task.committedInput)
            lastTask = nil
            try consumer.unassign([tp])
            try consumer.assign([tp: KafkaOffset.beginning])
            return nil
        }
        store.restoreAdvance(
            partition: task.partition, checkpoint: task.checkpoint(changelogOffset: max(endOffset, task.lastOffset + 1))
        )
        try store.commitRestore()
        report(task, tp)
        tasks.removeValue(forKey: tp)
        lastTask = nil
        try consumer.unassign([tp])
        metrics.restoreRemaining(store: task.store.name, partition: task.partition).record(0)
        logger.info(
            "restore finished",
            metadata: [
                "store": "\(task.store.name)", "partition": "\(task.partition)", "applied": "\(task.applied)",
                "skipped": "\(task.skipped)", "end": "\(endOffset)",
            ])
        let stillRestoring = tasks.values.contains { $0.partition == task.partition }
        return stillRestoring ? nil : task.partition
    }
}
