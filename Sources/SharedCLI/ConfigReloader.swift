// SIGHUP re-reads the config and applies what can change while running (today: the log section).
import Shared
import UnixSignals

enum ConfigReloader {
    static func install(options: ConfigOptions, role: ProcessRole) {
        let sources = options.sources
        Task.detached {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                ProcessStart.reload(sources, role: role)
            }
        }
    }
}
