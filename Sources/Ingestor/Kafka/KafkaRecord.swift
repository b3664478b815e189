// Consumed Kafka records (copied out of librdkafka, or borrowed for one callback) and the shared header type.

/// One record header.
package struct KafkaHeader: Sendable, Equatable {
    package var name: String
    package var value: [UInt8]
    package init(_ name: String, _ value: [UInt8]) {
        self.name = name
        self.value = value
    }
    package init(_ name: String, _ text: String) {
        self.init(name, Array(text.utf8))
    }
}

/// A record as the runtime sees it: Swift-owned copies of key, value and (when asked) headers.
package struct KafkaRecord: Sendable {
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    package var key: [UInt8]?
    package var value: [UInt8]?
    package var headers: [KafkaHeader]

    package init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// The last header of that name, if any.
    package func header(_ name: String) -> [UInt8]? {
        headers.last { $0.name == name }?.value
    }
}

/// A consumed record borrowed from librdkafka (no copy): key and value are valid only inside the
/// `KafkaConsumer.pollBatch` callback that receives it.
package struct ConsumedRecord {
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    package var key: UnsafeRawBufferPointer?
    package var value: UnsafeRawBufferPointer?
    /// The last header of the name given to `pollBatch(header:)`, borrowed like key and value.
    package var header: UnsafeRawBufferPointer? = nil
}

/// What one consumer poll returns.
package enum ConsumerEvent: Sendable {
    case record(KafkaRecord)
    /// The consumer reached the end of a partition; `offset` is the next offset (the high watermark).
    case partitionEOF(TopicPartition, offset: Int64)
    case error(KafkaError)
}

/// Logical offsets (librdkafka's special values) for assign/seek.
package enum KafkaOffset {
    package static let beginning: Int64 = -2
    package static let end: Int64 = -1
    /// "No offset": e.g. a partition without a committed offset.
    package static let invalid: Int64 = -1001
}
