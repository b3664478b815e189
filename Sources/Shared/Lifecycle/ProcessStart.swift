// The start of each process without ArgumentParser or service-lifecycle: load config, log, metrics, print-config.
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Which process is starting; decides labels in logs and metrics.
public enum ProcessRole: String, Sendable {
    case ingestor
    case gateway
}

public enum ProcessStart {
    /// Exit status for an invalid configuration (sysexits EX_CONFIG).
    public static let configExitCode: Int32 = 78

    public enum Outcome: Sendable {
        /// Run with this config (logging and metrics are bootstrapped).
        case run(AppConfig)
        /// Exit now with this status (--print-config done, or a config error written to stderr).
        case exit(Int32)
    }

    /// Loads the effective config, handles --print-config, bootstraps logging and metrics once.
    /// Bad config: every problem with its key path on stderr, then `.exit(78)`.
    /// - Parameter announce: log the "starting" line (false for one-shot commands such as `probe`).
    public static func begin(_ sources: ConfigSources, role: ProcessRole, announce: Bool = true) -> Outcome {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.loadWithSecrets(sources: sources, environment: ProcessEnvironment.variables())
        } catch {
            StandardError.write("k8s-micro-\(role.rawValue): \(error)\n")
            return .exit(configExitCode)
        }
        if sources.printConfig {
            print(ConfigPrinter.yaml(loaded), terminator: "")
            return .exit(0)
        }
        LogSetup.bootstrap(loaded.config.log, role: role)
        MetricsSetup.bootstrap(role: role)
        let logger = Logger(label: "k8s-micro.\(role.rawValue).bootstrap")
        logger.log(
            level: announce ? .info : .debug, "starting",
            metadata: [
                "version": "\(Version.full)", "pod": "\(loaded.config.pod.name)",
                "namespace": "\(loaded.config.pod.namespace)",
            ]
        )
        logger.debug("effective config\n\(ConfigPrinter.yaml(loaded))")
        return .run(loaded.config)
    }

    /// SIGHUP: re-reads the config and applies what can change while running (today: the log section).
    public static func reload(_ sources: ConfigSources, role: ProcessRole) {
        let logger = Logger(label: "k8s-micro.\(role.rawValue).config")
        do {
            let config = try ConfigLoader.load(sources: sources)
            LogSetup.apply(config.log)
            logger.notice("config reloaded", metadata: ["log.level": "\(config.log.level.rawValue)"])
        } catch {
            logger.error("config reload failed; keeping the running config", metadata: ["error": "\(error)"])
        }
    }
}
