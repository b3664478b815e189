// Matching a request against a route table (data), with 404/405 (+Allow) semantics; printable.

/// The result of looking a request up.
enum RouteMatch {
    case found(Route, params: [String])
    /// The path exists for other methods; `allow` is the value of the `Allow` header.
    case methodNotAllowed(allow: String)
    case notFound
    /// The path has a malformed percent-escape or is not origin-form.
    case badPath
}

/// An immutable table of routes. Built at start-up; used on the loop thread.
struct RouteTable {
    let routes: [Route]

    init(_ routes: [Route]) { self.routes = routes }

    /// Finds the route for `method` and the still-encoded `path`. GET routes also answer HEAD.
    func match(method: HTTPMethod, path: Substring) -> RouteMatch {
        guard path.utf8.first == UInt8(ascii: "/") else { return .badPath }
        var segments: [String] = []
        for raw in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            guard let decoded = PercentDecoding.decode(Substring(raw)) else { return .badPath }
            segments.append(decoded)
        }
        if segments.count == 1 && segments[0].isEmpty { segments = [] }  // "/" itself
        var allowed: [HTTPMethod] = []
        for route in routes {
            guard let params = Self.bind(route.segments, segments) else { continue }
            if route.method == method || (method == .head && route.method == .get) {
                return .found(route, params: params)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
            if route.method == .get && !allowed.contains(.head) { allowed.append(.head) }
        }
        if allowed.isEmpty { return .notFound }
        return .methodNotAllowed(allow: allowed.map(\.name).joined(separator: ", "))
    }

    /// The `Allow` value for a path, nil when no route has it (unknown methods use this).
    func allow(path: Substring) -> String? {
        if case .methodNotAllowed(let allow) = match(method: HTTPMethod("\u{0}"), path: path) { return allow }
        return nil
    }

    private static func bind(_ pattern: [Route.Segment], _ segments: [String]) -> [String]? {
        guard pattern.count == segments.count else { return nil }
        var params: [String] = []
        for (p, s) in zip(pattern, segments) {
            switch p {
            case .literal(let text): if text != s { return nil }
            case .param:
                if s.isEmpty { return nil }
                params.append(s)
            }
        }
        return params
    }

    /// One line per route, as printed at start-up.
    func describe(listener: String) -> [String] {
        let width = max(routes.map(\.pattern.count).max() ?? 0, 10)
        return routes.map { r in
            let method = r.method.name.padding(6)
            return "\(listener) \(method) \(r.pattern.padding(width))  \(r.summary)"
        }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
