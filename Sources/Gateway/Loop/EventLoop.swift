// The libuv loop of the gateway: owns uv_loop_t and the shared read buffer; lives on the loop thread.
import CUV

/// One libuv loop. Bound to the thread that runs it: every method must be called on that thread.
final class EventLoop {
    /// The uv loop; only files in Loop/ touch it.
    let uv: UnsafeMutablePointer<uv_loop_t>
    /// One read buffer shared by every stream of the loop: reads are consumed synchronously in the
    /// read callback, so a single buffer is enough (the Redis/nginx trick).
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Handles still open, closed by `closeAll()` when draining ends.
    private var openHandles = 0

    init(readBufferSize: Int = 64 * 1024) throws(UVError) {
        uv = .allocate(capacity: 1)
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        let rc = uv_loop_init(uv)
        if rc < 0 {
            uv.deallocate()
            readBuffer.deallocate()
            throw UVError(code: rc, operation: "uv_loop_init")
        }
    }

    /// Runs until no active handle is left or `stop()` is called.
    func run() {
        uv_run(uv, UV_RUN_DEFAULT)
    }

    /// Makes `run()` return after the current iteration.
    func stop() {
        uv_stop(uv)
    }

    /// The loop's cached monotonic time in milliseconds (updated once per iteration).
    var nowMs: UInt64 { uv_now(uv) }

    /// Closes the loop after every handle has been closed; runs the loop to let close callbacks fire.
    func close() {
        // Close whatever is left (should be nothing after a drain), then let callbacks run.
        uv_walk(
            uv,
            { handle, _ in
                guard let handle, uv_is_closing(handle) == 0 else { return }
                uv_close(handle, nil)
            }, nil)
        uv_run(uv, UV_RUN_DEFAULT)
        if uv_loop_close(uv) == 0 {
            uv.deallocate()
            readBuffer.deallocate()
        }
    }
}

/// Monotonic clock in nanoseconds (uv_hrtime); safe on any thread.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 { uv_hrtime() }
}
