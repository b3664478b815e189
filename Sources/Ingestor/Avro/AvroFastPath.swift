// Hand-written Avro binary of our six record types: EventCodec's fast path when a writer schema is exactly ours.
// Same bytes as avro-c's writer (checked at codec start-up), same acceptance as its reader (trailing bytes
// ignored, negative array block counts with sizes, varints of at most 10 bytes, invalid UTF-8 repaired).

/// The record schemas the fast path implements, as schemas/ ships them. EventCodec uses the fast path for a
/// kind only when the loaded schema file is equal to this one (else avro-c does all the work).
enum AvroBuiltinSchemas {
    static func json(_ kind: SchemaKind) -> String {
        switch kind {
        case .chaser: chaser
        case .aggregate: aggregate
        case .bill: bill
        case .paymentRequest: paymentRequest
        case .paymentFailed: paymentFailed
        case .billAggregate: billAggregate
        }
    }

    static let chaser = """
        {"type":"record","name":"Chaser","namespace":"com.polecatworks.chaser","fields":[
        {"name":"name","type":"string"},{"name":"id","type":"string"},{"name":"sent","type":"long"},
        {"name":"ttl","type":"long"},{"name":"previous","type":["null","long"],"default":null}]}
        """
    static let aggregate = """
        {"type":"record","name":"Aggregate","namespace":"com.polecatworks.chaser","fields":[
        {"name":"names","type":{"type":"array","items":"string"},"default":[]},{"name":"count","type":"long"},
        {"name":"latest","type":["null","long"],"default":null},
        {"name":"longest","type":["null","long"],"default":null}]}
        """
    static let billFields = """
        [{"name":"billId","type":"string"},{"name":"customerId","type":"string"},{"name":"orderId","type":"string"},
        {"name":"amountCents","type":"long"},{"name":"currency","type":"string"},{"name":"issuedAt","type":"long"},
        {"name":"dueDate","type":"long"}]
        """
    static let requestFields = """
        [{"name":"paymentId","type":"string"},{"name":"billId","type":"string"},
        {"name":"customerId","type":"string"},{"name":"amountCents","type":"long"},
        {"name":"currency","type":"string"},{"name":"requestedAt","type":"long"}]
        """
    static let failedFields = """
        [{"name":"paymentId","type":"string"},{"name":"billId","type":"string"},
        {"name":"customerId","type":"string"},{"name":"failureReason","type":"string"},
        {"name":"failedAt","type":"long"}]
        """
    static let bill =
        #"{"type":"record","name":"Bill","namespace":"com.polecatworks.billing","fields":"# + billFields + "}"
    static let paymentRequest =
        #"{"type":"record","name":"PaymentRequest","namespace":"com.polecatworks.billing","fields":"#
        + requestFields + "}"
    static let paymentFailed =
        #"{"type":"record","name":"PaymentFailed","namespace":"com.polecatworks.billing","fields":"#
        + failedFields + "}"
    static let billAggregate =
        #"{"type":"record","name":"BillAggregate","namespace":"com.polecatworks.billing","fields":["#
        + #"{"name":"bill","type":["null",{"type":"record","name":"Bill","fields":"# + billFields + "}],"
        + #""default":null},{"name":"paymentRequests","type":{"type":"array","items":{"type":"record","#
        + #""name":"PaymentRequest","fields":"# + requestFields + "}},"
        + #""default":[]},{"name":"lastPaymentFailed","type":["null",{"type":"record","name":"PaymentFailed","#
        + #""fields":"# + failedFields + #"}],"default":null},"#
        + #"{"name":"errored","type":"boolean","default":false}]}"#
}

/// Reads Avro binary from a borrowed buffer (a local value inside one decode call).
struct AvroBinaryReader {
    private let bytes: UnsafeRawBufferPointer
    /// Where the next read starts (an offset into the buffer given to `init`).
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Zigzag varint, at most 10 bytes (avro-c's limit).
    mutating func long() throws(AvroError) -> Int64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard shift < 70 else { throw AvroError("varint too long") }
            guard position < bytes.count else { throw AvroError("truncated at byte \(position)") }
            let b = bytes[position]
            position += 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
        }
        return Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    mutating func string() throws(AvroError) -> String {
        let length = try long()
        guard length >= 0 else { throw AvroError("negative string length \(length)") }
        guard length <= bytes.count - position else { throw AvroError("truncated string at byte \(position)") }
        let n = Int(length)
        defer { position += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + n]), as: UTF8.self)
    }

    /// A string's UTF-8 bytes, as a range of the buffer (nothing decoded or copied).
    mutating func stringRange() throws(AvroError) -> Range<Int> {
        let length = try long()
        guard length >= 0 else { throw AvroError("negative string length \(length)") }
        guard length <= bytes.count - position else { throw AvroError("truncated string at byte \(position)") }
        defer { position += Int(length) }
        return position..<position + Int(length)
    }

    mutating func bool() throws(AvroError) -> Bool {
        guard position < bytes.count else { throw AvroError("truncated at byte \(position)") }
        defer { position += 1 }
        return bytes[position] != 0
    }

    /// A `["null", long]` union.
    mutating func optionalLong() throws(AvroError) -> Int64? {
        try optionalBranch() ? try long() : nil
    }

    /// Reads a `["null", T]` discriminant: true for the T branch.
    mutating func optionalBranch() throws(AvroError) -> Bool {
        switch try long() {
        case 0: return false
        case 1: return true
        case let d: throw AvroError("union discriminant \(d) out of range")
        }
    }

    /// Calls `element` once per array item (blocks until the 0 count; negative counts carry a byte size).
    mutating func array(_ element: (inout AvroBinaryReader) throws(AvroError) -> Void) throws(AvroError) {
        var count = try long()
        while count != 0 {
            if count < 0 {
                guard count != .min else { throw AvroError("bad array block count") }
                count = -count
                _ = try long()
            }
            for _ in 0..<count { try element(&self) }
            count = try long()
        }
    }
}

/// Appends Avro binary to a byte array (a local value inside one encode call).
struct AvroBinaryWriter {
    var bytes: [UInt8]

    init(schemaId: Int32, capacity: Int) {
        self.init(schemaId: schemaId, appendingTo: [])
        bytes.reserveCapacity(capacity)
    }

    /// A writer that appends one framed value to `buffer` (moved in; take it back from `bytes`).
    init(schemaId: Int32, appendingTo buffer: consuming [UInt8]) {
        bytes = consume buffer
        let u = UInt32(bitPattern: schemaId)
        bytes.append(ConfluentFrame.magic)
        bytes.append(UInt8(truncatingIfNeeded: u >> 24))
        bytes.append(UInt8(truncatingIfNeeded: u >> 16))
        bytes.append(UInt8(truncatingIfNeeded: u >> 8))
        bytes.append(UInt8(truncatingIfNeeded: u))
    }

    /// A writer that appends an unframed payload to `buffer` (moved in; take it back from `bytes`).
    init(payloadAppendingTo buffer: consuming [UInt8]) {
        bytes = consume buffer
    }

    mutating func long(_ x: Int64) {
        var v = UInt64(bitPattern: (x << 1) ^ (x >> 63))
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func string(_ s: String) {
        withUTF8Bytes(s) { string(utf8: $0) }
    }

    /// A string given as its UTF-8 bytes.
    mutating func string(utf8: UnsafeRawBufferPointer) {
        long(Int64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Bytes that are already Avro (a record or value copied from another encoding).
    mutating func raw(_ encoded: UnsafeRawBufferPointer) { bytes.append(contentsOf: encoded) }

    mutating func bool(_ b: Bool) { bytes.append(b ? 1 : 0) }

    mutating func optionalLong(_ x: Int64?) {
        if let x {
            long(1)
            long(x)
        } else {
            long(0)
        }
    }
}

/// The six record types in Avro binary (payload only; the writer carries the frame header).
enum AvroFastCodec {
    static func readChaser(_ r: inout AvroBinaryReader) throws(AvroError) -> Chaser {
        Chaser(
            name: try r.string(), id: try r.string(), sent: try r.long(), ttl: try r.long(),
            previous: try r.optionalLong())
    }

    static func readBill(_ r: inout AvroBinaryReader) throws(AvroError) -> Bill {
        Bill(
            billId: try r.string(), customerId: try r.string(), orderId: try r.string(), amountCents: try r.long(),
            currency: try r.string(), issuedAt: try r.long(), dueDate: try r.long())
    }

    static func readPaymentRequest(_ r: inout AvroBinaryReader) throws(AvroError) -> PaymentRequest {
        PaymentRequest(
            paymentId: try r.string(), billId: try r.string(), customerId: try r.string(),
            amountCents: try r.long(), currency: try r.string(), requestedAt: try r.long())
    }

    static func readPaymentFailed(_ r: inout AvroBinaryReader) throws(AvroError) -> PaymentFailed {
        PaymentFailed(
            paymentId: try r.string(), billId: try r.string(), customerId: try r.string(),
            failureReason: try r.string(), failedAt: try r.long())
    }

    static func readChaserAggregate(_ r: inout AvroBinaryReader) throws(AvroError) -> ChaserAggregate {
        var a = ChaserAggregate()
        try r.array { (item) throws(AvroError) in a.names.append(try item.string()) }
        a.count = try r.long()
        a.latest = try r.optionalLong()
        a.longest = try r.optionalLong()
        return a
    }

    static func readBillAggregate(_ r: inout AvroBinaryReader) throws(AvroError) -> BillAggregate {
        var a = BillAggregate()
        if try r.optionalBranch() { a.bill = try readBill(&r) }
        try r.array { (item) throws(AvroError) in a.paymentRequests.append(try readPaymentRequest(&item)) }
        if try r.optionalBranch() { a.lastPaymentFailed = try readPaymentFailed(&r) }
        a.errored = try r.bool()
        return a
    }

    static func write(_ c: Chaser, _ w: inout AvroBinaryWriter) {
        w.string(c.name)
        w.string(c.id)
        w.long(c.sent)
        w.long(c.ttl)
        w.optionalLong(c.previous)
    }

    static func write(_ b: Bill, _ w: inout AvroBinaryWriter) {
        w.string(b.billId)
        w.string(b.customerId)
        w.string(b.orderId)
        w.long(b.amountCents)
        w.string(b.currency)
        w.long(b.issuedAt)
        w.long(b.dueDate)
    }

    static func write(_ p: PaymentRequest, _ w: inout AvroBinaryWriter) {
        w.string(p.paymentId)
        w.string(p.billId)
        w.string(p.customerId)
        w.long(p.amountCents)
        w.string(p.currency)
        w.long(p.requestedAt)
    }

    static func write(_ f: PaymentFailed, _ w: inout AvroBinaryWriter) {
        w.string(f.paymentId)
        w.string(f.billId)
        w.string(f.customerId)
        w.string(f.failureReason)
        w.long(f.failedAt)
    }

    /// Arrays as avro-c writes them: one block with the count (when not empty), then the 0 terminator.
    static func write(_ a: ChaserAggregate, _ w: inout AvroBinaryWriter) {
        if !a.names.isEmpty {
            w.long(Int64(a.names.count))
            for name in a.names { w.string(name) }
        }
        w.long(0)
        w.long(a.count)
        w.optionalLong(a.latest)
        w.optionalLong(a.longest)
    }

    static func write(_ a: BillAggregate, _ w: inout AvroBinaryWriter) {
        if let bill = a.bill {
            w.long(1)
            write(bill, &w)
        } else {
            w.long(0)
        }
        if !a.paymentRequests.isEmpty {
            w.long(Int64(a.paymentRequests.count))
            for p in a.paymentRequests { write(p, &w) }
        }
        w.long(0)
        if let failed = a.lastPaymentFailed {
            w.long(1)
            write(failed, &w)
        } else {
            w.long(0)
        }
        w.bool(a.errored)
    }
}

/// EventCodec with the hand-written path in front: records under our own schema ids whose schema file equals
/// the built-in one are read and written here; any other id (registry writers, aggregates on the input
/// topic, garbage) goes to EventCodec, so results and failures stay EventCodec's. NOT thread-safe: one per
/// thread, like the EventCodec it wraps (the stream thread's).
final class FastEventCodec {
    let codec: EventCodec
    /// Our schema id per `SchemaKind.index` when the fast path serves it; `disabled` otherwise.
    private var fastIds: [Int64]
    private static let disabled = Int64.min

    /// Whether any kind takes the fast path (false when the schema files differ from the built-in ones).
    var isActive: Bool { fastIds.contains { $0 != Self.disabled } }

    init(codec: EventCodec, schemaDir: String) {
        self.codec = codec
        let texts = (try? SchemaFiles.load(dir: schemaDir)) ?? [:]
        let ids = codec.ids
        fastIds = SchemaKind.allCases.map { kind in
            guard let id = ids[kind.rawValue], let text = texts[kind],
                let file = try? AvroSchema(json: text),
                let builtin = try? AvroSchema(json: AvroBuiltinSchemas.json(kind)), file.isEqual(to: builtin)
            else { return FastEventCodec.disabled }
            return Int64(id)
        }
        if !agreesWithAvroC() { fastIds = Array(repeating: Self.disabled, count: fastIds.count) }
    }

    // MARK: decoding

    func decodeInput(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> InputEvent {
        guard let id = Self.ownFrameId(bytes) else { return try codec.decodeInput(bytes) }
        switch id {
        case fastIds[SchemaKind.chaser.index]:
            return .chaser(try read(bytes, .chaser, AvroFastCodec.readChaser))
        case fastIds[SchemaKind.bill.index]:
            return .bill(try read(bytes, .bill, AvroFastCodec.readBill))
        case fastIds[SchemaKind.paymentRequest.index]:
            return .paymentRequest(try read(bytes, .paymentRequest, AvroFastCodec.readPaymentRequest))
        case fastIds[SchemaKind.paymentFailed.index]:
            return .paymentFailed(try read(bytes, .paymentFailed, AvroFastCodec.readPaymentFailed))
        default:
            return try codec.decodeInput(bytes)
        }
    }

    func decodeChaserAggregate(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> ChaserAggregate {
        guard Self.ownFrameId(bytes) == fastIds[SchemaKind.aggregate.index] else {
            return try codec.decodeChaserAggregate(bytes)
        }
        return try read(bytes, .aggregate, AvroFastCodec.readChaserAggregate)
    }

    func decodeBillAggregate(_ bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> BillAggregate {
        guard Self.ownFrameId(bytes) == fastIds[SchemaKind.billAggregate.index] else {
            return try codec.decodeBillAggregate(bytes)
        }
        return try read(bytes, .billAggregate, AvroFastCodec.readBillAggregate)
    }

    /// The schema id whose payload the hand-written path reads and writes for `kind` (nil: EventCodec serves it).
    func fastSchemaId(_ kind: SchemaKind) -> Int32? {
        let id = fastIds[kind.index]
        return id == Self.disabled ? nil : Int32(truncatingIfNeeded: id)
    }

    /// The frame's schema id when the header is well-formed (else EventCodec reports the failure).
    static func ownFrameId(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count >= ConfluentFrame.headerSize, bytes[0] == ConfluentFrame.magic else { return nil }
        let id = UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
        return Int64(Int32(bitPattern: id))
    }

    private func read<T>(
        _ bytes: UnsafeRawBufferPointer, _ kind: SchemaKind,
        _ body: (inout AvroBinaryReader) throws(AvroError) -> T
    ) throws(DecodeFailure) -> T {
        var reader = AvroBinaryReader(UnsafeRawBufferPointer(rebasing: bytes[ConfluentFrame.headerSize...]))
        do {
            return try body(&reader)
        } catch {
            let id = Int32(truncatingIfNeeded: fastIds[kind.index])
            throw DecodeFailure(
                .corruptAvro, "schema id \(id) (\(kind.fullName)): cannot decode: \(error.message)", schemaId: id)
        }
    }

    // MARK: encoding

    func encode(_ a: ChaserAggregate) -> [UInt8] {
        let id = fastIds[SchemaKind.aggregate.index]
        guard id != Self.disabled else { return codec.encode(a) }
        var w = AvroBinaryWriter(schemaId: Int32(truncatingIfNeeded: id), capacity: 32 + 16 * a.names.count)
        AvroFastCodec.write(a, &w)
        return w.bytes
    }

    func encode(_ a: BillAggregate) -> [UInt8] {
        let id = fastIds[SchemaKind.billAggregate.index]
        guard id != Self.disabled else { return codec.encode(a) }
        var w = AvroBinaryWriter(
            schemaId: Int32(truncatingIfNeeded: id), capacity: 160 + 96 * a.paymentRequests.count)
        AvroFastCodec.write(a, &w)
        return w.bytes
    }

    /// Appends the framed Avro of `a` to `buffer` (the epoch's value buffer: no array per value).
    func encode(_ a: ChaserAggregate, appendingTo buffer: inout [UInt8]) {
        append(.aggregate, to: &buffer, slowPath: { codec.encode(a) }, write: { AvroFastCodec.write(a, &$0) })
    }

    /// Appends the framed Avro of `a` to `buffer`.
    func encode(_ a: BillAggregate, appendingTo buffer: inout [UInt8]) {
        append(.billAggregate, to: &buffer, slowPath: { codec.encode(a) }, write: { AvroFastCodec.write(a, &$0) })
    }

    private func append(
        _ kind: SchemaKind, to buffer: inout [UInt8], slowPath: () -> [UInt8], write: (inout AvroBinaryWriter) -> Void
    ) {
        let id = fastIds[kind.index]
        guard id != Self.disabled else { return buffer.append(contentsOf: slowPath()) }
        var w = AvroBinaryWriter(schemaId: Int32(truncatingIfNeeded: id), appendingTo: take(&buffer))
        write(&w)
        buffer = take(&w.bytes)
    }

    func encode(_ event: InputEvent) -> [UInt8] {
        let kind: SchemaKind
        switch event {
        case .chaser: kind = .chaser
        case .bill: kind = .bill
        case .paymentRequest: kind = .paymentRequest
        case .paymentFailed: kind = .paymentFailed
        }
        let id = fastIds[kind.index]
        guard id != Self.disabled else { return codec.encode(event) }
        var w = AvroBinaryWriter(schemaId: Int32(truncatingIfNeeded: id), capacity: 128)
        switch event {
        case .chaser(let c): AvroFastCodec.write(c, &w)
        case .bill(let b): AvroFastCodec.write(b, &w)
        case .paymentRequest(let p): AvroFastCodec.write(p, &w)
        case .paymentFailed(let f): AvroFastCodec.write(f, &w)
        }
        return w.bytes
    }

    // MARK: start-up check

    /// Encodes samples both ways: any byte difference or failed round trip turns the fast path off.
    private func agreesWithAvroC() -> Bool {
        let bill = Bill(
            billId: "bill-1", customerId: "c", orderId: "", amountCents: -1, currency: "EUR", issuedAt: .max,
            dueDate: .min)
        let request = PaymentRequest(
            paymentId: "p\u{e9}", billId: "b", customerId: "c", amountCents: 1 << 40, currency: "", requestedAt: 4)
        let failed = PaymentFailed(paymentId: "p", billId: "b", customerId: "c", failureReason: "r", failedAt: -5)
        let events: [InputEvent] = [
            .chaser(Chaser(name: "n", id: "i", sent: 1, ttl: 2, previous: 3)),
            .chaser(Chaser(name: "", id: "x", sent: -64, ttl: 64, previous: nil)), .bill(bill),
            .paymentRequest(request), .paymentFailed(failed),
        ]
        let chasers = [
            ChaserAggregate(), ChaserAggregate(names: ["a", "bb"], count: 2, latest: 2, longest: nil),
            ChaserAggregate(names: [], count: 0, latest: nil, longest: 7),
        ]
        let bills = [
            BillAggregate(),
            BillAggregate(bill: bill, paymentRequests: [request, request], lastPaymentFailed: failed, errored: true),
            BillAggregate(bill: nil, paymentRequests: [request], lastPaymentFailed: nil, errored: false),
        ]
        func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }
        for event in events {
            let bytes = encode(event)
            guard same(bytes, codec.encode(event)) else { return false }
            let decoded = bytes.withUnsafeBytes { try? decodeInput($0) }
            guard decoded == event else { return false }
        }
        for a in chasers {
            let bytes = encode(a)
            guard same(bytes, codec.encode(a)), bytes.withUnsafeBytes({ try? decodeChaserAggregate($0) }) == a
            else { return false }
        }
        for a in bills {
            let bytes = encode(a)
            guard same(bytes, codec.encode(a)), bytes.withUnsafeBytes({ try? decodeBillAggregate($0) }) == a
            else { return false }
        }
        return true
    }
}

/// Runs `body` over the UTF-8 bytes of `text`, borrowed where they are contiguous (native and small strings;
/// copying the String first retained it).
func withUTF8Bytes<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    var text = text
    return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
}

/// Moves an array out of `array`, leaving it empty (appending to the moved array copies nothing).
func take(_ array: inout [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    swap(&out, &array)
    return out
}
