// Command-line options every process shares: where the config comes from and how to show it.
public import ArgumentParser

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
