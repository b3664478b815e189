// The gateway's cached routing decisions (issue 6): when a key skips the local ingestor, and when it must not.
import Shared
import Testing

@testable import Gateway

@Suite struct RoutingCacheTests {
    static let here = "10.0.0.1:8080"
    static let there = "10.0.0.2:8080"

    static func table(count: Int32 = 4, owners: [Int32: String]) -> RoutingInfo {
        RoutingInfo(
            epoch: 1, partitionCount: count, localEndpoint: here,
            owners: owners.sorted { $0.key < $1.key }.map { PartitionEndpoint(partition: $0.key, endpoint: $0.value) })
    }

    /// A key whose murmur2 partition among 4 is `partition`.
    static func key(in partition: Int) -> String {
        var i = 0
        while KeyPartitioner.partition(forKey: "key-\(i)", partitionCount: 4) != partition { i += 1 }
        return "key-\(i)"
    }

    @Test func keysOfAnotherPodGoStraightToItsGateway() {
        let snapshot = RoutingSnapshot(
            Self.table(owners: [0: Self.here, 1: Self.here, 2: Self.there, 3: Self.there]), fetchedAtMs: 1_000)
        for p in 0..<4 {
            let decision = snapshot.decide(key: Self.key(in: p), nowMs: 1_500, maxAgeMs: 5_000)
            #expect(decision == (p < 2 ? .local : .forward(endpoint: Self.there, partition: p)))
        }
    }

    @Test func unknownOwnerOrForgottenPartitionAsksTheLocalIngestor() {
        var snapshot = RoutingSnapshot(Self.table(owners: [0: Self.here, 2: Self.there]), fetchedAtMs: 0)
        #expect(snapshot.decide(key: Self.key(in: 1), nowMs: 0, maxAgeMs: 5_000) == .local)  // no live owner
        #expect(
            snapshot.decide(key: Self.key(in: 2), nowMs: 0, maxAgeMs: 5_000)
                == .forward(endpoint: Self.there, partition: 2))
        snapshot.forget(partition: 2)  // a 421 proved it wrong
        #expect(snapshot.decide(key: Self.key(in: 2), nowMs: 0, maxAgeMs: 5_000) == .local)
        snapshot.forget(partition: 99)  // out of range: ignored
        snapshot.forget(partition: -1)
    }

    @Test func staleOrEmptyTablesAreNotTrusted() {
        let snapshot = RoutingSnapshot(
            Self.table(owners: [0: Self.there, 1: Self.there, 2: Self.there, 3: Self.there]), fetchedAtMs: 1_000)
        let key = Self.key(in: 3)
        #expect(
            snapshot.decide(key: key, nowMs: 6_000, maxAgeMs: 5_000) == .forward(endpoint: Self.there, partition: 3))
        #expect(snapshot.decide(key: key, nowMs: 6_001, maxAgeMs: 5_000) == .local)  // expired
        // Before the first assignment (no partition count) everything goes local.
        let empty = RoutingSnapshot(Self.table(count: 0, owners: [:]), fetchedAtMs: 0)
        #expect(empty.decide(key: key, nowMs: 0, maxAgeMs: 5_000) == .local)
        // Entries beyond the partition count or negative are ignored, not trapped on.
        let odd = RoutingSnapshot(Self.table(count: 2, owners: [-1: Self.there, 7: Self.there]), fetchedAtMs: 0)
        #expect(odd.decide(key: key, nowMs: 0, maxAgeMs: 5_000) == .local)
        // No advertised local endpoint: the table cannot tell local from remote.
        var info = Self.table(owners: [0: Self.there, 1: Self.there, 2: Self.there, 3: Self.there])
        info.localEndpoint = ""
        #expect(RoutingSnapshot(info, fetchedAtMs: 0).decide(key: key, nowMs: 0, maxAgeMs: 5_000) == .local)
    }

    @Test func partitionMatchesTheIngestors() {
        // The gateway and the ingestor must place keys identically (Kafka's murmur2): "abc" → 3 of 4.
        let snapshot = RoutingSnapshot(
            Self.table(owners: [0: Self.here, 1: Self.here, 2: Self.here, 3: Self.there]), fetchedAtMs: 0)
        #expect(snapshot.decide(key: "abc", nowMs: 0, maxAgeMs: 1) == .forward(endpoint: Self.there, partition: 3))
    }

    @Test func forwardedRequestIsMarked() {
        let bytes = Forwarder.request(endpoint: Self.there, target: "/chaser/a%20b?x=1")
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == "GET /chaser/a%20b?x=1 HTTP/1.1\r\nHost: 10.0.0.2:8080\r\nX-K8s-Micro-Forwarded: 1\r\n\r\n")
    }
}

@Suite struct PartitionCoverageTests {
    @Test func everyPartitionListedIsComplete() {
        let pages = [
            SourcePage(keys: ["a"], more: false, partitions: [0, 2]),
            SourcePage(keys: [], more: false, partitions: [1, 3]),
        ]
        #expect(PartitionCoverage.missing(pages, partitionCount: 4) == [])
    }

    @Test func aPartitionListedByNobodyIsReported() {
        // Mid-rebalance: partition 3 revoked from its old owner, not yet active on the new one.
        let pages = [
            SourcePage(keys: ["a"], more: false, partitions: [0, 2]),
            SourcePage(keys: ["b"], more: false, partitions: [1]),
        ]
        #expect(PartitionCoverage.missing(pages, partitionCount: 4) == [3])
        // Listed twice (old and new owner both answered) is still complete; duplicates merge away.
        let twice = pages + [SourcePage(keys: ["b"], more: false, partitions: [1, 3])]
        #expect(PartitionCoverage.missing(twice, partitionCount: 4) == [])
    }

    @Test func aSourceThatDoesNotSayFallsBackToTheTableCheck() {
        let pages = [
            SourcePage(keys: ["a"], more: false, partitions: [0]),
            SourcePage(keys: ["b"], more: false, partitions: nil),
        ]
        #expect(PartitionCoverage.missing(pages, partitionCount: 4) == nil)
    }

    @Test func headerRoundTrips() {
        for partitions: [Int32] in [[], [0], [0, 2, 5], [11]] {
            #expect(PartitionCoverage.parse(PartitionCoverage.header(partitions)) == partitions)
        }
        #expect(PartitionCoverage.parse(nil) == nil)
        #expect(PartitionCoverage.parse("1,x") == nil)
        #expect(PartitionCoverage.parse("1,,2") == nil)
        #expect(PartitionCoverage.parse("-1") == nil)
    }
}
