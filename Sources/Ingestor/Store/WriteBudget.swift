// How far past a write transaction's next page LMDB may write before the next check: the reservation's margin.

/// Checked before each put: the transaction's next unallocated page plus this margin must be reserved.
///
/// Why it bounds: within one `mdb_put` a transaction copies each page on the key's path once (copy-on-write)
/// and may split every level and add a root: `2 × (depth + 1) + 2` pages (depth + 1: the tree may grow a
/// level); a value too big for a page takes overflow pages of its own. The commit that follows writes the free
/// list (one 8-byte id per page freed, at most one per page of the file) and updates the main tree.
/// Value type; owned by the transaction's thread.
struct WriteBudget {
    private var perPut = 0
    private var commit = 0
    private var pageSize = 4096

    init() {}

    /// - Parameters:
    ///   - basePages: the committed file's pages when the transaction began.
    ///   - depth: the deepest tree the transaction may write.
    init(pageSize: Int, basePages: Int, depth: Int) {
        self.pageSize = pageSize
        perPut = 2 * (depth + 1) + 2
        commit = basePages / 256 + 32
    }

    /// Pages past the transaction's next page that must have blocks before a put of `value` bytes.
    func margin(value: Int) -> Int {
        // LMDB moves a value that does not fit a quarter page to overflow pages; count generously.
        let overflow = value > pageSize / 4 ? (value + pageSize - 1) / pageSize + 1 : 0
        return perPut + overflow + commit
    }
}
