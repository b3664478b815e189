// The ingestor client over the Unix socket, on the libuv loop: multiplexed ids, timeouts, reconnect.
import Logging
import Shared

/// Multiplexes requests over one Unix-socket connection (request ids); per-request deadlines;
/// reconnects with exponential back-off; a bounded number of requests in flight (the rest fail fast).
/// Requests queued during one loop iteration leave in one write (a check handle flushes them).
/// Bound to the loop thread.
final class SocketIngestorClient: IngestorClient, StreamHandleDelegate {
    private struct Pending {
        let operation: UInt8
        let deadlineMs: UInt64
        let completion: (IngestorReply) -> Void
    }

    private let loop: EventLoop
    private let path: String
    private let maxInFlight: Int
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let encoder = FrameEncoder()
    private var decoder = FrameDecoder()
    private var stream: StreamHandle?
    private var connecting = false
    private var closed = false
    private var pending: [UInt32: Pending] = [:]
    private var nextId: UInt32 = 0
    private var outgoing: [UInt8] = []
    private var backoffMs: UInt64 = 50
    private let reconnectTimer: LoopTimer
    private let sweepTimer: LoopTimer
    private var flushCheck: LoopCheck?
    private var lastFailureLogged = ""

    private(set) var isConnected = false

    init(loop: EventLoop, path: String, maxInFlight: Int = 4096, metrics: GatewayMetrics, logger: Logger) {
        self.loop = loop
        self.path = path
        self.maxInFlight = maxInFlight
        self.metrics = metrics
        self.logger = logger
        reconnectTimer = LoopTimer(loop: loop)
        sweepTimer = LoopTimer(loop: loop)
        flushCheck = LoopCheck(loop: loop) { [unowned self] in self.flush() }
        sweepTimer.start(timeoutMs: 100, repeatMs: 100) { [unowned self] in self.expire() }
        sweepTimer.unref()
        metrics.ingestorConnection(false)
        connect()
    }

    // MARK: IngestorClient

    func send(_ request: SocketRequest, timeoutMs: UInt64, _ completion: @escaping (IngestorReply) -> Void) {
        guard isConnected, stream != nil else {
            metrics.ingestorRequest(outcome: "not-connected")
            completion(.unavailable(reason: "ingestor not connected"))
            return
        }
        guard pending.count < maxInFlight else {
            metrics.ingestorRequest(outcome: "queue-full")
            completion(.unavailable(reason: "too many requests in flight to the ingestor"))
            return
        }
        nextId &+= 1
        if nextId == 0 { nextId = 1 }
        while pending[nextId] != nil { nextId &+= 1 }
        do {
            try encoder.appendRequest(request, id: nextId, to: &outgoing)
        } catch {
            metrics.ingestorRequest(outcome: "oversized")
            completion(.unavailable(reason: "request too large for the socket: \(error)"))
            return
        }
        pending[nextId] = Pending(
            operation: request.operationCode, deadlineMs: loop.nowMs + timeoutMs, completion: completion)
    }

    func close() {
        guard !closed else { return }
        closed = true
        disconnect(reason: "gateway shutting down")
        reconnectTimer.close()
        sweepTimer.close()
        flushCheck?.close()
        flushCheck = nil
    }

    // MARK: connection

    private func connect() {
        guard !closed, !connecting, stream == nil else { return }
        connecting = true
        StreamHandle.connectPipe(loop: loop, path: path) { [weak self] result in
            guard let self else { return }
            self.connecting = false
            switch result {
            case .success(let stream):
                if self.closed {
                    stream.close()
                    return
                }
                self.stream = stream
                self.decoder = FrameDecoder()
                stream.delegate = self
                stream.startReading()
                self.isConnected = true
                self.backoffMs = 50
                self.lastFailureLogged = ""
                self.metrics.ingestorConnection(true)
                self.logger.info("connected to ingestor", metadata: ["socket": "\(self.path)"])
            case .failure(let error):
                if self.lastFailureLogged != error.name {
                    self.lastFailureLogged = error.name
                    self.logger.warning(
                        "ingestor socket unreachable; retrying with back-off",
                        metadata: ["socket": "\(self.path)", "error": "\(error)"])
                }
                self.scheduleReconnect()
            }
        }
    }

    private func scheduleReconnect() {
        guard !closed else { return }
        let delay = backoffMs
        backoffMs = min(backoffMs * 2, 2_000)
        reconnectTimer.start(timeoutMs: delay) { [unowned self] in self.connect() }
    }

    private func disconnect(reason: String) {
        if let stream {
            stream.delegate = nil
            stream.close()
        }
        stream = nil
        outgoing.removeAll(keepingCapacity: true)
        if isConnected {
            isConnected = false
            metrics.ingestorConnection(false)
            if !closed { logger.warning("ingestor connection lost", metadata: ["reason": "\(reason)"]) }
        }
        let failed = pending
        pending.removeAll()
        for (_, request) in failed {
            metrics.ingestorRequest(outcome: "connection-lost")
            request.completion(.unavailable(reason: "ingestor connection lost"))
        }
        scheduleReconnect()
    }

    /// Writes everything queued this iteration in one go.
    private func flush() {
        guard !outgoing.isEmpty, let stream else { return }
        let ok = stream.write(outgoing)
        outgoing.removeAll(keepingCapacity: true)
        if !ok { disconnect(reason: "write failed") }
    }

    private func expire() {
        guard !pending.isEmpty else { return }
        let now = loop.nowMs
        var expired: [UInt32] = []
        for (id, request) in pending where request.deadlineMs <= now { expired.append(id) }
        for id in expired {
            guard let request = pending.removeValue(forKey: id) else { continue }
            metrics.ingestorRequest(outcome: "timeout")
            request.completion(.unavailable(reason: "ingestor did not answer in time"))
        }
    }

    // MARK: StreamHandleDelegate

    func streamDidRead(_ bytes: UnsafeRawBufferPointer) {
        do {
            try decoder.feed(bytes) { frame in
                guard case .response(let id, _, let response) = frame else { return }
                guard let request = pending.removeValue(forKey: id) else { return }  // late: timed out
                metrics.ingestorRequest(outcome: "ok")
                request.completion(.response(response))
            }
        } catch {
            metrics.socketError("ingestor-protocol")
            logger.error("bad frame from ingestor; reconnecting", metadata: ["error": "\(error)"])
            disconnect(reason: "protocol error: \(error)")
        }
    }

    func streamDidEnd(error: UVError?) {
        disconnect(reason: error.map { "\($0)" } ?? "ingestor closed the socket")
    }

    func streamDidDrainWrites() {}

    func streamDidClose() {}
}
