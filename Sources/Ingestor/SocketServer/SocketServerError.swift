// Why the socket server could not start.
import Shared

enum SocketServerError: Error, CustomStringConvertible {
    /// Something answers on the socket path: another ingestor is running with the same socket.
    case alreadyServed(path: String)
    /// The path exists and is not a socket; we never delete such a file.
    case notASocket(path: String)
    /// A system call failed (bind, listen, mkdir, ...).
    case system(SocketSystemError)
    case threadStartFailed(code: Int32)
    case alreadyStarted

    var description: String {
        switch self {
        case .alreadyServed(let path):
            "another process is serving \(path) (is another ingestor running with this ingestor.socket?)"
        case .notASocket(let path):
            "\(path) exists and is not a socket; refusing to remove it (check ingestor.socket)"
        case .system(let error): "socket server: \(error)"
        case .threadStartFailed(let code): "cannot start the socket server thread (error \(code))"
        case .alreadyStarted: "socket server already started"
        }
    }
}
