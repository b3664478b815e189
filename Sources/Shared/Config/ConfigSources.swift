// Where a process's config comes from (--config, --secrets, --set, --print-config), parsed without ArgumentParser.

/// The config sources named on the command line. Both processes accept the same four options.
public struct ConfigSources: Sendable, Equatable {
    /// YAML config file.
    public var config: String?
    /// Directory of secret files for `${name}`.
    public var secrets: String?
    /// `key=value` overrides, in command-line order (`--set`, repeatable).
    public var overrides: [String]
    /// Print the effective config (secrets redacted) and exit.
    public var printConfig: Bool

    public init(config: String? = nil, secrets: String? = nil, overrides: [String] = [], printConfig: Bool = false) {
        self.config = config
        self.secrets = secrets
        self.overrides = overrides
        self.printConfig = printConfig
    }
}

/// A small command-line parser for processes that do not link ArgumentParser (the gateway: binary size).
/// Accepts `--opt value` and `--opt=value`, like ArgumentParser does for the same options.
public enum ConfigArguments {
    public enum Parsed: Sendable, Equatable {
        case run(ConfigSources)
        case help
        case version
        /// A usage error: the message for stderr (exit 64, EX_USAGE, as ArgumentParser exits).
        case usage(String)
    }

    /// Exit status of a command-line usage error (sysexits EX_USAGE).
    public static let usageExitCode: Int32 = 64

    public static func parse(_ arguments: [String]) -> Parsed {
        var sources = ConfigSources()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                name = String(argument[..<eq])
                inlineValue = String(argument[argument.index(after: eq)...])
            }
            switch name {
            case "-h", "--help":
                return .help
            case "--version":
                return .version
            case "--print-config":
                guard inlineValue == nil else { return .usage("Error: '--print-config' takes no value") }
                sources.printConfig = true
            case "--config", "--secrets", "--set":
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else if index < arguments.count, !arguments[index].hasPrefix("--") {
                    value = arguments[index]
                    index += 1
                } else {
                    return .usage("Error: Missing value for '\(name) <\(name.dropFirst(2))>'")
                }
                switch name {
                case "--config": sources.config = value
                case "--secrets": sources.secrets = value
                default: sources.overrides.append(value)
                }
            default:
                if argument.hasPrefix("-") { return .usage("Error: Unknown option '\(name)'") }
                return .usage("Error: Unexpected argument '\(argument)'")
            }
        }
        return .run(sources)
    }

    /// The help text (the same options and wording as the ingestor's ArgumentParser help).
    public static func help(command: String, abstract: String) -> String {
        """
        OVERVIEW: \(abstract)

        USAGE: \(command) [--config <config>] [--secrets <secrets>] [--set <set> ...] [--print-config]

        OPTIONS:
          --config <config>       YAML config file (both processes share one).
          --secrets <secrets>     Directory of secret files; ${name} in a config string is replaced by
                                  <dir>/<name>.
          --set <set>             Override one key, e.g. --set gateway.port=9090 (repeatable).
          --print-config          Print the effective config (secrets redacted) and exit.
          --version               Show the version.
          -h, --help              Show help information.

        """
    }
}
