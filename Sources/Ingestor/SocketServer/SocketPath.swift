// Prepares the socket path at start-up: parent directory, stale file from a crash, mode and group.
import Logging
import Shared

#if canImport(Glibc)
    import Glibc
#endif

/// File-system side of the listening socket. Called once from `SocketServer.start()`.
enum SocketPath {
    /// Identity of the socket file we bound, so that stop only unlinks our own file.
    struct FileIdentity: Equatable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// Creates the parent directory, removes a stale socket (nobody answers it), refuses to start
    /// if another process answers, binds, sets mode 0660 (and the group). Returns the listening fd.
    static func bindListener(
        path: String, group: Int?, logger: Logger
    ) throws(SocketServerError) -> (fd: Int32, identity: FileIdentity?) {
        try createParentDirectory(of: path, group: group, logger: logger)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            do {
                let fd = try UnixDomainSocket.connect(path: path)
                UnixDomainSocket.close(fd)
                throw SocketServerError.alreadyServed(path: path)
            } catch let error as SocketSystemError where error.isConnectionRefused {
                logger.warning("removing stale socket file from a previous run", metadata: ["path": "\(path)"])
                guard unlink(path) == 0 || errno == ENOENT else {
                    throw .system(SocketSystemError("unlink", path: path))
                }
            } catch let error as SocketSystemError where error.isNotFound {
                // Removed meanwhile: nothing to do.
            } catch let error as SocketServerError {
                throw error
            } catch {
                throw .system(error as? SocketSystemError ?? SocketSystemError("connect", path: path))
            }
        }
        let fd: Int32
        do {
            fd = try UnixDomainSocket.listen(path: path)
        } catch {
            throw .system(error)
        }
        // Connections before chmod are possible but harmless: peers are checked with SO_PEERCRED.
        guard chmod(path, 0o660) == 0 else {
            let error = SocketSystemError("chmod 0660", path: path)
            UnixDomainSocket.close(fd)
            _ = unlink(path)
            throw .system(error)
        }
        if let group, chown(path, uid_t.max, gid_t(group)) != 0 {
            logger.warning(
                "cannot give the socket to ingestor.socketGid",
                metadata: ["path": "\(path)", "gid": "\(group)", "error": "\(SocketSystemError("chown", path: path))"])
        }
        return (fd, identity(of: path))
    }

    /// Unlinks the socket file if it is still the one we bound (a new ingestor may have replaced it).
    static func removeIfOurs(path: String, identity: FileIdentity?) {
        guard let identity, let current = Self.identity(of: path), current == identity else { return }
        _ = unlink(path)
    }

    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// `mkdir -p` of the parent directory (mode 0770 before umask; group set when configured).
    private static func createParentDirectory(of path: String, group: Int?, logger: Logger) throws(SocketServerError) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if components.first == "" { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            var info = stat()
            if stat(current, &info) == 0 { continue }
            guard mkdir(current, 0o770) == 0 || errno == EEXIST else {
                throw .system(SocketSystemError("mkdir", path: current))
            }
            logger.info("created socket directory", metadata: ["path": "\(current)"])
            if let group { _ = chown(current, uid_t.max, gid_t(group)) }
        }
    }
}
