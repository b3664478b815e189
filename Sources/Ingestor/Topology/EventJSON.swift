// Parsing of one input event from JSON for POST /events: `{"type":"<full name>", ...fields}`.
// Pure; safe on any thread. The error message is the 400 reason given to the client.

import Shared

/// Why a POST /events body was rejected; `message` is shown to the client.
struct EventJSONError: Error, Equatable, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

enum EventJSON {
    /// The input event types accepted on POST /events, by `"type"`.
    static let inputTypes = [Chaser.fullName, Bill.fullName, PaymentRequest.fullName, PaymentFailed.fullName]

    /// Parses and validates one event. Every schema field is required with its JSON type (strings,
    /// integers for longs) except Chaser's `previous` (integer or null, default null); unknown fields,
    /// duplicate fields, aggregate types and unknown types are rejected.
    static func parse(_ body: [UInt8]) throws(EventJSONError) -> InputEvent {
        let doc: JSONValue
        do {
            doc = try JSONParser.parse(body)
        } catch {
            throw EventJSONError(message: error.description)
        }
        guard case .object(let members) = doc else {
            throw EventJSONError(message: "the event must be a JSON object")
        }
        var fields = Fields(members: [:], typeName: "")
        for (key, value) in members {
            guard fields.members.updateValue(value, forKey: key) == nil else {
                throw EventJSONError(message: "duplicate field '\(key)'")
            }
        }
        guard let typeValue = fields.members["type"] else {
            throw EventJSONError(message: "missing field 'type' (one of \(inputTypes.joined(separator: ", ")))")
        }
        guard case .string(let typeName) = typeValue else {
            throw EventJSONError(message: "field 'type' must be a string")
        }
        fields.typeName = typeName
        let event: InputEvent
        let allowed: [String]
        switch typeName {
        case Chaser.fullName:
            allowed = ["name", "id", "sent", "ttl", "previous"]
            event = .chaser(
                Chaser(
                    name: try fields.string("name"), id: try fields.string("id"), sent: try fields.long("sent"),
                    ttl: try fields.long("ttl"), previous: try fields.optionalLong("previous")))
        case Bill.fullName:
            allowed = ["billId", "customerId", "orderId", "amountCents", "currency", "issuedAt", "dueDate"]
            event = .bill(
                Bill(
                    billId: try fields.string("billId"), customerId: try fields.string("customerId"),
                    orderId: try fields.string("orderId"), amountCents: try fields.long("amountCents"),
                    currency: try fields.string("currency"), issuedAt: try fields.long("issuedAt"),
                    dueDate: try fields.long("dueDate")))
        case PaymentRequest.fullName:
            allowed = ["paymentId", "billId", "customerId", "amountCents", "currency", "requestedAt"]
            event = .paymentRequest(
                PaymentRequest(
                    paymentId: try fields.string("paymentId"), billId: try fields.string("billId"),
                    customerId: try fields.string("customerId"), amountCents: try fields.long("amountCents"),
                    currency: try fields.string("currency"), requestedAt: try fields.long("requestedAt")))
        case PaymentFailed.fullName:
            allowed = ["paymentId", "billId", "customerId", "failureReason", "failedAt"]
            event = .paymentFailed(
                PaymentFailed(
                    paymentId: try fields.string("paymentId"), billId: try fields.string("billId"),
                    customerId: try fields.string("customerId"), failureReason: try fields.string("failureReason"),
                    failedAt: try fields.long("failedAt")))
        case ChaserAggregate.fullName, BillAggregate.fullName:
            throw EventJSONError(
                message: "type '\(typeName)' is an aggregate (output), not an input event; "
                    + "expected one of \(inputTypes.joined(separator: ", "))")
        default:
            throw EventJSONError(
                message: "unknown type '\(typeName)'; expected one of \(inputTypes.joined(separator: ", "))")
        }
        for (key, _) in members where key != "type" && !allowed.contains(key) {
            throw EventJSONError(message: "unknown field '\(key)' for \(typeName)")
        }
        return event
    }

    /// The JSON of one input event, in the shape `parse` accepts (used by tests and the generator).
    static func render(_ event: InputEvent) -> String {
        var out = #"{"type":"#
        JSONText.appendQuoted(event.fullName, to: &out)
        var body = ""
        switch event {
        case .chaser(let c):
            out += #","name":"#
            JSONText.appendQuoted(c.name, to: &out)
            out += #","id":"#
            JSONText.appendQuoted(c.id, to: &out)
            out += #","sent":\#(c.sent),"ttl":\#(c.ttl),"previous":"#
            out += c.previous.map { String($0) } ?? "null"
            out += "}"
            return out
        case .bill(let b): AggregateJSON.appendBill(b, to: &body)
        case .paymentRequest(let p): AggregateJSON.appendPaymentRequest(p, to: &body)
        case .paymentFailed(let f): AggregateJSON.appendPaymentFailed(f, to: &body)
        }
        // Nested renderers start with "{"; splice the type member in front of their fields.
        out += ","
        out += body.dropFirst()
        return out
    }

    private struct Fields {
        var members: [String: JSONValue]
        var typeName: String

        func string(_ name: String) throws(EventJSONError) -> String {
            guard let value = members[name] else { throw missing(name) }
            guard case .string(let s) = value else {
                throw EventJSONError(message: "field '\(name)' of \(typeName) must be a string")
            }
            return s
        }

        func long(_ name: String) throws(EventJSONError) -> Int64 {
            guard let value = members[name] else { throw missing(name) }
            return try asLong(value, name)
        }

        func optionalLong(_ name: String) throws(EventJSONError) -> Int64? {
            guard let value = members[name], value != .null else { return nil }
            return try asLong(value, name)
        }

        private func asLong(_ value: JSONValue, _ name: String) throws(EventJSONError) -> Int64 {
            switch value {
            case .int(let i): return i
            case .double(let d) where d == d.rounded() && abs(d) < 9.007_199_254_740_992e15:
                throw EventJSONError(
                    message: "field '\(name)' of \(typeName) must be an integer without fraction or exponent")
            case .double:
                throw EventJSONError(message: "field '\(name)' of \(typeName) must be a 64-bit integer")
            default:
                throw EventJSONError(message: "field '\(name)' of \(typeName) must be an integer")
            }
        }

        private func missing(_ name: String) -> EventJSONError {
            EventJSONError(message: "missing field '\(name)' for \(typeName)")
        }
    }
}
