// Route table matching: params, 404/405 with Allow, HEAD, prefix, malformed paths.
import Testing

@testable import Gateway

struct RouteTableTests {
    private func table(prefix: String = "") -> RouteTable {
        let ok: RouteHandler = .sync { _ in .text("ok") }
        return RouteTable([
            Route(.get, "/", prefix: prefix, "root", ok),
            Route(.get, "/hello", prefix: prefix, "hello", ok),
            Route(.get, "/chaser/{key}", prefix: prefix, "one", ok),
            Route(.get, "/chaser", prefix: prefix, "all", ok),
            Route(.post, "/events", prefix: prefix, "publish", ok),
        ])
    }

    private func params(_ m: RouteMatch) -> [String]? {
        if case .found(_, let p) = m { return p }
        return nil
    }

    @Test func literalAndParamRoutes() {
        let t = table()
        #expect(params(t.match(method: .get, path: "/")) == [])
        #expect(params(t.match(method: .get, path: "/hello")) == [])
        #expect(params(t.match(method: .get, path: "/chaser/abc")) == ["abc"])
        #expect(params(t.match(method: .get, path: "/chaser")) == [])
        #expect(params(t.match(method: .post, path: "/events")) == [])
    }

    @Test func paramsArePercentDecodedAfterSplitting() {
        let t = table()
        #expect(params(t.match(method: .get, path: "/chaser/a%2Fb%20c")) == ["a/b c"])
        #expect(params(t.match(method: .get, path: "/chaser/%C3%A9")) == ["é"])
        #expect(params(t.match(method: .get, path: "/chaser/a+b")) == ["a+b"])
    }

    @Test func notFound() {
        let t = table()
        for path in ["/nope", "/hello/", "/chaser/", "/chaser/a/b", "/HELLO", "//hello"] {
            guard case .notFound = t.match(method: .get, path: Substring(path)) else {
                Issue.record("\(path) should be 404")
                continue
            }
        }
    }

    @Test func methodNotAllowedListsAllow() {
        let t = table()
        guard case .methodNotAllowed(let allow) = t.match(method: .delete, path: "/hello") else {
            Issue.record("expected 405")
            return
        }
        #expect(allow == "GET, HEAD")
        guard case .methodNotAllowed(let post) = t.match(method: .get, path: "/events") else {
            Issue.record("expected 405")
            return
        }
        #expect(post == "POST")
        #expect(t.allow(path: "/hello") == "GET, HEAD")
        #expect(t.allow(path: "/nope") == nil)
    }

    @Test func headMatchesGet() {
        #expect(params(table().match(method: .head, path: "/hello")) == [])
    }

    @Test func malformedPaths() {
        let t = table()
        for path in ["hello", "*", "/chaser/%zz", "/chaser/%4", "/chaser/%FF"] {
            guard case .badPath = t.match(method: .get, path: Substring(path)) else {
                Issue.record("\(path) should be a bad path")
                continue
            }
        }
    }

    @Test func prefix() {
        let t = table(prefix: "/api/")
        #expect(t.routes.map(\.pattern) == ["/api", "/api/hello", "/api/chaser/{key}", "/api/chaser", "/api/events"])
        #expect(t.routes.map(\.name) == ["/", "/hello", "/chaser/{key}", "/chaser", "/events"])
        #expect(params(t.match(method: .get, path: "/api")) == [])
        #expect(params(t.match(method: .get, path: "/api/chaser/k")) == ["k"])
        guard case .notFound = t.match(method: .get, path: "/hello") else {
            Issue.record("unprefixed path should be 404")
            return
        }
    }

    @Test func describePrintsEveryRoute() {
        let lines = table().describe(listener: "api")
        #expect(lines.count == 5)
        #expect(lines[2].contains("GET") && lines[2].contains("/chaser/{key}") && lines[2].contains("one"))
    }
}

struct ForwarderTests {
    @Test func endpoints() {
        #expect(Forwarder.split("10.0.0.1:8080")! == ("10.0.0.1", 8080))
        #expect(Forwarder.split("[::1]:9090")! == ("::1", 9090))
        #expect(Forwarder.split("pod-a.svc:80")! == ("pod-a.svc", 80))
        for bad in ["", "x", ":80", "h:0", "h:70000", "h:p"] { #expect(Forwarder.split(bad) == nil, "\(bad)") }
    }
}
