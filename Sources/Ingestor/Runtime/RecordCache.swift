// Record-cache value types of the stream loop: allocation-free cache keys, cached aggregates.

/// A record key and its input partition as a dictionary key. Keys up to 32 bytes are stored inline, so
/// looking a record up costs no allocation; longer keys spill to an array.
struct CacheKey: Hashable {
    static let inlineCapacity = 32

    let partition: Int32
    let count: Int32
    private var w0: UInt64 = 0
    private var w1: UInt64 = 0
    private var w2: UInt64 = 0
    private var w3: UInt64 = 0
    private var spill: [UInt8]?

    init(partition: Int32, bytes: UnsafeRawBufferPointer) {
        self.partition = partition
        count = Int32(truncatingIfNeeded: bytes.count)
        guard bytes.count <= Self.inlineCapacity else {
            spill = Array(bytes)
            return
        }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { dst in
            if let base = bytes.baseAddress, !bytes.isEmpty {
                dst.baseAddress?.copyMemory(from: base, byteCount: bytes.count)
            }
        }
        (w0, w1, w2, w3) = words
    }

    init(partition: Int32, bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { CacheKey(partition: partition, bytes: $0) }
    }

    /// Runs `body` over the key bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let spill { return try spill.withUnsafeBytes(body) }
        var words = (w0, w1, w2, w3)
        let n = Int(count)
        return try withUnsafeBytes(of: &words) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// The key bytes as an array (once per produced aggregate, not per record).
    var bytes: [UInt8] { withBytes { Array($0) } }

    /// Orders as LMDB's default comparison does within one partition (bytes, then the shorter first), with
    /// the partition first: the commit thread puts an epoch in this order, so neighbouring puts share B-tree pages.
    static func storeOrder(_ a: CacheKey, _ b: CacheKey) -> Bool {
        if a.partition != b.partition { return a.partition < b.partition }
        if a.spill == nil, b.spill == nil {
            // Inline words hold the bytes little-endian and zero-padded: big-endian words compare as the bytes.
            let x = (a.w0.bigEndian, a.w1.bigEndian, a.w2.bigEndian, a.w3.bigEndian)
            let y = (b.w0.bigEndian, b.w1.bigEndian, b.w2.bigEndian, b.w3.bigEndian)
            return x != y ? x < y : a.count < b.count
        }
        return a.withBytes { x in b.withBytes { y in x.lexicographicallyPrecedes(y) } }
    }

    /// The partition and the key's first 12 bytes as two big-endian words: `storeOrder` agrees with their order
    /// wherever they differ (equal prefixes need `storeOrder` itself).
    var storePrefix: (UInt64, UInt64) {
        var w = (w0, w1)
        if let spill {
            withUnsafeMutableBytes(of: &w) { dst in
                spill.withUnsafeBytes { src in
                    if let base = src.baseAddress { dst.baseAddress?.copyMemory(from: base, byteCount: 16) }
                }
            }
        }
        let head = w.0.bigEndian
        let hi = UInt64(UInt32(bitPattern: partition) ^ 0x8000_0000) << 32 | head >> 32
        return (hi, head << 32 | w.1.bigEndian >> 32)
    }

    static func == (a: CacheKey, b: CacheKey) -> Bool {
        a.partition == b.partition && a.count == b.count && a.w0 == b.w0 && a.w1 == b.w1 && a.w2 == b.w2
            && a.w3 == b.w3 && a.spill == b.spill
    }

    /// Dictionaries and sets hash through this (Hashable's underscored entry point) instead of `hash(into:)`:
    /// inline keys mix their used words with the table's seed, one splitmix64 round per word, instead of
    /// SipHash (Hasher's seeding and finalisation were ~4% of the stream thread at a million keys, in eviction
    /// alone). The seed enters first, so colliding keys cannot be chosen without it; long keys keep SipHash.
    func _rawHashValue(seed: Int) -> Int {
        if let spill { return spill._rawHashValue(seed: seed ^ Int(partition)) }
        var h = UInt64(UInt32(bitPattern: partition)) << 32 | UInt64(UInt32(bitPattern: count))
        h = Self.mix(h ^ UInt64(UInt(bitPattern: seed)))
        let used = (Int(count) + 7) / 8
        if used > 0 { h = Self.mix(h ^ w0) }
        if used > 1 { h = Self.mix(h ^ w1) }
        if used > 2 { h = Self.mix(h ^ w2) }
        if used > 3 { h = Self.mix(h ^ w3) }
        return Int(Int64(bitPattern: h))
    }

    func hash(into hasher: inout Hasher) { hasher.combine(_rawHashValue(seed: 0)) }

    /// splitmix64's finaliser.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One key's aggregate in the record cache: the latest value (possibly not yet committed), as its framed Avro
/// bytes (`EncodedAggregateFolder` folds events into them). Entries stay across commits, so a hot key is not
/// read from LMDB again; clean entries already in LMDB are evicted when the cache outgrows its bound. Bytes
/// rather than Swift values: at a million keys nearly every event loads, folds, produces and evicts an entry,
/// and a decode into strings and arrays, an encode and their release on eviction were a third of the stream
/// thread's time.
struct CachedAggregate {
    var encoded: [UInt8]
    /// The max input offset folded into it (the changelog header).
    var inputOffset: Int64
    /// Changed since it was last produced (listed in the loop's dirty keys).
    var dirty: Bool
    /// The commit epoch that last produced it; evictable once LMDB has that epoch.
    var epoch: UInt64

    // The two below are mutating so that `cache.values[i].…` runs in place: Dictionary.Values has no read
    // accessor, and a plain read of one field copies the whole entry (with the same copies of PartitionTask,
    // 0.7 µs per event at a million keys).

    /// Marks a dirty entry as produced by `epoch` and hands it to `produce`; false (nothing done) when clean.
    mutating func takeIfDirty(epoch: UInt64, _ produce: (borrowing Self) -> Void) -> Bool {
        guard dirty else { return false }
        dirty = false
        self.epoch = epoch
        produce(self)
        return true
    }

    /// True when the entry is clean and was last produced by `epoch` (so LMDB has this very value).
    mutating func isClean(since epoch: UInt64) -> Bool { !dirty && self.epoch == epoch }
}

/// Byte buffers of evicted aggregates, emptied with their capacity kept, for the next misses of the same store.
/// At a million keys nearly every event is a miss and, later, an eviction: a malloc and a free each, on the
/// malloc arena the commit thread's produces may share. Runs where the two threads met on its lock were 20-40%
/// slower; taking buffers from here, the stream thread leaves the allocator alone. Bounded in count and in each
/// buffer's capacity (a rare large aggregate is freed, not kept). Lives on the stream thread.
struct SpareBuffers {
    /// Buffers kept, all stores together.
    let limit: Int
    /// The largest capacity kept, in bytes.
    let largest: Int
    private var byStore: [[[UInt8]]] = StoreKind.allCases.map { _ in [] }
    private(set) var count = 0

    init(limit: Int, largest: Int = 2_048) {
        self.limit = limit
        self.largest = largest
    }

    /// An empty buffer: a kept one if the store has any.
    mutating func take(_ store: StoreKind) -> [UInt8] {
        guard let buffer = byStore[store.rawValue].popLast() else { return [] }
        count -= 1
        return buffer
    }

    /// Keeps `buffer` (emptied) for `store`'s next miss, if there is room and it is not too large.
    mutating func give(_ store: StoreKind, _ buffer: consuming [UInt8]) {
        guard count < limit, buffer.capacity <= largest else { return }
        buffer.removeAll(keepingCapacity: true)
        byStore[store.rawValue].append(buffer)
        count += 1
    }
}

/// The record cache's keys in the order their aggregates were produced, with the producing epoch: eviction
/// removes the oldest produced entries one by one instead of rebuilding the dictionaries (which freed and
/// copied every entry once per commit). A key produced again appears again; its older entries are stale.
struct ProductionOrder {
    struct Entry {
        var store: StoreKind
        var key: CacheKey
        var epoch: UInt64
    }

    private var entries: [Entry] = []
    private var head = 0

    var count: Int { entries.count - head }

    mutating func append(_ store: StoreKind, _ key: CacheKey, epoch: UInt64) {
        entries.append(Entry(store: store, key: key, epoch: epoch))
    }

    /// Takes the oldest entry if its epoch is at most `persisted` (entries are in epoch order).
    mutating func popOldest(persisted: UInt64) -> Entry? {
        guard head < entries.count, entries[head].epoch <= persisted else { return nil }
        defer {
            head += 1
            if head >= 4_096, head * 2 >= entries.count {
                entries.removeFirst(head)
                head = 0
            }
        }
        return entries[head]
    }

    /// Drops the entries `isCurrent` rejects (stale ones), keeping the order.
    mutating func compact(_ isCurrent: (Entry) -> Bool) {
        entries = entries[head...].filter(isCurrent)
        head = 0
    }

    mutating func removeAll() {
        entries.removeAll()
        head = 0
    }
}

/// An Int64 as decimal ASCII in a stack buffer (the changelog header's text, without a String per record).
struct DecimalDigits {
    private var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var start = 24

    init(_ value: Int64) {
        var magnitude = value.magnitude
        withUnsafeMutableBytes(of: &buffer) { raw in
            var i = 24
            repeat {
                i -= 1
                raw[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                i -= 1
                raw[i] = UInt8(ascii: "-")
            }
            start = i
        }
    }

    mutating func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let from = start
        return try withUnsafeBytes(of: &buffer) { (raw) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[from..<24]))
        }
    }
}
