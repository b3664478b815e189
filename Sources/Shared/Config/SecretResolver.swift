// Replaces ${name} in config strings with the trimmed content of <secrets>/<name> (Kubernetes secret volumes).

struct SecretResolver {
    struct Resolved {
        let value: String
        let usedSecret: Bool
    }

    let directory: String?

    func resolve(_ raw: String) -> Result<Resolved, SecretError> {
        guard raw.containsText("${") else { return .success(Resolved(value: raw, usedSecret: false)) }
        var output = ""
        var rest = Substring(raw)
        var used = false
        while let start = Self.placeholderStart(in: rest) {
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                return .failure(SecretError("unterminated ${ in value"))
            }
            let name = String(rest[start.upperBound..<end])
            guard Self.isValidName(name) else {
                return .failure(SecretError("invalid secret name \"\(name)\" (letters, digits, . _ - only)"))
            }
            guard let directory else {
                return .failure(SecretError("refers to secret \"\(name)\" but no --secrets directory was given"))
            }
            let file = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            guard case .success(let content) = TextFile.read(file) else {
                return .failure(SecretError("secret \"\(name)\" not found (no readable file \(file))"))
            }
            output += content.trimmingASCIIWhitespace()
            used = true
            rest = rest[rest.index(after: end)...]
        }
        output += rest
        return .success(Resolved(value: output, usedSecret: used))
    }

    /// The range of the first `${` (a plain scan: String.firstRange(of:) would link _StringProcessing).
    static func placeholderStart(in text: Substring) -> Range<Substring.Index>? {
        var index = text.startIndex
        while let dollar = text[index...].firstIndex(of: "$") {
            let next = text.index(after: dollar)
            if next < text.endIndex && text[next] == "{" { return dollar..<text.index(after: next) }
            index = next
        }
        return nil
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }
}

struct SecretError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
