// Unit tests of the librdkafka wrappers that need no broker: statistics parsing, configuration errors.
import CRdKafka
import Testing

@testable import Ingestor

@Suite struct KafkaUnitTests {
    @Test func mallocTuningYieldsToWhatTheEnvironmentSets() {
        func tuning(_ env: [String: String]) -> MallocTuning { MallocTuning(environment: { env[$0] }) }
        #expect(tuning([:]).arenaMax == MallocTuning.arenasForEveryThread)
        #expect(tuning([:]).unmapFromBytes == 128 * 1_024)
        #expect(tuning(["MALLOC_ARENA_MAX": "8"]).arenaMax == nil)
        #expect(tuning(["MALLOC_ARENA_MAX": "8"]).unmapFromBytes == 128 * 1_024)
        #expect(tuning(["MALLOC_MMAP_THRESHOLD_": "1048576"]).unmapFromBytes == nil)
        #expect(tuning(["MALLOC_TRIM_THRESHOLD_": "1048576"]).unmapFromBytes == nil)
        #expect(tuning(["GLIBC_TUNABLES": "glibc.malloc.arena_max=4"]).arenaMax == nil)
        #expect(
            tuning(["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=65536"]).unmapFromBytes
                == nil)
        // Other tunables leave the threshold to the ingestor.
        #expect(tuning(["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"]).unmapFromBytes == 128 * 1_024)
        #expect(tuning(["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"]).arenaMax == MallocTuning.arenasForEveryThread)
    }

    @Test func statisticsYieldLagPerPartitionAndZeroForUnfetchedOnes() {
        let json = """
            {"name":"c","topics":{"input":{"topic":"input","partitions":{
              "0":{"partition":0,"fetch_state":"active","consumer_lag":12},
              "1":{"partition":1,"fetch_state":"none","consumer_lag":-1},
              "-1":{"partition":-1,"consumer_lag":-1}}}}}
            """
        let lags = KafkaStatistics.partitionLags(Array(json.utf8)).sorted { $0.partition < $1.partition }
        #expect(lags.count == 2)
        #expect(lags.first?.partition == 0 && lags.first?.lag == 12 && lags.first?.topic == "input")
        // Not fetched here (revoked or never assigned): 0, not the last lag this pod saw.
        #expect(lags.last?.partition == 1 && lags.last?.lag == 0)
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

    /// Under exactly_once_v2 librdkafka's committed offset never moves (the producer commits), so its
    /// consumer_lag is -1: the lag comes from the Fetch high watermark and the application position.
    @Test func lagFollowsTheApplicationPositionWhenLibrdkafkaHasNone() {
        let json = """
            {"topics":{"input":{"partitions":{
              "0":{"partition":0,"fetch_state":"active","consumer_lag":-1,"hi_offset":500,"ls_offset":480,
                   "app_offset":300,"next_offset":500,"committed_offset":-1001,"fetchq_cnt":200},
              "1":{"partition":1,"fetch_state":"active","consumer_lag":-1,"hi_offset":70,"ls_offset":-1,
                   "app_offset":-1001,"next_offset":40,"committed_offset":-1001,"fetchq_cnt":0},
              "2":{"partition":2,"fetch_state":"active","consumer_lag":-1,"hi_offset":70,"ls_offset":70,
                   "app_offset":-1001,"next_offset":60,"committed_offset":-1001,"fetchq_cnt":10},
              "3":{"partition":3,"fetch_state":"active","consumer_lag":-1,"hi_offset":9,"ls_offset":9,
                   "app_offset":12,"next_offset":12,"committed_offset":5,"fetchq_cnt":0}}}}}
            """
        let lags = Dictionary(
            uniqueKeysWithValues: KafkaStatistics.partitionLags(Array(json.utf8)).map { ($0.partition, $0.lag) })
        #expect(lags[0] == 180)  // last stable offset − position
        #expect(lags[1] == 30)  // no stable offset: high watermark − fetch position (nothing queued)
        #expect(lags[2] == nil)  // records queued but none handed out: position unknown
        #expect(lags[3] == 0)  // a stale watermark never gives a negative lag
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

    @Test func aFenceIsFatalWhateverClassLibrdkafkaGaveIt() {
        func kind(_ code: Int32, fatal: Bool = false, abort: Bool = false, retry: Bool = false) -> KafkaError.Kind {
            KafkaError.kind(code: code, fatal: fatal, requiresAbort: abort, retriable: retry)
        }
        // What librdkafka returned from send_offsets_to_transaction when tansu fenced one partition.
        #expect(kind(RD_KAFKA_RESP_ERR__FENCED.rawValue, abort: true) == .fatal)
        #expect(kind(RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue, retry: true) == .fatal)
        #expect(kind(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue) == .fatal)
        #expect(KafkaError(code: RD_KAFKA_RESP_ERR__FENCED, operation: "x").message.contains("fenced by a newer"))
        // Anything else keeps librdkafka's class, fatal first.
        #expect(kind(RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, fatal: true, abort: true) == .fatal)
        #expect(kind(RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, abort: true, retry: true) == .abortable)
        #expect(kind(RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, retry: true) == .retriable)
        #expect(kind(RD_KAFKA_RESP_ERR__STATE.rawValue) == .other)
    }

    @Test func libraryVersionIsReported() {
        #expect(!KafkaLibrary.version.isEmpty)
    }
}
