// JSON shapes: the error body, health bodies, key pages, escaping; event validation at the edge.
import Shared
import Testing

@testable import Gateway

struct JSONShapeTests {
    private func object(_ text: String) -> [(String, JSONValue)]? {
        guard case .object(let members)? = try? JSONParser.parse(Array(text.utf8)) else { return nil }
        return members
    }

    @Test func errorShape() {
        let body = JSONText.error(code: "not-found", message: "no \"key\"\n\u{1}")
        let members = object(body)
        #expect(members?.map(\.0) == ["error", "message"])
        #expect(members?[0].1 == .string("not-found"))
        #expect(members?[1].1 == .string("no \"key\"\n\u{1}"))
        let response = HTTPResponse.error(503, "x", "y", headers: [("Retry-After", "1")])
        #expect(response.status == 503 && response.contentType == "application/json")
        #expect(response.headers.first?.0 == "Retry-After")
    }

    @Test func healthShape() {
        let text = HealthRoutes.healthJSON(name: "alive", valid: false, detail: [("loop", true), ("w", false)])
        #expect(
            text
                == #"{"name":"alive","valid":false,"detail":[{"name":"loop","valid":true},{"name":"w","valid":false}]}"#
        )
    }

    @Test func keyPage() {
        #expect(
            DataHandlers.keysJSON(KeyPage(keys: ["a", "b\"c"], nextCursor: nil))
                == #"{"keys":["a","b\"c"],"next":null}"#)
        #expect(DataHandlers.keysJSON(KeyPage(keys: [], nextCursor: "k")) == #"{"keys":[],"next":"k"}"#)
    }

    @Test func ingestorAnswersMapToHTTP() {
        let none: (SocketResponse) -> HTTPResponse? = { _ in nil }
        let r1 = DataHandlers.map(
            .response(.notReady(retryAfterMs: 2_500, message: "restoring")), notFound: "", success: none)
        #expect(r1.status == 503 && r1.headers.contains { $0 == ("Retry-After", "3") })
        let r2 = DataHandlers.map(.response(.notReady(retryAfterMs: 0, message: "")), notFound: "", success: none)
        #expect(r2.headers.contains { $0 == ("Retry-After", "1") })
        #expect(DataHandlers.map(.response(.notFound), notFound: "x", success: none).status == 404)
        #expect(DataHandlers.map(.unavailable(reason: "down"), notFound: "", success: none).status == 503)
        #expect(DataHandlers.map(.response(.badRequest(message: "bad")), notFound: "", success: none).status == 400)
        #expect(DataHandlers.map(.response(.internalError(message: "boom")), notFound: "", success: none).status == 500)
    }

    @Test func keyQuery() throws {
        #expect(try DataHandlers.KeyQuery.parse([]).get() == DataHandlers.KeyQuery())
        let q = try? DataHandlers.KeyQuery.parse([("limit", "5"), ("cursor", "c"), ("scope", "cluster")]).get()
        #expect(q?.limit == 5 && q?.cursor == "c" && q?.cluster == true)
        for bad in [("limit", "0"), ("limit", "10001"), ("limit", "x"), ("scope", "world")] {
            if case .success = DataHandlers.KeyQuery.parse([bad]) { Issue.record("\(bad) accepted") }
        }
        if case .success = DataHandlers.KeyQuery.parse(nil) { Issue.record("malformed query accepted") }
    }

    @Test func eventValidation() {
        let chaser = #"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1000,"ttl":300}"#
        #expect(EventValidation.problem(in: Array(chaser.utf8)) == nil)
        let withPrevious =
            #"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1,"ttl":3,"previous":null}"#
        #expect(EventValidation.problem(in: Array(withPrevious.utf8)) == nil)
        let cases: [(String, String)] = [
            ("[]", "JSON object"),
            ("{}", "'type'"),
            (#"{"type":"x"}"#, "unknown event type"),
            (#"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1000}"#, "missing field 'ttl'"),
            (#"{"type":"com.polecatworks.chaser.Chaser","name":1,"id":"1","sent":1,"ttl":3}"#, "must be a string"),
            (#"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1.5,"ttl":3}"#, "64-bit"),
            (#"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"1","sent":1,"ttl":3,"x":1}"#, "unknown field"),
            (#"{"type":"com.polecatworks.billing.PaymentFailed","paymentId":"p"}"#, "missing field"),
            ("{nope", "invalid JSON"),
        ]
        for (body, reason) in cases {
            let problem = EventValidation.problem(in: Array(body.utf8))
            #expect(problem?.contains(reason) == true, "\(body) → \(problem ?? "accepted")")
        }
    }

    @Test func anAcceptedEventNamesTheStoreAndKeyItUpdates() {
        let chaser = #"{"type":"com.polecatworks.chaser.Chaser","name":"A","id":"device-1","sent":1,"ttl":3}"#
        #expect(EventValidation.check(Array(chaser.utf8)) == .accepted(.init(store: "chaser", key: "device-1")))
        let payment =
            #"{"type":"com.polecatworks.billing.PaymentFailed","paymentId":"p","billId":"b-7","#
            + #""customerId":"c","failureReason":"r","failedAt":5}"#
        #expect(EventValidation.check(Array(payment.utf8)) == .accepted(.init(store: "billing", key: "b-7")))
    }
}
