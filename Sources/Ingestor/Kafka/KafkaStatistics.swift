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
        enum CodingKeys: String, CodingKey {
            case partition
            case consumerLag = "consumer_lag"
            case fetchState = "fetch_state"
        }
    }

    /// Consumer lag of every assigned partition (librdkafka reports -1 for unknown; those are left out).
    static func partitionLags(_ json: [UInt8]) -> [ConsumerPartitionStats] {
        guard let stats = try? JSONDecoder().decode(Stats.self, from: Data(json)) else { return [] }
        var out: [ConsumerPartitionStats] = []
        for (topic, t) in stats.topics ?? [:] {
            for (_, p) in t.partitions ?? [:] {
                guard let partition = p.partition, partition >= 0, let lag = p.consumerLag, lag >= 0,
                    p.fetchState != "none"
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
}
