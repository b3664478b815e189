// Typed errors of the socket frame codec: any of them means "close this connection".

/// Why a byte stream is not a valid frame sequence. After one of these the stream cannot be
/// resynchronised: close the connection (and count it).
package enum SocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte 4 is not a version this build speaks.
    case badVersion(UInt8)
    /// The length prefix is smaller than the fixed header.
    case badLength(Int)
    /// The length prefix (or an encoded frame) exceeds the limit.
    case oversized(length: Int, limit: Int)
    /// Byte 5 is neither request nor response.
    case badKind(UInt8)
    /// A response with status ok for an operation this build does not know.
    case unknownOperation(UInt8)
    /// A body field runs past the end of the frame.
    case truncated(field: String)
    /// A string field is not valid UTF-8.
    case invalidUTF8(field: String)
    /// A field holds an impossible value (a bool that is not 0/1, a count beyond the frame).
    case badValue(field: String)

    package var description: String {
        switch self {
        case .badVersion(let v): "unsupported protocol version \(v)"
        case .badLength(let n): "frame length \(n) below the \(SocketProtocol.headerSize)-byte header"
        case .oversized(let n, let limit): "frame of \(n) bytes exceeds the \(limit)-byte limit"
        case .badKind(let k): "bad frame kind \(k)"
        case .unknownOperation(let op): "ok response for unknown operation \(op)"
        case .truncated(let f): "truncated field \(f)"
        case .invalidUTF8(let f): "invalid UTF-8 in field \(f)"
        case .badValue(let f): "bad value in field \(f)"
        }
    }

    /// Short machine label, used as the `reason` dimension of `socket_protocol_errors_total`.
    package var reason: String {
        switch self {
        case .badVersion: "bad-version"
        case .badLength: "bad-length"
        case .oversized: "oversized"
        case .badKind: "bad-kind"
        case .unknownOperation: "unknown-operation"
        case .truncated: "truncated"
        case .invalidUTF8: "invalid-utf8"
        case .badValue: "bad-value"
        }
    }
}
