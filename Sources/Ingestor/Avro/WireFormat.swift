// Confluent wire framing of record values and the decode failure reported for bad input.

/// Why a record value could not be decoded; `reason` goes into the dead-letter headers and metrics.
struct DecodeFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The machine reasons (stable strings: DLQ header values and metric labels).
    enum Reason: String, Sendable, CaseIterable {
        case badMagic = "bad-magic"
        case tooShort = "too-short"
        case unknownSchemaId = "unknown-schema-id"
        case corruptAvro = "corrupt-avro"
        case wrongType = "wrong-type"
    }

    var kind: Reason
    /// Human explanation (schema id, type, avro-c's message).
    var detail: String
    /// The schema id of the frame, when it got that far.
    var schemaId: Int32?

    /// Short machine reason: "bad-magic", "too-short", "unknown-schema-id", "corrupt-avro", "wrong-type".
    var reason: String { kind.rawValue }
    var description: String { "\(reason): \(detail)" }

    init(_ kind: Reason, _ detail: String, schemaId: Int32? = nil) {
        self.kind = kind
        self.detail = detail
        self.schemaId = schemaId
    }
}

/// Confluent framing: byte 0 = 0x00, bytes 1–4 = schema id (big-endian int32), then Avro binary.
enum ConfluentFrame {
    static let magic: UInt8 = 0
    static let headerSize = 5

    /// Checks the header and returns the schema id; the payload starts at `headerSize`.
    static func schemaId(of bytes: UnsafeRawBufferPointer) throws(DecodeFailure) -> Int32 {
        guard !bytes.isEmpty else { throw DecodeFailure(.tooShort, "empty value") }
        guard bytes[0] == magic else {
            throw DecodeFailure(.badMagic, "first byte is 0x\(String(bytes[0], radix: 16)), expected 0x00")
        }
        guard bytes.count >= headerSize else {
            throw DecodeFailure(.tooShort, "\(bytes.count) bytes, the header alone needs \(headerSize)")
        }
        let id = UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
        return Int32(bitPattern: id)
    }

    /// `header(id) + payload` as a new array.
    static func framed(id: Int32, payload: UnsafeRawBufferPointer) -> [UInt8] {
        let total = headerSize + payload.count
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let u = UInt32(bitPattern: id)
            buffer[0] = magic
            buffer[1] = UInt8(truncatingIfNeeded: u >> 24)
            buffer[2] = UInt8(truncatingIfNeeded: u >> 16)
            buffer[3] = UInt8(truncatingIfNeeded: u >> 8)
            buffer[4] = UInt8(truncatingIfNeeded: u)
            if let src = payload.baseAddress, let dst = buffer.baseAddress {
                (dst + headerSize).initialize(from: src.assumingMemoryBound(to: UInt8.self), count: payload.count)
            }
            count = total
        }
    }
}
