// glibc malloc tuning for the gateway: large buffers go back to the kernel when freed.
import Glibc

/// Process-wide; called once at start-up, before the loop runs.
enum MallocTuning {
    /// M_MMAP_THRESHOLD in <malloc.h> (not exported by the Glibc module).
    private static let mmapThresholdParameter: Int32 = -3

    /// Output buffers of slow readers are the gateway's large allocations: a fixed mmap threshold gives
    /// them back to the kernel when freed (glibc's dynamic threshold would keep them in a fragmented heap
    /// after the first free, and RSS would stay at the peak of a flood). Returns false if not applied.
    @discardableResult
    static func returnLargeBuffersToTheKernel(threshold: Int32 = 128 * 1024) -> Bool {
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        return mallopt(mmapThresholdParameter, threshold) == 1
    }
}
