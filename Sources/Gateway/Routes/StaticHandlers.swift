// Handlers of the demo routes and /openapi.json: answered on the loop without the ingestor.

import Shared

/// Holds the /count counter. Bound to the loop thread (no locks: one thread).
final class StaticHandlers {
    private var counter = 0
    private static let rootBody = Array(#"{"str":"params.a"}"#.utf8)
    private static let helloBody = Array("Hello back".utf8)
    private let openAPIBody: [UInt8]

    /// - Parameter openAPI: the document as served; `Self.openAPIDocument(prefix:)` by default.
    init(openAPI: [UInt8] = OpenAPIDocument.bytes) {
        openAPIBody = openAPI
    }

    /// The embedded document with its server URL set to `prefix`: paths in the document are relative to it, so
    /// clients generated from the document call the prefixed routes.
    static func openAPIDocument(prefix: String) -> [UInt8] {
        let document = OpenAPIDocument.bytes
        let server = Array(#""url": "/""#.utf8)
        guard !prefix.isEmpty, let at = document.firstOffset(of: server) else { return document }
        return Array(document[..<at]) + Array("\"url\": \(JSONText.quote(prefix))".utf8)
            + Array(document[(at + server.count)...])
    }

    func root(_ r: RouteRequest) -> HTTPResponse { .json(bytes: Self.rootBody) }

    func hello(_ r: RouteRequest) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: HTTPResponse.textPlain, body: Self.helloBody)
    }

    func smoke(_ r: RouteRequest) -> HTTPResponse { .text("Smoke" + (r.params.first ?? "")) }

    func count(_ r: RouteRequest) -> HTTPResponse {
        counter += 1
        return .json("{\"count\":\(counter)}")
    }

    func openAPI(_ r: RouteRequest) -> HTTPResponse { .json(bytes: openAPIBody) }
}
