// The gateway's command line (no ArgumentParser) and the environment names of config keys (swift-configuration's).
import Testing

@testable import Shared

@Suite struct ConfigSourcesTests {
    @Test func parsesEveryOptionInBothSpellings() {
        let parsed = ConfigArguments.parse([
            "--config", "c.yaml", "--secrets=/s", "--set", "gateway.port=1", "--set=log.level=debug", "--print-config",
        ])
        let expected = ConfigSources(
            config: "c.yaml", secrets: "/s", overrides: ["gateway.port=1", "log.level=debug"], printConfig: true)
        #expect(parsed == .run(expected))
        #expect(ConfigArguments.parse([]) == .run(ConfigSources()))
    }

    @Test func helpVersionAndUsageErrors() {
        #expect(ConfigArguments.parse(["--help"]) == .help)
        #expect(ConfigArguments.parse(["-h"]) == .help)
        #expect(ConfigArguments.parse(["--version"]) == .version)
        guard case .usage(let unknown) = ConfigArguments.parse(["--bogus"]) else {
            Issue.record("unknown option accepted")
            return
        }
        #expect(unknown.contains("--bogus"))
        guard case .usage = ConfigArguments.parse(["--config"]) else {
            Issue.record("missing value accepted")
            return
        }
        guard case .usage = ConfigArguments.parse(["stray"]) else {
            Issue.record("positional argument accepted")
            return
        }
    }

    @Test func environmentNamesMatchSwiftConfiguration() {
        #expect(ConfigLoader.environmentName("gateway.healthPort") == "GATEWAY_HEALTH_PORT")
        #expect(ConfigLoader.environmentName("kafka.bootstrapServers") == "KAFKA_BOOTSTRAP_SERVERS")
        #expect(ConfigLoader.environmentName("pod.name") == "POD_NAME")
        #expect(
            ConfigLoader.environmentName("schemaRegistry.staticIds.PaymentRequest")
                == "SCHEMA_REGISTRY_STATIC_IDS_PAYMENT_REQUEST")
        #expect(ConfigLoader.environmentName("ingestor.socketGid") == "INGESTOR_SOCKET_GID")
        #expect(ConfigLoader.environmentName("a.user-agent") == "A_USER_AGENT")
    }

    @Test func precedenceIsSetThenEnvironmentThenFile() throws {
        let sources = ConfigSources(overrides: ["gateway.port=9001"])
        let env = ["GATEWAY_PORT": "9002", "GATEWAY_HEALTH_PORT": "9003", "POD_NAME": "p-1"]
        let loaded = try ConfigLoader.loadWithSecrets(sources: sources, environment: env)
        #expect(loaded.config.gateway.port == 9001)
        #expect(loaded.config.gateway.healthPort == 9003)
        #expect(loaded.config.pod.name == "p-1")
    }

    @Test func textSearchWithoutStringProcessing() {
        #expect("application/json; charset=utf-8".containsText("json"))
        #expect(!"text/plain".containsText("json"))
        #expect("a${b}".containsText("${"))
        #expect("x".containsText(""))
        #expect(!"".containsText("x"))
    }
}
