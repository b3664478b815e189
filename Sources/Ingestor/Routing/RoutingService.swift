// Publishes this pod's assignment to `<applicationId>-routing` and builds the cluster's table from everyone's.
// Brokers such as tansu expose no group member details, so the ingestors announce ownership themselves.
import Logging
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs on its own thread ("routing"), which alone touches its Kafka clients; the table is shared with the
/// socket thread through a Mutex. Announces on every assignment change and every `announceInterval`.
final class RoutingService: IngestorRoutingView, Sendable {
    struct Settings: Sendable {
        var member: String
        var endpoint: String
        var topic: String
        var kafkaProperties: [String: String]
        var announceIntervalMs: Int64 = 3_000
        /// A claim not refreshed within this time is dropped (a crashed pod's partitions become unowned).
        var ttlMs: Int64 = 10_000
    }

    private struct Shared: Sendable {
        var table = AssignmentTable()
        var epoch: UInt64 = 0
    }

    private let settings: Settings
    private let registry: PartitionRegistry
    private let shared = Mutex(Shared())
    private let stopping = Atomic<Bool>(false)
    private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let done = Atomic<Bool>(false)
    private let logger = Logger(label: "k8s-micro.ingestor.routing")

    init(settings: Settings, registry: PartitionRegistry) {
        self.settings = settings
        self.registry = registry
    }

    // MARK: IngestorRoutingView (socket thread)

    func endpoint(ofPartition partition: Int32) -> String? {
        let now = Self.nowMs()
        return shared.withLock { $0.table.owner(ofPartition: Int(partition), now: now)?.endpoint }
    }

    func routingResponse() -> SocketResponse {
        let now = Self.nowMs()
        let local = registry.snapshot
        return shared.withLock { state in
            let count = max(Int(local.partitionCount), state.table.partitionCount(now: now))
            var owners: [PartitionEndpoint] = []
            for p in 0..<count {
                if local.states[Int32(p)] != nil {
                    owners.append(PartitionEndpoint(partition: Int32(p), endpoint: settings.endpoint))
                } else if let owner = state.table.owner(ofPartition: p, now: now) {
                    owners.append(PartitionEndpoint(partition: Int32(p), endpoint: owner.endpoint))
                }
            }
            return .routing(
                RoutingInfo(
                    epoch: state.epoch, partitionCount: Int32(count), localEndpoint: settings.endpoint, owners: owners))
        }
    }

    // MARK: lifecycle

    /// Starts the routing thread; returns false when the thread cannot be created.
    func start() -> Bool {
        OSThread.spawn(name: "routing") { [self] in
            run()
            done.store(true, ordering: .sequentiallyConsistent)
            finished.withLock { $0?.resume() }
        }
    }

    /// Asks the thread to announce its departure and stop; returns when it has.
    func stop() async {
        stopping.store(true, ordering: .sequentiallyConsistent)
        await withCheckedContinuation { continuation in
            let resumeNow = finished.withLock { slot -> Bool in
                if done.load(ordering: .sequentiallyConsistent) { return true }
                slot = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    // MARK: routing thread

    private func run() {
        // Consumer properties (session.timeout.ms, ...) would make librdkafka warn (CONFWARN) on a producer.
        var producerProps = StreamSettings.producerOnly(settings.kafkaProperties)
        producerProps["linger.ms"] = "0"
        // A transactional.id set in kafka.properties is the stream's: a claim is a plain produce (and a
        // second producer with that id would fence the stream's).
        producerProps.removeValue(forKey: "transactional.id")
        var consumerProps = settings.kafkaProperties
        consumerProps["enable.auto.commit"] = "false"
        consumerProps["enable.partition.eof"] = "false"
        consumerProps["group.id"] = "\(settings.member)-routing-reader"
        let producer: KafkaProducer
        let consumer: KafkaConsumer
        do {
            producer = try KafkaProducer(properties: producerProps) { _ in }
            consumer = try KafkaConsumer(properties: consumerProps, logger: logger)
            try consumer.assign([TopicPartition(settings.topic, 0): KafkaOffset.beginning])
        } catch {
            logger.error("routing disabled: cannot start its Kafka clients", metadata: ["error": "\(error)"])
            return
        }
        var lastAnnounced: (active: [Int32], restoring: [Int32], count: Int32)?
        var lastAnnounceAt: Int64 = 0
        var epoch: Int64 = 0
        while !stopping.load(ordering: .sequentiallyConsistent) {
            while case .record(let record)? = consumer.poll(timeoutMs: 100) {
                apply(record)
            }
            let snapshot = registry.snapshot
            let current = (active: snapshot.active, restoring: snapshot.restoring, count: snapshot.partitionCount)
            let now = Self.nowMs()
            let changed = lastAnnounced.map { $0 != current } ?? true
            guard current.count > 0, changed || now - lastAnnounceAt >= settings.announceIntervalMs else { continue }
            if changed { epoch += 1 }
            announce(
                producer, partitions: current.active + current.restoring, restoring: current.restoring,
                count: current.count, epoch: epoch, now: now)
            lastAnnounced = current
            lastAnnounceAt = now
        }
        // Leaving: an empty claim lets the others take over at once instead of after the TTL.
        announce(
            producer, partitions: [], restoring: [], count: lastAnnounced?.count ?? 0, epoch: epoch + 1,
            now: Self.nowMs())
        try? producer.flush(timeoutMs: 2_000)
        consumer.close(timeoutMs: 3_000)
    }

    private func announce(
        _ producer: KafkaProducer, partitions: [Int32], restoring: [Int32], count: Int32, epoch: Int64, now: Int64
    ) {
        let announcement = RoutingAnnouncement(
            member: settings.member, endpoint: settings.endpoint, partitions: partitions.map(Int.init).sorted(),
            restoring: restoring.map(Int.init), partitionCount: Int(count), epoch: epoch, time: now,
            ttlMs: settings.ttlMs)
        do {
            try producer.produce(
                topic: settings.topic, partition: 0, key: Array(settings.member.utf8),
                value: RoutingRecord.encode(announcement))
            _ = producer.poll(timeoutMs: 0)
            logger.debug("announced", metadata: ["partitions": "\(partitions)", "epoch": "\(epoch)"])
        } catch {
            logger.warning("announce failed; retrying on the next tick", metadata: ["error": "\(error)"])
        }
    }

    private func apply(_ record: KafkaRecord) {
        var announcement: RoutingAnnouncement
        do throws(RoutingRecordError) {
            announcement = try RoutingRecord.decode(record.value ?? [])  // a tombstone is unreadable too
        } catch {
            logger.warning(
                "ignoring an unreadable routing record", metadata: ["offset": "\(record.offset)", "error": "\(error)"])
            return
        }
        announcement.sequence = record.offset
        let now = Self.nowMs()
        shared.withLock { state in
            state.table.apply(announcement)
            state.table.expire(now: now)
            state.epoch += 1
        }
    }

    static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
