// A value shared by threads under a pthread mutex, with a condition variable to wait for another thread's change.
#if canImport(Glibc)
    import Glibc
#endif

/// A classic monitor: `withLock` changes the value and wakes waiters; `wait` sleeps until a predicate on the
/// value yields a result. For handoffs between OS threads (no async context involved). Callable from any thread.
package final class Monitor<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Timed waits measure the monotonic clock: a wall-clock step never stretches or cuts them.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on the value under the lock, then wakes every waiter.
    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Sleeps until `ready` returns non-nil (evaluated under the lock, may change the value) or `timeoutMs`
    /// passes (nil: no limit). Returns `ready`'s result, or nil on timeout.
    package func wait<R>(timeoutMs: Int? = nil, until ready: (inout Value) -> R?) -> R? {
        var deadline = timespec()
        if let timeoutMs {
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let nanoseconds = Int(deadline.tv_nsec) + (timeoutMs % 1_000) * 1_000_000
            deadline.tv_sec += timeoutMs / 1_000 + nanoseconds / 1_000_000_000
            deadline.tv_nsec = nanoseconds % 1_000_000_000
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let result = ready(&value) {
                pthread_cond_broadcast(condition)
                return result
            }
            if timeoutMs == nil {
                pthread_cond_wait(condition, mutex)
            } else if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT {
                return ready(&value)
            }
        }
    }
}
