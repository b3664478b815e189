// The `Date:` header line, formatted at most once per second (IMF-fixdate, RFC 9110).
import Glibc

/// Cached "Date: ...\r\n" bytes. Bound to the loop thread; refreshed by the server's tick.
final class HTTPDate {
    private(set) var line: [UInt8] = []
    private var second: time_t = -1

    init() { refresh() }

    /// Reformats when the wall-clock second changed.
    func refresh() {
        var now = time(nil)
        guard now != second else { return }
        second = now
        var tm = tm()
        gmtime_r(&now, &tm)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm)
        line = buffer[0..<n].map { UInt8(bitPattern: $0) }
    }
}
