// Metrics of the socket server (socket_protocol_errors_total and friends) plus test-visible totals.
import Metrics
import Synchronization

/// Metric handles and atomic totals. Thread-safe; the per-reason counters are only created on the
/// server thread.
final class SocketServerMetrics: Sendable {
    let connectionsAccepted = Counter(label: "socket_connections_total")
    let connectionsRejected = Counter(label: "socket_connections_rejected_total")
    let openConnections = Gauge(label: "socket_connections_open")
    let requests = Counter(label: "socket_requests_total")
    private let protocolErrorCounters = Mutex<[String: Counter]>([:])

    private let acceptedTotal = Atomic<Int>(0)
    private let rejectedTotal = Atomic<Int>(0)
    private let protocolErrorTotal = Atomic<Int>(0)
    private let requestTotal = Atomic<Int>(0)
    private let openTotal = Atomic<Int>(0)

    func accepted() {
        connectionsAccepted.increment()
        acceptedTotal.add(1, ordering: .relaxed)
        openConnections.record(openTotal.add(1, ordering: .relaxed).newValue)
    }

    func closed() {
        openConnections.record(openTotal.subtract(1, ordering: .relaxed).newValue)
    }

    func rejected() {
        connectionsRejected.increment()
        rejectedTotal.add(1, ordering: .relaxed)
    }

    func request() {
        requests.increment()
        requestTotal.add(1, ordering: .relaxed)
    }

    /// Counts a garbage/oversized frame under `socket_protocol_errors_total{reason=...}`.
    func protocolError(reason: String) {
        let counter = protocolErrorCounters.withLock { counters in
            if let existing = counters[reason] { return existing }
            let created = Counter(label: "socket_protocol_errors_total", dimensions: [("reason", reason)])
            counters[reason] = created
            return created
        }
        counter.increment()
        protocolErrorTotal.add(1, ordering: .relaxed)
    }

    var snapshot: SocketServerStatistics {
        SocketServerStatistics(
            connectionsAccepted: acceptedTotal.load(ordering: .relaxed),
            connectionsRejected: rejectedTotal.load(ordering: .relaxed),
            connectionsOpen: openTotal.load(ordering: .relaxed),
            protocolErrors: protocolErrorTotal.load(ordering: .relaxed),
            requests: requestTotal.load(ordering: .relaxed))
    }
}

/// Totals since the server started (what the metrics say, readable without a metrics backend).
struct SocketServerStatistics: Sendable, Equatable {
    var connectionsAccepted: Int
    var connectionsRejected: Int
    var connectionsOpen: Int
    var protocolErrors: Int
    var requests: Int
}
