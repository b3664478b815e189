// `k8s-micro-ingestor generate`: produce realistic IoT events (or a file of JSON events) to the input topic.
import ArgumentParser
import FoundationEssentials
import Logging
import Shared
import SharedCLI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Produce realistic IoT events to the input topic.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Events per second (0 = as fast as the broker takes them).")
    var rate: Double = 1_000

    @Option(help: "Chaser devices and concurrent bill lifecycles.")
    var keys: Int = 100

    @Option(help: "Stop after this many events.")
    var total: Int?

    @Option(help: "Stop after this many seconds (default 10 when --total is not given).")
    var duration: Double?

    @Option(help: "Share of chaser events, 0...1 (the rest are billing lifecycle events).")
    var mix: Double = 0.5

    @Option(help: "Random seed (the same seed gives the same events).")
    var seed: UInt64 = 1

    @Option(help: "Topic to produce to (default kafka.inputTopic).")
    var topic: String?

    @Option(help: "Write the expected final aggregates (JSON lines per store and key) to this file.")
    var expect: String?

    @Option(name: .customLong("events-file"), help: "Produce the JSON events of this file (one per line) instead.")
    var eventsFile: String?

    @Flag(name: .customLong("consume-ceiling"), help: .hidden)
    var consumeCeiling = false

    func run() async throws {
        let config = try ProcessBootstrap.start(options, role: .ingestor)
        let logger = Logger(label: "k8s-micro.ingestor.generate")
        logger.info("librdkafka", metadata: ["version": "\(KafkaLibrary.version)"])
        // With a librdkafka too old to talk to the broker the producer would wait forever, silently.
        if KafkaLibrary.isTooOld {
            StandardError.write(
                "k8s-micro-ingestor generate: librdkafka \(KafkaLibrary.version) is loaded; 2.2 or newer is needed "
                    + "(older versions cannot complete the ApiVersions handshake with the broker). In this repository, "
                    + "run `source scripts/env.sh` first: it puts the confluent-kafka wheel's librdkafka on "
                    + "LD_LIBRARY_PATH.\n")
            throw ExitCode(69)  // EX_UNAVAILABLE
        }
        if consumeCeiling {
            try measureConsumeCeiling(config: config, logger: logger)
            return
        }
        let codec = try CodecFactory.resolve(config: config, logger: logger).make()
        let target = topic ?? config.kafka.inputTopic
        var props = ["bootstrap.servers": config.kafka.bootstrapServers]
        props.merge(config.kafka.properties) { _, user in user }
        props = StreamSettings.producerOnly(props)
        props.removeValue(forKey: "transactional.id")
        props["enable.idempotence"] = "true"
        props["partitioner"] = "murmur2_random"
        props["linger.ms"] = props["linger.ms"] ?? "10"
        props["client.id"] = "\(config.kafka.applicationId)-generator"
        let stats = DeliveryStats()
        let producer = try KafkaProducer(properties: props) { report in stats.record(report) }

        var expected = ExpectedAggregates()
        let clock = ContinuousClock()
        let started = clock.now
        let progress = isatty(2) != 0
        var lastProgress = started
        var sent = 0

        func produceOne(_ key: String, _ event: InputEvent) throws {
            try producer.produce(topic: target, key: Array(key.utf8), value: codec.encode(event))
            if expect != nil { expected.apply(key: key, event) }
            sent += 1
            if sent % 1_000 == 0 { producer.poll(timeoutMs: 0) }
        }

        if let eventsFile {
            let data = try Data(contentsOf: URL(fileURLWithPath: eventsFile))
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 32 || $0 == 13 }) {
                let event: InputEvent
                do {
                    event = try EventJSON.parse(Array(line))
                } catch {
                    throw ValidationError("\(eventsFile): \(error.message)")
                }
                try produceOne(EventKey.key(for: event), event)
            }
        } else {
            var generator = EventGenerator(.init(keys: keys, chaserShare: min(1, max(0, mix)), seed: seed))
            let limit = total ?? Int.max
            let deadline =
                started + .milliseconds(Int64(((total == nil ? (duration ?? 10) : (duration ?? 1e9)) * 1000)))
            // Pace often enough at low rates (a demo at 10 events/s), rarely at high ones.
            let checkEvery = rate > 0 ? max(1, min(256, Int(rate / 100))) : 256
            while sent < limit {
                if sent % checkEvery == 0 {
                    let now = clock.now
                    if now >= deadline { break }
                    if rate > 0 {
                        let due = started + .microseconds(Int64(Double(sent) / rate * 1e6))
                        if due > now { usleepMs(max(1, Int((due - now) / .milliseconds(1)))) }
                    }
                    if progress, now - lastProgress >= .milliseconds(500) {
                        lastProgress = now
                        let secs = Double((now - started) / .milliseconds(1)) / 1000
                        StandardError.write(
                            "\r\(target): \(sent) events, \(Int(Double(sent) / max(secs, 0.001))) events/s   ")
                    }
                }
                let (key, event) = generator.next()
                try produceOne(key, event)
            }
        }
        try producer.flush(timeoutMs: 60_000)
        let secs = Double((clock.now - started) / .milliseconds(1)) / 1000
        if progress { StandardError.write("\n") }
        let failed = stats.failed
        logger.info(
            "generated",
            metadata: [
                "topic": "\(target)", "events": "\(sent)", "seconds": "\(secs)",
                "eventsPerSecond": "\(Int(Double(sent) / max(secs, 0.001)))", "failed": "\(failed)",
            ])
        if let expect {
            try Data(expected.jsonLines().utf8).write(to: URL(fileURLWithPath: expect))
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

extension GenerateCommand {
    /// Benchmark ceiling: consume `--total` records of the topic with the same librdkafka and no processing.
    func measureConsumeCeiling(config: AppConfig, logger: Logger) throws {
        let target = topic ?? config.kafka.inputTopic
        // The stream thread's consumer settings (prefetch, fetch back-off) under a group of its own, read the
        // way the stream thread reads (batches, no copies): what consuming alone costs, nothing processed.
        var props = StreamSettings(config: config).consumerProperties
        let partitions = try KafkaAdmin(properties: StreamSettings.producerOnly(props)).topics()[target] ?? 0
        props["group.id"] = "\(config.kafka.applicationId)-ceiling"
        props["client.id"] = "\(config.kafka.applicationId)-ceiling"
        let consumer = try KafkaConsumer(properties: props, logger: logger)
        var offsets: [TopicPartition: Int64] = [:]
        for p in 0..<partitions { offsets[TopicPartition(target, p)] = KafkaOffset.beginning }
        try consumer.assign(offsets)
        let want = total ?? 1_000_000
        var count = 0
        var bytes = 0
        let clock = ContinuousClock()
        var first: ContinuousClock.Instant?
        let deadline = clock.now + .seconds(300)
        while count < want, clock.now < deadline {
            let n = try consumer.pollBatch(
                max: 1_000, timeoutMs: 100,
                onRecord: { record in
                    count += 1
                    bytes += record.value?.count ?? 0
                }, onEvent: { _ in })
            if n > 0, first == nil { first = clock.now }
        }
        let secs = Double(((clock.now - (first ?? clock.now)) / .milliseconds(1))) / 1000
        print("\(count) records (\(bytes) value bytes) in \(secs)s = \(Int(Double(count) / max(secs, 0.001))) msg/s")
        consumer.close(timeoutMs: 3_000)
    }
}

/// Counts delivery failures (delivery reports run on the generating thread inside poll/flush).
private final class DeliveryStats: Sendable {
    private let failures = Atomic<Int>(0)
    func record(_ report: DeliveryReport) {
        if report.error != nil { failures.add(1, ordering: .relaxed) }
    }
    var failed: Int { failures.load(ordering: .relaxed) }
}
