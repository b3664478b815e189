// The process's environment, stderr and small text files, without Foundation (config, secrets, logs).
#if canImport(Glibc)
    import Glibc
#endif

/// The process environment as a dictionary (what Foundation's ProcessInfo gives, without Foundation).
public enum ProcessEnvironment {
    public static func variables() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let eq = text.firstIndex(of: "=") {
                let name = String(text[..<eq])
                // The first definition wins, as getenv(3) does.
                if result[name] == nil { result[name] = String(text[text.index(after: eq)...]) }
            }
            entry += 1
        }
        return result
    }
}

/// Unbuffered writes to stderr (safe from any thread).
public enum StandardError {
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(2, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}

/// Whole small text files (config, secrets) read with open/read: no Foundation.
enum TextFile {
    /// The file's content (invalid UTF-8 repaired), or the errno text of the failure.
    static func read(_ path: String) -> Result<String, TextFileError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(TextFileError(errno: errno)) }
        defer { _ = Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(TextFileError(errno: errno))
            }
            bytes += chunk[0..<n]
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }
}

struct TextFileError: Error, CustomStringConvertible {
    let errno: Int32
    var description: String { strerror(errno).map { String(cString: $0) } ?? "errno \(errno)" }
}
