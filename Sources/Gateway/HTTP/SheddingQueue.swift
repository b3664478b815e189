// The connections that are cheapest to drop under pressure (idle, incomplete or not reading), oldest first.

/// Which connection to shed when the connection cap or the buffered-bytes budget is reached: the one that
/// has been sheddable longest. A connection is sheddable while none of its requests awaits an answer (idle
/// keep-alive, a request still arriving, answers all written or stuck in a client that does not read), or
/// once its client has closed its side; a well-behaved client's connection is busy or young, so it is the
/// last to go (the policy of nginx's keep-alive reuse and of Envoy's overload manager). Loop thread.
///
/// Entries are appended in time order and removed lazily: a connection that became busy or sheddable again
/// leaves a stale entry behind, skipped by `oldest` and compacted away when stale ones outnumber live ones.
struct SheddingQueue {
    private var entries: [(id: Int, mark: UInt64)] = []
    private var head = 0
    private var nextMark: UInt64 = 1
    /// Live entries: id → the mark of its current entry.
    private var marks: [Int: UInt64] = [:]

    var count: Int { marks.count }

    /// `id` became sheddable now (no effect if it already is: it keeps its place).
    mutating func add(_ id: Int) {
        guard marks[id] == nil else { return }
        marks[id] = nextMark
        entries.append((id, nextMark))
        nextMark += 1
        if entries.count - head > 2 * marks.count + 64 { compact() }
    }

    /// `id` is busy or closed.
    mutating func remove(_ id: Int) {
        marks[id] = nil
    }

    /// Removes and returns the connection sheddable longest, or nil when none is.
    mutating func popOldest() -> Int? {
        while head < entries.count {
            let entry = entries[head]
            head += 1
            if marks[entry.id] == entry.mark {
                marks[entry.id] = nil
                if head > 1024, head * 2 > entries.count { compact() }
                return entry.id
            }
        }
        entries.removeAll(keepingCapacity: true)
        head = 0
        return nil
    }

    private mutating func compact() {
        entries = entries[head...].filter { marks[$0.id] == $0.mark }
        head = 0
    }
}
