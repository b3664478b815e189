// One HTTP listener (API or health): accepts connections under a cap, owns them, sweeps timeouts.
import Logging

/// Bound to the loop thread.
final class HTTPServer {
    let name: String
    let routes: RouteTable
    let limits: HTTPLimits
    let metrics: GatewayMetrics
    let date: HTTPDate
    private let loop: EventLoop
    private let maxConnections: Int
    private var listener: TCPListener?
    private var connections: [Int: HTTPConnection] = [:]
    private var nextId = 0
    private let logger: Logger
    /// Set by `drain()`: answers carry `Connection: close`, no new connections.
    private(set) var draining = false
    /// Called once after `drain()` when the last connection closed.
    private var onDrained: (() -> Void)?
    /// Connections whose answers completed outside their own read callback (an ingestor or peer reply):
    /// written once per loop iteration, so a batch of pipelined answers costs one write, not one each.
    private var deferredFlushes: [HTTPConnection] = []
    /// True from this iteration's after-I/O flush until the loop next prepares to poll: a completion
    /// then (a timer, another watcher, a close callback) is written at once rather than after the next poll.
    private var flushedThisIteration = true
    private var afterIO: LoopCheck?
    private var beforeIO: LoopCheck?
    /// Idle, incomplete and non-reading connections, oldest first: what goes when the cap or budget is hit.
    private var sheddable = SheddingQueue()
    /// Request bytes still arriving plus answer bytes not yet taken by the kernel, over all connections.
    private(set) var bufferedBytes = 0

    /// The port actually bound.
    var port: Int { listener?.port ?? 0 }
    var openConnections: Int { connections.count }
    var nowMs: UInt64 { loop.nowMs }

    init(
        name: String, loop: EventLoop, host: String, port: Int, routes: RouteTable, limits: HTTPLimits,
        maxConnections: Int, metrics: GatewayMetrics, date: HTTPDate, logger: Logger
    ) throws(UVError) {
        self.name = name
        self.loop = loop
        self.routes = routes
        self.limits = limits
        self.maxConnections = maxConnections
        self.metrics = metrics
        self.date = date
        self.logger = logger
        listener = try TCPListener(loop: loop, host: host, port: port) { [unowned self] stream in
            self.accepted(stream)
        }
        afterIO = LoopCheck(loop: loop, phase: .afterIO) { [unowned self] in self.flushDeferred() }
        beforeIO = LoopCheck(loop: loop, phase: .beforeIO) { [unowned self] in self.flushedThisIteration = false }
    }

    /// Writes `connection`'s completed answers now, or with the others at the end of this iteration's I/O.
    func requestFlush(_ connection: HTTPConnection) {
        if flushedThisIteration {
            connection.flushQueuedAnswers()
        } else {
            deferredFlushes.append(connection)
        }
    }

    private func flushDeferred() {
        flushedThisIteration = true
        guard !deferredFlushes.isEmpty else { return }
        for connection in deferredFlushes { connection.flushQueuedAnswers() }
        deferredFlushes.removeAll(keepingCapacity: true)
    }

    /// Written to connections over the cap before closing them (no parsing, no slot).
    private static let busy: [UInt8] = {
        var out: [UInt8] = []
        let response = HTTPResponse.error(
            503, "too-many-connections", "connection cap reached", headers: [("Retry-After", "1")])
        ResponseEncoder.encode(response, into: &out, keepAlive: false, date: [])
        return out
    }()

    private func accepted(_ stream: StreamHandle?) {
        guard let stream else {
            metrics.socketError("accept")
            return
        }
        // At the cap, the connection sheddable longest makes room; 503 only when every one is busy.
        if draining || (connections.count >= maxConnections && !shedOldest(reason: "connections")) {
            metrics.connectionRejected()
            _ = stream.write(Self.busy)
            stream.close()
            return
        }
        nextId += 1
        let connection = HTTPConnection(id: nextId, stream: stream, server: self)
        connections[nextId] = connection
        metrics.connection(listener: name, delta: 1)
        connection.start()
    }

    /// A connection is closing: its slot and buffered bytes are free now (its handle closes a bit later).
    func connectionClosed(_ connection: HTTPConnection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        sheddable.remove(connection.id)
        bufferedBytes -= connection.accountedBytes
        metrics.connection(listener: name, delta: -1)
        if draining && connections.isEmpty { finishDrain() }
    }

    /// A connection's state changed: whether it may be shed, and how many bytes it now holds. Over the
    /// budget, the connections sheddable longest are closed (possibly `connection` itself).
    func update(_ connection: HTTPConnection, sheddable isSheddable: Bool, bufferedBytes bytes: Int) {
        guard connections[connection.id] != nil else { return }
        if isSheddable {
            sheddable.add(connection.id)
        } else {
            sheddable.remove(connection.id)
        }
        bufferedBytes += bytes - connection.accountedBytes
        connection.accountedBytes = bytes
        while bufferedBytes > limits.maxBufferedBytes, shedOldest(reason: "memory") {}
    }

    /// Closes the connection sheddable longest; false when there is none.
    private func shedOldest(reason: String) -> Bool {
        while let id = sheddable.popOldest() {
            guard let victim = connections[id] else { continue }
            metrics.connectionShed(reason: reason)
            victim.close()
            return true
        }
        return false
    }

    /// Called by the shared sweep timer: acts on connections whose deadline passed.
    func sweep() {
        metrics.bufferedBytes(listener: name, bufferedBytes)
        let now = loop.nowMs
        var expired: [HTTPConnection] = []
        for connection in connections.values where connection.deadlineMs <= now { expired.append(connection) }
        for connection in expired { connection.timedOut() }
    }

    /// Stops accepting; idle connections close now, busy ones after their answers; `done` runs when
    /// the last one closed.
    func drain(_ done: @escaping () -> Void) {
        guard !draining else { return }
        draining = true
        onDrained = done
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.drain() }
        if connections.isEmpty { finishDrain() }
    }

    /// Drain deadline passed: close whatever is left.
    func forceClose() {
        for connection in Array(connections.values) { connection.close() }
    }

    private func finishDrain() {
        afterIO?.close()
        beforeIO?.close()
        afterIO = nil
        beforeIO = nil
        let done = onDrained
        onDrained = nil
        done?()
    }
}
