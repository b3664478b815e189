// libFuzzer entry for record values off the input topic, differentially: Confluent framing and schema-id
// dispatch, then the hand-written Avro fast path (FastEventCodec) against the avro-c path (EventCodec). Both
// must give the same event (or aggregate), or both reject it with the same reason; any difference is a bug.
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Ingestor/Avro, libavro).
import Glibc

private let schemaDir = getenv("K8S_MICRO_SCHEMA_DIR").map { String(cString: $0) } ?? "schemas"
private let ids: [String: Int32] = [
    "Chaser": 1, "Aggregate": 2, "Bill": 3, "PaymentRequest": 4, "PaymentFailed": 5, "BillAggregate": 6,
]
nonisolated(unsafe) private let codecs: (fast: FastEventCodec, plain: EventCodec) = {
    do {
        let fast = FastEventCodec(codec: try EventCodec(schemaDir: schemaDir, ids: ids), schemaDir: schemaDir)
        precondition(fast.isActive, "the fast path is off: nothing to compare (schemas in \(schemaDir)?)")
        return (fast, try EventCodec(schemaDir: schemaDir, ids: ids))
    } catch {
        fatalError("cannot load the schemas from \(schemaDir) (K8S_MICRO_SCHEMA_DIR): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func avroRecordFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // First byte: its low bit says whether the rest is a whole record value (framing exercised) or an Avro
    // payload framed here under schema id 0...7 (bits 1-3: our six ids, 0 and 7 unknown).
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let rest = UnsafeRawBufferPointer(rebasing: input[1...])
    let record: [UInt8] =
        input[0] & 1 == 0 ? Array(rest) : [0, 0, 0, 0, (input[0] >> 1) & 7] + Array(rest)
    record.withUnsafeBytes { bytes in
        same(
            outcome { () throws(DecodeFailure) in try codecs.fast.decodeInput(bytes) },
            outcome { () throws(DecodeFailure) in try codecs.plain.decodeInput(bytes) }, "input event", record)
        same(
            outcome { () throws(DecodeFailure) in try codecs.fast.decodeChaserAggregate(bytes) },
            outcome { () throws(DecodeFailure) in try codecs.plain.decodeChaserAggregate(bytes) }, "Aggregate", record)
        same(
            outcome { () throws(DecodeFailure) in try codecs.fast.decodeBillAggregate(bytes) },
            outcome { () throws(DecodeFailure) in try codecs.plain.decodeBillAggregate(bytes) }, "BillAggregate",
            record)
    }
    return 0
}

private func outcome<T>(_ body: () throws(DecodeFailure) -> T) -> Result<T, DecodeFailure> {
    do throws(DecodeFailure) { return .success(try body()) } catch { return .failure(error) }
}

private func same<T: Equatable>(
    _ fast: Result<T, DecodeFailure>, _ plain: Result<T, DecodeFailure>, _ what: String, _ record: [UInt8]
) {
    switch (fast, plain) {
    case (.success(let a), .success(let b)):
        precondition(a == b, "\(what): fast path \(a) != avro-c \(b) for \(record)")
    case (.failure(let a), .failure(let b)):
        precondition(
            a.kind == b.kind && a.schemaId == b.schemaId, "\(what): fast path \(a) vs avro-c \(b) for \(record)")
    case (.success(let a), .failure(let b)):
        preconditionFailure("\(what): fast path accepted \(a), avro-c rejected (\(b)) for \(record)")
    case (.failure(let a), .success(let b)):
        preconditionFailure("\(what): avro-c accepted \(b), fast path rejected (\(a)) for \(record)")
    }
}
