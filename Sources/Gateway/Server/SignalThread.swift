// The gateway's signal thread: SIGTERM/SIGINT ask the loop to drain, SIGHUP reloads the log config.
import Glibc
import Logging
import Shared

/// Waits with sigwait on a dedicated thread; the signals must be blocked in every thread before it starts.
enum SignalThread {
    /// Starts the thread; false when it cannot be created.
    static func start(signals: sigset_t, control: GatewayControl, sources: ConfigSources, logger: Logger) -> Bool {
        OSThread.spawn(name: "gw-signals") {
            var waitSet = signals
            while true {
                var number: Int32 = 0
                guard sigwait(&waitSet, &number) == 0 else { continue }
                switch number {
                case SIGHUP:
                    ProcessStart.reload(sources, role: .gateway)
                default:
                    // A second SIGTERM while draining changes nothing: the drain has its own timeout.
                    logger.notice("signal received; draining", metadata: ["signal": "\(number)"])
                    control.requestDrain()
                }
            }
        }
    }
}
