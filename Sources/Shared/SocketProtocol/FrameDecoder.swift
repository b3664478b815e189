// Incremental frame decoder: feed byte chunks of any size, get complete frames (no I/O).

/// Splits a byte stream into frames. Holds at most one partial frame (≤ prefix + max frame size);
/// a length prefix beyond the limit is rejected before anything is allocated for it.
/// Not thread-safe: one decoder per connection, used by the thread or loop that reads it.
/// After a thrown error the decoder stays failed (every later feed rethrows): close the connection.
package struct FrameDecoder: Sendable {
    package let maxFrameSize: Int
    /// The partial frame received so far, length prefix included.
    private var pending: [UInt8] = []
    /// Body length of the pending frame once its prefix is complete.
    private var pendingLength = 0
    private var failure: SocketProtocolError?

    /// Capacity kept between frames; a buffer grown for a large frame is released after it.
    private static let retainedCapacity = 64 * 1024

    package init(maxFrameSize: Int = SocketProtocol.maxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    /// Bytes of an incomplete frame currently held.
    package var bufferedByteCount: Int { pending.count }

    /// Feeds a chunk; calls `onFrame` for every frame it completes, in stream order.
    package mutating func feed(
        _ chunk: UnsafeRawBufferPointer, _ onFrame: (SocketFrame) -> Void
    ) throws(SocketProtocolError) {
        if let failure { throw failure }
        do {
            try consume(chunk, onFrame)
        } catch {
            failure = error
            pending = []
            throw error
        }
    }

    /// Feeds a chunk and returns the frames it completes.
    package mutating func feed(_ chunk: [UInt8]) throws(SocketProtocolError) -> [SocketFrame] {
        var frames: [SocketFrame] = []
        var outcome: Result<Void, SocketProtocolError> = .success(())
        chunk.withUnsafeBytes { raw in
            outcome = Result { () throws(SocketProtocolError) in try feed(raw) { frames.append($0) } }
        }
        try outcome.get()
        return frames
    }

    /// Feeds a chunk (e.g. the filled part of a read buffer) and returns the frames it completes.
    package mutating func feed(_ chunk: ArraySlice<UInt8>) throws(SocketProtocolError) -> [SocketFrame] {
        var frames: [SocketFrame] = []
        var outcome: Result<Void, SocketProtocolError> = .success(())
        chunk.withUnsafeBytes { raw in
            outcome = Result { () throws(SocketProtocolError) in try feed(raw) { frames.append($0) } }
        }
        try outcome.get()
        return frames
    }

    private mutating func consume(
        _ chunk: UnsafeRawBufferPointer, _ onFrame: (SocketFrame) -> Void
    ) throws(SocketProtocolError) {
        let prefix = SocketProtocol.lengthPrefixSize
        var i = 0
        let n = chunk.count
        while i < n {
            if pending.isEmpty {
                let available = n - i
                guard available >= prefix else {
                    pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<n]))
                    return
                }
                let length = try checkedLength(chunk, at: i)
                try Self.checkEarlyHeader(chunk, at: i + prefix, available: available - prefix)
                if available >= prefix + length {
                    // Fast path: the whole frame is in this chunk; parse it in place.
                    let body = UnsafeRawBufferPointer(rebasing: chunk[(i + prefix)..<(i + prefix + length)])
                    onFrame(try FrameParser.parse(body))
                    i += prefix + length
                    continue
                }
                pendingLength = length
                pending.reserveCapacity(prefix + length)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<n]))
                return
            }
            if pending.count < prefix {
                let take = min(prefix - pending.count, n - i)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
                i += take
                guard pending.count == prefix else { return }
                pendingLength = try pending.withUnsafeBytes { raw in
                    Result { () throws(SocketProtocolError) in try checkedLength(raw, at: 0) }
                }.get()
                pending.reserveCapacity(prefix + pendingLength)
                continue
            }
            let take = min(prefix + pendingLength - pending.count, n - i)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
            i += take
            let have = pending.count - prefix
            if have < pendingLength {
                if have >= 1 {
                    try pending.withUnsafeBytes { raw in
                        Result { () throws(SocketProtocolError) in
                            try Self.checkEarlyHeader(raw, at: prefix, available: have)
                        }
                    }.get()
                }
                return
            }
            let frame = try pending.withUnsafeBytes { raw in
                Result { () throws(SocketProtocolError) in
                    try FrameParser.parse(UnsafeRawBufferPointer(rebasing: raw[prefix...]))
                }
            }.get()
            if pending.capacity > Self.retainedCapacity {
                pending = []
            } else {
                pending.removeAll(keepingCapacity: true)
            }
            pendingLength = 0
            onFrame(frame)
        }
    }

    /// Reads and validates the length prefix at `offset` (4 bytes must be present).
    private func checkedLength(_ raw: UnsafeRawBufferPointer, at offset: Int) throws(SocketProtocolError) -> Int {
        let length = Int(raw.readU32(at: offset))
        guard length >= SocketProtocol.headerSize else { throw .badLength(length) }
        guard length <= maxFrameSize else { throw .oversized(length: length, limit: maxFrameSize) }
        return length
    }

    /// Rejects a bad version or kind as soon as those bytes arrive, before the body is buffered.
    private static func checkEarlyHeader(
        _ raw: UnsafeRawBufferPointer, at offset: Int, available: Int
    ) throws(SocketProtocolError) {
        if available >= 1, raw[offset] != SocketProtocol.version { throw .badVersion(raw[offset]) }
        if available >= 2, FrameKind(rawValue: raw[offset + 1]) == nil { throw .badKind(raw[offset + 1]) }
    }
}

extension UnsafeRawBufferPointer {
    /// Big-endian u32 at `offset`; the caller guarantees 4 bytes are there.
    func readU32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8
            | UInt32(self[offset + 3])
    }
}
