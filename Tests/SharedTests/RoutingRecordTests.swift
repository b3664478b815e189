// The routing topic's record format: what the ingestor writes, what it accepts, what it refuses and why.
import Testing

@testable import Shared

@Suite struct RoutingRecordTests {
    static let claim = RoutingAnnouncement(
        member: "k8s-micro-0", endpoint: "http://10.0.0.7:8080", partitions: [0, 1, 3], restoring: [3],
        partitionCount: 4, epoch: 7, time: 1_733_400_000_000, ttlMs: 30_000)

    private func decode(_ text: String) throws(RoutingRecordError) -> RoutingAnnouncement {
        try RoutingRecord.decode(Array(text.utf8))
    }

    private func refusal(_ text: String) -> String? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func roundTrips() throws {
        #expect(try RoutingRecord.decode(RoutingRecord.encode(Self.claim)) == Self.claim)
        let extremes = RoutingAnnouncement(
            member: "\u{e9}\"\\\n", endpoint: "", partitions: [], partitionCount: 0, epoch: .min, time: .max,
            ttlMs: -1)
        #expect(try RoutingRecord.decode(RoutingRecord.encode(extremes)) == extremes)
    }

    /// What pods that wrote with Foundation's JSONEncoder published (`\/` escapes, any member order) still reads.
    @Test func readsWhatEarlierVersionsWrote() throws {
        let written = #"""
            {"ttlMs":30000,"endpoint":"http:\/\/10.0.0.7:8080","member":"k8s-micro-0","partitions":[0,1,3],\#
            "restoring":[3],"partitionCount":4,"epoch":7,"time":1733400000000}
            """#
        #expect(try decode(written) == Self.claim)
    }

    @Test func unknownMembersAreIgnoredAndTheFirstOfARepeatedOneCounts() throws {
        var text = String(decoding: RoutingRecord.encode(Self.claim), as: UTF8.self)
        text.removeFirst()
        #expect(try decode(#"{"member":"first","extra":{"nested":[null,true,1.5]},"# + text).member == "first")
    }

    @Test func refusesWithTheReason() {
        let full = String(decoding: RoutingRecord.encode(Self.claim), as: UTF8.self)
        #expect(refusal("") == "invalid JSON at byte 0: unexpected end of input")
        #expect(refusal("[1]") == "not a JSON object")
        #expect(refusal(full.replacingFirst(#""epoch":7,"#, with: "")) == #"missing "epoch""#)
        #expect(refusal(full.replacingFirst(#""epoch":7"#, with: #""epoch":"7""#)) == #""epoch" is not an integer"#)
        #expect(refusal(full.replacingFirst(#""epoch":7"#, with: #""epoch":null"#)) == #""epoch" is not an integer"#)
        #expect(
            refusal(full.replacingFirst(#""member":"k8s-micro-0""#, with: #""member":1"#))
                == #""member" is not a string"#)
        #expect(refusal(full.replacingFirst("[0,1,3]", with: "[0,\"1\"]")) == #""partitions" holds a non-integer"#)
        #expect(refusal(full.replacingFirst("[0,1,3]", with: "{}")) == #""partitions" is not an array"#)
        #expect(
            refusal(full.replacingFirst(#""time":1733400000000"#, with: #""time":9223372036854775808"#))
                == #""time" is not an integer"#)
    }

    /// Where the strict reader differs from Foundation's JSONDecoder, which read these records before: it
    /// accepted integral numbers written with a fraction or exponent, a trailing comma, a byte order mark and
    /// nesting up to 512 levels in an ignored member. None of these is written by any version of the ingestor.
    @Test func stricterThanFoundationWas() {
        let full = String(decoding: RoutingRecord.encode(Self.claim), as: UTF8.self)
        #expect(refusal(full.replacingFirst(#""epoch":7"#, with: #""epoch":7.0"#)) == #""epoch" is not an integer"#)
        #expect(refusal(full.replacingFirst(#""epoch":7"#, with: #""epoch":7e0"#)) == #""epoch" is not an integer"#)
        #expect(refusal(full.replacingFirst("}", with: ",}"))?.hasPrefix("invalid JSON") == true)
        #expect(refusal("\u{feff}" + full)?.hasPrefix("invalid JSON") == true)
        let deep = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        #expect(refusal(full.replacingFirst("{", with: #"{"deep":\#(deep),"#))?.contains("nesting deeper") == true)
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        var copy = self
        if let range = copy.firstRange(of: target) { copy.replaceSubrange(range, with: replacement) }
        return copy
    }
}
