// The one JSON reader of both processes: values, rejections, depth limit, round trip through `serialized`.
import Shared
import Testing

struct JSONParserTests {
    @Test func values() throws {
        let v = try JSONParser.parse(
            #"{"a":[1,-2,3.5,1e2,true,false,null,"x\u00e9\ud83d\ude00\/"],"b":{},"c":[],"d":-0,"e":9223372036854775807}"#
        )
        #expect(
            v["a"]
                == .array([
                    .int(1), .int(-2), .double(3.5), .double(100), .bool(true), .bool(false), .null,
                    .string("xé😀/"),
                ]))
        #expect(v["b"] == .object([]))
        #expect(v["c"] == .array([]))
        #expect(v["d"] == .int(0))
        #expect(v["e"] == .int(Int64.max))
        #expect(try JSONParser.parse(v.serialized) == v)
        // Beyond Int64: kept as a double, so a long field rejects it.
        #expect(try JSONParser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(
            try JSONParser.parse(Array(#" {"a":[1,-2.5e3,true,null,"\u00e9\ud83d\ude00"]} "#.utf8))
                == .object([("a", .array([.int(1), .double(-2500), .bool(true), .null, .string("é😀")]))]))
    }

    @Test func rejections() {
        let bad = [
            "", " ", "{", "}", "[", "[1,]", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "nul", "tru", "01", "-", "1.",
            "1e", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}\"", "{} {}", "[]]",
            "{} x", "[1 2]", "\u{FEFF}{}", "{'a':1}", "NaN", "Infinity",
        ]
        for text in bad {
            #expect(throws: JSONParseError.self, "accepted: \(text.prefix(40))") { try JSONParser.parse(text) }
        }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
        do {
            _ = try JSONParser.parse("[1,]")
        } catch {
            #expect(error.description == "invalid JSON at byte 3: unexpected character")
        }
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(try JSONParser.parse(ok) != .null)
        for n in [JSONParser.maxDepth + 1, 100, 10_000] {
            let deep = String(repeating: "[", count: n) + String(repeating: "]", count: n)
            #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        }
    }
}
