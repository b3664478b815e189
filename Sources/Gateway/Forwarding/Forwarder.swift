// Forwards lookups for keys other pods own to their gateways: pooled HTTP/1.1 keep-alive, deadlines.
import Logging

/// Why a forwarded request got no answer (HTTP 503 + Retry-After to the client).
struct ForwardError: Error, Equatable {
    let message: String
}

/// One HTTP/1.1 client per pod endpoint, a few keep-alive connections each, one request at a time per
/// connection. Bound to the loop thread.
final class Forwarder {
    /// Marks a forwarded request: it is never forwarded again (the receiver answers 421 instead).
    static let markerHeader = "X-K8s-Micro-Forwarded"

    fileprivate struct Job {
        let bytes: [UInt8]
        let deadlineMs: UInt64
        let completion: (Result<UpstreamResponse, ForwardError>) -> Void
        var retried = false
    }

    private let loop: EventLoop
    private let logger: Logger
    private let timeoutMs: UInt64
    fileprivate let maxPerEndpoint: Int
    private var pools: [String: EndpointPool] = [:]
    private let sweepTimer: LoopTimer

    init(loop: EventLoop, logger: Logger, timeoutMs: UInt64 = 2_000, maxPerEndpoint: Int = 16) {
        self.loop = loop
        self.logger = logger
        self.timeoutMs = timeoutMs
        self.maxPerEndpoint = maxPerEndpoint
        sweepTimer = LoopTimer(loop: loop)
        sweepTimer.start(timeoutMs: 100, repeatMs: 100) { [unowned self] in
            let now = self.loop.nowMs
            for pool in self.pools.values { pool.expire(now: now) }
        }
        sweepTimer.unref()
    }

    /// Sends `GET target` to `endpoint` ("host:port", "[v6]:port"), marked as forwarded.
    func get(
        endpoint: String, target: String, completion: @escaping (Result<UpstreamResponse, ForwardError>) -> Void
    ) {
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
        let request = "GET \(target) HTTP/1.1\r\nHost: \(endpoint)\r\n\(Self.markerHeader): 1\r\n\r\n"
        pool.submit(Job(bytes: Array(request.utf8), deadlineMs: loop.nowMs + timeoutMs, completion: completion))
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

    func close() {
        sweepTimer.close()
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
    var idle: [Upstream] = []
    var busy: [ObjectIdentifier: Upstream] = [:]
    var connecting = 0
    var waiting: [Forwarder.Job] = []
    var closed = false

    init(forwarder: Forwarder, loop: EventLoop, host: String, port: Int) {
        self.forwarder = forwarder
        self.loop = loop
        self.host = host
        self.port = port
    }

    func submit(_ job: Forwarder.Job) {
        guard waiting.count < 4096 else {
            job.completion(.failure(ForwardError(message: "too many forwarded requests waiting")))
            return
        }
        waiting.append(job)
        dispatch()
    }

    func dispatch() {
        while !closed, !waiting.isEmpty {
            if let upstream = idle.popLast() {
                let job = waiting.removeFirst()
                busy[ObjectIdentifier(upstream)] = upstream
                upstream.send(job)
            } else if busy.count + connecting < forwarder.maxPerEndpoint {
                connecting += 1
                StreamHandle.connectTCP(loop: loop, host: host, port: port) { [weak self] result in
                    guard let self else { return }
                    self.connecting -= 1
                    switch result {
                    case .success(let stream):
                        if self.closed {
                            stream.close()
                            return
                        }
                        let upstream = Upstream(stream: stream, pool: self)
                        self.idle.append(upstream)
                        self.dispatch()
                    case .failure(let error):
                        // Nothing to connect to: fail what waits (the client retries after Retry-After).
                        let failed = self.waiting
                        self.waiting.removeAll()
                        for job in failed {
                            job.completion(.failure(ForwardError(message: "\(self.host):\(self.port): \(error)")))
                        }
                    }
                }
                return
            } else {
                return
            }
        }
    }

    func finished(_ upstream: Upstream, reusable: Bool) {
        busy.removeValue(forKey: ObjectIdentifier(upstream))
        if reusable && !closed { idle.append(upstream) } else { upstream.close() }
        dispatch()
    }

    func lost(_ upstream: Upstream, retry job: Forwarder.Job?) {
        busy.removeValue(forKey: ObjectIdentifier(upstream))
        idle.removeAll { $0 === upstream }
        upstream.close()
        if let job { waiting.insert(job, at: 0) }
        dispatch()
    }

    func expire(now: UInt64) {
        let late = waiting.filter { $0.deadlineMs <= now }
        if !late.isEmpty {
            waiting.removeAll { $0.deadlineMs <= now }
            for job in late { job.completion(.failure(ForwardError(message: "no connection to \(host):\(port)"))) }
        }
        for upstream in Array(busy.values) { upstream.expire(now: now) }
    }

    func close() {
        closed = true
        for upstream in idle + Array(busy.values) { upstream.close() }
        idle.removeAll()
        busy.removeAll()
        let failed = waiting
        waiting.removeAll()
        for job in failed { job.completion(.failure(ForwardError(message: "gateway shutting down"))) }
    }
}

/// One keep-alive connection to another gateway. Loop thread.
private final class Upstream: StreamHandleDelegate {
    private let stream: StreamHandle
    private unowned let pool: EndpointPool
    private var parser = HTTPResponseParser()
    private var job: Forwarder.Job?
    private var received = false
    private var uses = 0
    private var closed = false

    init(stream: StreamHandle, pool: EndpointPool) {
        self.stream = stream
        self.pool = pool
        stream.delegate = self
        stream.setNoDelay()
        stream.startReading()
    }

    func send(_ job: Forwarder.Job) {
        self.job = job
        received = false
        uses += 1
        if !stream.write(job.bytes) { fail(ForwardError(message: "write to \(pool.host):\(pool.port) failed")) }
    }

    func expire(now: UInt64) {
        guard let job, job.deadlineMs <= now else { return }
        fail(ForwardError(message: "\(pool.host):\(pool.port) did not answer in time"))
    }

    private func fail(_ error: ForwardError) {
        let pending = job
        job = nil
        pool.lost(self, retry: nil)
        pending?.completion(.failure(error))
    }

    func streamDidRead(_ bytes: UnsafeRawBufferPointer) {
        received = true
        if let error = parser.feed(bytes) {
            fail(ForwardError(message: error))
            return
        }
        guard !parser.completed.isEmpty else { return }
        let response = parser.completed.removeFirst()
        guard let pending = job else {
            pool.lost(self, retry: nil)  // an answer nobody asked for: the stream is out of step
            return
        }
        job = nil
        pool.finished(self, reusable: response.keepAlive && parser.completed.isEmpty)
        pending.completion(.success(response))
    }

    func streamDidEnd(error: UVError?) {
        guard var pending = job else {
            pool.lost(self, retry: nil)  // an idle keep-alive connection the peer closed
            return
        }
        if parser.finish() == nil, let response = parser.completed.first {
            job = nil
            pool.lost(self, retry: nil)
            pending.completion(.success(response))
            return
        }
        job = nil
        if !received && uses > 1 && !pending.retried {
            // The peer closed a reused connection before our request reached it: retry once, fresh.
            pending.retried = true
            pool.lost(self, retry: pending)
            return
        }
        pool.lost(self, retry: nil)
        pending.completion(.failure(ForwardError(message: "\(pool.host):\(pool.port) closed the connection")))
    }

    func streamDidDrainWrites() {}
    func streamDidClose() {}

    func close() {
        guard !closed else { return }
        closed = true
        stream.close()
    }
}
