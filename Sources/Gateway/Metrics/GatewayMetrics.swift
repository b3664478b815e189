// The gateway's swift-metrics instruments (requests by route/status, latency, connections, errors).
import CoreMetrics

/// Handles are created once per label set and cached. Bound to the loop thread (no locks).
final class GatewayMetrics {
    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private var requestCounters: [RequestKey: Counter] = [:]
    private var latencyTimers: [String: CoreMetrics.Timer] = [:]
    private var errorCounters: [String: Counter] = [:]
    private var shedCounters: [String: Counter] = [:]
    private var bufferedGauges: [String: Gauge] = [:]
    private var openGauges: [String: Gauge] = [:]
    private var openCounts: [String: Int] = [:]
    private let rejected = Counter(label: "gateway_connections_rejected_total")
    private let ingestorConnected = Gauge(label: "gateway_ingestor_connected")
    private var ingestorCounters: [String: Counter] = [:]
    private var forwardCounters: [String: Counter] = [:]

    init() {}

    /// One answered request: `http_requests_total{route,method,status}` and
    /// `http_request_duration_seconds{route}`.
    func request(route: String, method: HTTPMethod, status: Int, nanoseconds: UInt64) {
        let key = RequestKey(route: route, method: method.name, status: status)
        let counter: Counter
        if let existing = requestCounters[key] {
            counter = existing
        } else {
            counter = Counter(
                label: "http_requests_total",
                dimensions: [("route", route), ("method", method.name), ("status", String(status))])
            requestCounters[key] = counter
        }
        counter.increment()
        let timer: CoreMetrics.Timer
        if let existing = latencyTimers[route] {
            timer = existing
        } else {
            timer = CoreMetrics.Timer(label: "http_request_duration_seconds", dimensions: [("route", route)])
            latencyTimers[route] = timer
        }
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// `gateway_open_connections{listener}` up or down by one.
    func connection(listener: String, delta: Int) {
        let value = (openCounts[listener] ?? 0) + delta
        openCounts[listener] = value
        let gauge: Gauge
        if let existing = openGauges[listener] {
            gauge = existing
        } else {
            gauge = Gauge(label: "gateway_open_connections", dimensions: [("listener", listener)])
            openGauges[listener] = gauge
        }
        gauge.record(value)
    }

    /// `gateway_socket_errors_total{kind}`: resets, timeouts, accept failures, parse errors.
    func socketError(_ kind: String) {
        let counter: Counter
        if let existing = errorCounters[kind] {
            counter = existing
        } else {
            counter = Counter(label: "gateway_socket_errors_total", dimensions: [("kind", kind)])
            errorCounters[kind] = counter
        }
        counter.increment()
    }

    /// A connection refused because `gateway.maxConnections` was reached.
    func connectionRejected() { rejected.increment() }

    /// `gateway_buffered_bytes{listener}`: request bytes still arriving plus answers not yet taken by the
    /// kernel (HTTPLimits.maxBufferedBytes bounds it); sampled by the sweep timer.
    func bufferedBytes(listener: String, _ bytes: Int) {
        let gauge: Gauge
        if let existing = bufferedGauges[listener] {
            gauge = existing
        } else {
            gauge = Gauge(label: "gateway_buffered_bytes", dimensions: [("listener", listener)])
            bufferedGauges[listener] = gauge
        }
        gauge.record(bytes)
    }

    /// `gateway_connections_shed_total{reason}`: an idle, incomplete or non-reading connection closed to make
    /// room (reason `connections`: the cap; `memory`: the buffered-bytes budget).
    func connectionShed(reason: String) {
        let counter: Counter
        if let existing = shedCounters[reason] {
            counter = existing
        } else {
            counter = Counter(label: "gateway_connections_shed_total", dimensions: [("reason", reason)])
            shedCounters[reason] = counter
        }
        counter.increment()
    }

    /// `gateway_ingestor_connected` 0/1.
    func ingestorConnection(_ up: Bool) { ingestorConnected.record(up ? 1 : 0) }

    /// `gateway_forwarded_requests_total{outcome}` (lookups sent to the owner's gateway).
    func forwarded(outcome: String) {
        let counter: Counter
        if let existing = forwardCounters[outcome] {
            counter = existing
        } else {
            counter = Counter(label: "gateway_forwarded_requests_total", dimensions: [("outcome", outcome)])
            forwardCounters[outcome] = counter
        }
        counter.increment()
    }

    /// `gateway_ingestor_requests_total{outcome}`.
    func ingestorRequest(outcome: String) {
        let counter: Counter
        if let existing = ingestorCounters[outcome] {
            counter = existing
        } else {
            counter = Counter(label: "gateway_ingestor_requests_total", dimensions: [("outcome", outcome)])
            ingestorCounters[outcome] = counter
        }
        counter.increment()
    }
}
