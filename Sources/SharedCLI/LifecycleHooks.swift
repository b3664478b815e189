// Start-up and shutdown hooks: the explicit extension points both processes use around their services.
public import Logging
public import ServiceLifecycle
import Synchronization

/// Ordered hooks. Start-up hooks run in registration order before the services start; shutdown hooks run in
/// reverse registration order after the services stopped (last started, first stopped). Thread-safe.
public final class LifecycleHooks: Sendable {
    public typealias Hook = @Sendable () async throws -> Void

    private struct Entry: Sendable {
        let name: String
        let hook: Hook
    }

    private let startup = Mutex<[Entry]>([])
    private let shutdown = Mutex<[Entry]>([])

    public init() {}

    public func onStartup(_ name: String, _ hook: @escaping Hook) {
        startup.withLock { $0.append(Entry(name: name, hook: hook)) }
    }

    public func onShutdown(_ name: String, _ hook: @escaping Hook) {
        shutdown.withLock { $0.append(Entry(name: name, hook: hook)) }
    }

    /// Runs start-up hooks in order; the first failure stops start-up and is rethrown.
    public func runStartup(logger: Logger) async throws {
        for entry in startup.withLock({ $0 }) {
            logger.debug("start-up hook", metadata: ["hook": "\(entry.name)"])
            try await entry.hook()
        }
    }

    /// Runs every shutdown hook in reverse order; failures are logged and do not stop the others.
    public func runShutdown(logger: Logger) async {
        for entry in shutdown.withLock({ $0 }).reversed() {
            logger.debug("shutdown hook", metadata: ["hook": "\(entry.name)"])
            do { try await entry.hook() } catch {
                logger.error("shutdown hook failed", metadata: ["hook": "\(entry.name)", "error": "\(error)"])
            }
        }
    }

    /// Runs start-up hooks, then the services until SIGTERM/SIGINT (graceful: services stop in reverse
    /// order), then the shutdown hooks.
    public func run(services: [any Service], logger: Logger) async throws {
        try await runStartup(logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            await runShutdown(logger: logger)
            throw error
        }
        await runShutdown(logger: logger)
    }
}
