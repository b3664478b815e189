// SIGHUP re-reads the config and applies what can change while running (today: the log section).
import Logging
import UnixSignals

enum ConfigReloader {
    static func install(options: ConfigOptions, role: ProcessRole) {
        Task.detached {
            let logger = Logger(label: "k8s-micro.\(role.rawValue).config")
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                do {
                    let config = try ConfigLoader.load(options: options)
                    LogSetup.apply(config.log)
                    logger.notice("config reloaded", metadata: ["log.level": "\(config.log.level.rawValue)"])
                } catch {
                    logger.error("config reload failed; keeping the running config", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
