// One LMDB environment per store: a named database per partition plus checkpoints, written in one txn.
import CLMDB
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The local store of one aggregate type (chaser or billing) under `<stateDir>/<name>`.
///
/// Threading: `write`, `wipe`, `writerGet`, `refreshWriterReads`, the `restore*` calls and `sync` belong to the
/// stream thread (`sync` from another thread only flushes); an `EpochWrite` to the commit thread. LMDB runs one
/// write transaction at a time.
/// `get`, `keys`, `count`, `checkpoint` may be called from any thread: they use their own read-only
/// transactions (MDB_NOTLS), so queries never block the writer and never see uncommitted data.
package final class LMDBStore: @unchecked Sendable {
    package let name: String
    package let directory: String
    private let env: OpaquePointer
    private let metaDbi: MDB_dbi
    /// Partition databases opened so far (handles are shared by all transactions once committed).
    private let dbis = Mutex<[Int32: MDB_dbi]>([:])
    /// The writer's reusable read transaction (stream thread only), reset after every write.
    private var writerTxn: OpaquePointer?
    private var writerTxnActive = false
    /// The restore transaction (stream thread only): kept open across restore batches so a full restore
    /// rewrites each B-tree page a few times rather than once per small batch.
    private var restoreTxn: OpaquePointer?
    private var restoreOwner: pthread_t?
    private var restorePuts = 0
    /// Checkpoints committed with the restore transaction: each covers exactly the puts made before it.
    private var restoreCheckpoints: [Int32: Checkpoint] = [:]
    private var restoreDbis: [Int32: MDB_dbi] = [:]
    /// Puts per restore transaction: bounds its dirty pages (held in memory until commit).
    package var restoreTxnLimit = 100_000
    private var restoreBudget = WriteBudget()
    /// Blocks of the sparse data file allocated ahead of LMDB's writes (WRITEMAP only; nil otherwise, where
    /// LMDB's own `pwrite` reports a full disk).
    private let reservation: MapReservation?
    /// Whether the environment runs with MDB_WRITEMAP (asked for, and this LMDB's layout checked).
    package let writeMap: Bool

    /// - Parameters:
    ///   - mapSize: the maximum size of the store (virtual address space, not memory).
    ///   - writeMap: MDB_WRITEMAP: transactions write into the shared file mapping instead of malloc'd copies of
    ///     every touched page (which LMDB keeps for reuse for the life of the environment: 12-15 MB of anon
    ///     memory at 100k keys, ~15 MB more during a cold restore). Still copy-on-write into free pages with one
    ///     meta-page switch per commit, so a process crash (kill -9) keeps the last committed values with their
    ///     checkpoints. Costs: the file's apparent size becomes `mapSize` (sparse: the blocks on disk stay the
    ///     data's, but a copy that does not keep holes, e.g. Python's shutil, writes all of it); a store into a
    ///     hole on a full disk would fault (SIGBUS), so every write first reserves the pages it may reach
    ///     (`MapReservation`, `WriteBudget`): a full disk is a `StoreError` (ENOSPC) before LMDB touches a page
    ///     without blocks; written pages are mapped, so they count in the process's
    ///     RSS (they are page cache, charged to the container either way). An OS crash within the sync window may
    ///     corrupt a NOSYNC file with WRITEMAP (LMDB's docs); without it too unless the file system preserves
    ///     write order, which ext4 does not promise.
    package init(
        directory: String, name: String, mapSize: Int = 4 << 30, maxPartitions: Int = 1024, writeMap: Bool = true
    ) throws(StoreError) {
        self.name = name
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(store: name, operation: "mkdir \(directory)", code: -1, message: "\(error)")
        }
        let (env, writeMapOn) = try Self.openEnvironment(directory, name, mapSize, maxPartitions, writeMap)
        self.env = env
        self.writeMap = writeMapOn
        do throws(StoreError) {
            reservation = writeMapOn ? try Self.reserveUsed(env, name, directory, mapSize) : nil
            var txn: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, 0, &txn), name, "txn_begin")
            guard let txn else { throw StoreError(store: name, operation: "txn_begin", code: -1, message: "nil") }
            var dbi: MDB_dbi = 0
            var rc: Int32 = 0
            do throws(StoreError) {
                let budget = try Self.budget(env, txn, dbis: [], reservation)
                try Self.charge(budget, txn, value: 0, reservation)
                rc = mdb_dbi_open(txn, "meta", UInt32(MDB_CREATE), &dbi)
                try Self.check(rc, name, "dbi_open meta")
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            try Self.check(mdb_txn_commit(txn), name, "txn_commit")
            metaDbi = dbi
        } catch {
            mdb_env_close(env)
            throw error
        }
        try openExistingPartitions()
    }

    deinit {
        // Normally committed on the stream thread (`sync`); aborting keeps data and checkpoint consistent.
        if let restoreTxn { mdb_txn_abort(restoreTxn) }
        if let writerTxn { mdb_txn_abort(writerTxn) }
        mdb_env_sync(env, 1)
        mdb_env_close(env)
    }

    private static func check(_ rc: Int32, _ store: String, _ operation: String) throws(StoreError) {
        guard rc != 0 else { return }
        let message = mdb_strerror(rc).map { String(cString: $0) } ?? "unknown"
        throw StoreError(store: store, operation: operation, code: rc, message: message)
    }

    private static func dbiName(_ partition: Int32) -> String { "p\(partition)" }

    /// lock.mdb's size: LMDB's reader table for 512 readers is 32,896 bytes; a larger file only means more slots.
    private static let lockFileBytes = 64 << 10

    /// The reservation of a WRITEMAP data file, covering the pages already in use (a copy that lost its
    /// blocks, e.g. made without keeping holes, gets them back here rather than at a later write).
    private static func reserveUsed(_ env: OpaquePointer, _ name: String, _ directory: String, _ mapSize: Int)
        throws(StoreError) -> MapReservation
    {
        var fd: mdb_filehandle_t = -1
        try check(mdb_env_get_fd(env, &fd), name, "env_get_fd")
        var stat = MDB_stat()
        try check(mdb_env_stat(env, &stat), name, "env_stat")
        var info = MDB_envinfo()
        try check(mdb_env_info(env, &info), name, "env_info")
        let reservation = MapReservation(
            store: name, directory: directory, fd: fd, pageSize: Int(stat.ms_psize), mapSize: mapSize)
        try reservation.reserve(pages: Int(info.me_last_pgno) + 1)
        return reservation
    }

    /// Creates and opens the environment. With WRITEMAP the reservation reads each write transaction's next
    /// page from LMDB's transaction struct; if this LMDB's layout is not the one checked (`nextPage`), the
    /// environment is reopened without WRITEMAP, where LMDB's own `pwrite` reports a full disk.
    private static func openEnvironment(
        _ directory: String, _ name: String, _ mapSize: Int, _ maxPartitions: Int, _ writeMap: Bool
    ) throws(StoreError) -> (OpaquePointer, Bool) {
        var envp: OpaquePointer?
        try check(mdb_env_create(&envp), name, "env_create")
        guard let env = envp else { throw StoreError(store: name, operation: "env_create", code: -1, message: "nil") }
        do throws(StoreError) {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(maxPartitions + 1)), name, "set_maxdbs")
            try check(mdb_env_set_mapsize(env, mapSize), name, "set_mapsize")
            try check(mdb_env_set_maxreaders(env, 512), name, "set_maxreaders")
            // NOSYNC: a process crash loses nothing (page cache); an OS crash may lose the last commits, which
            // the changelog replay restores. NOTLS: read transactions are not bound to threads. NORDAHEAD: random
            // key access; read-ahead would only inflate the resident (file-backed) set.
            var flags = UInt32(MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD)
            if writeMap { flags |= UInt32(MDB_WRITEMAP) }
            // LMDB writes its reader table through a shared mapping of lock.mdb too: give it blocks first.
            let lockRc = MapReservation.preallocate(path: directory + "/lock.mdb", bytes: lockFileBytes)
            if lockRc != 0 { throw MapReservation.error(lockRc, store: name, directory: directory, what: "lock.mdb") }
            try check(mdb_env_open(env, directory, flags, 0o640), name, "env_open \(directory)")
            if writeMap, !nextPageReadable(env) {
                mdb_env_close(env)
                return try openEnvironment(directory, name, mapSize, maxPartitions, false)
            }
            return (env, writeMap)
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    /// LMDB 0.9's `struct MDB_txn` begins `mt_parent, mt_child, mt_next_pgno, mt_txnid, mt_env` (pointer-sized
    /// words). The public API does not expose the next page; this checks the layout on a fresh write transaction
    /// (no parent, no child, next page = last committed page + 1, txnid = last + 1, its env) before trusting it.
    private static func nextPageReadable(_ env: OpaquePointer) -> Bool {
        var txnp: OpaquePointer?
        var info = MDB_envinfo()
        guard MemoryLayout<Int>.size == 8, mdb_txn_begin(env, nil, 0, &txnp) == 0, let txn = txnp else {
            return false
        }
        defer { mdb_txn_abort(txn) }
        guard mdb_env_info(env, &info) == 0 else { return false }
        let raw = UnsafeRawPointer(txn)
        return raw.load(as: UInt.self) == 0 && raw.load(fromByteOffset: 8, as: UInt.self) == 0
            && nextPage(txn) == Int(info.me_last_pgno) + 1
            && raw.load(fromByteOffset: 24, as: Int.self) == Int(info.me_last_txnid) + 1
            && raw.load(fromByteOffset: 32, as: UInt.self) == UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(env)))
    }

    /// The write transaction's next unallocated page (`mt_next_pgno`; layout checked by `nextPageReadable`).
    @inline(__always)
    private static func nextPage(_ txn: OpaquePointer) -> Int {
        UnsafeRawPointer(txn).load(fromByteOffset: 16, as: Int.self)
    }

    /// A write transaction's margin (call right after `mdb_txn_begin`, while this thread is LMDB's one writer):
    /// from the committed size of the file and the deepest tree of `dbis`.
    private static func budget(
        _ env: OpaquePointer, _ txn: OpaquePointer?, dbis: some Sequence<MDB_dbi>, _ reservation: MapReservation?
    ) throws(StoreError) -> WriteBudget {
        guard let reservation else { return WriteBudget() }
        var info = MDB_envinfo()
        var stat = MDB_stat()
        var depth = mdb_env_stat(env, &stat) == 0 ? Int(stat.ms_depth) : 8
        for dbi in dbis where mdb_stat(txn, dbi, &stat) == 0 { depth = max(depth, Int(stat.ms_depth)) }
        let base = mdb_env_info(env, &info) == 0 ? Int(info.me_last_pgno) + 1 : reservation.reserved
        return WriteBudget(pageSize: reservation.pageSize, basePages: base, depth: depth)
    }

    /// Reserves what a put of `value` bytes may reach, before LMDB writes anything.
    @inline(__always)
    private static func charge(
        _ budget: WriteBudget, _ txn: OpaquePointer, value: Int, _ reservation: MapReservation?
    ) throws(StoreError) {
        guard let reservation else { return }
        let needed = nextPage(txn) + budget.margin(value: value)
        if needed > reservation.reserved { try reservation.reserve(pages: needed) }
    }

    /// Opens the partition databases already on disk (from their checkpoints).
    private func openExistingPartitions() throws(StoreError) {
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txn), name, "txn_begin")
        var opened: [Int32: MDB_dbi] = [:]
        for partition in Int32(0)..<1024 {
            var dbi: MDB_dbi = 0
            let rc = mdb_dbi_open(txn, Self.dbiName(partition), 0, &dbi)
            if rc == MDB_NOTFOUND { continue }
            if rc != 0 {
                mdb_txn_abort(txn)
                try Self.check(rc, name, "dbi_open \(Self.dbiName(partition))")
            }
            opened[partition] = dbi
        }
        try Self.check(mdb_txn_commit(txn), name, "txn_commit")
        dbis.withLock { $0 = opened }
    }

    // MARK: writer (stream thread)

    /// Writes values and checkpoints atomically.
    package func write(_ batch: StoreWriteBatch) throws(StoreError) {
        guard !batch.isEmpty else { return }
        try commitRestore()
        endWriterReads()
        let epoch = EpochWrite()
        do {
            for (partition, entries) in batch.puts {
                let txn = try begin(epoch)
                let dbi = try writerDbi(txn, partition, &epoch.newDbis)
                for (key, value) in entries {
                    try put(txn, dbi, key, value, epoch.budget, "put p\(partition)")
                }
            }
        } catch {
            abort(epoch)
            throw error
        }
        try commit(epoch, checkpoints: batch.checkpoints)
    }

    /// The commit thread's write transaction for one epoch: values go in while Kafka acknowledges the epoch;
    /// the checkpoints and the commit follow only once Kafka has it (or `abort` drops it all). It leaves the
    /// stream thread's restore transaction and read snapshot alone: LMDB serialises writers, so it waits while a
    /// restore transaction is open (the stream thread commits that before it ever waits for the commit thread),
    /// and the stream thread calls `refreshWriterReads` once it learns of the commit.
    package final class EpochWrite {
        fileprivate var txn: OpaquePointer?
        fileprivate var newDbis: [Int32: MDB_dbi] = [:]
        fileprivate var budget = WriteBudget()
        package init() {}
    }

    private func begin(_ epoch: EpochWrite) throws(StoreError) -> OpaquePointer {
        if let txn = epoch.txn { return txn }
        var txnp: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txnp), name, "txn_begin")
        guard let txn = txnp else { throw StoreError(store: name, operation: "txn_begin", code: -1, message: "nil") }
        epoch.txn = txn
        do throws(StoreError) {
            epoch.budget = try Self.budget(env, txn, dbis: dbis.withLock { Array($0.values) }, reservation)
        } catch {
            abort(epoch)
            throw error
        }
        return txn
    }

    package func put(
        _ epoch: EpochWrite, partition: Int32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer
    ) throws(StoreError) {
        let txn = try begin(epoch)
        let dbi = try writerDbi(txn, partition, &epoch.newDbis)
        do throws(StoreError) {
            try Self.charge(epoch.budget, txn, value: value.count, reservation)
        } catch {
            abort(epoch)
            throw error
        }
        var mk = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var mv = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(txn, dbi, &mk, &mv, 0)
        if rc != 0 {
            abort(epoch)
            try Self.check(rc, name, "put p\(partition)")
        }
    }

    /// Adds the checkpoints and commits the epoch's values with them (one atomic LMDB commit).
    package func commit(_ epoch: EpochWrite, checkpoints: [Int32: Checkpoint]) throws(StoreError) {
        guard epoch.txn != nil || !checkpoints.isEmpty else { return }
        let txn = try begin(epoch)
        do {
            for (partition, checkpoint) in checkpoints {
                _ = try writerDbi(txn, partition, &epoch.newDbis)
                try put(
                    txn, metaDbi, Self.checkpointKey(partition), checkpoint.bytes, epoch.budget,
                    "put checkpoint p\(partition)")
            }
        } catch {
            abort(epoch)
            throw error
        }
        epoch.txn = nil
        try Self.check(mdb_txn_commit(txn), name, "txn_commit")
        if !epoch.newDbis.isEmpty {
            let opened = epoch.newDbis
            dbis.withLock { $0.merge(opened) { a, _ in a } }
        }
    }

    /// Drops the epoch's uncommitted values (Kafka did not take the epoch).
    package func abort(_ epoch: EpochWrite) {
        if let txn = epoch.txn { mdb_txn_abort(txn) }
        epoch.txn = nil
        epoch.newDbis = [:]
    }

    /// Stream thread: the next `writerGet` starts a fresh snapshot (after an `EpochWrite` on the commit thread).
    package func refreshWriterReads() { endWriterReads() }

    private func writerDbi(_ txn: OpaquePointer, _ partition: Int32, _ newDbis: inout [Int32: MDB_dbi])
        throws(StoreError) -> MDB_dbi
    {
        if let dbi = dbis.withLock({ $0[partition] }) ?? newDbis[partition] { return dbi }
        var dbi: MDB_dbi = 0
        try Self.check(mdb_dbi_open(txn, Self.dbiName(partition), UInt32(MDB_CREATE), &dbi), name, "dbi_open")
        newDbis[partition] = dbi
        return dbi
    }

    /// `op` names the failed operation; an autoclosure so the hot path builds no string per put.
    private func put(
        _ txn: OpaquePointer, _ dbi: MDB_dbi, _ key: [UInt8], _ value: [UInt8], _ budget: WriteBudget,
        _ op: @autoclosure () -> String
    ) throws(StoreError) {
        try Self.charge(budget, txn, value: value.count, reservation)
        var rc: Int32 = 0
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                rc = mdb_put(txn, dbi, &mk, &mv, 0)
            }
        }
        if rc != 0 { try Self.check(rc, name, op()) }
    }

    private static func checkpointKey(_ partition: Int32) -> [UInt8] { Array("cp/\(partition)".utf8) }

    /// Empties a partition and removes its checkpoint (full restore follows).
    package func wipe(partition: Int32) throws(StoreError) {
        try commitRestore()
        endWriterReads()
        var txnp: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txnp), name, "txn_begin")
        guard let txn = txnp else { return }
        do throws(StoreError) {
            // Dropping a tree writes its pages' ids to the free list: covered by the commit margin.
            let budget = try Self.budget(env, txn, dbis: [], reservation)
            try Self.charge(budget, txn, value: 0, reservation)
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        if let dbi = dbis.withLock({ $0[partition] }) {
            let rc = mdb_drop(txn, dbi, 0)
            if rc != 0 {
                mdb_txn_abort(txn)
                try Self.check(rc, name, "drop p\(partition)")
            }
        }
        var key = Self.checkpointKey(partition)
        let rc = key.withUnsafeMutableBytes { k -> Int32 in
            var mk = MDB_val(mv_size: k.count, mv_data: k.baseAddress)
            return mdb_del(txn, metaDbi, &mk, nil)
        }
        if rc != 0 && rc != MDB_NOTFOUND {
            mdb_txn_abort(txn)
            try Self.check(rc, name, "del checkpoint p\(partition)")
        }
        try Self.check(mdb_txn_commit(txn), name, "txn_commit")
    }

    /// Reads the committed value of a key on the writer's reusable snapshot (stream thread only).
    /// The snapshot is refreshed by the next `write`.
    package func writerGet<R>(partition: Int32, key: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        key.withUnsafeBytes { writerGet(partition: partition, key: $0, body) }
    }

    /// `writerGet` with a borrowed key (no copy).
    package func writerGet<R>(
        partition: Int32, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R? {
        guard let dbi = dbis.withLock({ $0[partition] }) else { return nil }
        if !writerTxnActive {
            if let txn = writerTxn {
                guard mdb_txn_renew(txn) == 0 else { return nil }
            } else {
                var txn: OpaquePointer?
                guard mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn) == 0 else { return nil }
                writerTxn = txn
            }
            writerTxnActive = true
        }
        return Self.get(writerTxn, dbi, key, body)
    }

    private func endWriterReads() {
        if writerTxnActive, let txn = writerTxn {
            mdb_txn_reset(txn)
            writerTxnActive = false
        }
    }

    /// Flushes the store to disk (shutdown, periodically); on the stream thread it first commits the restore
    /// transaction (a failure there only loses restore progress: its checkpoint is not committed either).
    package func sync() {
        if restoreTxn != nil, let owner = restoreOwner, pthread_equal(owner, pthread_self()) != 0 {
            try? commitRestore()
        }
        mdb_env_sync(env, 1)
    }

    // MARK: disk space

    /// Start-up: the disk must have 1 MiB free, which is then reserved for the first transactions (plus a
    /// sixteenth of the store), so a disk that is already full fails here with a clear error, not after the
    /// ingestor joined its group. (Blocks this store reserved before do not count: they are used up first.)
    package func reserveHeadroom() throws(StoreError) {
        guard let reservation else { return }
        let minimum = 1 << 20
        if let free = MapReservation.freeBytes(directory), free < minimum {
            throw MapReservation.error(
                ENOSPC, store: name, directory: directory, what: "\(minimum) bytes free to start")
        }
        var info = MDB_envinfo()
        try Self.check(mdb_env_info(env, &info), name, "env_info")
        let used = Int(info.me_last_pgno) + 1
        try reservation.reserve(pages: used + minimum / reservation.pageSize + used / 16)
    }

    /// The data file's committed size, its blocks reserved ahead of writes, and the file system's free space.
    package var space: StoreSpace {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        let pageSize = mdb_env_stat(env, &stat) == 0 ? Int(stat.ms_psize) : 4096
        let used = mdb_env_info(env, &info) == 0 ? (Int(info.me_last_pgno) + 1) * pageSize : 0
        return StoreSpace(
            usedBytes: used, reservedBytes: reservation.map { $0.reserved * pageSize } ?? used,
            freeBytes: MapReservation.freeBytes(directory) ?? 0)
    }

    // MARK: restore (stream thread)

    /// Puts a restored value into the restore transaction and moves the partition's pending checkpoint to
    /// `checkpoint` (the position just after this record). Commits when the transaction is full.
    package func restorePut(
        partition: Int32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, checkpoint: Checkpoint
    ) throws(StoreError) {
        let txn = try beginRestore()
        let dbi: MDB_dbi
        if let known = restoreDbis[partition] {
            dbi = known
        } else {
            dbi = try writerDbi(txn, partition, &restoreDbis)
            restoreDbis[partition] = dbi
        }
        do throws(StoreError) {
            try Self.charge(restoreBudget, txn, value: value.count, reservation)
        } catch {
            abortRestore()
            throw error
        }
        var mk = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var mv = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(txn, dbi, &mk, &mv, 0)
        if rc != 0 {
            abortRestore()
            try Self.check(rc, name, "restore put p\(partition)")
        }
        restoreCheckpoints[partition] = checkpoint
        restorePuts += 1
        if restorePuts >= restoreTxnLimit { try commitRestore() }
    }

    /// Moves a partition's pending checkpoint without a put (a skipped changelog record, the log end).
    package func restoreAdvance(partition: Int32, checkpoint: Checkpoint) {
        restoreCheckpoints[partition] = checkpoint
    }

    /// Commits the restored values with their checkpoints (one transaction), if anything is pending.
    package func commitRestore() throws(StoreError) {
        guard restoreTxn != nil || !restoreCheckpoints.isEmpty else { return }
        let txn = try beginRestore()
        for (partition, checkpoint) in restoreCheckpoints {
            do throws(StoreError) {
                if restoreDbis[partition] == nil { _ = try writerDbi(txn, partition, &restoreDbis) }
                try put(
                    txn, metaDbi, Self.checkpointKey(partition), checkpoint.bytes, restoreBudget,
                    "put checkpoint p\(partition)")
            } catch {
                abortRestore()
                throw error
            }
        }
        let newDbis = restoreDbis
        restoreTxn = nil
        restoreOwner = nil
        restorePuts = 0
        restoreCheckpoints = [:]
        restoreDbis = [:]
        try Self.check(mdb_txn_commit(txn), name, "restore txn_commit")
        if !newDbis.isEmpty {
            dbis.withLock { $0.merge(newDbis) { a, _ in a } }
        }
    }

    private func beginRestore() throws(StoreError) -> OpaquePointer {
        if let restoreTxn { return restoreTxn }
        endWriterReads()
        var txnp: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txnp), name, "restore txn_begin")
        guard let txn = txnp else {
            throw StoreError(store: name, operation: "restore txn_begin", code: -1, message: "nil")
        }
        restoreTxn = txn
        restoreOwner = pthread_self()
        do throws(StoreError) {
            restoreBudget = try Self.budget(env, txn, dbis: dbis.withLock { Array($0.values) }, reservation)
        } catch {
            abortRestore()
            throw error
        }
        return txn
    }

    /// Drops the open restore transaction and its pending checkpoints (after a failed put).
    private func abortRestore() {
        if let restoreTxn { mdb_txn_abort(restoreTxn) }
        restoreTxn = nil
        restoreOwner = nil
        restorePuts = 0
        restoreCheckpoints = [:]
        restoreDbis = [:]
    }

    // MARK: readers (any thread)

    private static func get<R>(
        _ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: [UInt8], _ body: (UnsafeRawBufferPointer) -> R
    ) -> R? {
        key.withUnsafeBytes { get(txn, dbi, $0, body) }
    }

    /// mdb_get never writes through the key pointer (MDB_val is only non-const for the API's sake).
    private static func get<R>(
        _ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R? {
        var mk = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var mv = MDB_val()
        guard mdb_get(txn, dbi, &mk, &mv) == 0 else { return nil }
        return body(UnsafeRawBufferPointer(start: mv.mv_data, count: mv.mv_size))
    }

    /// Runs `body` inside a read-only transaction (any thread). Returns nil if LMDB refuses one.
    private func withReadTxn<R>(_ body: (OpaquePointer) -> R?) -> R? {
        var txn: OpaquePointer?
        guard mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn) == 0, let txn else { return nil }
        defer { mdb_txn_abort(txn) }
        return body(txn)
    }

    /// The committed value of a key.
    package func get(partition: Int32, key: [UInt8]) -> [UInt8]? {
        guard let dbi = dbis.withLock({ $0[partition] }) else { return nil }
        return withReadTxn { txn in Self.get(txn, dbi, key) { Array($0) } }
    }

    /// The committed checkpoint of a partition.
    package func checkpoint(partition: Int32) -> Checkpoint? {
        withReadTxn { txn in Self.get(txn, metaDbi, Self.checkpointKey(partition)) { Checkpoint(bytes: $0) } ?? nil }
    }

    /// Up to `limit` keys of a partition in byte order, strictly after `after` when given.
    package func keys(partition: Int32, after: [UInt8]?, limit: Int) -> [[UInt8]] {
        guard let dbi = dbis.withLock({ $0[partition] }), limit > 0 else { return [] }
        return withReadTxn { txn -> [[UInt8]] in
            var cursor: OpaquePointer?
            guard mdb_cursor_open(txn, dbi, &cursor) == 0 else { return [] }
            defer { mdb_cursor_close(cursor) }
            var out: [[UInt8]] = []
            var mk = MDB_val()
            var mv = MDB_val()
            var rc: Int32
            var start = after ?? []
            if let after {
                rc = start.withUnsafeMutableBytes { k -> Int32 in
                    mk = MDB_val(mv_size: k.count, mv_data: k.baseAddress)
                    return mdb_cursor_get(cursor, &mk, &mv, MDB_SET_RANGE)
                }
                if rc == 0, Array(UnsafeRawBufferPointer(start: mk.mv_data, count: mk.mv_size)) == after {
                    rc = mdb_cursor_get(cursor, &mk, &mv, MDB_NEXT)
                }
            } else {
                rc = mdb_cursor_get(cursor, &mk, &mv, MDB_FIRST)
            }
            while rc == 0 && out.count < limit {
                out.append(Array(UnsafeRawBufferPointer(start: mk.mv_data, count: mk.mv_size)))
                rc = mdb_cursor_get(cursor, &mk, &mv, MDB_NEXT)
            }
            return out
        } ?? []
    }

    /// Number of keys stored for a partition.
    package func count(partition: Int32) -> Int {
        guard let dbi = dbis.withLock({ $0[partition] }) else { return 0 }
        return withReadTxn { txn -> Int in
            var stat = MDB_stat()
            guard mdb_stat(txn, dbi, &stat) == 0 else { return 0 }
            return Int(stat.ms_entries)
        } ?? 0
    }

    /// Partitions that have a database on disk.
    package var partitions: [Int32] { dbis.withLock { Array($0.keys).sorted() } }
}
