// The consume → process → record cache → commit loop (Kafka Streams' StreamThread + TaskManager in one).
import Logging
import Shared

/// The group took partitions away without a revoke (session timed out): their work cannot be committed.
struct PartitionsLost: Error, CustomStringConvertible {
    var partitions: [Int32]
    var description: String { "partitions lost (session timed out): \(partitions.sorted())" }
}

/// A commit or abort ran past `StreamSettings.commitDeadline`: fatal, the process restarts with exact state.
struct CommitStuck: Error, CustomStringConvertible {
    var seconds: Int64
    var description: String { "a commit/abort has not finished after \(seconds) s; exiting for a restart" }
}

/// Stop was requested while the stream thread waited for the commit thread: go to the bounded shutdown.
struct StopRequested: Error {}

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

    /// Notes a record at `offset` as processed; false when the task is restoring (fetched before the pause
    /// took effect: the record is dropped and the partition seeks back on activation). Mutating, so
    /// `tasks.values[t].consume(...)` works in place: reading a field through `values[t]` copies the whole task.
    mutating func consume(offset: Int64) -> Bool {
        guard active else {
            needsSeek = true
            return false
        }
        if firstSeen == nil, committed < 0 { firstSeen = offset }
        consumedNext = offset + 1
        return true
    }
}

/// The loop. Bound to the stream thread: everything here runs on it (rebalance callbacks included, they
/// run inside `consumer.poll`), except `StreamThread.requestStop` and what it hands to the `CommitWorker`.
final class StreamLoop: RebalanceListener {
    private let settings: StreamSettings
    private let stores: StateStores
    private let registry: PartitionRegistry
    private let metrics: IngestorMetrics
    private let logger: Logger
    private let codec: FastEventCodec
    /// Folds events into the record cache's encoded aggregates.
    private var folder: EncodedAggregateFolder
    private var consumer: KafkaConsumer?
    /// Runs the Kafka side of each commit on the commit thread (made in `start`, once the consumer exists).
    private var worker: CommitWorker?
    private let restorer: ChangelogRestorer
    private let partitionCount: Int32
    private let dlqPartitions: Int32

    private var tasks: [Int32: PartitionTask] = [:]
    /// The record cache: latest aggregate per (partition, key), dirty or already produced.
    private var chaserCache: [CacheKey: CachedAggregate] = [:]
    private var billingCache: [CacheKey: CachedAggregate] = [:]
    /// Produced keys, oldest first: what eviction takes.
    private var produced = ProductionOrder()
    /// Evicted aggregates' buffers for the next misses: at most what one commit's eviction frees.
    private var spare: SpareBuffers
    /// How many cached entries changed since the last commit produced them (their `dirty` flag is set): the
    /// commit finds them by scanning the dictionaries, which costs no hashing per key.
    private var chaserDirty = 0
    private var billingDirty = 0
    /// The epoch collecting work now (the next commit's); `persistedEpoch` is the last one LMDB has.
    private var epoch: UInt64 = 1
    private var persistedEpoch: UInt64 = 0
    /// Dead letters and (cacheMaxEntries 0) every update of the collecting epoch; the commit adds the dirty keys.
    private var collecting = EpochWork(epoch: 1)
    /// Mean encoded aggregate size per store (`StoreKind.rawValue`) in the last epoch: sizes the next buffer.
    private var valueSizes = StoreKind.allCases.map { _ in 160 }
    /// An epoch is with the commit worker; consumption goes on meanwhile, into the cache.
    private var inFlight = false
    /// Metric increments summed per polled batch (one atomic update per batch, not per record).
    private var counted = (consumed: 0, chasers: 0, aggregations: 0, lastTTL: Int64?.none, misses: 0, evictions: 0)
    /// An error raised inside a rebalance callback (C cannot propagate it); rethrown after poll.
    private var callbackError: (any Error)?
    private let clock = ContinuousClock()
    private var lastStatsUpdate = ContinuousClock.now
    /// When the commit thread's current job (commit or abort) was handed over: bounded by commitDeadline.
    private var jobStarted = ContinuousClock.now
    private var stopRequested: () -> Bool = { false }
    /// Set by `shutdown`: revokes inside the close neither commit nor wait (the final commit already ran).
    private var shuttingDown = false
    private let broker: BrokerLink

    init(
        settings: StreamSettings, stores: StateStores, registry: PartitionRegistry, metrics: IngestorMetrics,
        codec: FastEventCodec, partitionCount: Int32, dlqPartitions: Int32,
        logger: Logger
    ) throws {
        self.settings = settings
        self.stores = stores
        self.registry = registry
        self.metrics = metrics
        self.codec = codec
        folder = EncodedAggregateFolder(codec: codec)
        self.partitionCount = partitionCount
        self.dlqPartitions = dlqPartitions
        self.logger = logger
        broker = BrokerLink(registry: registry, metrics: metrics, logger: logger)
        spare = SpareBuffers(limit: settings.epochBound)
        restorer = try ChangelogRestorer(
            properties: settings.restoreProperties, stores: stores, topics: settings.changelogTopics,
            metrics: metrics, logger: logger)
    }

    // MARK: start-up and the loop

    func start() throws {
        let consumer = try KafkaConsumer(
            properties: settings.consumerProperties, listener: self,
            onStats: { [metrics] stats in
                for s in stats { metrics.lag(topic: s.topic, partition: s.partition).record(s.lag) }
            },
            onBrokerState: { [weak self] up in self?.broker.seen(reachable: up, why: "statistics") }, logger: logger)
        self.consumer = consumer
        let worker = try CommitWorker(
            settings: settings, metrics: metrics, consumer: consumer, stores: stores,
            logger: logger)
        try worker.start()
        self.worker = worker
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
    func run(shouldStop: @escaping () -> Bool) throws {
        guard let consumer else { return }
        stopRequested = shouldStop
        let interval = Duration.milliseconds(settings.commitIntervalMs)
        var nextCommit = clock.now + interval
        while !shouldStop() {
            do {
                // LMDB has one writer: an epoch in flight holds its write transaction until Kafka answers, so the
                // restore (which writes) waits for it instead of blocking on LMDB's lock (that deadlocked the
                // stream thread while a commit hung after a broker restart: "partition N is restoring" forever).
                if !restorer.isIdle, !inFlight {
                    for p in try restorer.poll(maxEvents: 5_000, timeoutMs: 10) { try activate(p) }
                }
                let untilCommit = max(0, (nextCommit - clock.now) / .milliseconds(1))
                // While a commit is in flight, come back soon to notice its completion.
                let idleWait = inFlight ? 2 : 100
                let timeout = Int32(restorer.isIdle ? min(Double(idleWait), untilCommit) : 0)
                var served = 0
                var batches = 0
                while served < 5_000, !cacheFull {
                    let n = try consumer.pollBatch(
                        max: min(settings.pollBatchSize, cacheRoom), timeoutMs: batches == 0 ? timeout : 0,
                        onRecord: { record in try process(record) }, onEvent: { event in try handle(event) })
                    flushCounters()
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
                if inFlight { try finishInFlight(wait: false) }
                // A commit falls due while the previous epoch is still in flight: keep folding (the epoch just
                // grows) unless the cache is full.
                if clock.now >= nextCommit || cacheFull, try commit(wait: cacheFull) {
                    nextCommit = clock.now + interval
                }
                periodicStats()
            } catch let error as KafkaError where error.kind == .abortable || error.kind == .retriable {
                do {
                    try abortAndRewind(because: error)
                } catch is StopRequested {
                    return
                }
            } catch is StopRequested {
                return
            }
        }
    }

    /// Graceful end within `shutdownBudget`: finish the in-flight epoch and commit the collecting one (or abort),
    /// leave the group, flush, sync the stores. What cannot finish in time (the broker is away) is abandoned:
    /// the local store never took it, so the next start replays it and state stays exact.
    func shutdown() {
        let end = clock.now + settings.shutdownBudget
        func left() -> Duration { max(.zero, end - clock.now) }
        var abandoned = false
        do {
            if inFlight, try !finishInFlight(wait: true, limit: left()) { abandoned = true }
            if !abandoned {
                try commit(wait: false)
                if inFlight, try !finishInFlight(wait: true, limit: left()) { abandoned = true }
            }
        } catch {
            logger.warning("final commit failed; aborting", metadata: ["error": "\(error)"])
            inFlight = false
            if let worker, !worker.isBusy {
                worker.submit(.abort)
                jobStarted = clock.now
                if case .timedOut = (try? awaitWorker(limit: left())) ?? .timedOut { abandoned = true }
            } else {
                abandoned = true
            }
        }
        if abandoned {
            worker?.cancel()
            logger.warning(
                "final commit did not finish within the shutdown budget; abandoned (the next start replays it)",
                metadata: ["budget": "\(settings.shutdownBudget)"])
        }
        shuttingDown = true
        registry.update {
            $0.running = false
            $0.joinedGroup = false
        }
        consumer?.close(timeoutMs: max(1_000, Int(left() / .milliseconds(1))))
        if let worker, !abandoned {
            for job in [CommitWorker.Job.abort, .flush] {
                worker.submit(job)
                jobStarted = clock.now
                if case .timedOut = (try? awaitWorker(limit: .seconds(3))) ?? .timedOut {
                    abandoned = true
                    break
                }
            }
        }
        // A job still running may be stuck in librdkafka: then the exit ends the commit thread.
        if abandoned { worker?.submit(.stop) } else { worker?.stopAndJoin() }
        stores.syncAll()
        logger.info("stream thread stopped")
    }

    /// The collecting epoch holds as much as one epoch may: dirty keys plus what it already took (every update
    /// when cacheMaxEntries is 0, dead letters), bounded by `settings.epochBound`. Past this the
    /// stream thread commits, waiting for the commit thread if it must: back-pressure instead of growth.
    private var cacheFull: Bool { cacheRoom == 0 }

    /// Records the collecting epoch can still take before it is full (each record adds at most one entry): a
    /// poll batch never takes more, so the bound holds to the record, not to a batch of 1,000.
    private var cacheRoom: Int {
        let waiting =
            chaserDirty + billingDirty + collecting.chaser.count + collecting.billing.count
            + collecting.deadLetters.count
        return max(0, settings.epochBound - waiting)
    }

    private func handle(_ event: ConsumerEvent) throws {
        switch event {
        case .record, .partitionEOF:
            break
        case .error(let error):
            if error.kind == .fatal { throw consumer?.fatalError ?? error }
            if error.meansBrokersDown { broker.seen(reachable: false, why: "all brokers down") }
            logger.warning("consumer error", metadata: ["error": "\(error)"])
        }
    }

    // MARK: processing

    private func process(_ record: ConsumedRecord) throws {
        // In place, one lookup: copying the task out and back cost 7% of the stream thread at a million keys.
        guard let t = tasks.index(forKey: record.partition), tasks.values[t].consume(offset: record.offset) else {
            return
        }
        counted.consumed += 1

        guard let key = record.key else {
            deadLetter(record, reason: "null-key", detail: "record has no key")
            return
        }
        if let refused = StoreLimits.refusal(keyBytes: key.count) {
            deadLetter(record, reason: refused.reason, detail: refused.detail)
            return
        }
        let event: InputEvent
        do {
            event = try codec.decodeInput(record.value ?? UnsafeRawBufferPointer(start: nil, count: 0))
        } catch {
            deadLetter(record, reason: error.reason, detail: error.detail)
            return
        }
        let cacheKey = CacheKey(partition: record.partition, bytes: key)
        let offset = record.offset
        var missed = false
        // A miss past the bound evicts one entry now, whose buffer the next miss takes, instead of waiting for the
        // bulk eviction after the next commit.
        defer { if missed, cacheExcess > 0 { evictOne() } }
        switch event {
        case .chaser(let chaser):
            counted.chasers += 1
            counted.lastTTL = chaser.ttl
            missed = fold(&chaserCache, &chaserDirty, key: cacheKey, offset: offset) {
                load(.chaser, cacheKey)
            } apply: { value in
                do {
                    try folder.fold(&value, chaser)
                } catch {
                    value = startOver(.chaser, cacheKey, error)
                    try? folder.fold(&value, chaser)  // the empty aggregate's own encoding: always readable
                }
            }
            if settings.cacheMaxEntries == 0 { emitNow(.chaser, cacheKey) }
        case .bill, .paymentRequest, .paymentFailed:
            counted.aggregations += 1
            var firstBill = false
            missed = fold(&billingCache, &billingDirty, key: cacheKey, offset: offset) {
                load(.billing, cacheKey)
            } apply: { value in
                do {
                    firstBill = try folder.fold(&value, event)
                } catch {
                    value = startOver(.billing, cacheKey, error)
                    firstBill = (try? folder.fold(&value, event)) ?? false  // always readable, as above
                }
            }
            if firstBill { metrics.billingCustomerBills.increment() }
            if settings.cacheMaxEntries == 0 { emitNow(.billing, cacheKey) }
        }
    }

    /// Folds one event into the cached aggregate of `key` (loaded from LMDB on a miss: one hash lookup either
    /// way) and marks it dirty. Returns true on a miss.
    private func fold(
        _ cache: inout [CacheKey: CachedAggregate], _ dirty: inout Int, key: CacheKey, offset: Int64,
        load: () -> [UInt8], apply: (inout [UInt8]) -> Void
    ) -> Bool {
        var missed = false
        func loaded() -> CachedAggregate {
            missed = true
            return CachedAggregate(encoded: load(), inputOffset: offset, dirty: false, epoch: 0)
        }
        func update(_ entry: inout CachedAggregate) {
            apply(&entry.encoded)
            entry.inputOffset = offset
            if !entry.dirty {
                entry.dirty = true
                dirty += 1
            }
        }
        update(&cache[key, default: loaded()])
        return missed
    }

    /// Publishes the per-batch metric sums.
    private func flushCounters() {
        // Before records_consumed_total: a reader that saw N consumed sees their cache hits and misses too. Every
        // folded record (a chaser or a billing event) is a hit unless its aggregate had to be loaded.
        let hits = counted.chasers + counted.aggregations - counted.misses
        if hits > 0 { metrics.cacheHits.increment(by: hits) }
        if counted.misses > 0 { metrics.cacheMisses.increment(by: counted.misses) }
        if counted.consumed > 0 {
            metrics.recordsConsumed.increment(by: counted.consumed)
            broker.seen(reachable: true, why: "records")
        }
        if counted.chasers > 0 { metrics.chaserReceived.increment(by: counted.chasers) }
        if let ttl = counted.lastTTL { metrics.chaserTTL.record(ttl) }
        if counted.aggregations > 0 { metrics.billingAggregations.increment(by: counted.aggregations) }
        if counted.evictions > 0 { metrics.cacheEvictions.increment(by: counted.evictions) }
        counted = (0, 0, 0, nil, 0, 0)
    }

    /// The stored aggregate of `key` (its bytes, copied), or the empty one when the store has none. The copy has
    /// room for what the next events usually add (a bill or a payment request is ~64 bytes), so the folds that
    /// follow seldom reallocate it.
    private func load(_ store: StoreKind, _ key: CacheKey) -> [UInt8] {
        counted.misses += 1
        var value = spare.take(store)  // empty: an evicted entry's buffer, or a new one
        func copy(_ raw: UnsafeRawBufferPointer) -> [UInt8] {
            value.reserveCapacity(raw.count + (store == .chaser ? 32 : 160))
            value.append(contentsOf: raw)
            return value
        }
        let stored = key.withBytes { bytes in stores[store].writerGet(partition: key.partition, key: bytes, copy) }
        return stored ?? folder.empty(store).withUnsafeBytes(copy)
    }

    /// A stored aggregate that cannot be read: logged, and the key starts over from the empty aggregate.
    private func startOver(_ store: StoreKind, _ key: CacheKey, _ error: any Error) -> [UInt8] {
        logger.error(
            "undecodable \(store.name) store value; starting over",
            metadata: ["partition": "\(key.partition)", "error": "\(error)"])
        return folder.empty(store)
    }

    /// cacheMaxEntries 0: the key's aggregate joins the collecting epoch at once (every update is emitted).
    private func emitNow(_ store: StoreKind, _ key: CacheKey) {
        switch store {
        case .chaser:
            if let i = chaserCache.index(forKey: key),
                takeDirty(.chaser, &chaserCache, at: i, into: &collecting.chaser)
            {
                chaserDirty -= 1
            }
        case .billing:
            if let i = billingCache.index(forKey: key),
                takeDirty(.billing, &billingCache, at: i, into: &collecting.billing)
            {
                billingDirty -= 1
            }
        }
        collecting.partitions.insert(key.partition)
    }

    /// Copies every dirty aggregate of `cache` into `updates`: a scan of the dictionary's storage, no
    /// hashing (at a million keys nearly every cached entry is dirty at each commit).
    private func takeAllDirty(
        _ store: StoreKind, _ cache: inout [CacheKey: CachedAggregate], _ dirty: inout Int,
        into updates: inout EncodedUpdates, partitions: inout Set<Int32>
    ) {
        guard dirty > 0 else { return }
        // An eighth over the last epoch's mean value size, so the buffer seldom grows once more.
        let size = valueSizes[store.rawValue]
        updates.reserve(dirty, valueSize: size + size / 8)
        var i = cache.startIndex
        while i != cache.endIndex {
            if takeDirty(store, &cache, at: i, into: &updates) {
                partitions.insert(cache.keys[i].partition)
            }
            cache.formIndex(after: &i)
        }
        valueSizes[store.rawValue] = max(16, updates.valueBytes / max(1, updates.count))
        dirty = 0
    }

    /// Appends the cached aggregate at `i` to `updates` if it is dirty, and marks it clean as of the collecting
    /// epoch. It touches no part of `collecting` (the callers hold inout access to it).
    private func takeDirty(
        _ store: StoreKind, _ cache: inout [CacheKey: CachedAggregate],
        at i: Dictionary<CacheKey, CachedAggregate>.Index, into updates: inout EncodedUpdates
    ) -> Bool {
        let key = cache.keys[i]
        // One in-place access: reading a field through `cache.values[i]` copies the whole entry.
        let taken = cache.values[i].takeIfDirty(epoch: epoch) { entry in
            updates.append(key: key, inputOffset: entry.inputOffset) { buffer in
                buffer.append(contentsOf: entry.encoded)
            }
        }
        guard taken else { return false }
        produced.append(store, key, epoch: epoch)
        return true
    }

    /// Keeps a record that cannot be processed for the collecting epoch's dead-letter produce.
    private func deadLetter(_ record: ConsumedRecord, reason: String, detail: String) {
        let headers = [
            KafkaHeader("k8s-micro-dlq-reason", reason),
            KafkaHeader("k8s-micro-dlq-detail", detail),
            KafkaHeader("k8s-micro-origin-topic", record.topic),
            KafkaHeader("k8s-micro-origin-partition", String(record.partition)),
            KafkaHeader("k8s-micro-origin-offset", String(record.offset)),
        ]
        collecting.deadLetters.append(
            EpochWork.DeadLetter(
                partition: record.partition < dlqPartitions ? record.partition : nil, key: record.key.map { Array($0) },
                value: record.value.map { Array($0) }, headers: headers))
        metrics.deadLettered(reason: reason).increment()
        logger.debug(
            "dead-lettered",
            metadata: [
                "reason": "\(reason)", "detail": "\(detail)", "topic": "\(record.topic)",
                "partition": "\(record.partition)", "offset": "\(record.offset)",
            ])
    }

    // MARK: commit

    /// Hands the collecting epoch to the commit worker: the dirty aggregates, the dead letters and the input's
    /// next offsets. Under exactly_once_v2 they form one transaction; under at_least_once the offsets are
    /// committed once every record is acknowledged. Consumption goes on meanwhile (into the cache); the worker
    /// writes values + checkpoints locally only after Kafka has the epoch, so the local store is never ahead
    /// of the committed offsets. Returns false if the previous epoch is still in flight and `wait` is false.
    @discardableResult
    private func commit(wait: Bool) throws -> Bool {
        guard let worker else { return true }
        if inFlight, !wait, !worker.hasOutcome {
            try checkDeadline()
            return false
        }
        // The epoch's aggregates are copied out before waiting for the one in flight: nothing is folded while this
        // thread waits, and the commit thread can start the next epoch at once (it sorts them itself).
        var partitions = collecting.partitions
        takeAllDirty(
            .chaser, &chaserCache, &chaserDirty, into: &collecting.chaser, partitions: &partitions)
        takeAllDirty(
            .billing, &billingCache, &billingDirty, into: &collecting.billing, partitions: &partitions)
        collecting.partitions = partitions
        if inFlight, try !finishInFlight(wait: wait) { return false }
        var offsets: [TopicPartition: Int64] = [:]
        for (p, task) in tasks where task.active {
            if let next = task.consumedNext, next != task.committed {
                offsets[TopicPartition(settings.inputTopic, p)] = next
            }
        }
        collecting.offsets = offsets
        guard !collecting.isEmpty else { return true }
        collecting.partitions.formUnion(offsets.keys.map(\.partition))
        for p in collecting.partitions {
            guard let task = tasks[p] else { continue }
            collecting.committedBefore[p] = task.committed
            collecting.checkpointsBefore[p] = task.checkpoints
        }
        collecting.started = clock.now
        // The epoch's LMDB write must not wait behind an open restore transaction (one writer at a time).
        if !restorer.isIdle { for kind in StoreKind.allCases { try stores[kind].commitRestore() } }
        worker.submit(.commit(collecting))
        jobStarted = clock.now
        inFlight = true
        epoch += 1
        collecting = EpochWork(epoch: epoch)
        return true
    }

    /// Takes the in-flight epoch's outcome if the worker is done (or, with `wait`, once it is, within `limit`
    /// when given): a committed epoch updates offsets and checkpoints here; a failure is rethrown (abortable ones
    /// reach `abortAndRewind`). Returns false if the epoch is still in flight.
    @discardableResult
    private func finishInFlight(wait: Bool, limit: Duration? = nil) throws -> Bool {
        guard inFlight, let worker else { return true }
        let outcome: Result<CommittedEpoch?, any Error>
        if wait {
            // The worker's LMDB write waits for an open restore transaction: never wait for the worker with one.
            for kind in StoreKind.allCases { try stores[kind].commitRestore() }
            switch try awaitWorker(limit: limit) {
            case .done(let result): outcome = result
            case .idle:
                inFlight = false  // nothing was with the worker
                return true
            case .timedOut: return false
            }
        } else {
            guard let result = worker.outcome() else {
                try checkDeadline()
                return false
            }
            outcome = result
        }
        inFlight = false
        if let committed = try outcome.get() { applyCommitted(committed) }
        return true
    }

    private enum WorkerWait {
        case done(Result<CommittedEpoch?, any Error>)
        case idle
        case timedOut
    }

    /// Waits for the commit thread's job in short slices: up to `limit` if given, else until it is done; throws
    /// `CommitStuck` past the commit deadline and, without a limit, `StopRequested` when asked to stop (the
    /// bounded shutdown takes over). librdkafka's transactional calls can block past their own timeouts, so no
    /// wait here is unbounded.
    private func awaitWorker(limit: Duration?) throws -> WorkerWait {
        guard let worker else { return .idle }
        let started = clock.now
        while true {
            if !worker.isBusy { return .idle }
            if let result = worker.awaitOutcome(timeoutMs: 100) { return .done(result) }
            if let limit, clock.now - started >= limit { return .timedOut }
            try checkDeadline()
            if limit == nil, !shuttingDown, stopRequested() { throw StopRequested() }
        }
    }

    /// A job past `commitDeadline`, or one librdkafka call past `callStuckAfter`, is stuck: fatal.
    private func checkDeadline() throws {
        guard let worker, worker.isBusy else { return }
        let running = clock.now - jobStarted
        if running > settings.commitDeadline { throw CommitStuck(seconds: running.components.seconds) }
        if let call = worker.currentCall, call > settings.callStuckAfter {
            throw CommitStuck(seconds: call.components.seconds)
        }
    }

    /// Kafka and the local store have the epoch: offsets and checkpoints follow, the record cache may shrink.
    private func applyCommitted(_ work: CommittedEpoch) {
        for (tp, next) in work.offsets { tasks[tp.partition]?.committed = next }
        for (p, checkpoints) in work.checkpoints { tasks[p]?.checkpoints = checkpoints }
        for kind in StoreKind.allCases { stores[kind].refreshWriterReads() }
        persistedEpoch = work.epoch
        broker.seen(reachable: true, why: "commit")
        evictIfNeeded()
        metrics.commits.increment()
        metrics.commitLatency.recordNanoseconds(Int64((clock.now - work.started) / .nanoseconds(1)))
    }

    /// Keeps the record cache bounded: once it outgrows `hotKeys`, drops the least recently produced clean
    /// entries that LMDB already has, one by one (the dictionaries keep their capacity: the next epoch refills).
    private func evictIfNeeded() {
        var excess = cacheExcess
        while excess > 0, evictOne() { excess -= 1 }
        // Under the bound nothing is popped: drop the stale entries before the order outgrows the cache.
        if produced.count > 2 * (chaserCache.count + billingCache.count) + 4_096 {
            produced.compact { entry in
                switch entry.store {
                case .chaser: chaserCache[entry.key]?.epoch == entry.epoch
                case .billing: billingCache[entry.key]?.epoch == entry.epoch
                }
            }
        }
    }

    /// Cached entries past `hotKeys` (both stores together).
    private var cacheExcess: Int { chaserCache.count + billingCache.count - settings.hotKeys }

    /// Evicts the least recently produced clean entry that LMDB already has; false when there is none.
    @discardableResult
    private func evictOne() -> Bool {
        while let oldest = produced.popOldest(persisted: persistedEpoch) {
            let evicted =
                switch oldest.store {
                case .chaser: Self.evict(&chaserCache, oldest)
                case .billing: Self.evict(&billingCache, oldest)
                }
            if let buffer = evicted {
                spare.give(oldest.store, buffer)
                counted.evictions += 1
                return true
            }
        }
        return false
    }

    /// Removes `entry`'s key if the cache still holds the clean value that entry produced; returns its buffer.
    private static func evict(_ cache: inout [CacheKey: CachedAggregate], _ entry: ProductionOrder.Entry)
        -> [UInt8]?
    {
        guard let i = cache.index(forKey: entry.key), cache.values[i].isClean(since: entry.epoch) else { return nil }
        return cache.remove(at: i).value.encoded
    }

    /// Forgets cached aggregates of partitions leaving this member (another member may change them).
    private func dropCached(partitions: Set<Int32>) {
        guard !partitions.isEmpty else { return }
        chaserCache = chaserCache.filter { !partitions.contains($0.key.partition) }
        billingCache = billingCache.filter { !partitions.contains($0.key.partition) }
        chaserDirty = chaserCache.values.reduce(0) { $0 + ($1.dirty ? 1 : 0) }
        billingDirty = billingCache.values.reduce(0) { $0 + ($1.dirty ? 1 : 0) }
    }

    /// Abortable failure: abort the transaction, drop the cache, seek every partition back to its committed
    /// offset. The local store was never written for that work, so state stays exact. An epoch still in flight
    /// is awaited first: if Kafka took it, the local store takes it too and the rewind starts after it.
    private func abortAndRewind(because error: any Error) throws {
        logger.warning("aborting and rewinding to committed offsets", metadata: ["error": "\(error)"])
        metrics.aborts.increment()
        if inFlight {
            do {
                try finishInFlight(wait: true)
            } catch let error as CommitStuck {
                throw error
            } catch let error as StopRequested {
                throw error
            } catch {
                inFlight = false
                logger.warning("in-flight epoch failed too", metadata: ["error": "\(error)"])
            }
        }
        if let worker {
            worker.submit(.abort)
            jobStarted = clock.now
            if case .done(let result) = try awaitWorker(limit: nil) { _ = try result.get() }
        }
        chaserCache.removeAll()
        billingCache.removeAll()
        produced.removeAll()
        chaserDirty = 0
        billingDirty = 0
        collecting = EpochWork(epoch: epoch)
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
        broker.seen(reachable: true, why: "assignment")
        let mine = partitions.filter { $0.topic == settings.inputTopic }
        // Back in a group generation: retained partitions are either in this assignment (restored below) or
        // owned by another member now. Either way this member stops serving its stale copy.
        registry.update { snapshot in
            for (p, state) in snapshot.states where state == .retained { snapshot.states.removeValue(forKey: p) }
        }
        guard let consumer, !mine.isEmpty else {
            registry.update { $0.joinedGroup = true }
            return
        }
        consumer.pause(mine)
        do {
            // A restore may wipe or write its stores: the in-flight epoch's LMDB write must be done first.
            do {
                try finishInFlight(wait: true)
            } catch let error as KafkaError where error.kind == .abortable || error.kind == .retriable {
                try abortAndRewind(because: error)
            }
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
        // Partitions fully restored when lost keep answering queries from their committed local state (nothing
        // writes them any more) until the next assignment says who owns them (`partitionsAssigned`).
        let retained = lost ? mine.filter { tasks[$0]?.active == true } : []
        do {
            if shuttingDown {
                // The final commit already ran (or was abandoned): nothing to commit or wait for here.
            } else if lost {
                try abortAndRewind(because: PartitionsLost(partitions: mine))
            } else {
                do {
                    try commit(wait: true)
                    try finishInFlight(wait: true)
                } catch let error as KafkaError where error.kind == .abortable || error.kind == .retriable {
                    try abortAndRewind(because: error)
                }
            }
        } catch {
            callbackError = error
        }
        dropCached(partitions: Set(mine))
        for p in mine {
            tasks.removeValue(forKey: p)
            restorer.cancel(partition: p)
        }
        registry.update { snapshot in
            for p in mine { snapshot.states.removeValue(forKey: p) }
            for p in retained { snapshot.states[p] = .retained }
        }
        updateAssignmentGauges()
        logger.info(
            "partitions revoked",
            metadata: [
                "partitions": "\(mine.sorted())", "lost": "\(lost)", "servedFromLocalState": "\(retained.sorted())",
            ])
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
        KafkaConf.releaseFreeMemory()
        for kind in StoreKind.allCases {
            let store = stores[kind]
            let keys = tasks.keys.reduce(0) { $0 + store.count(partition: $1) }
            metrics.storeKeys(store: kind.name).record(keys)
        }
    }
}
