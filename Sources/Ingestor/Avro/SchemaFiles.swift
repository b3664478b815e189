// Loads the six .avsc files (SPEC §2) from the schema directory at run time.
import FoundationEssentials

/// A schema directory problem (missing/unreadable file), with the path.
struct SchemaFileError: Error, CustomStringConvertible, Sendable {
    var description: String
}

enum SchemaFiles {
    /// The file of `kind` in `dir`: `<dir>/<full name>.avsc`.
    static func path(of kind: SchemaKind, in dir: String) -> String {
        let base = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
        return "\(base.isEmpty ? "." : base)/\(kind.fullName).avsc"
    }

    /// The JSON text of all six schemas.
    static func load(dir: String) throws(SchemaFileError) -> [SchemaKind: String] {
        var texts: [SchemaKind: String] = [:]
        for kind in SchemaKind.allCases {
            let path = path(of: kind, in: dir)
            do {
                let data = try Data(contentsOf: URL(filePath: path))
                texts[kind] = String(decoding: data, as: UTF8.self)
            } catch {
                throw SchemaFileError(description: "cannot read schema \(kind.fullName) from \(path): \(error)")
            }
        }
        return texts
    }
}
