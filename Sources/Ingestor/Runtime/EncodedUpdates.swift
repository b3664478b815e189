// One store's updates of a commit epoch, encoded on the stream thread into one buffer.

/// The aggregates one epoch produces for one store: keys, the input offsets they derive from, and their
/// framed Avro values back to back in one byte buffer. Built on the stream thread at hand-off (the commit thread
/// never touches the record cache), then sorted and read by the commit thread: at a million keys nearly every
/// event becomes an update, and handing over bytes instead of decoded aggregates costs a few allocations per
/// epoch instead of one per update, and no release of aggregates on the commit thread.
struct EncodedUpdates: Sendable {
    private var keys: [CacheKey] = []
    private var inputOffsets: [Int64] = []
    /// End of each value in `bytes` (a value starts where the previous one ends).
    private var ends: [Int] = []
    private var bytes: [UInt8] = []
    /// The order `visit` takes: appended, until `orderForStore` sorts it.
    private var order: [Int] = []

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    /// Bytes of all values.
    var valueBytes: Int { bytes.count }

    /// Makes room for `count` more updates of about `valueSize` bytes each: at a million keys an epoch's buffer
    /// grown by doubling held up to twice its bytes, and the copy at each doubling briefly both.
    mutating func reserve(_ count: Int, valueSize: Int) {
        keys.reserveCapacity(keys.count + count)
        inputOffsets.reserveCapacity(inputOffsets.count + count)
        ends.reserveCapacity(ends.count + count)
        order.reserveCapacity(order.count + count)
        bytes.reserveCapacity(bytes.count + count * valueSize)
    }

    /// Appends one update; `encode` appends its value to the buffer it is given.
    mutating func append(key: CacheKey, inputOffset: Int64, encode: (inout [UInt8]) -> Void) {
        encode(&bytes)
        order.append(keys.count)
        keys.append(key)
        inputOffsets.append(inputOffset)
        ends.append(bytes.count)
    }

    /// Orders the updates as LMDB orders their keys (`CacheKey.storeOrder`), each key's updates in the order they
    /// were appended (with `cacheMaxEntries` 0 a key can have several). In append order, at a million keys nearly
    /// every LMDB put descended to a cold leaf page; sorted, consecutive puts share their pages.
    /// Sorts packed (prefix, index) pairs: comparing two 48-byte keys read from scattered places cost ~9% of the
    /// commit thread at a million keys; most pairs differ in their prefix.
    mutating func orderForStore() {
        var packed = keys.indices.map { i in
            let (hi, lo) = keys[i].storePrefix
            return (hi: hi, lo: lo, index: i)
        }
        keys.withUnsafeBufferPointer { keys in
            packed.sort { a, b in
                if (a.hi, a.lo) != (b.hi, b.lo) { return (a.hi, a.lo) < (b.hi, b.lo) }
                if CacheKey.storeOrder(keys[a.index], keys[b.index]) { return true }
                return !CacheKey.storeOrder(keys[b.index], keys[a.index]) && a.index < b.index
            }
        }
        order = packed.map(\.index)
    }

    /// Calls `body` once per run of one partition's updates in `order` (after `orderForStore`, one run per
    /// partition) with the run's keys, values and input offsets, all borrowed at once: one batched produce each.
    func visitPartitionRuns(
        _ body: (Int32, _ keys: [UnsafeRawBufferPointer], _ values: [UnsafeRawBufferPointer], _ inputOffsets: [Int64])
            throws -> Void
    ) rethrows {
        try bytes.withUnsafeBytes { all in
            var from = 0
            while from < order.count {
                let partition = keys[order[from]].partition
                var to = from + 1
                while to < order.count, keys[order[to]].partition == partition { to += 1 }
                let run = order[from..<to]
                // A cache key lends its bytes only inside `withBytes`: copy the run's keys into one buffer.
                var keyBytes: [UInt8] = []
                var keyEnds: [Int] = []
                keyEnds.reserveCapacity(run.count)
                for i in run {
                    keys[i].withBytes { keyBytes.append(contentsOf: $0) }
                    keyEnds.append(keyBytes.count)
                }
                try keyBytes.withUnsafeBytes { allKeys in
                    var runKeys: [UnsafeRawBufferPointer] = []
                    var runValues: [UnsafeRawBufferPointer] = []
                    runKeys.reserveCapacity(run.count)
                    runValues.reserveCapacity(run.count)
                    var keyStart = 0
                    for (n, i) in run.enumerated() {
                        runKeys.append(UnsafeRawBufferPointer(rebasing: allKeys[keyStart..<keyEnds[n]]))
                        keyStart = keyEnds[n]
                        runValues.append(UnsafeRawBufferPointer(rebasing: all[valueRange(i)]))
                    }
                    try body(partition, runKeys, runValues, run.map { inputOffsets[$0] })
                }
                from = to
            }
        }
    }

    /// Calls `body` with each update's key, input offset and value, in `order`.
    func visit(_ body: (CacheKey, Int64, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            for i in order {
                try body(keys[i], inputOffsets[i], UnsafeRawBufferPointer(rebasing: all[valueRange(i)]))
            }
        }
    }

    /// Where update `i`'s value lies in `bytes` (it starts where the previous one ends).
    private func valueRange(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }
}
