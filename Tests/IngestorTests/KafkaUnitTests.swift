// Unit tests of the librdkafka wrappers that need no broker: statistics parsing, configuration errors.
import Testing

@testable import Ingestor

@Suite struct KafkaUnitTests {
    @Test func statisticsYieldLagPerAssignedPartition() {
        let json = """
            {"name":"c","topics":{"input":{"topic":"input","partitions":{
              "0":{"partition":0,"fetch_state":"active","consumer_lag":12},
              "1":{"partition":1,"fetch_state":"none","consumer_lag":-1},
              "-1":{"partition":-1,"consumer_lag":-1}}}}}
            """
        let lags = KafkaStatistics.partitionLags(Array(json.utf8))
        #expect(lags.count == 1)
        #expect(lags.first?.partition == 0 && lags.first?.lag == 12 && lags.first?.topic == "input")
        #expect(KafkaStatistics.partitionLags(Array("not json".utf8)).isEmpty)
    }

    @Test func brokerStateComesFromRealBrokersOnly() {
        // Bootstrap entries (nodeid -1) do not count: after a restart librdkafka may be connected to the
        // bootstrap address before it knows the broker again.
        func stats(_ brokers: String) -> [UInt8] { Array(#"{"name":"c","brokers":{\#(brokers)}}"#.utf8) }
        let up = stats(#""a:1/111":{"nodeid":111,"state":"UP"},"a:1/bootstrap":{"nodeid":-1,"state":"DOWN"}"#)
        let down = stats(#""a:1/111":{"nodeid":111,"state":"CONNECT"},"a:1/bootstrap":{"nodeid":-1,"state":"UP"}"#)
        #expect(KafkaStatistics.anyBrokerUp(up) == true)
        #expect(KafkaStatistics.anyBrokerUp(down) == false)
        #expect(KafkaStatistics.anyBrokerUp(Array(#"{"name":"c"}"#.utf8)) == nil)
        #expect(KafkaStatistics.anyBrokerUp(Array("not json".utf8)) == nil)
    }

    @Test func unknownPropertyIsAConfigErrorNamingTheKey() {
        #expect(throws: KafkaError.self) {
            _ = try KafkaConf(["no.such.property": "1"])
        }
        do {
            _ = try KafkaConf(["no.such.property": "1"])
        } catch {
            #expect(error.description.contains("kafka.properties.no.such.property"))
        }
    }

    @Test func libraryVersionIsReported() {
        #expect(!KafkaLibrary.version.isEmpty)
    }
}
