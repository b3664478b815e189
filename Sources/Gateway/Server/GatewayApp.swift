// Composition root of the loop: builds the loop, both listeners, route tables, ingestor client, timers.
import Glibc
import Logging
import Shared

/// Everything that lives on the gateway's loop thread. Created, run and torn down on that thread.
final class GatewayApp {
    private let loop: EventLoop
    private let logger: Logger
    private let metrics = GatewayMetrics()
    private let date = HTTPDate()
    private let heartbeat: Heartbeat
    private let control: GatewayControl
    private let client: any IngestorClient
    private let forwarder: Forwarder
    /// The routing table cached on the loop (direct forwarding of other pods' keys).
    private let routing: RoutingCache
    private let health: HealthRoutes
    private var api: HTTPServer?
    private var healthServer: HTTPServer?
    private let tick: LoopTimer
    private var wakeup: AsyncWakeup?
    private var drainTimer: LoopTimer?
    private var draining = false
    /// Most time a drain waits for in-flight requests before closing what is left (gateway.drainTimeoutMs).
    private let drainTimeoutMs: UInt64

    /// Binds both listeners. Throws when a port cannot be bound.
    init(config: AppConfig, control: GatewayControl, heartbeat: Heartbeat) throws {
        MallocTuning.returnLargeBuffersToTheKernel()
        var limits = HTTPLimits()
        limits.headerTimeoutMs = UInt64(config.gateway.headerTimeoutMs)
        limits.bodyTimeoutMs = UInt64(config.gateway.bodyTimeoutMs)
        limits.idleTimeoutMs = UInt64(config.gateway.idleTimeoutMs)
        drainTimeoutMs = UInt64(config.gateway.drainTimeoutMs)
        self.control = control
        self.heartbeat = heartbeat
        logger = Logger(label: "k8s-micro.gateway.http")
        loop = try EventLoop()
        tick = LoopTimer(loop: loop)
        if config.ingestor.socket.isEmpty {
            client = UnavailableIngestorClient()
        } else {
            client = SocketIngestorClient(
                loop: loop, path: config.ingestor.socket, metrics: metrics,
                logger: Logger(label: "k8s-micro.gateway.ingestor-client"))
        }
        health = HealthRoutes(heartbeat: heartbeat, client: client)
        let upstreamTimeoutMs = UInt64(config.gateway.upstreamTimeoutMs)
        let forwarder = Forwarder(
            loop: loop, logger: Logger(label: "k8s-micro.gateway.forwarding"), timeoutMs: upstreamTimeoutMs)
        self.forwarder = forwarder
        routing = RoutingCache(loop: loop, client: client)
        let apiTable = APIRoutes.table(
            prefix: config.gateway.prefix,
            statics: StaticHandlers(openAPI: StaticHandlers.openAPIDocument(prefix: config.gateway.prefix)),
            data: DataHandlers(
                client: client, forwarder: forwarder, routing: routing, metrics: metrics,
                timeoutMs: upstreamTimeoutMs))
        let healthTable = health.table()
        let host = config.gateway.bindAddress
        healthServer = try HTTPServer(
            name: "health", loop: loop, host: host, port: config.gateway.healthPort, routes: healthTable,
            limits: limits, maxConnections: 256, metrics: metrics, date: date, logger: logger)
        api = try HTTPServer(
            name: "api", loop: loop, host: host, port: config.gateway.port, routes: apiTable, limits: limits,
            maxConnections: config.gateway.maxConnections, metrics: metrics, date: date, logger: logger)
        let wakeup = try AsyncWakeup(loop: loop) { [unowned self] in
            if self.control.drainRequested { self.drain(reason: "signal") }
        }
        self.wakeup = wakeup
        tick.start(timeoutMs: Heartbeat.periodMs, repeatMs: Heartbeat.periodMs) { [unowned self] in
            self.heartbeat.beat()
            self.date.refresh()
            self.api?.sweep()
            self.healthServer?.sweep()
        }
        // /hams/stop takes the same path as SIGTERM: the service group shuts down gracefully, which
        // drains this loop (a service that ended on its own would count as a failure).
        health.onStop = { [unowned self] in
            self.logger.notice("stop requested over /hams/stop")
            kill(getpid(), SIGTERM)
        }
        health.started = true
        for line in apiTable.describe(listener: "api    :\(config.gateway.port)") {
            logger.info("route \(line)")
        }
        for line in healthTable.describe(listener: "health :\(config.gateway.healthPort)") {
            logger.info("route \(line)")
        }
        logger.info(
            "gateway listening",
            metadata: [
                "bind": "\(host)", "port": "\(config.gateway.port)", "healthPort": "\(config.gateway.healthPort)",
                "prefix": "\(config.gateway.prefix)", "maxConnections": "\(config.gateway.maxConnections)",
                "ingestorSocket": "\(config.ingestor.socket)",
            ])
        control.attach(wakeup)
    }

    /// Runs the loop until the drain finished, then closes it.
    func run() {
        loop.run()
        loop.close()
        logger.info("gateway loop ended")
    }

    /// Stops accepting, lets in-flight requests finish (bounded by `drainTimeoutMs`), then ends the loop.
    func drain(reason: String) {
        guard !draining else { return }
        draining = true
        logger.notice("draining", metadata: ["reason": "\(reason)"])
        var remaining = 2
        let done: () -> Void = { [unowned self] in
            remaining -= 1
            if remaining == 0 { self.finish() }
        }
        let timer = LoopTimer(loop: loop)
        drainTimer = timer
        timer.start(timeoutMs: drainTimeoutMs) { [unowned self] in
            self.logger.warning("drain timeout; closing remaining connections")
            self.api?.forceClose()
            self.healthServer?.forceClose()
        }
        api?.drain(done)
        healthServer?.drain(done)
    }

    private func finish() {
        logger.info("drained; stopping loop")
        client.close()
        forwarder.close()
        routing.close()
        tick.close()
        drainTimer?.close()
        drainTimer = nil
        control.detach()
        wakeup?.close()
        wakeup = nil
        api = nil
        healthServer = nil
    }
}
