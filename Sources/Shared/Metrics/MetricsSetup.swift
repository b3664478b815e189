import CoreMetrics
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

    /// Timer buckets: 50 µs … 10 s.
    static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    public static func bootstrap(role: ProcessRole) {
        let first = Self.role.withLock { current in
            defer { current = role }
            return current == nil
        }
        if first {
            var factory = PrometheusMetricsFactory(registry: registry)
            // Local lookups take tens of microseconds: buckets from 50 µs, not the default 5 ms.
            factory.defaultDurationHistogramBuckets = durationBuckets
            MetricsSystem.bootstrap(factory)
        }
    }

    /// Prometheus text exposition of this process: its registry plus its process metrics.
    public static func exposition() -> String {
        let processRole = role.withLock { $0 } ?? .ingestor
        return registry.emitToString() + ProcessMetrics.sample().exposition(process: processRole.rawValue)
    }
}
