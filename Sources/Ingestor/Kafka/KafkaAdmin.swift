// librdkafka admin client: topic metadata (partition counts) and creation of missing topics.
import CRdKafka

/// A topic to create when absent.
package struct TopicSpec: Sendable, Equatable {
    package var name: String
    package var partitions: Int32
    package var config: [String: String]
    package init(name: String, partitions: Int32, config: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.config = config
    }
}

/// Short-lived admin client (its own producer-type handle). Not thread-safe: use from one thread.
package final class KafkaAdmin {
    private let rk: OpaquePointer

    package init(properties: [String: String]) throws(KafkaError) {
        let conf = try KafkaConf(properties)
        rk = try conf.makeClient(RD_KAFKA_PRODUCER)
    }

    deinit { rd_kafka_destroy(rk) }

    /// Partition count of every topic in the cluster.
    package func topics(timeoutMs: Int32 = 10_000) throws(KafkaError) -> [String: Int32] {
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &md, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else {
            throw KafkaError(code: err, operation: "metadata", kind: .retriable)
        }
        defer { rd_kafka_metadata_destroy(md) }
        var out: [String: Int32] = [:]
        for i in 0..<Int(md.pointee.topic_cnt) {
            guard let t = md.pointee.topics?[i], t.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = t.topic else {
                continue
            }
            out[String(cString: name)] = Int32(t.partition_cnt)
        }
        return out
    }

    /// Creates the given topics; "already exists" counts as success. Returns the names actually created.
    @discardableResult
    package func createTopics(_ specs: [TopicSpec], timeoutMs: Int32 = 15_000) throws(KafkaError) -> [String] {
        guard !specs.isEmpty else { return [] }
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
        for spec in specs {
            guard let nt = rd_kafka_NewTopic_new(spec.name, spec.partitions, -1, &errstr, errstr.count) else {
                throw KafkaError(config: "topic \(spec.name): \(cText(errstr))")
            }
            newTopics.append(nt)
            for (key, value) in spec.config.sorted(by: { $0.key < $1.key }) {
                let err = rd_kafka_NewTopic_set_config(nt, key, value)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(code: err, operation: "topic \(spec.name) config \(key)")
                }
            }
        }
        guard let queue = rd_kafka_queue_new(rk) else { throw KafkaError(config: "rd_kafka_queue_new failed") }
        defer { rd_kafka_queue_destroy(queue) }
        guard let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS) else {
            throw KafkaError(config: "rd_kafka_AdminOptions_new failed")
        }
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { buf in
            rd_kafka_CreateTopics(rk, buf.baseAddress, buf.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 5_000) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "create_topics", kind: .retriable)
        }
        defer { rd_kafka_event_destroy(event) }
        let eventErr = rd_kafka_event_error(event)
        if eventErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: eventErr, operation: "create_topics", kind: .retriable)
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return [] }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return [] }
        var created: [String] = []
        for i in 0..<count {
            guard let r = results[i] else { continue }
            let name = rd_kafka_topic_result_name(r).map { String(cString: $0) } ?? "?"
            let err = rd_kafka_topic_result_error(r)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                created.append(name)
            } else if err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                var error = KafkaError(code: err, operation: "create topic \(name)")
                if let text = rd_kafka_topic_result_error_string(r) { error.message = String(cString: text) }
                throw error
            }
        }
        return created
    }
}
