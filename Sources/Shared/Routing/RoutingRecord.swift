// The routing topic's record: one RoutingAnnouncement as a JSON object, written and read with the one strict
// JSON reader of both processes (Sources/Shared/JSON); the routing-record fuzz target feeds this reader.
// Pure functions; any thread.

/// Why a routing record was not read.
public struct RoutingRecordError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "invalid routing record: \(message)" }
}

public enum RoutingRecord {
    /// The record value: a compact JSON object of the announcement (`sequence` is the reader's, not in it).
    public static func encode(_ announcement: RoutingAnnouncement) -> [UInt8] {
        let value: JSONValue = .object([
            ("member", .string(announcement.member)),
            ("endpoint", .string(announcement.endpoint)),
            ("partitions", .array(announcement.partitions.map { .int(Int64($0)) })),
            ("restoring", .array(announcement.restoring.map { .int(Int64($0)) })),
            ("partitionCount", .int(Int64(announcement.partitionCount))),
            ("epoch", .int(announcement.epoch)),
            ("time", .int(announcement.time)),
            ("ttlMs", .int(announcement.ttlMs)),
        ])
        return Array(value.serialized.utf8)
    }

    /// Reads a record value (`sequence` left 0). Every member is required; others are ignored; a repeated
    /// member counts by its first occurrence; numbers must be integers written without fraction or exponent.
    public static func decode(_ bytes: [UInt8]) throws(RoutingRecordError) -> RoutingAnnouncement {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw RoutingRecordError(message: error.description)
        }
        guard case .object = json else { throw RoutingRecordError(message: "not a JSON object") }
        return RoutingAnnouncement(
            member: try string(json, "member"), endpoint: try string(json, "endpoint"),
            partitions: try integers(json, "partitions"), restoring: try integers(json, "restoring"),
            partitionCount: try int(integer(json, "partitionCount"), "partitionCount"),
            epoch: try integer(json, "epoch"), time: try integer(json, "time"), ttlMs: try integer(json, "ttlMs"))
    }

    private static func member(_ json: JSONValue, _ name: String) throws(RoutingRecordError) -> JSONValue {
        guard let value = json[name] else { throw RoutingRecordError(message: "missing \"\(name)\"") }
        return value
    }

    private static func string(_ json: JSONValue, _ name: String) throws(RoutingRecordError) -> String {
        guard case .string(let text) = try member(json, name) else {
            throw RoutingRecordError(message: "\"\(name)\" is not a string")
        }
        return text
    }

    private static func integer(_ json: JSONValue, _ name: String) throws(RoutingRecordError) -> Int64 {
        guard case .int(let number) = try member(json, name) else {
            throw RoutingRecordError(message: "\"\(name)\" is not an integer")
        }
        return number
    }

    private static func integers(_ json: JSONValue, _ name: String) throws(RoutingRecordError) -> [Int] {
        guard case .array(let items) = try member(json, name) else {
            throw RoutingRecordError(message: "\"\(name)\" is not an array")
        }
        var numbers: [Int] = []
        numbers.reserveCapacity(items.count)
        for item in items {
            guard case .int(let number) = item else {
                throw RoutingRecordError(message: "\"\(name)\" holds a non-integer")
            }
            numbers.append(try int(number, name))
        }
        return numbers
    }

    private static func int(_ number: Int64, _ name: String) throws(RoutingRecordError) -> Int {
        guard let value = Int(exactly: number) else { throw RoutingRecordError(message: "\"\(name)\" out of range") }
        return value
    }
}
