import Foundation
// Registry mode against an in-test Confluent-style schema registry (POSIX sockets on a thread):
// registration with retry, id learning, and evolved writer schemas fetched by id and resolved.
import Shared
import Synchronization
import Testing

@testable import Ingestor

#if canImport(Glibc)
    import Glibc
#endif

/// A tiny HTTP/1.1 server implementing POST /subjects/{subject}/versions and GET /schemas/ids/{id}.
/// Runs its accept loop on its own pthread; one request per connection.
final class FakeRegistry: @unchecked Sendable {
    struct State {
        var schemas: [Int32: String] = [:]
        var subjects: [String: Int32] = [:]
        var nextId: Int32 = 100
        var failuresLeft = 0
        var requests: [String] = []
        var contentTypes: [String] = []
    }

    let state = Mutex(State())
    private let listenFd: Int32
    let port: Int
    private var thread: pthread_t? = nil
    private let stopping = Atomic<Bool>(false)

    init(failFirst: Int = 0) throws {
        state.withLock { $0.failuresLeft = failFirst }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw HTTPClientError("bind/listen") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listenFd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let unmanaged = Unmanaged.passRetained(self)
        var tid = pthread_t()
        pthread_create(
            &tid, nil,
            { arg in
                guard let arg else { return nil }
                let server = Unmanaged<FakeRegistry>.fromOpaque(arg).takeRetainedValue()
                server.serve()
                return nil
            }, unmanaged.toOpaque())
        thread = tid
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Adds a schema under an id (as another producer would have registered it).
    func add(id: Int32, schema: String) { state.withLock { $0.schemas[id] = schema } }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        shutdown(listenFd, Int32(SHUT_RDWR))
        if let thread { pthread_join(thread, nil) }
        close(listenFd)
    }

    private func serve() {
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let client = accept(listenFd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(client)
            close(client)
        }
    }

    private func handle(_ fd: Int32) {
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        // Read until the header is complete and Content-Length bytes of body arrived.
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            data += buf[0..<n]
            let text = String(decoding: data, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let head = String(text[..<end.lowerBound])
            let bodyStart = text.utf8.distance(from: text.startIndex, to: end.upperBound)
            var contentLength = 0
            var contentType = ""
            for line in head.split(separator: "\r\n").dropFirst() {
                let lower = line.lowercased()
                if lower.hasPrefix("content-length:") { contentLength = Int(lower.dropFirst(15).trimmed) ?? 0 }
                if lower.hasPrefix("content-type:") { contentType = String(lower.dropFirst(13).trimmed) }
            }
            guard data.count - bodyStart >= contentLength else { continue }
            let body = Array(data[bodyStart..<(bodyStart + contentLength)])
            let requestLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
            let (status, answer) = route(requestLine, contentType: contentType, body: body)
            let response =
                "HTTP/1.1 \(status) X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
                + "Content-Length: \(answer.utf8.count)\r\nConnection: close\r\n\r\n\(answer)"
            let bytes = Array(response.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            return
        }
    }

    private func route(_ requestLine: String, contentType: String, body: [UInt8]) -> (Int, String) {
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2 else { return (400, "{}") }
        let method = String(parts[0])
        let path = String(parts[1])
        return state.withLock { s -> (Int, String) in
            s.requests.append("\(method) \(path)")
            if s.failuresLeft > 0 {
                s.failuresLeft -= 1
                return (503, #"{"error_code":50302,"message":"warming up"}"#)
            }
            if method == "POST", path.hasPrefix("/subjects/"), path.hasSuffix("/versions") {
                s.contentTypes.append(contentType)
                let subject = String(path.dropFirst("/subjects/".count).dropLast("/versions".count))
                guard let doc = try? JSONParser.parse(body), case .string(let schema)? = doc["schema"] else {
                    return (422, #"{"error_code":42201,"message":"Invalid schema"}"#)
                }
                if let existing = s.subjects[subject] { return (200, #"{"id":\#(existing)}"#) }
                let id = s.nextId
                s.nextId += 1
                s.subjects[subject] = id
                s.schemas[id] = schema
                return (200, #"{"id":\#(id)}"#)
            }
            if method == "GET", path.hasPrefix("/schemas/ids/"), let id = Int32(path.dropFirst("/schemas/ids/".count)) {
                guard let schema = s.schemas[id] else {
                    return (404, #"{"error_code":40403,"message":"Schema \#(id) not found"}"#)
                }
                return (200, #"{"schema":\#(JSONText.quote(schema))}"#)
            }
            return (404, #"{"error_code":404,"message":"HTTP 404 Not Found"}"#)
        }
    }
}

extension Substring {
    fileprivate var trimmed: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// Minimal Avro binary writer for hand-made writer payloads in tests.
enum AvroBytes {
    static func long(_ v: Int64) -> [UInt8] {
        var n = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        var out: [UInt8] = []
        while n & ~0x7F != 0 {
            out.append(UInt8(n & 0x7F) | 0x80)
            n >>= 7
        }
        out.append(UInt8(n))
        return out
    }

    static func string(_ s: String) -> [UInt8] { long(Int64(s.utf8.count)) + Array(s.utf8) }
}

@Suite(.serialized) struct AvroRegistryTests {
    @Test func registersAllSubjectsWithRetryAndLearnsIds() throws {
        let server = try FakeRegistry(failFirst: 2)
        defer { server.stop() }
        let client = try SchemaRegistryClient(url: server.url)
        let ids = try client.registerAll(
            schemaDir: AvroFixtures.schemaDir, inputTopic: "input", initialBackoffMs: 10, maxBackoffMs: 50)
        #expect(
            ids == [
                "Chaser": 100, "Aggregate": 101, "Bill": 102, "PaymentRequest": 103, "PaymentFailed": 104,
                "BillAggregate": 105,
            ])
        let requests = server.state.withLock { $0.requests }
        #expect(requests.count == 8)  // 2 failures + 6 registrations
        #expect(requests.last == "POST /subjects/input-com.polecatworks.billing.BillAggregate/versions")
        #expect(requests.contains("POST /subjects/input-com.polecatworks.chaser.Chaser/versions"))
        #expect(server.state.withLock { $0.contentTypes }.allSatisfy { $0 == "application/vnd.schemaregistry.v1+json" })
        // The registered text is our schema file.
        let chaserText = try client.schema(id: 100)
        #expect(chaserText.contains("\"previous\""))

        let codec = try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: ids, registry: client)
        let bytes = codec.encode(.chaser(AvroCodecTests.peacock))
        #expect(Array(bytes.prefix(5)) == [0, 0, 0, 0, 100])
        #expect(Array(bytes.dropFirst(5)) == AvroCodecTests.peacockPayload)
        #expect(try codec.decodeInput(bytes) == .chaser(AvroCodecTests.peacock))
    }

    @Test func registrationGivesUpOnClientErrorsAndUnreachable() throws {
        let server = try FakeRegistry()
        let port = server.port
        server.stop()
        let client = try SchemaRegistryClient(url: "http://127.0.0.1:\(port)", timeoutMs: 500)
        let start = ContinuousClock.now
        #expect(throws: (any Error).self) {
            _ = try client.registerAll(
                schemaDir: AvroFixtures.schemaDir, inputTopic: "t", attempts: 3, initialBackoffMs: 10)
        }
        // It gives up (3 attempts of 500 ms each, short back-off) instead of retrying forever: a generous
        // bound on "ends", not a speed figure.
        #expect(ContinuousClock.now - start < .seconds(60))
        #expect(throws: (any Error).self) { try SchemaRegistryClient(url: "https://example.com") }
    }

    @Test func evolvedWriterSchemasResolveIntoReaderTypes() throws {
        let server = try FakeRegistry()
        defer { server.stop() }
        let client = try SchemaRegistryClient(url: server.url)
        let ids = try client.registerAll(schemaDir: AvroFixtures.schemaDir, inputTopic: "input")
        let codec = try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: ids, registry: client)

        // Writer v2: an extra field, and no `previous` (reader default null); fields reordered.
        server.add(
            id: 500,
            schema: #"{"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"id","type":"string"},{"name":"name","type":"string"},"#
                + #"{"name":"colour","type":"string"},{"name":"sent","type":"long"},{"name":"ttl","type":"int"}]}"#)
        let v2 =
            AvroBytes.string("id9") + AvroBytes.string("Wren") + AvroBytes.string("red") + AvroBytes.long(77)
            + AvroBytes.long(5)
        #expect(
            try codec.decodeInput(AvroFixtures.frame(500, v2))
                == .chaser(Chaser(name: "Wren", id: "id9", sent: 77, ttl: 5, previous: nil)))

        // Writer v3: with previous set, plus an extra trailing field.
        server.add(
            id: 501,
            schema: #"{"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"name","type":"string"},{"name":"id","type":"string"},{"name":"sent","type":"long"},"#
                + #"{"name":"ttl","type":"long"},{"name":"previous","type":["null","long"],"default":null},"#
                + #"{"name":"hops","type":"long","default":0}]}"#)
        let v3 =
            AvroBytes.string("Kite") + AvroBytes.string("k") + AvroBytes.long(10) + AvroBytes.long(20)
            + [0x02] + AvroBytes.long(9) + AvroBytes.long(3)
        #expect(
            try codec.decodeInput(AvroFixtures.frame(501, v3))
                == .chaser(Chaser(name: "Kite", id: "k", sent: 10, ttl: 20, previous: 9)))
        // Cached: decoding again does not ask the registry again.
        let before = server.state.withLock { $0.requests.count }
        _ = try codec.decodeInput(AvroFixtures.frame(501, v3))
        #expect(server.state.withLock { $0.requests.count } == before)

        // An evolved Aggregate lacking `longest` decodes with the default.
        server.add(
            id: 502,
            schema: #"{"type":"record","name":"Aggregate","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"names","type":{"type":"array","items":"string"},"default":[]},"#
                + #"{"name":"count","type":"long"},{"name":"latest","type":["null","long"],"default":null}]}"#)
        let agg = [0x02] + AvroBytes.string("A") + [0x00] + AvroBytes.long(4) + [0x02] + AvroBytes.long(1000)
        #expect(
            try codec.decodeChaserAggregate(AvroFixtures.frame(502, agg))
                == ChaserAggregate(names: ["A"], count: 4, latest: 1000, longest: nil))
    }

    @Test func registryFailuresMapToReasons() throws {
        let server = try FakeRegistry()
        defer { server.stop() }
        let client = try SchemaRegistryClient(url: server.url)
        let ids = try client.registerAll(schemaDir: AvroFixtures.schemaDir, inputTopic: "input")
        let codec = try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: ids, registry: client)
        func reason(_ bytes: [UInt8]) -> String? {
            AvroFixtures.failure { () throws(DecodeFailure) in _ = try codec.decodeInput(bytes) }?.reason
        }
        // Not in the registry.
        #expect(reason(AvroFixtures.frame(999, [0])) == "unknown-schema-id")
        // Negative cache: no second GET for the same id right away.
        let before = server.state.withLock { $0.requests.count }
        #expect(reason(AvroFixtures.frame(999, [0])) == "unknown-schema-id")
        #expect(server.state.withLock { $0.requests.count } == before)
        // A foreign record type.
        server.add(id: 600, schema: #"{"type":"record","name":"Other","namespace":"x","fields":[]}"#)
        #expect(reason(AvroFixtures.frame(600, [])) == "wrong-type")
        // Incompatible: a required reader field missing without default.
        server.add(
            id: 601,
            schema: #"{"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"name","type":"string"}]}"#)
        #expect(reason(AvroFixtures.frame(601, AvroBytes.string("x"))) == "unknown-schema-id")
        // The registered aggregate id is wrong-type on the input.
        #expect(reason(codec.encode(ChaserAggregate())) == "wrong-type")
        // Garbage under an evolved schema is corrupt-avro.
        server.add(
            id: 602,
            schema: #"{"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"name","type":"string"},{"name":"id","type":"string"},{"name":"sent","type":"long"},"#
                + #"{"name":"ttl","type":"long"}]}"#)
        #expect(reason(AvroFixtures.frame(602, [0x0e, 0x41])) == "corrupt-avro")
    }

    @Test func httpResponseParsing() throws {
        let chunked = Array(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n3;x=y\r\n\":7\r\n1\r\n}\r\n0\r\n\r\n"
                .utf8)
        let r = try RegistryHTTPClient.parse(chunked)
        #expect(r.status == 200)
        #expect(String(decoding: r.body, as: UTF8.self) == #"{"id":7}"#)
        #expect(throws: HTTPClientError.self) { try RegistryHTTPClient.parse(Array("HTTP/1.1 200".utf8)) }
        #expect(throws: HTTPClientError.self) {
            try RegistryHTTPClient.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8))
        }
        #expect(throws: HTTPClientError.self) { try RegistryHTTPClient.parse(Array("garbage\r\n\r\n".utf8)) }
        let e = try HTTPEndpoint(url: "http://registry.local:8081/api/")
        #expect(e.host == "registry.local" && e.port == 8081 && e.basePath == "/api")
        let v6 = try HTTPEndpoint(url: "http://[::1]:9000")
        #expect(v6.host == "::1" && v6.port == 9000)
        #expect(try HTTPEndpoint(url: "http://h").port == 80)
    }
}
