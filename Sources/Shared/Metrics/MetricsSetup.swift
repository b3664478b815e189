import Metrics
// One Prometheus registry per process, installed as the swift-metrics backend.
//
// Adding a custom metric anywhere in either process is plain swift-metrics:
//     let received = Counter(label: "chaser_received_total")
//     received.increment()
// and it appears in /hams/metrics. Dimensions become labels: Counter(label: "x_total", dimensions: [("k", "v")]).
public import Prometheus
import Synchronization

public enum MetricsSetup {
    public static let registry = PrometheusCollectorRegistry()
    private static let role = Mutex<ProcessRole?>(nil)

    public static func bootstrap(role: ProcessRole) {
        let first = Self.role.withLock { current in
            defer { current = role }
            return current == nil
        }
        if first {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        }
    }

    /// Prometheus text exposition of this process: its registry plus its process metrics.
    public static func exposition() -> String {
        let processRole = role.withLock { $0 } ?? .ingestor
        return registry.emitToString() + ProcessMetrics.sample().exposition(process: processRole.rawValue)
    }
}
