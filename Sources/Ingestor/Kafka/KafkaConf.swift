// Builds an rd_kafka_conf_t from a property map (kafka.properties pass through verbatim).
import CRdKafka

#if canImport(Glibc)
    import Glibc
#endif

/// Owns a configuration object until it is handed to rd_kafka_new (which takes it).
/// Used by the wrappers in this folder only; not thread-safe (build, then hand over).
final class KafkaConf {
    private(set) var handle: OpaquePointer?

    init(_ properties: [String: String]) throws(KafkaError) {
        _ = KafkaConf.mallocTuned
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(config: "rd_kafka_conf_new failed") }
        handle = conf
        // Stable order so errors are reproducible.
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            try set(key, value)
        }
    }

    /// glibc malloc settings, applied once per process before librdkafka starts its threads (see `MallocTuning`).
    private static let mallocTuned: Void = {
        let tuning = MallocTuning(environment: { name in getenv(name).map { String(cString: $0) } })
        if let arenas = tuning.arenaMax { _ = k8s_malloc_arena_max(Int32(arenas)) }
        if let bytes = tuning.unmapFromBytes { k8s_malloc_unmap_from(Int32(bytes)) }
    }()

    /// Returns freed heap pages to the kernel (called every few seconds by the stream loop): the record
    /// cache's evictions and librdkafka's drained fetch buffers otherwise stay resident as anon memory.
    static func releaseFreeMemory() { k8s_malloc_trim() }

    func set(_ key: String, _ value: String) throws(KafkaError) {
        guard let handle else { throw KafkaError(config: "configuration already consumed") }
        var errstr = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(handle, key, value, &errstr, errstr.count)
        if result != RD_KAFKA_CONF_OK {
            throw KafkaError(config: "kafka.properties.\(key): \(cText(errstr))")
        }
    }

    /// Hands the configuration to rd_kafka_new; on failure it stays owned here and is destroyed in deinit.
    func makeClient(_ type: rd_kafka_type_t) throws(KafkaError) -> OpaquePointer {
        guard let conf = handle else { throw KafkaError(config: "configuration already consumed") }
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            throw KafkaError(config: "rd_kafka_new: \(cText(errstr))")
        }
        handle = nil
        return rk
    }

    deinit {
        if let handle { rd_kafka_conf_destroy(handle) }
    }
}

/// A topic partition and an offset, as the wrappers exchange them with the runtime.
package struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    package var topic: String
    package var partition: Int32
    package init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    package var description: String { "\(topic)[\(partition)]" }
}

/// Helpers converting between Swift values and rd_kafka_topic_partition_list_t (this folder only).
enum PartitionList {
    static func make(_ offsets: [TopicPartition: Int64]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        guard let list = rd_kafka_topic_partition_list_new(Int32(max(offsets.count, 1))) else {
            preconditionFailure("rd_kafka_topic_partition_list_new: out of memory")
        }
        for (tp, offset) in offsets {
            let entry = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)
            entry?.pointee.offset = offset
        }
        return list
    }

    static func make(_ partitions: [TopicPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        make(Dictionary(partitions.map { ($0, k8s_rdk_offset_invalid) }, uniquingKeysWith: { a, _ in a }))
    }

    static func read(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [(TopicPartition, Int64, Int32)] {
        var out: [(TopicPartition, Int64, Int32)] = []
        let count = Int(list.pointee.cnt)
        guard let elems = list.pointee.elems else { return out }
        for i in 0..<count {
            let e = elems[i]
            let topic = e.topic.map { String(cString: $0) } ?? ""
            out.append((TopicPartition(topic, e.partition), e.offset, e.err.rawValue))
        }
        return out
    }
}

/// A NUL-terminated C error buffer as a String.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
