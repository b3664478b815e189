// Constants and code tables of the ingestor↔gateway socket protocol (docs/socket-protocol.md).

/// Protocol-wide constants. Every frame is `u32 length` + `length` bytes (header + body).
package enum SocketProtocol {
    /// The protocol version this build speaks (byte 4 of every frame).
    package static let version: UInt8 = 1
    /// Largest accepted value of the length prefix (bytes after the prefix): 1 MiB.
    package static let maxFrameSize = 1 << 20
    /// Size of the length prefix.
    package static let lengthPrefixSize = 4
    /// Header after the length prefix: version, kind, request id (u32), operation, status.
    package static let headerSize = 8
}

/// Byte 5 of a frame.
package enum FrameKind: UInt8, Sendable {
    case request = 0
    case response = 1
}

/// Operation codes (byte 10 of a frame). Unknown codes in a request are answered `unsupported`.
package enum SocketOperation: UInt8, Sendable, CaseIterable {
    case ping = 1
    case health = 2
    case get = 3
    case listKeys = 4
    case owner = 5
    case routingTable = 6
    case metrics = 7
    case publish = 8
    case stop = 9
}

/// Response status codes (byte 11 of a response frame; always 0 in a request).
package enum SocketStatus: UInt8, Sendable, CaseIterable {
    case ok = 0
    case notFound = 1
    case notReady = 2
    case notOwner = 3
    case badRequest = 4
    case unsupported = 5
    case unavailable = 6
    case internalError = 7
}
