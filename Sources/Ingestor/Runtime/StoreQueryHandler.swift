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
                HealthCheck(name: "group-joined", valid: s.joinedGroup),
                HealthCheck(name: "partitions-restored", valid: s.restoring.isEmpty),
            ])
    }

    func get(store name: String, key: String) -> SocketResponse {
        guard let kind = StoreKind(name: name) else { return .badRequest(message: "unknown store '\(name)'") }
        let s = registry.snapshot
        guard s.partitionCount > 0 else { return .notReady(retryAfterMs: 1_000, message: "not assigned yet") }
        let keyBytes = Array(key.utf8)
        let home = Int32(KeyPartitioner.partition(forKey: key, partitionCount: Int(s.partitionCount)))
        let store = stores[kind]
        // The murmur2 partition first; then any other served partition (producers with another partitioner).
        var candidates = s.states[home] == .active ? [home] : []
        candidates += s.active.filter { $0 != home }
        for p in candidates {
            guard let bytes = store.get(partition: p, key: keyBytes) else { continue }
            return render(kind, bytes)
        }
        switch s.states[home] {
        case .active: return .notFound
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

    /// Keys of served partitions, partition by partition in key order. Cursor: "<partition>/<last key>".
    func list(store name: String, limit: Int, cursor: String?) -> SocketResponse {
        guard let kind = StoreKind(name: name) else { return .badRequest(message: "unknown store '\(name)'") }
        let store = stores[kind]
        var startPartition: Int32 = 0
        var after: [UInt8]?
        if let cursor, !cursor.isEmpty {
            guard let slash = cursor.firstIndex(of: "/"), let p = Int32(cursor[..<slash]) else {
                return .badRequest(message: "bad cursor")
            }
            startPartition = p
            after = Array(cursor[cursor.index(after: slash)...].utf8)
        }
        let limit = max(1, min(limit, 100_000))
        var keys: [String] = []
        var last: (Int32, [UInt8])?
        for p in registry.snapshot.active where p >= startPartition {
            let page = store.keys(partition: p, after: p == startPartition ? after : nil, limit: limit - keys.count)
            for k in page {
                keys.append(String(decoding: k, as: UTF8.self))
                last = (p, k)
            }
            if keys.count >= limit { break }
        }
        let next = keys.count >= limit ? last.map { "\($0.0)/\(String(decoding: $0.1, as: UTF8.self))" } : nil
        return .keys(KeyPage(keys: keys, nextCursor: next))
    }

    func owner(key: String) -> SocketResponse {
        let s = registry.snapshot
        guard s.partitionCount > 0 else { return .notReady(retryAfterMs: 1_000, message: "not assigned yet") }
        let p = Int32(KeyPartitioner.partition(forKey: key, partitionCount: Int(s.partitionCount)))
        if s.states[p] != nil { return .owner(KeyOwner(partition: p, endpoint: localEndpoint, isLocal: true)) }
        return .owner(KeyOwner(partition: p, endpoint: routing?.endpoint(ofPartition: p), isLocal: false))
    }

    private func publish(_ json: [UInt8], reply: @escaping @Sendable (SocketResponse) -> Void) {
        guard let publisher else { return reply(.unavailable(message: "publishing is not available")) }
        let event: InputEvent
        do {
            event = try EventJSON.parse(json)
        } catch {
            return reply(.badRequest(message: error.message))
        }
        let value = codec.withLock { $0.encode(event) }
        publisher.publish(key: Array(EventKey.key(for: event).utf8), value: value) { result in
            switch result {
            case .success(let receipt): reply(.published(receipt))
            case .failure(let error): reply(.unavailable(message: "publish failed: \(error)"))
            }
        }
    }
}
