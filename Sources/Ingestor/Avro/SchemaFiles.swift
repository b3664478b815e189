// The six Avro schemas: built into the binary from schemas/ (the default), or read from ingestor.schemaDir.
import FoundationEssentials

/// A schema directory problem (missing/unreadable file), with the path.
struct SchemaFileError: Error, CustomStringConvertible, Sendable {
    var description: String
}

enum SchemaFiles {
    /// The file of `kind` in `dir`: `<dir>/<full name>.avsc`; for the embedded schemas (`dir` empty), a name
    /// that says so in error messages.
    static func path(of kind: SchemaKind, in dir: String) -> String {
        if dir.isEmpty { return "embedded schema \(kind.fullName)" }
        let base = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
        return "\(base.isEmpty ? "." : base)/\(kind.fullName).avsc"
    }

    /// The JSON text of all six schemas: the embedded ones when `dir` is empty, else the files of `dir`.
    static func load(dir: String) throws(SchemaFileError) -> [SchemaKind: String] {
        var texts: [SchemaKind: String] = [:]
        for kind in SchemaKind.allCases {
            if dir.isEmpty {
                guard let text = EmbeddedSchemas.texts[kind.fullName] else {
                    throw SchemaFileError(description: "schema \(kind.fullName) is not built in (schemas/ changed?)")
                }
                texts[kind] = text
                continue
            }
            let path = path(of: kind, in: dir)
            do {
                let data = try Data(contentsOf: URL(filePath: path))
                texts[kind] = String(decoding: data, as: UTF8.self)
            } catch {
                throw SchemaFileError(
                    description: "ingestor.schemaDir: cannot read schema \(kind.fullName) from \(path): \(error)")
            }
        }
        return texts
    }
}
