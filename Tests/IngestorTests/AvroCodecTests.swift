// Tests of the Avro codec: byte-exact payloads, framing, round trips, decode failures, garbage input.
import FoundationEssentials
import Shared
import Testing

@testable import Ingestor

#if canImport(Glibc)
    import Glibc
#endif

/// The schemas built into the binary are the files of schemas/, and the default config uses them.
struct EmbeddedSchemaTests {
    @Test func embeddedSchemasAreTheFiles() throws {
        let files = try SchemaFiles.load(dir: AvroFixtures.schemaDir)
        let embedded = try SchemaFiles.load(dir: "")
        #expect(files.count == 6)
        for (kind, text) in files {
            let trimmed = { (s: String) in s.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(trimmed(embedded[kind] ?? "") == trimmed(text), "\(kind.fullName)")
        }
    }

    @Test func defaultConfigNeedsNoSchemaDirectory() throws {
        let codec = try EventCodec(schemaDir: AppConfig().ingestor.schemaDir, ids: AvroFixtures.staticIds)
        let event = InputEvent.chaser(Chaser(name: "A", id: "1", sent: 1000, ttl: 300, previous: nil))
        #expect(try codec.decodeInput(codec.encode(event)) == event)
    }
}

/// Shared fixtures of the Avro tests.
enum AvroFixtures {
    /// The repo's schemas/ directory (found from this file's path).
    static var schemaDir: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/IngestorTests/<file>
        return parts.joined(separator: "/") + "/schemas"
    }

    static let staticIds: [String: Int32] = [
        "Chaser": 1, "Aggregate": 2, "Bill": 3, "PaymentRequest": 4, "PaymentFailed": 5, "BillAggregate": 6,
    ]

    static func codec() throws -> EventCodec { try EventCodec(schemaDir: schemaDir, ids: staticIds) }

    static func frame(_ id: Int32, _ payload: [UInt8]) -> [UInt8] {
        let u = UInt32(bitPattern: id)
        return [0, UInt8(u >> 24), UInt8(u >> 16 & 0xFF), UInt8(u >> 8 & 0xFF), UInt8(u & 0xFF)] + payload
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
    }

    static func failure(_ body: () throws(DecodeFailure) -> Void) -> DecodeFailure? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }
}

@Suite struct AvroCodecTests {
    static let peacock = Chaser(name: "Peacock", id: "id0", sent: 123, ttl: 22, previous: nil)
    static let peacockPayload: [UInt8] = [
        0x0e, 0x50, 0x65, 0x61, 0x63, 0x6f, 0x63, 0x6b, 0x06, 0x69, 0x64, 0x30, 0xf6, 0x01, 0x2c, 0x00,
    ]
    static let aggregate = ChaserAggregate(names: ["chaser-A"], count: 2, latest: 1000, longest: 300)
    static let aggregatePayload: [UInt8] = [
        0x02, 0x10, 0x63, 0x68, 0x61, 0x73, 0x65, 0x72, 0x2d, 0x41, 0x00, 0x04, 0x02, 0xd0, 0x0f, 0x02, 0xd8, 0x04,
    ]

    @Test func chaserBytesExact() throws {
        let codec = try AvroFixtures.codec()
        let bytes = codec.encode(.chaser(Self.peacock))
        #expect(AvroFixtures.hex(bytes) == AvroFixtures.hex(AvroFixtures.frame(1, Self.peacockPayload)))
        #expect(try codec.decodeInput(bytes) == .chaser(Self.peacock))
    }

    @Test func aggregateBytesExact() throws {
        let codec = try AvroFixtures.codec()
        let bytes = codec.encode(Self.aggregate)
        #expect(AvroFixtures.hex(bytes) == AvroFixtures.hex(AvroFixtures.frame(2, Self.aggregatePayload)))
        #expect(try codec.decodeChaserAggregate(bytes) == Self.aggregate)
    }

    @Test func framingUsesBigEndianConfiguredIds() throws {
        var ids = AvroFixtures.staticIds
        ids["Chaser"] = 0x0102_0304
        let codec = try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: ids)
        let bytes = codec.encode(.chaser(Self.peacock))
        #expect(Array(bytes.prefix(5)) == [0, 1, 2, 3, 4])
        #expect(try codec.decodeInput(bytes) == .chaser(Self.peacock))
        #expect(codec.ids["Chaser"] == 0x0102_0304)
    }

    @Test func roundTripsAllTypes() throws {
        let codec = try AvroFixtures.codec()
        let events: [InputEvent] = [
            .chaser(Chaser(name: "", id: "ü\u{0}x", sent: Int64.min, ttl: Int64.max, previous: -1)),
            .chaser(Self.peacock),
            .bill(TopologyRulesTests.bill), .paymentRequest(TopologyRulesTests.request),
            .paymentFailed(TopologyRulesTests.failed),
        ]
        for event in events {
            #expect(try codec.decodeInput(codec.encode(event)) == event)
        }
        let empty = BillAggregate()
        #expect(try codec.decodeBillAggregate(codec.encode(empty)) == empty)
        let full = BillAggregate(
            bill: TopologyRulesTests.bill,
            paymentRequests: [TopologyRulesTests.request, TopologyRulesTests.request],
            lastPaymentFailed: TopologyRulesTests.failed, errored: true)
        #expect(try codec.decodeBillAggregate(codec.encode(full)) == full)
        #expect(try codec.decodeChaserAggregate(codec.encode(ChaserAggregate())) == ChaserAggregate())
        // A long string (beyond the initial 1 KiB scratch buffer).
        let long = InputEvent.chaser(Chaser(name: String(repeating: "x", count: 100_000), id: "i", sent: 1, ttl: 2))
        #expect(try codec.decodeInput(codec.encode(long)) == long)
        #expect(try codec.decodeInput(codec.encode(.chaser(Self.peacock))) == .chaser(Self.peacock))
    }

    @Test func decodeFailureReasons() throws {
        let codec = try AvroFixtures.codec()
        let good = codec.encode(.chaser(Self.peacock))
        func reason(_ bytes: [UInt8]) -> String? {
            AvroFixtures.failure { () throws(DecodeFailure) in _ = try codec.decodeInput(bytes) }?.reason
        }
        #expect(reason([]) == "too-short")
        #expect(reason([0, 0, 0]) == "too-short")
        #expect(reason([1] + good.dropFirst()) == "bad-magic")
        #expect(reason(Array("{\"json\":1}".utf8)) == "bad-magic")
        #expect(reason(AvroFixtures.frame(99, Self.peacockPayload)) == "unknown-schema-id")
        #expect(reason(AvroFixtures.frame(1, [])) == "corrupt-avro")
        #expect(reason(Array(good.dropLast())) == "corrupt-avro")
        // Bytes after a complete record are ignored (as Confluent's deserializers do).
        #expect(try codec.decodeInput(good + [0]) == .chaser(Self.peacock))
        #expect(reason(codec.encode(Self.aggregate)) == "wrong-type")
        #expect(reason(codec.encode(BillAggregate())) == "wrong-type")
        // Aggregate decoders reject events and each other.
        #expect(
            AvroFixtures.failure { () throws(DecodeFailure) in _ = try codec.decodeChaserAggregate(good) }?.reason
                == "wrong-type")
        #expect(
            AvroFixtures.failure { () throws(DecodeFailure) in
                _ = try codec.decodeBillAggregate(codec.encode(Self.aggregate))
            }?.reason == "wrong-type")
        let failure = AvroFixtures.failure { () throws(DecodeFailure) in
            _ = try codec.decodeInput(AvroFixtures.frame(1, [0x0e, 0x50]))
        }
        #expect(failure?.schemaId == 1)
        #expect(failure?.detail.contains("com.polecatworks.chaser.Chaser") == true)
        // The codec still works after failures.
        #expect(try codec.decodeInput(good) == .chaser(Self.peacock))
    }

    @Test func hostilePayloadsAreErrorsNotCrashes() throws {
        let codec = try AvroFixtures.codec()
        let cases: [[UInt8]] = [
            // string length ~ 2^62 / 1 GiB / negative
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            [0x80, 0x80, 0x80, 0x80, 0x08, 0x41],
            [0x01, 0x41],
            // varint longer than 10 bytes
            Array(repeating: 0xff, count: 20),
            // union branch out of range
            [0x02, 0x41, 0x02, 0x42, 0x02, 0x02, 0x09],
            [0x02, 0x41, 0x02, 0x42, 0x02, 0x02, 0x01],
            [0x02, 0x41, 0x02, 0x42, 0x02, 0x02, 0x04],
        ]
        for payload in cases {
            for id: Int32 in 1...6 {
                let bytes = AvroFixtures.frame(id, payload)
                #expect(throws: DecodeFailure.self) { try codec.decodeInput(bytes) }
                #expect(throws: DecodeFailure.self) { try codec.decodeChaserAggregate(bytes) }
                #expect(throws: DecodeFailure.self) { try codec.decodeBillAggregate(bytes) }
            }
        }
        // Aggregate array with a huge block count.
        let hugeArray = AvroFixtures.frame(2, [0xfe, 0xff, 0xff, 0xff, 0x0f, 0x02, 0x41])
        #expect(throws: DecodeFailure.self) { try codec.decodeChaserAggregate(hugeArray) }
    }

    /// avro-c 1.11 leaks the buffer of a string or bytes value that the payload ends inside, so such a payload
    /// is refused before avro-c reads it, saying where it runs short (the avro-record fuzz target, with
    /// LeakSanitizer, checks that nothing leaks).
    @Test func payloadEndingInsideAStringIsRefusedBeforeAvroC() throws {
        let codec = try AvroFixtures.codec()
        func detail(_ bytes: [UInt8], _ decode: (EventCodec, [UInt8]) throws(DecodeFailure) -> Void) -> String? {
            let failure = AvroFixtures.failure { () throws(DecodeFailure) in try decode(codec, bytes) }
            #expect(failure?.reason == "corrupt-avro")
            return failure?.detail
        }
        // A Bill whose billId claims 1,000 bytes, of which 3 follow.
        let bill = AvroFixtures.frame(3, [0xd0, 0x0f] + Array("abc".utf8))
        #expect(
            detail(bill) { c, b throws(DecodeFailure) in _ = try c.decodeInput(b) }?.contains(
                "string of 1000 bytes past the end") == true)
        // An Aggregate whose array block count is -2^63, which avro-c takes as 2^63 items: it reads items
        // until one's string runs short (tests/Fuzz/AvroRecordFuzz/regressions/min-block-count-avro-c-leak).
        let aggregate = AvroFixtures.frame(
            2,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x0d, 0x02, 0x04, 0x62, 0x31, 0x04, 0x63,
                0x03, 0x02, 0x41, 0, 0, 0, 0, 0, 0, 0xff, 0x0c, 0x01, 0xff,
            ])
        let aggregateDetail = detail(aggregate) { c, b throws(DecodeFailure) in _ = try c.decodeChaserAggregate(b) }
        #expect(aggregateDetail?.contains("past the end") == true, "\(aggregateDetail ?? "")")
        // Complete records still decode: the check walks them exactly.
        let good = codec.encode(.chaser(Self.peacock))
        #expect(try codec.decodeInput(good) == .chaser(Self.peacock))
        #expect(try codec.decodeChaserAggregate(codec.encode(Self.aggregate)) == Self.aggregate)
    }

    @Test func randomAndTruncatedBytesNeverCrash() throws {
        let codec = try AvroFixtures.codec()
        var rng = SplitMix64(seed: 7)
        let samples: [[UInt8]] = [
            codec.encode(.chaser(Self.peacock)), codec.encode(.bill(TopologyRulesTests.bill)),
            codec.encode(.paymentRequest(TopologyRulesTests.request)),
            codec.encode(.paymentFailed(TopologyRulesTests.failed)), codec.encode(Self.aggregate),
            codec.encode(
                BillAggregate(
                    bill: TopologyRulesTests.bill, paymentRequests: [TopologyRulesTests.request],
                    lastPaymentFailed: TopologyRulesTests.failed, errored: true)),
        ]
        var failures = 0
        for sample in samples {
            for cut in 0..<sample.count {  // every truncation
                let truncated = Array(sample.prefix(cut))
                if (try? codec.decodeInput(truncated)) != nil { Issue.record("truncated decode succeeded") }
                _ = try? codec.decodeBillAggregate(truncated)
                _ = try? codec.decodeChaserAggregate(truncated)
            }
        }
        for round in 0..<30_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                // mutate a valid frame (keep the header mostly valid)
                bytes = samples[Int(rng.next() % UInt64(samples.count))]
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = 5 + Int(rng.next() % UInt64(bytes.count - 5))
                    bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                }
            } else {
                let id = UInt8(1 + rng.next() % 6)
                bytes =
                    [0, 0, 0, 0, id] + (0..<Int(rng.next() % 48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            do {
                _ = try codec.decodeInput(bytes)
            } catch {
                failures += 1
                #expect(DecodeFailure.Reason.allCases.contains(error.kind))
            }
            _ = try? codec.decodeChaserAggregate(bytes)
            _ = try? codec.decodeBillAggregate(bytes)
        }
        #expect(failures > 0)
        #expect(try codec.decodeInput(samples[0]) == .chaser(Self.peacock))
    }

    @Test func badSchemaDirectoryIsReported() {
        #expect(throws: (any Error).self) { try EventCodec(schemaDir: "/nonexistent", ids: AvroFixtures.staticIds) }
        var missing = AvroFixtures.staticIds
        missing["Bill"] = nil
        #expect(throws: (any Error).self) { try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: missing) }
        var duplicate = AvroFixtures.staticIds
        duplicate["Bill"] = 1
        #expect(throws: (any Error).self) { try EventCodec(schemaDir: AvroFixtures.schemaDir, ids: duplicate) }
    }

    @Test func schemaFileNotMatchingTypesIsReportedAtInit() throws {
        let dir = "/tmp/k8s-micro-avro-test-\(getpid())"
        mkdir(dir, 0o755)
        defer {
            for kind in SchemaKind.allCases { unlink(SchemaFiles.path(of: kind, in: dir)) }
            rmdir(dir)
        }
        func write(_ kind: SchemaKind, _ text: String) {
            let f = fopen(SchemaFiles.path(of: kind, in: dir), "w")
            fputs(text, f)
            fclose(f)
        }
        for kind in SchemaKind.allCases {
            let source = fopen(SchemaFiles.path(of: kind, in: AvroFixtures.schemaDir), "r")
            var text = ""
            var buffer = [CChar](repeating: 0, count: 4096)
            while fgets(&buffer, 4096, source) != nil {
                text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            fclose(source)
            write(kind, text)
        }
        _ = try EventCodec(schemaDir: dir, ids: AvroFixtures.staticIds)
        // ttl as string: parses, but does not match the Swift type.
        write(
            .chaser,
            #"{"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":["#
                + #"{"name":"name","type":"string"},{"name":"id","type":"string"},{"name":"sent","type":"long"},"#
                + #"{"name":"ttl","type":"string"},{"name":"previous","type":["null","long"],"default":null}]}"#)
        #expect(throws: (any Error).self) { try EventCodec(schemaDir: dir, ids: AvroFixtures.staticIds) }
        write(.chaser, "{not json")
        do {
            _ = try EventCodec(schemaDir: dir, ids: AvroFixtures.staticIds)
            Issue.record("broken schema accepted")
        } catch {
            #expect("\(error)".contains("com.polecatworks.chaser.Chaser.avsc"))
        }
    }

    /// Two codecs on two threads (the consume thread and the socket thread), garbage included.
    @Test func oneCodecPerThreadConcurrently() async throws {
        let results = await withTaskGroup(of: Int.self) { group in
            for seed in 0..<2 {
                group.addTask {
                    guard let codec = try? AvroFixtures.codec() else { return -1 }
                    var rng = SplitMix64(seed: UInt64(seed))
                    var ok = 0
                    for i in 0..<20_000 {
                        let event = InputEvent.chaser(
                            Chaser(name: "n\(i)", id: "t\(seed)", sent: Int64(i), ttl: 1, previous: nil))
                        if (try? codec.decodeInput(codec.encode(event))) == event { ok += 1 }
                        let junk = [0, 0, 0, 0, 1] + (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                        _ = try? codec.decodeInput(junk)
                    }
                    return ok
                }
            }
            var all: [Int] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results == [20_000, 20_000])
    }
}
