// The ingestor's key listing: a byte-ordered k-way merge over partitions, cursor = last key.
import Testing

@testable import Ingestor

@Suite struct KeyListingTests {
    /// Sorted keys per partition, read in chunks like `LMDBStore.keys(partition:after:limit:)`.
    private static func reader(_ data: [Int32: [String]]) -> (Int32, [UInt8]?, Int) -> [[UInt8]] {
        { p, after, n in
            let keys = (data[p] ?? []).map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
            return Array(keys.filter { k in after.map { $0.lexicographicallyPrecedes(k) } ?? true }.prefix(n))
        }
    }

    private static func strings(_ keys: [[UInt8]]) -> [String] { keys.map { String(decoding: $0, as: UTF8.self) } }

    @Test func mergesPartitionsInByteOrderAndPaginates() {
        var data: [Int32: [String]] = [:]
        for i in 0..<2_000 { data[Int32(i % 5), default: []].append("key-\(i)") }
        data[3, default: []].append("key-7")  // also in partition 2: listed once
        let read = Self.reader(data)
        var all: [String] = []
        var after: [UInt8]?
        var pages = 0
        while true {
            let page = StoreQueryHandler.mergedKeys(of: [0, 1, 2, 3, 4], limit: 300, after: after, read: read)
            all += Self.strings(page.keys)
            pages += 1
            guard page.more, let last = page.keys.last else { break }
            after = last
        }
        #expect(pages == 7)
        #expect(all == (0..<2_000).map { "key-\($0)" }.sorted())
    }

    @Test func exactLimitHasNoMore() {
        let read = Self.reader([0: ["a", "c"], 1: ["b"]])
        let page = StoreQueryHandler.mergedKeys(of: [0, 1], limit: 3, after: nil, read: read)
        #expect(Self.strings(page.keys) == ["a", "b", "c"] && !page.more)
        let after = StoreQueryHandler.mergedKeys(of: [0, 1], limit: 2, after: Array("a".utf8), read: read)
        #expect(Self.strings(after.keys) == ["b", "c"] && !after.more)
        let first = StoreQueryHandler.mergedKeys(of: [0, 1], limit: 2, after: nil, read: read)
        #expect(Self.strings(first.keys) == ["a", "b"] && first.more)
        #expect(StoreQueryHandler.mergedKeys(of: [], limit: 2, after: nil, read: read).keys.isEmpty)
    }
}
