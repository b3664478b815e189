// Cluster key listings: opaque cursors, merging pods' pages, reading a peer's page.
import Testing

@testable import Gateway

@Suite struct ClusterListingTests {
    @Test func cursorRoundTripsAnyKey() {
        for key in ["a", "ab", "abc", "abcd", "dev-42", "ü/ß?&=+ x", String(repeating: "z", count: 300)] {
            let cursor = KeyCursor.encode(key)
            #expect(cursor.utf8.allSatisfy { $0 < 128 && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "+") })
            #expect(KeyCursor.decode(cursor) == key)
        }
        #expect(KeyCursor.encode("abc") == "YWJj")
        #expect(KeyCursor.encode("ab") == "YWI")
    }

    @Test func cursorRejectsCharactersOutsideTheAlphabet() {
        for bad in ["YW=", "a+b", "%41", "/", "Y W"] {
            #expect(KeyCursor.decode(bad) == nil, "\(bad)")
        }
        // Anything in the alphabet is some key (the schema's pattern), never a 400.
        #expect(KeyCursor.decode("Y") == "")
        #expect(KeyCursor.decode("YWJ") == "ab")
        #expect(KeyCursor.decode("_w") == "\u{FFFD}")
    }

    @Test func mergeTakesFirstDistinctKeysInByteOrder() {
        let a = SourcePage(keys: ["a", "c", "e"], more: true)
        let b = SourcePage(keys: ["b", "c", "d"], more: false)
        #expect(KeyPageMerge.merge([a, b], limit: 3) == SourcePage(keys: ["a", "b", "c"], more: true))
        #expect(KeyPageMerge.merge([a, b], limit: 10) == SourcePage(keys: ["a", "b", "c", "d", "e"], more: true))
        let done = KeyPageMerge.merge(
            [SourcePage(keys: ["b"], more: false), SourcePage(keys: ["a"], more: false)], limit: 2)
        #expect(done == SourcePage(keys: ["a", "b"], more: false))
        // Byte order, not String's Unicode order: "Z" (0x5A) < "a" (0x61) < "é" (0xC3 0xA9).
        let bytes = KeyPageMerge.merge(
            [SourcePage(keys: ["é", "a"], more: false), SourcePage(keys: ["Z"], more: false)], limit: 5)
        #expect(bytes.keys == ["Z", "a", "é"])
    }

    @Test func paginatingMergedSourcesVisitsEveryKeyOnce() {
        // Three pods with disjoint sorted keys; each answers up to `limit` keys after the cursor.
        let pods = (0..<3).map { p in (0..<37).map { "k\(String(format3($0 * 3 + p)))" } }
        var seen: [String] = []
        var after: String?
        for _ in 0..<100 {
            let pages = pods.map { keys in
                let rest = keys.filter { k in
                    after.map { k.utf8.lexicographicallyPrecedes($0.utf8) == false && k != $0 } ?? true
                }
                return SourcePage(keys: Array(rest.prefix(7)), more: rest.count > 7)
            }
            let page = KeyPageMerge.merge(pages, limit: 7)
            seen += page.keys
            guard page.more, let last = page.keys.last else { break }
            after = last
        }
        #expect(seen == pods.flatMap { $0 }.sorted())
    }

    @Test func peerBody() {
        let page = KeyPageMerge.parsePeerBody(Array(#"{"keys":["a","b"],"next":"YQ"}"#.utf8))
        #expect(page == SourcePage(keys: ["a", "b"], more: true))
        #expect(
            KeyPageMerge.parsePeerBody(Array(#"{"keys":[],"next":null}"#.utf8)) == SourcePage(keys: [], more: false))
        #expect(KeyPageMerge.parsePeerBody(Array(#"{"keys":[1],"next":null}"#.utf8)) == nil)
        #expect(KeyPageMerge.parsePeerBody(Array(#"{"error":"x"}"#.utf8)) == nil)
        #expect(KeyPageMerge.parsePeerBody(Array("not json".utf8)) == nil)
    }

    private func format3(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }
}
