// One Prometheus registry per process, installed as the swift-metrics backend.
public import Prometheus
import Metrics

public enum MetricsSetup {
    public static let registry = PrometheusCollectorRegistry()
    public static func bootstrap() {}
    /// Prometheus text exposition of everything registered in this process.
    public static func exposition() -> String { registry.emitToString() }
}
