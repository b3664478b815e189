// Unit tests of the disk reservation of MDB_WRITEMAP stores: blocks always run ahead of what LMDB wrote.
import FoundationEssentials
import Testing

@testable import Ingestor

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct StoreDiskSpaceTests {
    private func tempDir() -> String {
        "/tmp/k8s-micro-store-disk-tests-\(UInt64.random(in: 0...UInt64.max))"
    }

    private func allocatedBytes(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : -1
    }

    /// This LMDB's transaction layout passes the check, so the stores keep WRITEMAP (and its memory saving).
    @Test func writeMapStaysOnWithThisLMDB() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try LMDBStore(directory: dir, name: "chaser").writeMap)
        #expect(try !LMDBStore(directory: dir + "-off", name: "chaser", writeMap: false).writeMap)
        try? FileManager.default.removeItem(atPath: dir + "-off")
    }

    /// Epoch writes, big values (overflow pages) and restore transactions: after each, every page LMDB uses has
    /// blocks on disk, and the reservation covers at least that much.
    @Test func reservedBlocksCoverEveryUsedPage() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "billing")
        store.restoreTxnLimit = 3_000
        var key = 0
        for round in 0..<6 {
            var batch = StoreWriteBatch()
            for _ in 0..<4_000 {
                let size = key % 500 == 0 ? 20_000 : 80
                batch.put(
                    partition: Int32(key % 4), key: Array("key-\(key)".utf8), value: Array(repeating: 1, count: size))
                key += 1
            }
            batch.checkpoints[0] = Checkpoint(inputOffset: Int64(round), changelogOffset: Int64(round))
            try store.write(batch)
            for i in 0..<5_000 {
                let k = Array("restored-\(round)-\(i)".utf8)
                let v = [UInt8](repeating: 2, count: 60)
                try k.withUnsafeBytes { kb in
                    try v.withUnsafeBytes { vb in
                        try store.restorePut(
                            partition: 5, key: kb, value: vb,
                            checkpoint: Checkpoint(inputOffset: 0, changelogOffset: Int64(i + 1)))
                    }
                }
            }
            try store.commitRestore()
            let space = store.space
            #expect(space.usedBytes > 0)
            #expect(space.reservedBytes >= space.usedBytes)
            #expect(allocatedBytes(dir + "/data.mdb") >= space.usedBytes)
        }
        #expect(store.count(partition: 5) == 30_000)
        // Wiping a big partition writes its pages to the free list: reserved as well.
        try store.wipe(partition: 5)
        #expect(allocatedBytes(dir + "/data.mdb") >= store.space.usedBytes)
    }

    @Test func marginCoversAPutAndTheCommit() {
        let budget = WriteBudget(pageSize: 4096, basePages: 25_600, depth: 3)
        #expect(budget.margin(value: 100) == 10 + 100 + 32)
        #expect(budget.margin(value: 20_000) == 10 + 6 + 100 + 32)
    }
}
