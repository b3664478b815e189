// A dedicated, named OS thread for blocking C loops (Kafka, libuv, the socket), without Foundation's Thread.
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Spawns detached pthreads running a Sendable closure. Callable from any thread.
package enum OSThread {
    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new detached thread named `name` (visible in `top -H`, `ps -L` and perf).
    package static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        guard let thread = create(name, body) else { return false }
        pthread_detach(thread)
        return true
    }

    /// Starts `body` on a new thread that its owner waits for with `join`: what `body` captured is released
    /// on that thread before `join` returns, so the owner knows which thread runs the last deinit.
    package static func start(name: String, _ body: @escaping @Sendable () -> Void) -> JoinableThread? {
        create(name, body).map(JoinableThread.init)
    }

    private static func create(_ name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                guard let arg else { return nil }
                // Scoped, so the closure and its captures are gone before the thread ends.
                do {
                    let box = Unmanaged<Box>.fromOpaque(arg).takeRetainedValue()
                    OSThread.nameCurrentThread(box.name)
                    box.body()
                }
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            return nil
        }
        return thread
    }

    /// Glibc's module hides pthread_setname_np and prctl is variadic, so write the kernel's comm file:
    /// the same effect (at most 15 bytes are kept). Best effort: a failure only loses the name.
    private static func nameCurrentThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
    }
}

/// A thread started by `OSThread.start`. `join` may be called from any other thread, more than once.
package final class JoinableThread: Sendable {
    private let thread: pthread_t
    private let joined = Mutex<Bool>(false)

    fileprivate init(_ thread: pthread_t) { self.thread = thread }

    /// Waits for the thread's end. The lock makes a second caller wait for the first join, not join twice.
    package func join() {
        joined.withLock { done in
            guard !done else { return }
            pthread_join(thread, nil)
            done = true
        }
    }

    deinit {
        // Never joined (its owner gave up on it): let the system reclaim it when it ends.
        if !joined.withLock({ $0 }) { pthread_detach(thread) }
    }
}
