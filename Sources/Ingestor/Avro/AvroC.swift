// Thin wrapper over avro-c (module CAvro): schemas, reusable values, binary encode/decode.
// The only file touching avro-c pointers. Nothing here is thread-safe (avro-c refcounts and its error
// string are unsynchronised): every object belongs to one thread, like the EventCodec that owns it.
import CAvro
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure reported by avro-c, with what we were doing and avro-c's own message.
struct AvroError: Error, CustomStringConvertible, Sendable {
    var message: String
    var description: String { message }

    init(_ message: String) { self.message = message }

    /// `context` plus avro_strerror() and the errno-style code (reads the message under the lock).
    static func last(_ context: String, code: Int32) -> AvroError {
        AvroError("\(context): \(withAvroErrorLock { lastMessage(code: code) })")
    }

    /// avro-c's current message; call with the lock held.
    fileprivate static func lastMessage(code: Int32) -> String {
        var text = ""
        if let cText = avro_strerror() { text = String(cString: cText) }
        if text.isEmpty, let cErr = strerror(code) { text = String(cString: cErr) }
        return text.isEmpty ? "error \(code)" : text
    }
}

/// libavro keeps its last error message in one process-wide buffer (Debian builds it without thread-local
/// storage), so the calls that can fail on input (schema parsing, resolution, read, write) and the read of
/// the message happen under this lock; uncontended it costs ~20 ns per call.
private let avroErrorLock = Mutex(())

private func withAvroErrorLock<R: Sendable>(_ body: () -> R) -> R {
    avroErrorLock.withLock { _ in body() }
}

/// A parsed Avro schema (owns one avro_schema_t reference).
final class AvroSchema {
    fileprivate let raw: avro_schema_t
    /// The JSON text it was parsed from (schema resolution reads field defaults from it: avro-c drops them).
    let json: String

    /// Parses schema JSON text (avro_schema_from_json_length).
    init(json: String) throws(AvroError) {
        var text = json
        let parsed: (UncheckedBox<avro_schema_t>?, String) = text.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                withAvroErrorLock {
                    var schema: avro_schema_t? = nil
                    let rc = avro_schema_from_json_length(chars.baseAddress, chars.count, &schema)
                    guard rc == 0, let schema else { return (nil, AvroError.lastMessage(code: rc)) }
                    return (UncheckedBox(schema), "")
                }
            }
        }
        guard let box = parsed.0 else { throw AvroError("invalid Avro schema: \(parsed.1)") }
        raw = box.value
        self.json = json
    }

    deinit { avro_schema_decref(raw) }

    /// Record/enum/fixed name without namespace ("" for unnamed types).
    var name: String { avro_schema_name(raw).map { String(cString: $0) } ?? "" }

    /// Namespace + "." + name for named types.
    var fullName: String {
        let ns = avro_schema_namespace(raw).map { String(cString: $0) } ?? ""
        return ns.isEmpty ? name : "\(ns).\(name)"
    }

    /// True for a record schema.
    var isRecord: Bool { raw.pointee.type == AVRO_RECORD }

    /// Structural equality (avro_schema_equal).
    func isEqual(to other: AvroSchema) -> Bool { avro_schema_equal(raw, other.raw) != 0 }
}

/// Carries a fresh C pointer out of the lock closure (only the calling thread ever sees it).
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A non-owning view of one avro-c value inside an `AvroDatum`; valid while that datum is alive and
/// until its next reset/decode. Accessors check every avro-c return code.
struct AvroValue {
    fileprivate var raw: avro_value_t

    /// Runs an avro-c getter on this value; a non-zero return code becomes an error naming `operation`.
    private func get<T>(
        _ initial: T, _ operation: String,
        _ getter: (UnsafeMutablePointer<avro_value_t>, UnsafeMutablePointer<T>) -> Int32
    ) throws(AvroError) -> T {
        var v = raw
        var out = initial
        let rc = getter(&v, &out)
        guard rc == 0 else { throw AvroError.last(operation, code: rc) }
        return out
    }

    /// Runs an avro-c setter on this value; a non-zero return code becomes an error naming `operation`.
    private func set(_ operation: String, _ setter: (UnsafeMutablePointer<avro_value_t>) -> Int32) throws(AvroError) {
        var v = raw
        let rc = setter(&v)
        guard rc == 0 else { throw AvroError.last(operation, code: rc) }
    }

    /// Record field (or array element) by index.
    func child(_ index: Int) throws(AvroError) -> AvroValue {
        var v = raw
        var out = avro_value_t()
        let rc = cavro_value_get_by_index(&v, index, &out)
        guard rc == 0, out.iface != nil else { throw AvroError.last("no child \(index)", code: rc) }
        return AvroValue(raw: out)
    }

    /// Number of fields of a record / elements of an array.
    func count() throws(AvroError) -> Int { try get(Int(0), "get_size") { cavro_value_get_size($0, $1) } }

    func long() throws(AvroError) -> Int64 { try get(Int64(0), "get_long") { cavro_value_get_long($0, $1) } }

    func bool() throws(AvroError) -> Bool {
        (try get(Int32(0), "get_boolean") { cavro_value_get_boolean($0, $1) }) != 0
    }

    func string() throws(AvroError) -> String {
        var v = raw
        var ptr: UnsafePointer<CChar>? = nil
        var size = 0
        let rc = cavro_value_get_string(&v, &ptr, &size)
        guard rc == 0 else { throw AvroError.last("get_string", code: rc) }
        // avro-c sizes include the NUL terminator.
        guard let ptr, size > 1 else { return "" }
        return ptr.withMemoryRebound(to: UInt8.self, capacity: size - 1) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: size - 1), as: UTF8.self)
        }
    }

    /// A union's discriminant and current branch.
    func branch() throws(AvroError) -> (Int, AvroValue) {
        var v = raw
        var disc: Int32 = -1
        var rc = cavro_value_get_discriminant(&v, &disc)
        guard rc == 0, disc >= 0 else { throw AvroError.last("get_discriminant", code: rc) }
        var out = avro_value_t()
        rc = cavro_value_get_current_branch(&v, &out)
        guard rc == 0, out.iface != nil else { throw AvroError.last("get_current_branch", code: rc) }
        return (Int(disc), AvroValue(raw: out))
    }

    /// For a `["null", T]` union: nil for the null branch, else the T value.
    func optional() throws(AvroError) -> AvroValue? {
        let (disc, value) = try branch()
        return disc == 0 ? nil : value
    }

    func setLong(_ x: Int64) throws(AvroError) { try set("set_long") { cavro_value_set_long($0, x) } }

    func setBool(_ x: Bool) throws(AvroError) { try set("set_boolean") { cavro_value_set_boolean($0, x ? 1 : 0) } }

    func setString(_ s: String) throws(AvroError) {
        var v = raw
        // withCString gives a NUL-terminated buffer; avro-c wants the size including the NUL (and
        // writes size - 1 bytes, so interior NULs survive).
        let size = s.utf8.count + 1
        let rc = s.withCString { c in cavro_value_set_string_len(&v, c, size) }
        guard rc == 0 else { throw AvroError.last("set_string", code: rc) }
    }

    /// Selects union branch `discriminant` and returns it (set to null for the null branch).
    @discardableResult
    func setBranch(_ discriminant: Int) throws(AvroError) -> AvroValue {
        var v = raw
        var out = avro_value_t()
        var rc = cavro_value_set_branch(&v, Int32(discriminant), &out)
        guard rc == 0, out.iface != nil else { throw AvroError.last("set_branch", code: rc) }
        if cavro_value_get_type(&out) == AVRO_NULL {
            rc = cavro_value_set_null(&out)
            guard rc == 0 else { throw AvroError.last("set_null", code: rc) }
        }
        return AvroValue(raw: out)
    }

    func int() throws(AvroError) -> Int32 { try get(Int32(0), "get_int") { cavro_value_get_int($0, $1) } }

    func float() throws(AvroError) -> Float { try get(Float(0), "get_float") { cavro_value_get_float($0, $1) } }

    func double() throws(AvroError) -> Double { try get(Double(0), "get_double") { cavro_value_get_double($0, $1) } }

    /// Bytes or fixed contents (copied).
    func bytes() throws(AvroError) -> [UInt8] {
        var v = raw
        var ptr: UnsafeRawPointer? = nil
        var size = 0
        let isFixed = cavro_value_get_type(&v) == AVRO_FIXED
        let rc = isFixed ? cavro_value_get_fixed(&v, &ptr, &size) : cavro_value_get_bytes(&v, &ptr, &size)
        guard rc == 0 else { throw AvroError.last("get_bytes", code: rc) }
        guard let ptr, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: ptr, count: size))
    }

    /// An enum value's symbol index.
    func enumIndex() throws(AvroError) -> Int { Int((try get(Int32(0), "get_enum") { cavro_value_get_enum($0, $1) })) }

    /// Key and value of a map entry by index.
    func mapEntry(_ index: Int) throws(AvroError) -> (String, AvroValue) {
        var v = raw
        var out = avro_value_t()
        var key: UnsafePointer<CChar>? = nil
        let rc = cavro_value_get_map_entry(&v, index, &out, &key)
        guard rc == 0, out.iface != nil, let key else { throw AvroError.last("map entry \(index)", code: rc) }
        return (String(cString: key), AvroValue(raw: out))
    }

    func setInt(_ x: Int32) throws(AvroError) { try set("set_int") { cavro_value_set_int($0, x) } }

    func setFloat(_ x: Float) throws(AvroError) { try set("set_float") { cavro_value_set_float($0, x) } }

    func setDouble(_ x: Double) throws(AvroError) { try set("set_double") { cavro_value_set_double($0, x) } }

    func setNull() throws(AvroError) {
        var v = raw
        let rc = cavro_value_set_null(&v)
        guard rc == 0 else { throw AvroError.last("set_null", code: rc) }
    }

    /// Sets bytes or fixed contents (avro-c copies them).
    func setBytes(_ bytes: [UInt8]) throws(AvroError) {
        var v = raw
        let isFixed = cavro_value_get_type(&v) == AVRO_FIXED
        var copy = bytes
        let rc = copy.withUnsafeMutableBytes { buf in
            isFixed
                ? cavro_value_set_fixed(&v, buf.baseAddress, buf.count)
                : cavro_value_set_bytes(&v, buf.baseAddress, buf.count)
        }
        guard rc == 0 else { throw AvroError.last("set_bytes", code: rc) }
    }

    func setEnumIndex(_ index: Int) throws(AvroError) { try set("set_enum") { cavro_value_set_enum($0, Int32(index)) } }

    /// Adds (or finds) a map entry and returns its value.
    func addMapEntry(_ key: String) throws(AvroError) -> AvroValue {
        var v = raw
        var out = avro_value_t()
        let rc = key.withCString { cavro_value_add(&v, $0, &out) }
        guard rc == 0, out.iface != nil else { throw AvroError.last("map add", code: rc) }
        return AvroValue(raw: out)
    }

    /// Appends a new element to an array value and returns it.
    func append() throws(AvroError) -> AvroValue {
        var v = raw
        var out = avro_value_t()
        let rc = cavro_value_append(&v, &out)
        guard rc == 0, out.iface != nil else { throw AvroError.last("append", code: rc) }
        return AvroValue(raw: out)
    }
}

/// One reusable avro-c value of a reader schema, with its memory reader and writer. Decodes bytes
/// written with `writer` (resolved into the reader schema with avro-c's resolved writer when the two
/// differ; reader fields the writer lacks get their defaults, see `ReaderDefaults`) and encodes the value
/// with the reader schema. Reused across calls: no per-call setup. Not thread-safe: one owner thread.
final class AvroDatum {
    let schema: AvroSchema
    let writerSchema: AvroSchema?
    private let iface: UnsafeMutablePointer<avro_value_iface_t>
    /// Heap cells (not stored properties) so passing them to C needs no exclusivity bookkeeping.
    private let value: UnsafeMutablePointer<avro_value_t>
    private let resolvedIface: UnsafeMutablePointer<avro_value_iface_t>?
    private let resolved: UnsafeMutablePointer<avro_value_t>
    /// When the writer lacks reader fields: the projected reader value avro-c decodes into, its class and
    /// the plan that copies it into `value` with the defaults.
    private let projected: (iface: UnsafeMutablePointer<avro_value_iface_t>, value: UnsafeMutablePointer<avro_value_t>)?
    private let defaults: ReaderDefaults?
    private let reader: avro_reader_t
    private let writer: avro_writer_t
    private var scratch: UnsafeMutableRawBufferPointer

    /// - Parameters:
    ///   - schema: the reader schema (the shape of `root`, and the schema `encode` writes).
    ///   - writer: the schema the decoded bytes were written with, if it differs from `schema`.
    init(schema: AvroSchema, writer: AvroSchema? = nil) throws(AvroError) {
        var defaults: ReaderDefaults? = nil
        var target = schema
        if let writer {
            let plan = try ReaderDefaults(readerJSON: schema.json, writerJSON: writer.json)
            if plan.needsProjection {
                defaults = plan
                target = try AvroSchema(json: plan.projectedJSON)
            }
        }
        let (iface, value) = try Self.newValue(schema)
        var projected: (UnsafeMutablePointer<avro_value_iface_t>, UnsafeMutablePointer<avro_value_t>)? = nil
        if defaults != nil {
            do {
                projected = try Self.newValue(target)
            } catch {
                Self.free(iface, value)
                throw error
            }
        }
        let resolved = UnsafeMutablePointer<avro_value_t>.allocate(capacity: 1)
        resolved.initialize(to: avro_value_t())
        var resolvedIface: UnsafeMutablePointer<avro_value_iface_t>? = nil
        if let writer {
            let (writerRaw, readerRaw) = (writer.raw, target.raw)
            let made: (UncheckedBox<UnsafeMutablePointer<avro_value_iface_t>>?, String) = withAvroErrorLock {
                guard let ri = avro_resolved_writer_new(writerRaw, readerRaw) else {
                    return (nil, AvroError.lastMessage(code: EINVAL))
                }
                return (UncheckedBox(ri), "")
            }
            var failure: AvroError? = nil
            if let ri = made.0?.value {
                let rc = avro_resolved_writer_new_value(ri, resolved)
                if rc == 0 {
                    avro_resolved_writer_set_dest(resolved, projected?.1 ?? value)
                    resolvedIface = ri
                } else {
                    cavro_value_iface_decref(ri)
                    failure = AvroError.last("cannot create resolved value", code: rc)
                }
            } else {
                failure = AvroError("writer schema cannot be resolved against \(schema.fullName): \(made.1)")
            }
            if let failure {
                Self.free(iface, value)
                if let projected { Self.free(projected.0, projected.1) }
                resolved.deallocate()
                throw failure
            }
        }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 8)
        let start = scratch.baseAddress?.assumingMemoryBound(to: CChar.self)
        guard let reader = avro_reader_memory(start, 0), let writerIO = avro_writer_memory(start, 0) else {
            fatalError("avro-c cannot allocate a memory reader/writer (out of memory)")
        }
        self.schema = schema
        self.writerSchema = writer
        self.iface = iface
        self.value = value
        self.resolved = resolved
        self.resolvedIface = resolvedIface
        self.projected = projected.map { (iface: $0.0, value: $0.1) }
        self.defaults = defaults
        self.reader = reader
        self.writer = writerIO
        self.scratch = scratch
    }

    /// A generic value of `schema` and its class.
    private static func newValue(_ schema: AvroSchema) throws(AvroError) -> (
        UnsafeMutablePointer<avro_value_iface_t>, UnsafeMutablePointer<avro_value_t>
    ) {
        guard let iface = avro_generic_class_from_schema(schema.raw) else {
            throw AvroError.last("cannot build value class for \(schema.fullName)", code: EINVAL)
        }
        let value = UnsafeMutablePointer<avro_value_t>.allocate(capacity: 1)
        value.initialize(to: avro_value_t())
        let rc = avro_generic_value_new(iface, value)
        guard rc == 0 else {
            cavro_value_iface_decref(iface)
            value.deallocate()
            throw AvroError.last("cannot create value for \(schema.fullName)", code: rc)
        }
        return (iface, value)
    }

    private static func free(
        _ iface: UnsafeMutablePointer<avro_value_iface_t>, _ value: UnsafeMutablePointer<avro_value_t>
    ) {
        avro_value_decref(value)
        cavro_value_iface_decref(iface)
        value.deallocate()
    }

    deinit {
        if resolvedIface != nil {
            avro_value_decref(resolved)
        }
        if let resolvedIface { cavro_value_iface_decref(resolvedIface) }
        if let projected { Self.free(projected.iface, projected.value) }
        Self.free(iface, value)
        resolved.deallocate()
        avro_reader_free(reader)
        avro_writer_free(writer)
        scratch.deallocate()
    }

    /// The value (reader schema shape).
    var root: AvroValue { AvroValue(raw: value.pointee) }

    /// Clears the value for a fresh encode (keeps its allocations).
    func reset() throws(AvroError) {
        let rc = cavro_value_reset(value)
        guard rc == 0 else { throw AvroError.last("reset", code: rc) }
    }

    /// Decodes `payload` (Avro binary, no framing) into `root`. Bytes after a complete record are ignored,
    /// as Confluent's deserializers do (checking would cost an avro-c error formatting per record).
    func decode(_ payload: UnsafeRawBufferPointer) throws(AvroError) {
        let base =
            payload.baseAddress?.assumingMemoryBound(to: CChar.self)
            ?? UnsafePointer(scratch.baseAddress?.assumingMemoryBound(to: CChar.self))
        let target = resolvedIface == nil ? value : resolved
        // avro-c 1.11 leaks a string's or bytes' buffer when the payload ends inside it (read_string and
        // read_bytes return without freeing it; fixed upstream by AVRO-4246, in no release yet), so such a
        // payload is refused before avro-c reads it.
        var walk = AvroLengthCheck(payload)
        guard walk.value((writerSchema ?? schema).raw, depth: 0) else {
            throw AvroError("cannot decode \(schema.fullName): \(walk.problem)")
        }
        avro_reader_memory_set_source(reader, base, Int64(payload.count))
        let reader = self.reader
        let failure: String? = withAvroErrorLock {
            let rc = avro_value_read(reader, target)
            return rc == 0 ? nil : AvroError.lastMessage(code: rc)
        }
        if let failure { throw AvroError("cannot decode \(schema.fullName): \(failure)") }
        if let defaults, let projected {
            try reset()
            try defaults.fill(root, from: AvroValue(raw: projected.value.pointee))
        }
    }

    /// Encodes `root` with the reader schema and hands the bytes to `body` (valid only inside it).
    func encode<R>(_ body: (UnsafeRawBufferPointer) -> R) throws(AvroError) -> R {
        while true {
            avro_writer_memory_set_dest(
                writer, scratch.baseAddress?.assumingMemoryBound(to: CChar.self), Int64(scratch.count))
            let (writer, value) = (self.writer, self.value)
            let (rc, failure): (Int32, String) = withAvroErrorLock {
                let rc = avro_value_write(writer, value)
                return (rc, rc == 0 ? "" : AvroError.lastMessage(code: rc))
            }
            if rc == 0 {
                let written = Int(avro_writer_tell(writer))
                return body(UnsafeRawBufferPointer(rebasing: scratch[0..<written]))
            }
            guard rc == ENOSPC, scratch.count < (64 << 20) else {
                throw AvroError("cannot encode \(schema.fullName): \(failure)")
            }
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: scratch.count * 4, alignment: 8)
            scratch.deallocate()
            scratch = bigger
        }
    }
}

/// Walks an Avro payload along the schema it was written with, as avro-c's reader (value-read.c) will read
/// it, allocating nothing, and fails where a string, bytes or fixed value would run past the end (or where
/// avro-c fails anyway: a bad varint, a negative length, a union branch out of range). Whatever it passes,
/// avro-c reads without running short inside a string or bytes value, the case where avro-c 1.11 leaks.
private struct AvroLengthCheck {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private(set) var problem = ""
    /// Deeper nesting (a recursive schema) is refused: avro-c's own recursion would exhaust the stack first.
    static let maxDepth = 256

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private mutating func fail(_ message: String) -> Bool {
        problem = "\(message) at byte \(position)"
        return false
    }

    /// A zigzag varint as avro-c's read_long decodes it (at most 10 bytes).
    private mutating func long() -> Int64? {
        var value: UInt64 = 0
        for offset in 0..<10 {
            guard position < bytes.count else {
                _ = fail("truncated varint")
                return nil
            }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << UInt64(7 * offset)
            if byte & 0x80 == 0 { return Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }
        }
        _ = fail("varint too long")
        return nil
    }

    private mutating func skip(_ count: Int64, _ what: String) -> Bool {
        guard count >= 0 else { return fail("negative \(what) length \(count)") }
        guard count <= Int64(bytes.count - position) else { return fail("\(what) of \(count) bytes past the end") }
        position += Int(count)
        return true
    }

    mutating func value(_ schema: avro_schema_t, depth: Int) -> Bool {
        guard depth < Self.maxDepth else { return fail("nesting deeper than \(Self.maxDepth)") }
        switch schema.pointee.type {
        case AVRO_NULL: return true
        case AVRO_BOOLEAN: return skip(1, "boolean")
        case AVRO_INT32, AVRO_INT64, AVRO_ENUM: return long() != nil
        case AVRO_FLOAT: return skip(4, "float")
        case AVRO_DOUBLE: return skip(8, "double")
        case AVRO_STRING, AVRO_BYTES:
            guard let length = long() else { return false }
            return skip(length, "string")
        case AVRO_FIXED: return skip(avro_schema_fixed_size(schema), "fixed")
        case AVRO_RECORD:
            for index in 0..<avro_schema_record_size(schema) {
                guard let field = avro_schema_record_field_get_by_index(schema, Int32(index)),
                    value(field, depth: depth + 1)
                else { return false }
            }
            return true
        case AVRO_UNION:
            guard let branch = long() else { return false }
            guard branch >= 0, branch < Int64(avro_schema_union_size(schema)),
                let chosen = avro_schema_union_branch(schema, Int32(branch))
            else { return fail("union branch \(branch) out of range") }
            return value(chosen, depth: depth + 1)
        case AVRO_ARRAY, AVRO_MAP:
            let isMap = schema.pointee.type == AVRO_MAP
            guard let items = isMap ? avro_schema_map_values(schema) : avro_schema_array_items(schema) else {
                return fail("schema without items")
            }
            return blocks(of: items, keyed: isMap, depth: depth)
        case AVRO_LINK:
            guard let target = avro_schema_link_target(schema) else { return fail("unresolved named type") }
            return value(target, depth: depth + 1)
        default: return fail("unknown Avro type")
        }
    }

    /// Array or map blocks, counted as avro-c counts them: a negative count is negated and followed by a
    /// byte size, and the count is then taken as unsigned (so -2^63 asks for 2^63 items).
    private mutating func blocks(of items: avro_schema_t, keyed: Bool, depth: Int) -> Bool {
        while true {
            guard var count = long() else { return false }
            if count == 0 { return true }
            if count < 0 {
                count = 0 &- count
                guard long() != nil else { return false }
            }
            var remaining = UInt64(bitPattern: count)
            while remaining > 0 {
                let start = position
                if keyed {
                    guard let length = long(), skip(length, "map key") else { return false }
                }
                guard value(items, depth: depth + 1) else { return false }
                remaining -= 1
                // An item of no bytes (null, empty record) reads the same every time: the rest are alike.
                if position == start { break }
            }
        }
    }
}
