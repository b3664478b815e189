// Unit tests of the LMDB restore transaction: invisible until committed, committed with its checkpoints,
// flushed before any other write, by the stream-thread sync, and when full; lost together when aborted.
import FoundationEssentials
import Testing

@testable import Ingestor

@Suite struct StoreRestoreTests {
    private func tempDir() -> String {
        "/tmp/k8s-micro-restore-tests-\(UInt64.random(in: 0...UInt64.max))"
    }

    private func put(_ store: LMDBStore, _ partition: Int32, _ key: String, _ value: [UInt8], next: Int64) throws {
        try Array(key.utf8).withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                try store.restorePut(
                    partition: partition, key: k, value: v,
                    checkpoint: Checkpoint(inputOffset: 100, changelogOffset: next))
            }
        }
    }

    @Test func restoredValuesAppearOnlyWithTheirCheckpoint() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "chaser")
        try put(store, 2, "a", [1], next: 1)
        try put(store, 2, "b", [2], next: 2)
        // Readers see committed state only: neither values nor checkpoint yet.
        #expect(store.get(partition: 2, key: Array("a".utf8)) == nil)
        #expect(store.checkpoint(partition: 2) == nil)
        store.restoreAdvance(partition: 2, checkpoint: Checkpoint(inputOffset: 100, changelogOffset: 5))
        try store.commitRestore()
        #expect(store.get(partition: 2, key: Array("b".utf8)) == [2])
        #expect(store.checkpoint(partition: 2) == Checkpoint(inputOffset: 100, changelogOffset: 5))
        #expect(store.count(partition: 2) == 2)
        // Nothing pending: a second commit is a no-op.
        try store.commitRestore()
    }

    @Test func otherWritesAndSyncCommitTheRestoreFirst() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LMDBStore(directory: dir, name: "billing")
        try put(store, 0, "r", [7], next: 1)
        var batch = StoreWriteBatch()
        batch.put(partition: 1, key: Array("live".utf8), value: [8])
        batch.checkpoints[1] = Checkpoint(inputOffset: 3, changelogOffset: 3)
        try store.write(batch)  // must not deadlock on the open restore transaction
        #expect(store.get(partition: 0, key: Array("r".utf8)) == [7])
        #expect(store.checkpoint(partition: 0) == Checkpoint(inputOffset: 100, changelogOffset: 1))
        #expect(store.get(partition: 1, key: Array("live".utf8)) == [8])
        try put(store, 0, "s", [9], next: 2)
        store.sync()  // on the thread that opened it: commits
        #expect(store.get(partition: 0, key: Array("s".utf8)) == [9])
        try put(store, 0, "t", [1], next: 3)
        try store.wipe(partition: 0)  // commits, then wipes
        #expect(store.count(partition: 0) == 0 && store.checkpoint(partition: 0) == nil)
    }

    @Test func fullTransactionCommitsAndAnAbortedOneLeavesNothing() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LMDBStore(directory: dir, name: "chaser")
            store.restoreTxnLimit = 3
            for i in 0..<4 { try put(store, 1, "k\(i)", [UInt8(i)], next: Int64(i + 1)) }
            // The first three were committed (limit), with the checkpoint after the third.
            #expect(store.count(partition: 1) == 3)
            #expect(store.checkpoint(partition: 1) == Checkpoint(inputOffset: 100, changelogOffset: 3))
        }  // the fourth is still open: dropped at deinit, with its checkpoint
        let reopened = try LMDBStore(directory: dir, name: "chaser")
        #expect(reopened.count(partition: 1) == 3)
        #expect(reopened.get(partition: 1, key: Array("k3".utf8)) == nil)
        #expect(reopened.checkpoint(partition: 1) == Checkpoint(inputOffset: 100, changelogOffset: 3))
    }

    @Test func borrowedHeaderDecodesLikeTheCopiedOne() {
        for text in ["0", "7", "123456789", "999999999999999999", "9223372036854775807", "-3", "x1", ""] {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { ChangelogHeader.decode($0) } == ChangelogHeader.decode(bytes), "\(text)")
        }
    }
}
