// librdkafka consumer: group membership with cooperative-sticky rebalancing, or manual assignment (restore).
import CRdKafka
package import Logging

/// Told about assignment changes; called on the polling thread from inside `poll`.
package protocol RebalanceListener: AnyObject {
    /// Partitions were added to the assignment (already assigned when this is called).
    func partitionsAssigned(_ partitions: [TopicPartition])
    /// Partitions are about to leave the assignment; `lost` means another member may already own them
    /// (do not commit). They are unassigned after this returns.
    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool)
}

/// Per-partition consumer statistics from librdkafka's statistics callback.
package struct ConsumerPartitionStats: Sendable {
    package var topic: String
    package var partition: Int32
    package var lag: Int64
}

/// State reachable from librdkafka's C callbacks through the client's opaque pointer.
private final class ConsumerCallbacks {
    weak var listener: (any RebalanceListener)?
    var onStats: ((_ partitions: [ConsumerPartitionStats]) -> Void)?
    var onBrokerState: ((_ anyUp: Bool) -> Void)?
    var logger: Logger
    init(logger: Logger) { self.logger = logger }
}

/// A librdkafka consumer. Bound to one thread: every method (poll above all) must be called from the
/// thread that polls it, except `wakeUp`-free `close` at the end on that same thread.
package final class KafkaConsumer {
    private let rk: OpaquePointer
    private let callbacks: ConsumerCallbacks
    private var topicNames: [OpaquePointer: String] = [:]
    /// The last topic looked up (a group consumer reads one topic: no dictionary lookup per record).
    private var lastTopic: (handle: OpaquePointer?, name: String) = (nil, "")
    private var closed = false
    /// The consumer queue (group consumers) for batch polls; destroyed before the client.
    private var consumerQueue: OpaquePointer?
    private var batchBuffer: [UnsafeMutablePointer<rd_kafka_message_t>?] = []
    private let logger: Logger

    /// - Parameters:
    ///   - properties: librdkafka properties (bootstrap.servers, group.id, kafka.properties, ...).
    ///   - listener: rebalance listener for group consumers (nil for manually assigned consumers).
    ///   - onStats: receives per-partition lag when `statistics.interval.ms` is set.
    package init(
        properties: [String: String], listener: (any RebalanceListener)? = nil,
        onStats: ((_ partitions: [ConsumerPartitionStats]) -> Void)? = nil,
        onBrokerState: ((_ anyUp: Bool) -> Void)? = nil, logger: Logger
    ) throws(KafkaError) {
        self.logger = logger
        let conf = try KafkaConf(properties)
        let callbacks = ConsumerCallbacks(logger: logger)
        callbacks.listener = listener
        callbacks.onStats = onStats
        callbacks.onBrokerState = onBrokerState
        self.callbacks = callbacks
        guard let handle = conf.handle else { throw KafkaError(config: "no configuration") }
        rd_kafka_conf_set_opaque(handle, Unmanaged.passUnretained(callbacks).toOpaque())
        if listener != nil {
            rd_kafka_conf_set_rebalance_cb(handle, consumerRebalanceCallback)
        }
        if onStats != nil {
            rd_kafka_conf_set_stats_cb(handle, consumerStatsCallback)
        }
        rk = try conf.makeClient(RD_KAFKA_CONSUMER)
        // Serve all events (rebalances, errors) from the consumer queue polled by `poll`.
        rd_kafka_poll_set_consumer(rk)
        consumerQueue = rd_kafka_queue_get_consumer(rk)
    }

    deinit {
        if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) }
        if closeAbandoned { return }  // the process is exiting; destroy could block as long as the close did
        if !closed { close(timeoutMs: 5_000) }
        if closeAbandoned { return }
        rd_kafka_destroy(rk)
    }

    /// The underlying handle, for the transactional producer's send_offsets_to_transaction (this folder).
    var handle: OpaquePointer { rk }

    package func subscribe(_ topics: [String]) throws(KafkaError) {
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            throw KafkaError(config: "out of memory")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, k8s_rdk_partition_ua) }
        let err = rd_kafka_subscribe(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: err, operation: "subscribe") }
    }

    /// Manual assignment (no group), starting at the given offsets.
    package func assign(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        let list = PartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_incremental_assign(rk, list) {
            throw KafkaError(consuming: error, operation: "incremental_assign")
        }
    }

    /// Removes partitions from a manual assignment.
    package func unassign(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_incremental_unassign(rk, list) {
            throw KafkaError(consuming: error, operation: "incremental_unassign")
        }
    }

    /// Polls one event; nil on timeout. Rebalance callbacks run inside this call.
    package func poll(timeoutMs: Int32, headers: Bool = false) -> ConsumerEvent? {
        guard let message = rd_kafka_consumer_poll(rk, timeoutMs) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        return event(of: message, headers: headers)
    }

    /// Polls up to `max` events at once (one queue wake-up for the batch; rebalance callbacks run inside).
    /// Records go to `onRecord` without copying (the buffers are librdkafka's, valid only during the call);
    /// partition EOFs and errors go to `onEvent`. Returns how many were polled. Stops early, destroying the
    /// rest, if a handler throws.
    /// `header`: the name of one header to borrow into `ConsumedRecord.header` (the changelog restore).
    package func pollBatch(
        max: Int, timeoutMs: Int32, header: String? = nil, onRecord: (ConsumedRecord) throws -> Void,
        onEvent: (ConsumerEvent) throws -> Void
    ) throws -> Int {
        if batchBuffer.count < max { batchBuffer = Array(repeating: nil, count: max) }
        guard let queue = consumerQueue else { return 0 }
        let n = batchBuffer.withUnsafeMutableBufferPointer { buf in
            rd_kafka_consume_batch_queue(queue, timeoutMs, buf.baseAddress, max)
        }
        guard n > 0 else { return 0 }
        var index = 0
        defer {
            for i in index..<n { rd_kafka_message_destroy(batchBuffer[i]) }
        }
        while index < n {
            guard let message = batchBuffer[index] else {
                index += 1
                continue
            }
            index += 1
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                var record = ConsumedRecord(
                    topic: topicName(m.rkt), partition: m.partition, offset: m.offset,
                    key: m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) },
                    value: m.payload.map { UnsafeRawBufferPointer(start: $0, count: m.len) })
                if let header { record.header = Self.lastHeader(message, header) }
                try onRecord(record)
            } else {
                try onEvent(event(of: message, headers: false))
            }
        }
        return n
    }

    private func event(of message: UnsafeMutablePointer<rd_kafka_message_t>, headers: Bool) -> ConsumerEvent {
        let m = message.pointee
        let topic = topicName(m.rkt)
        if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            return .partitionEOF(TopicPartition(topic, m.partition), offset: m.offset)
        }
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            var kind = KafkaError.Kind.other
            if m.err == RD_KAFKA_RESP_ERR__FATAL { kind = .fatal }
            var error = KafkaError(code: m.err, operation: "consume \(topic)[\(m.partition)]", kind: kind)
            if let payload = m.payload, m.len > 0 {
                error.message = String(
                    decoding: UnsafeRawBufferPointer(start: payload, count: m.len), as: UTF8.self)
            }
            return .error(error)
        }
        let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value: [UInt8]? = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        var record = KafkaRecord(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value)
        if headers { record.headers = Self.readHeaders(message) }
        return .record(record)
    }

    /// The last header named `name`, borrowed from the message (no copy).
    private static func lastHeader(_ message: UnsafeMutablePointer<rd_kafka_message_t>, _ name: String)
        -> UnsafeRawBufferPointer?
    {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return nil }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(hdrs, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return UnsafeRawBufferPointer(start: value, count: size)
    }

    private static func readHeaders(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var out: [KafkaHeader] = []
        var index = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            if rd_kafka_header_get_all(hdrs, index, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR { break }
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            out.append(KafkaHeader(name.map { String(cString: $0) } ?? "", bytes))
            index += 1
        }
        return out
    }

    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        if rkt == lastTopic.handle { return lastTopic.name }
        if let name = topicNames[rkt] {
            lastTopic = (rkt, name)
            return name
        }
        let name = String(cString: rd_kafka_topic_name(rkt))
        topicNames[rkt] = name
        return name
    }

    /// Commits the given next-offsets (at_least_once) and waits up to `timeoutMs` for the answer
    /// (`rd_kafka_commit` itself waits without a bound while the coordinator is away). A timeout is retriable:
    /// committing the same offsets again is harmless.
    package func commit(_ offsets: [TopicPartition: Int64], timeoutMs: Int32) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard let queue = rd_kafka_queue_new(rk) else { throw KafkaError(config: "out of memory") }
        defer { rd_kafka_queue_destroy(queue) }
        var err = rd_kafka_commit_queue(rk, list, queue, nil, nil)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            guard let event = rd_kafka_queue_poll(queue, timeoutMs) else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "commit", kind: .retriable)
            }
            err = rd_kafka_event_error(event)
            rd_kafka_event_destroy(event)
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: err, operation: "commit", kind: err == RD_KAFKA_RESP_ERR__FATAL ? .fatal : .other)
        }
    }

    /// The group's committed next-offsets (nil entries are mapped to `k8s_rdk_offset_invalid`).
    package func committed(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        guard !partitions.isEmpty else { return [:] }
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(rk, list, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: err, operation: "committed") }
        var out: [TopicPartition: Int64] = [:]
        for (tp, offset, _) in PartitionList.read(list) { out[tp] = offset }
        return out
    }

    /// Moves the fetch positions (rewind after an aborted transaction).
    package func seek(_ offsets: [TopicPartition: Int64], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_seek_partitions(rk, list, timeoutMs) {
            throw KafkaError(consuming: error, operation: "seek_partitions")
        }
        for (tp, _, err) in PartitionList.read(list) where err != 0 {
            throw KafkaError(code: rd_kafka_resp_err_t(err), operation: "seek \(tp)")
        }
    }

    package func pause(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_pause_partitions(rk, list)
    }

    package func resume(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_resume_partitions(rk, list)
    }

    /// Cached low/high watermarks from fetch responses (no broker round trip; ListOffsets is broken on tansu).
    package func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_get_watermark_offsets(rk, tp.topic, tp.partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? (low, high) : nil
    }

    /// The current assignment.
    package func assignment() -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return PartitionList.read(list).map(\.0)
    }

    /// The group member id (empty before the first join).
    package var memberId: String {
        guard let id = rd_kafka_memberid(rk) else { return "" }
        defer { rd_kafka_mem_free(rk, id) }
        return String(cString: id)
    }

    /// The fatal error raised on this client, if any.
    package var fatalError: KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(rk, &errstr, errstr.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(
            code: err.rawValue, name: "fatal", message: cText(errstr), kind: .fatal, operation: "consumer")
    }

    /// Leaves the group (revoke callbacks run inside, on this thread) and stops fetching, waiting at most
    /// `timeoutMs`: `rd_kafka_consumer_close` can block without a bound while the broker is unreachable, so the
    /// close runs on a queue served here until librdkafka says it is closed or the time is up (then the process
    /// goes on exiting; the group drops the member after its session timeout). Idempotent.
    /// Returns false if the close did not complete in time.
    @discardableResult
    package func close(timeoutMs: Int) -> Bool {
        guard !closed else { return true }
        closed = true
        guard let queue = rd_kafka_queue_new(rk) else { return false }
        defer { rd_kafka_queue_destroy(queue) }
        if let error = rd_kafka_consumer_close_queue(rk, queue) {
            logger.warning(
                "consumer close failed", metadata: ["error": "\(KafkaError(consuming: error, operation: "close"))"])
            return false
        }
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while rd_kafka_consumer_closed(rk) == 0 {
            if ContinuousClock.now >= deadline {
                closeAbandoned = true
                logger.warning("consumer close did not complete in time; leaving it", metadata: ["ms": "\(timeoutMs)"])
                return false
            }
            // Rebalance (revoke) events arrive here and run the listener, like inside `poll`.
            if let event = rd_kafka_queue_poll(queue, 100) {
                if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE {
                    serveRebalance(event)
                }
                rd_kafka_event_destroy(event)
            }
        }
        return true
    }

    /// A close that ran out of time: destroying the handle could block as long, so it is left to the exit.
    private var closeAbandoned = false

    private func serveRebalance(_ event: OpaquePointer) {
        guard let partitions = rd_kafka_event_topic_partition_list(event) else { return }
        consumerRebalanceCallback(
            rk: rk, err: rd_kafka_event_error(event), partitions: partitions,
            opaque: Unmanaged.passUnretained(callbacks).toOpaque())
    }
}

private func consumerRebalanceCallback(
    rk: OpaquePointer?, err: rd_kafka_resp_err_t, partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    opaque: UnsafeMutableRawPointer?
) {
    guard let rk, let partitions, let opaque else { return }
    let callbacks = Unmanaged<ConsumerCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
    let tps = PartitionList.read(partitions).map(\.0)
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, partitions) {
                callbacks.logger.error(
                    "incremental assign failed",
                    metadata: ["error": "\(KafkaError(consuming: error, operation: "incremental_assign"))"])
            }
        } else {
            _ = rd_kafka_assign(rk, partitions)
        }
        callbacks.listener?.partitionsAssigned(tps)
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        let lost = rd_kafka_assignment_lost(rk) != 0
        callbacks.listener?.partitionsRevoked(tps, lost: lost)
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, partitions) {
                callbacks.logger.error(
                    "incremental unassign failed",
                    metadata: ["error": "\(KafkaError(consuming: error, operation: "incremental_unassign"))"])
            }
        } else {
            _ = rd_kafka_assign(rk, nil)
        }
    default:
        callbacks.logger.error(
            "rebalance error", metadata: ["error": "\(KafkaError(code: err, operation: "rebalance"))"])
        _ = rd_kafka_assign(rk, nil)
    }
}

private func consumerStatsCallback(
    rk: OpaquePointer?, json: UnsafeMutablePointer<CChar>?, length: Int, opaque: UnsafeMutableRawPointer?
) -> Int32 {
    guard let json, let opaque else { return 0 }
    let callbacks = Unmanaged<ConsumerCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: json, count: length)
    callbacks.onStats?(KafkaStatistics.partitionLags(Array(bytes)))
    if let onBrokerState = callbacks.onBrokerState, let up = KafkaStatistics.anyBrokerUp(Array(bytes)) {
        onBrokerState(up)
    }
    return 0
}
