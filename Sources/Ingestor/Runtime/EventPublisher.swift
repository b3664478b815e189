// Produces single events for the socket's publish operation; replies after the broker acknowledged them.
import Logging
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Thread-safe: `publish` from any thread; delivery reports are served by its own poll thread.
final class EventPublisher: Sendable {
    typealias Completion = @Sendable (Result<PublishReceipt, KafkaError>) -> Void

    /// Shared with the poll thread and the delivery callback.
    private final class State: Sendable {
        let pending = Mutex<[UInt: Completion]>([:])
        let nextTag = Atomic<UInt>(1)
        let running = Atomic<Bool>(true)
        let stopped = Atomic<Bool>(false)
    }

    private let producer: KafkaProducer
    private let state = State()
    let topic: String

    init(properties: [String: String], topic: String, logger: Logger) throws(KafkaError) {
        let state = self.state
        var props = properties
        props.removeValue(forKey: "transactional.id")
        props["enable.idempotence"] = "true"
        props["linger.ms"] = props["linger.ms"] ?? "1"
        // POST /events answers after the broker's ack: bound the wait (librdkafka's default is 300 s) below the
        // gateway's 10 s request timeout, so an outage gives a prompt 503 + Retry-After.
        props["message.timeout.ms"] = props["message.timeout.ms"] ?? "5000"
        producer = try KafkaProducer(properties: props) { report in
            guard let completion = state.pending.withLock({ $0.removeValue(forKey: report.tag) }) else { return }
            if let error = report.error {
                completion(.failure(error))
            } else {
                completion(
                    .success(PublishReceipt(topic: report.topic, partition: report.partition, offset: report.offset)))
            }
        }
        self.topic = topic
        let producer = self.producer
        _ = OSThread.spawn(name: "publisher") {
            while state.running.load(ordering: .relaxed) { producer.poll(timeoutMs: 100) }
            try? producer.flush(timeoutMs: 5_000)
            state.stopped.store(true, ordering: .releasing)
        }
    }

    /// Produces one record keyed by `key` (murmur2 partitioning); `completion` runs after the ack.
    func publish(key: [UInt8], value: [UInt8], completion: @escaping Completion) {
        let tag = state.nextTag.wrappingAdd(1, ordering: .relaxed).oldValue
        state.pending.withLock { $0[tag] = completion }
        do {
            try producer.produce(topic: topic, key: key, value: value, tag: tag)
        } catch {
            if let completion = state.pending.withLock({ $0.removeValue(forKey: tag) }) {
                completion(.failure(error))
            }
        }
    }

    /// Stops the poll thread after flushing outstanding records (waits up to ~6 s).
    func close() {
        state.running.store(false, ordering: .relaxed)
        for _ in 0..<60 where !state.stopped.load(ordering: .acquiring) {
            usleepMs(100)
        }
    }
}

func usleepMs(_ ms: Int) {
    var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    nanosleep(&ts, nil)
}
