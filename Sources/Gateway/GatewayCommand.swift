// Entry point of k8s-micro-gateway: parse options, load config, run the libuv loop on the main thread, drain on SIGTERM.
// No ArgumentParser, no service-lifecycle and no Swift concurrency: each costs binary size or idle threads
// (docs/footprint.md), and the gateway needs only one loop thread plus a signal thread.
import Glibc
import Logging
import Shared

@main
enum GatewayMain {
    static let command = "k8s-micro-gateway"
    static let abstract = "HTTP API (8080) and health/metrics (8079) of k8s-micro, on libuv."

    static func main() {
        let sources: ConfigSources
        switch ConfigArguments.parse(Array(CommandLine.arguments.dropFirst())) {
        case .run(let parsed):
            sources = parsed
        case .help:
            print(ConfigArguments.help(command: command, abstract: abstract), terminator: "")
            exit(0)
        case .version:
            print(Version.full)
            exit(0)
        case .usage(let message):
            StandardError.write(
                "\(message)\nUsage: \(command) [--config <config>] [--secrets <secrets>] "
                    + "[--set <set> ...] [--print-config]\n  See '\(command) --help' for more information.\n")
            exit(ConfigArguments.usageExitCode)
        }
        // Writes to a peer that went away must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        // Block the shutdown and reload signals before any thread starts (threads inherit the mask): only
        // the signal thread receives them, through sigwait.
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, number) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let config: AppConfig
        switch ProcessStart.begin(sources, role: .gateway) {
        case .exit(let code): exit(code)
        case .run(let loaded): config = loaded
        }
        let logger = Logger(label: "k8s-micro.gateway.main")
        let heartbeat = Heartbeat()
        heartbeat.startWatchdog(logger: Logger(label: "k8s-micro.gateway.watchdog"))
        let control = GatewayControl()
        guard SignalThread.start(signals: signals, control: control, sources: sources, logger: logger) else {
            logger.critical("cannot start the signal thread")
            exit(1)
        }
        // The main thread is the loop thread: GatewayApp lives and dies here.
        do {
            let app = try GatewayApp(config: config, control: control, heartbeat: heartbeat)
            app.run()
        } catch {
            logger.critical("gateway start-up failed: \(error)")
            exit(1)
        }
        logger.info("gateway stopped")
        exit(0)
    }
}
