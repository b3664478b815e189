// Runs the stream loop on its own OS thread; start-up (topics, clients), the loop, graceful shutdown.
import Logging
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Owns the stream thread. `start`, `requestStop` and `join` may be called from any thread/task; the
/// StreamLoop it creates lives entirely on the stream thread.
final class StreamThread: Sendable {
    private let settings: StreamSettings
    private let config: AppConfig
    private let stores: StateStores
    private let registry: PartitionRegistry
    private let metrics: IngestorMetrics
    private let codecs: CodecFactory
    private let logger: Logger
    private let stopFlag = Atomic<Bool>(false)
    private let outcome = Mutex<Outcome>(Outcome())

    private struct Outcome {
        var finished = false
        var error: (any Error)?
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    init(config: AppConfig, stores: StateStores, registry: PartitionRegistry, codecs: CodecFactory, logger: Logger) {
        self.config = config
        self.settings = StreamSettings(config: config)
        self.stores = stores
        self.registry = registry
        self.codecs = codecs
        self.metrics = IngestorMetrics(guarantee: config.kafka.processingGuarantee.rawValue)
        self.logger = logger
    }

    func start() {
        let started = OSThread.spawn(name: "stream") { [self] in
            var failure: (any Error)?
            do { try body() } catch { failure = error }
            let waiters = outcome.withLock { o -> [CheckedContinuation<Void, any Error>] in
                o.finished = true
                o.error = failure
                defer { o.waiters = [] }
                return o.waiters
            }
            for w in waiters {
                if let failure { w.resume(throwing: failure) } else { w.resume() }
            }
        }
        if !started {
            outcome.withLock {
                $0.finished = true
                $0.error = KafkaError(config: "cannot start the stream thread")
            }
        }
    }

    /// Asks the thread to stop and arms the hard stop: the graceful path is bounded (`shutdownBudget` plus
    /// bounded closes), but a librdkafka call that ignores its timeout must not keep the pod past the chart's
    /// 45 s termination grace period. The local stores never hold uncommitted work, so exiting there loses nothing.
    func requestStop() {
        guard !stopFlag.exchange(true, ordering: .relaxed) else { return }
        let stores = self.stores
        let logger = self.logger
        let after = Self.hardStopAfterMs
        _ = OSThread.spawn(name: "hard-stop") {
            usleepMs(after)
            logger.critical(
                "graceful shutdown overran its bound; exiting now (the next start replays uncommitted work)",
                metadata: ["afterMs": "\(after)"])
            stores.syncAll()
            fflush(nil)
            _exit(2)
        }
    }

    /// The hard stop: well inside the chart's terminationGracePeriodSeconds (45 s), after the graceful budget.
    static let hardStopAfterMs = 25_000

    /// Waits for the thread's end; rethrows its fatal error.
    func join() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let done = outcome.withLock { o -> (Bool, (any Error)?) in
                if o.finished { return (true, o.error) }
                o.waiters.append(c)
                return (false, nil)
            }
            if done.0 {
                if let error = done.1 { c.resume(throwing: error) } else { c.resume() }
            }
        }
    }

    private var stopping: Bool { stopFlag.load(ordering: .relaxed) }

    /// The thread body: topics, clients, loop, shutdown.
    private func body() throws {
        logger.info(
            "librdkafka",
            metadata: ["version": "\(KafkaLibrary.version)", "bootstrap": "\(config.kafka.bootstrapServers)"])
        // The hand-written Avro path serves our own schema ids; anything else goes through avro-c.
        let codec = FastEventCodec(codec: try codecs.make(), schemaDir: codecs.schemaDir)
        if !codec.isActive {
            logger.notice("schema files differ from the built-in schemas: every record goes through avro-c")
        }
        guard let (partitions, dlqPartitions) = try prepareTopics() else { return }
        let loop = try StreamLoop(
            settings: settings, stores: stores, registry: registry, metrics: metrics, codec: codec,
            partitionCount: partitions, dlqPartitions: dlqPartitions, logger: logger)
        try loop.start()
        do {
            try loop.run { [self] in stopping }
        } catch {
            logger.critical("stream thread failed; exiting for a restart", metadata: ["error": "\(error)"])
            registry.update { $0.running = false }
            stores.markDamaged(by: error)
            stores.syncAll()
            throw error
        }
        loop.shutdown()
    }

    /// Waits for the input topic, then creates missing output, changelog, dead-letter and routing topics with
    /// the input's partition count. Returns nil if asked to stop meanwhile.
    private func prepareTopics() throws -> (Int32, Int32)? {
        let admin = try KafkaAdmin(properties: settings.adminProperties)
        let k = config.kafka
        var waited = 0
        while true {
            if stopping { return nil }
            do {
                let topics = try admin.topics()
                if let n = topics[k.inputTopic], n > 0 {
                    registry.update { $0.inputTopicFound = true }
                    var wanted: [TopicSpec] = [
                        TopicSpec(name: k.chaserTopic, partitions: n),
                        TopicSpec(name: k.billingTopic, partitions: n),
                        TopicSpec(name: k.chaserChangelogTopic, partitions: n, config: ["cleanup.policy": "compact"]),
                        TopicSpec(name: k.billingChangelogTopic, partitions: n, config: ["cleanup.policy": "compact"]),
                        TopicSpec(name: k.deadLetterTopic, partitions: n),
                        TopicSpec(name: k.routingTopic, partitions: 1, config: ["cleanup.policy": "compact"]),
                    ]
                    wanted.removeAll { topics[$0.name] != nil }
                    let created = try admin.createTopics(wanted)
                    if !created.isEmpty { logger.info("created topics", metadata: ["topics": "\(created)"]) }
                    for changelog in [k.chaserChangelogTopic, k.billingChangelogTopic] {
                        if let m = topics[changelog], m != n {
                            throw KafkaError(
                                config: "changelog \(changelog) has \(m) partitions, input \(k.inputTopic) has \(n)")
                        }
                    }
                    return (n, topics[k.deadLetterTopic] ?? n)
                }
                if waited % 10 == 0 {
                    logger.warning("waiting for the input topic", metadata: ["topic": "\(k.inputTopic)"])
                }
            } catch let error as KafkaError where error.kind == .retriable {
                if waited % 10 == 0 { logger.warning("broker not reachable yet", metadata: ["error": "\(error)"]) }
            }
            waited += 1
            usleepMs(1_000)
        }
    }
}
