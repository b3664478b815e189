// Incremental HTTP/1.x request parser over http_parser: the only file touching http_parser pointers.
import CHTTPParser

/// Why a request could not be parsed; the connection answers it and closes.
enum HTTPParseError: Error, Equatable, Sendable {
    /// Request target over the limit (431).
    case requestLineTooLong
    /// Header section over the limit (431).
    case headersTooLarge
    /// Body (declared or received) over the limit (413).
    case bodyTooLarge
    /// A method http_parser does not know (e.g. QUERY): answered 405 with the route's `Allow`
    /// when the target could be recovered from the request line.
    case invalidMethod(target: String?)
    /// Anything else malformed (400), with http_parser's description.
    case malformed(String)
}

/// Where the parser is inside the current request (drives the connection's timeouts).
enum HTTPParsePhase: Sendable {
    /// Between requests: no byte of the next request seen.
    case idle
    /// Inside the request line or headers.
    case head
    /// Headers done, body in progress.
    case body
}

/// One per connection; bound to that connection's (loop) thread. Feed bytes; collect `completed`.
final class HTTPRequestParser {
    private let parser: UnsafeMutablePointer<http_parser>
    private let settings: UnsafeMutablePointer<http_parser_settings>
    private let limits: HTTPLimits

    /// Requests completed by `feed`, in order; the owner removes them.
    var completed: [HTTPRequest] = []
    private(set) var phase: HTTPParsePhase = .idle
    /// Set when the current request's headers asked for `Expect: 100-continue`; the owner clears it.
    var continueRequested = false
    /// Set after an `Upgrade`/CONNECT request: what follows is not HTTP, stop parsing.
    private(set) var upgraded = false
    private(set) var failure: HTTPParseError?

    private var url: [UInt8] = []
    private var headers = HTTPHeaders()
    private var headerBytes = 0
    private var body: [UInt8] = []

    /// Bytes read but not parsed yet: parsing pauses once `limits.maxPipelined` requests wait in
    /// `completed`, so a pipelining flood holds raw bytes (at most a few reads), not thousands of requests.
    private var held: [UInt8] = []
    /// Parsing paused at the pipelining bound; `resume()` goes on once the owner took requests.
    var hasHeldBytes: Bool { !held.isEmpty }

    /// Memory held for the request in progress (target, headers, body) and unparsed bytes.
    var bufferedBytes: Int { url.capacity + headers.storage.capacity + body.capacity + held.capacity }

    init(limits: HTTPLimits) {
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        settings = .allocate(capacity: 1)
        http_parser_settings_init(settings)
        settings.pointee.on_message_begin = { p in HTTPRequestParser.me(p)?.messageBegin() ?? -1 }
        settings.pointee.on_url = { p, at, n in HTTPRequestParser.me(p)?.onURL(at, n) ?? -1 }
        settings.pointee.on_header_field = { p, at, n in HTTPRequestParser.me(p)?.onHeaderField(at, n) ?? -1 }
        settings.pointee.on_header_value = { p, at, n in HTTPRequestParser.me(p)?.onHeaderValue(at, n) ?? -1 }
        settings.pointee.on_headers_complete = { p in HTTPRequestParser.me(p)?.headersComplete() ?? -1 }
        settings.pointee.on_body = { p, at, n in HTTPRequestParser.me(p)?.onBody(at, n) ?? -1 }
        settings.pointee.on_message_complete = { p in HTTPRequestParser.me(p)?.messageComplete() ?? -1 }
        // Unretained: the parser never outlives its owner (freed in deinit).
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
        settings.deallocate()
    }

    private static func me(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser? {
        guard let data = p?.pointee.data else { return nil }
        return Unmanaged<HTTPRequestParser>.fromOpaque(data).takeUnretainedValue()
    }

    /// Parses `bytes`; completed requests are appended to `completed`. Returns the error that ends
    /// this connection's parsing, if any (also kept in `failure`). After an upgrade, input is ignored.
    @discardableResult
    func feed(_ bytes: UnsafeRawBufferPointer) -> HTTPParseError? {
        if let failure { return failure }
        guard !upgraded, bytes.count > 0 else { return nil }
        if !held.isEmpty {
            held.append(contentsOf: bytes)
            return resume()
        }
        return execute(bytes)
    }

    /// Parses held bytes once `completed` has room again; returns like `feed`.
    @discardableResult
    func resume() -> HTTPParseError? {
        if let failure { return failure }
        guard !held.isEmpty, !upgraded, completed.count < limits.maxPipelined else { return nil }
        let bytes = held
        held = []
        return bytes.withUnsafeBytes { execute($0) }
    }

    private func execute(_ bytes: UnsafeRawBufferPointer) -> HTTPParseError? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        let consumed = http_parser_execute(
            parser, settings, base.assumingMemoryBound(to: CChar.self), bytes.count)
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if errno == HPE_PAUSED {
            http_parser_pause(parser, 0)
            held.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[min(consumed, bytes.count)...]))
            return nil
        }
        if errno != HPE_OK {
            let error = failure ?? Self.map(errno, bytes: bytes, at: consumed)
            failure = error
            return error
        }
        if parser.pointee.upgrade != 0 {
            upgraded = true
            if !completed.isEmpty { completed[completed.count - 1].keepAlive = false }
        }
        return nil
    }

    /// Feeds a string (tests).
    @discardableResult
    func feed(_ text: String) -> HTTPParseError? {
        var copy = text
        return copy.withUTF8 { feed(UnsafeRawBufferPointer($0)) }
    }

    private static func map(_ errno: http_errno, bytes: UnsafeRawBufferPointer, at offset: Int) -> HTTPParseError {
        switch errno {
        case HPE_INVALID_METHOD:
            return .invalidMethod(target: recoverTarget(bytes, from: offset))
        case HPE_HEADER_OVERFLOW:
            return .headersTooLarge
        default:
            let description = http_errno_description(errno).map { String(cString: $0) } ?? "malformed request"
            return .malformed(description)
        }
    }

    /// After an unknown method: the target of the request line (method, SP, target, SP), if it is
    /// entirely in `bytes`.
    static func recoverTarget(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> String? {
        var i = min(max(offset, 0), bytes.count)
        while i < bytes.count, bytes[i] != 0x20 {
            if bytes[i] == 0x0D || bytes[i] == 0x0A { return nil }
            i += 1
        }
        guard i < bytes.count else { return nil }
        let start = i + 1
        var end = start
        while end < bytes.count, bytes[end] != 0x20, bytes[end] != 0x0D, bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count, end > start else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    // MARK: callbacks (0 = continue, nonzero = error)

    private func messageBegin() -> Int32 {
        phase = .head
        url.removeAll(keepingCapacity: true)
        headers = HTTPHeaders()
        headerBytes = 0
        body = []
        return 0
    }

    private func onURL(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        guard let at else { return 0 }
        if url.count + n > limits.maxRequestLine {
            failure = .requestLineTooLong
            return 1
        }
        url.append(contentsOf: UnsafeRawBufferPointer(start: at, count: n))
        return 0
    }

    private func onHeaderField(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        guard let at else { return 0 }
        let before = headers.count
        headers.appendName(UnsafeRawBufferPointer(start: at, count: n))
        let startsField = headers.count > before
        // ": " and CRLF count too, once per field (a name split across reads arrives in pieces).
        headerBytes += n + (startsField ? 4 : 0)
        if headerBytes > limits.maxHeaderBytes {
            failure = .headersTooLarge
            return 1
        }
        if startsField, headers.count > limits.maxHeaderCount {
            failure = .headersTooLarge
            return 1
        }
        return 0
    }

    private func onHeaderValue(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        headerBytes += n
        if headerBytes > limits.maxHeaderBytes {
            failure = .headersTooLarge
            return 1
        }
        if let at {
            headers.appendValue(UnsafeRawBufferPointer(start: at, count: n))
        } else {
            headers.appendValue(EmptyCollection<UInt8>())
        }
        return 0
    }

    private func headersComplete() -> Int32 {
        phase = .body
        let length = parser.pointee.content_length
        // ULLONG_MAX means "no Content-Length".
        if length != UInt64.max, length > UInt64(limits.maxBody) {
            failure = .bodyTooLarge
            return -1
        }
        if parser.pointee.http_major != 1 {
            failure = .malformed("unsupported HTTP version")
            return -1
        }
        if parser.pointee.http_minor >= 1, !headers.contains("host") {
            failure = .malformed("missing Host header")
            return -1
        }
        if length != UInt64.max, length > 0 {
            body.reserveCapacity(Int(length))
        }
        if headers.has("expect", value: "100-continue") { continueRequested = true }
        return 0
    }

    private func onBody(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        guard let at else { return 0 }
        if body.count + n > limits.maxBody {
            failure = .bodyTooLarge
            return 1
        }
        body.append(contentsOf: UnsafeRawBufferPointer(start: at, count: n))
        return 0
    }

    private func messageComplete() -> Int32 {
        let method = http_method(rawValue: parser.pointee.method)
        let name = http_method_str(method).map { String(cString: $0) } ?? "UNKNOWN"
        completed.append(
            HTTPRequest(
                method: HTTPMethod(name),
                target: String(decoding: url, as: UTF8.self),
                headers: headers,
                body: body,
                versionMinor: Int(parser.pointee.http_minor),
                keepAlive: http_should_keep_alive(parser) != 0))
        headers = HTTPHeaders()
        body = []
        url.removeAll(keepingCapacity: true)
        phase = .idle
        continueRequested = false
        if completed.count >= limits.maxPipelined { http_parser_pause(parser, 1) }
        return 0
    }
}

/// A response read from another pod's gateway (forwarding).
struct UpstreamResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    var keepAlive: Bool
}

/// Incremental HTTP/1.1 response parser (forwarding client). One per upstream connection; loop thread.
final class HTTPResponseParser {
    private let parser: UnsafeMutablePointer<http_parser>
    private let settings: UnsafeMutablePointer<http_parser_settings>
    private let maxBody: Int
    private var headers = HTTPHeaders()
    private var body: [UInt8] = []
    private var tooLarge = false
    /// Responses completed by `feed`, in order; the owner removes them.
    var completed: [UpstreamResponse] = []

    init(maxBody: Int = 4 << 20) {
        self.maxBody = maxBody
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_RESPONSE)
        settings = .allocate(capacity: 1)
        http_parser_settings_init(settings)
        settings.pointee.on_message_begin = { p in HTTPResponseParser.me(p)?.begin() ?? -1 }
        settings.pointee.on_header_field = { p, at, n in
            guard let me = HTTPResponseParser.me(p), let at else { return 0 }
            me.headers.appendName(UnsafeRawBufferPointer(start: at, count: n))
            return 0
        }
        settings.pointee.on_header_value = { p, at, n in
            guard let me = HTTPResponseParser.me(p) else { return 0 }
            if let at {
                me.headers.appendValue(UnsafeRawBufferPointer(start: at, count: n))
            } else {
                me.headers.appendValue(EmptyCollection<UInt8>())
            }
            return 0
        }
        settings.pointee.on_body = { p, at, n in
            guard let me = HTTPResponseParser.me(p), let at else { return 0 }
            if me.body.count + n > me.maxBody {
                me.tooLarge = true
                return 1
            }
            me.body.append(contentsOf: UnsafeRawBufferPointer(start: at, count: n))
            return 0
        }
        settings.pointee.on_message_complete = { p in HTTPResponseParser.me(p)?.complete() ?? -1 }
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
        settings.deallocate()
    }

    private static func me(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPResponseParser? {
        guard let data = p?.pointee.data else { return nil }
        return Unmanaged<HTTPResponseParser>.fromOpaque(data).takeUnretainedValue()
    }

    private func begin() -> Int32 {
        headers = HTTPHeaders()
        body = []
        return 0
    }

    private func complete() -> Int32 {
        completed.append(
            UpstreamResponse(
                status: Int(parser.pointee.status_code), headers: headers, body: body,
                keepAlive: http_should_keep_alive(parser) != 0))
        return 0
    }

    /// Parses `bytes`; returns an error description when the stream is not a valid response.
    func feed(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        http_parser_execute(parser, settings, base.assumingMemoryBound(to: CChar.self), bytes.count)
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if errno == HPE_OK { return nil }
        if tooLarge { return "upstream body over \(maxBody) bytes" }
        return http_errno_description(errno).map { String(cString: $0) } ?? "malformed upstream response"
    }

    /// The peer closed: completes a response delimited by end of stream, if any.
    func finish() -> String? {
        http_parser_execute(parser, settings, nil, 0)
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        return errno == HPE_OK ? nil : "truncated upstream response"
    }
}
