// Forwards lookups for keys other pods own to their gateways: pooled, pipelined HTTP/1.1 keep-alive, deadlines.
import Logging

/// Why a forwarded request got no answer (HTTP 503 + Retry-After to the client).
struct ForwardError: Error, Equatable {
    let message: String
}

/// One HTTP/1.1 client per pod endpoint: a few keep-alive connections (TCP_NODELAY), each carrying many
/// pipelined requests; the requests queued for a connection during one loop iteration leave in one write (a
/// check handle flushes them). Answers come back in request order (HTTP/1.1), so each connection keeps a FIFO
/// of its requests. Forwarded requests are GETs (idempotent): those a closing connection left unanswered are
/// sent again once on another connection. Bound to the loop thread.
final class Forwarder {
    /// Marks a forwarded request: it is never forwarded again (the receiver answers 421 instead).
    static let markerHeader = "X-K8s-Micro-Forwarded"

    struct Job {
        let bytes: [UInt8]
        let deadlineMs: UInt64
        let completion: (Result<UpstreamResponse, ForwardError>) -> Void
        var retried = false
    }

    /// Pool shape: connections per endpoint, requests in flight per connection, and the in-flight count on the
    /// least busy connection from which another connection is opened.
    struct Limits {
        var connectionsPerEndpoint = 4
        var pipelinedPerConnection = 32
        var spreadAt = 2
        /// Requests waiting for a connection per endpoint; beyond, they fail at once.
        var waiting = 4096
    }

    private let loop: EventLoop
    private let logger: Logger
    private let timeoutMs: UInt64
    let limits: Limits
    private var pools: [String: EndpointPool] = [:]
    private let sweepTimer: LoopTimer
    private var flushCheck: LoopCheck?
    /// Connections with bytes queued this iteration.
    private var dirty: [Upstream] = []

    init(loop: EventLoop, logger: Logger, timeoutMs: UInt64 = 2_000, limits: Limits = Limits()) {
        self.loop = loop
        self.logger = logger
        self.timeoutMs = timeoutMs
        self.limits = limits
        sweepTimer = LoopTimer(loop: loop)
        sweepTimer.start(timeoutMs: 100, repeatMs: 100) { [unowned self] in
            let now = self.loop.nowMs
            for pool in self.pools.values { pool.expire(now: now) }
        }
        sweepTimer.unref()
        flushCheck = LoopCheck(loop: loop) { [unowned self] in self.flush() }
    }

    /// Sends `GET target` to `endpoint` ("host:port", "[v6]:port"), marked as forwarded.
    func get(
        endpoint: String, target: String, completion: @escaping (Result<UpstreamResponse, ForwardError>) -> Void
    ) {
        guard flushCheck != nil else {
            completion(.failure(ForwardError(message: "gateway shutting down")))
            return
        }
        guard let (host, port) = Self.split(endpoint) else {
            completion(.failure(ForwardError(message: "bad endpoint \(endpoint)")))
            return
        }
        let pool: EndpointPool
        if let existing = pools[endpoint] {
            pool = existing
        } else {
            pool = EndpointPool(forwarder: self, loop: loop, host: host, port: port)
            pools[endpoint] = pool
        }
        pool.submit(
            Job(
                bytes: Self.request(endpoint: endpoint, target: target), deadlineMs: loop.nowMs + timeoutMs,
                completion: completion))
    }

    /// The request bytes: the target as the client sent it, marked.
    static func request(endpoint: String, target: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(target.utf8.count + endpoint.utf8.count + 64)
        bytes += "GET ".utf8
        bytes += target.utf8
        bytes += " HTTP/1.1\r\nHost: ".utf8
        bytes += endpoint.utf8
        bytes += "\r\n\(markerHeader): 1\r\n\r\n".utf8
        return bytes
    }

    /// Runs `body` once after `afterMs` on the loop (e.g. a retry), then flushes what it queued.
    func schedule(afterMs: UInt64, _ body: @escaping () -> Void) {
        guard flushCheck != nil else { return }
        let timer = LoopTimer(loop: loop)
        timer.start(timeoutMs: afterMs) { [weak self] in
            timer.close()
            body()
            self?.flush()  // a timer callback runs before poll: do not wait for the check handle
        }
    }

    /// "10.0.0.1:8080" → ("10.0.0.1", 8080); "[::1]:8080" → ("::1", 8080).
    static func split(_ endpoint: String) -> (String, Int)? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]),
            port > 0, port < 65536
        else { return nil }
        var host = String(endpoint[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    fileprivate func markDirty(_ upstream: Upstream) { dirty.append(upstream) }

    /// Writes every connection's queued requests, one write each.
    private func flush() {
        guard !dirty.isEmpty else { return }
        let batch = dirty
        dirty.removeAll(keepingCapacity: true)
        for upstream in batch { upstream.flush() }
    }

    func close() {
        flushCheck?.close()
        flushCheck = nil
        sweepTimer.close()
        dirty.removeAll()
        for pool in pools.values { pool.close() }
        pools.removeAll()
    }
}

/// The connections to one endpoint and the requests waiting for one. Loop thread.
private final class EndpointPool {
    unowned let forwarder: Forwarder
    let loop: EventLoop
    let host: String
    let port: Int
    var connections: [Upstream] = []
    var connecting = false
    var waiting: [Forwarder.Job] = []
    var closed = false

    init(forwarder: Forwarder, loop: EventLoop, host: String, port: Int) {
        self.forwarder = forwarder
        self.loop = loop
        self.host = host
        self.port = port
    }

    func submit(_ job: Forwarder.Job) {
        guard waiting.count < forwarder.limits.waiting else {
            job.completion(.failure(ForwardError(message: "too many forwarded requests waiting")))
            return
        }
        waiting.append(job)
        dispatch()
    }

    /// Hands waiting requests to the least busy connection; opens another (one at a time) while all are busy.
    func dispatch() {
        let limits = forwarder.limits
        var next = 0
        defer { waiting.removeFirst(next) }
        while !closed, next < waiting.count {
            var best: Upstream?
            for c in connections where c.usable && c.inFlight < (best?.inFlight ?? Int.max) { best = c }
            if !connecting, connections.count < limits.connectionsPerEndpoint,
                best.map({ $0.inFlight >= limits.spreadAt }) ?? true
            {
                connect()
            }
            guard let best, best.inFlight < limits.pipelinedPerConnection else { return }
            best.enqueue(waiting[next])
            next += 1
        }
    }

    private func connect() {
        connecting = true
        StreamHandle.connectTCP(loop: loop, host: host, port: port) { [weak self] result in
            guard let self else { return }
            self.connecting = false
            switch result {
            case .success(let stream):
                if self.closed {
                    stream.close()
                    return
                }
                self.connections.append(Upstream(stream: stream, pool: self))
                self.dispatch()
            case .failure(let error):
                // Nothing to connect to: fail what waits (the client retries after Retry-After). Requests
                // already on live connections keep going.
                guard self.connections.isEmpty else { return }
                let failed = self.waiting
                self.waiting.removeAll()
                for job in failed {
                    job.completion(.failure(ForwardError(message: "\(self.host):\(self.port): \(error)")))
                }
            }
        }
    }

    /// A connection is gone: `unanswered` are sent again (once) on another connection.
    func lost(_ upstream: Upstream, unanswered: [Forwarder.Job]) {
        connections.removeAll { $0 === upstream }
        upstream.close()
        var again: [Forwarder.Job] = []
        for var job in unanswered {
            if job.retried {
                job.completion(.failure(ForwardError(message: "\(host):\(port) closed the connection")))
            } else {
                job.retried = true
                again.append(job)
            }
        }
        if !again.isEmpty { waiting.insert(contentsOf: again, at: 0) }
        dispatch()
    }

    func expire(now: UInt64) {
        if waiting.contains(where: { $0.deadlineMs <= now }) {
            let late = waiting.filter { $0.deadlineMs <= now }
            waiting.removeAll { $0.deadlineMs <= now }
            for job in late { job.completion(.failure(ForwardError(message: "no connection to \(host):\(port)"))) }
        }
        for upstream in connections { upstream.expire(now: now) }
    }

    func close() {
        closed = true
        let failed = waiting + connections.flatMap { $0.takeAll() }
        for upstream in connections { upstream.close() }
        connections.removeAll()
        waiting.removeAll()
        for job in failed { job.completion(.failure(ForwardError(message: "gateway shutting down"))) }
    }
}

/// One keep-alive connection to another gateway with its pipelined requests. Loop thread.
private final class Upstream: StreamHandleDelegate {
    private let stream: StreamHandle
    private unowned let pool: EndpointPool
    private let parser = HTTPResponseParser()
    /// Requests sent (or queued to send) and not answered yet, oldest first.
    private var jobs: [Forwarder.Job] = []
    private var head = 0
    private var outgoing: [UInt8] = []
    private var closed = false
    /// False once the peer said `Connection: close` or the stream failed: no new requests.
    private(set) var usable = true

    var inFlight: Int { jobs.count - head }

    init(stream: StreamHandle, pool: EndpointPool) {
        self.stream = stream
        self.pool = pool
        stream.delegate = self
        stream.setNoDelay()  // small requests must leave at once, not wait for the previous answer's ACK
        stream.startReading()
    }

    func enqueue(_ job: Forwarder.Job) {
        if outgoing.isEmpty { pool.forwarder.markDirty(self) }
        outgoing += job.bytes
        jobs.append(job)
    }

    func flush() {
        guard !closed, !outgoing.isEmpty else { return }
        let ok = stream.write(outgoing)
        outgoing.removeAll(keepingCapacity: true)
        if !ok { drop() }
    }

    /// Fails the requests past their deadline; the connection is then out of step, so the others move.
    func expire(now: UInt64) {
        guard !closed, jobs[head...].contains(where: { $0.deadlineMs <= now }) else { return }
        let pending = takeAll()
        let late = pending.filter { $0.deadlineMs <= now }
        let others = pending.filter { $0.deadlineMs > now }
        usable = false
        // Not their fault: the others may move again even if they moved before (their deadlines still hold).
        pool.lost(
            self,
            unanswered: others.map {
                var job = $0
                job.retried = false
                return job
            })
        for job in late {
            job.completion(.failure(ForwardError(message: "\(pool.host):\(pool.port) did not answer in time")))
        }
    }

    /// Removes and returns every unanswered request.
    func takeAll() -> [Forwarder.Job] {
        let rest = Array(jobs[head...])
        jobs.removeAll()
        head = 0
        return rest
    }

    private func drop() {
        usable = false
        pool.lost(self, unanswered: takeAll())
    }

    func streamDidRead(_ bytes: UnsafeRawBufferPointer) {
        if let error = parser.feed(bytes) {
            let pending = takeAll()
            usable = false
            pool.lost(self, unanswered: [])
            for job in pending { job.completion(.failure(ForwardError(message: error))) }
            return
        }
        deliver()
    }

    /// Completes the oldest requests with the responses parsed so far (HTTP/1.1 answers in order).
    private func deliver() {
        guard !parser.completed.isEmpty else { return }
        let responses = parser.completed
        parser.completed.removeAll(keepingCapacity: true)
        for response in responses {
            guard head < jobs.count else {
                drop()  // an answer nobody asked for: the stream is out of step
                return
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            if !response.keepAlive { usable = false }
            job.completion(.success(response))
            if closed { return }
        }
        if !usable {
            drop()  // `Connection: close`: requests after it were not answered
        } else if !pool.waiting.isEmpty {
            pool.dispatch()  // room on this connection again
        }
    }

    func streamDidEnd(error: UVError?) {
        if parser.finish() == nil { deliver() }  // a response delimited by the end of the stream
        guard !closed else { return }
        drop()
    }

    func streamDidDrainWrites() {}
    func streamDidClose() {}

    func close() {
        guard !closed else { return }
        closed = true
        usable = false
        stream.close()
    }
}
