// What the ingestor answers: one success case per operation plus the failure statuses.

/// A response. Success cases carry their own operation; failure cases echo the request's.
package enum SocketResponse: Sendable, Equatable {
    // Success (status ok), one per operation.
    case pong
    case health(HealthReport)
    /// The aggregate rendered as JSON (the API's JSON), UTF-8 bytes.
    case value(json: [UInt8])
    case keys(KeyPage)
    case owner(KeyOwner)
    case routing(RoutingInfo)
    case metrics(text: String)
    case published(PublishReceipt)
    case stopping

    // Failures (any operation).
    /// No such key in the store (HTTP 404).
    case notFound
    /// The key's partition is being restored or not yet assigned (HTTP 503 + Retry-After).
    case notReady(retryAfterMs: UInt32, message: String)
    /// The key's partition belongs to another pod; `endpoint` is its gateway if known (forward / 421).
    case notOwner(partition: Int32, endpoint: String?)
    /// The request is invalid: unknown store, bad event JSON (HTTP 400, message = reason).
    case badRequest(message: String)
    /// The operation is unknown to this ingestor (a newer gateway); the connection stays open.
    case unsupported(message: String)
    /// Temporarily unable: broker unreachable, shutting down (HTTP 503).
    case unavailable(message: String)
    /// A bug or an unexpected failure (HTTP 500).
    case internalError(message: String)
    /// A status code this build does not know (from a newer peer), with its message.
    case failure(status: UInt8, message: String)

    /// The operation a success case answers; nil for failures (they echo the request's).
    package var successOperation: SocketOperation? {
        switch self {
        case .pong: .ping
        case .health: .health
        case .value: .get
        case .keys: .listKeys
        case .owner: .owner
        case .routing: .routingTable
        case .metrics: .metrics
        case .published: .publish
        case .stopping: .stop
        case .notFound, .notReady, .notOwner, .badRequest, .unsupported, .unavailable, .internalError, .failure:
            nil
        }
    }

    /// The status byte written in the frame.
    package var statusCode: UInt8 {
        switch self {
        case .pong, .health, .value, .keys, .owner, .routing, .metrics, .published, .stopping:
            SocketStatus.ok.rawValue
        case .notFound: SocketStatus.notFound.rawValue
        case .notReady: SocketStatus.notReady.rawValue
        case .notOwner: SocketStatus.notOwner.rawValue
        case .badRequest: SocketStatus.badRequest.rawValue
        case .unsupported: SocketStatus.unsupported.rawValue
        case .unavailable: SocketStatus.unavailable.rawValue
        case .internalError: SocketStatus.internalError.rawValue
        case .failure(let status, _): status
        }
    }
}

/// Health of the ingestor as the gateway's /hams/alive and /hams/ready report it.
package struct HealthReport: Sendable, Equatable {
    package var alive: Bool
    package var ready: Bool
    package var joinedGroup: Bool
    package var partitionsAssigned: [Int32]
    package var partitionsRestoring: [Int32]
    /// Named checks, shown as `detail` in the health JSON.
    package var details: [HealthCheck]

    package init(
        alive: Bool, ready: Bool, joinedGroup: Bool, partitionsAssigned: [Int32] = [],
        partitionsRestoring: [Int32] = [], details: [HealthCheck] = []
    ) {
        self.alive = alive
        self.ready = ready
        self.joinedGroup = joinedGroup
        self.partitionsAssigned = partitionsAssigned
        self.partitionsRestoring = partitionsRestoring
        self.details = details
    }
}

/// One named health check.
package struct HealthCheck: Sendable, Equatable {
    package var name: String
    package var valid: Bool
    package init(name: String, valid: Bool) {
        self.name = name
        self.valid = valid
    }
}

/// One page of a key listing.
package struct KeyPage: Sendable, Equatable {
    package var keys: [String]
    /// Pass back as `cursor` to continue; nil when the listing is complete.
    package var nextCursor: String?
    /// The partitions whose keys this page lists (appended field; nil from an ingestor that does not say).
    /// Lets a cluster-wide listing prove every partition was covered during a rebalance.
    package var partitions: [Int32]?
    package init(keys: [String], nextCursor: String?, partitions: [Int32]? = nil) {
        self.keys = keys
        self.nextCursor = nextCursor
        self.partitions = partitions
    }
}

/// The owner of a key.
package struct KeyOwner: Sendable, Equatable {
    package var partition: Int32
    /// The owning pod's gateway endpoint (host:port); nil when unknown (no live routing entry).
    package var endpoint: String?
    /// True when this ingestor owns the partition.
    package var isLocal: Bool
    package init(partition: Int32, endpoint: String?, isLocal: Bool) {
        self.partition = partition
        self.endpoint = endpoint
        self.isLocal = isLocal
    }
}

/// Partition → gateway endpoint, as the ingestors publish it.
package struct RoutingInfo: Sendable, Equatable {
    /// Increases whenever the table changes.
    package var epoch: UInt64
    /// Partitions of the input topic (0 before the first assignment).
    package var partitionCount: Int32
    /// This pod's advertised gateway endpoint.
    package var localEndpoint: String
    /// Known owners; partitions without a live entry are absent.
    package var owners: [PartitionEndpoint]
    package init(epoch: UInt64, partitionCount: Int32, localEndpoint: String, owners: [PartitionEndpoint]) {
        self.epoch = epoch
        self.partitionCount = partitionCount
        self.localEndpoint = localEndpoint
        self.owners = owners
    }
}

/// One routing entry.
package struct PartitionEndpoint: Sendable, Equatable {
    package var partition: Int32
    package var endpoint: String
    package init(partition: Int32, endpoint: String) {
        self.partition = partition
        self.endpoint = endpoint
    }
}

/// Where a published event landed (after the broker's ack).
package struct PublishReceipt: Sendable, Equatable {
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    package init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}
