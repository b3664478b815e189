// The thread-safe handle other threads use to ask the gateway loop to drain (SIGTERM, cancellation).
import Synchronization

/// Thread-safe. The loop attaches its wakeup when it starts and detaches it before closing it, so a
/// request never touches a closed handle; a request before attach is remembered and honoured.
final class GatewayControl: Sendable {
    private struct State {
        var wakeup: AsyncWakeup?
        var drainRequested = false
    }

    private let state = Mutex(State())

    init() {}

    /// Any thread: asks the loop to stop accepting, finish in-flight requests and end.
    func requestDrain() {
        state.withLock { s in
            s.drainRequested = true
            s.wakeup?.send()
        }
    }

    /// Any thread.
    var drainRequested: Bool { state.withLock { $0.drainRequested } }

    /// Loop thread: makes `requestDrain` reach the loop; wakes it at once if a drain is already asked.
    func attach(_ wakeup: AsyncWakeup) {
        state.withLock { s in
            s.wakeup = wakeup
            if s.drainRequested { wakeup.send() }
        }
    }

    /// Loop thread, before closing the wakeup.
    func detach() {
        state.withLock { $0.wakeup = nil }
    }
}
