// Thin wrapper over libyaml's document loader: the only file touching yaml_* pointers.
// Parses into a small Swift tree so config loading needs neither Foundation nor a YAML package.
import CYAML

/// A parsed YAML node. Mappings keep their order; scalars remember whether they were plain (unquoted).
enum YAMLNode: Equatable {
    case scalar(String, plain: Bool)
    case mapping([(key: YAMLNode, value: YAMLNode)])
    case sequence([YAMLNode])

    static func == (lhs: YAMLNode, rhs: YAMLNode) -> Bool {
        switch (lhs, rhs) {
        case (.scalar(let a, let pa), .scalar(let b, let pb)): return a == b && pa == pb
        case (.sequence(let a), .sequence(let b)): return a == b
        case (.mapping(let a), .mapping(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// A plain `~`, `null` or empty scalar.
    var isNull: Bool {
        if case .scalar(let text, true) = self { return ["", "~", "null", "Null", "NULL"].contains(text) }
        return false
    }

    var scalarText: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }
}

enum YAMLDocument {
    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// Parses the first document of `text`; nil for an empty stream.
    static func parse(_ text: String) throws(ParseError) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ParseError(description: "cannot initialise libyaml") }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        var document = yaml_document_t()
        let loaded = bytes.withUnsafeBufferPointer { buffer -> Int32 in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return yaml_parser_load(&parser, &document)
        }
        guard loaded == 1 else {
            let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
            throw ParseError(
                description:
                    "\(problem) at line \(parser.problem_mark.line + 1), column \(parser.problem_mark.column + 1)")
        }
        defer { yaml_document_delete(&document) }
        guard let root = yaml_document_get_root_node(&document) else { return nil }
        return try convert(root, in: &document, depth: 0)
    }

    private static func convert(
        _ node: UnsafeMutablePointer<yaml_node_t>, in document: inout yaml_document_t, depth: Int
    ) throws(ParseError) -> YAMLNode {
        guard depth < 64 else { throw ParseError(description: "nesting deeper than 64 levels") }
        switch node.pointee.type {
        case YAML_SCALAR_NODE:
            let scalar = node.pointee.data.scalar
            let text = String(
                decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            return .scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE)
        case YAML_SEQUENCE_NODE:
            var items: [YAMLNode] = []
            var item = node.pointee.data.sequence.items.start
            while let current = item, current != node.pointee.data.sequence.items.top {
                if let child = yaml_document_get_node(&document, current.pointee) {
                    items.append(try convert(child, in: &document, depth: depth + 1))
                }
                item = current + 1
            }
            return .sequence(items)
        case YAML_MAPPING_NODE:
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            var pair = node.pointee.data.mapping.pairs.start
            while let current = pair, current != node.pointee.data.mapping.pairs.top {
                if let k = yaml_document_get_node(&document, current.pointee.key),
                    let v = yaml_document_get_node(&document, current.pointee.value)
                {
                    pairs.append(
                        (
                            try convert(k, in: &document, depth: depth + 1),
                            try convert(v, in: &document, depth: depth + 1)
                        ))
                }
                pair = current + 1
            }
            return .mapping(pairs)
        default:
            return .scalar("", plain: true)
        }
    }
}
