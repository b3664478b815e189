// Keeps the blocks of a WRITEMAP store's sparse data file allocated ahead of LMDB's writes, so a full disk is an
// error return (ENOSPC from posix_fallocate) instead of SIGBUS on a write into an unallocated page of the map.
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The allocated prefix of one data file, in pages. With MDB_WRITEMAP LMDB `ftruncate`s the file to the map
/// size (a sparse file) and writes pages by storing into the mapping; storing into a hole on a full file system
/// faults with SIGBUS. LMDB writes only pages below the transaction's next page number, so as long as every
/// write transaction first reserves (posix_fallocate) the pages it may reach, no store can fault.
///
/// Threading: `reserve` runs on whichever thread holds the store's one write transaction (or at open); the
/// limit is read lock-free on every put; growth takes the mutex.
final class MapReservation: Sendable {
    let store: String
    let directory: String
    let pageSize: Int
    private let fd: Int32
    private let maxPages: Int
    /// Pages from the start of the file whose blocks are allocated.
    private let reservedPages = Atomic<Int>(0)
    private let growth = Mutex<Void>(())
    /// Smallest and largest growth steps: a few calls while a store grows, little unused disk when it stops.
    static let minStepPages = 64
    static let maxStepPages = 16_384

    init(store: String, directory: String, fd: Int32, pageSize: Int, mapSize: Int) {
        self.store = store
        self.directory = directory
        self.fd = fd
        self.pageSize = pageSize
        self.maxPages = mapSize / pageSize
    }

    var reserved: Int { reservedPages.load(ordering: .acquiring) }

    /// Makes sure pages `0..<pages` have blocks on disk; grows by a step beyond that when the disk allows.
    /// Throws (ENOSPC, with the path and the free space) when even `pages` cannot be allocated.
    func reserve(pages: Int) throws(StoreError) {
        if pages <= reserved { return }
        try growth.withLock { _ throws(StoreError) in
            let have = reservedPages.load(ordering: .relaxed)
            guard pages > have else { return }
            let wanted = min(pages, maxPages)
            let step = min(max(have / 8, Self.minStepPages), Self.maxStepPages)
            var rc = allocate(from: have, to: min(wanted + step, maxPages))
            if rc == ENOSPC || rc == EDQUOT { rc = allocate(from: have, to: wanted) }
            guard rc == 0 else { throw failure(rc, needed: wanted - have) }
        }
    }

    /// Allocates pages `from..<to` and publishes the new limit. Returns 0 or an errno.
    private func allocate(from: Int, to: Int) -> Int32 {
        guard to > from else { return 0 }
        let rc = posix_fallocate(fd, off_t(from * pageSize), off_t((to - from) * pageSize))
        if rc == 0 { reservedPages.store(to, ordering: .releasing) }
        return rc
    }

    private func failure(_ rc: Int32, needed pages: Int) -> StoreError {
        Self.error(
            rc, store: store, directory: directory,
            what: "\(pages * pageSize) more bytes (\(reserved * pageSize) reserved so far)")
    }

    /// The error for a failed allocation: the reason, the path, what it needed and the free space, and the
    /// config key that places the directory.
    static func error(_ rc: Int32, store: String, directory: String, what: String) -> StoreError {
        let reason = String(cString: strerror(rc))
        let free = freeBytes(directory).map { "\($0) bytes free" } ?? "free space unknown"
        return StoreError(
            store: store, operation: "reserve disk blocks", code: rc,
            message: "\(reason): \(directory) (ingestor.stateDir) needs \(what), \(free)")
    }

    /// Bytes an unprivileged writer may still allocate on the file system of `path`.
    static func freeBytes(_ path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Preallocates a file LMDB will map before it writes anything (its lock file: the reader table is written
    /// through a shared mapping too). Returns 0 or an errno.
    static func preallocate(path: String, bytes: Int) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return errno }
        if Int(info.st_blocks) * 512 >= bytes { return 0 }
        return posix_fallocate(fd, 0, off_t(bytes))
    }
}
