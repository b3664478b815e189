// Round trips of every request and response through FrameEncoder and FrameDecoder.
import Testing

@testable import Shared

enum SocketSamples {
    static let requests: [SocketRequest] = [
        .ping, .health, .get(store: "chaser", key: "key-1"), .get(store: "billing", key: "ключ ✓"),
        .get(store: "", key: ""), .listKeys(store: "chaser", limit: 1000, cursor: nil),
        .listKeys(store: "billing", limit: 7, cursor: "key-42"), .owner(key: "abc"), .routingTable, .metrics,
        .publish(json: Array(#"{"type":"com.polecatworks.chaser.Chaser","name":"A"}"#.utf8)), .publish(json: []),
        .stop, .unknown(operation: 200),
    ]

    static let responses: [SocketResponse] = [
        .pong,
        .health(HealthReport(alive: true, ready: false, joinedGroup: true)),
        .health(
            HealthReport(
                alive: true, ready: true, joinedGroup: true, partitionsAssigned: [0, 2, 5],
                partitionsRestoring: [5],
                details: [
                    HealthCheck(name: "kafka", valid: true),
                    HealthCheck(name: "restore", valid: false),
                ])),
        .value(json: Array(#"{"type":"com.polecatworks.chaser.Aggregate","count":2}"#.utf8)),
        .keys(KeyPage(keys: [], nextCursor: nil)),
        .keys(KeyPage(keys: ["a", "b", "ü"], nextCursor: "b")),
        .keys(KeyPage(keys: ["a"], nextCursor: nil, partitions: [0, 3])),
        .keys(KeyPage(keys: [], nextCursor: "z", partitions: [])),
        .owner(KeyOwner(partition: 3, endpoint: "10.0.0.7:8080", isLocal: false)),
        .owner(KeyOwner(partition: 0, endpoint: nil, isLocal: true)),
        .routing(RoutingInfo(epoch: 0, partitionCount: 0, localEndpoint: "", owners: [])),
        .routing(
            RoutingInfo(
                epoch: UInt64.max - 1, partitionCount: 4, localEndpoint: "10.0.0.1:8080",
                owners: [
                    PartitionEndpoint(partition: 0, endpoint: "10.0.0.1:8080"),
                    PartitionEndpoint(partition: 3, endpoint: "10.0.0.2:8080"),
                ])),
        .metrics(text: "# TYPE x counter\nx 1\n"),
        .published(PublishReceipt(topic: "input", partition: 2, offset: Int64.max)),
        .stopping,
        .notFound,
        .notReady(retryAfterMs: 1000, message: "partition 3 restoring"),
        .notOwner(partition: 7, endpoint: "10.0.0.9:8080"),
        .notOwner(partition: 7, endpoint: nil),
        .badRequest(message: "missing field name"),
        .unsupported(message: "operation 200"),
        .unavailable(message: "broker down"),
        .internalError(message: "boom"),
        .failure(status: 99, message: "from the future"),
    ]

    static func requestOp(for response: SocketResponse) -> UInt8 {
        response.successOperation?.rawValue ?? SocketOperation.get.rawValue
    }
}

@Suite struct SocketProtocolCodecTests {
    let encoder = FrameEncoder()

    @Test func everyRequestRoundTrips() throws {
        for (i, request) in SocketSamples.requests.enumerated() {
            var bytes: [UInt8] = []
            try encoder.appendRequest(request, id: UInt32(i * 1000 + 1), to: &bytes)
            var decoder = FrameDecoder()
            let frames = try decoder.feed(bytes)
            #expect(frames == [.request(id: UInt32(i * 1000 + 1), request)])
            #expect(decoder.bufferedByteCount == 0)
        }
    }

    @Test func everyResponseRoundTrips() throws {
        for (i, response) in SocketSamples.responses.enumerated() {
            var bytes: [UInt8] = []
            let op = SocketSamples.requestOp(for: response)
            try encoder.appendResponse(response, id: UInt32(i), operation: op, to: &bytes)
            var decoder = FrameDecoder()
            #expect(try decoder.feed(bytes) == [.response(id: UInt32(i), operation: op, response)])
        }
    }

    @Test func failuresEchoTheRequestOperation() throws {
        var bytes: [UInt8] = []
        try encoder.appendResponse(.notFound, id: 9, operation: SocketOperation.listKeys.rawValue, to: &bytes)
        #expect(bytes[10] == SocketOperation.listKeys.rawValue)
        #expect(bytes[11] == SocketStatus.notFound.rawValue)
        // A success case writes its own operation whatever the caller passes.
        bytes.removeAll()
        try encoder.appendResponse(.pong, id: 9, operation: SocketOperation.get.rawValue, to: &bytes)
        #expect(bytes[10] == SocketOperation.ping.rawValue)
    }

    @Test func headerLayoutIsAsDocumented() throws {
        var bytes: [UInt8] = []
        try encoder.appendRequest(.get(store: "s", key: "k"), id: 0x0102_0304, to: &bytes)
        // length = 8 header + (4+1) + (4+1)
        #expect(bytes == [0, 0, 0, 18, 1, 0, 1, 2, 3, 4, 3, 0, 0, 0, 0, 1, 0x73, 0, 0, 0, 1, 0x6B])
    }

    @Test func manyFramesInOneChunkAndByteByByte() throws {
        var stream: [UInt8] = []
        var expected: [SocketFrame] = []
        for (i, request) in SocketSamples.requests.enumerated() {
            try encoder.appendRequest(request, id: UInt32(i), to: &stream)
            expected.append(.request(id: UInt32(i), request))
        }
        for (i, response) in SocketSamples.responses.enumerated() {
            let op = SocketSamples.requestOp(for: response)
            try encoder.appendResponse(response, id: UInt32(i), operation: op, to: &stream)
            expected.append(.response(id: UInt32(i), operation: op, response))
        }
        var whole = FrameDecoder()
        #expect(try whole.feed(stream) == expected)

        var byteByByte = FrameDecoder()
        var got: [SocketFrame] = []
        for byte in stream { got += try byteByByte.feed([byte]) }
        #expect(got == expected)
        #expect(byteByByte.bufferedByteCount == 0)

        // Every chunk size from 2 to 40 gives the same frames.
        for size in 2...40 {
            var decoder = FrameDecoder()
            var frames: [SocketFrame] = []
            var i = 0
            while i < stream.count {
                let end = min(i + size, stream.count)
                frames += try decoder.feed(stream[i..<end])
                i = end
            }
            #expect(frames == expected, "chunk size \(size)")
        }
    }

    @Test func largeValueNearTheLimitRoundTrips() throws {
        let json = [UInt8](repeating: 0x61, count: SocketProtocol.maxFrameSize - 8 - 4)
        var bytes: [UInt8] = []
        try encoder.appendResponse(.value(json: json), id: 1, operation: 3, to: &bytes)
        var decoder = FrameDecoder()
        var frames: [SocketFrame] = []
        var i = 0
        while i < bytes.count {
            let end = min(i + 65_536, bytes.count)
            frames += try decoder.feed(bytes[i..<end])
            i = end
        }
        #expect(frames == [.response(id: 1, operation: 3, .value(json: json))])
    }

    @Test func encoderRejectsOversizedAndLeavesBufferUnchanged() throws {
        var bytes: [UInt8] = [42]
        let json = [UInt8](repeating: 0x61, count: SocketProtocol.maxFrameSize)
        #expect(
            throws: SocketProtocolError.oversized(
                length: SocketProtocol.maxFrameSize + 12,
                limit: SocketProtocol.maxFrameSize)
        ) {
            try encoder.appendRequest(.publish(json: json), id: 1, to: &bytes)
        }
        #expect(bytes == [42])
    }

    @Test func trailingBodyBytesFromANewerPeerAreIgnored() throws {
        var bytes: [UInt8] = []
        try encoder.appendRequest(.owner(key: "k"), id: 5, to: &bytes)
        bytes += [9, 9, 9]
        bytes[3] += 3
        var decoder = FrameDecoder()
        #expect(try decoder.feed(bytes) == [.request(id: 5, .owner(key: "k"))])
    }

    @Test func keyPageWithoutPartitionsStillReadsAsBefore() throws {
        // An older ingestor writes no `partitions` field: the page reads with partitions nil.
        var bytes: [UInt8] = []
        let page = KeyPage(keys: ["a", "b"], nextCursor: "b")
        try encoder.appendResponse(.keys(page), id: 3, operation: SocketOperation.listKeys.rawValue, to: &bytes)
        var decoder = FrameDecoder()
        let frames = try decoder.feed(bytes)
        #expect(frames == [.response(id: 3, operation: SocketOperation.listKeys.rawValue, .keys(page))])
        // A newer one appends it after nextCursor: 4 bytes of count + 4 per partition.
        var newer: [UInt8] = []
        let listed = KeyPage(keys: ["a", "b"], nextCursor: "b", partitions: [1, 4])
        try encoder.appendResponse(.keys(listed), id: 3, operation: SocketOperation.listKeys.rawValue, to: &newer)
        #expect(newer.count == bytes.count + 12)
        #expect(Array(newer.prefix(4)) != Array(bytes.prefix(4)))
    }
}
