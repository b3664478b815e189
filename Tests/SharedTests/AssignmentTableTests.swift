// Ownership from published assignments: newest claim wins, expiry, restoring partitions, stale epochs.
import Testing

@testable import Shared

private func announce(
    _ member: String, _ partitions: [Int], restoring: [Int] = [], epoch: Int64 = 1, time: Int64 = 1_000,
    ttl: Int64 = 10_000
) -> RoutingAnnouncement {
    var a = RoutingAnnouncement(
        member: member, endpoint: "\(member):8080", partitions: partitions, restoring: restoring, partitionCount: 4,
        epoch: epoch, time: time, ttlMs: ttl)
    a.sequence = time  // in these tests the log order follows the announce time
    return a
}

@Suite struct AssignmentTableTests {
    @Test func ownersFromAnnouncements() {
        var table = AssignmentTable()
        table.apply(announce("a", [0, 1]))
        table.apply(announce("b", [2, 3], restoring: [3]))
        #expect(table.owner(ofPartition: 0, now: 2_000)?.endpoint == "a:8080")
        #expect(table.owner(ofPartition: 2, now: 2_000) == PartitionClaim(member: "b", endpoint: "b:8080", ready: true))
        #expect(table.owner(ofPartition: 3, now: 2_000)?.ready == false)
        #expect(table.owner(ofKey: "abc", now: 2_000)?.partition == 3)
        #expect(table.endpoints(now: 2_000) == ["a:8080", "b:8080"])
    }

    @Test func newestClaimWinsDuringARebalance() {
        var table = AssignmentTable()
        table.apply(announce("a", [0, 1, 2, 3], time: 1_000))
        table.apply(announce("b", [2, 3], time: 2_000))  // b got 2 and 3; a has not re-announced yet
        #expect(table.owner(ofPartition: 2, now: 2_500)?.member == "b")
        #expect(table.owner(ofPartition: 0, now: 2_500)?.member == "a")
    }

    @Test func logOrderNotClockOrderDecides() {
        var table = AssignmentTable()
        var a = announce("a", [1], time: 9_000)  // a's clock runs ahead
        a.sequence = 1
        var b = announce("b", [1], time: 2_000)
        b.sequence = 2
        table.apply(a)
        table.apply(b)
        #expect(table.owner(ofPartition: 1, now: 9_500)?.member == "b")
    }

    @Test func staleEpochIsIgnoredAndClaimsExpire() {
        var table = AssignmentTable()
        table.apply(announce("a", [0], epoch: 5, time: 5_000))
        table.apply(announce("a", [0, 1], epoch: 4, time: 4_000))
        #expect(table.owner(ofPartition: 1, now: 6_000) == nil)
        #expect(table.owner(ofPartition: 0, now: 14_999)?.member == "a")
        #expect(table.owner(ofPartition: 0, now: 15_000) == nil)
        table.expire(now: 15_000)
        #expect(table.members.isEmpty)
        #expect(table.owner(ofKey: "abc", now: 15_000) == nil)
    }

    /// Fuzz regression (Tests/Fuzz/RoutingRecordFuzz/regressions/expiry-overflow.json): a routing record with
    /// `time` near Int64.max trapped on `time + ttlMs`, crashing every ingestor that read it.
    @Test func extremeTimesDoNotTrap() {
        func claim(time: Int64, ttlMs: Int64) -> RoutingAnnouncement {
            RoutingAnnouncement(
                member: "m", endpoint: "e", partitions: [0], partitionCount: 1, epoch: 0, time: time, ttlMs: ttlMs)
        }
        #expect(!claim(time: .max, ttlMs: 1).isExpired(now: .max))
        #expect(claim(time: .min, ttlMs: -1).isExpired(now: .min))
        #expect(claim(time: 10, ttlMs: 5).isExpired(now: 15))
        #expect(!claim(time: 10, ttlMs: 5).isExpired(now: 14))
        var table = AssignmentTable()
        table.apply(claim(time: .max, ttlMs: .max))
        #expect(table.owner(ofKey: "k", now: 0)?.partition == 0)
        table.expire(now: .max)
        #expect(table.members.count == 1)
    }
}
