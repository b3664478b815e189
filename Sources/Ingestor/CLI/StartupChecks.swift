// Checks before the ingestor opens anything: its directories exist or can be made, and it may write to them.
import Shared

#if canImport(Glibc)
    import Glibc
#endif

/// The directory checks of `run`, so a process without rights to a default path (a non-root user's first start
/// without a config) gets one line per key naming the path and how to change it, not a library error.
enum StartupChecks {
    /// The problems with the state and socket directories; empty when both are usable.
    static func directoryIssues(_ config: AppConfig) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let socketDir = parent(of: config.ingestor.socket)
        for (key, dir) in [("ingestor.stateDir", config.ingestor.stateDir), ("ingestor.socket", socketDir)] {
            if let problem = writableDirectoryProblem(dir) {
                let hint =
                    "set \(key) (\(ConfigLoader.environmentVariable(of: key)) or --set \(key)=...) to a path "
                    + "this user may write, or create it with write access for uid \(getuid())"
                issues.append(ConfigIssue(path: key, message: "\(dir): \(problem); \(hint)"))
            }
        }
        return issues
    }

    /// `mkdir -p dir`, then write access; nil when usable, else the reason (strerror).
    static func writableDirectoryProblem(_ dir: String) -> String? {
        var current = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) != 0 && errno != EEXIST {
                return "cannot create \(current): \(String(cString: strerror(errno)))"
            }
        }
        if access(dir, W_OK | X_OK) != 0 { return "not writable: \(String(cString: strerror(errno)))" }
        return nil
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
