// Schema resolution with reader defaults for fields the writer lacks: scalars, unions, arrays, maps and
// nested records (avro-c's resolver rejects them; ReaderDefaults fills them), datum level and codec level.
import Foundation
import Testing

@testable import Ingestor

@Suite(.serialized) struct AvroDefaultsTests {
    static let reader = """
        {"type":"record","name":"R","namespace":"t","fields":[
         {"name":"id","type":"string"},
         {"name":"n","type":"long","default":42},
         {"name":"opt","type":["null","string"],"default":null},
         {"name":"tags","type":{"type":"array","items":"string"},"default":["a","b"]},
         {"name":"inner","type":{"type":"record","name":"Inner","fields":[
           {"name":"x","type":"int"},{"name":"label","type":"string","default":"none"}]},"default":{"x":7}},
         {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
           {"name":"k","type":"string"},{"name":"w","type":"double","default":1.5}]}},"default":[]},
         {"name":"m","type":{"type":"map","values":"long"},"default":{"a":1}},
         {"name":"u","type":["long","null"],"default":5},
         {"name":"flag","type":"boolean","default":true},
         {"name":"again","type":["null","Inner"],"default":null}]}
        """

    /// The writer has only `id` and `items`, whose Item records lack `w`.
    static let writer = """
        {"type":"record","name":"R","namespace":"t","fields":[
         {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
           {"name":"k","type":"string"}]}}},
         {"name":"id","type":"string"}]}
        """

    static func decode(_ datum: AvroDatum, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in try datum.decode(raw) }
    }

    @Test func missingFieldsAtEveryDepthGetTheirDefaults() throws {
        let datum = try AvroDatum(schema: AvroSchema(json: Self.reader), writer: AvroSchema(json: Self.writer))
        // items: one block of 2 (k = "p", "q"), end; id = "id1".
        let bytes: [UInt8] =
            AvroBytes.long(2) + AvroBytes.string("p") + AvroBytes.string("q") + [0] + AvroBytes.string("id1")
        for _ in 0..<2 {  // the value is reused: the second decode must not accumulate array elements
            try Self.decode(datum, bytes)
            let r = datum.root
            #expect(try r.child(0).string() == "id1")
            #expect(try r.child(1).long() == 42)  // scalar
            #expect(try r.child(2).optional() == nil)  // union null
            let tags = try r.child(3)
            #expect(try tags.count() == 2)
            #expect(try tags.child(0).string() == "a" && tags.child(1).string() == "b")  // array
            let inner = try r.child(4)  // record default; its own field default fills `label`
            #expect(try inner.child(0).int() == 7 && inner.child(1).string() == "none")
            let items = try r.child(5)  // nested records missing a field inside an array
            #expect(try items.count() == 2)
            #expect(try items.child(0).child(0).string() == "p" && items.child(0).child(1).double() == 1.5)
            #expect(try items.child(1).child(0).string() == "q" && items.child(1).child(1).double() == 1.5)
            let m = try r.child(6)
            #expect(try m.count() == 1)
            let (key, value) = try m.mapEntry(0)
            #expect(try key == "a" && value.long() == 1)  // map
            let (branch, u) = try r.child(7).branch()
            #expect(try branch == 0 && u.long() == 5)  // union default in its first (non-null) branch
            #expect(try r.child(8).bool())
            #expect(try r.child(9).optional() == nil)
        }
    }

    @Test func writerWithAllFieldsNeedsNoProjection() throws {
        let plan = try ReaderDefaults(readerJSON: Self.writer, writerJSON: Self.writer)
        #expect(!plan.needsProjection)
        let projecting = try ReaderDefaults(readerJSON: Self.reader, writerJSON: Self.writer)
        #expect(projecting.needsProjection)
        // The projection keeps only what the writer has, at every depth; named types are defined once.
        let json = projecting.projectedJSON
        #expect(!json.contains("\"w\"") && !json.contains("\"tags\"") && json.contains("\"k\""))
        _ = try AvroSchema(json: json)
    }

    @Test func missingFieldWithoutDefaultIsRejected() throws {
        let writer = #"{"type":"record","name":"R","namespace":"t","fields":[{"name":"n","type":"long"}]}"#
        #expect(throws: AvroError.self) {
            _ = try AvroDatum(schema: AvroSchema(json: Self.reader), writer: AvroSchema(json: writer))
        }
        // Also inside a nested record: Inner.x has no default.
        let nested = """
            {"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"string"},
             {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"label","type":"string"}]}}]}
            """
        #expect(throws: AvroError.self) {
            _ = try AvroDatum(schema: AvroSchema(json: Self.reader), writer: AvroSchema(json: nested))
        }
    }

    /// A codec whose BillAggregate reader schema has new defaulted fields inside its nested records
    /// (Bill.note, PaymentRequest.channel, PaymentFailed.attempt) decodes aggregates written with the old schema.
    @Test func billAggregateNestedRecordDefaultsInRegistryMode() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("avro-defaults-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.copyItem(atPath: AvroFixtures.schemaDir, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = "\(dir)/com.polecatworks.billing.BillAggregate.avsc"
        let original = try String(contentsOfFile: file, encoding: .utf8)
        let evolved =
            original
            .replacingOccurrences(
                of: #"{"name": "dueDate", "type": "long"}"#,
                with: #"{"name": "dueDate", "type": "long"}, {"name": "note", "type": "string", "default": ""}"#
            )
            .replacingOccurrences(
                of: #"{"name": "requestedAt", "type": "long"}"#,
                with:
                    #"{"name": "requestedAt", "type": "long"}, {"name": "channel", "type": "string", "default": "web"}"#
            )
            .replacingOccurrences(
                of: #"{"name": "failedAt", "type": "long"}"#,
                with: #"{"name": "failedAt", "type": "long"}, {"name": "attempt", "type": "int", "default": 1}"#)
        #expect(evolved.contains("note") && evolved.contains("channel") && evolved.contains("attempt"))
        try evolved.write(toFile: file, atomically: true, encoding: .utf8)

        let server = try FakeRegistry()
        defer { server.stop() }
        let client = try SchemaRegistryClient(url: server.url)
        let ids = try client.registerAll(schemaDir: dir, inputTopic: "input")
        let codec = try EventCodec(schemaDir: dir, ids: ids, registry: client)
        // Another producer still writes the original schema (id 700); before ReaderDefaults this was
        // unknown-schema-id ("Reader field note doesn't appear in writer").
        server.add(id: 700, schema: original)
        let bill = Bill(
            billId: "b1", customerId: "c1", orderId: "o1", amountCents: 500, currency: "EUR", issuedAt: 1, dueDate: 2)
        let request = PaymentRequest(
            paymentId: "p1", billId: "b1", customerId: "c1", amountCents: 500, currency: "EUR", requestedAt: 3)
        let failed = PaymentFailed(paymentId: "p1", billId: "b1", customerId: "c1", failureReason: "x", failedAt: 4)
        let aggregate = BillAggregate(bill: bill, paymentRequests: [request], lastPaymentFailed: failed, errored: true)
        let oldBytes = try AvroFixtures.codec().encode(aggregate)
        let framed = AvroFixtures.frame(700, Array(oldBytes[5...]))
        #expect(try codec.decodeBillAggregate(framed) == aggregate)
        // And our own (evolved) encoding round-trips.
        #expect(try codec.decodeBillAggregate(codec.encode(aggregate)) == aggregate)
    }
}
