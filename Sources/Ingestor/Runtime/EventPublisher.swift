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
    }

    private let producer: KafkaProducer
    private let state = State()
    /// Serves delivery reports; nil only if the thread could not be created.
    private let pollThread: JoinableThread?
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
        pollThread = OSThread.start(name: "publisher") {
            while state.running.load(ordering: .relaxed) { producer.poll(timeoutMs: 100) }
            try? producer.flush(timeoutMs: 5_000)
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

    /// Stops the poll thread after flushing outstanding records (bounded by the flush's 5 s) and waits for
    /// it: the thread's hold on the producer is gone, so its owner's release destroys it, before the exit.
    func close() {
        state.running.store(false, ordering: .relaxed)
        pollThread?.join()
    }
}

func usleepMs(_ ms: Int) {
    var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    nanosleep(&ts, nil)
}
