// A listening TCP socket (uv_tcp_t server) handing accepted connections to a Swift closure.
import CUV

/// Bound to its loop's thread. `onConnection` gets each accepted stream (or nil when accept failed).
final class TCPListener {
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private let loop: EventLoop
    private var onConnection: ((StreamHandle?) -> Void)?
    private var closed = false
    /// The port actually bound (useful with port 0).
    private(set) var port: Int = 0

    init(
        loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024,
        onConnection: @escaping (StreamHandle?) -> Void
    ) throws(UVError) {
        self.loop = loop
        self.onConnection = onConnection
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.uv, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do throws(UVError) {
            var storage = sockaddr_storage()
            try withUnsafeMutableBytes(of: &storage) { (raw) throws(UVError) in
                if host.contains(":") {
                    try UVError.check(
                        uv_ip6_addr(host, Int32(port), raw.baseAddress?.assumingMemoryBound(to: sockaddr_in6.self)),
                        "uv_ip6_addr \(host)")
                } else {
                    try UVError.check(
                        uv_ip4_addr(host, Int32(port), raw.baseAddress?.assumingMemoryBound(to: sockaddr_in.self)),
                        "uv_ip4_addr \(host)")
                }
                try UVError.check(
                    uv_tcp_bind(handle, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), 0),
                    "bind \(host):\(port)")
            }
            try UVError.check(
                uv_listen(streamPointer, backlog) { server, status in
                    guard let server, let data = server.pointee.data else { return }
                    Unmanaged<TCPListener>.fromOpaque(data).takeUnretainedValue().accept(status: status)
                }, "listen \(host):\(port)")
            var bound = sockaddr_storage()
            var length = Int32(MemoryLayout<sockaddr_storage>.size)
            withUnsafeMutableBytes(of: &bound) { raw in
                let sa = raw.baseAddress?.assumingMemoryBound(to: sockaddr.self)
                if uv_tcp_getsockname(handle, sa, &length) == 0, let sa {
                    if Int32(sa.pointee.sa_family) == AF_INET6 {
                        self.port = Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
                    } else {
                        self.port = Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
                    }
                }
            }
        } catch {
            close()
            throw error
        }
    }

    private var streamPointer: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
    }

    private func accept(status: Int32) {
        guard status >= 0, !closed else {
            onConnection?(nil)
            return
        }
        let client = StreamHandle.makeTCP(loop: loop)
        if client.accept(from: streamPointer) == 0 {
            onConnection?(client)
        } else {
            client.close()
            onConnection?(nil)
        }
    }

    /// Stops accepting; the socket is closed on the next loop iteration.
    func close() {
        guard !closed else { return }
        closed = true
        onConnection = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { raw in
            guard let raw, let data = raw.pointee.data else { return }
            Unmanaged<TCPListener>.fromOpaque(data).release()
            raw.deallocate()
        }
    }
}
