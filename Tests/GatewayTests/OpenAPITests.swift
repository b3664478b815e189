// The embedded OpenAPI document equals openapi/openapi.json (REGENERATE_OPENAPI=1 rewrites the embed).
import Foundation
import Glibc
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
        if getenv("REGENERATE_OPENAPI") != nil {
            let text = String(decoding: file, as: UTF8.self)
            let body = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                .map { $0.isEmpty ? "" : "        " + $0 }.joined(separator: "\n")
            let swiftPath = Self.root + "/Sources/Gateway/Routes/OpenAPIDocument.swift"
            let old = String(decoding: try #require(Self.read(swiftPath)), as: UTF8.self)
            guard let start = old.range(of: "#\"\"\"\n"), let end = old.range(of: "\n        \"\"\"#") else {
                Issue.record("markers not found in OpenAPIDocument.swift")
                return
            }
            let new = String(old[..<start.upperBound]) + body + String(old[end.lowerBound...])
            let f = try #require(fopen(swiftPath, "wb"))
            _ = Array(new.utf8).withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            return
        }
        #expect(OpenAPIDocument.bytes == file, "openapi/openapi.json changed: REGENERATE_OPENAPI=1 swift test ...")
    }

    @Test func documentIsValidJSONWithEveryRoute() throws {
        guard case .object(let doc) = try MiniJSONParser.parse(OpenAPIDocument.bytes),
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
