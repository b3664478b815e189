// Percent-decoding of path segments and query strings.
import Testing

@testable import Gateway

struct PercentDecodingTests {
    @Test func decodesEscapes() {
        #expect(PercentDecoding.decode("abc") == "abc")
        #expect(PercentDecoding.decode("a%20b") == "a b")
        #expect(PercentDecoding.decode("%41%62") == "Ab")
        #expect(PercentDecoding.decode("%e2%82%ac") == "€")
        #expect(PercentDecoding.decode("a+b") == "a+b")
        #expect(PercentDecoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(PercentDecoding.decode("") == "")
    }

    @Test func rejectsBadEscapes() {
        for bad in ["%", "%4", "%zz", "a%g1", "%C3", "%FF%FE"] {
            #expect(PercentDecoding.decode(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func query() {
        let pairs = PercentDecoding.query("limit=10&scope=cluster&cursor=a%2Bb+c&flag&&x=")
        #expect(pairs?.map(\.0) == ["limit", "scope", "cursor", "flag", "x"])
        #expect(pairs?.map(\.1) == ["10", "cluster", "a+b c", "", ""])
        #expect(PercentDecoding.query("a=%zz") == nil)
        #expect(PercentDecoding.query("")?.isEmpty == true)
    }
}
