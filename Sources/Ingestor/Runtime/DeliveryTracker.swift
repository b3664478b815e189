// Collects delivery reports of the stream thread's producer: changelog offsets and failures per commit.

/// Bound to the stream thread (delivery reports run inside its producer poll/flush/commit calls).
final class DeliveryTracker {
    /// Highest delivered changelog offset per store and partition since the last commit.
    var changelogHigh: [[Int32: Int64]] = Array(repeating: [:], count: StoreKind.allCases.count)
    /// The first delivery failure since the last commit.
    var failure: KafkaError?
    private let metrics: IngestorMetrics
    private var producedCounters: [String: CounterBox] = [:]

    private final class CounterBox {
        let increment: () -> Void
        init(_ increment: @escaping () -> Void) { self.increment = increment }
    }

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
        let counter: CounterBox
        if let c = producedCounters[report.topic] {
            counter = c
        } else {
            let c = metrics.produced(topic: report.topic)
            counter = CounterBox { c.increment() }
            producedCounters[report.topic] = counter
        }
        counter.increment()
        guard report.tag != 0 else { return }
        let storeIndex = Int(report.tag >> 32) - 1
        guard storeIndex >= 0, storeIndex < changelogHigh.count else { return }
        let partition = Int32(bitPattern: UInt32(truncatingIfNeeded: report.tag))
        if report.offset > changelogHigh[storeIndex][partition] ?? -1 {
            changelogHigh[storeIndex][partition] = report.offset
        }
    }

    func reset() {
        for i in changelogHigh.indices { changelogHigh[i].removeAll(keepingCapacity: true) }
        failure = nil
    }
}
