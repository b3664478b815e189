import Logging
// Confluent Schema Registry client (registry mode): registers our six schemas and fetches
// writer schemas by id. Thread-safe (Sendable; the cache is behind a Mutex); every call blocks.
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A registry failure: not found (404), another HTTP status, or transport/protocol trouble.
struct RegistryError: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case notFound
        case status(Int)
        case transport
        case badResponse
    }

    var kind: Kind
    var message: String
    var description: String { message }

    var isNotFound: Bool { kind == .notFound }
    /// Worth retrying: transport trouble, 5xx, 408, 429.
    var isRetryable: Bool {
        switch kind {
        case .transport: true
        case .status(let s): s >= 500 || s == 408 || s == 429
        case .notFound, .badResponse: false
        }
    }
}

final class SchemaRegistryClient: Sendable {
    static let contentType = "application/vnd.schemaregistry.v1+json"

    let endpoint: HTTPEndpoint
    let timeoutMs: Int
    private let schemasById = Mutex<[Int32: String]>([:])

    /// - Parameter url: `schemaRegistry.url`, `http://host:port[/prefix]`.
    init(url: String, timeoutMs: Int = 5000) throws(RegistryError) {
        do {
            endpoint = try HTTPEndpoint(url: url)
        } catch {
            throw RegistryError(kind: .badResponse, message: "schemaRegistry.url: \(error)")
        }
        self.timeoutMs = timeoutMs
    }

    /// The subject of one of our schemas: `<inputTopic>-<full name>`.
    static func subject(inputTopic: String, kind: SchemaKind) -> String { "\(inputTopic)-\(kind.fullName)" }

    /// `POST /subjects/{subject}/versions` with `{"schema": "<schema JSON>"}`; returns the schema id.
    /// One attempt; see `registerAll` for retries.
    func register(subject: String, schema: String) throws(RegistryError) -> Int32 {
        let body = Array(#"{"schema":\#(JSONText.quote(schema))}"#.utf8)
        let response = try call("POST", "/subjects/\(percentEncode(subject))/versions", body: body)
        guard case .int(let id)? = try json(response)["id"], let id32 = Int32(exactly: id) else {
            throw RegistryError(kind: .badResponse, message: "registry answer to \(subject) has no integer 'id'")
        }
        schemasById.withLock { $0[id32] = schema }
        return id32
    }

    /// `GET /schemas/ids/{id}`: the schema JSON text of `id` (cached forever: ids are immutable).
    func schema(id: Int32) throws(RegistryError) -> String {
        if let cached = schemasById.withLock({ $0[id] }) { return cached }
        let response = try call("GET", "/schemas/ids/\(id)", body: nil)
        guard case .string(let text)? = try json(response)["schema"] else {
            throw RegistryError(kind: .badResponse, message: "registry answer for id \(id) has no 'schema' string")
        }
        schemasById.withLock { $0[id] = text }
        return text
    }

    /// Registers all six schemas of `schemaDir` under `<inputTopic>-<full name>`, retrying retryable
    /// failures with exponential back-off (`initialBackoffMs` doubling up to `maxBackoffMs`, at most
    /// `attempts` tries per subject). Returns the ids by short name (the `ids` of `EventCodec.init`).
    /// Blocks: call it at start-up before the consume loop runs.
    func registerAll(
        schemaDir: String, inputTopic: String, attempts: Int = 10, initialBackoffMs: Int = 200,
        maxBackoffMs: Int = 10_000, logger: Logger? = nil
    ) throws -> [String: Int32] {
        let texts = try SchemaFiles.load(dir: schemaDir)
        var ids: [String: Int32] = [:]
        for kind in SchemaKind.allCases {
            let subject = SchemaRegistryClient.subject(inputTopic: inputTopic, kind: kind)
            guard let text = texts[kind] else { continue }
            var backoff = max(1, initialBackoffMs)
            var attempt = 1
            while true {
                do {
                    let id = try register(subject: subject, schema: text)
                    ids[kind.rawValue] = id
                    logger?.info("registered schema", metadata: ["subject": "\(subject)", "id": "\(id)"])
                    break
                } catch {
                    guard error.isRetryable, attempt < attempts else {
                        throw RegistryError(
                            kind: error.kind,
                            message: "registering \(subject) at \(endpoint) failed after \(attempt) attempt(s): "
                                + error.message)
                    }
                    logger?.warning(
                        "schema registration failed, retrying",
                        metadata: [
                            "subject": "\(subject)", "attempt": "\(attempt)", "backoffMs": "\(backoff)",
                            "error": "\(error.message)",
                        ])
                    usleep(UInt32(min(backoff, 60_000)) * 1000)
                    backoff = min(backoff * 2, maxBackoffMs)
                    attempt += 1
                }
            }
        }
        return ids
    }

    private func call(_ method: String, _ path: String, body: [UInt8]?) throws(RegistryError) -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try RegistryHTTPClient.send(
                method, endpoint, path: path, body: body,
                contentType: body == nil ? nil : SchemaRegistryClient.contentType, timeoutMs: timeoutMs)
        } catch {
            throw RegistryError(kind: .transport, message: "\(method) \(endpoint)\(path): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            let detail = String(decoding: response.body.prefix(300), as: UTF8.self)
            throw RegistryError(
                kind: response.status == 404 ? .notFound : .status(response.status),
                message: "\(method) \(endpoint)\(path): HTTP \(response.status) \(detail)")
        }
        return response
    }

    private func json(_ response: HTTPResponse) throws(RegistryError) -> JSONValue {
        do {
            return try JSONParser.parse(response.body)
        } catch {
            throw RegistryError(kind: .badResponse, message: "registry answer is not JSON: \(error)")
        }
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    private func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + String(b >> 4, radix: 16, uppercase: true) + String(b & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
