// What the gateway's handlers need from the ingestor: one async request/response call on the loop.
import Shared

/// The answer to one ingestor request: its response, or why none came.
enum IngestorReply {
    case response(SocketResponse)
    /// Not connected, queue full, timed out or connection lost: HTTP 503 + Retry-After.
    case unavailable(reason: String)
}

/// A client of the ingestor's socket. Bound to the loop thread: call and complete on it.
protocol IngestorClient: AnyObject {
    /// True while a connection to the ingestor is established.
    var isConnected: Bool { get }
    /// Sends `request`; `completion` runs exactly once on the loop thread.
    func send(_ request: SocketRequest, timeoutMs: UInt64, _ completion: @escaping (IngestorReply) -> Void)
    /// Stops reconnecting and closes the connection; pending requests fail as unavailable.
    func close()
}

/// Answers every request with "unavailable" (no socket configured, tests).
final class UnavailableIngestorClient: IngestorClient {
    var isConnected: Bool { false }
    func send(_ request: SocketRequest, timeoutMs: UInt64, _ completion: @escaping (IngestorReply) -> Void) {
        completion(.unavailable(reason: "ingestor not connected"))
    }
    func close() {}
}
