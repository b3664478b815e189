// Handlers of the data routes (/chaser, /billing, POST /events): ask the ingestor, map its answer.
import Shared

/// Bound to the loop thread.
final class DataHandlers {
    private let client: any IngestorClient
    private let forwarder: Forwarder?
    /// The cached routing table: keys it places on another pod skip the local ingestor (issue 6).
    private let routing: RoutingCache?
    private let metrics: GatewayMetrics?
    private let timeoutMs: UInt64
    /// How long an incomplete cluster listing waits before its one retry (a rebalance's announcements).
    var listingRetryDelayMs: UInt64 = 300

    init(
        client: any IngestorClient, forwarder: Forwarder? = nil, routing: RoutingCache? = nil,
        metrics: GatewayMetrics? = nil, timeoutMs: UInt64 = 2_000
    ) {
        self.client = client
        self.forwarder = forwarder
        self.routing = routing
        self.metrics = metrics
        self.timeoutMs = timeoutMs
    }

    func chaser(_ r: RouteRequest, _ responder: Responder) { get(store: "chaser", r, responder) }
    func billing(_ r: RouteRequest, _ responder: Responder) { get(store: "billing", r, responder) }
    func chaserKeys(_ r: RouteRequest, _ responder: Responder) { keys(store: "chaser", r, responder) }
    func billingKeys(_ r: RouteRequest, _ responder: Responder) { keys(store: "billing", r, responder) }

    private func get(store: String, _ r: RouteRequest, _ responder: Responder) {
        let key = r.params.first ?? ""
        let forwarded = r.request.headers.contains(Forwarder.markerHeader)
        let target = r.request.target
        // A key the cached table gives to another pod goes straight to its gateway (no local round trip);
        // the owner re-checks, so a stale table costs a 421 and one retry, never a wrong answer.
        if !forwarded, forwarder != nil, case .forward(let endpoint, let partition)? = routing?.decide(key: key) {
            forward(
                endpoint: endpoint, partition: partition, target: target, store: store, key: key, retry: true, responder
            )
            return
        }
        askIngestor(store: store, key: key, target: target, forwarded: forwarded, retry: true, responder)
    }

    /// Asks the local ingestor; `notOwner` → forward to the endpoint it names (once more at most if `retry`).
    private func askIngestor(
        store: String, key: String, target: String, forwarded: Bool, retry: Bool, _ responder: Responder
    ) {
        client.send(.get(store: store, key: key), timeoutMs: timeoutMs) { [weak self] reply in
            if case .response(.notOwner(let partition, let endpoint)) = reply, let self {
                // Another pod owns the key (docs/routing.md). A forwarded request is never forwarded again.
                if forwarded {
                    responder.send(.error(421, "misdirected", "this pod does not own partition \(partition)"))
                    return
                }
                // Sent here by the table (or no table): it is stale or missing for this partition.
                self.routing?.invalidate(partition: Int(partition))
                if let endpoint, self.forwarder != nil {
                    self.forward(
                        endpoint: endpoint, partition: Int(partition), target: target, store: store, key: key,
                        retry: retry, responder)
                } else {
                    responder.send(
                        .error(
                            503, "owner-unknown", "partition \(partition) has no known owner yet",
                            headers: [("Retry-After", "1")]))
                }
                return
            }
            responder.send(
                Self.map(reply, notFound: "no \(store) aggregate for key \(key)") { response in
                    if case .value(let json) = response { return .json(bytes: json) }
                    return nil
                })
        }
    }

    /// Forwards to the owner's gateway. On 421 (the owner moved) the table is refreshed and the local ingestor
    /// asked once more: it serves the key if it now owns it, or names the owner it knows (one more forward).
    private func forward(
        endpoint: String, partition: Int, target: String, store: String, key: String, retry: Bool,
        _ responder: Responder
    ) {
        guard let forwarder else { return }
        forwarder.get(endpoint: endpoint, target: target) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.metrics?.forwarded(outcome: "unreachable")
                self.routing?.invalidate(partition: nil)
                responder.send(.error(503, "owner-unreachable", error.message, headers: [("Retry-After", "1")]))
            case .success(let upstream) where upstream.status == 421 && retry:
                self.metrics?.forwarded(outcome: "misdirected")
                self.routing?.invalidate(partition: partition)
                self.askIngestor(store: store, key: key, target: target, forwarded: false, retry: false, responder)
            case .success(let upstream):
                self.metrics?.forwarded(outcome: "ok")
                responder.send(Self.relay(upstream))
            }
        }
    }

    /// The owner's answer as ours (a second 421 becomes a 503 the client may retry).
    static func relay(_ upstream: UpstreamResponse) -> HTTPResponse {
        var headers: [(String, String)] = []
        if let retryAfter = upstream.headers.first("retry-after") {
            headers.append(("Retry-After", retryAfter))
        } else if upstream.status == 421 || upstream.status == 503 {
            headers.append(("Retry-After", "1"))
        }
        return HTTPResponse(
            status: upstream.status == 421 ? 503 : upstream.status, contentType: upstream.headers.first("content-type"),
            headers: headers, body: upstream.body)
    }

    /// Parameters of a key listing, or the 400 reason.
    struct KeyQuery: Equatable {
        var limit: UInt32 = 1000
        var cursor: String?
        var cluster = false

        static func parse(_ pairs: [(String, String)]?) -> Result<KeyQuery, QueryError> {
            guard let pairs else { return .failure(QueryError(message: "malformed query string")) }
            var q = KeyQuery()
            for (name, value) in pairs {
                switch name {
                case "limit":
                    guard let n = UInt32(value), n >= 1, n <= 10_000 else {
                        return .failure(QueryError(message: "limit must be an integer from 1 to 10000"))
                    }
                    q.limit = n
                case "cursor": q.cursor = value
                case "scope":
                    switch value {
                    case "local": q.cluster = false
                    case "cluster": q.cluster = true
                    default: return .failure(QueryError(message: "scope must be 'local' or 'cluster'"))
                    }
                default: continue
                }
            }
            return .success(q)
        }
    }

    struct QueryError: Error, Equatable { let message: String }

    private func keys(store: String, _ r: RouteRequest, _ responder: Responder) {
        let query: KeyQuery
        switch KeyQuery.parse(r.query) {
        case .success(let q): query = q
        case .failure(let e):
            responder.send(.error(400, "bad-request", e.message))
            return
        }
        var after: String?
        if let cursor = query.cursor, !cursor.isEmpty {
            guard let key = KeyCursor.decode(cursor) else {
                responder.send(.error(400, "bad-request", "cursor is not one this API returned"))
                return
            }
            after = key.isEmpty ? nil : key
        }
        // A forwarded request is never fanned out again (a peer only lists its own keys).
        let marked = r.request.headers.contains(Forwarder.markerHeader)
        if query.cluster && !marked {
            clusterKeys(
                store: store, limit: query.limit, after: after, path: String(r.request.path), attempt: 0, responder)
        } else {
            client.send(.listKeys(store: store, limit: query.limit, cursor: after), timeoutMs: timeoutMs) { reply in
                responder.send(
                    Self.map(reply, notFound: "no such store \(store)") { response in
                        guard case .keys(let page) = response else { return nil }
                        var ok = HTTPResponse.json(
                            Self.keysJSON(keys: page.keys, next: page.nextCursor.map(KeyCursor.encode)))
                        // For the fanning-out gateway: which partitions this page covers.
                        if marked, let partitions = page.partitions {
                            ok.headers.append((Self.partitionsHeader, PartitionCoverage.header(partitions)))
                        }
                        return ok
                    })
            }
        }
    }

    /// On a marked (peer) local listing: the partitions the page lists, "0,2,5".
    static let partitionsHeader = "X-K8s-Micro-Partitions"

    /// `scope=cluster` (docs/routing.md): every live owner of the routing table (this pod's ingestor over the socket,
    /// the others through their gateways with `scope=local`) lists up to `limit` keys after the cursor; the
    /// pages are merged. Any partition without a live owner, or any source failing, answers 503. Every source
    /// names the partitions it listed: if some partition was listed by none (a rebalance moved it between the
    /// table and the answers), the listing is retried once after `listingRetryDelayMs`, then answers 503.
    private func clusterKeys(
        store: String, limit: UInt32, after: String?, path: String, attempt: Int, _ responder: Responder
    ) {
        client.send(.routingTable, timeoutMs: timeoutMs) { [weak self] reply in
            guard let self else { return }
            guard case .response(.routing(let table)) = reply else {
                responder.send(Self.map(reply, notFound: "no routing table") { _ in nil })
                return
            }
            self.routing?.update(table)
            // Before its first assignment a pod knows no partition count: an empty page would look complete.
            guard table.partitionCount > 0 else {
                responder.send(
                    .error(
                        503, "owner-unknown", "the partition count is not known yet; the listing would be partial",
                        headers: [("Retry-After", "1")]))
                return
            }
            let owned = Set(table.owners.map(\.partition))
            if let orphan = (0..<table.partitionCount).first(where: { !owned.contains($0) }) {
                responder.send(
                    .error(
                        503, "owner-unknown", "partition \(orphan) has no live owner; the listing would be partial",
                        headers: [("Retry-After", "1")]))
                return
            }
            let peers = Set(table.owners.map(\.endpoint)).subtracting([table.localEndpoint]).sorted()
            let listing = ClusterListing(
                sources: peers.count + 1, limit: Int(limit), partitionCount: Int(table.partitionCount),
                responder: responder
            ) { [weak self] missing in
                let retry: () -> Void = { [weak self] in
                    self?.clusterKeys(
                        store: store, limit: limit, after: after, path: path, attempt: attempt + 1, responder)
                }
                if attempt == 0, let forwarder = self?.forwarder, let delay = self?.listingRetryDelayMs {
                    forwarder.schedule(afterMs: delay, retry)
                } else {
                    responder.send(
                        .error(
                            503, "listing-incomplete",
                            "partitions \(missing) were listed by no pod (a rebalance is moving them)",
                            headers: [("Retry-After", "1")]))
                }
            }
            self.client.send(.listKeys(store: store, limit: limit, cursor: after), timeoutMs: self.timeoutMs) {
                reply in
                if case .response(.keys(let page)) = reply {
                    listing.add(
                        SourcePage(keys: page.keys, more: page.nextCursor != nil, partitions: page.partitions))
                } else {
                    listing.fail(Self.map(reply, notFound: "no such store \(store)") { _ in nil })
                }
            }
            guard !peers.isEmpty else { return }
            guard let forwarder = self.forwarder else {
                listing.fail(.error(503, "peer-unavailable", "forwarding is off", headers: [("Retry-After", "1")]))
                return
            }
            let target = path + "?scope=local&limit=\(limit)" + (after.map { "&cursor=" + KeyCursor.encode($0) } ?? "")
            for peer in peers {
                forwarder.get(endpoint: peer, target: target) { [weak self] result in
                    switch result {
                    case .success(let upstream) where upstream.status == 200:
                        if var page = KeyPageMerge.parsePeerBody(upstream.body) {
                            self?.metrics?.forwarded(outcome: "ok")
                            page.partitions = PartitionCoverage.parse(upstream.headers.first(Self.partitionsHeader))
                            listing.add(page)
                        } else {
                            listing.fail(.error(502, "bad-peer-answer", "\(peer) answered an unreadable listing"))
                        }
                    case .success(let upstream):
                        self?.metrics?.forwarded(outcome: "failed")
                        listing.fail(
                            .error(
                                503, "peer-unavailable", "\(peer) answered \(upstream.status) to its key listing",
                                headers: [("Retry-After", "1")]))
                    case .failure(let error):
                        self?.metrics?.forwarded(outcome: "unreachable")
                        listing.fail(
                            .error(
                                503, "peer-unavailable", "\(peer): \(error.message)", headers: [("Retry-After", "1")]))
                    }
                }
            }
        }
    }

    /// A socket page as JSON with its cursor as is (the HTTP routes encode it with `KeyCursor`).
    static func keysJSON(_ page: KeyPage) -> String { keysJSON(keys: page.keys, next: page.nextCursor) }

    static func keysJSON(keys: [String], next: String?) -> String {
        var out = "{\"keys\":["
        for (i, key) in keys.enumerated() {
            if i > 0 { out += "," }
            out += JSONText.quote(key)
        }
        out += "],\"next\":" + (next.map(JSONText.quote) ?? "null") + "}"
        return out
    }

    func publish(_ r: RouteRequest, _ responder: Responder) {
        if let type = r.request.headers.first("content-type"), !type.lowercased().containsText("json") {
            responder.send(.error(415, "unsupported-media-type", "POST /events takes application/json"))
            return
        }
        let target: EventValidation.Target
        switch EventValidation.check(r.request.body) {
        case .rejected(let problem):
            responder.send(.error(400, "bad-event", problem))
            return
        case .accepted(let accepted):
            target = accepted
        }
        client.send(.publish(json: r.request.body), timeoutMs: 10_000) { reply in
            responder.send(
                Self.map(reply, notFound: "not found") { response in
                    guard case .published(let receipt) = response else { return nil }
                    // The receipt names the store and key the event updates: what to GET next.
                    return .json(
                        "{\"topic\":\(JSONText.quote(receipt.topic)),\"partition\":\(receipt.partition),"
                            + "\"offset\":\(receipt.offset),\"store\":\(JSONText.quote(target.store)),"
                            + "\"key\":\(JSONText.quote(target.key))}", status: 202)
                })
        }
    }

    /// Maps an ingestor reply to HTTP: `success` handles the expected success case.
    static func map(
        _ reply: IngestorReply, notFound: String, success: (SocketResponse) -> HTTPResponse?
    ) -> HTTPResponse {
        switch reply {
        case .unavailable(let reason):
            return .error(503, "ingestor-unavailable", reason, headers: [("Retry-After", "1")])
        case .response(let response):
            if let ok = success(response) { return ok }
            switch response {
            case .notFound:
                return .error(404, "not-found", notFound)
            case .notReady(let ms, let message):
                let seconds = max(1, (Int(ms) + 999) / 1000)
                return .error(503, "not-ready", message, headers: [("Retry-After", String(seconds))])
            case .notOwner(let partition, let endpoint):
                // Forwarding to the owner is not in this build: tell the client to retry.
                return .error(
                    503, "not-owner",
                    "partition \(partition) is owned by \(endpoint ?? "another pod"); forwarding is not available",
                    headers: [("Retry-After", "1")])
            case .badRequest(let message):
                return .error(400, "bad-event", message)
            case .unavailable(let message):
                return .error(503, "ingestor-unavailable", message, headers: [("Retry-After", "1")])
            case .unsupported(let message):
                return .error(501, "not-implemented", message)
            case .internalError(let message):
                return .error(500, "internal-error", message)
            default:
                return .error(502, "bad-ingestor-answer", "unexpected answer from the ingestor")
            }
        }
    }
}
