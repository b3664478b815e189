// Edge validation of POST /events bodies against the four input event shapes, and the key each event updates.
import Shared

/// The shapes the gateway accepts; the ingestor re-validates and encodes. Stateless; any thread.
enum EventValidation {
    enum FieldType { case string, long, nullableLong }

    /// Event type full name → fields (name, type, required).
    static let shapes: [String: [(String, FieldType, Bool)]] = [
        "com.polecatworks.chaser.Chaser": [
            ("name", .string, true), ("id", .string, true), ("sent", .long, true), ("ttl", .long, true),
            ("previous", .nullableLong, false),
        ],
        "com.polecatworks.billing.Bill": [
            ("billId", .string, true), ("customerId", .string, true), ("orderId", .string, true),
            ("amountCents", .long, true), ("currency", .string, true), ("issuedAt", .long, true),
            ("dueDate", .long, true),
        ],
        "com.polecatworks.billing.PaymentRequest": [
            ("paymentId", .string, true), ("billId", .string, true), ("customerId", .string, true),
            ("amountCents", .long, true), ("currency", .string, true), ("requestedAt", .long, true),
        ],
        "com.polecatworks.billing.PaymentFailed": [
            ("paymentId", .string, true), ("billId", .string, true), ("customerId", .string, true),
            ("failureReason", .string, true), ("failedAt", .long, true),
        ],
    ]

    /// The field holding an event's record key, and the store it updates: a chaser's `id`, a billing event's
    /// `billId` (the same rule as the ingestor's EventKey).
    static func keyField(of type: String) -> (field: String, store: String) {
        type == "com.polecatworks.chaser.Chaser" ? ("id", "chaser") : ("billId", "billing")
    }

    /// What a valid event will update: its store and record key.
    struct Target: Equatable {
        let store: String
        let key: String
    }

    enum Outcome: Equatable {
        case accepted(Target)
        /// The 400 reason.
        case rejected(String)
    }

    /// nil when `body` is an acceptable event; otherwise the 400 reason.
    static func problem(in body: [UInt8]) -> String? {
        if case .rejected(let reason) = check(body) { return reason }
        return nil
    }

    /// Validates `body` and names the store and key the event updates.
    static func check(_ body: [UInt8]) -> Outcome {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            return .rejected(error.description)
        }
        guard case .object(let members) = value else { return .rejected("the event must be a JSON object") }
        var seen: [String: JSONValue] = [:]
        for (name, v) in members {
            if seen[name] != nil { return .rejected("duplicate field '\(name)'") }
            seen[name] = v
        }
        if let problem = shapeProblem(seen) { return .rejected(problem) }
        // The shape check made `type` and the key field present strings.
        guard case .string(let type)? = seen["type"], case .string(let key)? = seen[keyField(of: type).field] else {
            return .rejected("missing string field 'type'")
        }
        return .accepted(Target(store: keyField(of: type).store, key: key))
    }

    /// The first field that does not fit its event type's shape, nil when all do.
    private static func shapeProblem(_ seen: [String: JSONValue]) -> String? {
        guard case .string(let type)? = seen["type"] else { return "missing string field 'type'" }
        guard let shape = shapes[type] else {
            return "unknown event type '\(type)' (expected one of \(shapes.keys.sorted().joined(separator: ", ")))"
        }
        for name in seen.keys where name != "type" && !shape.contains(where: { $0.0 == name }) {
            return "unknown field '\(name)' for \(type)"
        }
        for (name, fieldType, required) in shape {
            guard let v = seen[name] else {
                if required { return "missing field '\(name)'" }
                continue
            }
            switch (fieldType, v) {
            case (.string, .string): continue
            case (.long, .int), (.nullableLong, .int): continue
            case (.nullableLong, .null): continue
            case (.string, _): return "field '\(name)' must be a string"
            default: return "field '\(name)' must be a 64-bit integer"
            }
        }
        return nil
    }
}
