// Decodes the parts of librdkafka's statistics JSON the ingestor exports (consumer lag per partition).
import FoundationEssentials

enum KafkaStatistics {
    private struct Stats: Decodable {
        var topics: [String: Topic]?
    }
    private struct Topic: Decodable {
        var partitions: [String: Partition]?
    }
    private struct Partition: Decodable {
        var partition: Int32?
        var consumerLag: Int64?
        var fetchState: String?
        var hiOffset: Int64?
        var lsOffset: Int64?
        var appOffset: Int64?
        var nextOffset: Int64?
        var committedOffset: Int64?
        var fetchqCnt: Int64?
        enum CodingKeys: String, CodingKey {
            case partition
            case consumerLag = "consumer_lag"
            case fetchState = "fetch_state"
            case hiOffset = "hi_offset"
            case lsOffset = "ls_offset"
            case appOffset = "app_offset"
            case nextOffset = "next_offset"
            case committedOffset = "committed_offset"
            case fetchqCnt = "fetchq_cnt"
        }
    }

    /// Consumer lag of every partition librdkafka knows: for an assigned one, records in the log that the
    /// application has not been handed yet (Kafka Streams' `records-lag`: end offset − position); 0 for one this
    /// consumer does not fetch (`fetch_state` none: never assigned, or revoked), so a pod's gauge does not keep
    /// the last lag of a partition that moved to another pod. Partitions whose lag is unknown are left out.
    static func partitionLags(_ json: [UInt8]) -> [ConsumerPartitionStats] {
        guard let stats = try? JSONDecoder().decode(Stats.self, from: Data(json)) else { return [] }
        var out: [ConsumerPartitionStats] = []
        for (topic, t) in stats.topics ?? [:] {
            for (_, p) in t.partitions ?? [:] {
                guard let partition = p.partition, partition >= 0,
                    let lag = p.fetchState == "none" ? 0 : lag(of: p)
                else { continue }
                out.append(ConsumerPartitionStats(topic: topic, partition: partition, lag: lag))
            }
        }
        return out
    }

    private struct BrokerStats: Decodable {
        struct Broker: Decodable {
            var nodeid: Int32?
            var state: String?
        }
        var brokers: [String: Broker]?
    }

    /// Whether any real broker (not a bootstrap entry) is connected ("UP"); nil if the JSON has no brokers.
    static func anyBrokerUp(_ json: [UInt8]) -> Bool? {
        guard let stats = try? JSONDecoder().decode(BrokerStats.self, from: Data(json)), let brokers = stats.brokers
        else { return nil }
        return brokers.values.contains { ($0.nodeid ?? -1) >= 0 && $0.state == "UP" }
    }

    /// librdkafka's own `consumer_lag` is end − *committed* offset, and its committed offset is only the one
    /// this consumer committed itself or fetched at assignment: under exactly_once_v2 the producer commits
    /// (send_offsets_to_transaction), so it stays -1 or stale. The application position (`app_offset`, the
    /// offset after the last record handed out by a poll) moves with every batch under both guarantees.
    /// The end is the Fetch response's high watermark (`hi_offset`), or the last stable offset for a
    /// read_committed consumer when the broker sends one (`ls_offset` ≥ 0); ListOffsets is never asked.
    private static func lag(of p: Partition) -> Int64? {
        guard let hi = p.hiOffset, hi >= 0 else { return known(p.consumerLag) }
        let end = p.lsOffset.flatMap { $0 >= 0 && $0 <= hi ? $0 : nil } ?? hi
        // Nothing handed out since assignment: the fetch position is the position while nothing is queued.
        let position =
            known(p.appOffset) ?? (p.fetchqCnt == 0 ? known(p.nextOffset) : nil) ?? known(p.committedOffset)
        guard let position else { return known(p.consumerLag) }
        return max(0, end - position)
    }

    /// librdkafka writes negative offsets (-1, -1001) for "unknown".
    private static func known(_ value: Int64?) -> Int64? {
        value.flatMap { $0 >= 0 ? $0 : nil }
    }
}
