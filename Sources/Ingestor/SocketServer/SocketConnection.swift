// State of one accepted client connection of the socket server.
import Shared

/// One client connection. Confined to the socket server's thread.
final class SocketConnection {
    let id: UInt64
    let fd: Int32
    let peer: PeerCredentials?
    var decoder = FrameDecoder()
    /// Encoded responses not yet written; `outputOffset` bytes of it are already sent.
    var output: [UInt8] = []
    var outputOffset = 0
    /// Requests handed to the handler and not yet answered.
    var inFlight = 0
    /// Set when the connection must be closed after the current read (protocol error, I/O error).
    var closeReason: String?
    /// The peer shut its writing side: answer what is in flight, then close.
    var readClosed = false

    init(id: UInt64, fd: Int32, peer: PeerCredentials?) {
        self.id = id
        self.fd = fd
        self.peer = peer
    }

    var pendingOutput: Int { output.count - outputOffset }

    /// Nothing more to read, answer or write.
    var isFinished: Bool { readClosed && inFlight == 0 && pendingOutput == 0 }
}
