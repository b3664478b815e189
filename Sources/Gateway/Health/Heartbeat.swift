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

    private let lastBeatNs = Atomic<UInt64>(0)
    private let watchdogNs = Atomic<UInt64>(0)
    private let stalls = Atomic<Int>(0)

    init() { beat() }

    /// Called by the loop timer.
    func beat() { lastBeatNs.store(MonotonicClock.nanoseconds(), ordering: .relaxed) }

    /// Age of the last beat.
    var ageNs: UInt64 { MonotonicClock.nanoseconds() &- lastBeatNs.load(ordering: .relaxed) }

    /// True when the loop beat recently.
    var isFresh: Bool { ageNs < Self.staleAfterNs }

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
