// Reads the YAML config file into dotted key paths, reporting unknown keys and misplaced lists.

enum YAMLConfigFile {
    struct ParseError: Error {
        let message: String
    }

    struct Flattened {
        var values: [String: String] = [:]
        var properties: [String: String] = [:]
        var issues: [ConfigIssue] = []
    }

    static func flatten(_ text: String) throws(ParseError) -> Flattened {
        let root: YAMLNode?
        do {
            root = try YAMLDocument.parse(text)
        } catch {
            throw ParseError(message: "not valid YAML: \(error)")
        }
        var result = Flattened()
        guard let root else { return result }  // an empty file is a valid, empty config
        guard case .mapping = root else {
            throw ParseError(message: "the top level must be a mapping of sections (log, kafka, gateway, ...)")
        }
        let known = Set(configKeyTable.map(\.path))
        let knownSections = Set(known.flatMap(prefixes(of:)))
        walk(root, path: "", known: known, sections: knownSections, into: &result)
        return result
    }

    private static func prefixes(of path: String) -> [String] {
        var out: [String] = []
        var current = ""
        for part in path.split(separator: ".").dropLast() {
            current = current.isEmpty ? String(part) : current + "." + part
            out.append(current)
        }
        return out
    }

    private static func walk(
        _ node: YAMLNode, path: String, known: Set<String>, sections: Set<String>, into result: inout Flattened
    ) {
        if path == passThroughMapPath {
            collectProperties(node, prefix: "", into: &result)
            return
        }
        switch node {
        case .mapping(let mapping):
            if !path.isEmpty && !sections.contains(path) && path != passThroughMapPath {
                result.issues.append(
                    ConfigIssue(
                        path: path, message: known.contains(path) ? "expected a value, got a mapping" : "unknown key"))
                return
            }
            for (keyNode, value) in mapping {
                guard let key = keyNode.scalarText else {
                    result.issues.append(ConfigIssue(path: path, message: "keys must be strings"))
                    continue
                }
                let child = path.isEmpty ? key : "\(path).\(key)"
                walk(value, path: child, known: known, sections: sections, into: &result)
            }
        case .scalar(let text, _):
            if known.contains(path) {
                result.values[path] = node.isNull ? "" : text
            } else {
                result.issues.append(
                    ConfigIssue(path: path, message: sections.contains(path) ? "expected a mapping" : "unknown key"))
            }
        case .sequence:
            result.issues.append(
                ConfigIssue(
                    path: path, message: known.contains(path) ? "expected a single value, got a list" : "unknown key"))
        }
    }

    /// kafka.properties accepts both nested (`session: {timeout.ms: 6000}`) and dotted keys.
    private static func collectProperties(_ node: YAMLNode, prefix: String, into result: inout Flattened) {
        switch node {
        case .mapping(let mapping):
            for (keyNode, value) in mapping {
                guard let key = keyNode.scalarText else { continue }
                collectProperties(value, prefix: prefix.isEmpty ? key : "\(prefix).\(key)", into: &result)
            }
        case .scalar(let text, _):
            if prefix.isEmpty {
                if !node.isNull {
                    result.issues.append(
                        ConfigIssue(path: passThroughMapPath, message: "expected a mapping of librdkafka properties"))
                }
            } else {
                result.properties[prefix] = text
            }
        case .sequence:
            result.issues.append(
                ConfigIssue(path: "\(passThroughMapPath).\(prefix)", message: "expected a single value"))
        }
    }
}
