// The one call each process makes first: load config, start logging and metrics, log what runs.
import ArgumentParser
import Logging

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Which process is starting; decides labels in logs and metrics.
public enum ProcessRole: String, Sendable {
    case ingestor
    case gateway
}

public enum ProcessBootstrap {
    /// Exit status for an invalid configuration (sysexits EX_CONFIG).
    public static let configExitCode: Int32 = 78

    /// Loads the effective config, handles --print-config, bootstraps logging and metrics once.
    /// Bad config: every problem with its key path on stderr, then exit 78.
    public static func start(_ options: ConfigOptions, role: ProcessRole) throws -> AppConfig {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.loadWithSecrets(
                options: options, environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigValidationError {
            StandardError.write("k8s-micro-\(role.rawValue): \(error)\n")
            throw ExitCode(configExitCode)
        }
        if options.printConfig {
            print(ConfigPrinter.yaml(loaded), terminator: "")
            throw ExitCode.success
        }
        LogSetup.bootstrap(loaded.config.log, role: role)
        MetricsSetup.bootstrap(role: role)
        let logger = Logger(label: "k8s-micro.\(role.rawValue).bootstrap")
        logger.info(
            "starting",
            metadata: [
                "version": "\(Version.full)", "pod": "\(loaded.config.pod.name)",
                "namespace": "\(loaded.config.pod.namespace)",
            ]
        )
        logger.debug("effective config\n\(ConfigPrinter.yaml(loaded))")
        ConfigReloader.install(options: options, role: role)
        return loaded.config
    }
}

/// Unbuffered writes to stderr (safe from any thread).
public enum StandardError {
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(2, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}
