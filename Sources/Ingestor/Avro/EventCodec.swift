// Avro codec of the wire format: Swift event/aggregate values <-> framed Confluent bytes.
// NOT thread-safe: one instance per thread (the consume thread has one, the socket thread another).
// Each instance owns its avro-c schemas and reusable values; a shared SchemaRegistryClient is fine.
import Shared

/// A codec construction problem (schema files, ids, or a schema that does not match our types).
struct EventCodecError: Error, CustomStringConvertible, Sendable {
    var description: String
}

final class EventCodec {
    /// How to read one writer schema id: into which type, with which reusable value, and where each
    /// reader field sits in that value (-1: absent from the writer, take the reader default).
    private final class Decoder {
        let kind: SchemaKind
        let id: Int32
        let datum: AvroDatum
        let fieldMap: [Int]

        init(kind: SchemaKind, id: Int32, datum: AvroDatum, fieldMap: [Int]) {
            self.kind = kind
            self.id = id
            self.datum = datum
            self.fieldMap = fieldMap
        }
    }

    private let readerSchemas: [SchemaKind: AvroSchema]
    private let schemaTexts: [SchemaKind: String]
    private let idsByKind: [SchemaKind: Int32]
    private var decoders: [Int32: Decoder] = [:]
    /// Our own ids and their decoders, scanned linearly before the dictionary (cheaper than hashing).
    private var ownIds: [Int32] = []
    private var ownDecoders: [Decoder] = []
    /// Encoders by `SchemaKind.index` (the decoders of our own ids).
    private var encoders: [Decoder] = []
    private let registry: SchemaRegistryClient?
    /// Ids that failed recently: not asked again before `retryAt`.
    private var rejected: [Int32: (failure: DecodeFailure, retryAt: ContinuousClock.Instant)] = [:]

    /// The schema ids this codec writes, by short name (Chaser, Aggregate, ...).
    var ids: [String: Int32] {
        Dictionary(uniqueKeysWithValues: idsByKind.map { ($0.key.rawValue, $0.value) })
    }

    /// - Parameters:
    ///   - schemaDir: directory of the six `<full name>.avsc` files.
    ///   - ids: schema id by short name (`schemaRegistry.staticIds`, or the ids the registry assigned).
    ///   - registry: in registry mode, where unknown writer schema ids are fetched (then resolved).
    init(schemaDir: String, ids: [String: Int32], registry: SchemaRegistryClient? = nil) throws {
        let texts = try SchemaFiles.load(dir: schemaDir)
        var schemas: [SchemaKind: AvroSchema] = [:]
        var idsByKind: [SchemaKind: Int32] = [:]
        for kind in SchemaKind.allCases {
            guard let text = texts[kind] else { throw EventCodecError(description: "no schema for \(kind)") }
            let schema: AvroSchema
            do {
                schema = try AvroSchema(json: text)
            } catch {
                throw EventCodecError(description: "\(SchemaFiles.path(of: kind, in: schemaDir)): \(error)")
            }
            guard schema.isRecord, schema.fullName == kind.fullName else {
                throw EventCodecError(
                    description: "\(SchemaFiles.path(of: kind, in: schemaDir)) defines '\(schema.fullName)', "
                        + "expected record \(kind.fullName)")
            }
            guard let id = ids[kind.rawValue] else {
                throw EventCodecError(description: "no schema id for \(kind.rawValue) (schemaRegistry.staticIds)")
            }
            if let other = idsByKind.first(where: { $0.value == id }) {
                throw EventCodecError(
                    description: "schema id \(id) given to both \(other.key.rawValue) and \(kind.rawValue)")
            }
            schemas[kind] = schema
            idsByKind[kind] = id
        }
        self.readerSchemas = schemas
        self.schemaTexts = texts
        self.idsByKind = idsByKind
        self.registry = registry
        for kind in SchemaKind.allCases {
            guard let schema = schemas[kind], let id = idsByKind[kind] else { continue }
            let fields = try EventCodec.fieldNames(ofRecordJSON: texts[kind] ?? "")
            let decoder = Decoder(
                kind: kind, id: id, datum: try AvroDatum(schema: schema), fieldMap: Array(0..<fields.count))
            decoders[id] = decoder
            ownIds.append(id)
            ownDecoders.append(decoder)
            encoders.append(decoder)
        }
        try selfTest()
    }

    // MARK: - Decoding

    /// Decodes one input-topic record value. Aggregates are `wrong-type`.
    func decodeInput(_ bytes: [UInt8]) throws(DecodeFailure) -> InputEvent {
        try withBytes(bytes) { (raw) throws(DecodeFailure) in try decodeInput(raw) }
    }

    /// Decodes one input-topic record value without copying it (e.g. straight from a Kafka message).
    func decodeInput(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> InputEvent {
        let decoder = try decoder(for: bytes)
        switch decoder.kind {
        case .chaser: return .chaser(try read(bytes, decoder, EventCodec.readChaser))
        case .bill: return .bill(try read(bytes, decoder, EventCodec.readBill))
        case .paymentRequest: return .paymentRequest(try read(bytes, decoder, EventCodec.readPaymentRequest))
        case .paymentFailed: return .paymentFailed(try read(bytes, decoder, EventCodec.readPaymentFailed))
        case .aggregate, .billAggregate:
            throw DecodeFailure(
                .wrongType, "schema id \(decoder.id) is \(decoder.kind.fullName), an aggregate, not an input event",
                schemaId: decoder.id)
        }
    }

    /// Decodes a framed chaser Aggregate (store value / chaser topic record).
    func decodeChaserAggregate(_ bytes: [UInt8]) throws(DecodeFailure) -> ChaserAggregate {
        try withBytes(bytes) { (raw) throws(DecodeFailure) in try decodeChaserAggregate(raw) }
    }

    func decodeChaserAggregate(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> ChaserAggregate {
        let decoder = try decoder(for: bytes)
        guard decoder.kind == .aggregate else { throw wrongType(decoder, expected: .aggregate) }
        return try read(bytes, decoder, EventCodec.readChaserAggregate)
    }

    /// Decodes a framed BillAggregate (store value / billing topic record).
    func decodeBillAggregate(_ bytes: [UInt8]) throws(DecodeFailure) -> BillAggregate {
        try withBytes(bytes) { (raw) throws(DecodeFailure) in try decodeBillAggregate(raw) }
    }

    func decodeBillAggregate(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> BillAggregate {
        let decoder = try decoder(for: bytes)
        guard decoder.kind == .billAggregate else { throw wrongType(decoder, expected: .billAggregate) }
        return try read(bytes, decoder, EventCodec.readBillAggregate)
    }

    private func withBytes<R>(
        _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(DecodeFailure) -> R
    ) throws(DecodeFailure) -> R {
        let result: Result<R, DecodeFailure> = bytes.withUnsafeBytes { raw in
            do throws(DecodeFailure) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private func wrongType(_ decoder: Decoder, expected: SchemaKind) -> DecodeFailure {
        DecodeFailure(
            .wrongType, "schema id \(decoder.id) is \(decoder.kind.fullName), expected \(expected.fullName)",
            schemaId: decoder.id)
    }

    private func decoder(for bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> Decoder {
        let id = try ConfluentFrame.schemaId(of: bytes)
        for i in 0..<ownIds.count where ownIds[i] == id { return ownDecoders[i] }
        if let decoder = decoders[id] { return decoder }
        return try fetchDecoder(id: id)
    }

    private func read<T>(
        _ bytes: UnsafeRawBufferPointer, _ decoder: Decoder,
        _ extract: (AvroValue, [Int]) throws(AvroError) -> T
    ) throws(DecodeFailure) -> T {
        do {
            try decoder.datum.decode(UnsafeRawBufferPointer(rebasing: bytes[ConfluentFrame.headerSize...]))
            return try extract(decoder.datum.root, decoder.fieldMap)
        } catch {
            throw DecodeFailure(
                .corruptAvro, "schema id \(decoder.id) (\(decoder.kind.fullName)): \(error.message)",
                schemaId: decoder.id)
        }
    }

    // MARK: - Unknown writer schemas (registry mode)

    private func fetchDecoder(id: Int32) throws(DecodeFailure) -> Decoder {
        let now = ContinuousClock.now
        if let previous = rejected[id], now < previous.retryAt { throw previous.failure }
        guard let registry else {
            throw DecodeFailure(
                .unknownSchemaId, "schema id \(id) is not one of the configured ids \(sortedIds)", schemaId: id)
        }
        do {
            let decoder = try buildDecoder(id: id, registry: registry)
            decoders[id] = decoder
            rejected[id] = nil
            return decoder
        } catch let failure {
            if rejected.count >= 4096 { rejected.removeAll(keepingCapacity: true) }
            // Transport trouble is retried soon; a definite answer is kept longer.
            let transient = failure.detail.hasPrefix("registry unreachable")
            rejected[id] = (failure, now.advanced(by: .seconds(transient ? 5 : 60)))
            throw failure
        }
    }

    private var sortedIds: String {
        idsByKind.sorted { $0.value < $1.value }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: ",")
    }

    private func buildDecoder(id: Int32, registry: SchemaRegistryClient) throws(DecodeFailure) -> Decoder {
        let text: String
        do {
            text = try registry.schema(id: id)
        } catch {
            let prefix = error.isNotFound ? "registry has no schema" : "registry unreachable"
            throw DecodeFailure(.unknownSchemaId, "\(prefix) for id \(id): \(error)", schemaId: id)
        }
        let writer: AvroSchema
        do {
            writer = try AvroSchema(json: text)
        } catch {
            throw DecodeFailure(.unknownSchemaId, "registry schema id \(id) does not parse: \(error)", schemaId: id)
        }
        guard writer.isRecord, let kind = SchemaKind(fullName: writer.fullName),
            let reader = readerSchemas[kind], let readerText = schemaTexts[kind]
        else {
            throw DecodeFailure(
                .wrongType, "schema id \(id) is '\(writer.fullName)', not one of our record types", schemaId: id)
        }
        do {
            let readerFields = try EventCodec.fieldNames(ofRecordJSON: readerText)
            if writer.isEqual(to: reader) {
                return Decoder(
                    kind: kind, id: id, datum: try AvroDatum(schema: reader),
                    fieldMap: Array(0..<readerFields.count))
            }
            // AvroDatum fills the reader defaults of fields the writer lacks, at any depth (avro-c cannot).
            let datum = try AvroDatum(schema: reader, writer: writer)
            return Decoder(kind: kind, id: id, datum: datum, fieldMap: Array(0..<readerFields.count))
        } catch {
            throw DecodeFailure(
                .unknownSchemaId,
                "writer schema id \(id) (\(kind.fullName)) cannot be resolved against ours: \(error)", schemaId: id)
        }
    }

    /// Field names of a record schema's JSON, in order.
    private static func fieldNames(ofRecordJSON text: String) throws(AvroError) -> [String] {
        guard let doc = try? JSONParser.parse(text), case .array(let fields)? = doc["fields"] else {
            throw AvroError("schema JSON is not a record with fields")
        }
        var names: [String] = []
        for field in fields {
            guard case .string(let name)? = field["name"] else { throw AvroError("record field without a name") }
            names.append(name)
        }
        return names
    }

    // MARK: - Encoding

    /// Framed Avro of one input event (Confluent wire format, our schema id).
    func encode(_ event: InputEvent) -> [UInt8] {
        switch event {
        case .chaser(let c): return encodeOrDie(.chaser) { (r) throws(AvroError) in try EventCodec.write(c, r) }
        case .bill(let b): return encodeOrDie(.bill) { (r) throws(AvroError) in try EventCodec.write(b, r) }
        case .paymentRequest(let p):
            return encodeOrDie(.paymentRequest) { (r) throws(AvroError) in try EventCodec.write(p, r) }
        case .paymentFailed(let f):
            return encodeOrDie(.paymentFailed) { (r) throws(AvroError) in try EventCodec.write(f, r) }
        }
    }

    /// Framed Avro of a chaser Aggregate.
    func encode(_ a: ChaserAggregate) -> [UInt8] {
        encodeOrDie(.aggregate) { (r) throws(AvroError) in try EventCodec.write(a, r) }
    }

    /// Framed Avro of a BillAggregate.
    func encode(_ a: BillAggregate) -> [UInt8] {
        encodeOrDie(.billAggregate) { (r) throws(AvroError) in try EventCodec.write(a, r) }
    }

    /// Encoding only fails if the schema files do not match our types, which `selfTest` rules out at
    /// init, or when memory runs out: neither is recoverable here.
    private func encodeOrDie(_ kind: SchemaKind, _ fill: (AvroValue) throws(AvroError) -> Void) -> [UInt8] {
        do {
            return try encodeChecked(kind, fill)
        } catch {
            fatalError("Avro encoding of \(kind.fullName) failed after the start-up self-test: \(error)")
        }
    }

    private func encodeChecked(
        _ kind: SchemaKind, _ fill: (AvroValue) throws(AvroError) -> Void
    ) throws(AvroError) -> [UInt8] {
        let encoder = encoders[kind.index]
        try encoder.datum.reset()
        try fill(encoder.datum.root)
        let id = encoder.id
        return try encoder.datum.encode { payload in ConfluentFrame.framed(id: id, payload: payload) }
    }

    /// Round-trips one sample of every type, so a schema file that does not match the Swift types is
    /// reported at start-up (and encoding can never fail later).
    private func selfTest() throws {
        let bill = Bill(
            billId: "b", customerId: "c", orderId: "o", amountCents: 1, currency: "EUR", issuedAt: 2, dueDate: 3)
        let request = PaymentRequest(
            paymentId: "p", billId: "b", customerId: "c", amountCents: 1, currency: "EUR", requestedAt: 4)
        let failed = PaymentFailed(paymentId: "p", billId: "b", customerId: "c", failureReason: "r", failedAt: 5)
        let events: [InputEvent] = [
            .chaser(Chaser(name: "n", id: "i", sent: 1, ttl: 2, previous: 3)), .bill(bill),
            .paymentRequest(request), .paymentFailed(failed),
        ]
        do {
            for event in events {
                let bytes = try encodeChecked(kindOf(event)) { (r) throws(AvroError) in
                    try EventCodec.write(event, r)
                }
                guard try decodeInput(bytes) == event else {
                    throw EventCodecError(description: "\(event.fullName) does not round-trip")
                }
            }
            let aggregate = ChaserAggregate(names: ["a"], count: 1, latest: 2, longest: nil)
            let aggregateBytes = try encodeChecked(.aggregate) { (r) throws(AvroError) in
                try EventCodec.write(aggregate, r)
            }
            let billAggregate = BillAggregate(
                bill: bill, paymentRequests: [request], lastPaymentFailed: failed, errored: true)
            let billBytes = try encodeChecked(.billAggregate) { (r) throws(AvroError) in
                try EventCodec.write(billAggregate, r)
            }
            guard try decodeChaserAggregate(aggregateBytes) == aggregate,
                try decodeBillAggregate(billBytes) == billAggregate
            else { throw EventCodecError(description: "aggregates do not round-trip") }
        } catch let error as EventCodecError {
            throw error
        } catch {
            throw EventCodecError(description: "schema files do not match the event types: \(error)")
        }
    }

    private func kindOf(_ event: InputEvent) -> SchemaKind {
        switch event {
        case .chaser: .chaser
        case .bill: .bill
        case .paymentRequest: .paymentRequest
        case .paymentFailed: .paymentFailed
        }
    }

    // MARK: - Swift value <-> Avro value

    private static func write(_ event: InputEvent, _ r: AvroValue) throws(AvroError) {
        switch event {
        case .chaser(let c): try write(c, r)
        case .bill(let b): try write(b, r)
        case .paymentRequest(let p): try write(p, r)
        case .paymentFailed(let f): try write(f, r)
        }
    }

    private static func write(_ c: Chaser, _ r: AvroValue) throws(AvroError) {
        try r.child(0).setString(c.name)
        try r.child(1).setString(c.id)
        try r.child(2).setLong(c.sent)
        try r.child(3).setLong(c.ttl)
        try writeOptional(c.previous, r.child(4))
    }

    private static func write(_ b: Bill, _ r: AvroValue) throws(AvroError) {
        try r.child(0).setString(b.billId)
        try r.child(1).setString(b.customerId)
        try r.child(2).setString(b.orderId)
        try r.child(3).setLong(b.amountCents)
        try r.child(4).setString(b.currency)
        try r.child(5).setLong(b.issuedAt)
        try r.child(6).setLong(b.dueDate)
    }

    private static func write(_ p: PaymentRequest, _ r: AvroValue) throws(AvroError) {
        try r.child(0).setString(p.paymentId)
        try r.child(1).setString(p.billId)
        try r.child(2).setString(p.customerId)
        try r.child(3).setLong(p.amountCents)
        try r.child(4).setString(p.currency)
        try r.child(5).setLong(p.requestedAt)
    }

    private static func write(_ f: PaymentFailed, _ r: AvroValue) throws(AvroError) {
        try r.child(0).setString(f.paymentId)
        try r.child(1).setString(f.billId)
        try r.child(2).setString(f.customerId)
        try r.child(3).setString(f.failureReason)
        try r.child(4).setLong(f.failedAt)
    }

    private static func write(_ a: ChaserAggregate, _ r: AvroValue) throws(AvroError) {
        let names = try r.child(0)
        for name in a.names { try names.append().setString(name) }
        try r.child(1).setLong(a.count)
        try writeOptional(a.latest, r.child(2))
        try writeOptional(a.longest, r.child(3))
    }

    private static func write(_ a: BillAggregate, _ r: AvroValue) throws(AvroError) {
        if let bill = a.bill { try write(bill, r.child(0).setBranch(1)) } else { try r.child(0).setBranch(0) }
        let requests = try r.child(1)
        for request in a.paymentRequests { try write(request, requests.append()) }
        if let failed = a.lastPaymentFailed {
            try write(failed, r.child(2).setBranch(1))
        } else {
            try r.child(2).setBranch(0)
        }
        try r.child(3).setBool(a.errored)
    }

    private static func writeOptional(_ value: Int64?, _ union: AvroValue) throws(AvroError) {
        if let value { try union.setBranch(1).setLong(value) } else { try union.setBranch(0) }
    }

    private static func readChaser(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> Chaser {
        Chaser(
            name: try r.child(m[0]).string(), id: try r.child(m[1]).string(), sent: try r.child(m[2]).long(),
            ttl: try r.child(m[3]).long(), previous: m[4] < 0 ? nil : try r.child(m[4]).optional()?.long())
    }

    private static func readBill(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> Bill {
        Bill(
            billId: try r.child(m[0]).string(), customerId: try r.child(m[1]).string(),
            orderId: try r.child(m[2]).string(), amountCents: try r.child(m[3]).long(),
            currency: try r.child(m[4]).string(), issuedAt: try r.child(m[5]).long(),
            dueDate: try r.child(m[6]).long())
    }

    private static func readPaymentRequest(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> PaymentRequest {
        PaymentRequest(
            paymentId: try r.child(m[0]).string(), billId: try r.child(m[1]).string(),
            customerId: try r.child(m[2]).string(), amountCents: try r.child(m[3]).long(),
            currency: try r.child(m[4]).string(), requestedAt: try r.child(m[5]).long())
    }

    private static func readPaymentFailed(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> PaymentFailed {
        PaymentFailed(
            paymentId: try r.child(m[0]).string(), billId: try r.child(m[1]).string(),
            customerId: try r.child(m[2]).string(), failureReason: try r.child(m[3]).string(),
            failedAt: try r.child(m[4]).long())
    }

    /// Field maps of nested records: identity (avro-c resolves nested records itself).
    private static let billFields = Array(0..<7)
    private static let requestFields = Array(0..<6)
    private static let failedFields = Array(0..<5)

    private static func readChaserAggregate(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> ChaserAggregate {
        var a = ChaserAggregate()
        if m[0] >= 0 {
            let names = try r.child(m[0])
            let n = try names.count()
            a.names.reserveCapacity(n)
            for i in 0..<n { a.names.append(try names.child(i).string()) }
        }
        a.count = try r.child(m[1]).long()
        if m[2] >= 0 { a.latest = try r.child(m[2]).optional()?.long() }
        if m[3] >= 0 { a.longest = try r.child(m[3]).optional()?.long() }
        return a
    }

    private static func readBillAggregate(_ r: AvroValue, _ m: [Int]) throws(AvroError) -> BillAggregate {
        var a = BillAggregate()
        if m[0] >= 0, let bill = try r.child(m[0]).optional() { a.bill = try readBill(bill, billFields) }
        if m[1] >= 0 {
            let requests = try r.child(m[1])
            let n = try requests.count()
            a.paymentRequests.reserveCapacity(n)
            for i in 0..<n { a.paymentRequests.append(try readPaymentRequest(requests.child(i), requestFields)) }
        }
        if m[2] >= 0, let failed = try r.child(m[2]).optional() {
            a.lastPaymentFailed = try readPaymentFailed(failed, failedFields)
        }
        if m[3] >= 0 { a.errored = try r.child(m[3]).bool() }
        return a
    }
}
