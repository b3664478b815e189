// `k8s-micro-ingestor run`: the composition root of the ingestor (stores, stream thread, socket, routing).
import ArgumentParser
import Logging
import ServiceLifecycle
import Shared
import SharedCLI

#if canImport(Glibc)
    import Glibc
#endif

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the aggregation topology (the default).")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .customLong("dump-store"), help: .hidden)
    var dumpStore = false

    func run() async throws {
        let config = try ProcessBootstrap.start(options, role: .ingestor)
        let logger = Logger(label: "k8s-micro.ingestor.run")
        let directoryIssues = StartupChecks.directoryIssues(config)
        guard directoryIssues.isEmpty else {
            StandardError.write("k8s-micro-ingestor: \(ConfigValidationError(issues: directoryIssues))\n")
            throw ExitCode(ProcessBootstrap.configExitCode)
        }
        if dumpStore {
            let stores = try StateStores(stateDir: config.ingestor.stateDir, logger: logger)
            try StoreDump.print(stores: stores, codec: try CodecFactory.resolve(config: config, logger: logger).make())
            return
        }
        let stores = try openStores(config, logger)
        let codecs = try CodecFactory.resolve(config: config, logger: logger)
        let registry = PartitionRegistry()
        let settings = StreamSettings(config: config)
        let stream = StreamThread(
            config: config, stores: stores, registry: registry, codecs: codecs,
            logger: Logger(label: "k8s-micro.ingestor.stream"))
        let publisher = try EventPublisher(
            properties: StreamSettings.producerOnly(settings.producerProperties), topic: config.kafka.inputTopic,
            logger: Logger(label: "k8s-micro.ingestor.publish"))
        let routing = RoutingService(
            settings: .init(
                member: "\(config.pod.name)", endpoint: config.gateway.endpoint(pod: config.pod),
                topic: config.kafka.routingTopic, kafkaProperties: settings.routingProperties),
            registry: registry)
        let handler = StoreQueryHandler(
            stores: stores, registry: registry, codec: try codecs.make(), publisher: publisher,
            localEndpoint: config.gateway.endpoint(pod: config.pod), routing: routing,
            onStop: { _ = kill(getpid(), SIGTERM) }, logger: Logger(label: "k8s-micro.ingestor.query"))
        let server = SocketServer(
            configuration: .init(path: config.ingestor.socket, allowedGid: config.ingestor.socketGid),
            handler: handler, logger: Logger(label: "k8s-micro.ingestor.socket"))

        let hooks = LifecycleHooks()
        hooks.onStartup("socket") { try server.start() }
        hooks.onStartup("routing") {
            // Without it peers never learn this pod owns anything: fail start-up rather than serve half a cluster.
            guard routing.start() else { throw KafkaError(config: "cannot start the routing thread") }
        }
        // Reverse order at shutdown: the stream thread has already committed and left the group.
        hooks.onShutdown("socket") {
            server.stop()
            await server.waitUntilStopped()
        }
        hooks.onShutdown("routing") { await routing.stop() }
        hooks.onShutdown("publisher") { publisher.close() }
        hooks.onShutdown("stores") { stores.syncAll() }
        try await hooks.run(services: [StreamService(thread: stream)], logger: logger)
        logger.info("stopped")
    }

    /// The stores, with room reserved for their first writes. A disk already full is logged naming the path and
    /// config key, and ends the process (exit 74) before it joins its group: Kubernetes backs off, nothing is
    /// written half-way.
    private func openStores(_ config: AppConfig, _ logger: Logger) throws -> StateStores {
        let stores: StateStores
        do {
            stores = try StateStores(stateDir: config.ingestor.stateDir, logger: logger)
            try stores.reserveHeadroom()
        } catch {
            guard error.code == ENOSPC || error.code == EDQUOT else { throw error }
            logger.critical("cannot start: state disk full: \(error)")
            throw ExitCode(StartupChecks.noSpaceExitCode)
        }
        return stores
    }
}

/// `run --dump-store`: prints every stored aggregate as JSON lines (tests, debugging; the ingestor must be
/// stopped or it prints a committed snapshot).
enum StoreDump {
    static func print(stores: StateStores, codec: EventCodec) throws {
        for kind in StoreKind.allCases {
            let store = stores[kind]
            for p in store.partitions {
                var after: [UInt8]?
                while true {
                    let keys = store.keys(partition: p, after: after, limit: 1_000)
                    if keys.isEmpty { break }
                    for key in keys {
                        guard let value = store.get(partition: p, key: key) else { continue }
                        let json: String
                        switch kind {
                        case .chaser: json = AggregateJSON.render(try codec.decodeChaserAggregate(value))
                        case .billing: json = AggregateJSON.render(try codec.decodeBillAggregate(value))
                        }
                        var line = #"{"store":"\#(kind.name)","partition":\#(p),"key":"#
                        line += JSONText.quote(String(decoding: key, as: UTF8.self))
                        line += #","value":\#(json)}"#
                        Swift.print(line)
                    }
                    after = keys.last
                }
            }
        }
    }
}
