// Unit tests of runtime pieces that need no broker: settings, delivery tracking, generator, changelog header.
import Shared
import Testing

@testable import Ingestor

@Suite struct RuntimeUnitTests {
    @Test func settingsForceCorrectnessCriticalProperties() {
        var config = AppConfig()
        config.kafka.properties = [
            "enable.auto.commit": "true", "session.timeout.ms": "6000", "isolation.level": "read_uncommitted",
            "linger.ms": "20",
        ]
        let s = StreamSettings(config: config)
        #expect(s.consumerProperties["enable.auto.commit"] == "false")
        #expect(s.consumerProperties["isolation.level"] == "read_committed")
        #expect(s.consumerProperties["session.timeout.ms"] == "6000")
        #expect(s.consumerProperties["partition.assignment.strategy"] == "cooperative-sticky")
        #expect(s.producerProperties["transactional.id"] == "k8s-micro-local")
        #expect(s.producerProperties["linger.ms"] == "20")
        #expect(s.producerProperties["session.timeout.ms"] == nil)
        #expect(s.changelogTopics[.chaser] == "k8s-micro-chaser-changelog")
        config.kafka.processingGuarantee = .atLeastOnce
        #expect(StreamSettings(config: config).producerProperties["transactional.id"] == nil)
        #expect(StreamSettings(config: config).producerProperties["enable.idempotence"] == "true")
    }

    @Test func brokerRestartDefaultsBoundTheTransactionalCalls() {
        var config = AppConfig()
        let s = StreamSettings(config: config)
        // No re-bootstrap when the one broker restarts (it lost the group coordinator's handle for good).
        #expect(s.producerProperties["metadata.recovery.strategy"] == "none")
        #expect(s.consumerProperties["metadata.recovery.strategy"] == "none")
        // The routing thread's clients too: re-bootstrapping, they reconnected every few ms with the broker down.
        #expect(s.routingProperties["metadata.recovery.strategy"] == "none")
        #expect(s.routingProperties["client.id"] == "k8s-micro-local-routing")
        // Requests time out within the call's own timeout; a call counts as stuck only past both, plus 5 s.
        #expect(s.producerProperties["socket.timeout.ms"] == "10000")
        #expect(s.callStuckAfter == .seconds(25))
        config.kafka.properties = ["metadata.recovery.strategy": "rebootstrap", "socket.timeout.ms": "30000"]
        let given = StreamSettings(config: config)
        #expect(given.producerProperties["metadata.recovery.strategy"] == "rebootstrap")
        #expect(given.routingProperties["metadata.recovery.strategy"] == "rebootstrap")
        #expect(given.producerProperties["socket.timeout.ms"] == "30000")
        #expect(given.callStuckAfter == .seconds(45))
    }

    @Test func deliveryTrackerKeepsHighestChangelogOffsetPerStoreAndPartition() {
        let tracker = DeliveryTracker(metrics: IngestorMetrics(guarantee: "test"))
        let tag = DeliveryTracker.tag(store: .billing, partition: 3)
        for offset: Int64 in [5, 9, 7] {
            tracker.delivered(DeliveryReport(error: nil, topic: "cl", partition: 3, offset: offset, tag: tag))
        }
        tracker.delivered(DeliveryReport(error: nil, topic: "out", partition: 3, offset: 100, tag: 0))
        #expect(tracker.changelogHigh[StoreKind.billing.rawValue][3] == 9)
        #expect(tracker.changelogHigh[StoreKind.chaser.rawValue].isEmpty)
        #expect(tracker.failure == nil)
        tracker.reset()
        #expect(tracker.changelogHigh[StoreKind.billing.rawValue].isEmpty)
    }

    @Test func productionOrderPopsOnlyPersistedEpochsOldestFirst() {
        var order = ProductionOrder()
        let a = CacheKey(partition: 0, bytes: Array("a".utf8))
        let b = CacheKey(partition: 1, bytes: Array("b".utf8))
        order.append(.chaser, a, epoch: 1)
        order.append(.billing, b, epoch: 1)
        order.append(.chaser, a, epoch: 2)
        #expect(order.popOldest(persisted: 0) == nil)
        #expect(order.popOldest(persisted: 1)?.key == a)
        #expect(order.popOldest(persisted: 1)?.store == .billing)
        #expect(order.popOldest(persisted: 1) == nil)
        #expect(order.count == 1)
        #expect(order.popOldest(persisted: 2)?.epoch == 2)
        #expect(order.count == 0)
    }

    @Test func productionOrderCompactsStaleEntriesAndSurvivesManyPops() {
        var order = ProductionOrder()
        let keys = (0..<10_000).map { CacheKey(partition: 0, bytes: Array("k\($0)".utf8)) }
        for (i, key) in keys.enumerated() { order.append(.chaser, key, epoch: UInt64(i / 1_000 + 1)) }
        for _ in 0..<5_000 { _ = order.popOldest(persisted: 10) }
        #expect(order.count == 5_000)
        #expect(order.popOldest(persisted: 10)?.key == keys[5_000])
        order.compact { $0.epoch == 10 }
        #expect(order.count == 1_000)
        #expect(order.popOldest(persisted: 10)?.key == keys[9_000])
    }

    @Test func spareBuffersComeBackEmptyWithTheirCapacityPerStoreAndBounded() {
        var spare = SpareBuffers(limit: 2, largest: 256)
        #expect(spare.take(.chaser).capacity == 0)  // none kept yet: a fresh empty array
        var big = [UInt8](repeating: 7, count: 100)
        big.reserveCapacity(200)
        let capacity = big.capacity
        spare.give(.chaser, big)
        #expect(spare.take(.billing).capacity == 0)  // another store's buffer is not handed out
        let reused = spare.take(.chaser)
        #expect(reused.isEmpty && reused.capacity == capacity)
        spare.give(.billing, [UInt8](repeating: 1, count: 300))  // past `largest`: freed, not kept
        #expect(spare.count == 0)
        for _ in 0..<3 { spare.give(.billing, [1, 2, 3]) }
        #expect(spare.count == 2)  // the limit holds
        _ = spare.take(.billing)
        #expect(spare.count == 1)
    }

    @Test func cacheKeyHashesSpreadAndFollowTheSeed() {
        let long = String(repeating: "k", count: 40)
        let keys =
            (0..<50_000).map { CacheKey(partition: Int32($0 % 4), bytes: Array("device-\($0 / 4)".utf8)) }
            + (0..<1_000).map { CacheKey(partition: 0, bytes: Array((long + "\($0)").utf8)) }
        // Equal keys hash equally (a copy made from the same bytes, inline and spilled).
        for key in [keys[7], keys[50_007]] {
            let again = key.withBytes { CacheKey(partition: key.partition, bytes: $0) }
            #expect(again == key && again._rawHashValue(seed: 9) == key._rawHashValue(seed: 9))
        }
        // Sequential keys spread over a table's low bits like random values (~35,000 of 65,536 buckets for
        // 50,000 keys); a weak mix of similar keys fills far fewer.
        let buckets = Set(keys.prefix(50_000).map { $0._rawHashValue(seed: 1) & 0xFFFF })
        #expect(buckets.count > 30_000)
        // The seed changes every hash (a table's seed is what keeps collisions from being chosen).
        #expect(keys.allSatisfy { $0._rawHashValue(seed: 1) != $0._rawHashValue(seed: 2) })
        // A zero byte at the end is a different key, with a different hash.
        let a = CacheKey(partition: 0, bytes: [0x61])
        let a0 = CacheKey(partition: 0, bytes: [0x61, 0])
        #expect(a != a0 && a._rawHashValue(seed: 0) != a0._rawHashValue(seed: 0))
        // And a dictionary finds every key.
        var table: [CacheKey: Int] = [:]
        for (i, key) in keys.enumerated() { table[key] = i }
        #expect(table.count == keys.count)
        #expect(keys.indices.allSatisfy { table[keys[$0]] == $0 })
    }

    @Test func cacheKeyStoreOrderIsPartitionThenLMDBByteOrder() {
        let long = String(repeating: "k", count: 40)  // spills past the 32 inline bytes
        let raw: [(Int32, String)] = [
            (1, "a"), (0, "b"), (0, "ab"), (0, "a"), (0, "a\u{0}"), (0, long + "b"), (0, long), (0, "device-00010"),
            (0, "device-00002"), (0, "\u{7f}z"), (0, "l"),
        ]
        let keys = raw.map { CacheKey(partition: $0.0, bytes: Array($0.1.utf8)) }
        let sorted = keys.sorted(by: CacheKey.storeOrder).map { ($0.partition, $0.bytes) }
        // LMDB's default order: memcmp over the common length, then the shorter key first.
        let expected = raw.map { ($0.0, Array($0.1.utf8)) }.sorted { a, b in
            a.0 != b.0 ? a.0 < b.0 : a.1.lexicographicallyPrecedes(b.1)
        }
        #expect(sorted.map(\.0) == expected.map(\.0))
        #expect(sorted.map(\.1) == expected.map(\.1))
        #expect(!CacheKey.storeOrder(keys[0], keys[0]))
    }

    @Test func epochUpdatesGoToTheStoreInKeyOrderKeepingEachKeysOrder() {
        var updates = EncodedUpdates()
        for (key, offset) in [("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)] {
            updates.append(key: CacheKey(partition: 0, bytes: Array(key.utf8)), inputOffset: Int64(offset)) {
                $0 += Array("\(key)\(offset)".utf8)
            }
        }
        func visited() -> [String] {
            var seen: [String] = []
            updates.visit { key, offset, value in
                seen.append(
                    "\(String(decoding: key.bytes, as: UTF8.self)) \(offset) \(String(decoding: value, as: UTF8.self))")
            }
            return seen
        }
        #expect(visited() == ["b 1 b1", "a 2 a2", "b 3 b3", "a 4 a4", "c 5 c5"])
        updates.orderForStore()
        #expect(visited() == ["a 2 a2", "a 4 a4", "b 1 b1", "b 3 b3", "c 5 c5"])
        #expect(updates.count == 5)
    }

    @Test func epochUpdatesSortLikeStoreOrderOnRandomKeys() {
        // Short keys, zero bytes (equal prefixes once padded), 12-byte boundaries, spilled keys, repeats.
        var r = SeededRandom(seed: 5)
        var updates = EncodedUpdates()
        var keys: [CacheKey] = []
        for i in 0..<3_000 {
            let length = [0, 1, 2, 11, 12, 13, 20, 32, 33, 45][Int.random(in: 0..<10, using: &r)]
            let bytes = (0..<length).map { _ in [0, 1, 0x61, 0x62, 0xFF][Int.random(in: 0..<5, using: &r)] as UInt8 }
            let key = CacheKey(partition: Int32.random(in: 0..<3, using: &r), bytes: bytes)
            keys.append(key)
            updates.append(key: key, inputOffset: Int64(i)) { _ in }
        }
        updates.orderForStore()
        var visited: [Int64] = []
        updates.visit { _, offset, _ in visited.append(offset) }
        let expected = keys.indices.sorted { a, b in
            CacheKey.storeOrder(keys[a], keys[b]) || (!CacheKey.storeOrder(keys[b], keys[a]) && a < b)
        }
        #expect(visited == expected.map { Int64($0) })
    }

    @Test func encodedUpdatesVisitOneRunPerPartitionWithEveryKeyLentAtOnce() {
        var updates = EncodedUpdates()
        // A key longer than a cache key's 32 inline bytes spills to the heap and must be lent like the others.
        let long = String(repeating: "k", count: 40)
        for (partition, key, offset) in [(1, "b", 1), (0, "z", 2), (1, "a", 3), (0, long, 4), (2, "c", 5)] {
            updates.append(
                key: CacheKey(partition: Int32(partition), bytes: Array(key.utf8)), inputOffset: Int64(offset)
            ) {
                $0 += Array("v\(offset)".utf8)
            }
        }
        updates.orderForStore()
        var runs: [String] = []
        updates.visitPartitionRuns { partition, keys, values, offsets in
            // All of a run's buffers are read after the run is handed over, as one batched produce does.
            let records = keys.indices.map { i in
                "\(String(decoding: keys[i], as: UTF8.self).prefix(3))=\(String(decoding: values[i], as: UTF8.self))@\(offsets[i])"
            }
            runs.append("\(partition): " + records.joined(separator: " "))
        }
        #expect(runs == ["0: kkk=v4@4 z=v2@2", "1: a=v3@3 b=v1@1", "2: c=v5@5"])
    }

    @Test func changelogHeaderRoundTrips() {
        #expect(ChangelogHeader.decode(ChangelogHeader.encode(123_456_789)) == 123_456_789)
        #expect(ChangelogHeader.decode(Array("x".utf8)) == nil)
    }

    @Test func generatorIsDeterministicAndKeysEventsConsistently() {
        var a = EventGenerator(.init(keys: 10, chaserShare: 0.5, seed: 42))
        var b = EventGenerator(.init(keys: 10, chaserShare: 0.5, seed: 42))
        var kinds = Set<String>()
        for _ in 0..<2_000 {
            let x = a.next()
            let y = b.next()
            #expect(x.key == y.key && x.event == y.event)
            #expect(EventKey.key(for: x.event) == x.key)
            kinds.insert(x.event.fullName)
        }
        #expect(kinds.count == 4)
    }

    @Test func expectedAggregatesUseThePureRules() {
        var expected = ExpectedAggregates()
        expected.apply(key: "d", .chaser(Chaser(name: "A", id: "d", sent: 1000, ttl: 300)))
        expected.apply(key: "d", .chaser(Chaser(name: "B", id: "d", sent: 2000, ttl: 500)))
        #expect(expected.chaser["d"] == ChaserAggregate(names: ["A", "B"], count: 2, latest: 2000, longest: 500))
        #expect(expected.jsonLines().hasPrefix(#"{"store":"chaser","key":"d","value":{"type":"#))
    }
}
