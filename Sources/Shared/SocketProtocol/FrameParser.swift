// Parses one complete frame (the bytes after its length prefix) into a SocketFrame.

/// Stateless parser of one frame body; every read is bounds-checked against the frame.
enum FrameParser {
    /// `frame` = version, kind, id, operation, status, body (the length prefix stripped).
    static func parse(_ frame: UnsafeRawBufferPointer) throws(SocketProtocolError) -> SocketFrame {
        guard frame.count >= SocketProtocol.headerSize else { throw .badLength(frame.count) }
        guard frame[0] == SocketProtocol.version else { throw .badVersion(frame[0]) }
        guard let kind = FrameKind(rawValue: frame[1]) else { throw .badKind(frame[1]) }
        let id = frame.readU32(at: 2)
        let op = frame[6]
        let status = frame[7]
        var r = ByteReader(bytes: frame, position: SocketProtocol.headerSize)
        switch kind {
        case .request:
            // The status byte of a request is reserved (written 0, ignored).
            return .request(id: id, try parseRequest(op, &r))
        case .response:
            return .response(id: id, operation: op, try parseResponse(op, status, &r))
        }
    }

    private static func parseRequest(_ op: UInt8, _ r: inout ByteReader) throws(SocketProtocolError) -> SocketRequest {
        guard let operation = SocketOperation(rawValue: op) else { return .unknown(operation: op) }
        switch operation {
        case .ping: return .ping
        case .health: return .health
        case .routingTable: return .routingTable
        case .metrics: return .metrics
        case .stop: return .stop
        case .get:
            let store = try r.string("get.store")
            return .get(store: store, key: try r.string("get.key"))
        case .listKeys:
            let store = try r.string("listKeys.store")
            let limit = try r.u32("listKeys.limit")
            return .listKeys(store: store, limit: limit, cursor: try r.optionalString("listKeys.cursor"))
        case .owner:
            return .owner(key: try r.string("owner.key"))
        case .publish:
            return .publish(json: try r.bytes("publish.json"))
        }
    }

    private static func parseResponse(
        _ op: UInt8, _ status: UInt8, _ r: inout ByteReader
    ) throws(SocketProtocolError) -> SocketResponse {
        guard let known = SocketStatus(rawValue: status) else {
            return .failure(status: status, message: try r.string("failure.message"))
        }
        switch known {
        case .ok:
            guard let operation = SocketOperation(rawValue: op) else { throw .unknownOperation(op) }
            return try parseSuccess(operation, &r)
        case .notFound:
            _ = try r.string("notFound.message")
            return .notFound
        case .notReady:
            let message = try r.string("notReady.message")
            return .notReady(retryAfterMs: try r.u32("notReady.retryAfterMs"), message: message)
        case .notOwner:
            _ = try r.string("notOwner.message")
            let partition = try r.i32("notOwner.partition")
            return .notOwner(partition: partition, endpoint: try r.optionalString("notOwner.endpoint"))
        case .badRequest: return .badRequest(message: try r.string("badRequest.message"))
        case .unsupported: return .unsupported(message: try r.string("unsupported.message"))
        case .unavailable: return .unavailable(message: try r.string("unavailable.message"))
        case .internalError: return .internalError(message: try r.string("internalError.message"))
        }
    }

    private static func parseSuccess(
        _ operation: SocketOperation, _ r: inout ByteReader
    ) throws(SocketProtocolError) -> SocketResponse {
        switch operation {
        case .ping: return .pong
        case .stop: return .stopping
        case .health:
            let alive = try r.bool("health.alive")
            let ready = try r.bool("health.ready")
            let joined = try r.bool("health.joinedGroup")
            let assigned = try r.i32Array("health.partitionsAssigned")
            let restoring = try r.i32Array("health.partitionsRestoring")
            let count = try r.count("health.details", minElementSize: 5)
            var details: [HealthCheck] = []
            details.reserveCapacity(count)
            for _ in 0..<count {
                let name = try r.string("health.details.name")
                details.append(HealthCheck(name: name, valid: try r.bool("health.details.valid")))
            }
            return .health(
                HealthReport(
                    alive: alive, ready: ready, joinedGroup: joined, partitionsAssigned: assigned,
                    partitionsRestoring: restoring, details: details))
        case .get:
            return .value(json: try r.bytes("value.json"))
        case .listKeys:
            let count = try r.count("keys.keys", minElementSize: 4)
            var keys: [String] = []
            keys.reserveCapacity(count)
            for _ in 0..<count { keys.append(try r.string("keys.key")) }
            let next = try r.optionalString("keys.nextCursor")
            // Appended field: absent in answers of older ingestors.
            let partitions = r.isAtEnd ? nil : try r.i32Array("keys.partitions")
            return .keys(KeyPage(keys: keys, nextCursor: next, partitions: partitions))
        case .owner:
            let partition = try r.i32("owner.partition")
            let endpoint = try r.optionalString("owner.endpoint")
            return .owner(KeyOwner(partition: partition, endpoint: endpoint, isLocal: try r.bool("owner.isLocal")))
        case .routingTable:
            let epoch = try r.u64("routing.epoch")
            let partitionCount = try r.i32("routing.partitionCount")
            let local = try r.string("routing.localEndpoint")
            let count = try r.count("routing.owners", minElementSize: 8)
            var owners: [PartitionEndpoint] = []
            owners.reserveCapacity(count)
            for _ in 0..<count {
                let partition = try r.i32("routing.owners.partition")
                owners.append(
                    PartitionEndpoint(partition: partition, endpoint: try r.string("routing.owners.endpoint")))
            }
            return .routing(
                RoutingInfo(epoch: epoch, partitionCount: partitionCount, localEndpoint: local, owners: owners))
        case .metrics:
            return .metrics(text: try r.string("metrics.text"))
        case .publish:
            let topic = try r.string("published.topic")
            let partition = try r.i32("published.partition")
            return .published(PublishReceipt(topic: topic, partition: partition, offset: try r.i64("published.offset")))
        }
    }
}

/// Bounds-checked big-endian reader over one frame. Trailing bytes after the known fields are
/// ignored (fields are only ever appended in a compatible protocol change).
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    private var remaining: Int { bytes.count - position }

    /// True when every byte of the frame has been read (an appended optional field is absent).
    var isAtEnd: Bool { position >= bytes.count }

    mutating func u8(_ field: String) throws(SocketProtocolError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(field: field) }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool(_ field: String) throws(SocketProtocolError) -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        default: throw .badValue(field: field)
        }
    }

    mutating func u32(_ field: String) throws(SocketProtocolError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(field: field) }
        defer { position += 4 }
        return bytes.readU32(at: position)
    }

    mutating func i32(_ field: String) throws(SocketProtocolError) -> Int32 {
        Int32(bitPattern: try u32(field))
    }

    mutating func u64(_ field: String) throws(SocketProtocolError) -> UInt64 {
        let high = try u32(field)
        return UInt64(high) << 32 | UInt64(try u32(field))
    }

    mutating func i64(_ field: String) throws(SocketProtocolError) -> Int64 {
        Int64(bitPattern: try u64(field))
    }

    /// An element count, checked against the bytes left so a forged count cannot make us reserve memory.
    mutating func count(_ field: String, minElementSize: Int) throws(SocketProtocolError) -> Int {
        let n = Int(try u32(field))
        guard n <= remaining / minElementSize else { throw .badValue(field: field) }
        return n
    }

    /// A u32-length-prefixed byte range of this frame.
    private mutating func blob(_ field: String) throws(SocketProtocolError) -> UnsafeRawBufferPointer {
        let n = Int(try u32(field))
        guard n <= remaining else { throw .truncated(field: field) }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    mutating func bytes(_ field: String) throws(SocketProtocolError) -> [UInt8] {
        [UInt8](try blob(field))
    }

    mutating func string(_ field: String) throws(SocketProtocolError) -> String {
        let raw = try blob(field)
        if raw.isEmpty { return "" }
        guard let s = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
            throw .invalidUTF8(field: field)
        }
        return s
    }

    mutating func optionalString(_ field: String) throws(SocketProtocolError) -> String? {
        try bool(field) ? try string(field) : nil
    }

    mutating func i32Array(_ field: String) throws(SocketProtocolError) -> [Int32] {
        let n = try count(field, minElementSize: 4)
        var values: [Int32] = []
        values.reserveCapacity(n)
        for _ in 0..<n { values.append(try i32(field)) }
        return values
    }
}
