// An HTTP response as handlers build it, and its serialisation into one preassembled byte buffer.

import Shared

/// A response. Value type; any thread. `body` for HEAD is dropped at encoding time.
struct HTTPResponse: Sendable {
    var status: Int
    var contentType: String?
    /// Extra header fields (e.g. Allow, Retry-After).
    var headers: [(String, String)]
    var body: [UInt8]
    /// Close the connection after this response (errors that leave the stream in an unknown state).
    var close: Bool

    init(
        status: Int, contentType: String? = nil, headers: [(String, String)] = [], body: [UInt8] = [],
        close: Bool = false
    ) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
        self.close = close
    }

    static let textPlain = "text/plain; charset=utf-8"
    static let json = "application/json"

    static func text(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: textPlain, body: Array(text.utf8))
    }

    static func json(_ json: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: Self.json, body: Array(json.utf8))
    }

    static func json(bytes: [UInt8], status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: Self.json, body: bytes)
    }

    /// The API's error shape: `{"error":"<code>","message":"..."}`.
    static func error(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = [])
        -> HTTPResponse
    {
        var r = HTTPResponse.json(JSONText.error(code: code, message: message), status: status)
        r.headers = headers
        return r
    }
}

/// Serialises responses. Stateless; any thread.
enum ResponseEncoder {
    /// Appends the status line, headers and body of `response` to `out`.
    /// - Parameters:
    ///   - keepAlive: false adds `Connection: close`.
    ///   - http10KeepAlive: an HTTP/1.0 client that asked for keep-alive gets `Connection: keep-alive`.
    ///   - omitBody: HEAD requests get the headers (with the body's Content-Length) only.
    static func encode(
        _ response: HTTPResponse, into out: inout [UInt8], keepAlive: Bool, http10KeepAlive: Bool = false,
        omitBody: Bool = false, date: [UInt8]
    ) {
        out.append(contentsOf: statusLine(response.status))
        out.append(contentsOf: date)
        if let type = response.contentType {
            out.append(contentsOf: "Content-Type: ".utf8)
            out.append(contentsOf: type.utf8)
            out.append(contentsOf: crlf)
        }
        out.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(response.body.count, to: &out)
        out.append(contentsOf: crlf)
        for (name, value) in response.headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: crlf)
        }
        if !keepAlive || response.close {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if http10KeepAlive {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: crlf)
        if !omitBody { out.append(contentsOf: response.body) }
    }

    static let crlf: [UInt8] = [13, 10]
    static let continueLine: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(48 + max(value, 0)))
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while n > 0 && count < buf.count {
                buf[buf.count - 1 - count] = UInt8(48 + n % 10)
                n /= 10
                count += 1
            }
            out.append(contentsOf: buf[(buf.count - count)...])
        }
    }

    /// Precomputed "HTTP/1.1 <code> <reason>\r\n" for the codes we use.
    private static let statusLines: [Int: [UInt8]] = {
        var lines: [Int: [UInt8]] = [:]
        for (code, reason) in reasons { lines[code] = Array("HTTP/1.1 \(code) \(reason)\r\n".utf8) }
        return lines
    }()

    static func statusLine(_ code: Int) -> [UInt8] {
        statusLines[code] ?? Array("HTTP/1.1 \(code) \(reason(code))\r\n".utf8)
    }

    static func reason(_ code: Int) -> String {
        reasons.first { $0.0 == code }?.1 ?? "Unknown"
    }

    /// Every status code of RFC 9110 (and 429/431 of RFC 6585) with its reason phrase.
    static let reasons: [(Int, String)] = [
        (100, "Continue"), (101, "Switching Protocols"), (200, "OK"), (201, "Created"), (202, "Accepted"),
        (203, "Non-Authoritative Information"), (204, "No Content"), (205, "Reset Content"),
        (206, "Partial Content"), (300, "Multiple Choices"), (301, "Moved Permanently"), (302, "Found"),
        (303, "See Other"), (304, "Not Modified"), (307, "Temporary Redirect"), (308, "Permanent Redirect"),
        (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"),
        (405, "Method Not Allowed"), (406, "Not Acceptable"), (407, "Proxy Authentication Required"),
        (408, "Request Timeout"), (409, "Conflict"), (410, "Gone"), (411, "Length Required"),
        (412, "Precondition Failed"), (413, "Content Too Large"), (414, "URI Too Long"),
        (415, "Unsupported Media Type"), (416, "Range Not Satisfiable"), (417, "Expectation Failed"),
        (421, "Misdirected Request"), (422, "Unprocessable Content"), (426, "Upgrade Required"),
        (428, "Precondition Required"), (429, "Too Many Requests"), (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"), (501, "Not Implemented"), (502, "Bad Gateway"),
        (503, "Service Unavailable"), (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"),
    ]
}
