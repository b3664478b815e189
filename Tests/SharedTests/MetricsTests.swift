// Process metrics read real /proc figures; merged expositions keep each family contiguous.
import Testing

@testable import Shared

@Suite struct MetricsTests {
    @Test func processMetricsAreRead() {
        let m = ProcessMetrics.sample()
        #expect(m.residentBytes > 1_000_000)
        #expect(m.threads >= 1)
        #expect(m.openFds >= 3)
        #expect(m.startTimeSeconds > 1_600_000_000)
        let text = m.exposition(process: "gateway")
        #expect(text.contains("process_resident_memory_bytes{process=\"gateway\"} \(m.residentBytes)"))
    }

    @Test func mergeGroupsFamiliesAcrossProcesses() {
        let a =
            ProcessMetrics(residentBytes: 1).exposition(process: "gateway")
            + "# TYPE http_total counter\nhttp_total 3\n"
        let b = ProcessMetrics(residentBytes: 2).exposition(process: "ingestor")
        let merged = ExpositionMerger.merge([a, b])
        let lines = merged.split(separator: "\n")
        let typeLines = lines.filter { $0 == "# TYPE process_resident_memory_bytes gauge" }
        #expect(typeLines.count == 1)
        let i = lines.firstIndex(of: "process_resident_memory_bytes{process=\"gateway\"} 1")
        let j = lines.firstIndex(of: "process_resident_memory_bytes{process=\"ingestor\"} 2")
        #expect(i != nil && j != nil && j == i.map { $0 + 1 })
        #expect(merged.contains("http_total 3"))
    }

    @Test func logLinesInTextAndJSON() {
        let text = LogLineFormatter.format(
            .text, timestamp: "T", level: .info, label: "l", message: "hello", metadata: ["k": "v w"])
        #expect(text == "T info l: hello k=\"v w\"\n")
        let json = LogLineFormatter.format(
            .json, timestamp: "T", level: .error, label: "l", message: "a \"q\"\n", metadata: ["k": "1"])
        #expect(json == "{\"ts\":\"T\",\"level\":\"error\",\"logger\":\"l\",\"msg\":\"a \\\"q\\\"\\n\",\"k\":\"1\"}\n")
    }
}
