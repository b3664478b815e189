// `k8s-micro-ingestor bench-socket` (hidden): socket get round trips/s and latency percentiles, in process.
import ArgumentParser
import Logging
import Shared

#if canImport(Glibc)
    import Glibc
#endif

struct BenchSocketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-socket",
        abstract: "Benchmark the ingestor socket: get round trips with 1, 16, 64 requests in flight.",
        discussion: """
            Starts a socket server with an in-memory handler (a fixed map of keys to aggregate JSON) on a
            temporary socket and drives it from one pipelining client connection on this thread.
            Target: >= 100k round trips/s with 16 in flight, p99 < 1 ms.
            """,
        shouldDisplay: false)

    @Option(help: "Seconds measured per in-flight level.")
    var seconds: Double = 3

    @Option(name: .customLong("in-flight"), help: "Requests in flight (repeatable).")
    var inFlight: [Int] = [1, 16, 64]

    @Option(help: "Keys in the in-memory store.")
    var keys: Int = 1000

    @Option(help: "Socket path (default: a temporary path).")
    var socket: String?

    func run() throws {
        let path = socket ?? "/tmp/k8s-micro-bench-\(getpid()).sock"
        var logger = Logger(label: "k8s-micro.ingestor.bench")
        logger.logLevel = .warning
        let handler = FixedMapHandler(keyCount: keys)
        let server = SocketServer(configuration: .init(path: path), handler: handler, logger: logger)
        try server.start()
        defer {
            server.stop()
            server.join()
        }
        print("bench-socket: \(keys) keys, value \(handler.valueSize) bytes, \(seconds) s per level, socket \(path)")
        for window in inFlight where window > 0 {
            let result = try Self.measure(path: path, window: window, seconds: seconds, keys: handler.keys)
            print(result.line(window: window))
        }
    }

    struct Result {
        var roundTrips: Int
        var elapsedNanos: UInt64
        var latencies: [UInt64]
        var errors: Int

        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            let index = min(latencies.count - 1, Int(Double(latencies.count) * p))
            return Double(latencies[index]) / 1000
        }

        func line(window: Int) -> String {
            let rate = Double(roundTrips) / (Double(elapsedNanos) / 1e9)
            func us(_ v: Double) -> String {
                let tenths = Int((v * 10).rounded())
                return "\(tenths / 10).\(tenths % 10) us"
            }
            return
                "in-flight \(window): \(Int(rate)) round trips/s, p50 \(us(percentile(0.5))), p99 \(us(percentile(0.99))),"
                + " p999 \(us(percentile(0.999))), max \(us(percentile(1))), errors \(errors)"
        }
    }

    static func measure(path: String, window: Int, seconds: Double, keys: [String]) throws -> Result {
        let client = try SocketClient(path: path, timeoutMilliseconds: 5000)
        defer { client.close() }
        // Warm-up, then the measured run.
        _ = try run(client, window: window, nanos: 300_000_000, keys: keys, record: false)
        return try run(client, window: window, nanos: UInt64(seconds * 1e9), keys: keys, record: true)
    }

    private static func run(
        _ client: SocketClient, window: Int, nanos: UInt64, keys: [String], record: Bool
    ) throws -> Result {
        let mask = 0xFFFF
        var sentAt = [UInt64](repeating: 0, count: mask + 1)
        var latencies: [UInt64] = []
        if record { latencies.reserveCapacity(2_000_000) }
        var nextId: UInt32 = 1
        var keyIndex = 0
        var outstanding = 0
        var errors = 0
        var done = 0

        func send() throws {
            let id = nextId
            nextId &+= 1
            keyIndex = keyIndex + 1 == keys.count ? 0 : keyIndex + 1
            sentAt[Int(id) & mask] = now()
            try client.enqueue(.get(store: "chaser", key: keys[keyIndex]), id: id)
            outstanding += 1
        }

        let start = now()
        let end = start + nanos
        for _ in 0..<window { try send() }
        try client.flush()
        var t = start
        while t < end {
            let frame = try client.receive()
            t = now()
            outstanding -= 1
            done += 1
            guard case .response(let id, _, .value) = frame else {
                errors += 1
                continue
            }
            if record { latencies.append(t - sentAt[Int(id) & mask]) }
            try send()
            if client.bufferedFrameCount == 0 { try client.flush() }
        }
        let elapsed = t - start
        try client.flush()
        while outstanding > 0 {
            _ = try client.receive()
            outstanding -= 1
        }
        latencies.sort()
        return Result(roundTrips: done, elapsedNanos: elapsed, latencies: latencies, errors: errors)
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A fixed in-memory map of keys to chaser aggregate JSON, answered synchronously on the server thread
/// (as the LMDB-backed handler answers gets).
final class FixedMapHandler: SocketRequestHandler {
    let keys: [String]
    private let values: [String: [UInt8]]

    init(keyCount: Int) {
        keys = (0..<max(1, keyCount)).map { "key-\($0)" }
        var values: [String: [UInt8]] = [:]
        for (i, key) in keys.enumerated() {
            let json =
                #"{"type":"com.polecatworks.chaser.Aggregate","names":["chaser-\#(i)","chaser-b"],"#
                + #""count":\#(i + 2),"latest":1732700000000,"longest":30000}"#
            values[key] = Array(json.utf8)
        }
        self.values = values
    }

    var valueSize: Int { values.first?.value.count ?? 0 }

    func handle(_ request: SocketRequest, reply: @escaping @Sendable (SocketResponse) -> Void) {
        switch request {
        case .get(_, let key):
            if let value = values[key] { reply(.value(json: value)) } else { reply(.notFound) }
        case .ping:
            reply(.pong)
        case .health:
            reply(.health(HealthReport(alive: true, ready: true, joinedGroup: true)))
        default:
            reply(.unsupported(message: "bench handler"))
        }
    }
}
