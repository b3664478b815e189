// The routing table cached on the gateway's loop: which keys to forward straight to their owner's gateway.
import Shared

/// A routing table as fetched from the local ingestor, and the per-key decision it supports. Pure value.
///
/// The table is only a hint: the owner re-checks every forwarded request (421 when it no longer owns the
/// key), and keys the table gives to this pod, or cannot place, go to the local ingestor, which answers only
/// for partitions it holds and has restored. So a stale table can cost a retry, never a wrong answer.
struct RoutingSnapshot: Equatable {
    enum Decision: Equatable {
        /// Ask the local ingestor (it owns the key, or the table cannot say; it answers notOwner otherwise).
        case local
        /// Send the request straight to the owner's gateway.
        case forward(endpoint: String, partition: Int)
    }

    let partitionCount: Int
    let localEndpoint: String
    let fetchedAtMs: UInt64
    /// Owner endpoint per partition; nil when the table has no live owner or the entry was forgotten.
    private(set) var owners: [String?]

    init(_ info: RoutingInfo, fetchedAtMs: UInt64) {
        partitionCount = max(0, Int(info.partitionCount))
        localEndpoint = info.localEndpoint
        self.fetchedAtMs = fetchedAtMs
        var owners = [String?](repeating: nil, count: partitionCount)
        for entry in info.owners where entry.partition >= 0 && Int(entry.partition) < partitionCount {
            owners[Int(entry.partition)] = entry.endpoint
        }
        self.owners = owners
    }

    /// Where `key` should go at `nowMs`; `.local` when the table is older than `maxAgeMs`.
    func decide(key: String, nowMs: UInt64, maxAgeMs: UInt64) -> Decision {
        guard partitionCount > 0, nowMs &- fetchedAtMs <= maxAgeMs, !localEndpoint.isEmpty else { return .local }
        let partition = KeyPartitioner.partition(forKey: key, partitionCount: partitionCount)
        guard let endpoint = owners[partition], !endpoint.isEmpty, endpoint != localEndpoint else { return .local }
        return .forward(endpoint: endpoint, partition: partition)
    }

    /// Drops one partition's entry (a 421 or notOwner proved it wrong): its keys go local until the next refresh.
    mutating func forget(partition: Int) {
        guard partition >= 0, partition < owners.count else { return }
        owners[partition] = nil
    }
}

/// Keeps a `RoutingSnapshot` fresh: fetched from the ingestor every `refreshMs`, and at once (coalesced, one
/// request in flight) whenever an answer proves it stale. Bound to the loop thread.
final class RoutingCache {
    private let loop: EventLoop
    private let client: any IngestorClient
    private let refreshMs: UInt64
    /// Beyond this age the table is not trusted (the ingestor stopped answering): every key goes local.
    let maxAgeMs: UInt64
    private(set) var snapshot: RoutingSnapshot?
    private var refreshing = false
    /// The ingestor does not know `routingTable` (an older build): stop asking.
    private var unsupported = false
    private var timer: LoopTimer?

    init(loop: EventLoop, client: any IngestorClient, refreshMs: UInt64 = 1_000, maxAgeMs: UInt64 = 5_000) {
        self.loop = loop
        self.client = client
        self.refreshMs = refreshMs
        self.maxAgeMs = maxAgeMs
        let timer = LoopTimer(loop: loop)
        timer.start(timeoutMs: refreshMs, repeatMs: refreshMs) { [unowned self] in self.refresh() }
        timer.unref()  // a background refresh must not keep the loop alive
        self.timer = timer
    }

    /// Where `key` should go now.
    func decide(key: String) -> RoutingSnapshot.Decision {
        snapshot?.decide(key: key, nowMs: loop.nowMs, maxAgeMs: maxAgeMs) ?? .local
    }

    /// An answer showed the table wrong for `partition` (or for some partition): forget it and refetch.
    func invalidate(partition: Int?) {
        if let partition { snapshot?.forget(partition: partition) }
        refresh()
    }

    /// Takes a freshly fetched table (also one the cluster listing fetched).
    func update(_ info: RoutingInfo) {
        snapshot = RoutingSnapshot(info, fetchedAtMs: loop.nowMs)
    }

    /// Fetches the table unless a fetch is already in flight.
    func refresh() {
        guard !refreshing, !unsupported, timer != nil else { return }
        guard client.isConnected else { return }
        refreshing = true
        client.send(.routingTable, timeoutMs: 1_000) { [weak self] reply in
            guard let self else { return }
            self.refreshing = false
            switch reply {
            case .response(.routing(let info)): self.update(info)
            case .response(.unsupported): self.unsupported = true
            default: break  // keep the old table; it ages out after maxAgeMs
            }
        }
    }

    func close() {
        timer?.close()
        timer = nil
        snapshot = nil
    }
}
