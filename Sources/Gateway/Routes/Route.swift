// A route as data: method, path pattern, a metric name, a one-line summary and its handler.

/// Where an asynchronous handler sends its answer. Implemented by the HTTP connection (loop thread).
protocol ResponseSink: AnyObject {
    func complete(_ sequence: UInt64, _ response: HTTPResponse)
}

/// Hands one response back to the connection slot it belongs to. Loop thread only.
/// Holds the connection strongly: an answer arriving after the client left must find a live
/// (closed) connection that drops it, not a freed one.
struct Responder {
    let sink: any ResponseSink
    let sequence: UInt64
    func send(_ response: HTTPResponse) { sink.complete(sequence, response) }
}

/// What a handler sees: the request and the decoded path parameters, in pattern order.
struct RouteRequest {
    let request: HTTPRequest
    let params: [String]
    /// Decoded query pairs (nil when the query has a malformed escape).
    var query: [(String, String)]? { PercentDecoding.query(request.query) }
}

/// A handler runs on the loop thread; it must not block.
enum RouteHandler {
    /// Answers at once.
    case sync((RouteRequest) -> HTTPResponse)
    /// Answers later (e.g. after the ingestor replied) through the responder, exactly once.
    case async((RouteRequest, Responder) -> Void)
}

/// One row of a route table.
struct Route {
    enum Segment: Equatable {
        case literal(String)
        case param(String)
    }

    let method: HTTPMethod
    /// The full pattern as served and printed, prefix included, e.g. "/api/chaser/{key}".
    let pattern: String
    /// Metric label: the pattern without the prefix.
    let name: String
    let summary: String
    let handler: RouteHandler
    let segments: [Segment]

    init(_ method: HTTPMethod, _ path: String, prefix: String = "", _ summary: String, _ handler: RouteHandler) {
        self.method = method
        self.name = path
        self.summary = summary
        self.handler = handler
        var full = Self.normalise(prefix) + (path == "/" && !prefix.isEmpty ? "" : path)
        if full.isEmpty { full = "/" }
        self.pattern = full
        self.segments = full.split(separator: "/", omittingEmptySubsequences: true).map { part in
            if part.hasPrefix("{") && part.hasSuffix("}") {
                return .param(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
    }

    /// "/api/" and "api" both become "/api"; "" and "/" become "".
    static func normalise(_ prefix: String) -> String {
        let trimmed = prefix.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        return trimmed.isEmpty ? "" : "/" + trimmed
    }
}
