// One parsed HTTP request (head + body) and the limits the parser enforces.

/// A complete request as the parser delivers it. Value type; any thread.
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    /// The request target exactly as sent (origin-form, e.g. "/chaser/a%20b?x=1").
    var target: String
    var headers: HTTPHeaders
    var body: [UInt8]
    /// HTTP/1.x minor version (0 or 1).
    var versionMinor: Int
    /// Whether the connection may stay open after this request (http_should_keep_alive).
    var keepAlive: Bool

    init(
        method: HTTPMethod, target: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
        versionMinor: Int = 1, keepAlive: Bool = true
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.versionMinor = versionMinor
        self.keepAlive = keepAlive
    }

    /// The path part of the target (before '?'), still percent-encoded.
    var path: Substring {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[..<q] }
        return target[...]
    }

    /// The query part (after '?'), or empty.
    var query: Substring {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[target.index(after: q)...] }
        return ""
    }
}

/// Size limits and timeouts of the HTTP server (slowloris protection).
struct HTTPLimits: Sendable {
    /// Longest request target (the request line, in practice): longer → 431.
    var maxRequestLine = 8 * 1024
    /// Total bytes of header names and values: more → 431.
    var maxHeaderBytes = 16 * 1024
    /// Most header fields: more → 431.
    var maxHeaderCount = 100
    /// Largest request body (content-length or chunked): larger → 413.
    var maxBody = 64 * 1024
    /// From the first byte of a request to the end of its headers.
    var headerTimeoutMs: UInt64 = 10_000
    /// From the end of the headers to the end of the body.
    var bodyTimeoutMs: UInt64 = 30_000
    /// Keep-alive connection without a request in progress.
    var idleTimeoutMs: UInt64 = 60_000
    /// A client that does not read its responses.
    var writeTimeoutMs: UInt64 = 30_000
    /// Requests parsed but not yet answered on one connection before reading pauses.
    var maxPipelined = 64
    /// Bytes one listener may hold for requests still arriving and answers not yet taken by the kernel,
    /// over all its connections; past it the connections sheddable longest are closed (SheddingQueue).
    var maxBufferedBytes = 8 << 20
}
