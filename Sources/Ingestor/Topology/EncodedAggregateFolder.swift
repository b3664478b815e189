// The aggregation rules applied to aggregates kept as their framed Avro bytes (the record cache's values): a
// cache miss copies the stored bytes instead of decoding them into Swift values, a commit copies them instead of
// encoding, and an evicted entry frees one array. The bytes are the ones `ChaserRules` / `BillingRules` and
// the codec give (a unit test folds random events both ways).

/// Folds events into encoded aggregates. Owned by the stream loop, on the stream thread (it reuses scratch
/// buffers). A struct with mutating folds: its buffers are then accessed without the run-time exclusivity
/// checks a class's stored properties get (2-3% of the stream thread at a million keys).
struct EncodedAggregateFolder {
    private let codec: FastEventCodec
    /// The schema ids whose payload is folded here byte by byte; any other value (another schema id in the store,
    /// or schema files that differ from the built-in ones) is decoded, folded by the rules and encoded again.
    private let chaserId: Int32?
    private let billingId: Int32?
    /// The empty aggregates, encoded (a key the store does not have yet).
    let emptyChaser: [UInt8]
    let emptyBilling: [UInt8]

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
                tail.known = Self.withUTF8(chaser.name) { name in
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
        // The event's own encoding first: what the aggregate takes from it is that record, byte for byte.
        var w = AvroBinaryWriter(payloadAppendingTo: take(&event))
        switch input {
        case .bill(let bill): AvroFastCodec.write(bill, &w)
        case .paymentRequest(let request): AvroFastCodec.write(request, &w)
        case .paymentFailed(let failed): AvroFastCodec.write(failed, &w)
        case .chaser: return false
        }
        let event = take(&w.bytes)
        defer {
            self.event = event
            self.event.removeAll(keepingCapacity: true)
        }
        var firstBill = false
        do {
            try Self.reading(value) { (raw) throws(AvroError) in
                try Self.reading(event) { (encoded) throws(AvroError) in
                    let payload = UnsafeRawBufferPointer(rebasing: raw[ConfluentFrame.headerSize...])
                    var parts = try billingParts(payload)
                    switch input {
                    case .bill(let bill):
                        firstBill = parts.bill == nil
                        if let old = parts.bill,
                            !Self.sameBytes(UnsafeRawBufferPointer(rebasing: payload[old]), encoded)
                        {
                            // Different bytes can still be equal text (Unicode canonical equivalence): the rules
                            // compare Swift values.
                            var reader = AvroBinaryReader(UnsafeRawBufferPointer(rebasing: payload[old]))
                            if try AvroFastCodec.readBill(&reader) != bill { parts.errored = true }
                        }
                    case .paymentRequest(let request):
                        parts.failed = nil
                        let known = Self.withUTF8(request.paymentId) { paymentId in
                            ids.contains { Self.sameText(UnsafeRawBufferPointer(rebasing: payload[$0]), paymentId) }
                        }
                        if known { parts.request = false }
                    case .paymentFailed:
                        if parts.failed != nil {
                            parts.errored = true
                        } else {
                            parts.newFailed = true
                        }
                    case .chaser:
                        break
                    }
                    writeBilling(id: id, payload: payload, encoded: encoded, input: input, parts)
                }
            }
        } catch {
            throw unreadable(.billAggregate, id, error)
        }
        replace(&value)
        return firstBill
    }

    /// Where the parts of an encoded billing aggregate lie in its payload, and what the event changes.
    private struct BillingParts {
        var bill: Range<Int>?
        var failed: Range<Int>?
        var errored: Bool
        /// The event's payment request is appended (unless its id is known).
        var request = true
        /// The event's payment failure becomes the last one.
        var newFailed = false
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
        var failed: Range<Int>?
        if try r.optionalBranch() {
            let start = r.position
            for _ in 0..<4 { _ = try r.stringRange() }  // paymentId, billId, customerId, failureReason
            _ = try r.long()  // failedAt
            failed = start..<r.position
        }
        return BillingParts(bill: bill, failed: failed, errored: try r.bool())
    }

    private static func skipBill(_ r: inout AvroBinaryReader) throws(AvroError) {
        for _ in 0..<3 { _ = try r.stringRange() }  // billId, customerId, orderId
        _ = try r.long()  // amountCents
        _ = try r.stringRange()  // currency
        _ = try r.long()  // issuedAt
        _ = try r.long()  // dueDate
    }

    /// Writes the folded billing aggregate into `scratch`: the parts kept from `payload`, the event's record
    /// (`encoded`) where the event puts it. Arrays as avro-c writes them: one block, then the 0 terminator.
    private mutating func writeBilling(
        id: Int32, payload: UnsafeRawBufferPointer, encoded: UnsafeRawBufferPointer, input: InputEvent,
        _ parts: BillingParts
    ) {
        func part(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: payload[range]) }
        var w = AvroBinaryWriter(schemaId: id, appendingTo: take(&scratch))
        let isBill = { if case .bill = input { true } else { false } }()
        let isRequest = { if case .paymentRequest = input { true } else { false } }()
        if isBill {
            w.long(1)
            w.raw(encoded)
        } else if let bill = parts.bill {
            w.long(1)
            w.raw(part(bill))
        } else {
            w.long(0)
        }
        let appended = isRequest && parts.request
        let n = items.count + (appended ? 1 : 0)
        if n > 0 {
            w.long(Int64(n))
            for item in items { w.raw(part(item)) }
            if appended { w.raw(encoded) }
        }
        w.long(0)
        if parts.newFailed {
            w.long(1)
            w.raw(encoded)
        } else if let failed = parts.failed {
            w.long(1)
            w.raw(part(failed))
        } else {
            w.long(0)
        }
        w.bool(parts.errored)
        scratch = take(&w.bytes)
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

    private static func withUTF8<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var text = text
        return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    private static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && a.elementsEqual(b)
    }

    /// Equal as Swift strings, as the rules compare them: the same bytes, or (non-ASCII only) canonically
    /// equivalent text.
    private static func sameText(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        if sameBytes(a, b) { return true }
        if a.allSatisfy({ $0 < 0x80 }), b.allSatisfy({ $0 < 0x80 }) { return false }
        return String(decoding: a, as: UTF8.self) == String(decoding: b, as: UTF8.self)
    }
}

/// Moves an array out of `array`, leaving it empty (appending to the moved array copies nothing).
private func take(_ array: inout [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    swap(&out, &array)
    return out
}
