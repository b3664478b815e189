// Start-up hooks run in order, shutdown hooks in reverse, and a failing shutdown hook does not stop the rest.
import Logging
import SharedCLI
import Synchronization
import Testing

@testable import Shared

private final class Recorder: Sendable {
    let events = Mutex<[String]>([])
    func add(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}

private struct HookFailure: Error {}

@Suite struct LifecycleHooksTests {
    @Test func startupInOrderShutdownInReverse() async throws {
        let hooks = LifecycleHooks()
        let recorder = Recorder()
        hooks.onStartup("config") { recorder.add("start config") }
        hooks.onStartup("socket") { recorder.add("start socket") }
        hooks.onShutdown("socket") { recorder.add("stop socket") }
        hooks.onShutdown("store") { throw HookFailure() }
        hooks.onShutdown("consumer") { recorder.add("stop consumer") }
        let logger = Logger(label: "test")
        try await hooks.runStartup(logger: logger)
        await hooks.runShutdown(logger: logger)
        #expect(recorder.all == ["start config", "start socket", "stop consumer", "stop socket"])
    }

    @Test func failingStartupHookStopsStartup() async throws {
        let hooks = LifecycleHooks()
        let recorder = Recorder()
        hooks.onStartup("a") { throw HookFailure() }
        hooks.onStartup("b") { recorder.add("b") }
        await #expect(throws: HookFailure.self) { try await hooks.runStartup(logger: Logger(label: "test")) }
        #expect(recorder.all.isEmpty)
    }
}
