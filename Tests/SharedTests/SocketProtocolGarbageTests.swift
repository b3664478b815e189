// The decoder rejects garbage with typed errors, never over-allocates, and stays failed.
import Testing

@testable import Shared

@Suite struct SocketProtocolGarbageTests {
    private func decode(_ bytes: [UInt8], max: Int = SocketProtocol.maxFrameSize) -> SocketProtocolError? {
        var decoder = FrameDecoder(maxFrameSize: max)
        do {
            _ = try decoder.feed(bytes)
            return nil
        } catch {
            return error
        }
    }

    private func frame(_ header: [UInt8], _ body: [UInt8]) -> [UInt8] {
        let n = UInt32(header.count + body.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + header + body
    }

    @Test func httpTextIsOversized() {
        #expect(decode(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == .oversized(length: 0x4745_5420, limit: 1 << 20))
    }

    @Test func oversizedPrefixIsRejectedBeforeTheBodyArrives() {
        var decoder = FrameDecoder()
        let n = UInt32(SocketProtocol.maxFrameSize + 1)
        #expect(throws: SocketProtocolError.oversized(length: Int(n), limit: SocketProtocol.maxFrameSize)) {
            _ = try decoder.feed([UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)])
        }
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func maxFrameSizeIsInclusive() throws {
        var decoder = FrameDecoder(maxFrameSize: 20)
        var bytes: [UInt8] = []
        try FrameEncoder(maxFrameSize: 20).appendRequest(
            .publish(json: Array(repeating: 1, count: 8)), id: 1, to: &bytes)
        #expect(bytes.count == 24)
        #expect(try decoder.feed(bytes).count == 1)
        #expect(
            decode(frame([1, 0, 0, 0, 0, 1, 8, 0], Array(repeating: 0, count: 13)), max: 20)
                == .oversized(length: 21, limit: 20))
    }

    @Test func shortLengthIsBadLength() {
        #expect(decode([0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 1]) == .badLength(7))
        #expect(decode([0, 0, 0, 0]) == .badLength(0))
    }

    @Test func badVersionAndKindAreSeenEarly() {
        // Only 2 bytes of a 100-byte frame: already rejected.
        #expect(decode([0, 0, 0, 100, 2]) == .badVersion(2))
        #expect(decode([0, 0, 0, 100, 1, 7]) == .badKind(7))
        var decoder = FrameDecoder()
        _ = try? decoder.feed([0, 0])
        #expect(throws: SocketProtocolError.badVersion(0)) { _ = try decoder.feed([0, 100, 0]) }
    }

    @Test func truncatedFieldsAreTyped() {
        // get with a key length beyond the frame.
        #expect(
            decode(frame([1, 0, 0, 0, 0, 1, 3, 0], [0, 0, 0, 1, 0x61, 0, 0, 0, 9, 0x62]))
                == .truncated(field: "get.key"))
        // get with no body at all.
        #expect(decode(frame([1, 0, 0, 0, 0, 1, 3, 0], [])) == .truncated(field: "get.store"))
        // published response missing its offset.
        #expect(
            decode(frame([1, 1, 0, 0, 0, 1, 8, 0], [0, 0, 0, 0, 0, 0, 0, 1]))
                == .truncated(field: "published.offset"))
    }

    @Test func badValues() {
        // bool that is neither 0 nor 1
        #expect(decode(frame([1, 1, 0, 0, 0, 1, 5, 0], [0, 0, 0, 1, 2])) == .badValue(field: "owner.endpoint"))
        // array count far beyond the frame: rejected without reserving memory
        #expect(decode(frame([1, 1, 0, 0, 0, 1, 4, 0], [0xFF, 0xFF, 0xFF, 0xFF])) == .badValue(field: "keys.keys"))
        // invalid UTF-8 key
        #expect(decode(frame([1, 0, 0, 0, 0, 1, 5, 0], [0, 0, 0, 2, 0xC3, 0x28])) == .invalidUTF8(field: "owner.key"))
        // ok response for an operation we do not know
        #expect(decode(frame([1, 1, 0, 0, 0, 1, 77, 0], [])) == .unknownOperation(77))
    }

    @Test func unknownRequestOperationIsNotAnError() throws {
        var decoder = FrameDecoder()
        #expect(
            try decoder.feed(frame([1, 0, 0, 0, 0, 9, 123, 0], [1, 2, 3])) == [
                .request(id: 9, .unknown(operation: 123))
            ])
    }

    @Test func decoderStaysFailed() throws {
        var decoder = FrameDecoder()
        #expect(throws: SocketProtocolError.badVersion(9)) { _ = try decoder.feed([0, 0, 0, 8, 9]) }
        var good: [UInt8] = []
        try FrameEncoder().appendRequest(.ping, id: 1, to: &good)
        #expect(throws: SocketProtocolError.badVersion(9)) { _ = try decoder.feed(good) }
    }

    @Test func framesBeforeGarbageAreDelivered() throws {
        var bytes: [UInt8] = []
        try FrameEncoder().appendRequest(.ping, id: 1, to: &bytes)
        bytes += [0, 0, 0, 8, 5]
        var decoder = FrameDecoder()
        var frames: [SocketFrame] = []
        #expect(throws: SocketProtocolError.badVersion(5)) {
            try bytes.withUnsafeBytes { raw in
                try decoder.feed(raw) { frames.append($0) }
            }
        }
        #expect(frames == [.request(id: 1, .ping)])
    }

    @Test func randomGarbageNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...64, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count > 5 {
                bytes[0] = 0
                bytes[1] = 0
                bytes[4] = 1
            }
            var decoder = FrameDecoder()
            _ = try? decoder.feed(bytes)
            #expect(decoder.bufferedByteCount <= SocketProtocol.maxFrameSize + 4)
        }
    }
}
