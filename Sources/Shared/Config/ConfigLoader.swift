// Builds AppConfig from defaults < YAML file < environment < --set flags, then applies secrets and validates.
// No Foundation and no swift-configuration: the gateway links this, and both cost it megabytes (docs/footprint.md).

/// The effective config plus which keys hold secret material (for redaction).
public struct LoadedConfig: Sendable {
    public let config: AppConfig
    /// Dotted paths whose value came from a secret file or looks like a credential.
    public let secretPaths: Set<String>
}

public enum ConfigLoader {
    /// Environment prefix of librdkafka pass-through properties: KAFKA_PROPERTIES_SESSION_TIMEOUT_MS.
    static let propertiesEnvPrefix = "KAFKA_PROPERTIES_"

    public static func load(sources: ConfigSources) throws -> AppConfig {
        try loadWithSecrets(sources: sources, environment: ProcessEnvironment.variables()).config
    }

    /// Loads and validates; throws `ConfigValidationError` listing every bad key with its path.
    public static func loadWithSecrets(sources options: ConfigSources, environment: [String: String]) throws
        -> LoadedConfig
    {
        try load(text: options.config.map(TextFile.read), sources: options, environment: environment)
    }

    /// The same with the config file's text already in memory: it loads as the file `sources.config` would
    /// (that path only names it in messages; it is not read). The config-yaml fuzz target's entry.
    public static func loadWithSecrets(
        configText: String, sources options: ConfigSources, environment: [String: String]
    )
        throws -> LoadedConfig
    {
        try load(text: .success(configText), sources: options, environment: environment)
    }

    /// Each key's environment variable, worked out once (per-character Unicode case tests cost).
    private static let environmentNames: [String: String] = Dictionary(
        configKeyTable.map { ($0.path, environmentName($0.path)) }, uniquingKeysWith: { first, _ in first })

    private static func load(
        text: Result<String, TextFileError>?, sources options: ConfigSources, environment: [String: String]
    ) throws -> LoadedConfig {
        var issues: [ConfigIssue] = []

        var fileValues: [String: String] = [:]
        var properties: [String: String] = [:]
        if let text {
            let path = options.config ?? "the config file"
            switch text {
            case .failure(let error):
                issues.append(ConfigIssue(path: path, message: "cannot read config file: \(error)"))
            case .success(let text):
                do {
                    let parsed = try YAMLConfigFile.flatten(text)
                    fileValues = parsed.values
                    properties = parsed.properties
                    issues += parsed.issues.map { ConfigIssue(path: $0.path, message: "\($0.message) (in \(path))") }
                } catch {
                    issues.append(ConfigIssue(path: path, message: error.message))
                }
            }
        }

        // Where each value came from, for error messages: the operator must know which one to fix.
        var propertySources: [String: String] = [:]
        for key in properties.keys { propertySources[key] = options.config.map { "in \($0)" } }

        // Environment: each key by swift-configuration's naming (kafka.bootstrapServers → KAFKA_BOOTSTRAP_SERVERS).
        for (name, value) in environment where name.hasPrefix(propertiesEnvPrefix) {
            let key = String(name.dropFirst(propertiesEnvPrefix.count).lowercased().map { $0 == "_" ? "." : $0 })
            if !key.isEmpty {
                properties[key] = value
                propertySources[key] = "from the environment variable \(name)"
            }
        }

        var setValues: [String: String] = [:]
        for item in options.overrides {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                issues.append(ConfigIssue(path: "--set \(item)", message: "expected key=value"))
                continue
            }
            let key = String(item[..<eq])
            let value = String(item[item.index(after: eq)...])
            if key.hasPrefix(passThroughMapPath + ".") {
                let property = String(key.dropFirst(passThroughMapPath.count + 1))
                properties[property] = value
                propertySources[property] = "from --set \(item)"
            } else if configKeyTable.contains(where: { $0.path == key }) {
                setValues[key] = value
            } else {
                issues.append(ConfigIssue(path: key, message: "unknown key (from --set)"))
            }
        }

        let secrets = SecretResolver(directory: options.secrets)
        var config = AppConfig()
        var secretPaths: Set<String> = []
        for binding in configKeyTable {
            // Precedence: --set, then the environment, then the file; the first source holding the key wins.
            let raw: String
            let source: String
            let variable = environmentNames[binding.path] ?? environmentName(binding.path)
            if let value = setValues[binding.path] {
                (raw, source) = (value, "from --set \(binding.path)=\(value)")
            } else if let value = environment[variable] {
                // Kubernetes Service links look like this (a Service named `gateway` sets GATEWAY_PORT).
                let link = value.hasPrefix("tcp://") ? "; a Kubernetes Service link? set enableServiceLinks: false" : ""
                (raw, source) = (value, "from the environment variable \(variable)\(link)")
            } else if let value = fileValues[binding.path] {
                (raw, source) = (value, "in \(options.config ?? "the config file")")
            } else {
                continue
            }
            switch secrets.resolve(raw) {
            case .failure(let error):
                issues.append(ConfigIssue(path: binding.path, message: "\(error.description) (\(source))"))
            case .success(let resolved):
                if resolved.usedSecret { secretPaths.insert(binding.path) }
                if let problem = binding.apply(&config, resolved.value) {
                    // Never echo a secret's content in an error.
                    let message = resolved.usedSecret ? "invalid value (from a secret)" : problem
                    issues.append(ConfigIssue(path: binding.path, message: "\(message) (\(source))"))
                }
            }
        }
        for (key, raw) in properties.sorted(by: { $0.key < $1.key }) {
            let path = "\(passThroughMapPath).\(key)"
            switch secrets.resolve(raw) {
            case .failure(let error):
                let source = propertySources[key].map { " (\($0))" } ?? ""
                issues.append(ConfigIssue(path: path, message: error.description + source))
            case .success(let resolved):
                config.kafka.properties[key] = resolved.value
                if resolved.usedSecret || looksLikeCredential(key) { secretPaths.insert(path) }
            }
        }
        if let url = config.schemaRegistry.url, url.containsText("@") { secretPaths.insert("schemaRegistry.url") }

        issues += crossFieldIssues(config)
        guard issues.isEmpty else { throw ConfigValidationError(issues: issues) }
        return LoadedConfig(config: config, secretPaths: secretPaths)
    }

    /// The environment variable that sets the key at `path` (`gateway.healthPort` → `GATEWAY_HEALTH_PORT`).
    public static func environmentVariable(of path: String) -> String { environmentName(path) }

    static func looksLikeCredential(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["password", "secret", "token", "credential", "jaas", ".key.pem", "private"].contains {
            lowered.containsText($0)
        }
    }

    /// The environment variable of a dotted key, as swift-configuration's EnvironmentVariablesProvider names it
    /// (the documented contract): split at dots, `_` at each lower→upper camelCase boundary, uppercased, any
    /// character that is not a letter or digit becomes `_`. `gateway.healthPort` → `GATEWAY_HEALTH_PORT`.
    static func environmentName(_ path: String) -> String {
        path.split(separator: ".", omittingEmptySubsequences: false).map { component in
            var out = ""
            var previous: Character?
            for char in component {
                if let previous, previous.isLowercase && char.isUppercase { out += "_" }
                for upper in char.uppercased() { out.append(upper.isLetter || upper.isNumber ? upper : "_") }
                previous = char
            }
            return out
        }.joined(separator: "_")
    }

    private static func crossFieldIssues(_ config: AppConfig) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        if config.gateway.port == config.gateway.healthPort {
            issues.append(ConfigIssue(path: "gateway.healthPort", message: "must differ from gateway.port"))
        }
        let prefix = config.gateway.prefix
        if !prefix.isEmpty && (!prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.containsText("?")) {
            issues.append(
                ConfigIssue(path: "gateway.prefix", message: "must be empty or like /api (leading /, no trailing /)")
            )
        }
        if config.kafka.bootstrapServers.containsText(" ") {
            issues.append(ConfigIssue(path: "kafka.bootstrapServers", message: "comma-separated host:port, no spaces"))
        }
        let ids = config.schemaRegistry.staticIds
        if Set(ids.values).count != ids.count {
            issues.append(ConfigIssue(path: "schemaRegistry.staticIds", message: "ids must be distinct"))
        }
        return issues
    }
}
