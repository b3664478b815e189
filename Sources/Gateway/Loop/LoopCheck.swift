// A libuv loop watcher (uv_check_t or uv_prepare_t): runs a closure once per loop iteration.
import CUV

/// Used to batch work produced by many I/O callbacks of one iteration (e.g. one write of all
/// requests queued for the ingestor). Bound to the loop thread.
final class LoopCheck {
    /// When in the iteration the closure runs.
    enum Phase {
        /// After the I/O callbacks of the iteration (uv_check).
        case afterIO
        /// Just before the loop blocks for I/O (uv_prepare).
        case beforeIO
    }

    private let handle: UnsafeMutableRawPointer
    private var callback: (() -> Void)?
    private var closed = false

    init(loop: EventLoop, phase: Phase = .afterIO, _ body: @escaping () -> Void) {
        callback = body
        let size = max(MemoryLayout<uv_check_t>.size, MemoryLayout<uv_prepare_t>.size)
        handle = .allocate(byteCount: size, alignment: 16)
        let base = handle.assumingMemoryBound(to: uv_handle_t.self)
        switch phase {
        case .afterIO:
            let check = handle.assumingMemoryBound(to: uv_check_t.self)
            uv_check_init(loop.uv, check)
            base.pointee.data = Unmanaged.passRetained(self).toOpaque()
            uv_check_start(check) { check in
                guard let data = check?.pointee.data else { return }
                Unmanaged<LoopCheck>.fromOpaque(data).takeUnretainedValue().callback?()
            }
        case .beforeIO:
            let prepare = handle.assumingMemoryBound(to: uv_prepare_t.self)
            uv_prepare_init(loop.uv, prepare)
            base.pointee.data = Unmanaged.passRetained(self).toOpaque()
            uv_prepare_start(prepare) { prepare in
                guard let data = prepare?.pointee.data else { return }
                Unmanaged<LoopCheck>.fromOpaque(data).takeUnretainedValue().callback?()
            }
        }
        // A watcher alone must not keep the loop alive.
        uv_unref(base)
    }

    func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_close(handle.assumingMemoryBound(to: uv_handle_t.self)) { raw in
            guard let raw, let data = raw.pointee.data else { return }
            Unmanaged<LoopCheck>.fromOpaque(data).release()
            UnsafeMutableRawPointer(raw).deallocate()
        }
    }
}
