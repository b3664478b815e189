// Checks `run` makes before it joins its group: the state and socket directories are writable, and the state
// disk has room for the first writes. Each failure names the path and the config key, then the process exits.
import Logging
import Shared

#if canImport(Glibc)
    import Glibc
#endif

enum StartupChecks {
    /// sysexits EX_CANTCREAT: a directory the config names cannot be created or written.
    static let unwritableExitCode: Int32 = 73
    /// sysexits EX_IOERR: the state disk has no room for the stores' next writes.
    static let noSpaceExitCode: Int32 = 74

    struct Failure: Error, CustomStringConvertible {
        var key: String
        var path: String
        var operation: String
        var code: Int32
        var description: String {
            let reason = String(cString: strerror(code))
            return "\(key): cannot \(operation) \(path): \(reason) (errno \(code)); fix the directory's permissions, "
                + "mount it writable, or point \(key) elsewhere"
        }
    }

    /// `mkdir -p` of the state directory, then a probe file created and removed in it (the only test that
    /// also catches read-only mounts, ACLs and a missing capability alike).
    static func stateDirectory(_ path: String, key: String = "ingestor.stateDir") throws(Failure) {
        try makeDirectories(path, key: key)
        let probe = path + "/.k8s-micro-write-probe-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(key: key, path: path, operation: "create a file in", code: errno) }
        close(fd)
        unlink(probe)
    }

    /// The socket's directory must exist and be writable, or its nearest existing ancestor writable (the
    /// socket server creates the rest with its own mode and group).
    static func socketDirectory(of socket: String, key: String = "ingestor.socket") throws(Failure) {
        var dir = parent(of: socket)
        var info = stat()
        while stat(dir, &info) != 0 {
            guard errno == ENOENT, dir != "/" else {
                throw Failure(key: key, path: dir, operation: "inspect", code: errno)
            }
            dir = parent(of: dir)
        }
        guard access(dir, W_OK | X_OK) == 0 else {
            throw Failure(key: key, path: dir, operation: "create the socket in", code: errno)
        }
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func makeDirectories(_ path: String, key: String) throws(Failure) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o750) == 0 { continue }
            let code = errno
            var info = stat()
            if code == EEXIST, stat(current, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
            throw Failure(key: key, path: current, operation: "create the directory", code: code)
        }
    }
}
