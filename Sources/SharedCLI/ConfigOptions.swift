// Command-line options every process shares: where the config comes from and how to show it.
public import ArgumentParser
public import Shared

public struct ConfigOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "YAML config file (both processes share one).")
    public var config: String?

    @Option(name: .long, help: "Directory of secret files; ${name} in a config string is replaced by <dir>/<name>.")
    public var secrets: String?

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set gateway.port=9090 (repeatable).")
    public var overrides: [String] = []

    @Flag(name: .customLong("print-config"), help: "Print the effective config (secrets redacted) and exit.")
    public var printConfig = false

    public init() {}
}

extension ConfigOptions {
    /// The same options as plain values (what the config loader reads).
    public var sources: ConfigSources {
        ConfigSources(config: config, secrets: secrets, overrides: overrides, printConfig: printConfig)
    }
}

extension ConfigOptions {
    /// The sources to load, without --print-config: an unparsed `ConfigOptions()` (tests) cannot read its @Flag.
    var loadSources: ConfigSources { ConfigSources(config: config, secrets: secrets, overrides: overrides) }
}

extension ConfigLoader {
    public static func load(options: ConfigOptions) throws -> AppConfig {
        try load(sources: options.loadSources)
    }

    /// Loads and validates; throws `ConfigValidationError` listing every bad key with its path.
    public static func loadWithSecrets(options: ConfigOptions, environment: [String: String]) throws -> LoadedConfig {
        try loadWithSecrets(sources: options.loadSources, environment: environment)
    }
}
