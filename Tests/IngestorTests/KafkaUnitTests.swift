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
