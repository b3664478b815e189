// The one call each ArgumentParser command makes first (the ingestor): ProcessStart, then SIGHUP reloads.
import ArgumentParser
public import Shared

public enum ProcessBootstrap {
    /// Exit status for an invalid configuration (sysexits EX_CONFIG).
    public static let configExitCode: Int32 = ProcessStart.configExitCode

    /// Loads the effective config, handles --print-config, bootstraps logging and metrics once.
    /// Bad config: every problem with its key path on stderr, then exit 78.
    public static func start(_ options: ConfigOptions, role: ProcessRole, announce: Bool = true) throws -> AppConfig {
        switch ProcessStart.begin(options.sources, role: role, announce: announce) {
        case .exit(let code):
            throw code == 0 ? ExitCode.success : ExitCode(code)
        case .run(let config):
            ConfigReloader.install(options: options, role: role)
            return config
        }
    }
}
