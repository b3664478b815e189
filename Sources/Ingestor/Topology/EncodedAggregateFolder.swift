// The aggregation rules applied to aggregates kept as their framed Avro bytes (the record cache's values): a
// cache miss copies the stored bytes instead of decoding them into Swift values, a commit copies them instead of
// encoding, and an evicted entry frees one array. The bytes are the ones `ChaserRules` / `BillingRules` and
// the codec give (a unit test folds random events both ways).
#if canImport(Glibc)
    import Glibc
#endif

/// Folds events into encoded aggregates. Owned by the stream loop, on the stream thread (it reuses scratch
/// buffers). A struct with mutating folds: its buffers are then accessed without the run-time exclusivity
/// checks a class's stored properties get (2-3% of the stream thread at a million keys; the release build now
/// drops those checks everywhere in the ingestor, debug builds keep them).
struct EncodedAggregateFolder {
    private let codec: FastEventCodec
    /// The schema ids whose payload is folded here byte by byte; any other value (another schema id in the store,
    /// or schema files that differ from the built-in ones) is decoded, folded by the rules and encoded again.
    private let chaserId: Int32?
    private let billingId: Int32?
    /// The empty aggregates, encoded (a key the store does not have yet).
    let emptyChaser: [UInt8]
    let emptyBilling: [UInt8]

    /// The empty aggregate of `store`, encoded.
    func empty(_ store: StoreKind) -> [UInt8] { store == .chaser ? emptyChaser : emptyBilling }

    private var scratch: [UInt8] = []
    private var event: [UInt8] = []
    /// The names of a chaser aggregate, or the payment requests of a billing aggregate (ranges of its payload).
    private var items: [Range<Int>] = []
    /// The payment requests' ids.
    private var ids: [Range<Int>] = []

    init(codec: FastEventCodec) {
        self.codec = codec
        chaserId = codec.fastSchemaId(.aggregate)
        billingId = codec.fastSchemaId(.billAggregate)
        emptyChaser = codec.encode(ChaserAggregate())
        emptyBilling = codec.encode(BillAggregate())
    }

    // MARK: chaser

    /// `ChaserRules.fold` on `value`; throws when `value` cannot be read (it is left as it was).
    mutating func fold(_ value: inout [UInt8], _ chaser: Chaser) throws(DecodeFailure) {
        guard let id = chaserId, Self.frameId(value) == Int64(id) else {
            var aggregate = try Self.reading(value) { (raw) throws(DecodeFailure) in
                try codec.decodeChaserAggregate(raw)
            }
            ChaserRules.fold(&aggregate, chaser)
            value = codec.encode(aggregate)
            return
        }
        // Read first; a known name (the common case) changes only the three fields after the names, which are
        // rewritten in place. A new name rebuilds the value in `scratch`.
        var tail = (start: 0, count: Int64(0), latest: Int64?.none, longest: Int64?.none, known: false)
        do {
            try Self.reading(value) { (raw) throws(AvroError) in
                let payload = UnsafeRawBufferPointer(rebasing: raw[ConfluentFrame.headerSize...])
                var r = AvroBinaryReader(payload)
                items.removeAll(keepingCapacity: true)
                try r.array { (item) throws(AvroError) in items.append(try item.stringRange()) }
                tail = (r.position, try r.long(), try r.optionalLong(), try r.optionalLong(), false)
                tail.known = withUTF8Bytes(chaser.name) { name in
                    items.contains { Self.sameText(UnsafeRawBufferPointer(rebasing: payload[$0]), name) }
                }
                guard !tail.known else { return }
                var w = AvroBinaryWriter(schemaId: id, appendingTo: take(&scratch))
                w.long(Int64(items.count + 1))
                for item in items { w.string(utf8: UnsafeRawBufferPointer(rebasing: payload[item])) }
                w.string(chaser.name)
                w.long(0)
                scratch = take(&w.bytes)
            }
        } catch {
            throw unreadable(.aggregate, id, error)
        }
        if tail.known {
            value.removeSubrange((ConfluentFrame.headerSize + tail.start)...)
        } else {
            replace(&value)
        }
        var w = AvroBinaryWriter(payloadAppendingTo: take(&value))
        w.long(tail.count &+ 1)
        w.optionalLong(max(tail.latest ?? chaser.sent, chaser.sent))
        w.optionalLong(max(tail.longest ?? chaser.ttl, chaser.ttl))
        value = take(&w.bytes)
    }

    // MARK: billing

    /// `BillingRules.fold` on `value`; true when the event is a bill and the aggregate had none (the
    /// customer-bills metric). Throws when `value` cannot be read (it is left as it was).
    mutating func fold(_ value: inout [UInt8], _ input: InputEvent) throws(DecodeFailure) -> Bool {
        guard let id = billingId, Self.frameId(value) == Int64(id) else {
            var aggregate = try Self.reading(value) { (raw) throws(DecodeFailure) in try codec.decodeBillAggregate(raw)
            }
            let firstBill = aggregate.bill == nil && { if case .bill = input { true } else { false } }()
            BillingRules.fold(&aggregate, input)
            value = codec.encode(aggregate)
            return firstBill
        }
        if case .chaser = input { return false }
        // The event's own encoding first: what the aggregate takes from it is that record, byte for byte.
        var w = AvroBinaryWriter(payloadAppendingTo: take(&event))
        switch input {
        case .bill(let bill): AvroFastCodec.write(bill, &w)
        case .paymentRequest(let request): AvroFastCodec.write(request, &w)
        case .paymentFailed(let failed): AvroFastCodec.write(failed, &w)
        case .chaser: break
        }
        let event = take(&w.bytes)
        defer {
            self.event = event
            self.event.removeAll(keepingCapacity: true)
        }
        // Most events change only the end of the value: the new end is written to `scratch` from the parts of the
        // old value (still intact) and replaces the old end in place. `from` is where it starts (payload offset);
        // nil leaves the value as it is.
        var firstBill = false
        var from: Int?
        do {
            try Self.reading(value) { (raw) throws(AvroError) in
                try Self.reading(event) { (encoded) throws(AvroError) in
                    let payload = UnsafeRawBufferPointer(rebasing: raw[ConfluentFrame.headerSize...])
                    func part(_ range: Range<Int>) -> UnsafeRawBufferPointer {
                        UnsafeRawBufferPointer(rebasing: payload[range])
                    }
                    var parts = try billingParts(payload)
                    var w = AvroBinaryWriter(payloadAppendingTo: take(&scratch))
                    switch input {
                    case .bill(let bill):
                        firstBill = parts.bill == nil
                        if let old = parts.bill {
                            if Self.sameBytes(part(old), encoded) { break }
                            // Different bytes can still be equal text (Unicode canonical equivalence): the rules
                            // compare Swift values.
                            var reader = AvroBinaryReader(part(old))
                            if try AvroFastCodec.readBill(&reader) != bill { parts.errored = true }
                        }
                        from = 0
                        w.long(1)
                        w.raw(encoded)
                        writeRequests(payload, appending: nil, &w)
                        if let failed = parts.failed {
                            w.long(1)
                            w.raw(part(failed))
                        } else {
                            w.long(0)
                        }
                    case .paymentRequest(let request):
                        let known = withUTF8Bytes(request.paymentId) { paymentId in
                            ids.contains { Self.sameText(part($0), paymentId) }
                        }
                        if known {
                            // Only the last failure is cleared (if there is one).
                            if parts.failed == nil { break }
                            from = parts.requestsEnd
                        } else {
                            from = parts.requestsStart
                            writeRequests(payload, appending: encoded, &w)
                        }
                        w.long(0)
                    case .paymentFailed:
                        if parts.failed == nil {
                            from = parts.requestsEnd
                            w.long(1)
                            w.raw(encoded)
                        } else {
                            // A second failure without a clearing request: errored (the first failure is kept).
                            if parts.errored { break }
                            parts.errored = true
                            from = parts.erroredAt
                        }
                    case .chaser:
                        break
                    }
                    if from != nil { w.bool(parts.errored) }
                    scratch = take(&w.bytes)
                }
            }
        } catch {
            throw unreadable(.billAggregate, id, error)
        }
        if let from { value.replaceSubrange((ConfluentFrame.headerSize + from)..., with: scratch) }
        scratch.removeAll(keepingCapacity: true)
        return firstBill
    }

    /// Where the parts of an encoded billing aggregate lie in its payload.
    private struct BillingParts {
        var bill: Range<Int>?
        /// The payment requests: the array's block count through its 0 terminator.
        var requestsStart: Int
        var requestsEnd: Int
        var failed: Range<Int>?
        var errored: Bool
        var erroredAt: Int
    }

    /// Reads the parts; the payment requests' records and ids go to `items` and `ids`.
    private mutating func billingParts(_ payload: UnsafeRawBufferPointer) throws(AvroError) -> BillingParts {
        var r = AvroBinaryReader(payload)
        var bill: Range<Int>?
        if try r.optionalBranch() {
            let start = r.position
            try Self.skipBill(&r)
            bill = start..<r.position
        }
        let requestsStart = r.position
        items.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        try r.array { (item) throws(AvroError) in
            let start = item.position
            ids.append(try item.stringRange())
            for _ in 0..<2 { _ = try item.stringRange() }  // billId, customerId
            _ = try item.long()  // amountCents
            _ = try item.stringRange()  // currency
            _ = try item.long()  // requestedAt
            items.append(start..<item.position)
        }
        let requestsEnd = r.position
        var failed: Range<Int>?
        if try r.optionalBranch() {
            let start = r.position
            for _ in 0..<4 { _ = try r.stringRange() }  // paymentId, billId, customerId, failureReason
            _ = try r.long()  // failedAt
            failed = start..<r.position
        }
        let erroredAt = r.position
        return BillingParts(
            bill: bill, requestsStart: requestsStart, requestsEnd: requestsEnd, failed: failed,
            errored: try r.bool(), erroredAt: erroredAt)
    }

    private static func skipBill(_ r: inout AvroBinaryReader) throws(AvroError) {
        for _ in 0..<3 { _ = try r.stringRange() }  // billId, customerId, orderId
        _ = try r.long()  // amountCents
        _ = try r.stringRange()  // currency
        _ = try r.long()  // issuedAt
        _ = try r.long()  // dueDate
    }

    /// Writes the payment requests (`items` of `payload`, then `appending`) as avro-c writes an array: one block
    /// with the count (when not empty), then the 0 terminator. Mutating, like every method the folds call from
    /// their closures: a non-mutating call there copied the whole folder (retaining each of its buffers).
    private mutating func writeRequests(
        _ payload: UnsafeRawBufferPointer, appending: UnsafeRawBufferPointer?, _ w: inout AvroBinaryWriter
    ) {
        let n = items.count + (appending == nil ? 0 : 1)
        if n > 0 {
            w.long(Int64(n))
            for item in items { w.raw(UnsafeRawBufferPointer(rebasing: payload[item])) }
            if let appending { w.raw(appending) }
        }
        w.long(0)
    }

    // MARK: helpers

    /// Moves the folded value from `scratch` into `value` (keeping `value`'s buffer when it is large enough).
    private mutating func replace(_ value: inout [UInt8]) {
        value.removeAll(keepingCapacity: true)
        value.append(contentsOf: scratch)
        scratch.removeAll(keepingCapacity: true)
    }

    private mutating func unreadable(_ kind: SchemaKind, _ id: Int32, _ error: AvroError) -> DecodeFailure {
        scratch.removeAll(keepingCapacity: true)
        return DecodeFailure(
            .corruptAvro, "schema id \(id) (\(kind.fullName)): cannot decode: \(error.message)", schemaId: id)
    }

    private static func frameId(_ value: [UInt8]) -> Int64? {
        value.withUnsafeBytes { FastEventCodec.ownFrameId($0) }
    }

    /// `withUnsafeBytes` with a typed error.
    private static func reading<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R)
        throws(E) -> R
    {
        try bytes.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }

    private static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
        return memcmp(x, y, a.count) == 0
    }

    /// Equal as Swift strings, as the rules compare them: the same bytes, or (when either is not ASCII)
    /// canonically equivalent text, which can even match ASCII ("\u{212A}", the Kelvin sign, equals "K").
    private static func sameText(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        if sameBytes(a, b) { return true }
        if isASCII(a), isASCII(b) { return false }
        return String(decoding: a, as: UTF8.self) == String(decoding: b, as: UTF8.self)
    }

    /// No byte has its high bit set (eight at a time).
    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        var bits: UInt64 = 0
        while i + 8 <= bytes.count {
            bits |= bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            bits |= UInt64(bytes[i])
            i += 1
        }
        return bits & 0x8080_8080_8080_8080 == 0
    }
}
