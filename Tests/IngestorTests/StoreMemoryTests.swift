// Unit tests of the memory-related store and consumer settings: MDB_WRITEMAP stores, restore prefetch caps.
import FoundationEssentials
import Shared
import Testing

@testable import Ingestor

@Suite struct StoreMemoryTests {
    private func tempDir() -> String {
        "/tmp/k8s-micro-store-memory-tests-\(UInt64.random(in: 0...UInt64.max))"
    }

    /// The file format does not depend on MDB_WRITEMAP: a store opens either way (upgrade and rollback).
    @Test func writeMapStoreReopensWithAndWithoutWriteMap() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (step, writeMap) in [true, false, true].enumerated() {
            let store = try LMDBStore(directory: dir, name: "chaser", writeMap: writeMap)
            for earlier in 0..<step {
                #expect(store.get(partition: 0, key: Array("k\(earlier)".utf8)) == [UInt8(earlier)])
            }
            var batch = StoreWriteBatch()
            batch.put(partition: 0, key: Array("k\(step)".utf8), value: [UInt8(step)])
            batch.checkpoints[0] = Checkpoint(inputOffset: Int64(step), changelogOffset: Int64(step))
            try store.write(batch)
            #expect(store.checkpoint(partition: 0)?.changelogOffset == Int64(step))
        }
    }

    /// With MDB_WRITEMAP a transaction writes into the file's free pages as it goes; a failed write must still
    /// leave the committed values and checkpoint exactly as they were, also after reopening.
    @Test func failedWriteMapTransactionLeavesCommittedState() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LMDBStore(directory: dir, name: "billing", writeMap: true)
            var committed = StoreWriteBatch()
            for i in 0..<500 { committed.put(partition: 1, key: Array("key-\(i)".utf8), value: [1]) }
            committed.checkpoints[1] = Checkpoint(inputOffset: 10, changelogOffset: 20)
            try store.write(committed)

            var failing = StoreWriteBatch()
            for i in 0..<5_000 {
                failing.put(partition: 1, key: Array("key-\(i)".utf8), value: [UInt8](repeating: 2, count: 64))
            }
            failing.put(partition: 1, key: [UInt8](repeating: 7, count: 600), value: [2])  // over LMDB's 511
            failing.checkpoints[1] = Checkpoint(inputOffset: 11, changelogOffset: 21)
            #expect(throws: StoreError.self) { try store.write(failing) }
            #expect(store.get(partition: 1, key: Array("key-3".utf8)) == [1])
            #expect(store.get(partition: 1, key: Array("key-4999".utf8)) == nil)
        }
        let reopened = try LMDBStore(directory: dir, name: "billing", writeMap: true)
        #expect(reopened.count(partition: 1) == 500)
        #expect(reopened.get(partition: 1, key: Array("key-499".utf8)) == [1])
        #expect(reopened.checkpoint(partition: 1) == Checkpoint(inputOffset: 10, changelogOffset: 20))
    }

    @Test func restorePrefetchIsCappedButMayBeLowered() {
        var config = AppConfig()
        config.kafka.properties = [
            "queued.max.messages.kbytes": "65536", "fetch.message.max.bytes": "1048576", "queued.min.messages": "5000",
        ]
        let s = StreamSettings(config: config)
        #expect(s.restoreProperties["queued.max.messages.kbytes"] == "1024")
        #expect(s.restoreProperties["max.partition.fetch.bytes"] == "131072")
        #expect(s.restoreProperties["fetch.message.max.bytes"] == nil)
        #expect(s.restoreProperties["queued.min.messages"] == "5000")
        // The main consumer keeps what kafka.properties says.
        #expect(s.consumerProperties["queued.max.messages.kbytes"] == "65536")
        #expect(s.consumerProperties["fetch.message.max.bytes"] == "1048576")

        let defaults = StreamSettings(config: AppConfig())
        #expect(defaults.restoreProperties["queued.min.messages"] == "10000")
        #expect(defaults.consumerProperties["queued.max.messages.kbytes"] == "1024")
    }
}
