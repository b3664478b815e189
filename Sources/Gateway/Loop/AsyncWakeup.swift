// A libuv async handle (uv_async_t): the one way other threads poke the loop (drain, stop).
import CUV

/// Created and closed on the loop thread; `send()` is the only method safe from any thread.
final class AsyncWakeup: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<uv_async_t>
    private var callback: (() -> Void)?
    private var closed = false

    /// `body` runs on the loop thread after one or more `send()` calls (coalesced).
    init(loop: EventLoop, _ body: @escaping () -> Void) throws(UVError) {
        handle = .allocate(capacity: 1)
        callback = body
        let rc = uv_async_init(loop.uv, handle) { async in
            guard let async, let data = async.pointee.data else { return }
            Unmanaged<AsyncWakeup>.fromOpaque(data).takeUnretainedValue().callback?()
        }
        if rc < 0 {
            handle.deallocate()
            throw UVError(code: rc, operation: "uv_async_init")
        }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Wakes the loop; thread-safe (uv_async_send). Must not be called after `close()` completed.
    func send() {
        uv_async_send(handle)
    }

    /// Loop thread only.
    func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { raw in
            guard let raw, let data = raw.pointee.data else { return }
            Unmanaged<AsyncWakeup>.fromOpaque(data).release()
            raw.deallocate()
        }
    }
}
