// Kafka default partitioner vectors (Java client's murmur2 and the examples).
import Testing

@testable import Shared

@Suite struct KeyPartitionerTests {
    @Test func murmur2MatchesJava() {
        #expect(KeyPartitioner.murmur2("21".utf8) == -973_932_308)
        #expect(KeyPartitioner.murmur2("foobar".utf8) == -790_332_482)
        // Vectors from Kafka's UtilsTest.testMurmur2.
        #expect(KeyPartitioner.murmur2("a-little-bit-long-string".utf8) == -985_981_536)
        #expect(KeyPartitioner.murmur2("a-little-bit-longer-string".utf8) == -1_486_304_829)
        #expect(KeyPartitioner.murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".utf8) == -58_897_971)
        #expect(KeyPartitioner.murmur2([UInt8]("abc".utf8)) == 479_470_107)
    }

    @Test func partitionsMatchKafka() {
        #expect(KeyPartitioner.partition(forKey: "abc", partitionCount: 4) == 3)
        #expect(KeyPartitioner.partition(forKey: "foobar", partitionCount: 4) == 2)
        #expect(KeyPartitioner.partition(forKey: "hello world", partitionCount: 4) == 3)
    }

    @Test func everyKeyLandsInRange() {
        for i in 0..<1000 {
            let p = KeyPartitioner.partition(forKey: "key-\(i)", partitionCount: 7)
            #expect((0..<7).contains(p))
        }
    }
}
