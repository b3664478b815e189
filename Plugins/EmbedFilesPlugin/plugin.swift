// Embeds the project's data files into the binaries at build time, so each has one source in the repository and
// no file ships beside the binary: openapi/openapi.json into the gateway, schemas/*.avsc into the ingestor.
import Foundation
import PackagePlugin

@main
struct EmbedFilesPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output: URL
        let body: String
        let inputs: [URL]
        // Raw multi-line literals closed at column 0 keep every byte of a file.
        switch target.name {
        case "Gateway":
            output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
            inputs = [root.appending(path: "openapi/openapi.json")]
            body = ##"""
                printf '// Generated from openapi/openapi.json by EmbedFilesPlugin.\n\n'
                printf '/// The document served at /openapi.json, byte-for-byte as the file. Immutable; any thread.\n'
                printf 'enum OpenAPIDocument {\n    static let text = #"""\n'
                cat '\##(root.appending(path: "openapi/openapi.json").path())'
                printf '"""#\n\n    static let bytes: [UInt8] = Array((text + "\\n").utf8)\n}\n'
                """##
        case "Ingestor":
            output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSchemas.swift")
            let schemas = root.appending(path: "schemas")
            inputs = try FileManager.default.contentsOfDirectory(atPath: schemas.path())
                .filter { $0.hasSuffix(".avsc") }.sorted().map { schemas.appending(path: $0) }
            body = ##"""
                printf '// Generated from schemas/*.avsc by EmbedFilesPlugin.\n\n'
                printf '/// The six Avro schemas of schemas/, by full name: the default when ingestor.schemaDir is empty.\n'
                printf 'enum EmbeddedSchemas {\n    static let texts: [String: String] = [\n'
                for f in '\##(root.appending(path: "schemas").path())'/*.avsc; do
                  printf '        "%s": #"""\n' "$(basename "$f" .avsc)"
                  cat "$f"
                  printf '\n"""#,\n'
                done
                printf '    ]\n}\n'
                """##
        default:
            return []
        }
        let script =
            "out='\(output.path())'\n{\n\(body)\n} > \"$out.tmp\"\n"
            + "cmp -s \"$out.tmp\" \"$out\" && rm -f \"$out.tmp\" || mv \"$out.tmp\" \"$out\"\n"
        // A build command with the files as inputs: re-run whenever one changes (a prebuild command was only
        // re-run when the package graph was re-evaluated, so an edited openapi.json was not embedded).
        return [
            .buildCommand(
                displayName: "Embed \(output.lastPathComponent)",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", script],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
