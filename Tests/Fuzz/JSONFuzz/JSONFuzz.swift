// libFuzzer entry for the JSON reader of both processes: arbitrary bytes never crash it; whatever it
// accepts is serialised and read back to the same value (integers exact), within the depth limit.
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Shared/JSON).

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let value: JSONValue
    do {
        value = try JSONParser.parse(bytes)
    } catch {
        precondition(error.offset >= 0 && error.offset <= size, "error offset outside the input")
        _ = error.description
        return 0
    }
    precondition(depth(of: value) <= JSONParser.maxDepth, "accepted a document deeper than the limit")
    let text = value.serialized
    do {
        let again = try JSONParser.parse(text)
        precondition(sameValue(again, value), "serialise → parse changed the value: \(text)")
    } catch {
        preconditionFailure("re-reading our own serialisation failed: \(error) for \(text)")
    }
    return 0
}

private func depth(of value: JSONValue) -> Int {
    switch value {
    case .array(let items): 1 + (items.map(depth(of:)).max() ?? 0)
    case .object(let members): 1 + (members.map { depth(of: $0.1) }.max() ?? 0)
    default: 1
    }
}

/// Equality where doubles compare by value after a text round trip (non-finite doubles become null).
private func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): x == y
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): Double(x) == y
    case (.null, .double(let y)), (.double(let y), .null): !y.isFinite
    case (.array(let x), .array(let y)): x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
    case (.object(let x), .object(let y)):
        x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && sameValue($0.1, $1.1) }
    default: a == b
    }
}
