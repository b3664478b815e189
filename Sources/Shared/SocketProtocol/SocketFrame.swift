// One decoded frame: a request or a response, with its request id.

/// A complete frame as the decoder yields it.
package enum SocketFrame: Sendable, Equatable {
    case request(id: UInt32, SocketRequest)
    /// `operation` is the raw operation byte of the frame (the request's, for failures).
    case response(id: UInt32, operation: UInt8, SocketResponse)
}
