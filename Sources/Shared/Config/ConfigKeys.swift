// The table of config keys (docs/config.md): one row per key, the single source of parsing and printing.

/// One problem with one key; `path` is the dotted key path the operator wrote.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

/// Every problem found in a config, reported at once.
public struct ConfigValidationError: Error, Sendable, CustomStringConvertible {
    public let issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String {
        "invalid configuration (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// A key of the config: how to apply a string value to AppConfig and how to show it back.
struct ConfigKeyBinding: Sendable {
    let path: String
    /// Applies a raw string; returns an error message when the value is invalid.
    let apply: @Sendable (inout AppConfig, String) -> String?
    /// The effective value as text, nil when unset (printed as null).
    let render: @Sendable (AppConfig) -> String?
}

extension ConfigKeyBinding {
    static func string(
        _ path: String,
        _ keyPath: any WritableKeyPath<AppConfig, String> & Sendable,
        nonEmpty: Bool = true
    ) -> Self {
        Self(
            path: path,
            apply: { config, raw in
                if nonEmpty && raw.isEmpty { return "must not be empty" }
                config[keyPath: keyPath] = raw
                return nil
            },
            render: { $0[keyPath: keyPath] }
        )
    }

    static func optionalString(_ path: String, _ keyPath: any WritableKeyPath<AppConfig, String?> & Sendable) -> Self {
        Self(
            path: path,
            apply: { config, raw in
                config[keyPath: keyPath] = raw.isEmpty ? nil : raw
                return nil
            },
            render: { $0[keyPath: keyPath] }
        )
    }

    static func int(
        _ path: String,
        _ keyPath: any WritableKeyPath<AppConfig, Int> & Sendable,
        range: ClosedRange<Int>
    ) -> Self {
        Self(
            path: path,
            apply: { config, raw in
                guard let value = Int(raw.trimmingASCIIWhitespace()) else {
                    return "expected an integer, got \"\(raw)\""
                }
                guard range.contains(value) else {
                    return "must be between \(range.lowerBound) and \(range.upperBound), got \(value)"
                }
                config[keyPath: keyPath] = value
                return nil
            },
            render: { String($0[keyPath: keyPath]) }
        )
    }

    static func optionalInt(
        _ path: String,
        _ keyPath: any WritableKeyPath<AppConfig, Int?> & Sendable,
        range: ClosedRange<Int>
    ) -> Self {
        Self(
            path: path,
            apply: { config, raw in
                let trimmed = raw.trimmingASCIIWhitespace()
                if trimmed.isEmpty || trimmed == "null" {
                    config[keyPath: keyPath] = nil
                    return nil
                }
                guard let value = Int(trimmed), range.contains(value) else {
                    return "expected an integer between \(range.lowerBound) and \(range.upperBound), got \"\(raw)\""
                }
                config[keyPath: keyPath] = value
                return nil
            },
            render: { $0[keyPath: keyPath].map(String.init) }
        )
    }

    static func choice<E: RawRepresentable & CaseIterable & Sendable>(
        _ path: String,
        _ keyPath: any WritableKeyPath<AppConfig, E> & Sendable
    ) -> Self where E.RawValue == String {
        Self(
            path: path,
            apply: { config, raw in
                guard let value = E(rawValue: raw.trimmingASCIIWhitespace()) else {
                    let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
                    return "expected one of \(allowed), got \"\(raw)\""
                }
                config[keyPath: keyPath] = value
                return nil
            },
            render: { $0[keyPath: keyPath].rawValue }
        )
    }

    static func schemaId(_ name: String) -> Self {
        Self(
            path: "schemaRegistry.staticIds.\(name)",
            apply: { config, raw in
                guard let value = Int32(raw.trimmingASCIIWhitespace()), value >= 0 else {
                    return "expected a non-negative 32-bit schema id, got \"\(raw)\""
                }
                config.schemaRegistry.staticIds[name] = value
                return nil
            },
            render: { $0.schemaRegistry.staticIds[name].map { String($0) } }
        )
    }
}

/// Record names whose embedded schema ids are configurable, in the order of the schema ids 1...6.
public let schemaRecordNames = ["Chaser", "Aggregate", "Bill", "PaymentRequest", "PaymentFailed", "BillAggregate"]

/// Map keys whose entries are free-form (passed through), not listed in `configKeyTable`.
let passThroughMapPath = "kafka.properties"

/// Every key the config accepts, in the order --print-config shows them.
let configKeyTable: [ConfigKeyBinding] =
    [
        .choice("log.level", \.log.level),
        .choice("log.format", \.log.format),
        .string("pod.name", \.pod.name),
        .string("pod.namespace", \.pod.namespace),
        .string("pod.ip", \.pod.ip),
        .string("kafka.bootstrapServers", \.kafka.bootstrapServers),
        .string("kafka.applicationId", \.kafka.applicationId),
        .choice("kafka.processingGuarantee", \.kafka.processingGuarantee),
        .choice("kafka.autoOffsetReset", \.kafka.autoOffsetReset),
        .string("kafka.inputTopic", \.kafka.inputTopic),
        .string("kafka.chaserTopic", \.kafka.chaserTopic),
        .string("kafka.billingTopic", \.kafka.billingTopic),
        .string("kafka.deadLetterTopic", \.kafka.deadLetterTopic),
        .int("kafka.commitInterval", \.kafka.commitIntervalMs, range: 1...600_000),
        .int("kafka.cacheMaxEntries", \.kafka.cacheMaxEntries, range: 0...10_000_000),
        .optionalString("schemaRegistry.url", \.schemaRegistry.url),
    ] + schemaRecordNames.map { ConfigKeyBinding.schemaId($0) } + [
        .string("ingestor.socket", \.ingestor.socket),
        .string("ingestor.stateDir", \.ingestor.stateDir),
        .optionalInt("ingestor.socketGid", \.ingestor.socketGid, range: 0...Int(Int32.max)),
        .string("ingestor.schemaDir", \.ingestor.schemaDir, nonEmpty: false),
        .int("gateway.port", \.gateway.port, range: 1...65535),
        .int("gateway.healthPort", \.gateway.healthPort, range: 1...65535),
        .string("gateway.bindAddress", \.gateway.bindAddress),
        .string("gateway.prefix", \.gateway.prefix, nonEmpty: false),
        .optionalString("gateway.advertisedEndpoint", \.gateway.advertisedEndpoint),
        .int("gateway.maxConnections", \.gateway.maxConnections, range: 1...1_000_000),
        .int("gateway.headerTimeoutMs", \.gateway.headerTimeoutMs, range: 100...600_000),
        .int("gateway.bodyTimeoutMs", \.gateway.bodyTimeoutMs, range: 100...600_000),
        .int("gateway.idleTimeoutMs", \.gateway.idleTimeoutMs, range: 100...3_600_000),
        .int("gateway.drainTimeoutMs", \.gateway.drainTimeoutMs, range: 0...600_000),
        .int("gateway.upstreamTimeoutMs", \.gateway.upstreamTimeoutMs, range: 10...600_000),
    ]

extension String {
    func trimmingASCIIWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" || first == "\n" || first == "\r" {
            slice.removeFirst()
        }
        while let last = slice.last, last == " " || last == "\t" || last == "\n" || last == "\r" {
            slice.removeLast()
        }
        return String(slice)
    }
}
