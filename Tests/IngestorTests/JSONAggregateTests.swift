// Tests of AggregateJSON (the API's JSON shapes) and the JSON string escaping.
import Shared
import Testing

@testable import Ingestor

@Suite struct JSONAggregateTests {
    @Test func chaserAggregateExactly() {
        let a = ChaserAggregate(names: ["A", "B"], count: 2, latest: 2000, longest: 500)
        #expect(
            AggregateJSON.render(a)
                == #"{"type":"com.polecatworks.chaser.Aggregate","names":["A","B"],"count":2,"latest":2000,"longest":500}"#
        )
    }

    @Test func emptyChaserAggregateWritesDefaultsAndNulls() {
        #expect(
            AggregateJSON.render(ChaserAggregate())
                == #"{"type":"com.polecatworks.chaser.Aggregate","names":[],"count":0,"latest":null,"longest":null}"#
        )
    }

    @Test func emptyBillAggregate() {
        #expect(
            AggregateJSON.render(BillAggregate())
                == #"{"type":"com.polecatworks.billing.BillAggregate","bill":null,"paymentRequests":[],"#
                + #""lastPaymentFailed":null,"errored":false}"#)
    }

    @Test func fullBillAggregateNestedWithoutType() throws {
        let a = BillAggregate(
            bill: TopologyRulesTests.bill, paymentRequests: [TopologyRulesTests.request],
            lastPaymentFailed: TopologyRulesTests.failed, errored: true)
        let text = AggregateJSON.render(a)
        #expect(
            text
                == #"{"type":"com.polecatworks.billing.BillAggregate","bill":{"billId":"BILL-1","customerId":"C-1","#
                + #""orderId":"O-1","amountCents":1250,"currency":"EUR","issuedAt":1000,"dueDate":9000},"#
                + #""paymentRequests":[{"paymentId":"PAY-1","billId":"BILL-1","customerId":"C-1","amountCents":1250,"#
                + #""currency":"EUR","requestedAt":2000}],"lastPaymentFailed":{"paymentId":"PAY-1","billId":"BILL-1","#
                + #""customerId":"C-1","failureReason":"card declined","failedAt":3000},"errored":true}"#)
        // And it is valid JSON.
        let parsed = try JSONParser.parse(text)
        #expect(parsed["errored"] == .bool(true))
        #expect(parsed["bill"]?["type"] == nil)
    }

    @Test func stringEscaping() throws {
        let nasty = "q\"b\\s/\n\r\t\u{08}\u{0C}\u{01}\u{1F}é€😀\u{7F}"
        let a = ChaserAggregate(names: [nasty], count: 1, latest: nil, longest: nil)
        let text = AggregateJSON.render(a)
        #expect(text.contains(#""q\"b\\s/\n\r\t\b\f\u0001\u001fé€😀\#u{7F}""#))
        let parsed = try JSONParser.parse(text)
        #expect(parsed["names"] == .array([.string(nasty)]))
    }

    @Test func extremeNumbers() throws {
        let a = ChaserAggregate(names: [], count: Int64.max, latest: Int64.min, longest: 0)
        let parsed = try JSONParser.parse(AggregateJSON.render(a))
        #expect(parsed["count"] == .int(Int64.max))
        #expect(parsed["latest"] == .int(Int64.min))
    }
}
