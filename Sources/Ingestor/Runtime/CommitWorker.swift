// The commit thread: produces a finished epoch's aggregates and dead letters and commits the epoch to Kafka,
// while the stream thread goes on folding the next epoch into the record cache.
import Logging
import Shared
import Synchronization

/// What one commit epoch hands to Kafka, collected on the stream thread.
struct EpochWork: Sendable {
    /// A record that could not be processed, owned (the consumer's buffers are gone by commit time).
    struct DeadLetter: Sendable {
        var partition: Int32?
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [KafkaHeader]
    }

    var epoch: UInt64
    /// The input's next offsets to commit with the epoch.
    var offsets: [TopicPartition: Int64] = [:]
    /// The aggregates to produce, encoded (the commit thread puts them in store order); each input offset is
    /// the max folded into its aggregate (the changelog header).
    var chaser = EncodedUpdates()
    var billing = EncodedUpdates()
    var deadLetters: [DeadLetter] = []
    /// Partitions whose checkpoints advance once the epoch is committed.
    var partitions = Set<Int32>()
    /// Those partitions' committed offsets and checkpoints (per `StoreKind.rawValue`) before this epoch.
    var committedBefore: [Int32: Int64] = [:]
    var checkpointsBefore: [Int32: [Checkpoint?]] = [:]
    var started = ContinuousClock.now

    func updates(_ store: StoreKind) -> EncodedUpdates {
        switch store {
        case .chaser: chaser
        case .billing: billing
        }
    }

    var isEmpty: Bool { offsets.isEmpty && chaser.isEmpty && billing.isEmpty && deadLetters.isEmpty }
}

/// An epoch Kafka and the local store both have: the stream thread's bookkeeping follows.
struct CommittedEpoch: Sendable {
    var epoch: UInt64
    var offsets: [TopicPartition: Int64]
    /// The checkpoints written with the values, per partition and `StoreKind.rawValue`.
    var checkpoints: [Int32: [Checkpoint]]
    var started: ContinuousClock.Instant
}

/// Owns the producer (transactions, produce, delivery reports) and the local stores' epoch writes on its own
/// thread, named "commit". The stream thread calls `submit`, `outcome` and `awaitOutcome`; one job runs at a
/// time, so every producer call and the delivery tracker belong to the commit thread. Epochs
/// are committed in order: Kafka first, then the local store, so the store is never ahead of the offsets.
final class CommitWorker: @unchecked Sendable {
    enum Job: Sendable {
        case commit(EpochWork)
        /// Abort the open transaction (exactly_once_v2) after a failed epoch.
        case abort
        /// Deliver everything enqueued (shutdown).
        case flush
        case stop
    }

    private struct Slot {
        var job: Job?
        var running = false
        var outcome: Result<CommittedEpoch?, any Error>?
    }

    private let slot = Monitor(Slot())
    private let settings: StreamSettings
    private let producer: KafkaProducer
    private let tracker: DeliveryTracker
    private let consumer: KafkaConsumer
    private let stores: StateStores
    private let logger: Logger
    /// (output, changelog) topic handles by `StoreKind.rawValue`.
    private let topics: [(ProducerTopic, ProducerTopic)]
    private var transactionOpen = false
    /// Set once by `start` (stream thread), before any job.
    private var thread: JoinableThread?
    /// Set by the stream thread to make a retrying job give up (shutdown with the broker away).
    private let cancelled = Atomic<Bool>(false)
    /// When the librdkafka call running now started (nil between calls): read by the stream thread, because
    /// some calls block past their own timeout (send_offsets_to_transaction waited without end for a
    /// TxnOffsetCommit answer after a tansu restart).
    private let callStarted = Mutex<ContinuousClock.Instant?>(nil)

    init(
        settings: StreamSettings, metrics: IngestorMetrics, consumer: KafkaConsumer,
        stores: StateStores, logger: Logger
    ) throws {
        self.stores = stores
        self.settings = settings
        let tracker = DeliveryTracker(metrics: metrics)
        self.tracker = tracker
        let producer = try KafkaProducer(properties: settings.producerProperties) { tracker.delivered($0) }
        self.producer = producer
        self.consumer = consumer
        self.logger = logger
        topics = try StoreKind.allCases.map { store in
            (
                try producer.topic(settings.outputTopics[store] ?? store.name),
                try producer.topic(settings.changelogTopics[store] ?? "\(store.name)-changelog")
            )
        }
    }

    /// Initialises transactions (exactly_once_v2) on the calling thread, then starts the commit thread, which
    /// owns the producer from then on.
    func start() throws {
        if settings.exactlyOnce {
            try retrying("init_transactions") { () throws(KafkaError) in
                try producer.initTransactions(timeoutMs: 30_000)
            }
        }
        guard let thread = OSThread.start(name: "commit", { [self] in loop() }) else {
            throw KafkaError(config: "cannot start the commit thread")
        }
        self.thread = thread
    }

    /// Ends the commit thread and waits for it, so the producer and the consumer are destroyed by the stream
    /// thread that drops the worker, before the process exits, never by a thread the exit races with. Only
    /// when no job runs: a job stuck in librdkafka would keep the caller here.
    func stopAndJoin() {
        submit(.stop)
        thread?.join()
    }

    // MARK: stream thread side

    /// True from `submit` until the outcome is taken.
    var isBusy: Bool { slot.withLock { $0.job != nil || $0.running || $0.outcome != nil } }

    /// True once the submitted job has finished and its outcome waits to be taken.
    var hasOutcome: Bool { slot.withLock { $0.outcome != nil } }

    /// Hands a job over; the previous outcome must have been taken.
    func submit(_ job: Job) {
        slot.withLock { $0.job = job }
    }

    /// The finished job's outcome, if it has finished (taking it frees the worker for the next job).
    func outcome() -> Result<CommittedEpoch?, any Error>? {
        slot.withLock { s in
            defer { s.outcome = nil }
            return s.outcome
        }
    }

    /// Waits up to `timeoutMs` for the submitted job's outcome (nil when nothing was submitted or on timeout;
    /// `isBusy` tells which). librdkafka's transactional calls can block past their own timeouts, so the stream
    /// thread never waits here without a bound.
    func awaitOutcome(timeoutMs: Int) -> Result<CommittedEpoch?, any Error>? {
        if !isBusy { return nil }
        return slot.wait(timeoutMs: timeoutMs) { s in
            guard let outcome = s.outcome else { return nil }
            s.outcome = nil
            return outcome
        }
    }

    /// Makes the running job stop retrying and fail (shutdown): what it had not committed is replayed by the
    /// next start, so state stays exact.
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// How long the librdkafka call running on the commit thread has been running, if one is.
    var currentCall: Duration? { callStarted.withLock { $0.map { ContinuousClock.now - $0 } } }

    // MARK: commit thread

    private func loop() {
        while true {
            let job = slot.wait(timeoutMs: 100) { s -> Job? in
                guard let job = s.job else { return nil }
                s.job = nil
                s.running = true
                return job
            }
            guard let job else {
                // Idle: serve librdkafka's error and statistics callbacks.
                producer.poll(timeoutMs: 0)
                continue
            }
            if case .stop = job {
                slot.withLock { $0.running = false }
                return
            }
            let outcome = Result { () throws -> CommittedEpoch? in try execute(job) }
            slot.withLock {
                $0.running = false
                $0.outcome = outcome
            }
        }
    }

    private func execute(_ job: Job) throws -> CommittedEpoch? {
        switch job {
        case .commit(let work): return try commit(work)
        case .abort:
            try abort()
            return nil
        case .flush:
            try producer.flush(timeoutMs: 2_000)
            return nil
        case .stop: return nil
        }
    }

    /// Produces the epoch and commits it to Kafka; its values enter the local stores' write transactions
    /// meanwhile (while Kafka acknowledges) and are committed with the checkpoints only once Kafka has the epoch.
    private func commit(_ work: EpochWork) throws -> CommittedEpoch {
        tracker.reset()
        let writes = StoreKind.allCases.map { _ in LMDBStore.EpochWrite() }
        do {
            return try commit(work, writes)
        } catch {
            for kind in StoreKind.allCases { stores[kind].abort(writes[kind.rawValue]) }
            throw error
        }
    }

    private func commit(_ work: EpochWork, _ writes: [LMDBStore.EpochWrite]) throws -> CommittedEpoch {
        // Sorted here rather than on the stream thread: at a million keys that thread is the busier one.
        var work = work
        work.chaser.orderForStore()
        work.billing.orderForStore()
        if settings.exactlyOnce, !transactionOpen {
            try producer.beginTransaction()
            transactionOpen = true
        }
        for letter in work.deadLetters {
            try producer.produce(
                topic: settings.deadLetterTopic, partition: letter.partition, key: letter.key, value: letter.value,
                headers: letter.headers)
        }
        // Every record first, so the broker works on them while this thread writes LMDB.
        for kind in StoreKind.allCases { try produce(kind, work.updates(kind)) }
        for kind in StoreKind.allCases { try put(kind, work.updates(kind), into: writes[kind.rawValue]) }
        if settings.exactlyOnce {
            if !work.offsets.isEmpty {
                try retrying("send_offsets_to_transaction") { () throws(KafkaError) in
                    try producer.sendOffsetsToTransaction(
                        work.offsets, consumer: consumer, timeoutMs: settings.kafkaCallTimeoutMs)
                }
            }
            // A timed-out commit is retriable: calling it again resumes the same commit (librdkafka's contract).
            try retrying("commit_transaction") { () throws(KafkaError) in
                try producer.commitTransaction(timeoutMs: settings.kafkaCallTimeoutMs)
            }
            transactionOpen = false
        } else {
            try retrying("flush") { () throws(KafkaError) in
                try producer.flush(timeoutMs: settings.kafkaCallTimeoutMs)
            }
            if let failure = tracker.failure { throw failure.asAbortable }
            do {
                try consumer.commit(work.offsets, timeoutMs: settings.kafkaCallTimeoutMs)
            } catch {
                throw error.asAbortable
            }
        }
        if let failure = tracker.failure { throw failure.asAbortable }
        // Kafka has the epoch: the local store commits it, values and checkpoints in one LMDB txn per store.
        var checkpoints: [Int32: [Checkpoint]] = [:]
        var storeCheckpoints = Array(repeating: [Int32: Checkpoint](), count: StoreKind.allCases.count)
        for p in work.partitions {
            guard let before = work.checkpointsBefore[p] else { continue }
            let committed =
                work.offsets[TopicPartition(settings.inputTopic, p)] ?? work.committedBefore[p] ?? KafkaOffset.invalid
            checkpoints[p] = StoreKind.allCases.map { kind in
                var checkpoint = before[kind.rawValue] ?? Checkpoint(inputOffset: 0, changelogOffset: 0)
                checkpoint.inputOffset = max(committed, 0)
                // Never back: librdkafka counts a retry the broker answered DUPLICATE_SEQUENCE_NUMBER as delivered
                // with invalid offsets (-1, 0, 1, ...), which once moved a checkpoint from 729 to 2 (chaos run,
                // black-holed link) and made the next restore read the whole changelog.
                if let high = tracker.changelogHigh[kind.rawValue][p] {
                    checkpoint.changelogOffset = max(checkpoint.changelogOffset, high + 1)
                }
                storeCheckpoints[kind.rawValue][p] = checkpoint
                return checkpoint
            }
        }
        for kind in StoreKind.allCases {
            try stores[kind].commit(writes[kind.rawValue], checkpoints: storeCheckpoints[kind.rawValue])
        }
        tracker.flushCounters()
        return CommittedEpoch(epoch: work.epoch, offsets: work.offsets, checkpoints: checkpoints, started: work.started)
    }

    /// Produces a store's updates to its output topic, one batch per partition, and to its changelog (same
    /// partition as the input; one call per record, for the input-offset header).
    private func produce(_ store: StoreKind, _ updates: EncodedUpdates) throws {
        let (output, changelog) = topics[store.rawValue]
        try updates.visitPartitionRuns { partition, keys, values, inputOffsets in
            try producer.produceBatch(output, partition: partition, keys: keys, values: values)
            let tag = DeliveryTracker.tag(store: store, partition: partition)
            for i in keys.indices {
                var digits = DecimalDigits(inputOffsets[i])
                try digits.withBytes { (header) throws(KafkaError) in
                    try producer.produce(
                        changelog, partition: partition, key: keys[i], value: values[i],
                        header: (ChangelogHeader.inputOffset, header), tag: tag)
                }
            }
        }
    }

    /// Puts a store's updates into its epoch write (committed once Kafka has the epoch).
    private func put(_ store: StoreKind, _ updates: EncodedUpdates, into write: LMDBStore.EpochWrite) throws {
        try updates.visit { key, _, value in
            try key.withBytes { k in try stores[store].put(write, partition: key.partition, key: k, value: value) }
        }
    }

    /// Aborts the open transaction. A timeout (broker away) is retriable and retried until the job's deadline;
    /// an abort that cannot complete is fatal: the process exits and the restart restores exact state.
    private func abort() throws {
        tracker.reset()
        guard settings.exactlyOnce, transactionOpen else { return }
        do {
            try retrying("abort_transaction") { () throws(KafkaError) in
                try producer.abortTransaction(timeoutMs: settings.kafkaCallTimeoutMs)
            }
            transactionOpen = false
        } catch {
            if error.kind == .fatal { throw error }
            logger.error("abort_transaction failed", metadata: ["error": "\(error)"])
            throw KafkaError(
                code: error.code, name: error.name, message: error.message, kind: .fatal, operation: error.operation)
        }
    }

    /// Retries `body` while it fails with a retriable error, each call bounded by `kafkaCallTimeoutMs`, until
    /// `commitDeadline` has passed since the job started (then the last error is rethrown as fatal: the process
    /// restarts with exact state) or the job is cancelled. Anything else is rethrown at once.
    private func retrying(_ what: String, _ body: () throws(KafkaError) -> Void) throws(KafkaError) {
        var attempt = 0
        let started = ContinuousClock.now
        while true {
            do {
                callStarted.withLock { $0 = ContinuousClock.now }
                defer { callStarted.withLock { $0 = nil } }
                try body()
                return
            } catch  where error.kind == .retriable {
                attempt += 1
                if cancelled.load(ordering: .relaxed) {
                    throw KafkaError(
                        code: error.code, name: error.name, message: "cancelled at shutdown: \(error.message)",
                        kind: .fatal, operation: error.operation)
                }
                if ContinuousClock.now - started > settings.commitDeadline {
                    throw KafkaError(
                        code: error.code, name: error.name,
                        message: "still failing after \(settings.commitDeadline): \(error.message)", kind: .fatal,
                        operation: error.operation)
                }
                logger.warning(
                    "retrying", metadata: ["operation": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                producer.poll(timeoutMs: Int32(min(1_000, 50 * attempt)))
            }
        }
    }
}

extension KafkaError {
    /// The same failure, marked abortable: the epoch is aborted and its input consumed again.
    var asAbortable: KafkaError {
        KafkaError(code: code, name: name, message: message, kind: .abortable, operation: operation)
    }
}
