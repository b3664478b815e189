// Liveness of the loop: a uv timer stamps a monotonic time; a watchdog thread flags long stalls.
import Glibc
import Logging
import Shared
import Synchronization

/// Shared between the loop thread (stamps) and the watchdog thread (checks). Thread-safe (atomics).
final class Heartbeat: Sendable {
    /// Beat period of the loop timer.
    static let periodMs: UInt64 = 250
    /// A beat older than this means the loop is stuck.
    static let staleAfterNs: UInt64 = 5_000_000_000
    /// How long /hams/alive keeps reporting a stall that has ended: a stalled loop answers no probe (the
    /// probe times out), and once it runs again its timer beats before any request is read, so only this
    /// memory lets the next probe (one period of 10 s later) see why.
    static let reportStallForNs: UInt64 = 2 * staleAfterNs

    private let lastBeatNs = Atomic<UInt64>(0)
    private let stallEndedNs = Atomic<UInt64>(0)
    private let watchdogNs = Atomic<UInt64>(0)
    private let stalls = Atomic<Int>(0)

    init() { lastBeatNs.store(MonotonicClock.nanoseconds(), ordering: .relaxed) }

    /// Called by the loop timer; a gap past the threshold since the previous beat was a stall that just ended.
    func beat() {
        let now = MonotonicClock.nanoseconds()
        let previous = lastBeatNs.exchange(now, ordering: .relaxed)
        if now &- previous >= Self.staleAfterNs { stallEndedNs.store(now, ordering: .relaxed) }
    }

    /// Age of the last beat.
    var ageNs: UInt64 { MonotonicClock.nanoseconds() &- lastBeatNs.load(ordering: .relaxed) }

    /// True when the loop beat recently.
    var isFresh: Bool { ageNs < Self.staleAfterNs }

    /// True when the loop beat recently and no stall ended within `reportStallForNs` (what /hams/alive says).
    var isHealthy: Bool {
        let ended = stallEndedNs.load(ordering: .relaxed)
        return isFresh && (ended == 0 || MonotonicClock.nanoseconds() &- ended >= Self.reportStallForNs)
    }

    /// True while the watchdog thread itself keeps running.
    var watchdogRunning: Bool {
        MonotonicClock.nanoseconds() &- watchdogNs.load(ordering: .relaxed) < 3 * Self.staleAfterNs
    }

    /// Loop stalls the watchdog has seen (a beat older than the threshold).
    var stallCount: Int { stalls.load(ordering: .relaxed) }

    /// Starts the watchdog thread: once a second, logs when the loop's beat went stale.
    func startWatchdog(logger: Logger) {
        watchdogNs.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
        _ = OSThread.spawn(name: "gw-watchdog") { [self] in
            var stale = false
            while true {
                sleep(1)
                watchdogNs.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
                let nowStale = !isFresh
                if nowStale && !stale {
                    stalls.add(1, ordering: .relaxed)
                    logger.error("gateway loop stalled", metadata: ["beatAgeMs": "\(ageNs / 1_000_000)"])
                } else if !nowStale && stale {
                    logger.notice("gateway loop recovered")
                }
                stale = nowStale
            }
        }
    }
}
