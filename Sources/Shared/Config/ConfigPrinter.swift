// Renders the effective config as YAML for --print-config and the start-up log, secrets redacted.

public enum ConfigPrinter {
    public static let redacted = "<redacted>"

    /// YAML of every key (defaults included) in table order; values of secret paths are replaced.
    public static func yaml(_ loaded: LoadedConfig) -> String {
        var entries: [(path: String, value: String?)] = []
        let properties = loaded.config.kafka.properties.sorted { $0.key < $1.key }.map {
            (path: "\(passThroughMapPath).\($0.key)", value: Optional($0.value))
        }
        // Properties print inside the kafka section, right after its last fixed key.
        let lastKafkaKey = configKeyTable.lastIndex { $0.path.hasPrefix("kafka.") }
        for (index, binding) in configKeyTable.enumerated() {
            entries.append((binding.path, binding.render(loaded.config)))
            if index == lastKafkaKey { entries += properties }
        }
        var out = ""
        var openSections: [String] = []
        for (path, value) in entries {
            // kafka.properties keys contain dots themselves: split the section part only.
            let parts: [String]
            if path.hasPrefix(passThroughMapPath + ".") {
                parts =
                    passThroughMapPath.split(separator: ".").map(String.init)
                    + [String(path.dropFirst(passThroughMapPath.count + 1))]
            } else {
                parts = path.split(separator: ".").map(String.init)
            }
            let sections = Array(parts.dropLast())
            var common = 0
            while common < min(sections.count, openSections.count) && sections[common] == openSections[common] {
                common += 1
            }
            for depth in common..<sections.count {
                out += String(repeating: "  ", count: depth) + sections[depth] + ":\n"
            }
            openSections = sections
            let shown = loaded.secretPaths.contains(path) ? redacted : value.map(scalar) ?? "null"
            out += String(repeating: "  ", count: sections.count) + "\(quotedKey(parts.last ?? path)): \(shown)\n"
        }
        return out
    }

    private static func quotedKey(_ key: String) -> String {
        key.contains(":") || key.contains(" ") ? quoted(key) : key
    }

    /// Integers bare (they read back as numbers), everything else double-quoted.
    static func scalar(_ value: String) -> String {
        let digits = value.hasPrefix("-") ? value.dropFirst() : Substring(value)
        let isInteger = !digits.isEmpty && digits.count < 19 && digits.allSatisfy { $0.isASCII && $0.isNumber }
        return isInteger ? value : quoted(value)
    }

    /// Double-quoted YAML scalar, so values round-trip as strings whatever they contain. A JSON string is a
    /// valid YAML double-quoted scalar (the same escapes), so the one JSON escaper serves.
    static func quoted(_ value: String) -> String { JSONText.quote(value) }
}
