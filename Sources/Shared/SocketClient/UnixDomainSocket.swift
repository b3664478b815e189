// POSIX Unix-domain stream socket calls shared by the ingestor's server and the blocking client.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A failed system call on a socket, with the path and errno to act on.
package struct SocketSystemError: Error, Sendable, Equatable, CustomStringConvertible {
    package var operation: String
    package var path: String
    package var code: Int32

    package init(_ operation: String, path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    package var description: String {
        let reason = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return "\(operation) \(path): \(reason) (errno \(code))"
    }

    package var isConnectionRefused: Bool { code == ECONNREFUSED }
    package var isNotFound: Bool { code == ENOENT }
}

/// Credentials of the process at the other end of a connected Unix socket (SO_PEERCRED).
package struct PeerCredentials: Sendable, Equatable {
    package var pid: Int32
    package var uid: UInt32
    package var gid: UInt32
}

/// Thin wrappers over socket(2) and friends for `AF_UNIX` stream sockets. File descriptors are plain
/// `Int32`s owned by the caller (close them with `UnixDomainSocket.close`).
package enum UnixDomainSocket {
    /// Longest socket path the kernel accepts (sun_path minus the terminating NUL).
    package static let maxPathLength = 107

    private static func withAddress<R>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R
    ) throws(SocketSystemError) -> R {
        let utf8 = Array(path.utf8)
        guard !utf8.isEmpty, utf8.count <= maxPathLength else {
            throw SocketSystemError("socket path too long (max \(maxPathLength) bytes)", path: path, code: ENAMETOOLONG)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: utf8)
            raw[utf8.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    private static func newSocket(_ path: String) throws(SocketSystemError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketSystemError("socket", path: path) }
        return fd
    }

    /// Connects (blocking connect; Unix-domain connects do not wait on the network). Returns the fd.
    package static func connect(path: String) throws(SocketSystemError) -> Int32 {
        let fd = try newSocket(path)
        let rc = try withAddress(path) { address, length in Glibc.connect(fd, address, length) }
        guard rc == 0 else {
            let error = SocketSystemError("connect", path: path)
            close(fd)
            throw error
        }
        return fd
    }

    /// Binds and listens at `path` (the caller has dealt with any existing file). Non-blocking fd.
    package static func listen(path: String, backlog: Int32 = 128) throws(SocketSystemError) -> Int32 {
        let fd = try newSocket(path)
        do throws(SocketSystemError) {
            let bound = try withAddress(path) { address, length in bind(fd, address, length) }
            guard bound == 0 else { throw SocketSystemError("bind", path: path) }
            guard Glibc.listen(fd, backlog) == 0 else { throw SocketSystemError("listen", path: path) }
            try setNonBlocking(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Accepts one pending connection as a non-blocking, close-on-exec fd; nil when none is pending.
    package static func accept(_ listener: Int32, path: String) throws(SocketSystemError) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                do throws(SocketSystemError) {
                    try setNonBlocking(fd, path: path)
                } catch {
                    close(fd)
                    throw error
                }
                return fd
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ECONNABORTED: return nil
            default: throw SocketSystemError("accept", path: path)
            }
        }
    }

    package static func setNonBlocking(_ fd: Int32, path: String) throws(SocketSystemError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SocketSystemError("fcntl(O_NONBLOCK)", path: path)
        }
    }

    /// SO_PEERCRED of a connected socket; nil if the kernel does not say.
    package static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (not imported: it needs _GNU_SOURCE).
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0, length == 12 else { return nil }
        return PeerCredentials(pid: raw.0, uid: raw.1, gid: raw.2)
    }

    /// Writes some bytes without SIGPIPE. Returns bytes written, 0 if it would block.
    package static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SocketSystemError) -> Int {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        while true {
            let n = Glibc.send(fd, base, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: throw SocketSystemError("send", path: "fd \(fd)")
            }
        }
    }

    /// Reads into `buffer`. Returns bytes read, 0 at end of stream, nil if it would block.
    package static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SocketSystemError)
        -> Int?
    {
        guard let base = buffer.baseAddress else { return nil }
        while true {
            let n = recv(fd, base, buffer.count, 0)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            default: throw SocketSystemError("recv", path: "fd \(fd)")
            }
        }
    }

    /// Waits until `fd` is readable (or writable); false on timeout. `milliseconds` < 0 waits forever.
    package static func wait(_ fd: Int32, forWrite: Bool, milliseconds: Int32) throws(SocketSystemError) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(forWrite ? POLLOUT : POLLIN), revents: 0)
        while true {
            let rc = poll(&entry, 1, milliseconds)
            if rc > 0 { return true }
            if rc == 0 { return false }
            if errno != EINTR { throw SocketSystemError("poll", path: "fd \(fd)") }
        }
    }

    package static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
