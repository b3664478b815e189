// JSON string escaping shared by both processes (logs, HTTP bodies, aggregates), without Foundation.

/// JSON string escaping. Stateless; any thread.
public enum JSONText {
    private static let hex: [Character] = Array("0123456789abcdef")

    /// Appends `s` as a quoted JSON string: `"` and `\` escaped, control characters as \n, \t, ... or
    /// \u00XX; everything else (including non-ASCII) written as UTF-8.
    public static func appendQuoted(_ s: String, to out: inout String) {
        out.unicodeScalars.append("\"")
        var needsEscape = false
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if scalar.value < 0x20 {
                        out += "\\u00"
                        out.append(hex[Int(scalar.value >> 4)])
                        out.append(hex[Int(scalar.value & 0xF)])
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out.unicodeScalars.append("\"")
    }

    /// `s` as a quoted JSON string.
    public static func quote(_ s: String) -> String {
        var out = ""
        appendQuoted(s, to: &out)
        return out
    }
}
