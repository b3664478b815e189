// Partition → owning pod, built from the assignments the ingestors publish themselves (docs/routing.md).
// Pure value type; the ingestor that builds it owns it on its routing thread and hands out copies.

/// One ingestor's published claim: "member M, reachable at endpoint E, owns these partitions".
/// Published on the routing topic as JSON (`RoutingRecord`).
public struct RoutingAnnouncement: Sendable, Equatable {
    public var member: String
    public var endpoint: String
    public var partitions: [Int]
    /// Partitions assigned but still restoring: owned, not yet servable.
    public var restoring: [Int]
    /// Partition count of the input topic as the announcer sees it.
    public var partitionCount: Int
    /// Bumped by the announcer on every assignment change; orders claims of one member.
    public var epoch: Int64
    /// Milliseconds since the epoch when announced; claims expire `ttlMs` after it.
    public var time: Int64
    public var ttlMs: Int64
    /// Position in the routing log (its Kafka offset), set by the reader: a total order of claims that does
    /// not depend on the pods' clocks. Not part of the published JSON.
    public var sequence: Int64 = 0

    public init(
        member: String, endpoint: String, partitions: [Int], restoring: [Int] = [], partitionCount: Int,
        epoch: Int64, time: Int64, ttlMs: Int64
    ) {
        self.member = member
        self.endpoint = endpoint
        self.partitions = partitions
        self.restoring = restoring
        self.partitionCount = partitionCount
        self.epoch = epoch
        self.time = time
        self.ttlMs = ttlMs
    }

    /// Whether the claim ended by `now`. Times come off the routing topic, so anything may be there: a sum
    /// past Int64.max never expires, one below Int64.min expired long ago (no overflow trap).
    public func isExpired(now: Int64) -> Bool {
        let (end, overflow) = time.addingReportingOverflow(ttlMs)
        if overflow { return ttlMs < 0 }
        return end <= now
    }
}

/// The owner of one partition as far as the table knows.
public struct PartitionClaim: Sendable, Equatable {
    public var member: String
    public var endpoint: String
    public var ready: Bool
}

public struct AssignmentTable: Sendable, Equatable {
    /// Latest announcement per member (older epochs of the same member are replaced).
    public private(set) var members: [String: RoutingAnnouncement] = [:]

    public init() {}

    /// Applies an announcement; an older epoch of a member never replaces a newer one.
    public mutating func apply(_ announcement: RoutingAnnouncement) {
        if let current = members[announcement.member],
            (current.epoch, current.sequence) > (announcement.epoch, announcement.sequence)
        {
            return
        }
        members[announcement.member] = announcement
    }

    /// Forgets a member at once (it announced it is leaving).
    public mutating func remove(member: String) { members[member] = nil }

    /// Drops expired claims.
    public mutating func expire(now: Int64) {
        members = members.filter { !$0.value.isExpired(now: now) }
    }

    /// Largest partition count any live member announced (0 when none).
    public func partitionCount(now: Int64) -> Int {
        members.values.filter { !$0.isExpired(now: now) }.map(\.partitionCount).max() ?? 0
    }

    /// The owner of a partition: among live claims, the latest in the routing log (a new owner announces after
    /// the rebalance that gave it the partition, so its claim follows the stale claim of the previous owner).
    public func owner(ofPartition partition: Int, now: Int64) -> PartitionClaim? {
        let claims = members.values.filter { !$0.isExpired(now: now) && $0.partitions.contains(partition) }
        guard let best = claims.max(by: { ($0.sequence, $0.time, $0.member) < ($1.sequence, $1.time, $1.member) })
        else {
            return nil
        }
        return PartitionClaim(member: best.member, endpoint: best.endpoint, ready: !best.restoring.contains(partition))
    }

    /// The owner of a key (murmur2 partitioning), nil when its partition has no live owner.
    public func owner(ofKey key: String, now: Int64) -> (partition: Int, owner: PartitionClaim?)? {
        let count = partitionCount(now: now)
        guard count > 0 else { return nil }
        let partition = KeyPartitioner.partition(forKey: key, partitionCount: count)
        return (partition, owner(ofPartition: partition, now: now))
    }

    /// Distinct live endpoints (for cluster-wide listings).
    public func endpoints(now: Int64) -> [String] {
        Array(Set(members.values.filter { !$0.isExpired(now: now) }.map(\.endpoint))).sorted()
    }
}
