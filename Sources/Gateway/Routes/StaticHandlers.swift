// Handlers of the demo routes and /openapi.json: answered on the loop without the ingestor.

/// Holds the /count counter. Bound to the loop thread (no locks: one thread).
final class StaticHandlers {
    private var counter = 0
    private static let rootBody = Array(#"{"str":"params.a"}"#.utf8)
    private static let helloBody = Array("Hello back".utf8)
    private let openAPIBody: [UInt8]

    init(openAPI: [UInt8] = OpenAPIDocument.bytes) {
        openAPIBody = openAPI
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
