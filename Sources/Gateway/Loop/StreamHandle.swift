// A connected libuv stream (TCP client socket or Unix pipe): reads into the loop buffer, ordered writes.
import CUV

/// Receives a stream's events on the loop thread.
protocol StreamHandleDelegate: AnyObject {
    /// Bytes just read; valid only during the call (the loop's shared read buffer).
    func streamDidRead(_ bytes: UnsafeRawBufferPointer)
    /// The peer closed (`error == nil`) or the stream failed; the owner should close it.
    func streamDidEnd(error: UVError?)
    /// Every queued byte has been handed to the kernel.
    func streamDidDrainWrites()
    /// The handle is closed and freed; no more callbacks.
    func streamDidClose()
}

/// One connected stream. Bound to its loop's thread. Writes are ordered: `write` first tries a
/// synchronous `uv_try_write`; what the kernel did not take is copied into an owned buffer and sent
/// with one `uv_write` (at most one in flight; later bytes queue behind it).
final class StreamHandle {
    enum Kind { case tcp, pipe }

    private let raw: UnsafeMutableRawPointer
    private let loop: EventLoop
    let kind: Kind
    /// The owner; cleared when the handle is closed.
    var delegate: (any StreamHandleDelegate)?
    private var writeRequest: UnsafeMutablePointer<uv_write_t>?
    /// Bytes being written by the in-flight uv_write.
    private var inFlight: UnsafeMutableRawBufferPointer?
    private var inFlightCount = 0
    /// Bytes waiting for the in-flight write to finish.
    private var queued: [UInt8] = []
    private(set) var isClosing = false
    private var reading = false

    private var stream: UnsafeMutablePointer<uv_stream_t> { raw.assumingMemoryBound(to: uv_stream_t.self) }
    private var handle: UnsafeMutablePointer<uv_handle_t> { raw.assumingMemoryBound(to: uv_handle_t.self) }

    /// True while bytes are waiting to be sent.
    var hasPendingWrites: Bool { inFlight != nil }

    /// Bytes accepted by `write` but not yet handed to the kernel.
    var pendingWriteBytes: Int { inFlight == nil ? 0 : inFlightCount + queued.count }

    fileprivate init(loop: EventLoop, kind: Kind) {
        self.loop = loop
        self.kind = kind
        let size = max(MemoryLayout<uv_tcp_t>.size, MemoryLayout<uv_pipe_t>.size)
        raw = .allocate(byteCount: size, alignment: 16)
        switch kind {
        case .tcp: uv_tcp_init(loop.uv, raw.assumingMemoryBound(to: uv_tcp_t.self))
        case .pipe: uv_pipe_init(loop.uv, raw.assumingMemoryBound(to: uv_pipe_t.self), 0)
        }
        // Released by the close callback.
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// A fresh TCP handle to accept into (Loop/ internal).
    static func makeTCP(loop: EventLoop) -> StreamHandle { StreamHandle(loop: loop, kind: .tcp) }

    /// Used by TCPListener to accept a pending connection into this handle.
    func accept(from server: UnsafeMutablePointer<uv_stream_t>) -> Int32 {
        uv_accept(server, stream)
    }

    func setNoDelay() {
        if kind == .tcp { uv_tcp_nodelay(raw.assumingMemoryBound(to: uv_tcp_t.self), 1) }
    }

    func startReading() {
        guard !reading, !isClosing else { return }
        reading = true
        uv_read_start(
            stream,
            { handle, _, buf in
                guard let handle, let buf, let data = handle.pointee.data else { return }
                let me = Unmanaged<StreamHandle>.fromOpaque(data).takeUnretainedValue()
                buf.pointee = uv_buf_init(
                    me.loop.readBuffer.baseAddress?.assumingMemoryBound(to: CChar.self),
                    UInt32(me.loop.readBuffer.count))
            },
            { stream, nread, _ in
                guard let stream, let data = stream.pointee.data else { return }
                let me = Unmanaged<StreamHandle>.fromOpaque(data).takeUnretainedValue()
                if nread > 0 {
                    me.delegate?.streamDidRead(UnsafeRawBufferPointer(rebasing: me.loop.readBuffer[0..<nread]))
                } else if nread < 0 {
                    me.stopReading()
                    let code = Int32(truncatingIfNeeded: nread)
                    me.delegate?.streamDidEnd(
                        error: code == Int32(UV_EOF.rawValue) ? nil : UVError(code: code, operation: "read"))
                }
            })
    }

    func stopReading() {
        guard reading, !isClosing else { return }
        reading = false
        uv_read_stop(stream)
    }

    /// Queues `bytes` for sending, in order. Returns false if the stream failed (the owner should close).
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !isClosing, bytes.count > 0 else { return !isClosing }
        if inFlight != nil {
            queued.append(contentsOf: bytes)
            return true
        }
        var buf = uv_buf_init(
            UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: CChar.self)),
            UInt32(bytes.count))
        let written = uv_try_write(stream, &buf, 1)
        var offset = 0
        if written >= 0 {
            offset = Int(written)
            if offset == bytes.count { return true }
        } else if written != Int32(UV_EAGAIN.rawValue) {
            return false
        }
        return startWrite(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
    }

    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write($0) }
    }

    private func startWrite(_ rest: UnsafeRawBufferPointer) -> Bool {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: rest.count, alignment: 1)
        copy.copyMemory(from: rest)
        inFlight = copy
        inFlightCount = rest.count
        let req: UnsafeMutablePointer<uv_write_t>
        if let existing = writeRequest {
            req = existing
        } else {
            req = .allocate(capacity: 1)
            writeRequest = req
        }
        req.pointee.data = handle.pointee.data
        var buf = uv_buf_init(copy.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(rest.count))
        let rc = uv_write(req, stream, &buf, 1) { req, status in
            guard let req, let data = req.pointee.data else { return }
            Unmanaged<StreamHandle>.fromOpaque(data).takeUnretainedValue().writeDone(status: status)
        }
        if rc < 0 {
            copy.deallocate()
            inFlight = nil
            return false
        }
        return true
    }

    private func writeDone(status: Int32) {
        inFlight?.deallocate()
        inFlight = nil
        if status < 0 || isClosing {
            queued.removeAll()
            if !isClosing { delegate?.streamDidEnd(error: UVError(code: status, operation: "write")) }
            return
        }
        if !queued.isEmpty {
            let next = queued
            queued.removeAll(keepingCapacity: true)
            let ok = next.withUnsafeBytes { startWrite($0) }
            if !ok { delegate?.streamDidEnd(error: UVError(code: -1, operation: "write")) }
            return
        }
        delegate?.streamDidDrainWrites()
    }

    /// Sends FIN after the queued writes (uv_shutdown); reading may continue until the peer closes.
    func shutdown() {
        guard !isClosing else { return }
        let req = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        if uv_shutdown(req, stream, { req, _ in req?.deallocate() }) < 0 { req.deallocate() }
    }

    /// Closes the socket (pending writes are abandoned); `streamDidClose` follows.
    func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(handle) { handle in
            guard let handle, let data = handle.pointee.data else { return }
            let me = Unmanaged<StreamHandle>.fromOpaque(data).takeRetainedValue()
            me.finishClose()
        }
    }

    private func finishClose() {
        // The in-flight write callback (ECANCELED) has run before the close callback.
        inFlight?.deallocate()
        inFlight = nil
        writeRequest?.deallocate()
        writeRequest = nil
        raw.deallocate()
        let owner = delegate
        delegate = nil
        owner?.streamDidClose()
    }

    /// Connects TCP to a numeric `host` (IPv4 or IPv6) and `port`; `completion` gets the stream or the error.
    static func connectTCP(
        loop: EventLoop, host: String, port: Int, completion: @escaping (Result<StreamHandle, UVError>) -> Void
    ) {
        var storage = sockaddr_storage()
        let rc = withUnsafeMutableBytes(of: &storage) { raw -> Int32 in
            if host.contains(":") {
                return uv_ip6_addr(host, Int32(port), raw.baseAddress?.assumingMemoryBound(to: sockaddr_in6.self))
            }
            return uv_ip4_addr(host, Int32(port), raw.baseAddress?.assumingMemoryBound(to: sockaddr_in.self))
        }
        guard rc == 0 else {
            completion(.failure(UVError(code: rc, operation: "address \(host)")))
            return
        }
        let stream = StreamHandle(loop: loop, kind: .tcp)
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(PendingConnect(stream, completion)).toOpaque()
        let started = withUnsafeBytes(of: &storage) { raw in
            uv_tcp_connect(
                req, stream.raw.assumingMemoryBound(to: uv_tcp_t.self),
                raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), connectDone)
        }
        if started < 0 {
            Unmanaged<PendingConnect>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            stream.close()
            completion(.failure(UVError(code: started, operation: "connect \(host):\(port)")))
        }
    }

    private final class PendingConnect {
        let stream: StreamHandle
        let completion: (Result<StreamHandle, UVError>) -> Void
        init(_ s: StreamHandle, _ c: @escaping (Result<StreamHandle, UVError>) -> Void) {
            stream = s
            completion = c
        }
    }

    private static let connectDone: uv_connect_cb = { req, status in
        guard let req, let data = req.pointee.data else { return }
        let pending = Unmanaged<PendingConnect>.fromOpaque(data).takeRetainedValue()
        req.deallocate()
        if status < 0 {
            pending.stream.close()
            pending.completion(.failure(UVError(code: status, operation: "connect")))
        } else {
            pending.completion(.success(pending.stream))
        }
    }

    /// Connects a Unix-domain pipe to `path`; `completion` gets the connected stream or the error.
    static func connectPipe(
        loop: EventLoop, path: String, completion: @escaping (Result<StreamHandle, UVError>) -> Void
    ) {
        let stream = StreamHandle(loop: loop, kind: .pipe)
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(PendingConnect(stream, completion)).toOpaque()
        uv_pipe_connect(req, stream.raw.assumingMemoryBound(to: uv_pipe_t.self), path, connectDone)
    }
}
