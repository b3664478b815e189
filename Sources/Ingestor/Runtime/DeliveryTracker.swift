// Collects delivery reports of the stream's producer: changelog offsets and failures per commit.
import Metrics

/// Bound to the commit thread (delivery reports run inside its producer poll/flush/commit calls).
final class DeliveryTracker {
    /// Highest delivered changelog offset per store and partition since the last commit.
    var changelogHigh: [[Int32: Int64]] = Array(repeating: [:], count: StoreKind.allCases.count)
    /// The first delivery failure since the last commit.
    var failure: KafkaError?
    private let metrics: IngestorMetrics
    /// `records_produced_total{topic}` handles and deliveries not yet added to them, by the report's dense
    /// topic index: a delivery costs an array slot increment, not a String-keyed lookup and an atomic add.
    private var producedCounters: [Counter?] = []
    private var producedPending: [Int] = []

    init(metrics: IngestorMetrics) { self.metrics = metrics }

    /// Tag of a changelog record (0 = not tracked).
    static func tag(store: StoreKind, partition: Int32) -> UInt {
        UInt(store.rawValue + 1) << 32 | UInt(UInt32(bitPattern: partition))
    }

    func delivered(_ report: DeliveryReport) {
        if let error = report.error {
            if failure == nil { failure = error }
            return
        }
        let index = report.topicIndex
        if index >= 0 {
            if index >= producedPending.count {
                producedPending += Array(repeating: 0, count: index + 1 - producedPending.count)
                producedCounters += Array(repeating: nil, count: index + 1 - producedCounters.count)
            }
            if producedCounters[index] == nil { producedCounters[index] = metrics.produced(topic: report.topic) }
            producedPending[index] += 1
        }
        guard report.tag != 0 else { return }
        let storeIndex = Int(report.tag >> 32) - 1
        guard storeIndex >= 0, storeIndex < changelogHigh.count else { return }
        let partition = Int32(bitPattern: UInt32(truncatingIfNeeded: report.tag))
        if report.offset > changelogHigh[storeIndex][partition] ?? -1 {
            changelogHigh[storeIndex][partition] = report.offset
        }
    }

    /// Adds the deliveries counted since the last call to the metrics (once per commit).
    func flushCounters() {
        for i in producedPending.indices where producedPending[i] > 0 {
            producedCounters[i]?.increment(by: producedPending[i])
            producedPending[i] = 0
        }
    }

    func reset() {
        flushCounters()
        for i in changelogHigh.indices { changelogHigh[i].removeAll(keepingCapacity: true) }
        failure = nil
    }
}
