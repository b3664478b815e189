// The ingestor's Unix-socket server: one poll loop on its own thread, many clients, many requests in
// flight per client, replies completed from any thread (docs/socket-protocol.md).
import Logging
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Serves `SocketRequestHandler` over a Unix domain socket.
///
/// Threading: `start`, `stop`, `statistics` and the reply closures are thread-safe. Everything else
/// (listener, connections, decoders, output buffers) is confined to the server thread, which runs
/// `poll(2)` over the listener, the connections and a wake-up pipe written when a reply completes on
/// another thread (or on stop).
final class SocketServer: @unchecked Sendable {
    struct Configuration: Sendable {
        var path: String
        /// Group allowed besides our own uid (SO_PEERCRED gid), `ingestor.socketGid`.
        var allowedGid: Int? = nil
        var maxConnections = 256
        /// Beyond this many unanswered requests on one connection, stop reading it (back-pressure).
        var maxInFlightPerConnection = 1024
        /// Beyond this many unsent response bytes on one connection, stop reading it.
        var maxPendingOutput = 8 << 20
        /// How long stop waits for in-flight requests before closing connections.
        var stopGraceMilliseconds = 1000

        init(path: String, allowedGid: Int? = nil) {
            self.path = path
            self.allowedGid = allowedGid
        }
    }

    let configuration: Configuration
    private let handler: any SocketRequestHandler
    private let logger: Logger
    let metrics = SocketServerMetrics()
    private let encoder = FrameEncoder()

    // Cross-thread state.
    private let replies = Mutex(ReplyQueue())
    private let stopRequested = Atomic<Bool>(false)
    private let loopThread = Atomic<UInt>(0)
    private let lifecycle = Mutex(Lifecycle())
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1

    // Server-thread state.
    private var listener: Int32 = -1
    private var socketIdentity: SocketPath.FileIdentity?
    private var connections: [UInt64: SocketConnection] = [:]
    private var nextConnectionId: UInt64 = 1
    private var dirty: [SocketConnection] = []
    private var acceptPausedUntil = 0
    private let ownUid = geteuid()

    private struct ReplyQueue {
        var items: [(connection: UInt64, bytes: [UInt8])] = []
        var wakePending = false
        var closed = false
    }

    private struct Lifecycle {
        var started = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var thread: pthread_t?
    }

    init(configuration: Configuration, handler: any SocketRequestHandler, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
    }

    /// Totals since start (connections, rejected peers, protocol errors, requests).
    var statistics: SocketServerStatistics { metrics.snapshot }

    /// Binds the socket (stale-file handling, mode 0660) and starts the server thread. Bind errors
    /// are thrown here, so a misconfigured or doubly started ingestor fails at start-up.
    func start() throws(SocketServerError) {
        try lifecycle.withLock { (state) throws(SocketServerError) in
            guard !state.started else { throw .alreadyStarted }
            state.started = true
        }
        var pipeFds: [Int32] = [-1, -1]
        guard pipe(&pipeFds) == 0 else { throw .system(SocketSystemError("pipe", path: configuration.path)) }
        for fd in pipeFds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeRead = pipeFds[0]
        wakeWrite = pipeFds[1]
        do {
            (listener, socketIdentity) = try SocketPath.bindListener(
                path: configuration.path, group: configuration.allowedGid, logger: logger)
        } catch {
            close(wakeRead)
            close(wakeWrite)
            throw error
        }
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                guard let arg else { return nil }
                let server = Unmanaged<SocketServer>.fromOpaque(arg).takeRetainedValue()
                server.runLoop()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<SocketServer>.fromOpaque(box).release()
            UnixDomainSocket.close(listener)
            SocketPath.removeIfOurs(path: configuration.path, identity: socketIdentity)
            throw .threadStartFailed(code: rc)
        }
        lifecycle.withLock { $0.thread = thread }
        logger.info("socket server listening", metadata: ["path": "\(configuration.path)", "mode": "0660"])
    }

    /// Asks the server to stop: it stops accepting, unlinks the socket, answers what is in flight
    /// (up to the grace period) and closes every connection. Idempotent, any thread.
    func stop() {
        guard !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake()
    }

    /// Waits (async) until the server thread has ended.
    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lifecycle.withLock { state in
                if state.finished || !state.started { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Blocks until the server thread has ended (tests, benchmarks).
    func join() {
        guard
            let thread = lifecycle.withLock({ state -> pthread_t? in
                defer { state.thread = nil }
                return state.thread
            })
        else { return }
        pthread_join(thread, nil)
    }

    // MARK: Replies

    private var isOnLoopThread: Bool { pthread_equal(pthread_self(), loopThread.load(ordering: .relaxed)) != 0 }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    /// Called by reply closures, on any thread.
    private func complete(connection: UInt64, id: UInt32, operation: UInt8, _ response: SocketResponse) {
        if isOnLoopThread {
            guard let conn = connections[connection] else { return }
            conn.inFlight -= 1
            let wasEmpty = conn.pendingOutput == 0
            encode(response, id: id, operation: operation, into: &conn.output)
            if wasEmpty { dirty.append(conn) }
            return
        }
        var bytes: [UInt8] = []
        encode(response, id: id, operation: operation, into: &bytes)
        let mustWake = replies.withLock { queue in
            guard !queue.closed else { return false }
            queue.items.append((connection, bytes))
            defer { queue.wakePending = true }
            return !queue.wakePending
        }
        if mustWake { wake() }
    }

    private func encode(_ response: SocketResponse, id: UInt32, operation: UInt8, into buffer: inout [UInt8]) {
        do {
            try encoder.appendResponse(response, id: id, operation: operation, to: &buffer)
        } catch {
            logger.error(
                "response too large", metadata: ["id": "\(id)", "operation": "\(operation)", "error": "\(error)"])
            let fallback = SocketResponse.internalError(message: "response too large: \(error)")
            try? encoder.appendResponse(fallback, id: id, operation: operation, to: &buffer)
        }
    }

    // MARK: The loop (server thread)

    private func runLoop() {
        loopThread.store(pthread_self(), ordering: .relaxed)
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { readBuffer.deallocate() }
        var fds: [pollfd] = []
        var polled: [SocketConnection?] = []
        var drainDeadline: Int?

        while true {
            if drainDeadline == nil, stopRequested.load(ordering: .acquiring) {
                drainDeadline = Self.nowMilliseconds() + configuration.stopGraceMilliseconds
                UnixDomainSocket.close(listener)
                listener = -1
                SocketPath.removeIfOurs(path: configuration.path, identity: socketIdentity)
                logger.info(
                    "socket server stopping",
                    metadata: [
                        "connections": "\(connections.count)",
                        "inFlight": "\(connections.values.reduce(0) { $0 + $1.inFlight })",
                    ])
            }
            if let drainDeadline {
                let idle = connections.values.allSatisfy { $0.inFlight == 0 && $0.pendingOutput == 0 }
                if idle || Self.nowMilliseconds() >= drainDeadline { break }
            }

            fds.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            polled.append(nil)
            let now = Self.nowMilliseconds()
            let accepting =
                listener >= 0 && connections.count < configuration.maxConnections && now >= acceptPausedUntil
            if accepting {
                fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
                polled.append(nil)
            }
            for conn in connections.values {
                var events: Int32 = 0
                if drainDeadline == nil, !conn.readClosed, conn.inFlight < configuration.maxInFlightPerConnection,
                    conn.pendingOutput < configuration.maxPendingOutput
                {
                    events |= POLLIN
                }
                if conn.pendingOutput > 0 { events |= POLLOUT }
                fds.append(pollfd(fd: conn.fd, events: Int16(events), revents: 0))
                polled.append(conn)
            }
            var timeout: Int32 = -1
            if let drainDeadline { timeout = Int32(clamping: max(0, drainDeadline - now)) }
            if listener >= 0, now < acceptPausedUntil { timeout = Int32(clamping: acceptPausedUntil - now) }

            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.critical("poll failed; socket server stops", metadata: ["errno": "\(errno)"])
                break
            }
            if fds[0].revents != 0 { drainWakeups() }
            var index = 1
            if accepting {
                if fds[1].revents != 0 { acceptConnections() }
                index = 2
            }
            while index < fds.count {
                let revents = Int32(fds[index].revents)
                if revents != 0, let conn = polled[index] { service(conn, revents: revents, buffer: readBuffer) }
                index += 1
            }
            flushDirty()
        }
        shutDown()
    }

    private func drainWakeups() {
        var sink = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &sink, sink.count) > 0 {}
        let items = replies.withLock { queue in
            queue.wakePending = false
            defer { queue.items.removeAll(keepingCapacity: true) }
            return queue.items
        }
        for item in items {
            guard let conn = connections[item.connection] else { continue }
            conn.inFlight -= 1
            if conn.pendingOutput == 0 { dirty.append(conn) }
            conn.output += item.bytes
        }
    }

    private func acceptConnections() {
        while connections.count < configuration.maxConnections {
            let fd: Int32
            do {
                guard let accepted = try UnixDomainSocket.accept(listener, path: configuration.path) else { return }
                fd = accepted
            } catch {
                // EMFILE and friends: pause accepting briefly instead of spinning on a readable listener.
                logger.error("accept failed", metadata: ["error": "\(error)"])
                acceptPausedUntil = Self.nowMilliseconds() + 100
                return
            }
            let peer = UnixDomainSocket.peerCredentials(fd)
            guard let peer, peer.uid == ownUid || configuration.allowedGid.map({ UInt32($0) == peer.gid }) == true
            else {
                metrics.rejected()
                logger.warning(
                    "socket peer rejected (not our uid nor ingestor.socketGid)",
                    metadata: ["pid": "\(peer?.pid ?? -1)", "uid": "\(peer?.uid ?? 0)", "gid": "\(peer?.gid ?? 0)"])
                UnixDomainSocket.close(fd)
                continue
            }
            let conn = SocketConnection(id: nextConnectionId, fd: fd, peer: peer)
            nextConnectionId += 1
            connections[conn.id] = conn
            metrics.accepted()
            logger.debug("socket client connected", metadata: ["connection": "\(conn.id)", "pid": "\(peer.pid)"])
        }
    }

    private func service(_ conn: SocketConnection, revents: Int32, buffer: UnsafeMutableRawBufferPointer) {
        if revents & POLLOUT != 0 { flush(conn) }
        if revents & (POLLHUP | POLLERR) != 0 && revents & POLLIN == 0 {
            // Both directions gone (or an error): nothing can be answered any more.
            closeConnection(conn, reason: revents & POLLERR != 0 ? "socket error" : "hung up")
            return
        }
        if revents & POLLIN != 0, !conn.readClosed {
            // A few reads per wake-up keep one busy client from starving the others.
            for _ in 0..<8 {
                guard conn.closeReason == nil, conn.inFlight < configuration.maxInFlightPerConnection else { break }
                let n: Int?
                do {
                    n = try UnixDomainSocket.receive(conn.fd, into: buffer)
                } catch {
                    conn.closeReason = "\(error)"
                    break
                }
                guard let n else { break }
                if n == 0 {
                    conn.readClosed = true
                    break
                }
                do {
                    try conn.decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { frame in
                        dispatch(frame, on: conn)
                    }
                } catch {
                    metrics.protocolError(reason: error.reason)
                    logger.warning(
                        "socket protocol error; closing the connection",
                        metadata: [
                            "connection": "\(conn.id)", "pid": "\(conn.peer?.pid ?? -1)",
                            "reason": "\(error.reason)", "error": "\(error)",
                        ])
                    conn.closeReason = "protocol error: \(error)"
                }
                if n < buffer.count { break }
            }
        }
        closeIfDone(conn)
    }

    /// Closes a connection that failed, or that the peer half-closed and that has nothing left to send.
    private func closeIfDone(_ conn: SocketConnection) {
        if let reason = conn.closeReason {
            closeConnection(conn, reason: reason)
        } else if conn.isFinished {
            closeConnection(conn, reason: "closed by peer")
        }
    }

    private func dispatch(_ frame: SocketFrame, on conn: SocketConnection) {
        guard conn.closeReason == nil else { return }
        switch frame {
        case .response(let id, _, _):
            metrics.protocolError(reason: "unexpected-response")
            logger.warning(
                "client sent a response frame; closing", metadata: ["connection": "\(conn.id)", "id": "\(id)"])
            conn.closeReason = "protocol error: response frame from a client"
        case .request(let id, .unknown(let op)):
            metrics.request()
            conn.inFlight += 1
            complete(
                connection: conn.id, id: id, operation: op,
                .unsupported(
                    message: "operation \(op) is not supported by this ingestor (protocol \(SocketProtocol.version))"))
        case .request(let id, let request):
            metrics.request()
            conn.inFlight += 1
            let connectionId = conn.id
            let operation = request.operationCode
            handler.handle(request) { [self] response in
                complete(connection: connectionId, id: id, operation: operation, response)
            }
        }
    }

    private func flushDirty() {
        guard !dirty.isEmpty else { return }
        for conn in dirty where connections[conn.id] === conn {
            flush(conn)
            closeIfDone(conn)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Writes as much pending output as the socket takes now; the rest waits for POLLOUT.
    private func flush(_ conn: SocketConnection) {
        while conn.pendingOutput > 0 {
            let written: Int
            do {
                let offset = conn.outputOffset
                written = try conn.output.withUnsafeBytes { raw in
                    Result { () throws(SocketSystemError) in
                        try UnixDomainSocket.send(conn.fd, UnsafeRawBufferPointer(rebasing: raw[offset...]))
                    }
                }.get()
            } catch {
                conn.closeReason = "\(error)"
                return
            }
            if written == 0 { break }
            conn.outputOffset += written
        }
        if conn.pendingOutput == 0 {
            conn.output.removeAll(keepingCapacity: conn.output.capacity <= 256 * 1024)
            conn.outputOffset = 0
        } else if conn.outputOffset > 64 * 1024 {
            conn.output.removeSubrange(0..<conn.outputOffset)
            conn.outputOffset = 0
        }
    }

    private func closeConnection(_ conn: SocketConnection, reason: String) {
        guard connections.removeValue(forKey: conn.id) != nil else { return }
        UnixDomainSocket.close(conn.fd)
        metrics.closed()
        logger.debug("socket client closed", metadata: ["connection": "\(conn.id)", "reason": "\(reason)"])
    }

    private func shutDown() {
        for conn in Array(connections.values) {
            flush(conn)
            closeConnection(conn, reason: "server stopping")
        }
        if listener >= 0 {
            UnixDomainSocket.close(listener)
            listener = -1
            SocketPath.removeIfOurs(path: configuration.path, identity: socketIdentity)
        }
        replies.withLock { queue in
            queue.closed = true
            queue.items.removeAll()
        }
        // Both pipe ends stay open until deinit: a late reply closure or stop() may still write to it,
        // and writing to a pipe without a reader would raise SIGPIPE.
        logger.info("socket server stopped", metadata: ["path": "\(configuration.path)"])
        let waiters = lifecycle.withLock { state in
            state.finished = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private static func nowMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }
}
