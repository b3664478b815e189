// librdkafka producer: plain/idempotent (generator, publish, at_least_once) or transactional (exactly_once_v2).
import CRdKafka
import Logging
import Synchronization

/// The outcome of one produced record, from librdkafka's delivery-report callback.
package struct DeliveryReport: Sendable {
    /// nil when delivered.
    package var error: KafkaError?
    package var topic: String
    /// Dense index of `topic` for this producer (0, 1, ... in order of first delivery): cheap to key counters by.
    package var topicIndex: Int = -1
    package var partition: Int32
    package var offset: Int64
    /// The `tag` given to `produce`.
    package var tag: UInt
}

/// State reachable from librdkafka's C callbacks through the client's opaque pointer.
private final class ProducerCallbacks {
    let onDelivery: (DeliveryReport) -> Void
    /// Topic names and dense indexes by handle; touched only by the polling thread.
    var topicNames: [OpaquePointer: (name: String, index: Int)] = [:]
    /// The last report's topic: reports come in runs of one topic and partition, so this saves the hashing.
    var lastTopic: (handle: OpaquePointer, name: String, index: Int)?
    init(onDelivery: @escaping (DeliveryReport) -> Void) { self.onDelivery = onDelivery }
}

/// A topic handle made once per topic (`KafkaProducer.topic(_:)`): producing through it skips librdkafka's
/// per-record topic lookup by name. Valid while its producer lives; librdkafka's handles are thread-safe.
package struct ProducerTopic: @unchecked Sendable {
    package let name: String
    fileprivate let rkt: OpaquePointer
}

/// A librdkafka producer. `produce` is thread-safe; delivery reports run inside `poll`/`flush`/commit on the
/// calling thread. Transactional calls belong to one thread (the ingestor's commit thread).
package final class KafkaProducer: @unchecked Sendable {
    private let rk: OpaquePointer
    private let callbacks: ProducerCallbacks
    package let transactional: Bool
    /// Handles made by `topic(_:)`, destroyed with the producer.
    private let topicHandles = Mutex<[String: ProducerTopic]>([:])

    /// - Parameter onDelivery: called for every record, on the thread that polls this producer.
    package init(properties: [String: String], onDelivery: @escaping (DeliveryReport) -> Void) throws(KafkaError) {
        let conf = try KafkaConf(properties)
        transactional = properties["transactional.id"] != nil
        callbacks = ProducerCallbacks(onDelivery: onDelivery)
        guard let handle = conf.handle else { throw KafkaError(config: "no configuration") }
        rd_kafka_conf_set_opaque(handle, Unmanaged.passUnretained(callbacks).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(handle, producerDeliveryCallback)
        rk = try conf.makeClient(RD_KAFKA_PRODUCER)
    }

    deinit {
        rd_kafka_flush(rk, 5_000)
        topicHandles.withLock { handles in
            for handle in handles.values { rd_kafka_topic_destroy(handle.rkt) }
        }
        rd_kafka_destroy(rk)
    }

    /// The handle of `name` (made on first use, then the same one).
    package func topic(_ name: String) throws(KafkaError) -> ProducerTopic {
        let made: ProducerTopic? = topicHandles.withLock { handles in
            if let existing = handles[name] { return existing }
            guard let rkt = rd_kafka_topic_new(rk, name, nil) else { return nil }
            let handle = ProducerTopic(name: name, rkt: rkt)
            handles[name] = handle
            return handle
        }
        guard let made else {
            throw KafkaError(code: rd_kafka_last_error(), operation: "topic \(name)", kind: .other)
        }
        return made
    }

    /// Enqueues one record (copied). `partition` nil uses the configured partitioner (murmur2_random).
    /// Retries on a full local queue by polling, so back-pressure never drops a record.
    package func produce(
        topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [],
        tag: UInt = 0
    ) throws(KafkaError) {
        try withOptionalBytes(key) { (k) throws(KafkaError) in
            try withOptionalBytes(value) { (v) throws(KafkaError) in
                try produce(topic: topic, partition: partition, key: k, value: v, headers: headers, tag: tag)
            }
        }
    }

    /// Enqueues one record from borrowed buffers (librdkafka copies them before returning).
    package func produce(
        topic: String, partition: Int32? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [KafkaHeader] = [], tag: UInt = 0
    ) throws(KafkaError) {
        try enqueue(topic: topic) {
            produceOnce(topic: topic, partition: partition, key: key, value: value, headers: headers, tag: tag)
        }
    }

    /// Enqueues one record with one header given as borrowed bytes (no header array per record).
    package func produce(
        topic: String, partition: Int32?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headerName: String, headerValue: UnsafeRawBufferPointer, tag: UInt = 0
    ) throws(KafkaError) {
        try enqueue(topic: topic) {
            produceOnce(
                topic: topic, partition: partition, key: key, value: value, headers: [],
                single: (headerName, headerValue), tag: tag)
        }
    }

    /// Enqueues one record through a topic handle, with at most one header (the stream loop's hot path).
    package func produce(
        _ topic: ProducerTopic, partition: Int32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
        header: (name: String, value: UnsafeRawBufferPointer)? = nil, tag: UInt = 0
    ) throws(KafkaError) {
        try enqueue(topic: topic.name) {
            produceOnce(
                topic: topic.name, handle: topic.rkt, partition: partition, key: key, value: value, headers: [],
                single: header, tag: tag)
        }
    }

    /// Enqueues records for one partition of `topic` in one librdkafka call (`rd_kafka_produce_batch`, records
    /// copied, no headers): one clock read, topic lock and partition lookup per batch instead of per record.
    /// `keys[i]` and `values[i]` make record i (untagged in delivery reports); a full local queue is waited out by
    /// polling and the rest retried in order (librdkafka fails every record after the first that does not fit).
    package func produceBatch(
        _ topic: ProducerTopic, partition: Int32, keys: [UnsafeRawBufferPointer], values: [UnsafeRawBufferPointer]
    ) throws(KafkaError) {
        precondition(keys.count == values.count, "one key per value")
        var messages = [rd_kafka_message_t](repeating: rd_kafka_message_t(), count: keys.count)
        let failure = withUnsafePointer(to: emptyByte) { empty -> rd_kafka_resp_err_t in
            // A nil base would make an empty value a null tombstone.
            let nonNull = UnsafeMutableRawPointer(mutating: empty)
            for i in keys.indices {
                messages[i].key = UnsafeMutableRawPointer(mutating: keys[i].baseAddress) ?? nonNull
                messages[i].key_len = keys[i].count
                messages[i].payload = UnsafeMutableRawPointer(mutating: values[i].baseAddress) ?? nonNull
                messages[i].len = values[i].count
            }
            var start = 0
            while start < messages.count {
                messages.withUnsafeMutableBufferPointer { all in
                    guard let base = all.baseAddress else { return }
                    _ = rd_kafka_produce_batch(
                        topic.rkt, partition, RD_KAFKA_MSG_F_COPY, base + start, Int32(all.count - start))
                }
                guard let failed = messages[start...].firstIndex(where: { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR })
                else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                guard messages[failed].err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return messages[failed].err }
                rd_kafka_poll(rk, 10)
                start = failed
            }
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
        if failure != RD_KAFKA_RESP_ERR_NO_ERROR { throw Self.produceError(failure, topic: topic.name) }
    }

    /// Runs one produce attempt until librdkafka takes the record: a full local queue is waited out by polling
    /// (back-pressure never drops a record); any other error is thrown.
    private func enqueue(topic: String, _ attempt: () -> rd_kafka_resp_err_t) throws(KafkaError) {
        while true {
            let err = attempt()
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_poll(rk, 10)
                continue
            }
            throw Self.produceError(err, topic: topic)
        }
    }

    /// A failed produce, classified as librdkafka documents it.
    private static func produceError(_ err: rd_kafka_resp_err_t, topic: String) -> KafkaError {
        var kind = KafkaError.Kind.other
        if err == RD_KAFKA_RESP_ERR__FATAL || KafkaError.isFence(err.rawValue) {
            kind = .fatal
        } else if err == RD_KAFKA_RESP_ERR__STATE {
            kind = .abortable
        }
        return KafkaError(code: err, operation: "produce \(topic)", kind: kind)
    }

    private func produceOnce(
        topic: String, handle: OpaquePointer? = nil, partition: Int32?, key: UnsafeRawBufferPointer?,
        value: UnsafeRawBufferPointer?,
        headers: [KafkaHeader], single: (name: String, value: UnsafeRawBufferPointer)? = nil, tag: UInt
    ) -> rd_kafka_resp_err_t {
        var hdrs: OpaquePointer?
        if !headers.isEmpty || single != nil {
            hdrs = rd_kafka_headers_new(headers.count + 1)
            for h in headers {
                h.value.withUnsafeBytes { v in
                    _ = rd_kafka_header_add(hdrs, h.name, -1, v.baseAddress, v.count)
                }
            }
            if let single {
                _ = rd_kafka_header_add(hdrs, single.name, -1, single.value.baseAddress, single.value.count)
            }
        }
        let opaque = UnsafeMutableRawPointer(bitPattern: tag)
        // An empty buffer may have a nil base address: pass a non-nil pointer so an empty value stays empty
        // (not a null tombstone).
        let err = withNonNullBase(key) { k, klen in
            withNonNullBase(value) { v, vlen in
                if let handle {
                    return k8s_rdk_produce_rkt(
                        rk, handle, partition ?? k8s_rdk_partition_ua, k, klen, v, vlen, hdrs, opaque)
                }
                return k8s_rdk_produce(rk, topic, partition ?? k8s_rdk_partition_ua, k, klen, v, vlen, hdrs, opaque)
            }
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs { rd_kafka_headers_destroy(hdrs) }
        return err
    }

    /// Serves delivery reports.
    @discardableResult
    package func poll(timeoutMs: Int32 = 0) -> Int32 { rd_kafka_poll(rk, timeoutMs) }

    /// Waits until every enqueued record is acknowledged (delivery reports run inside).
    package func flush(timeoutMs: Int32) throws(KafkaError) {
        let err = rd_kafka_flush(rk, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: err, operation: "flush", kind: .retriable) }
    }

    /// Records not yet acknowledged.
    package var outstanding: Int32 { rd_kafka_outq_len(rk) }

    // MARK: transactions (exactly_once_v2)

    package func initTransactions(timeoutMs: Int32) throws(KafkaError) {
        if let error = rd_kafka_init_transactions(rk, timeoutMs) {
            throw KafkaError(consuming: error, operation: "init_transactions")
        }
    }

    package func beginTransaction() throws(KafkaError) {
        if let error = rd_kafka_begin_transaction(rk) {
            throw KafkaError(consuming: error, operation: "begin_transaction")
        }
    }

    /// Adds the consumer's next-offsets to the transaction (with the group metadata, so zombies are fenced).
    package func sendOffsetsToTransaction(
        _ offsets: [TopicPartition: Int64], consumer: KafkaConsumer, timeoutMs: Int32
    ) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        guard let metadata = rd_kafka_consumer_group_metadata(consumer.handle) else {
            throw KafkaError(config: "consumer has no group metadata")
        }
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        let list = PartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_send_offsets_to_transaction(rk, list, metadata, timeoutMs) {
            throw KafkaError(consuming: error, operation: "send_offsets_to_transaction")
        }
    }

    /// Flushes and commits; delivery reports of the transaction's records run inside.
    package func commitTransaction(timeoutMs: Int32) throws(KafkaError) {
        if let error = rd_kafka_commit_transaction(rk, timeoutMs) {
            throw KafkaError(consuming: error, operation: "commit_transaction")
        }
    }

    package func abortTransaction(timeoutMs: Int32) throws(KafkaError) {
        if let error = rd_kafka_abort_transaction(rk, timeoutMs) {
            throw KafkaError(consuming: error, operation: "abort_transaction")
        }
    }

    /// The fatal error raised on this client, if any.
    package var fatalError: KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(rk, &errstr, errstr.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(
            code: err.rawValue, name: "fatal", message: cText(errstr), kind: .fatal, operation: "producer")
    }
}

private func withOptionalBytes<R>(
    _ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws(KafkaError) -> R
) throws(KafkaError) -> R {
    guard let bytes else { return try body(nil) }
    let result: Result<R, KafkaError> = bytes.withUnsafeBytes { raw in
        do throws(KafkaError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

private let emptyByte: UInt8 = 0

private func withNonNullBase<R>(_ buffer: UnsafeRawBufferPointer?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let buffer else { return body(nil, 0) }
    if let base = buffer.baseAddress { return body(base, buffer.count) }
    return withUnsafePointer(to: emptyByte) { body(UnsafeRawPointer($0), 0) }
}

private func producerDeliveryCallback(
    rk: OpaquePointer?, message: UnsafePointer<rd_kafka_message_t>?, opaque: UnsafeMutableRawPointer?
) {
    guard let message, let opaque else { return }
    let callbacks = Unmanaged<ProducerCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let m = message.pointee
    var topic = ""
    var topicIndex = -1
    if let rkt = m.rkt {
        if let last = callbacks.lastTopic, last.handle == rkt {
            (topic, topicIndex) = (last.name, last.index)
        } else if let known = callbacks.topicNames[rkt] {
            (topic, topicIndex) = known
        } else {
            topic = String(cString: rd_kafka_topic_name(rkt))
            topicIndex = callbacks.topicNames.count
            callbacks.topicNames[rkt] = (topic, topicIndex)
        }
        callbacks.lastTopic = (rkt, topic, topicIndex)
    }
    var error: KafkaError?
    if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
        error = KafkaError(code: m.err, operation: "deliver \(topic)[\(m.partition)]")
    }
    let tag = UInt(bitPattern: m._private)
    callbacks.onDelivery(
        DeliveryReport(
            error: error, topic: topic, topicIndex: topicIndex, partition: m.partition, offset: m.offset, tag: tag))
}
