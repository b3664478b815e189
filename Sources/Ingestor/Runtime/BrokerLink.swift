// Whether the broker is reachable, as the stream thread sees it: the registry (health), a gauge and a log line.
import Logging

/// Bound to the stream thread (fed from consumer events, statistics and commits, which all run there).
/// Unreachable on librdkafka's "all brokers down" or statistics with no broker up; reachable again on
/// statistics with a broker up, a consumed record, an assignment or a commit.
final class BrokerLink {
    private let registry: PartitionRegistry
    private let metrics: IngestorMetrics
    private let logger: Logger
    private let clock = ContinuousClock()
    private var downSince: ContinuousClock.Instant?

    init(registry: PartitionRegistry, metrics: IngestorMetrics, logger: Logger) {
        self.registry = registry
        self.metrics = metrics
        self.logger = logger
        metrics.brokerReachable.record(1)
    }

    var reachable: Bool { downSince == nil }

    func seen(reachable: Bool, why: String) {
        if reachable {
            guard let since = downSince else { return }
            downSince = nil
            logger.notice(
                "broker reachable again",
                metadata: ["unreachableSeconds": "\(seconds(clock.now - since))", "via": "\(why)"])
        } else {
            guard downSince == nil else { return }
            downSince = clock.now
            logger.warning(
                "broker unreachable; serving the local stores' committed state and retrying",
                metadata: ["via": "\(why)"])
        }
        metrics.brokerReachable.record(reachable ? 1 : 0)
        registry.update { $0.brokerReachable = reachable }
    }

    private func seconds(_ d: Duration) -> String {
        let ms = d / .milliseconds(1)
        return String(Double(Int(ms)) / 1000)
    }
}
