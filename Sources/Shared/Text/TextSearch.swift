// Substring search without _StringProcessing: String.contains(String) links it (1.2 MB with RegexParser).

extension StringProtocol {
    /// True when `needle` occurs in the text (byte-wise on UTF-8; empty needles always match). Use this instead of
    /// `contains(_: String)`, which comes from _StringProcessing and links the regex engine into the binary.
    public func containsText(_ needle: some StringProtocol) -> Bool {
        Array(utf8).firstOffset(of: Array(needle.utf8)) != nil
    }
}

extension Array where Element == UInt8 {
    /// The offset of the first occurrence of `pin` (0 for an empty one), nil when absent.
    public func firstOffset(of pin: [UInt8]) -> Int? {
        guard !pin.isEmpty else { return 0 }
        guard pin.count <= count else { return nil }
        var start = 0
        while start + pin.count <= count {
            if self[start] == pin[0] && self[start..<(start + pin.count)].elementsEqual(pin) { return start }
            start += 1
        }
        return nil
    }
}
