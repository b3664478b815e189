// Encodes requests and responses into frames appended to a byte buffer (no I/O).

/// Appends frames to `[UInt8]` buffers. A value type without state beyond its limit; any thread.
package struct FrameEncoder: Sendable {
    package let maxFrameSize: Int

    package init(maxFrameSize: Int = SocketProtocol.maxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    /// Appends one request frame. Throws `.oversized` (buffer unchanged) when it exceeds the limit.
    package func appendRequest(
        _ request: SocketRequest, id: UInt32, to buffer: inout [UInt8]
    ) throws(SocketProtocolError) {
        let start = beginFrame(&buffer, kind: .request, id: id, operation: request.operationCode, status: 0)
        switch request {
        case .ping, .health, .routingTable, .metrics, .stop, .unknown:
            break
        case .get(let store, let key):
            buffer.appendString(store)
            buffer.appendString(key)
        case .listKeys(let store, let limit, let cursor):
            buffer.appendString(store)
            buffer.appendU32(limit)
            buffer.appendOptionalString(cursor)
        case .owner(let key):
            buffer.appendString(key)
        case .publish(let json):
            buffer.appendBytes(json)
        }
        try endFrame(&buffer, start: start)
    }

    /// Appends one response frame. Success cases write their own operation; failures write
    /// `operation` (the request's). Throws `.oversized` (buffer unchanged) beyond the limit.
    package func appendResponse(
        _ response: SocketResponse, id: UInt32, operation: UInt8, to buffer: inout [UInt8]
    ) throws(SocketProtocolError) {
        let op = response.successOperation?.rawValue ?? operation
        let start = beginFrame(&buffer, kind: .response, id: id, operation: op, status: response.statusCode)
        switch response {
        case .pong, .stopping:
            break
        case .health(let h):
            buffer.appendBool(h.alive)
            buffer.appendBool(h.ready)
            buffer.appendBool(h.joinedGroup)
            buffer.appendI32Array(h.partitionsAssigned)
            buffer.appendI32Array(h.partitionsRestoring)
            buffer.appendU32(UInt32(truncatingIfNeeded: h.details.count))
            for check in h.details {
                buffer.appendString(check.name)
                buffer.appendBool(check.valid)
            }
        case .value(let json):
            buffer.appendBytes(json)
        case .keys(let page):
            buffer.appendU32(UInt32(truncatingIfNeeded: page.keys.count))
            for key in page.keys { buffer.appendString(key) }
            buffer.appendOptionalString(page.nextCursor)
            if let partitions = page.partitions { buffer.appendI32Array(partitions) }
        case .owner(let owner):
            buffer.appendU32(UInt32(bitPattern: owner.partition))
            buffer.appendOptionalString(owner.endpoint)
            buffer.appendBool(owner.isLocal)
        case .routing(let table):
            buffer.appendU64(table.epoch)
            buffer.appendU32(UInt32(bitPattern: table.partitionCount))
            buffer.appendString(table.localEndpoint)
            buffer.appendU32(UInt32(truncatingIfNeeded: table.owners.count))
            for entry in table.owners {
                buffer.appendU32(UInt32(bitPattern: entry.partition))
                buffer.appendString(entry.endpoint)
            }
        case .metrics(let text):
            buffer.appendString(text)
        case .published(let receipt):
            buffer.appendString(receipt.topic)
            buffer.appendU32(UInt32(bitPattern: receipt.partition))
            buffer.appendU64(UInt64(bitPattern: receipt.offset))
        case .notFound:
            buffer.appendString("")
        case .notReady(let retryAfterMs, let message):
            buffer.appendString(message)
            buffer.appendU32(retryAfterMs)
        case .notOwner(let partition, let endpoint):
            buffer.appendString("")
            buffer.appendU32(UInt32(bitPattern: partition))
            buffer.appendOptionalString(endpoint)
        case .badRequest(let message), .unsupported(let message), .unavailable(let message),
            .internalError(let message), .failure(_, let message):
            buffer.appendString(message)
        }
        try endFrame(&buffer, start: start)
    }

    private func beginFrame(
        _ buffer: inout [UInt8], kind: FrameKind, id: UInt32, operation: UInt8, status: UInt8
    ) -> Int {
        let start = buffer.count
        buffer.appendU32(0)  // length, patched by endFrame
        buffer.append(SocketProtocol.version)
        buffer.append(kind.rawValue)
        buffer.appendU32(id)
        buffer.append(operation)
        buffer.append(status)
        return start
    }

    private func endFrame(_ buffer: inout [UInt8], start: Int) throws(SocketProtocolError) {
        let length = buffer.count - start - SocketProtocol.lengthPrefixSize
        guard length <= maxFrameSize else {
            buffer.removeSubrange(start...)
            throw .oversized(length: length, limit: maxFrameSize)
        }
        let l = UInt32(length)
        buffer[start] = UInt8(truncatingIfNeeded: l >> 24)
        buffer[start + 1] = UInt8(truncatingIfNeeded: l >> 16)
        buffer[start + 2] = UInt8(truncatingIfNeeded: l >> 8)
        buffer[start + 3] = UInt8(truncatingIfNeeded: l)
    }
}

// Wire primitives: big-endian integers, u32-length-prefixed strings and blobs.
extension [UInt8] {
    mutating func appendU32(_ v: UInt32) {
        append(UInt8(truncatingIfNeeded: v >> 24))
        append(UInt8(truncatingIfNeeded: v >> 16))
        append(UInt8(truncatingIfNeeded: v >> 8))
        append(UInt8(truncatingIfNeeded: v))
    }

    mutating func appendU64(_ v: UInt64) {
        appendU32(UInt32(truncatingIfNeeded: v >> 32))
        appendU32(UInt32(truncatingIfNeeded: v))
    }

    mutating func appendBool(_ v: Bool) {
        append(v ? 1 : 0)
    }

    mutating func appendString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            appendU32(UInt32(truncatingIfNeeded: utf8.count))
            append(contentsOf: utf8)
        }
    }

    mutating func appendOptionalString(_ s: String?) {
        if let s {
            append(1)
            appendString(s)
        } else {
            append(0)
        }
    }

    mutating func appendBytes(_ bytes: [UInt8]) {
        appendU32(UInt32(truncatingIfNeeded: bytes.count))
        append(contentsOf: bytes)
    }

    mutating func appendI32Array(_ values: [Int32]) {
        appendU32(UInt32(truncatingIfNeeded: values.count))
        for v in values { appendU32(UInt32(bitPattern: v)) }
    }
}
