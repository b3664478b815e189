// A libuv check handle (uv_check_t): runs a closure once per loop iteration, after I/O callbacks.
import CUV

/// Used to batch work produced by many I/O callbacks of one iteration (e.g. one write of all
/// requests queued for the ingestor). Bound to the loop thread.
final class LoopCheck {
    private let handle: UnsafeMutablePointer<uv_check_t>
    private var callback: (() -> Void)?
    private var closed = false

    init(loop: EventLoop, _ body: @escaping () -> Void) {
        handle = .allocate(capacity: 1)
        uv_check_init(loop.uv, handle)
        callback = body
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_check_start(handle) { check in
            guard let check, let data = check.pointee.data else { return }
            Unmanaged<LoopCheck>.fromOpaque(data).takeUnretainedValue().callback?()
        }
        // A check handle alone must not keep the loop alive.
        uv_unref(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self))
    }

    func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { raw in
            guard let raw, let data = raw.pointee.data else { return }
            Unmanaged<LoopCheck>.fromOpaque(data).release()
            raw.deallocate()
        }
    }
}
