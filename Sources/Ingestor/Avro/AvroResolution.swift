// Avro schema resolution with reader defaults, which avro-c's resolver lacks (see ReaderDefaults).
// Pure Swift over JSON schemas and AvroValue; no avro-c pointers. Not thread-safe: owned by one AvroDatum.
import Shared

/// Resolving a writer schema that lacks some reader fields, at any depth.
///
/// avro-c (1.11, resolved-writer.c `try_record`) rejects every reader field the writer does not have:
/// "Reader field X doesn't appear in writer" (a `TODO: Handle default values!`; the only alternative,
/// compiling it with AVRO_ALLOW_MISSING_FIELDS_IN_RESOLVED_WRITER, zero-fills instead of using defaults),
/// and its schema parser drops the `default` of fields altogether. Measured with Debian's libavro 1.11.1:
/// at the top level the resolver fails ("Reader field n doesn't appear in writer"); inside a union branch it
/// succeeds but every value of that branch then fails to decode ("Writer union branch 1 is incompatible");
/// inside an array's records `avro_resolved_writer_new` crashes (SIGSEGV). So avro-c must never see a
/// reader record field its writer lacks:
/// 1. pair the reader schema with the writer schema (records by name, through unions, arrays and maps) and
///    drop, from every paired reader record, the fields the writer lacks (each must have a default);
/// 2. avro-c resolves the writer against that *projected* reader and decodes into a projected value;
/// 3. `fill` copies the projected value into a value of the full reader schema, setting each dropped field
///    from its JSON default (records, arrays, maps, unions and scalars; nested defaults included).
struct ReaderDefaults {
    /// Avro primitive type names.
    enum Primitive: String {
        case null, boolean, int, long, float, double, bytes, string
    }

    /// A reader schema type. Records are indexes into `records` (they may be recursive).
    indirect enum SchemaType {
        case primitive(Primitive)
        case record(Int)
        case enumeration(name: String, symbols: [String])
        case fixed(name: String, size: Int)
        case array(SchemaType)
        case map(SchemaType)
        case union([SchemaType])
    }

    struct Field {
        var name: String
        var type: SchemaType
        var defaultValue: JSONValue?
    }

    struct Record {
        var fullName: String
        var fields: [Field] = []
        /// Per reader field, its index in the projected record, or nil when the writer lacks it.
        var projection: [Int?]?
    }

    private(set) var records: [Record] = []
    private(set) var root: SchemaType = .primitive(.null)
    /// True when some reader field is missing from the writer (else resolve against the reader directly).
    private(set) var needsProjection = false

    /// - Throws: when a reader field the writer lacks has no default, or a schema is not parseable here.
    init(readerJSON: String, writerJSON: String) throws(AvroError) {
        var reader = SchemaTree()
        var writer = SchemaTree()
        root = try reader.parse(try Self.json(readerJSON), namespace: "")
        let writerRoot = try writer.parse(try Self.json(writerJSON), namespace: "")
        records = reader.records
        var paired = Set<Int>()
        try pair(root, writerRoot, writer.records, &paired)
        for record in records {
            if let projection = record.projection, projection.contains(where: { $0 == nil }) { needsProjection = true }
        }
    }

    private static func json(_ text: String) throws(AvroError) -> JSONValue {
        do {
            return try JSONParser.parse(text)
        } catch {
            throw AvroError("schema JSON: \(error)")
        }
    }

    /// The projected reader schema as JSON (every named type defined at its first use).
    var projectedJSON: String {
        var emitted = Set<String>()
        return emit(root, &emitted).serialized
    }

    // MARK: pairing reader and writer

    private mutating func pair(
        _ r: SchemaType, _ w: SchemaType, _ writerRecords: [Record], _ paired: inout Set<Int>
    ) throws(AvroError) {
        switch (r, w) {
        case (.union(let rb), .union(let wb)):
            for wt in wb {
                if let rt = rb.first(where: { Self.matches($0, wt, records, writerRecords) }) {
                    try pair(rt, wt, writerRecords, &paired)
                }
            }
        case (.union(let rb), _):
            if let rt = rb.first(where: { Self.matches($0, w, records, writerRecords) }) {
                try pair(rt, w, writerRecords, &paired)
            }
        case (_, .union(let wb)):
            for wt in wb where Self.matches(r, wt, records, writerRecords) { try pair(r, wt, writerRecords, &paired) }
        case (.record(let ri), .record(let wi)):
            guard paired.insert(ri).inserted else { return }
            let writerFields = writerRecords[wi].fields
            var projection: [Int?] = []
            var kept = 0
            for field in records[ri].fields {
                if let wf = writerFields.first(where: { $0.name == field.name }) {
                    projection.append(kept)
                    kept += 1
                    try pair(field.type, wf.type, writerRecords, &paired)
                } else if field.defaultValue != nil {
                    projection.append(nil)
                } else {
                    throw AvroError(
                        "reader field '\(field.name)' of \(records[ri].fullName) is missing in the writer schema "
                            + "and has no default")
                }
            }
            records[ri].projection = projection
        case (.array(let ri), .array(let wi)), (.map(let ri), .map(let wi)):
            try pair(ri, wi, writerRecords, &paired)
        default:
            break  // scalars (promotion is avro-c's check), or types avro-c will reject as incompatible
        }
    }

    /// Whether a writer type would resolve to this reader (union branch selection, Avro's rules).
    private static func matches(_ r: SchemaType, _ w: SchemaType, _ rr: [Record], _ wr: [Record]) -> Bool {
        switch (r, w) {
        case (.record(let a), .record(let b)):
            return rr[a].fullName == wr[b].fullName || shortName(rr[a].fullName) == shortName(wr[b].fullName)
        case (.enumeration(let a, _), .enumeration(let b, _)), (.fixed(let a, _), .fixed(let b, _)):
            return a == b || shortName(a) == shortName(b)
        case (.array, .array), (.map, .map): return true
        case (.primitive(let a), .primitive(let b)):
            switch (b, a) {
            case _ where a == b: return true
            case (.int, .long), (.int, .float), (.int, .double), (.long, .float), (.long, .double), (.float, .double),
                (.string, .bytes), (.bytes, .string):
                return true
            default: return false
            }
        default: return false
        }
    }

    private static func shortName(_ fullName: String) -> Substring {
        fullName.split(separator: ".").last ?? Substring(fullName)
    }

    // MARK: the projected reader schema

    private func emit(_ t: SchemaType, _ emitted: inout Set<String>) -> JSONValue {
        switch t {
        case .primitive(let p):
            return .string(p.rawValue)
        case .record(let i):
            let record = records[i]
            guard emitted.insert(record.fullName).inserted else { return .string(record.fullName) }
            var fields: [JSONValue] = []
            for (index, field) in record.fields.enumerated() where record.projection.map({ $0[index] != nil }) ?? true {
                fields.append(.object([("name", .string(field.name)), ("type", emit(field.type, &emitted))]))
            }
            return .object([
                ("type", .string("record")), ("name", .string(record.fullName)), ("fields", .array(fields)),
            ])
        case .enumeration(let name, let symbols):
            guard emitted.insert(name).inserted else { return .string(name) }
            return .object([
                ("type", .string("enum")), ("name", .string(name)), ("symbols", .array(symbols.map { .string($0) })),
            ])
        case .fixed(let name, let size):
            guard emitted.insert(name).inserted else { return .string(name) }
            return .object([("type", .string("fixed")), ("name", .string(name)), ("size", .int(Int64(size)))])
        case .array(let items):
            return .object([("type", .string("array")), ("items", emit(items, &emitted))])
        case .map(let values):
            return .object([("type", .string("map")), ("values", emit(values, &emitted))])
        case .union(let branches):
            return .array(branches.map { emit($0, &emitted) })
        }
    }

    // MARK: copying with defaults

    /// Copies `source` (a value of the projected schema) into `target` (a freshly reset value of the full
    /// reader schema), filling the fields the writer lacks from their defaults.
    func fill(_ target: AvroValue, from source: AvroValue) throws(AvroError) {
        try copy(root, target, source)
    }

    private func copy(_ t: SchemaType, _ target: AvroValue, _ source: AvroValue) throws(AvroError) {
        switch t {
        case .primitive(let p):
            switch p {
            case .null: try target.setNull()
            case .boolean: try target.setBool(source.bool())
            case .int: try target.setInt(source.int())
            case .long: try target.setLong(source.long())
            case .float: try target.setFloat(source.float())
            case .double: try target.setDouble(source.double())
            case .bytes: try target.setBytes(source.bytes())
            case .string: try target.setString(source.string())
            }
        case .record(let i):
            let record = records[i]
            for (index, field) in record.fields.enumerated() {
                let child = try target.child(index)
                if let projection = record.projection {
                    if let from = projection[index] {
                        try copy(field.type, child, source.child(from))
                    } else if let value = field.defaultValue {
                        try setDefault(field.type, child, value, field.name)
                    }
                } else {
                    try copy(field.type, child, source.child(index))
                }
            }
        case .enumeration:
            try target.setEnumIndex(source.enumIndex())
        case .fixed:
            try target.setBytes(source.bytes())
        case .array(let items):
            for i in 0..<(try source.count()) { try copy(items, target.append(), source.child(i)) }
        case .map(let values):
            for i in 0..<(try source.count()) {
                let (key, value) = try source.mapEntry(i)
                try copy(values, target.addMapEntry(key), value)
            }
        case .union(let branches):
            let (discriminant, value) = try source.branch()
            guard discriminant < branches.count else { throw AvroError("union branch \(discriminant) out of range") }
            try copy(branches[discriminant], target.setBranch(discriminant), value)
        }
    }

    /// Sets `target` from a JSON default (Avro's JSON encoding of defaults: bytes/fixed as strings of code
    /// points 0–255; a union's default belongs to its first branch, or else to the first branch it fits).
    private func setDefault(_ t: SchemaType, _ target: AvroValue, _ json: JSONValue, _ field: String)
        throws(AvroError)
    {
        let bad = AvroError("default of '\(field)' does not match its type: \(json.serialized)")
        switch (t, json) {
        case (.primitive(.null), .null): try target.setNull()
        case (.primitive(.boolean), .bool(let b)): try target.setBool(b)
        case (.primitive(.int), .int(let n)):
            guard let n32 = Int32(exactly: n) else { throw bad }
            try target.setInt(n32)
        case (.primitive(.long), .int(let n)): try target.setLong(n)
        case (.primitive(.float), .int(let n)): try target.setFloat(Float(n))
        case (.primitive(.float), .double(let d)): try target.setFloat(Float(d))
        case (.primitive(.double), .int(let n)): try target.setDouble(Double(n))
        case (.primitive(.double), .double(let d)): try target.setDouble(d)
        case (.primitive(.string), .string(let s)): try target.setString(s)
        case (.primitive(.bytes), .string(let s)), (.fixed, .string(let s)):
            var bytes: [UInt8] = []
            for scalar in s.unicodeScalars {
                guard scalar.value <= 0xFF else { throw bad }
                bytes.append(UInt8(scalar.value))
            }
            try target.setBytes(bytes)
        case (.enumeration(_, let symbols), .string(let s)):
            guard let index = symbols.firstIndex(of: s) else { throw bad }
            try target.setEnumIndex(index)
        case (.array(let items), .array(let elements)):
            for element in elements { try setDefault(items, target.append(), element, field) }
        case (.map(let values), .object(let members)):
            for (key, value) in members { try setDefault(values, target.addMapEntry(key), value, field) }
        case (.record(let i), .object):
            for (index, f) in records[i].fields.enumerated() {
                guard let value = json[f.name] ?? f.defaultValue else { throw bad }
                try setDefault(f.type, target.child(index), value, "\(field).\(f.name)")
            }
        case (.union(let branches), _):
            guard let index = branches.firstIndex(where: { Self.fits(json, $0) }) else { throw bad }
            try setDefault(branches[index], target.setBranch(index), json, field)
        default:
            throw bad
        }
    }

    /// Whether a JSON default has the shape of a type (to pick a union branch).
    private static func fits(_ json: JSONValue, _ t: SchemaType) -> Bool {
        switch (t, json) {
        case (.primitive(.null), .null), (.primitive(.boolean), .bool): true
        case (.primitive(.int), .int), (.primitive(.long), .int): true
        case (.primitive(.float), .int), (.primitive(.float), .double): true
        case (.primitive(.double), .int), (.primitive(.double), .double): true
        case (.primitive(.string), .string), (.primitive(.bytes), .string), (.enumeration, .string), (.fixed, .string):
            true
        case (.array, .array), (.map, .object), (.record, .object): true
        default: false
        }
    }
}

/// Parses Avro schema JSON into `ReaderDefaults.SchemaType` (named types resolved with namespaces).
private struct SchemaTree {
    typealias SchemaType = ReaderDefaults.SchemaType
    var records: [ReaderDefaults.Record] = []
    private var named: [String: SchemaType] = [:]

    mutating func parse(_ json: JSONValue, namespace: String) throws(AvroError) -> SchemaType {
        switch json {
        case .string(let name):
            if let p = ReaderDefaults.Primitive(rawValue: name) { return .primitive(p) }
            if let t = named[Self.fullName(name, namespace)] ?? named[name] { return t }
            throw AvroError("unknown type '\(name)'")
        case .array(let branches):
            var out: [SchemaType] = []
            for branch in branches { out.append(try parse(branch, namespace: namespace)) }
            return .union(out)
        case .object:
            guard let type = json["type"] else { throw AvroError("schema object without 'type'") }
            guard case .string(let kind) = type else { return try parse(type, namespace: namespace) }
            switch kind {
            case "record", "error":
                let full = try name(json, namespace)
                let index = records.count
                records.append(ReaderDefaults.Record(fullName: full))
                named[full] = .record(index)
                guard case .array(let fields)? = json["fields"] else { throw AvroError("record \(full) has no fields") }
                let inner = Self.namespace(of: full)
                for field in fields {
                    guard case .string(let fieldName)? = field["name"], let fieldType = field["type"] else {
                        throw AvroError("record \(full) has a field without name or type")
                    }
                    let parsed = try parse(fieldType, namespace: inner)
                    records[index].fields.append(
                        ReaderDefaults.Field(name: fieldName, type: parsed, defaultValue: field["default"]))
                }
                return .record(index)
            case "enum":
                let full = try name(json, namespace)
                guard case .array(let symbols)? = json["symbols"] else {
                    throw AvroError("enum \(full) without symbols")
                }
                let t = SchemaType.enumeration(
                    name: full, symbols: symbols.compactMap { if case .string(let s) = $0 { s } else { nil } })
                named[full] = t
                return t
            case "fixed":
                let full = try name(json, namespace)
                guard case .int(let size)? = json["size"] else { throw AvroError("fixed \(full) without size") }
                let t = SchemaType.fixed(name: full, size: Int(size))
                named[full] = t
                return t
            case "array":
                guard let items = json["items"] else { throw AvroError("array without items") }
                return .array(try parse(items, namespace: namespace))
            case "map":
                guard let values = json["values"] else { throw AvroError("map without values") }
                return .map(try parse(values, namespace: namespace))
            default:
                return try parse(type, namespace: namespace)  // {"type": "long", "logicalType": ...}
            }
        default:
            throw AvroError("not a schema: \(json.serialized)")
        }
    }

    private func name(_ json: JSONValue, _ enclosing: String) throws(AvroError) -> String {
        guard case .string(let name)? = json["name"] else { throw AvroError("named type without a name") }
        if case .string(let ns)? = json["namespace"], !name.contains(".") {
            return ns.isEmpty ? name : "\(ns).\(name)"
        }
        return Self.fullName(name, enclosing)
    }

    private static func fullName(_ name: String, _ namespace: String) -> String {
        name.contains(".") || namespace.isEmpty ? name : "\(namespace).\(name)"
    }

    private static func namespace(of fullName: String) -> String {
        guard let dot = fullName.lastIndex(of: ".") else { return "" }
        return String(fullName[..<dot])
    }
}
