// Writes the local stores' dirty pages to disk on a thread of its own, off the stream thread.
import Shared

/// Flushes both stores (`StateStores.syncAll`) on its own thread, named "store-flush", each time `request` is
/// called: every 5 s by the stream loop. The stores run with MDB_NOSYNC, so a process crash loses nothing and
/// the flush only bounds what an OS crash can take. It waits for the disk: at a million keys each flush wrote
/// tens of MB and blocked its caller 30-140 ms per store, which on the stream thread stalled consumption.
/// Requests made while a flush runs are served by one more flush. Callable from any thread.
final class StoreFlusher: Sendable {
    private struct State {
        var requested = false
        var stopped = false
    }

    private let state = Monitor(State())
    private let stores: StateStores
    /// False when the thread could not be started: `request` then flushes on the caller's thread.
    private let threaded: Bool

    init(stores: StateStores) {
        self.stores = stores
        let state = self.state
        threaded = OSThread.spawn(name: "store-flush") {
            while state.wait(until: { s in s.stopped ? false : s.requested ? Self.take(&s) : nil }) == true {
                stores.syncAll()
            }
        }
    }

    private static func take(_ s: inout State) -> Bool {
        s.requested = false
        return true
    }

    /// Asks for a flush and returns at once.
    func request() {
        guard threaded else { return stores.syncAll() }
        state.withLock { $0.requested = true }
    }

    /// Ends the thread after the flush in progress, if any (shutdown flushes on its own).
    func stop() { state.withLock { $0.stopped = true } }

    deinit { stop() }
}
