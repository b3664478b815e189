// Process metrics read from /proc at scrape time (CPU, RSS, threads, fds, start time), labelled by process.
#if canImport(Glibc)
    import Glibc
#endif

public struct ProcessMetrics: Sendable, Equatable {
    public var cpuSeconds: Double = 0
    public var residentBytes: Int = 0
    public var virtualBytes: Int = 0
    public var threads: Int = 0
    public var openFds: Int = 0
    public var maxFds: Int = 0
    public var startTimeSeconds: Double = 0

    /// Reads /proc/self; fields it cannot read stay 0.
    public static func sample() -> ProcessMetrics {
        var m = ProcessMetrics()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = sysconf(Int32(_SC_PAGESIZE))
        if let stat = readSmallFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
            // Fields after "comm)" start at field 3 (state); utime=14, stime=15, threads=20, starttime=22, vsize=23, rss=24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ n: Int) -> Double { fields.count > n - 3 ? Double(fields[n - 3]) ?? 0 : 0 }
            m.cpuSeconds = (field(14) + field(15)) / ticks
            m.threads = Int(field(20))
            m.virtualBytes = Int(field(23))
            m.residentBytes = Int(field(24)) * page
            if let uptime = readSmallFile("/proc/stat")?.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }
            ),
                let boot = Double(uptime.dropFirst(6))
            {
                m.startTimeSeconds = boot + field(22) / ticks
            }
        }
        m.openFds = countEntries("/proc/self/fd")
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { m.maxFds = Int(limit.rlim_cur) }
        return m
    }

    /// Prometheus text for these figures with a `process` label (both processes appear in one exposition).
    public func exposition(process: String) -> String {
        let label = "{process=\"\(process)\"}"
        let rows: [(String, String, String, String)] = [
            (
                "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                "\(cpuSeconds)"
            ),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "\(residentBytes)"),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(virtualBytes)"),
            ("process_threads", "gauge", "Number of OS threads.", "\(threads)"),
            ("process_open_fds", "gauge", "Number of open file descriptors.", "\(openFds)"),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(maxFds)"),
            (
                "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                "\(startTimeSeconds)"
            ),
        ]
        var out = ""
        for (name, type, help, value) in rows {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name)\(label) \(value)\n"
        }
        return out
    }
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func countEntries(_ path: String) -> Int {
    guard let dir = opendir(path) else { return 0 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let isDot = withUnsafeBytes(of: entry.pointee.d_name) { raw in raw.first == UInt8(ascii: ".") }
        if !isDot { count += 1 }
    }
    return max(0, count - 1)  // the directory stream itself holds one fd
}
