// What the gateway (or a probe) asks the ingestor: one case per operation.

/// A request. Keys and store names are UTF-8 strings; JSON bodies are raw bytes.
package enum SocketRequest: Sendable, Equatable {
    /// Liveness of the socket itself; answered `.pong`.
    case ping
    /// Health of the ingestor; answered `.health(HealthReport)`.
    case health
    /// One aggregate as JSON; answered `.value`, `.notFound`, `.notReady` or `.notOwner`.
    case get(store: String, key: String)
    /// Local keys of a store, at most `limit`, after `cursor` (nil = from the start); answered `.keys`.
    case listKeys(store: String, limit: UInt32, cursor: String?)
    /// Which partition and pod own a key; answered `.owner` (or `.notReady` before assignment).
    case owner(key: String)
    /// The routing table (partition → gateway endpoint); answered `.routing`.
    case routingTable
    /// The ingestor's Prometheus text exposition; answered `.metrics`.
    case metrics
    /// Publish one event given as JSON (POST /events); answered `.published` or `.badRequest`.
    case publish(json: [UInt8])
    /// Graceful shutdown of the ingestor; answered `.stopping` before it stops.
    case stop
    /// An operation code this build does not know (from a newer peer); the server answers
    /// `.unsupported` itself, the handler never sees it.
    case unknown(operation: UInt8)

    /// The operation code written in the frame.
    package var operationCode: UInt8 {
        switch self {
        case .ping: SocketOperation.ping.rawValue
        case .health: SocketOperation.health.rawValue
        case .get: SocketOperation.get.rawValue
        case .listKeys: SocketOperation.listKeys.rawValue
        case .owner: SocketOperation.owner.rawValue
        case .routingTable: SocketOperation.routingTable.rawValue
        case .metrics: SocketOperation.metrics.rawValue
        case .publish: SocketOperation.publish.rawValue
        case .stop: SocketOperation.stop.rawValue
        case .unknown(let op): op
        }
    }
}
