// Substring search without _StringProcessing: String.contains(String) links it (1.2 MB with RegexParser).

extension StringProtocol {
    /// True when `needle` occurs in the text (byte-wise on UTF-8; empty needles always match). Use this instead of
    /// `contains(_: String)`, which comes from _StringProcessing and links the regex engine into the binary.
    public func containsText(_ needle: some StringProtocol) -> Bool {
        let hay = Array(utf8)
        let pin = Array(needle.utf8)
        guard !pin.isEmpty else { return true }
        guard pin.count <= hay.count else { return false }
        var start = 0
        while start + pin.count <= hay.count {
            if hay[start] == pin[0] && hay[start..<(start + pin.count)].elementsEqual(pin) { return true }
            start += 1
        }
        return false
    }
}
