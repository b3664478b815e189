// Merges Prometheus text expositions of several processes into one valid exposition (families kept contiguous).

public enum ExpositionMerger {
    /// Samples of a family seen in several inputs are grouped under one HELP/TYPE header, in first-seen order.
    /// Identical sample lines (same name and labels) keep the first one.
    public static func merge(_ expositions: [String]) -> String {
        var order: [String] = []
        var headers: [String: [String]] = [:]
        var samples: [String: [String]] = [:]
        var seenSeries: Set<String> = []
        for text in expositions {
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let line = String(rawLine)
                let family: String
                var isHeader = false
                if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                    family = line.dropFirst(7).split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                    isHeader = true
                } else if line.hasPrefix("#") {
                    continue
                } else {
                    let series = line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? line
                    let name = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? series
                    family = familyName(of: name, known: headers)
                    guard seenSeries.insert(series).inserted else { continue }
                }
                if headers[family] == nil && samples[family] == nil { order.append(family) }
                if isHeader {
                    let kind = line.prefix(7)
                    if !(headers[family] ?? []).contains(where: { $0.hasPrefix(kind) }) {
                        headers[family, default: []].append(line)
                    }
                } else {
                    samples[family, default: []].append(line)
                }
            }
        }
        var out = ""
        for family in order {
            for line in headers[family] ?? [] { out += line + "\n" }
            for line in samples[family] ?? [] { out += line + "\n" }
        }
        return out
    }

    /// Histogram/summary samples (_bucket, _sum, _count) belong to their base family.
    private static func familyName(of sample: String, known: [String: [String]]) -> String {
        for suffix in ["_bucket", "_sum", "_count", "_created", "_total"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if known[base] != nil { return base }
        }
        return sample
    }
}
