// Embeds openapi/openapi.json into the gateway at build time, so the document has one source and no file
// ships beside the binary.
import Foundation
import PackagePlugin

@main
struct EmbedOpenAPIPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
        let source = context.package.directoryURL.appending(path: "openapi/openapi.json")
        // A raw multi-line literal closed at column 0 keeps every byte; the last newline is added back.
        let script = ##"""
            out='\##(output.path())'
            {
              printf '// Generated from openapi/openapi.json by EmbedOpenAPIPlugin.\n\n'
              printf '/// The document served at /openapi.json, byte-for-byte as the file. Immutable; any thread.\n'
              printf 'enum OpenAPIDocument {\n    static let text = #"""\n'
              cat '\##(source.path())'
              printf '"""#\n\n    static let bytes: [UInt8] = Array((text + "\\n").utf8)\n}\n'
            } > "$out.tmp"
            cmp -s "$out.tmp" "$out" && rm -f "$out.tmp" || mv "$out.tmp" "$out"
            """##
        // A build command with the file as its input: re-run whenever openapi.json changes (a prebuild
        // command was only re-run when the package graph was re-evaluated, so edits were not embedded).
        return [
            .buildCommand(
                displayName: "Embed openapi/openapi.json",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", script],
                inputFiles: [source],
                outputFiles: [output]
            )
        ]
    }
}
