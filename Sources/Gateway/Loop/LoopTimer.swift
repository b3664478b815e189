// A libuv timer (uv_timer_t) calling a Swift closure; lives on the loop thread.
import CUV

/// A one-shot or repeating timer. Bound to its loop's thread. Call `close()` when done.
final class LoopTimer {
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: (() -> Void)?
    private var closed = false

    init(loop: EventLoop) {
        handle = .allocate(capacity: 1)
        uv_timer_init(loop.uv, handle)
        // The loop holds one reference until the close callback releases it.
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Starts (or restarts) the timer: first after `timeoutMs`, then every `repeatMs` (0 = once).
    func start(timeoutMs: UInt64, repeatMs: UInt64 = 0, _ body: @escaping () -> Void) {
        guard !closed else { return }
        callback = body
        uv_timer_start(
            handle,
            { timer in
                guard let timer, let data = timer.pointee.data else { return }
                Unmanaged<LoopTimer>.fromOpaque(data).takeUnretainedValue().callback?()
            }, timeoutMs, repeatMs)
    }

    func stop() {
        guard !closed else { return }
        uv_timer_stop(handle)
    }

    /// Lets the loop exit even while this timer is active (for background timers).
    func unref() {
        uv_unref(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self))
    }

    func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { raw in
            guard let raw, let data = raw.pointee.data else { return }
            Unmanaged<LoopTimer>.fromOpaque(data).release()
            raw.deallocate()
        }
    }
}
