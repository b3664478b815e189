// Key listings across pods (`?scope=cluster`, docs/routing.md): opaque cursors, page merging, the fan-out collector.
import Shared

/// The HTTP listing cursor: the last key of the previous page, base64url without padding (opaque to clients,
/// safe in a query string without escaping). The ingestors' socket cursor is the raw key itself.
enum KeyCursor {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ key: String) -> String {
        let bytes = Array(key.utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for j in 0...n { out.append(alphabet[Int((v >> UInt32(18 - 6 * j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The key a cursor stands for; nil when it holds a character outside the base64url alphabet (400).
    /// Lenient otherwise (trailing bits dropped, invalid UTF-8 replaced): every string the documented pattern
    /// allows is a cursor meaning "keys after this one", so a schema-valid request is never rejected.
    static func decode(_ cursor: String) -> String? {
        var bits: UInt32 = 0
        var count = 0
        var out: [UInt8] = []
        for c in cursor.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "_"): v = 63
            default: return nil
            }
            bits = bits << 6 | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
                bits &= (1 << UInt32(count)) - 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One source's page of keys (sorted by UTF-8 bytes), whether it has more after its last key, and the partitions
/// it listed (nil when the source does not say: an older ingestor or peer).
struct SourcePage: Equatable {
    var keys: [String]
    var more: Bool
    var partitions: [Int32]? = nil
}

/// Did the sources of a cluster listing cover every partition? During a rebalance a partition can be listed by
/// nobody (revoked from its old owner, not yet active on the new one) while the routing table still names an
/// owner; the pods' own answers say which partitions they actually listed.
enum PartitionCoverage {
    /// The partitions of `0..<partitionCount` no page listed; nil when some page did not report its
    /// partitions (then the routing table's check is all there is).
    static func missing(_ pages: [SourcePage], partitionCount: Int) -> [Int]? {
        var covered = Set<Int32>()
        for page in pages {
            guard let partitions = page.partitions else { return nil }
            covered.formUnion(partitions)
        }
        return (0..<max(0, partitionCount)).filter { !covered.contains(Int32($0)) }
    }

    /// The peer header's value: "0,2,5" (empty string for none).
    static func header(_ partitions: [Int32]) -> String {
        partitions.map(String.init).joined(separator: ",")
    }

    /// Reads a peer's header; nil when absent or unreadable.
    static func parse(_ value: String?) -> [Int32]? {
        guard let value else { return nil }
        if value.isEmpty { return [] }
        var out: [Int32] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard let p = Int32(part), p >= 0 else { return nil }
            out.append(p)
        }
        return out
    }
}

enum KeyPageMerge {
    /// Merges pages of several sources, each holding up to `limit` keys after the same cursor: the first
    /// `limit` distinct keys in byte order, and whether keys remain after the last one. Correct because a
    /// source's unseen keys all follow its last returned key, which cannot precede the merged page's last key.
    static func merge(_ pages: [SourcePage], limit: Int) -> SourcePage {
        var all = pages.flatMap(\.keys)
        all.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var keys: [String] = []
        var more = pages.contains { $0.more }
        for key in all where keys.last.map({ !$0.utf8.elementsEqual(key.utf8) }) ?? true {
            if keys.count == limit {
                more = true
                break
            }
            keys.append(key)
        }
        return SourcePage(keys: keys, more: more)
    }

    /// A peer gateway's `{"keys":[...],"next":...}` answer; nil when it is not one.
    static func parsePeerBody(_ body: [UInt8]) -> SourcePage? {
        guard case .object(let fields) = try? JSONParser.parse(body) else { return nil }
        var keys: [String]?
        var more: Bool?
        for (name, value) in fields {
            switch (name, value) {
            case ("keys", .array(let items)):
                keys = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
                if keys?.count != items.count { return nil }
            case ("next", .null): more = false
            case ("next", .string): more = true
            default: continue
            }
        }
        guard let keys, let more else { return nil }
        return SourcePage(keys: keys, more: more, partitions: nil)
    }
}

/// Collects the pages of one cluster listing; the first failure answers at once (a partial listing must not
/// look complete) and later answers are ignored. When every source answered but some partition was listed by
/// none of them, `incomplete` gets the missing partitions instead of a page being sent. Bound to the loop thread.
final class ClusterListing {
    private var pages: [SourcePage] = []
    private var waiting: Int
    private var done = false
    private let limit: Int
    private let partitionCount: Int
    private let responder: Responder
    private let incomplete: ([Int]) -> Void

    init(
        sources: Int, limit: Int, partitionCount: Int, responder: Responder,
        incomplete: @escaping ([Int]) -> Void
    ) {
        waiting = sources
        self.limit = limit
        self.partitionCount = partitionCount
        self.responder = responder
        self.incomplete = incomplete
    }

    func add(_ page: SourcePage) {
        guard !done else { return }
        pages.append(page)
        waiting -= 1
        guard waiting == 0 else { return }
        done = true
        if let missing = PartitionCoverage.missing(pages, partitionCount: partitionCount), !missing.isEmpty {
            incomplete(missing)
            return
        }
        let merged = KeyPageMerge.merge(pages, limit: limit)
        let next = merged.more ? merged.keys.last.map(KeyCursor.encode) : nil
        responder.send(.json(DataHandlers.keysJSON(keys: merged.keys, next: next)))
    }

    func fail(_ response: HTTPResponse) {
        guard !done else { return }
        done = true
        responder.send(response)
    }
}
