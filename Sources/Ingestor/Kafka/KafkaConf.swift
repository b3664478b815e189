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

    /// Caps glibc's malloc arenas before librdkafka starts its threads (once per process): each thread that
    /// meets a locked arena otherwise gets its own, keeping its freed memory (tens of MB of anon RSS with a deep
    /// prefetch, measured in docs/benchmarks.md). Blocks from 128 kB up get mappings of their own, unmapped on
    /// free: each commit epoch's MB-sized buffers are freed a moment later. An explicit `MALLOC_ARENA_MAX`,
    /// `MALLOC_MMAP_THRESHOLD_` or malloc tunable in `GLIBC_TUNABLES` in the environment wins.
    static let mallocTuned: Void = {
        if getenv("MALLOC_ARENA_MAX") == nil { _ = k8s_malloc_arena_max(2) }
        let tunables = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil, !tunables.contains("glibc.malloc.mmap_threshold") {
            k8s_malloc_unmap_from(Int32(unmapFromBytes))
        }
    }()

    /// The size from which a malloc'd block is mapped on its own (see `mallocTuned`).
    static let unmapFromBytes = 128 * 1_024

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
