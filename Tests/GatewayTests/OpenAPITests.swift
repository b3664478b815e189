// The OpenAPI document embedded at build time (EmbedFilesPlugin) is openapi/openapi.json, byte for byte.
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

    @Test func prefixBecomesTheServerURL() throws {
        guard case .object(let doc) = try JSONParser.parse(StaticHandlers.openAPIDocument(prefix: "/api")),
            case .array(let servers)? = doc.first(where: { $0.0 == "servers" })?.1,
            case .object(let first)? = servers.first
        else {
            Issue.record("no servers array")
            return
        }
        #expect(first.first(where: { $0.0 == "url" })?.1 == .string("/api"))
        #expect(StaticHandlers.openAPIDocument(prefix: "") == OpenAPIDocument.bytes)
    }

    @Test func everyStatusTheGatewaySendsHasItsReasonPhrase() {
        for code in [200, 202, 400, 404, 405, 406, 408, 411, 413, 414, 415, 421, 429, 431, 500, 502, 503, 504, 505] {
            let line = String(decoding: ResponseEncoder.statusLine(code), as: UTF8.self)
            #expect(ResponseEncoder.reason(code) != "Unknown", "\(code)")
            #expect(line == "HTTP/1.1 \(code) \(ResponseEncoder.reason(code))\r\n")
        }
        #expect(ResponseEncoder.reason(415) == "Unsupported Media Type")
    }
}
