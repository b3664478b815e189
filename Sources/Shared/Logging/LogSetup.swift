// swift-log bootstrap for both processes: one line per event on stderr, text or JSON, level changeable at run time.
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public enum LogSetup {
    /// The process-wide level; every handler reads it, so SIGHUP can change it while running.
    static let level = Mutex<Logger.Level>(.info)
    static let format = Mutex<LogFormat>(.text)
    private static let bootstrapped = Mutex(false)

    public static func bootstrap(_ config: AppConfig.Log, role: ProcessRole) {
        apply(config)
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        if first {
            LoggingSystem.bootstrap { label in LineLogHandler(label: label) }
        }
    }

    /// Applies a (re)loaded log section.
    public static func apply(_ config: AppConfig.Log) {
        level.withLock { $0 = Logger.Level(rawValue: config.level.rawValue) ?? .info }
        format.withLock { $0 = config.format }
    }

    public static var currentLevel: Logger.Level { level.withLock { $0 } }
}

/// Writes one log line per event to stderr; safe from any thread (a single write(2) per line).
public struct LineLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    private var levelOverride: Logger.Level?

    public init(label: String) { self.label = label }

    public var logLevel: Logger.Level {
        get { levelOverride ?? LogSetup.currentLevel }
        set { levelOverride = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = LogLineFormatter.format(
            LogSetup.format.withLock { $0 }, timestamp: LogLineFormatter.now(), level: event.level, label: label,
            message: "\(event.message)", metadata: merged)
        StandardError.write(line)
    }
}

/// Pure formatting of one log line (unit-tested).
public enum LogLineFormatter {
    public static func format(
        _ format: LogFormat, timestamp: String, level: Logger.Level, label: String, message: String,
        metadata: Logger.Metadata
    ) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var line = "\(timestamp) \(level) \(label): \(message)"
            for key in keys { line += " \(key)=\(textValue("\(metadata[key].map { "\($0)" } ?? "")"))" }
            return line + "\n"
        case .json:
            var line = "{\"ts\":\(JSONText.quote(timestamp)),\"level\":\(JSONText.quote("\(level)"))"
            line += ",\"logger\":\(JSONText.quote(label)),\"msg\":\(JSONText.quote(message))"
            for key in keys where !["ts", "level", "logger", "msg"].contains(key) {
                line += ",\(JSONText.quote(key)):\(JSONText.quote(metadata[key].map { "\($0)" } ?? ""))"
            }
            return line + "}\n"
        }
    }

    private static func textValue(_ value: String) -> String {
        value.contains(" ") || value.contains("\"") || value.isEmpty ? JSONText.quote(value) : value
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's formatters.
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let s = String(value)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
