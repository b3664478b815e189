// Key → partition exactly as Kafka's default partitioner (Java client, librdkafka murmur2_random).

public enum KeyPartitioner {
    /// Kafka's murmur2 over the key bytes (seed 0x9747b28c), as a signed 32-bit value like Java's.
    public static func murmur2<Bytes: Collection>(_ data: Bytes) -> Int32 where Bytes.Element == UInt8 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        var index = data.startIndex
        for _ in 0..<(length / 4) {
            var k = UInt32(data[index])
            k |= UInt32(data[data.index(index, offsetBy: 1)]) << 8
            k |= UInt32(data[data.index(index, offsetBy: 2)]) << 16
            k |= UInt32(data[data.index(index, offsetBy: 3)]) << 24
            index = data.index(index, offsetBy: 4)
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = Array(data[index...])
        switch tail.count {
        case 3:
            h ^= UInt32(tail[2]) << 16
            h ^= UInt32(tail[1]) << 8
            h ^= UInt32(tail[0])
            h = h &* m
        case 2:
            h ^= UInt32(tail[1]) << 8
            h ^= UInt32(tail[0])
            h = h &* m
        case 1:
            h ^= UInt32(tail[0])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition of a UTF-8 key among `partitionCount` partitions.
    public static func partition(forKey key: String, partitionCount: Int) -> Int {
        precondition(partitionCount > 0, "partition count must be positive")
        let positive = Int(UInt32(bitPattern: murmur2(key.utf8)) & 0x7fff_ffff)
        return positive % partitionCount
    }
}
