// The OpenAPI document embedded at build time (EmbedOpenAPIPlugin) is openapi/openapi.json, byte for byte.
import Glibc
import Shared
import Testing

@testable import Gateway

struct OpenAPITests {
    private static let root: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/GatewayTests/OpenAPITests.swift
        return parts.joined(separator: "/")
    }()

    private static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    @Test func embeddedMatchesFile() throws {
        let file = try #require(Self.read(Self.root + "/openapi/openapi.json"))
        #expect(OpenAPIDocument.bytes == file)
    }

    @Test func documentIsValidJSONWithEveryRoute() throws {
        guard case .object(let doc) = try JSONParser.parse(OpenAPIDocument.bytes),
            case .object(let paths)? = doc.first(where: { $0.0 == "paths" })?.1
        else {
            Issue.record("not an object with paths")
            return
        }
        let table = APIRoutes.table(
            prefix: "", statics: StaticHandlers(), data: DataHandlers(client: UnavailableIngestorClient()))
        let documented = Set(paths.map(\.0))
        for route in table.routes { #expect(documented.contains(route.pattern), "\(route.pattern) undocumented") }
    }
}
