// Blocking client of the ingestor socket (POSIX, with timeouts): probes, benchmarks, tests.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a client call failed.
package enum SocketClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case connectFailed(SocketSystemError)
    case io(SocketSystemError)
    case timedOut(milliseconds: Int)
    case closedByPeer
    case protocolError(SocketProtocolError)
    /// A response whose id matches no request of `request(_:)`.
    case unexpectedFrame(String)

    package var description: String {
        switch self {
        case .connectFailed(let e): "cannot connect: \(e)"
        case .io(let e): "socket error: \(e)"
        case .timedOut(let ms): "no answer within \(ms) ms"
        case .closedByPeer: "connection closed by the ingestor"
        case .protocolError(let e): "protocol error: \(e)"
        case .unexpectedFrame(let s): "unexpected frame: \(s)"
        }
    }
}

/// A blocking connection to the ingestor socket. Not thread-safe: one thread uses it at a time.
/// Either `request(_:)` (one at a time), or pipelining with `enqueue` + `flush` + `receive`.
package final class SocketClient {
    package let path: String
    /// Deadline of each call (connect is immediate for Unix sockets).
    package var timeoutMilliseconds: Int
    private var fd: Int32
    private var decoder = FrameDecoder()
    private let encoder = FrameEncoder()
    private var output: [UInt8] = []
    private var ready: [SocketFrame] = []
    private var readyHead = 0
    private var nextId: UInt32 = 1
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Connects to `path`; `timeoutMilliseconds` bounds every later call.
    package init(path: String, timeoutMilliseconds: Int = 2000) throws(SocketClientError) {
        self.path = path
        self.timeoutMilliseconds = timeoutMilliseconds
        do {
            fd = try UnixDomainSocket.connect(path: path)
            try UnixDomainSocket.setNonBlocking(fd, path: path)
        } catch {
            throw .connectFailed(error)
        }
    }

    deinit {
        if fd >= 0 { UnixDomainSocket.close(fd) }
    }

    package func close() {
        if fd >= 0 { UnixDomainSocket.close(fd) }
        fd = -1
    }

    /// Shuts the writing side (the server answers what is in flight, then closes).
    package func shutdownWrite() {
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Sends one request and waits for its answer. Late answers to earlier requests (e.g. ones that
    /// timed out) are skipped.
    package func request(_ request: SocketRequest) throws(SocketClientError) -> SocketResponse {
        let id = nextRequestId()
        try enqueue(request, id: id)
        try flush()
        while true {
            let frame = try receive()
            switch frame {
            case .response(id, _, let response): return response
            case .response(let other, _, _) where other < id: continue
            default: throw .unexpectedFrame("\(frame) while waiting for id \(id)")
            }
        }
    }

    /// A fresh request id (wraps around).
    package func nextRequestId() -> UInt32 {
        defer { nextId &+= 1 }
        return nextId
    }

    /// Buffers a request; `flush()` sends what is buffered.
    package func enqueue(_ request: SocketRequest, id: UInt32) throws(SocketClientError) {
        do {
            try encoder.appendRequest(request, id: id, to: &output)
        } catch {
            throw .protocolError(error)
        }
    }

    /// Buffers raw bytes (tests: garbage, oversized prefixes).
    package func enqueueRaw(_ bytes: [UInt8]) {
        output += bytes
    }

    /// Writes everything buffered, waiting for the socket as needed (bounded by the timeout).
    package func flush() throws(SocketClientError) {
        let deadline = Self.now() + timeoutMilliseconds
        var offset = 0
        defer { output.removeAll(keepingCapacity: output.capacity <= 1 << 20) }
        while offset < output.count {
            let written: Int
            do {
                written = try output.withUnsafeBytes { raw in
                    Result { () throws(SocketSystemError) in
                        try UnixDomainSocket.send(fd, UnsafeRawBufferPointer(rebasing: raw[offset...]))
                    }
                }.get()
            } catch {
                if error.code == EPIPE || error.code == ECONNRESET { throw .closedByPeer }
                throw .io(error)
            }
            offset += written
            if written == 0 { try waitFor(write: true, deadline: deadline) }
        }
    }

    /// Frames already read and decoded, returned by `receive()` without waiting.
    package var bufferedFrameCount: Int { ready.count - readyHead }

    /// The next frame from the ingestor, in arrival order (not necessarily request order).
    package func receive() throws(SocketClientError) -> SocketFrame {
        let deadline = Self.now() + timeoutMilliseconds
        while readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
            let n: Int?
            do {
                n = try readBuffer.withUnsafeMutableBytes { raw in
                    Result { () throws(SocketSystemError) in try UnixDomainSocket.receive(fd, into: raw) }
                }.get()
            } catch {
                if error.code == ECONNRESET { throw .closedByPeer }
                throw .io(error)
            }
            guard let n else {
                try waitFor(write: false, deadline: deadline)
                continue
            }
            if n == 0 { throw .closedByPeer }
            do {
                ready += try decoder.feed(readBuffer[0..<n])
            } catch {
                throw .protocolError(error)
            }
        }
        defer { readyHead += 1 }
        return ready[readyHead]
    }

    private func waitFor(write: Bool, deadline: Int) throws(SocketClientError) {
        let left = deadline - Self.now()
        guard left > 0 else { throw .timedOut(milliseconds: timeoutMilliseconds) }
        let isReady: Bool
        do {
            isReady = try UnixDomainSocket.wait(fd, forWrite: write, milliseconds: Int32(clamping: left))
        } catch {
            throw .io(error)
        }
        guard isReady else { throw .timedOut(milliseconds: timeoutMilliseconds) }
    }

    /// Monotonic milliseconds.
    private static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }
}
