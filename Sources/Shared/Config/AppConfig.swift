// The effective configuration of both processes: one typed value per config key (docs/config.md).
// Built once at the composition root by ConfigLoader; immutable afterwards (Sendable, any thread).

/// How the ingestor commits its work.
public enum ProcessingGuarantee: String, Sendable, CaseIterable, Codable {
    case exactlyOnceV2 = "exactly_once_v2"
    case atLeastOnce = "at_least_once"
}

/// Where a consumer group without committed offsets starts.
public enum AutoOffsetReset: String, Sendable, CaseIterable, Codable {
    case earliest
    case latest
}

/// Log line format.
public enum LogFormat: String, Sendable, CaseIterable, Codable {
    case text
    case json
}

/// Log level names as written in config (swift-log's levels).
public enum LogLevelName: String, Sendable, CaseIterable, Codable {
    case trace, debug, info, notice, warning, error, critical
}

public struct AppConfig: Sendable, Equatable {
    public struct Log: Sendable, Equatable {
        public var level: LogLevelName = .info
        public var format: LogFormat = .text
        public init() {}
    }

    /// Pod identity, normally from the downward API (POD_NAME, POD_NAMESPACE, POD_IP).
    public struct Pod: Sendable, Equatable {
        public var name: String = "local"
        public var namespace: String = "default"
        public var ip: String = "127.0.0.1"
        public init() {}
    }

    public struct Kafka: Sendable, Equatable {
        public var bootstrapServers: String = "127.0.0.1:9092"
        public var applicationId: String = "k8s-micro"
        public var processingGuarantee: ProcessingGuarantee = .exactlyOnceV2
        public var autoOffsetReset: AutoOffsetReset = .earliest
        public var inputTopic: String = "input"
        public var chaserTopic: String = "chaser"
        public var billingTopic: String = "billing"
        public var deadLetterTopic: String = "input-dlq"
        /// Commit (and, under exactly_once_v2, transaction) interval in milliseconds.
        public var commitIntervalMs: Int = 100
        /// Keys held in the per-key record cache between commits; 0 emits every update.
        public var cacheMaxEntries: Int = 10_000
        /// Extra librdkafka properties, keys spelled as librdkafka spells them.
        public var properties: [String: String] = [:]

        public var chaserChangelogTopic: String { "\(applicationId)-chaser-changelog" }
        public var billingChangelogTopic: String { "\(applicationId)-billing-changelog" }
        public var routingTopic: String { "\(applicationId)-routing" }
        public init() {}
    }

    public struct SchemaRegistry: Sendable, Equatable {
        /// Registry mode when set; embedded static ids otherwise.
        public var url: String? = nil
        /// Embedded-mode schema ids by short record name (Chaser, Aggregate, Bill, ...).
        public var staticIds: [String: Int32] = [
            "Chaser": 1, "Aggregate": 2, "Bill": 3, "PaymentRequest": 4, "PaymentFailed": 5, "BillAggregate": 6,
        ]
        public init() {}
    }

    public struct Ingestor: Sendable, Equatable {
        public var socket: String = "/var/run/k8s-micro/ingestor.sock"
        public var stateDir: String = "/var/lib/k8s-micro/state"
        /// Extra group id allowed to connect to the socket (SO_PEERCRED); same uid is always allowed.
        public var socketGid: Int? = nil
        /// Directory of the six .avsc schema files; empty (the default) uses the ones built into the binary.
        public var schemaDir: String = ""
        public init() {}
    }

    public struct Gateway: Sendable, Equatable {
        public var port: Int = 8080
        public var healthPort: Int = 8079
        public var bindAddress: String = "0.0.0.0"
        public var prefix: String = ""
        /// host:port other pods use to reach this pod's gateway; default POD_IP:port.
        public var advertisedEndpoint: String? = nil
        public var maxConnections: Int = 4096
        /// From a request's first byte to the end of its headers (slowloris guard).
        public var headerTimeoutMs: Int = 10_000
        /// From the end of the headers to the end of the body.
        public var bodyTimeoutMs: Int = 30_000
        /// A keep-alive connection with no request in progress.
        public var idleTimeoutMs: Int = 60_000
        /// Most time a graceful drain waits for in-flight requests.
        public var drainTimeoutMs: Int = 10_000
        /// Most time one request to the local ingestor (over the socket) or a peer gateway may take.
        public var upstreamTimeoutMs: Int = 2_000
        public init() {}

        /// The advertised endpoint with its default applied.
        public func endpoint(pod: Pod) -> String { advertisedEndpoint ?? "\(pod.ip):\(port)" }
    }

    public var log = Log()
    public var pod = Pod()
    public var kafka = Kafka()
    public var schemaRegistry = SchemaRegistry()
    public var ingestor = Ingestor()
    public var gateway = Gateway()

    public init() {}
}

// Values may hold secrets (kafka.properties, a registry URL with credentials), and libraries log the
// description of whatever holds a config (service-lifecycle logs its services at debug): never print values.
extension AppConfig: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "AppConfig(pod: \(pod.name), application: \(kafka.applicationId), values redacted; see --print-config)"
    }
    public var debugDescription: String { description }
}

extension AppConfig.Kafka: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "Kafka(applicationId: \(applicationId), properties: \(properties.keys.sorted()), values redacted)"
    }
    public var debugDescription: String { description }
}

extension AppConfig.SchemaRegistry: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "SchemaRegistry(mode: \(url == nil ? "embedded" : "registry"))" }
    public var debugDescription: String { description }
}
