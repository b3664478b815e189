// Unit tests of the LMDB store: values and checkpoints in one txn, paging, wipe, readers beside the writer.
import CLMDB
import FoundationEssentials
import Testing

@testable import Ingestor

@Suite struct StoreLMDBTests {
    private func tempDir() -> String {
        "/tmp/k8s-micro-store-tests-\(UInt64.random(in: 0...UInt64.max))"
    }

    @Test func damagedStoreIsMovedAsideAndOpensEmpty() throws {
        let dir = tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
        }
        do {
            let stores = try StateStores(stateDir: dir)
            var batch = StoreWriteBatch()
            batch.put(partition: 0, key: Array("k".utf8), value: [1])
            try stores.chaser.write(batch)
            stores.syncAll()
        }
        // Garbage over both meta pages: LMDB refuses the file (MDB_INVALID).
        let damaged = Data(repeating: 0xAB, count: 16_384)
        try damaged.write(to: URL(fileURLWithPath: "\(dir)/chaser/data.mdb"))
        #expect(throws: StoreError.self) { try LMDBStore(directory: "\(dir)/chaser", name: "chaser") }
        let reopened = try StateStores(stateDir: dir)
        #expect(reopened.chaser.get(partition: 0, key: Array("k".utf8)) == nil)
        #expect(reopened.chaser.checkpoint(partition: 0) == nil)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/chaser.damaged/data.mdb"))
        try? FileManager.default.removeItem(atPath: "\(dir)/chaser.damaged")
    }

    @Test func storeMarkedDamagedWhileRunningIsMovedAsideOnTheNextStart() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let stores = try StateStores(stateDir: dir)
            var batch = StoreWriteBatch()
            batch.put(partition: 0, key: Array("k".utf8), value: [1])
            try stores.billing.write(batch)
            stores.markDamaged(by: StoreError(store: "chaser", operation: "put", code: -1, message: "not LMDB's"))
            stores.markDamaged(by: StoreError(store: "billing", operation: "get", code: MDB_CORRUPTED, message: "x"))
        }
        let reopened = try StateStores(stateDir: dir)
        #expect(reopened.billing.get(partition: 0, key: Array("k".utf8)) == nil)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/billing.damaged"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/chaser.damaged"))
    }

    @Test func valuesAndCheckpointCommitTogether() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        #expect(store.get(partition: 0, key: Array("k".utf8)) == nil)
        #expect(store.checkpoint(partition: 0) == nil)
        var batch = StoreWriteBatch()
        batch.put(partition: 0, key: Array("k".utf8), value: [1, 2, 3])
        batch.put(partition: 1, key: Array("other".utf8), value: [9])
        batch.checkpoints[0] = Checkpoint(inputOffset: 42, changelogOffset: 7)
        try store.write(batch)
        #expect(store.get(partition: 0, key: Array("k".utf8)) == [1, 2, 3])
        #expect(store.get(partition: 1, key: Array("k".utf8)) == nil)
        #expect(store.checkpoint(partition: 0) == Checkpoint(inputOffset: 42, changelogOffset: 7))
        #expect(store.count(partition: 0) == 1)
        #expect(store.partitions == [0, 1])
    }

    @Test func survivesReopen() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LMDBStore(directory: dir, name: "billing")
            var batch = StoreWriteBatch()
            batch.put(partition: 3, key: Array("a".utf8), value: [5])
            batch.checkpoints[3] = Checkpoint(inputOffset: 10, changelogOffset: 11)
            try store.write(batch)
        }
        let store = try LMDBStore(directory: dir, name: "billing")
        #expect(store.get(partition: 3, key: Array("a".utf8)) == [5])
        #expect(store.checkpoint(partition: 3)?.changelogOffset == 11)
    }

    @Test func keysArePagedInOrder() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        var batch = StoreWriteBatch()
        for i in 0..<25 { batch.put(partition: 2, key: Array("key-\(i < 10 ? "0" : "")\(i)".utf8), value: [UInt8(i)]) }
        try store.write(batch)
        var all: [String] = []
        var after: [UInt8]?
        while true {
            let page = store.keys(partition: 2, after: after, limit: 10)
            if page.isEmpty { break }
            all += page.map { String(decoding: $0, as: UTF8.self) }
            after = page.last
        }
        #expect(all.count == 25)
        #expect(all == all.sorted())
        #expect(all.first == "key-00")
    }

    @Test func wipeRemovesValuesAndCheckpoint() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        var batch = StoreWriteBatch()
        batch.put(partition: 0, key: [1], value: [1])
        batch.checkpoints[0] = Checkpoint(inputOffset: 1, changelogOffset: 1)
        try store.write(batch)
        try store.wipe(partition: 0)
        #expect(store.get(partition: 0, key: [1]) == nil)
        #expect(store.checkpoint(partition: 0) == nil)
        #expect(store.count(partition: 0) == 0)
    }

    @Test func writerSnapshotFollowsWrites() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        var batch = StoreWriteBatch()
        batch.put(partition: 0, key: [7], value: [1])
        try store.write(batch)
        #expect(store.writerGet(partition: 0, key: [7]) { Array($0) } == [1])
        batch = StoreWriteBatch()
        batch.put(partition: 0, key: [7], value: [2])
        try store.write(batch)
        #expect(store.writerGet(partition: 0, key: [7]) { Array($0) } == [2])
    }

    @Test func readersOnOtherThreadsSeeOnlyCommittedValues() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        var batch = StoreWriteBatch()
        batch.put(partition: 0, key: [1], value: [0])
        try store.write(batch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 1...200 {
                    var b = StoreWriteBatch()
                    b.put(partition: 0, key: [1], value: [UInt8(i % 256)])
                    b.checkpoints[0] = Checkpoint(inputOffset: Int64(i), changelogOffset: Int64(i))
                    try store.write(b)
                }
            }
            for _ in 0..<4 {
                group.addTask {
                    // Each read is a committed value (0...200) and never older than the one before it.
                    var last = 0
                    for _ in 0..<500 {
                        let v = store.get(partition: 0, key: [1])
                        #expect(v?.count == 1)
                        let value = Int(v?.first ?? 255)
                        #expect(value <= 200 && value >= last, "read \(value) after \(last)")
                        last = value
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(store.checkpoint(partition: 0)?.inputOffset == 200)
    }

    @Test func checkpointBytesRoundTrip() {
        let c = Checkpoint(inputOffset: -5, changelogOffset: 1 << 40)
        let back = c.bytes.withUnsafeBytes { Checkpoint(bytes: $0) }
        #expect(back == c)
    }
}
