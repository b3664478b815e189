// A real socket server on a temp path with fake handlers: multiplexing, garbage, stale files, mode.
import Logging
import Shared
import Synchronization
import Testing

@testable import Ingestor

#if canImport(Glibc)
    import Glibc
#endif

/// Answers gets with `{"key":"<key>"}` at once, pings at once, everything else notFound.
final class EchoHandler: SocketRequestHandler {
    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        switch request {
        case .ping: reply(.pong)
        case .get(_, let key): reply(.value(json: Array("{\"key\":\"\(key)\"}".utf8)))
        case .stop: reply(.stopping)
        default: reply(.notFound)
        }
    }
}

/// Answers gets with the key's length (a short answer to a frame of any size).
final class KeyLengthHandler: SocketRequestHandler {
    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        guard case .get(_, let key) = request else { return reply(.notFound) }
        reply(.value(json: Array("\(key.utf8.count)".utf8)))
    }
}

/// Parks every get reply until the test releases them (`release` answers each with its key).
final class ParkingHandler: SocketRequestHandler {
    private let parked = Mutex<[(String, @Sendable (SocketResponse) -> Void)]>([])

    var count: Int { parked.withLock { $0.count } }

    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        guard case .get(_, let key) = request else { return reply(.pong) }
        parked.withLock { $0.append((key, reply)) }
    }

    func release() {
        let all = parked.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for (key, reply) in all { reply(.value(json: Array(key.utf8))) }
    }
}

/// Holds get replies until `batch` are pending, then answers them in reverse order from another thread.
final class ReversingHandler: SocketRequestHandler {
    let batch: Int
    private let pending = Mutex<[(String, @Sendable (SocketResponse) -> Void)]>([])
    init(batch: Int) { self.batch = batch }

    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        guard case .get(_, let key) = request else { return reply(.pong) }
        let ready = pending.withLock { list -> [(String, @Sendable (SocketResponse) -> Void)]? in
            list.append((key, reply))
            guard list.count == batch else { return nil }
            defer { list.removeAll() }
            return list
        }
        guard let ready else { return }
        // A real thread, not a Task: the blocking test clients may occupy the cooperative pool.
        let spawned = OSThread.spawn(name: "test-replies") {
            for (key, reply) in ready.reversed() { reply(.value(json: Array(key.utf8))) }
        }
        precondition(spawned)
    }
}

struct SocketServerFixture {
    let directory: String
    let path: String
    let server: SocketServer

    init(handler: any SocketRequestHandler, subdirectory: Bool = false) throws {
        var template = Array("/tmp/k8sm-sock-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        }
        directory = try #require(dir)
        path = subdirectory ? "\(directory)/run/k8s/ingestor.sock" : "\(directory)/ingestor.sock"
        server = SocketServer(
            configuration: .init(path: path), handler: handler, logger: Logger(label: "test.socket"))
        try server.start()
    }

    func client() throws -> SocketClient { try SocketClient(path: path, timeoutMilliseconds: 5000) }

    func stop() {
        server.stop()
        server.join()
        _ = unlink(path)
        _ = rmdir("\(directory)/run/k8s")
        _ = rmdir("\(directory)/run")
        _ = rmdir(directory)
    }
}

@Suite struct SocketServerTests {
    @Test func manyInFlightRequestsAreAnsweredById() throws {
        let fixture = try SocketServerFixture(handler: ReversingHandler(batch: 100))
        defer { fixture.stop() }
        let client = try fixture.client()
        for i in 1...300 { try client.enqueue(.get(store: "chaser", key: "k\(i)"), id: UInt32(i)) }
        try client.flush()
        var seen: [UInt32] = []
        for _ in 1...300 {
            guard case .response(let id, let op, .value(let json)) = try client.receive() else {
                Issue.record("not a value")
                return
            }
            #expect(op == SocketOperation.get.rawValue)
            #expect(String(decoding: json, as: UTF8.self) == "k\(id)")
            seen.append(id)
        }
        #expect(Set(seen) == Set(1...300))
        #expect(seen != seen.sorted(), "answers came out of order (reversed per batch)")
        // Within one batch the handler answers in reverse (batches may interleave: separate threads).
        let firstBatch = seen.filter { $0 <= 100 }
        #expect(firstBatch == Array((1...100).reversed()))
    }

    @Test func synchronousRepliesPipelineOnManyClients() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let clients = try (0..<8).map { _ in try fixture.client() }
        for (c, client) in clients.enumerated() {
            for i in 0..<500 { try client.enqueue(.get(store: "s", key: "c\(c)-\(i)"), id: UInt32(i)) }
            try client.flush()
        }
        for (c, client) in clients.enumerated() {
            for i in 0..<500 {
                let frame = try client.receive()
                #expect(
                    frame
                        == .response(id: UInt32(i), operation: 3, .value(json: Array("{\"key\":\"c\(c)-\(i)\"}".utf8))))
            }
        }
        #expect(fixture.server.statistics.requests == 4000)
    }

    @Test func garbageClosesOnlyThatConnection() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let good = try fixture.client()
        #expect(try good.request(.ping) == .pong)
        let bad = try fixture.client()
        bad.enqueueRaw([0, 0, 0, 12, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])  // version 7
        try bad.flush()
        #expect(throws: SocketClientError.closedByPeer) { _ = try bad.receive() }
        #expect(try good.request(.get(store: "s", key: "a")) == .value(json: Array(#"{"key":"a"}"#.utf8)))
        #expect(fixture.server.statistics.protocolErrors == 1)
    }

    @Test func oversizedFrameClosesOnlyThatConnection() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let good = try fixture.client()
        let bad = try fixture.client()
        let n = UInt32(SocketProtocol.maxFrameSize + 1)
        bad.enqueueRaw([UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF), 1, 0])
        try bad.flush()
        #expect(throws: SocketClientError.closedByPeer) { _ = try bad.receive() }
        #expect(fixture.server.statistics.protocolErrors == 1)
        #expect(try good.request(.ping) == .pong)
    }

    @Test func aFrameAtTheLimitIsServed() throws {
        let fixture = try SocketServerFixture(handler: KeyLengthHandler())
        defer { fixture.stop() }
        let client = try fixture.client()
        // Frame = 8 header bytes + store (4 + 0) + key (4 + n): exactly the limit.
        let n = SocketProtocol.maxFrameSize - 8 - 8
        let key = String(repeating: "A", count: n)
        #expect(try client.request(.get(store: "", key: key)) == .value(json: Array("\(n)".utf8)))
        #expect(fixture.server.statistics.protocolErrors == 0)
    }

    @Test func unknownOperationIsUnsupportedAndKeepsTheConnection() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let client = try fixture.client()
        client.enqueueRaw([0, 0, 0, 8, 1, 0, 0, 0, 0, 42, 200, 0])
        try client.flush()
        guard case .response(42, 200, .unsupported) = try client.receive() else {
            Issue.record("expected unsupported")
            return
        }
        #expect(try client.request(.ping) == .pong)
        #expect(fixture.server.statistics.protocolErrors == 0)
    }

    @Test func responseFramesFromClientsAreProtocolErrors() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let client = try fixture.client()
        var frame: [UInt8] = []
        try FrameEncoder().appendResponse(.pong, id: 1, operation: 1, to: &frame)
        client.enqueueRaw(frame)
        try client.flush()
        #expect(throws: SocketClientError.closedByPeer) { _ = try client.receive() }
        #expect(fixture.server.statistics.protocolErrors == 1)
    }

    @Test func socketFileModeAndParentDirectory() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler(), subdirectory: true)
        defer { fixture.stop() }
        var info = stat()
        #expect(lstat(fixture.path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o660)
    }

    @Test func staleSocketFileIsReplaced() throws {
        var template = Array("/tmp/k8sm-stale-XXXXXX".utf8CString)
        let dir = try #require(
            template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } })
        let path = "\(dir)/ingestor.sock"
        defer {
            _ = unlink(path)
            _ = rmdir(dir)
        }
        // A crashed ingestor leaves a bound socket file nobody listens on.
        let fd = try UnixDomainSocket.listen(path: path)
        UnixDomainSocket.close(fd)
        #expect(access(path, F_OK) == 0)
        let server = SocketServer(configuration: .init(path: path), handler: EchoHandler(), logger: Logger(label: "t"))
        try server.start()
        let client = try SocketClient(path: path)
        #expect(try client.request(.ping) == .pong)
        server.stop()
        server.join()
        #expect(access(path, F_OK) != 0, "stop unlinks the socket file")
    }

    @Test func liveSocketRefusesASecondServer() throws {
        let fixture = try SocketServerFixture(handler: EchoHandler())
        defer { fixture.stop() }
        let second = SocketServer(
            configuration: .init(path: fixture.path), handler: EchoHandler(), logger: Logger(label: "t"))
        #expect {
            try second.start()
        } throws: { error in
            guard case SocketServerError.alreadyServed = error else { return false }
            return true
        }
        // The first one still serves.
        #expect(try fixture.client().request(.ping) == .pong)
    }

    @Test func regularFileAtThePathIsNeverDeleted() throws {
        var template = Array("/tmp/k8sm-file-XXXXXX".utf8CString)
        let dir = try #require(
            template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } })
        let path = "\(dir)/ingestor.sock"
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        close(fd)
        defer {
            _ = unlink(path)
            _ = rmdir(dir)
        }
        let server = SocketServer(configuration: .init(path: path), handler: EchoHandler(), logger: Logger(label: "t"))
        #expect {
            try server.start()
        } throws: { error in
            guard case SocketServerError.notASocket = error else { return false }
            return true
        }
        #expect(access(path, F_OK) == 0)
    }

    /// A server whose handler holds one get ("a", id 1) of the returned client, unanswered.
    static func oneParkedRequest() throws -> (ParkingHandler, SocketServerFixture, SocketClient) {
        let handler = ParkingHandler()
        let fixture = try SocketServerFixture(handler: handler)
        let client = try fixture.client()
        try client.enqueue(.get(store: "s", key: "a"), id: 1)
        try client.flush()
        var waited = 0
        while handler.count == 0, waited < 5000 {
            usleep(1000)
            waited += 1
        }
        #expect(handler.count == 1)
        return (handler, fixture, client)
    }

    @Test func stopAnswersInFlightThenCloses() throws {
        let (handler, fixture, client) = try Self.oneParkedRequest()
        // Stop while the request is in flight; its answer, given within the grace period, still arrives.
        fixture.server.stop()
        handler.release()
        guard case .response(1, SocketOperation.get.rawValue, .value(let json)) = try client.receive() else {
            Issue.record("the in-flight request was not answered")
            fixture.stop()
            return
        }
        #expect(json == Array("a".utf8))
        #expect(throws: SocketClientError.closedByPeer) { _ = try client.receive() }
        fixture.server.join()
        #expect(access(fixture.path, F_OK) != 0)
        fixture.stop()
    }

    @Test func stopClosesAfterTheGraceWhenNoAnswerComes() throws {
        let (_, fixture, client) = try Self.oneParkedRequest()
        fixture.server.stop()
        fixture.server.join()
        #expect(throws: SocketClientError.closedByPeer) { _ = try client.receive() }
        #expect(access(fixture.path, F_OK) != 0)
        fixture.stop()
    }

    @Test func halfClosedClientStillGetsItsAnswers() throws {
        let fixture = try SocketServerFixture(handler: ReversingHandler(batch: 3))
        defer { fixture.stop() }
        let client = try fixture.client()
        for i in 1...3 { try client.enqueue(.get(store: "s", key: "k\(i)"), id: UInt32(i)) }
        try client.flush()
        client.shutdownWrite()
        var ids: [UInt32] = []
        for _ in 1...3 {
            guard case .response(let id, _, .value) = try client.receive() else {
                Issue.record("expected a value")
                return
            }
            ids.append(id)
        }
        #expect(ids == [3, 2, 1])
        #expect(throws: SocketClientError.closedByPeer) { _ = try client.receive() }
    }

    @Test func lateRepliesAfterTheClientLeftAreDropped() throws {
        let handler = ReversingHandler(batch: 2)
        let fixture = try SocketServerFixture(handler: handler)
        defer { fixture.stop() }
        let leaving = try fixture.client()
        try leaving.enqueue(.get(store: "s", key: "a"), id: 1)
        try leaving.flush()
        leaving.close()
        // The second get completes the batch: both replies fire, one for a closed connection.
        let staying = try fixture.client()
        #expect(try staying.request(.get(store: "s", key: "b")) == .value(json: Array("b".utf8)))
        #expect(try staying.request(.ping) == .pong)
    }

    @Test func clientTimesOutWhenNoAnswerComes() throws {
        let fixture = try SocketServerFixture(handler: ReversingHandler(batch: 1_000))
        defer { fixture.stop() }
        let client = try SocketClient(path: fixture.path, timeoutMilliseconds: 100)
        #expect(throws: SocketClientError.timedOut(milliseconds: 100)) {
            _ = try client.request(.get(store: "s", key: "never"))
        }
    }

    @Test func probeOfAMissingSocketFailsFast() {
        #expect {
            _ = try SocketClient(path: "/tmp/k8sm-does-not-exist/ingestor.sock", timeoutMilliseconds: 100)
        } throws: { error in
            guard case SocketClientError.connectFailed = error else { return false }
            return true
        }
    }
}
