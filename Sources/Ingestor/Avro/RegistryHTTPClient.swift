// Minimal blocking HTTP/1.1 client over POSIX sockets (plain http only) for the schema registry.
// One request per connection (Connection: close). Stateless: safe from any thread; calls block.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An `http://host[:port][/base]` endpoint.
struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int
    /// Path prefix without trailing slash ("" for the root).
    var basePath: String

    var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(basePath)" }

    /// Parses `http://host[:port][/path]` (IPv6 hosts in brackets). https is not supported.
    init(url: String) throws(HTTPClientError) {
        guard url.hasPrefix("http://") else {
            throw HTTPClientError("only http:// URLs are supported, got '\(url)'")
        }
        var rest = Substring(url.dropFirst("http://".count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var host = String(rest)
        var port = 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw HTTPClientError("bad IPv6 host in '\(url)'") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw HTTPClientError("bad port in '\(url)'") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw HTTPClientError("bad port in '\(url)'") }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw HTTPClientError("bad host/port in '\(url)'") }
        self.host = host
        self.port = port
        self.basePath = path
    }
}

/// A transport or protocol failure (connect, timeout, malformed response).
struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
    init(_ message: String) { self.message = message }
}

/// A complete HTTP response.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// First header with this name (case-insensitive).
    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}

enum RegistryHTTPClient {
    /// Upper bound of a response we accept.
    static let maxResponseBytes = 16 << 20

    /// Performs one request and reads the whole response. `path` is appended to the endpoint's base path.
    static func send(
        _ method: String, _ endpoint: HTTPEndpoint, path: String, body: [UInt8]? = nil,
        contentType: String? = nil, accept: String = "application/vnd.schemaregistry.v1+json, application/json",
        timeoutMs: Int = 5000
    ) throws(HTTPClientError) -> HTTPResponse {
        let fd = try connect(endpoint, timeoutMs: timeoutMs)
        defer { close(fd) }
        var head = "\(method) \(endpoint.basePath)\(path) HTTP/1.1\r\n"
        head += "Host: \(endpoint.host):\(endpoint.port)\r\n"
        head += "Accept: \(accept)\r\n"
        head += "User-Agent: k8s-micro-ingestor\r\n"
        head += "Connection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var request = Array(head.utf8)
        if let body { request += body }
        try writeAll(fd, request)
        let raw = try readAll(fd)
        return try parse(raw)
    }

    private static func connect(_ endpoint: HTTPEndpoint, timeoutMs: Int) throws(HTTPClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard rc == 0, let first = list else {
            let why = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
            throw HTTPClientError("cannot resolve \(endpoint.host): \(why)")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            #if canImport(Glibc)
                let type = ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue)
            #else
                let type = ai.pointee.ai_socktype
            #endif
            let fd = socket(ai.pointee.ai_family, type, ai.pointee.ai_protocol)
            if fd < 0 {
                lastError = String(cString: strerror(errno))
                continue
            }
            // Linux applies SO_SNDTIMEO to connect() too.
            var tv = timeval(tv_sec: .init(timeoutMs / 1000), tv_usec: .init(timeoutMs % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if sysConnect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            lastError = String(cString: strerror(errno))
            close(fd)
        }
        throw HTTPClientError("cannot connect to \(endpoint): \(lastError)")
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                sysSend(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw HTTPClientError("send failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    private static func readAll(_ fd: Int32) throws(HTTPClientError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress, raw.count, 0) }
            if n == 0 { return out }
            if n < 0 {
                if errno == EINTR { continue }
                let why = errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : String(cString: strerror(errno))
                throw HTTPClientError("receive failed: \(why)")
            }
            out += chunk[0..<n]
            guard out.count <= maxResponseBytes else { throw HTTPClientError("response larger than 16 MiB") }
        }
    }

    /// Parses a complete response (status line, headers, Content-Length / chunked / to-EOF body).
    static func parse(_ raw: [UInt8]) throws(HTTPClientError) -> HTTPResponse {
        guard let headerEnd = find(raw, [13, 10, 13, 10], from: 0) else {
            throw HTTPClientError("incomplete HTTP response (\(raw.count) bytes)")
        }
        let headText = String(decoding: raw[0..<headerEnd], as: UTF8.self)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw HTTPClientError("empty HTTP response") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError("bad status line '\(statusLine.prefix(80))'")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw HTTPClientError("bad header line") }
            let name = String(line[..<colon]).trimmingSpaces
            let value = String(line[line.index(after: colon)...]).trimmingSpaces
            headers.append((name, value))
        }
        var response = HTTPResponse(status: status, headers: headers, body: [])
        let bodyStart = headerEnd + 4
        if let te = response.header("Transfer-Encoding"), te.lowercased().contains("chunked") {
            response.body = try dechunk(raw, from: bodyStart)
        } else if let cl = response.header("Content-Length") {
            guard let length = Int(cl), length >= 0 else { throw HTTPClientError("bad Content-Length '\(cl)'") }
            guard raw.count - bodyStart >= length else {
                throw HTTPClientError("body truncated: \(raw.count - bodyStart) of \(length) bytes")
            }
            response.body = Array(raw[bodyStart..<(bodyStart + length)])
        } else {
            response.body = Array(raw[bodyStart...])
        }
        return response
    }

    private static func dechunk(_ raw: [UInt8], from start: Int) throws(HTTPClientError) -> [UInt8] {
        var body: [UInt8] = []
        var pos = start
        while true {
            guard let lineEnd = find(raw, [13, 10], from: pos) else { throw HTTPClientError("truncated chunk size") }
            let sizeText = String(decoding: raw[pos..<lineEnd], as: UTF8.self)
            let hexPart = sizeText.split(separator: ";").first.map(String.init)?.trimmingSpaces ?? ""
            guard let size = Int(hexPart, radix: 16), size >= 0 else { throw HTTPClientError("bad chunk size") }
            pos = lineEnd + 2
            if size == 0 { return body }
            guard raw.count - pos >= size + 2 else { throw HTTPClientError("truncated chunk") }
            body += raw[pos..<(pos + size)]
            pos += size + 2
        }
    }

    private static func find(_ haystack: [UInt8], _ needle: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var i = start
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] {
                var match = true
                for j in 1..<needle.count where haystack[i + j] != needle[j] {
                    match = false
                    break
                }
                if match { return i }
            }
            i += 1
        }
        return nil
    }
}

#if canImport(Glibc)
    private let sysSend = Glibc.send
    private let sysConnect = Glibc.connect
#else
    private let sysSend = Darwin.send
    private let sysConnect = Darwin.connect
#endif

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
