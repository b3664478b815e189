// The start of each process without ArgumentParser or service-lifecycle: load config, log, metrics, print-config.
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Which process is starting; decides labels in logs and metrics.
public enum ProcessRole: String, Sendable {
    case ingestor
    case gateway
}

public enum ProcessStart {
    /// Exit status for an invalid configuration (sysexits EX_CONFIG).
    public static let configExitCode: Int32 = 78

    public enum Outcome: Sendable {
        /// Run with this config (logging and metrics are bootstrapped).
        case run(AppConfig)
        /// Exit now with this status (--print-config done, or a config error written to stderr).
        case exit(Int32)
    }

    /// Loads the effective config, handles --print-config, bootstraps logging and metrics once.
    /// Bad config: every problem with its key path on stderr, then `.exit(78)`.
    /// - Parameter announce: log the "starting" line (false for one-shot commands such as `probe`).
    public static func begin(_ sources: ConfigSources, role: ProcessRole, announce: Bool = true) -> Outcome {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.loadWithSecrets(sources: sources, environment: ProcessEnvironment.variables())
        } catch {
            StandardError.write("k8s-micro-\(role.rawValue): \(error)\n")
            return .exit(configExitCode)
        }
        if sources.printConfig {
            print(ConfigPrinter.yaml(loaded), terminator: "")
            return .exit(0)
        }
        LogSetup.bootstrap(loaded.config.log, role: role)
        MetricsSetup.bootstrap(role: role)
        let logger = Logger(label: "k8s-micro.\(role.rawValue).bootstrap")
        logger.log(
            level: announce ? .info : .debug, "starting",
            metadata: [
                "version": "\(Version.full)", "pod": "\(loaded.config.pod.name)",
                "namespace": "\(loaded.config.pod.namespace)",
            ]
        )
        logger.debug("effective config\n\(ConfigPrinter.yaml(loaded))")
        return .run(loaded.config)
    }

    /// SIGHUP: re-reads the config and applies what can change while running (today: the log section).
    public static func reload(_ sources: ConfigSources, role: ProcessRole) {
        let logger = Logger(label: "k8s-micro.\(role.rawValue).config")
        do {
            let config = try ConfigLoader.load(sources: sources)
            LogSetup.apply(config.log)
            logger.notice("config reloaded", metadata: ["log.level": "\(config.log.level.rawValue)"])
        } catch {
            logger.error("config reload failed; keeping the running config", metadata: ["error": "\(error)"])
        }
    }
}

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
