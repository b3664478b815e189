// The contract between the socket server and whatever answers requests (stores, health, routing).
import Shared

/// Answers socket requests. `handle` is called on the socket server's thread and must not block
/// (read LMDB in a read transaction, hand slow work such as a publish to another thread).
/// `reply` must be called exactly once, from any thread, now or later (e.g. after a broker ack).
/// `SocketRequest.unknown` never reaches the handler (the server answers `.unsupported`).
protocol SocketRequestHandler: AnyObject, Sendable {
    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void)
}
