// JSON rendering of the aggregates for the HTTP API: `"type"` discriminator first, nested
// records without type, nulls and defaults written out. Pure; safe on any thread.

import Shared

enum AggregateJSON {
    /// `{"type":"com.polecatworks.chaser.Aggregate","names":[..],"count":N,"latest":N|null,"longest":N|null}`
    static func render(_ a: ChaserAggregate) -> String {
        var out = ""
        out.reserveCapacity(96 + a.names.count * 16)
        out += #"{"type":"com.polecatworks.chaser.Aggregate","names":["#
        for (i, name) in a.names.enumerated() {
            if i > 0 { out += "," }
            JSONText.appendQuoted(name, to: &out)
        }
        out += #"],"count":"#
        out += String(a.count)
        out += #","latest":"#
        appendOptional(a.latest, to: &out)
        out += #","longest":"#
        appendOptional(a.longest, to: &out)
        out += "}"
        return out
    }

    /// `{"type":"com.polecatworks.billing.BillAggregate","bill":{..}|null,"paymentRequests":[{..}],
    /// "lastPaymentFailed":{..}|null,"errored":bool}`
    static func render(_ a: BillAggregate) -> String {
        var out = ""
        out.reserveCapacity(256 + a.paymentRequests.count * 160)
        out += #"{"type":"com.polecatworks.billing.BillAggregate","bill":"#
        if let bill = a.bill {
            appendBill(bill, to: &out)
        } else {
            out += "null"
        }
        out += #","paymentRequests":["#
        for (i, request) in a.paymentRequests.enumerated() {
            if i > 0 { out += "," }
            appendPaymentRequest(request, to: &out)
        }
        out += #"],"lastPaymentFailed":"#
        if let failed = a.lastPaymentFailed {
            appendPaymentFailed(failed, to: &out)
        } else {
            out += "null"
        }
        out += #","errored":"#
        out += a.errored ? "true" : "false"
        out += "}"
        return out
    }

    /// A Bill record without type discriminator (as nested in BillAggregate).
    static func appendBill(_ b: Bill, to out: inout String) {
        out += #"{"billId":"#
        JSONText.appendQuoted(b.billId, to: &out)
        out += #","customerId":"#
        JSONText.appendQuoted(b.customerId, to: &out)
        out += #","orderId":"#
        JSONText.appendQuoted(b.orderId, to: &out)
        out += #","amountCents":"#
        out += String(b.amountCents)
        out += #","currency":"#
        JSONText.appendQuoted(b.currency, to: &out)
        out += #","issuedAt":"#
        out += String(b.issuedAt)
        out += #","dueDate":"#
        out += String(b.dueDate)
        out += "}"
    }

    /// A PaymentRequest record without type discriminator.
    static func appendPaymentRequest(_ p: PaymentRequest, to out: inout String) {
        out += #"{"paymentId":"#
        JSONText.appendQuoted(p.paymentId, to: &out)
        out += #","billId":"#
        JSONText.appendQuoted(p.billId, to: &out)
        out += #","customerId":"#
        JSONText.appendQuoted(p.customerId, to: &out)
        out += #","amountCents":"#
        out += String(p.amountCents)
        out += #","currency":"#
        JSONText.appendQuoted(p.currency, to: &out)
        out += #","requestedAt":"#
        out += String(p.requestedAt)
        out += "}"
    }

    /// A PaymentFailed record without type discriminator.
    static func appendPaymentFailed(_ f: PaymentFailed, to out: inout String) {
        out += #"{"paymentId":"#
        JSONText.appendQuoted(f.paymentId, to: &out)
        out += #","billId":"#
        JSONText.appendQuoted(f.billId, to: &out)
        out += #","customerId":"#
        JSONText.appendQuoted(f.customerId, to: &out)
        out += #","failureReason":"#
        JSONText.appendQuoted(f.failureReason, to: &out)
        out += #","failedAt":"#
        out += String(f.failedAt)
        out += "}"
    }

    private static func appendOptional(_ v: Int64?, to out: inout String) {
        if let v { out += String(v) } else { out += "null" }
    }
}
