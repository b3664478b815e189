// Config precedence, secrets, all-errors validation and redaction (docs/config.md).
import SharedCLI
import Testing

@testable import Shared

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

private func tempDir() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "k8s-micro-\(UInt64.random(in: 0...UInt64.max))"
    ).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func write(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

private func options(config: String? = nil, secrets: String? = nil, set: [String] = []) -> ConfigOptions {
    var o = ConfigOptions()
    o.config = config
    o.secrets = secrets
    o.overrides = set
    return o
}

@Suite struct ConfigLoaderTests {
    @Test func defaultsWithoutAnySource() throws {
        let loaded = try ConfigLoader.loadWithSecrets(options: options(), environment: [:])
        #expect(loaded.config == AppConfig())
        #expect(loaded.config.kafka.inputTopic == "input")
        #expect(loaded.config.kafka.processingGuarantee == .exactlyOnceV2)
        #expect(loaded.config.gateway.port == 8080)
        #expect(loaded.config.schemaRegistry.staticIds["BillAggregate"] == 6)
    }

    /// The in-memory entry (the config-yaml fuzz target's) loads a text as the file path version loads the file,
    /// errors included, naming the path in messages.
    @Test func textInMemoryLoadsAsTheFile() throws {
        let dir = try tempDir()
        try write("top-secret\n", to: "\(dir)/kafka-password")
        let good = "kafka:\n  bootstrapServers: b:9092\n  properties:\n    sasl.password: ${kafka-password}\n"
        let bad = "gateway:\n  port: huge\n  nope: 1\n"
        for text in [good, bad] {
            try write(text, to: "\(dir)/c.yaml")
            let sources = ConfigSources(config: "\(dir)/c.yaml", secrets: dir)
            let fromFile = Result { try ConfigLoader.loadWithSecrets(sources: sources, environment: [:]) }
            let fromText = Result {
                try ConfigLoader.loadWithSecrets(configText: text, sources: sources, environment: [:])
            }
            switch (fromFile, fromText) {
            case (.success(let a), .success(let b)):
                #expect(a.config == b.config && a.secretPaths == b.secretPaths)
                #expect(b.config.kafka.properties["sasl.password"] == "top-secret")
            case (.failure(let a), .failure(let b)):
                #expect("\(a)" == "\(b)")
                #expect("\(b)".contains("\(dir)/c.yaml"))
            default:
                Issue.record("file \(fromFile) vs text \(fromText)")
            }
        }
    }

    @Test func precedenceSetOverEnvOverFileOverDefault() throws {
        let dir = try tempDir()
        try write(
            """
            kafka:
              bootstrapServers: file:9092
              inputTopic: from-file
              applicationId: file-app
            gateway:
              port: 8081
            """, to: "\(dir)/c.yaml")
        let env = ["KAFKA_INPUT_TOPIC": "from-env", "GATEWAY_PORT": "8082", "POD_NAME": "pod-7"]
        let loaded = try ConfigLoader.loadWithSecrets(
            options: options(config: "\(dir)/c.yaml", set: ["gateway.port=8083"]), environment: env)
        #expect(loaded.config.kafka.bootstrapServers == "file:9092")  // file over default
        #expect(loaded.config.kafka.inputTopic == "from-env")  // env over file
        #expect(loaded.config.gateway.port == 8083)  // --set over env
        #expect(loaded.config.kafka.applicationId == "file-app")
        #expect(loaded.config.kafka.chaserTopic == "chaser")  // default
        #expect(loaded.config.pod.name == "pod-7")  // downward API
    }

    @Test func kafkaPropertiesFromFileEnvAndSet() throws {
        let dir = try tempDir()
        try write(
            """
            kafka:
              properties:
                session.timeout.ms: 6000
                heartbeat:
                  interval.ms: 1000
            """, to: "\(dir)/c.yaml")
        let loaded = try ConfigLoader.loadWithSecrets(
            options: options(config: "\(dir)/c.yaml", set: ["kafka.properties.linger.ms=5"]),
            environment: ["KAFKA_PROPERTIES_SESSION_TIMEOUT_MS": "4000"])
        #expect(loaded.config.kafka.properties["session.timeout.ms"] == "4000")
        #expect(loaded.config.kafka.properties["heartbeat.interval.ms"] == "1000")
        #expect(loaded.config.kafka.properties["linger.ms"] == "5")
    }

    @Test func secretsAreSubstitutedTrimmedAndRedacted() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: "\(dir)/secrets", withIntermediateDirectories: true)
        try write("  hunter2-pass \n", to: "\(dir)/secrets/kafka-password")
        try write("registry-user", to: "\(dir)/secrets/reg")
        try write(
            """
            kafka:
              properties:
                sasl.password: ${kafka-password}
                sasl.username: alice
            schemaRegistry:
              url: http://${reg}@registry:8081
            """, to: "\(dir)/c.yaml")
        let loaded = try ConfigLoader.loadWithSecrets(
            options: options(config: "\(dir)/c.yaml", secrets: "\(dir)/secrets"), environment: [:])
        #expect(loaded.config.kafka.properties["sasl.password"] == "hunter2-pass")
        #expect(loaded.config.schemaRegistry.url == "http://registry-user@registry:8081")
        let printed = ConfigPrinter.yaml(loaded)
        #expect(!printed.contains("hunter2"))
        #expect(!printed.contains("registry-user"))
        #expect(printed.contains("sasl.password: <redacted>"))
        #expect(printed.contains("sasl.username: \"alice\""))
        #expect(printed.contains("url: <redacted>"))
    }

    @Test func missingSecretIsAnErrorAtItsKeyPath() throws {
        let dir = try tempDir()
        try write("kafka:\n  bootstrapServers: ${nope}\n", to: "\(dir)/c.yaml")
        let error = #expect(throws: ConfigValidationError.self) {
            try ConfigLoader.loadWithSecrets(options: options(config: "\(dir)/c.yaml", secrets: dir), environment: [:])
        }
        #expect(error?.issues.map(\.path) == ["kafka.bootstrapServers"])
        #expect(error?.issues.first?.message.contains("nope") == true)
    }

    @Test func everyErrorIsReportedAtOnceWithItsPath() throws {
        let dir = try tempDir()
        try write(
            """
            log:
              level: loud
            kafka:
              processingGuarantee: maybe
              bootstrapServres: typo:9092
              commitInterval: soon
            gateway:
              port: 70000
              prefix: api/
            mystery: 1
            """, to: "\(dir)/c.yaml")
        let error = #expect(throws: ConfigValidationError.self) {
            try ConfigLoader.loadWithSecrets(
                options: options(config: "\(dir)/c.yaml", set: ["nope.key=1"]),
                environment: ["GATEWAY_HEALTH_PORT": "x"])
        }
        let paths = Set(error?.issues.map(\.path) ?? [])
        #expect(
            paths == [
                "log.level", "kafka.processingGuarantee", "kafka.bootstrapServres", "kafka.commitInterval",
                "gateway.port", "gateway.prefix", "mystery", "nope.key", "gateway.healthPort",
            ])
        #expect(error?.description.contains("expected one of exactly_once_v2, at_least_once") == true)
    }

    @Test func everyBadValueNamesWhereItCameFrom() throws {
        let dir = try tempDir()
        try write("gateway:\n  healthPort: nine\n", to: "\(dir)/c.yaml")
        let error = #expect(throws: ConfigValidationError.self) {
            try ConfigLoader.loadWithSecrets(
                options: options(config: "\(dir)/c.yaml", set: ["gateway.port=abc"]),
                environment: ["LOG_LEVEL": "DEBUG", "POD_IP": "", "KAFKA_AUTO_OFFSET_RESET": "tcp://10.0.0.1:80"])
        }
        let messages = Dictionary(uniqueKeysWithValues: (error?.issues ?? []).map { ($0.path, $0.message) })
        #expect(messages["log.level"]?.containsText("from the environment variable LOG_LEVEL") == true)
        #expect(messages["gateway.port"]?.containsText("from --set gateway.port=abc") == true)
        #expect(messages["gateway.healthPort"]?.containsText("in \(dir)/c.yaml") == true)
        #expect(messages["pod.ip"]?.containsText("POD_IP") == true)
        #expect(messages["kafka.autoOffsetReset"]?.containsText("enableServiceLinks") == true)
    }

    @Test func malformedYAMLNamesTheFile() throws {
        let dir = try tempDir()
        try write("kafka: [unclosed\n", to: "\(dir)/c.yaml")
        let error = #expect(throws: ConfigValidationError.self) {
            try ConfigLoader.loadWithSecrets(options: options(config: "\(dir)/c.yaml"), environment: [:])
        }
        #expect(error?.issues.first?.path == "\(dir)/c.yaml")
    }

    @Test func printedConfigIsYAMLOfEveryKey() throws {
        let loaded = try ConfigLoader.loadWithSecrets(options: options(set: ["gateway.prefix=/api"]), environment: [:])
        let printed = ConfigPrinter.yaml(loaded)
        for binding in configKeyTable {
            let leaf = binding.path.split(separator: ".").last.map(String.init) ?? ""
            #expect(printed.contains("\(leaf):"), "missing \(binding.path)")
        }
        #expect(printed.contains("prefix: \"/api\""))
        #expect(printed.contains("advertisedEndpoint: null"))
    }
}
