// One client connection: parses requests, dispatches them, answers in order (pipelining), timeouts.

/// The connection state machine. Bound to the loop thread.
///
/// Responses are kept in sequence slots; a slot may be filled at once (static routes) or later
/// (ingestor answers); the completed head of the queue is encoded into one buffer and written with
/// one write per read event / completion, so pipelined answers leave in order and in one syscall.
final class HTTPConnection: StreamHandleDelegate, ResponseSink {
    private struct Slot {
        var response: HTTPResponse?
        let keepAlive: Bool
        let http10KeepAlive: Bool
        let omitBody: Bool
        let route: String
        let method: HTTPMethod
        let startNs: UInt64
    }

    let id: Int
    private let stream: StreamHandle
    private let parser: HTTPRequestParser
    private unowned let server: HTTPServer
    private var slots: [Slot] = []
    private var slotHead = 0
    /// Sequence number of `slots[slotHead]`.
    private var headSequence: UInt64 = 0
    private var out: [UInt8] = []
    /// Reading pauses while more than this is waiting to be written to a slow reader.
    private static let maxQueuedWriteBytes = 256 * 1024
    /// No more requests are taken (error, `Connection: close`, drain).
    private var closing = false
    /// The last response is out; waiting for the peer's FIN (or the linger deadline) before closing.
    private var lingering = false
    private var closed = false
    private var readPaused = false
    /// Inside streamDidRead: completions wait for the single flush at its end.
    private var dispatching = false
    /// Queued on the server for its once-per-iteration flush.
    private var flushQueued = false
    private var peerClosed = false
    private var headStartMs: UInt64?
    private var bodyStartMs: UInt64?
    private var writeStartMs: UInt64?
    /// When the sweep timer should act on this connection (loop ms).
    private(set) var deadlineMs: UInt64 = .max
    /// The buffered bytes last reported to the server's budget (kept by the server).
    var accountedBytes = 0

    init(id: Int, stream: StreamHandle, server: HTTPServer) {
        self.id = id
        self.stream = stream
        self.server = server
        self.parser = HTTPRequestParser(limits: server.limits)
        stream.delegate = self
        stream.setNoDelay()
        deadlineMs = server.nowMs + server.limits.idleTimeoutMs
    }

    /// Starts reading, once the server has registered the connection.
    func start() {
        stream.startReading()
        settle()
    }

    private var pending: Int { slots.count - slotHead }
    /// The oldest unanswered request has its answer: what remains waits on the client, not on us.
    private var headAnswered: Bool { slotHead < slots.count && slots[slotHead].response != nil }

    // MARK: StreamHandleDelegate

    func streamDidRead(_ bytes: UnsafeRawBufferPointer) {
        if closing || lingering { return }  // input after the last answer is discarded
        process(parser.feed(bytes))
        pumpHeld()
        // Back-pressure: too many unanswered requests or unparsed bytes, or a client that does not read.
        if !closed, !closing,
            pending >= server.limits.maxPipelined || parser.hasHeldBytes
                || stream.pendingWriteBytes > Self.maxQueuedWriteBytes
        {
            stream.stopReading()
            readPaused = true
        }
        settle()
    }

    /// Dispatches what the parser completed, answers its error if any, and writes what is ready.
    private func process(_ error: HTTPParseError?) {
        dispatching = true
        dispatchCompleted()
        if let error {
            answerParseError(error)
        } else if parser.continueRequested {
            parser.continueRequested = false
            if pending == 0 { _ = stream.write(ResponseEncoder.continueLine) }
        }
        dispatching = false
        flush()
    }

    /// Parses requests held back at the pipelining bound while answers make room (each round either
    /// empties the held bytes or dispatches a full batch, so it ends).
    private func pumpHeld() {
        while !closed, !closing, !lingering, parser.hasHeldBytes, pending < server.limits.maxPipelined {
            process(parser.resume())
        }
    }

    func streamDidEnd(error: UVError?) {
        if let error { server.metrics.socketError(error.name) }
        // Half-close from the client: answer what was asked, then close.
        peerClosed = true
        if error == nil, pending > 0, !lingering {
            closing = true
            settle()  // sheddable now: under pressure its answer is the cheapest one to give up
            return
        }
        close()
    }

    func streamDidDrainWrites() {
        writeStartMs = nil
        if headAnswered {
            flush()  // answers held back by the output bound
        }
        pumpHeld()
        if closed || lingering { return }
        if readPaused && !closing && pending < server.limits.maxPipelined / 2 && !parser.hasHeldBytes {
            readPaused = false
            stream.startReading()
        }
        if closing && pending == 0 && !stream.hasPendingWrites { finish() }
        settle()
    }

    func streamDidClose() {
        // close() has told the server already (which may be gone by now, after a drain).
        guard !closed else { return }
        closed = true
        server.connectionClosed(self)
    }

    // MARK: dispatch

    private func dispatchCompleted() {
        guard !parser.completed.isEmpty else { return }
        let requests = parser.completed
        parser.completed.removeAll(keepingCapacity: true)
        headStartMs = nil
        bodyStartMs = nil
        for request in requests {
            if closing { break }  // requests after `Connection: close` are not answered
            let keepAlive = request.keepAlive && !server.draining
            let sequence = headSequence + UInt64(pending)
            let match = server.routes.match(method: request.method, path: request.path)
            var routeName = "unmatched"
            if case .found(let route, _) = match { routeName = route.name }
            slots.append(
                Slot(
                    response: nil, keepAlive: keepAlive,
                    http10KeepAlive: keepAlive && request.versionMinor == 0,
                    omitBody: request.method == .head, route: routeName, method: request.method,
                    startNs: MonotonicClock.nanoseconds()))
            if !keepAlive { closing = true }
            switch match {
            case .found(let route, let params):
                let routeRequest = RouteRequest(request: request, params: params)
                switch route.handler {
                case .sync(let handler): complete(sequence, handler(routeRequest))
                case .async(let handler): handler(routeRequest, Responder(sink: self, sequence: sequence))
                }
            case .methodNotAllowed(let allow):
                complete(
                    sequence,
                    .error(
                        405, "method-not-allowed", "\(request.method.name) is not allowed here",
                        headers: [("Allow", allow)]))
            case .notFound:
                complete(sequence, .error(404, "not-found", "no route for this path"))
            case .badPath:
                complete(sequence, .error(400, "bad-request", "malformed request target"))
            }
        }
    }

    private func answerParseError(_ error: HTTPParseError) {
        server.metrics.socketError("parse")
        let response: HTTPResponse
        var method = HTTPMethod("INVALID")
        switch error {
        case .requestLineTooLong:
            response = .error(431, "request-line-too-long", "request line over \(server.limits.maxRequestLine) bytes")
        case .headersTooLarge:
            response = .error(431, "headers-too-large", "header section over \(server.limits.maxHeaderBytes) bytes")
        case .bodyTooLarge:
            method = .post
            response = .error(413, "body-too-large", "request body over \(server.limits.maxBody) bytes")
        case .invalidMethod(let target):
            let path = target.map { t in t.split(separator: "?", maxSplits: 1).first ?? "" } ?? ""
            if let allow = server.routes.allow(path: path) {
                response = .error(405, "method-not-allowed", "unknown method", headers: [("Allow", allow)])
            } else if target != nil, path.hasPrefix("/") {
                response = .error(404, "not-found", "no route for this path")
            } else {
                response = .error(400, "bad-request", "unknown method")
            }
        case .malformed(let reason):
            response = .error(400, "bad-request", reason)
        }
        let sequence = headSequence + UInt64(pending)
        slots.append(
            Slot(
                response: nil, keepAlive: false, http10KeepAlive: false, omitBody: false, route: "error",
                method: method, startNs: MonotonicClock.nanoseconds()))
        closing = true
        var r = response
        r.close = true
        complete(sequence, r)
    }

    // MARK: ResponseSink

    func complete(_ sequence: UInt64, _ response: HTTPResponse) {
        guard !closed, sequence >= headSequence else { return }
        let index = slotHead + Int(sequence - headSequence)
        guard index < slots.count, slots[index].response == nil else { return }
        slots[index].response = response
        if index == slotHead && !dispatching && !flushQueued {
            flushQueued = true
            server.requestFlush(self)
        }
    }

    /// Called by the server for a flush requested by `complete`.
    func flushQueuedAnswers() {
        flushQueued = false
        flush()
        pumpHeld()
    }

    /// Encodes every completed response at the head of the queue and writes them at once.
    private func flush() {
        guard !closed else { return }
        var closeAfter = false
        let date = server.date.line
        // Batches of at most the output bound; the next batch when the kernel took this one at once.
        repeat {
            while slotHead < slots.count, let response = slots[slotHead].response {
                // Answers past the bound wait in their slots until the client reads (streamDidDrainWrites).
                if !out.isEmpty, out.count + stream.pendingWriteBytes >= Self.maxQueuedWriteBytes { break }
                let slot = slots[slotHead]
                let keepAlive = slot.keepAlive && !response.close && !server.draining
                ResponseEncoder.encode(
                    response, into: &out, keepAlive: keepAlive, http10KeepAlive: slot.http10KeepAlive,
                    omitBody: slot.omitBody, date: date)
                server.metrics.request(
                    route: slot.route, method: slot.method, status: response.status,
                    nanoseconds: MonotonicClock.nanoseconds() &- slot.startNs)
                slots[slotHead].response = nil
                slotHead += 1
                headSequence += 1
                if !keepAlive {
                    closeAfter = true
                    break
                }
            }
            if slotHead == slots.count {
                slots.removeAll(keepingCapacity: true)
                slotHead = 0
            }
            if !out.isEmpty {
                let ok = stream.write(out)
                // A large batch's buffer is not kept: thousands of idle connections would each hold one.
                if out.capacity > 16 * 1024 { out = [] } else { out.removeAll(keepingCapacity: true) }
                if !ok {
                    server.metrics.socketError("write")
                    close()
                    return
                }
                if stream.hasPendingWrites, writeStartMs == nil { writeStartMs = server.nowMs }
            }
        } while !closeAfter && headAnswered && !stream.hasPendingWrites
        if closeAfter {
            closing = true
            slots.removeAll()
            slotHead = 0
            if !stream.hasPendingWrites { finish() }
            return
        }
        if closing && pending == 0 && !stream.hasPendingWrites {
            finish()
            return
        }
        if readPaused && pending < server.limits.maxPipelined / 2 && !stream.hasPendingWrites && !parser.hasHeldBytes {
            readPaused = false
            stream.startReading()
        }
        settle()
    }

    /// The last answer is written: send FIN and linger briefly so the client reads it before RST.
    private func finish() {
        guard !lingering, !closed else { return }
        if peerClosed {
            close()
            return
        }
        lingering = true
        stream.shutdown()
        if readPaused {
            readPaused = false
            stream.startReading()
        }
        deadlineMs = server.nowMs + 2_000
        settle()
    }

    // MARK: timeouts and drain

    /// After every event: the next deadline, and what the server's shedding and byte budget need to know.
    private func settle() {
        guard !closed else { return }
        updateDeadline()
        server.update(
            self, sheddable: pending == 0 || headAnswered || peerClosed,
            bufferedBytes: parser.bufferedBytes + stream.pendingWriteBytes)
    }

    private func updateDeadline() {
        guard !lingering, !closed else { return }
        let now = server.nowMs
        let limits = server.limits
        if let writeStartMs {
            deadlineMs = writeStartMs + limits.writeTimeoutMs
            return
        }
        switch parser.phase {
        case .head:
            if headStartMs == nil { headStartMs = now }
            deadlineMs = (headStartMs ?? now) + limits.headerTimeoutMs
        case .body:
            if bodyStartMs == nil { bodyStartMs = now }
            deadlineMs = (bodyStartMs ?? now) + limits.bodyTimeoutMs
        case .idle:
            headStartMs = nil
            bodyStartMs = nil
            deadlineMs = pending == 0 ? now + limits.idleTimeoutMs : .max
        }
    }

    /// Called by the sweep timer once `deadlineMs` passed.
    func timedOut() {
        guard !closed else { return }
        if lingering || pending > 0 || stream.hasPendingWrites || closing {
            if !lingering { server.metrics.socketError("timeout") }
            close()
            return
        }
        switch parser.phase {
        case .head, .body:
            server.metrics.socketError("timeout")
            let sequence = headSequence
            slots.append(
                Slot(
                    response: nil, keepAlive: false, http10KeepAlive: false, omitBody: false, route: "error",
                    method: HTTPMethod("INVALID"), startNs: MonotonicClock.nanoseconds()))
            closing = true
            complete(sequence, .error(408, "request-timeout", "request not received in time", headers: []))
            flush()
        case .idle:
            close()
        }
    }

    /// Graceful drain: idle connections close now; busy ones close after their answers.
    func drain() {
        guard !closed else { return }
        if pending > 0 || stream.hasPendingWrites {
            closing = true  // the remaining answers carry `Connection: close`
        } else {
            close()
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        deadlineMs = .max
        stream.close()
        server.connectionClosed(self)
    }
}
