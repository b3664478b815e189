// Request header fields stored in one byte buffer with ranges; lookups are case-insensitive.

/// Header fields of one request, in arrival order. Value type; any thread.
struct HTTPHeaders: Sendable {
    private(set) var storage: [UInt8] = []
    /// name = storage[start..<nameEnd], value = storage[nameEnd..<valueEnd].
    private(set) var fields: [(start: Int, nameEnd: Int, valueEnd: Int)] = []

    init() {}

    init(_ pairs: [(String, String)]) {
        for (name, value) in pairs {
            appendName(name.utf8)
            appendValue(value.utf8)
        }
    }

    var count: Int { fields.count }

    /// Parser use: the next bytes of a header name. A name after a value starts a new field;
    /// consecutive name pieces (split across reads) continue the current one.
    mutating func appendName<C: Collection<UInt8>>(_ bytes: C) {
        if lastWasValue {
            fields.append((storage.count, storage.count, storage.count))
            lastWasValue = false
        }
        storage.append(contentsOf: bytes)
        fields[fields.count - 1].nameEnd = storage.count
        fields[fields.count - 1].valueEnd = storage.count
    }

    /// Parser use: the next bytes of the current header value (possibly empty).
    mutating func appendValue<C: Collection<UInt8>>(_ bytes: C) {
        guard !fields.isEmpty else { return }
        storage.append(contentsOf: bytes)
        fields[fields.count - 1].valueEnd = storage.count
        lastWasValue = true
    }

    private var lastWasValue = true

    /// Name of field `i`.
    func name(at i: Int) -> String {
        String(decoding: storage[fields[i].start..<fields[i].nameEnd], as: UTF8.self)
    }

    /// Value of field `i`.
    func value(at i: Int) -> String {
        String(decoding: storage[fields[i].nameEnd..<fields[i].valueEnd], as: UTF8.self)
    }

    /// First value of `name` (ASCII case-insensitive), or nil.
    func first(_ name: String) -> String? {
        guard let i = index(of: name) else { return nil }
        return value(at: i)
    }

    /// True when some field is named `name`.
    func contains(_ name: String) -> Bool { index(of: name) != nil }

    /// True when `name`'s value equals `value` ignoring ASCII case (e.g. Expect: 100-continue).
    func has(_ name: String, value: String) -> Bool {
        guard let i = index(of: name) else { return false }
        return Self.equalsIgnoringCase(storage[fields[i].nameEnd..<fields[i].valueEnd], value)
    }

    private func index(of name: String) -> Int? {
        for i in fields.indices where Self.equalsIgnoringCase(storage[fields[i].start..<fields[i].nameEnd], name) {
            return i
        }
        return nil
    }

    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ text: String) -> Bool {
        var it = bytes.makeIterator()
        for c in text.utf8 {
            guard let b = it.next(), lower(b) == lower(c) else { return false }
        }
        return it.next() == nil
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }
}
