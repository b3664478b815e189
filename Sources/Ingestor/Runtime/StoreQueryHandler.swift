// Answers the socket's requests from the committed local stores (get, list, owner, health, metrics, publish).
import Logging
import Shared
import Synchronization

/// Where routing answers come from (the routing component plugs in here); nil answers "unknown".
protocol IngestorRoutingView: Sendable {
    /// The gateway endpoint owning a partition, if a live routing entry says so.
    func endpoint(ofPartition partition: Int32) -> String?
    /// The answer to `.routingTable`.
    func routingResponse() -> SocketResponse
}

/// Thread-safe; runs on the socket server's thread. Reads only committed state (LMDB read transactions), so
/// an answer is never ahead of the committed offsets, and never blocks the stream thread.
final class StoreQueryHandler: SocketRequestHandler {
    private let stores: StateStores
    private let registry: PartitionRegistry
    /// Decoding store values for rendering; the codec is single-threaded, hence the lock.
    private let codec: Mutex<EventCodec>
    private let publisher: EventPublisher?
    private let localEndpoint: String
    private let routing: (any IngestorRoutingView)?
    private let onStop: @Sendable () -> Void
    private let logger: Logger

    init(
        stores: StateStores, registry: PartitionRegistry, codec: sending EventCodec, publisher: EventPublisher?,
        localEndpoint: String, routing: (any IngestorRoutingView)?, onStop: @escaping @Sendable () -> Void,
        logger: Logger
    ) {
        self.stores = stores
        self.registry = registry
        self.codec = Mutex(codec)
        self.publisher = publisher
        self.localEndpoint = localEndpoint
        self.routing = routing
        self.onStop = onStop
        self.logger = logger
    }

    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        switch request {
        case .ping: reply(.pong)
        case .health: reply(.health(health()))
        case .get(let store, let key): reply(get(store: store, key: key))
        case .listKeys(let store, let limit, let cursor): reply(list(store: store, limit: Int(limit), cursor: cursor))
        case .owner(let key): reply(owner(key: key))
        case .routingTable: reply(routing?.routingResponse() ?? .unsupported(message: "routing not available"))
        case .metrics: reply(.metrics(text: MetricsSetup.exposition()))
        case .publish(let json): publish(json, reply: reply)
        case .stop:
            reply(.stopping)
            onStop()
        case .unknown(let op): reply(.unsupported(message: "unknown operation \(op)"))
        }
    }

    func health() -> HealthReport {
        let s = registry.snapshot
        return HealthReport(
            alive: s.running, ready: s.ready, joinedGroup: s.joinedGroup, partitionsAssigned: s.states.keys.sorted(),
            partitionsRestoring: s.restoring,
            details: [
                HealthCheck(name: "stream-thread", valid: s.running),
                HealthCheck(name: "input-topic", valid: s.inputTopicFound),
                HealthCheck(name: "group-joined", valid: s.joinedGroup),
                HealthCheck(name: "partitions-restored", valid: s.restoring.isEmpty),
                // Degraded, not unready: the pod cannot fix a broker outage and still serves its local state.
                HealthCheck(name: "broker-reachable", valid: s.brokerReachable),
            ])
    }

    func get(store name: String, key: String) -> SocketResponse {
        guard let kind = StoreKind(name: name) else { return .badRequest(message: "unknown store '\(name)'") }
        let s = registry.snapshot
        guard s.partitionCount > 0 else { return .notReady(retryAfterMs: 1_000, message: s.notAssignedReason) }
        let keyBytes = Array(key.utf8)
        let home = Int32(KeyPartitioner.partition(forKey: key, partitionCount: Int(s.partitionCount)))
        let store = stores[kind]
        // The murmur2 partition first; then any other served partition (producers with another partitioner).
        // Retained partitions (lost in a broker outage) answer from their last committed state.
        let served = s.served
        var candidates = s.states[home] == .active || s.states[home] == .retained ? [home] : []
        candidates += served.filter { $0 != home }
        for p in candidates {
            guard let bytes = store.get(partition: p, key: keyBytes) else { continue }
            return render(kind, bytes)
        }
        switch s.states[home] {
        case .active, .retained: return .notFound
        case .restoring: return .notReady(retryAfterMs: 1_000, message: "partition \(home) is restoring")
        case .none: return .notOwner(partition: home, endpoint: routing?.endpoint(ofPartition: home))
        }
    }

    private func render(_ kind: StoreKind, _ bytes: [UInt8]) -> SocketResponse {
        codec.withLock { codec in
            do {
                switch kind {
                case .chaser:
                    return .value(json: Array(AggregateJSON.render(try codec.decodeChaserAggregate(bytes)).utf8))
                case .billing:
                    return .value(json: Array(AggregateJSON.render(try codec.decodeBillAggregate(bytes)).utf8))
                }
            } catch {
                return .internalError(message: "undecodable store value: \(error)")
            }
        }
    }

    /// Keys of the served partitions merged into one byte-ordered listing (a k-way merge of the partitions'
    /// sorted LMDB key ranges), strictly after `cursor` (the last key of the previous page). Globally sorted, so
    /// the gateway can merge several pods' pages (`scope=cluster`) with the same cursor. Answers
    /// notReady while an assigned partition restores: a listing missing its keys must not look complete.
    func list(store name: String, limit: Int, cursor: String?) -> SocketResponse {
        guard let kind = StoreKind(name: name) else { return .badRequest(message: "unknown store '\(name)'") }
        let s = registry.snapshot
        if let p = s.restoring.first {
            return .notReady(retryAfterMs: 1_000, message: "partition \(p) is restoring")
        }
        // Before the first assignment an empty listing would look like an empty store.
        if s.states.isEmpty && !s.joinedGroup {
            return .notReady(retryAfterMs: 1_000, message: s.notAssignedReason)
        }
        let after = cursor.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        let page = Self.mergedKeys(of: s.served, limit: max(1, min(limit, 100_000)), after: after) { p, from, n in
            stores[kind].keys(partition: p, after: from, limit: n)
        }
        return .keys(
            KeyPage(
                keys: page.keys.map { String(decoding: $0, as: UTF8.self) },
                nextCursor: page.more ? page.keys.last.map { String(decoding: $0, as: UTF8.self) } : nil,
                partitions: s.served))
    }

    /// Up to `limit` distinct keys, in byte order, strictly after `after`, merged from sorted per-partition
    /// ranges read in chunks through `read(partition, after, count)`; `more` tells whether keys remain.
    static func mergedKeys(
        of partitions: [Int32], limit: Int, after: [UInt8]?, read: (Int32, [UInt8]?, Int) -> [[UInt8]]
    ) -> (keys: [[UInt8]], more: Bool) {
        struct Run {
            let partition: Int32
            var buffer: [[UInt8]]
            var index = 0
            var exhausted: Bool
        }
        let chunk = min(limit, 512)
        var runs = partitions.map { p in
            let first = read(p, after, chunk)
            return Run(partition: p, buffer: first, exhausted: first.count < chunk)
        }
        // Refills a run whose buffer is consumed; false when it has no keys left.
        func head(_ i: Int) -> Bool {
            if runs[i].index < runs[i].buffer.count { return true }
            guard !runs[i].exhausted, let last = runs[i].buffer.last else { return false }
            let next = read(runs[i].partition, last, chunk)
            runs[i].buffer = next
            runs[i].index = 0
            runs[i].exhausted = next.count < chunk
            return !next.isEmpty
        }
        var keys: [[UInt8]] = []
        while true {
            var best: Int?
            for i in runs.indices where head(i) {
                guard let b = best else {
                    best = i
                    continue
                }
                if runs[i].buffer[runs[i].index].lexicographicallyPrecedes(runs[b].buffer[runs[b].index]) { best = i }
            }
            guard let b = best else { return (keys, false) }
            let key = runs[b].buffer[runs[b].index]
            if keys.last == key {  // the same key in two partitions (a producer with another partitioner)
                runs[b].index += 1
                continue
            }
            if keys.count == limit { return (keys, true) }
            keys.append(key)
            runs[b].index += 1
        }
    }

    func owner(key: String) -> SocketResponse {
        let s = registry.snapshot
        guard s.partitionCount > 0 else { return .notReady(retryAfterMs: 1_000, message: s.notAssignedReason) }
        let p = Int32(KeyPartitioner.partition(forKey: key, partitionCount: Int(s.partitionCount)))
        if s.states[p] != nil { return .owner(KeyOwner(partition: p, endpoint: localEndpoint, isLocal: true)) }
        return .owner(KeyOwner(partition: p, endpoint: routing?.endpoint(ofPartition: p), isLocal: false))
    }

    private func publish(_ json: [UInt8], reply: @escaping @Sendable (SocketResponse) -> Void) {
        guard let publisher else { return reply(.unavailable(message: "publishing is not available")) }
        // Answer at once rather than queue a record the broker cannot take (the client retries after Retry-After).
        guard registry.snapshot.brokerReachable else {
            return reply(.unavailable(message: "the broker is unreachable; retry later"))
        }
        let event: InputEvent
        do {
            event = try EventJSON.parse(json)
        } catch {
            return reply(.badRequest(message: error.message))
        }
        let key = Array(EventKey.key(for: event).utf8)
        if let refused = StoreLimits.refusal(keyBytes: key.count) {
            let field = if case .chaser = event { "id" } else { "billId" }
            return reply(.badRequest(message: "\(field): \(refused.detail)"))
        }
        let value = codec.withLock { $0.encode(event) }
        publisher.publish(key: key, value: value) { result in
            switch result {
            case .success(let receipt): reply(.published(receipt))
            case .failure(let error): reply(.unavailable(message: "publish failed: \(error)"))
            }
        }
    }
}
