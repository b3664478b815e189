// The health route table (gateway.healthPort): /hams/{version,startup,alive,ready,metrics,stop}.
import Shared

/// Health handlers. Bound to the loop thread.
final class HealthRoutes {
    private let heartbeat: Heartbeat
    private let client: any IngestorClient
    /// True once config is loaded and both listeners are bound.
    var started = false
    /// Asks the app to drain and exit (after /hams/stop answered).
    var onStop: (() -> Void)?

    private static let metricsType = "text/plain; version=0.0.4; charset=utf-8"

    init(heartbeat: Heartbeat, client: any IngestorClient) {
        self.heartbeat = heartbeat
        self.client = client
    }

    func table() -> RouteTable {
        RouteTable([
            Route(.get, "/hams/version", "version string", .sync(version)),
            Route(.get, "/hams/startup", "200 once config loaded and listeners up", .sync(startup)),
            Route(.get, "/hams/alive", "200/406: loop heartbeat fresh", .sync(alive)),
            Route(.get, "/hams/ready", "200/429: ingestor connected, joined, restored", .async(ready)),
            Route(.get, "/hams/metrics", "Prometheus text: gateway + ingestor", .async(metrics)),
            Route(.get, "/hams/stop", "stop the ingestor, drain, exit 0", .async(stop)),
            Route(.post, "/hams/stop", "same as GET", .async(stop)),
        ])
    }

    /// `{"name":..,"valid":..,"detail":[{"name":..,"valid":..}]}`.
    static func healthJSON(name: String, valid: Bool, detail: [(String, Bool)]) -> String {
        var out = "{\"name\":\(JSONText.quote(name)),\"valid\":\(valid),\"detail\":["
        for (i, (n, v)) in detail.enumerated() {
            if i > 0 { out += "," }
            out += "{\"name\":\(JSONText.quote(n)),\"valid\":\(v)}"
        }
        return out + "]}"
    }

    func version(_ r: RouteRequest) -> HTTPResponse { .text(Version.full) }

    func startup(_ r: RouteRequest) -> HTTPResponse {
        .json(
            Self.healthJSON(name: "startup", valid: started, detail: [("listeners", started)]),
            status: started ? 200 : 503)
    }

    func alive(_ r: RouteRequest) -> HTTPResponse {
        let fresh = heartbeat.isHealthy
        let watchdog = heartbeat.watchdogRunning
        let valid = fresh && watchdog
        return .json(
            Self.healthJSON(name: "alive", valid: valid, detail: [("loop-heartbeat", fresh), ("watchdog", watchdog)]),
            status: valid ? 200 : 406)
    }

    func ready(_ r: RouteRequest, _ responder: Responder) {
        guard client.isConnected else {
            responder.send(
                .json(
                    Self.healthJSON(name: "ready", valid: false, detail: [("ingestor-connected", false)]),
                    status: 429))
            return
        }
        client.send(.health, timeoutMs: 1_000) { reply in
            var detail: [(String, Bool)] = [("ingestor-connected", true)]
            var valid = false
            if case .response(.health(let report)) = reply {
                let restored = report.partitionsRestoring.isEmpty
                valid = report.ready && report.joinedGroup && restored
                detail.append(("ingestor-joined", report.joinedGroup))
                detail.append(("ingestor-restored", restored))
                detail.append(("ingestor-ready", report.ready))
                for check in report.details { detail.append(("ingestor-" + check.name, check.valid)) }
            } else {
                detail.append(("ingestor-health", false))
            }
            responder.send(
                .json(Self.healthJSON(name: "ready", valid: valid, detail: detail), status: valid ? 200 : 429))
        }
    }

    func metrics(_ r: RouteRequest, _ responder: Responder) {
        let own = MetricsSetup.exposition()
        guard client.isConnected else {
            responder.send(HTTPResponse(status: 200, contentType: Self.metricsType, body: Array(own.utf8)))
            return
        }
        client.send(.metrics, timeoutMs: 1_000) { reply in
            var parts = [own]
            if case .response(.metrics(let text)) = reply { parts.append(text) }
            let merged = parts.count == 1 ? own : ExpositionMerger.merge(parts)
            responder.send(HTTPResponse(status: 200, contentType: Self.metricsType, body: Array(merged.utf8)))
        }
    }

    func stop(_ r: RouteRequest, _ responder: Responder) {
        let finish: (String) -> Void = { [weak self] ingestor in
            responder.send(.json("{\"stopping\":true,\"ingestor\":\(JSONText.quote(ingestor))}"))
            self?.onStop?()
        }
        guard client.isConnected else {
            finish("unreachable")
            return
        }
        client.send(.stop, timeoutMs: 2_000) { reply in
            if case .response(.stopping) = reply { finish("stopping") } else { finish("no-answer") }
        }
    }
}
