// A joinable thread: `join` returns after the body ran and after what the body captured was released, which is
// what lets the ingestor's stream thread, not the commit thread, destroy the Kafka clients before the exit.
import Synchronization
import Testing

@testable import Shared

#if canImport(Glibc)
    import Glibc
#endif

private final class Flags: Sendable {
    let ranFlag = Atomic<Bool>(false)
    let releasedFlag = Atomic<Bool>(false)
    var ran: Bool { ranFlag.load(ordering: .sequentiallyConsistent) }
    var released: Bool { releasedFlag.load(ordering: .sequentiallyConsistent) }
}

/// Captured by the thread's body; tells `Flags` when its last reference goes.
private final class Captured: Sendable {
    let flags: Flags
    init(_ flags: Flags) { self.flags = flags }
    deinit { flags.releasedFlag.store(true, ordering: .sequentiallyConsistent) }
}

@Suite struct OSThreadTests {
    @Test func joinReturnsAfterTheBodyAndItsCapturesAreGone() throws {
        let flags = Flags()
        var captured: Captured? = Captured(flags)
        let started = OSThread.start(name: "join-test") { [captured] in
            // Still running when the test thread asks to join: join must wait for the end.
            usleep(50_000)
            if captured != nil { flags.ranFlag.store(true, ordering: .sequentiallyConsistent) }
        }
        let thread = try #require(started)
        captured = nil
        #expect(!flags.released)
        thread.join()
        #expect(flags.ran)
        #expect(flags.released)
        thread.join()  // a second join neither blocks nor joins twice
    }
}
