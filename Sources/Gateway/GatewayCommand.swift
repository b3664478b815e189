// Entry point of k8s-micro-gateway: load config, start the libuv loop service, drain on SIGTERM.
import ArgumentParser
import Glibc
import Logging
import Shared

@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-micro-gateway",
        abstract: "HTTP API (8080) and health/metrics (8079) of k8s-micro, on libuv.",
        version: Version.full
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        // Writes to a peer that went away must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let config = try ProcessBootstrap.start(options, role: .gateway)
        let logger = Logger(label: "k8s-micro.gateway.main")
        let heartbeat = Heartbeat()
        heartbeat.startWatchdog(logger: Logger(label: "k8s-micro.gateway.watchdog"))
        let hooks = LifecycleHooks()
        do {
            try await hooks.run(services: [GatewayService(config: config, heartbeat: heartbeat)], logger: logger)
        } catch let error as GatewayService.StartFailure {
            logger.critical("\(error.description)")
            throw ExitCode.failure
        }
        logger.info("gateway stopped")
    }
}
