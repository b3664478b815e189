// The event and aggregate value types (fields exactly as the Avro schemas in schemas/).

/// `com.polecatworks.chaser.Chaser`: one IoT "chaser" ping.
struct Chaser: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.chaser.Chaser"
    var name: String
    var id: String
    /// Epoch milliseconds.
    var sent: Int64
    var ttl: Int64
    var previous: Int64? = nil
}

/// `com.polecatworks.chaser.Aggregate`: the per-key chaser aggregate (store `chaser`).
struct ChaserAggregate: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.chaser.Aggregate"
    /// Distinct chaser names in first-seen order.
    var names: [String] = []
    var count: Int64 = 0
    /// Max `sent` seen.
    var latest: Int64? = nil
    /// Max `ttl` seen.
    var longest: Int64? = nil
}

/// `com.polecatworks.billing.Bill`.
struct Bill: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.billing.Bill"
    var billId: String
    var customerId: String
    var orderId: String
    var amountCents: Int64
    var currency: String
    var issuedAt: Int64
    var dueDate: Int64
}

/// `com.polecatworks.billing.PaymentRequest`.
struct PaymentRequest: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.billing.PaymentRequest"
    var paymentId: String
    var billId: String
    var customerId: String
    var amountCents: Int64
    var currency: String
    var requestedAt: Int64
}

/// `com.polecatworks.billing.PaymentFailed`.
struct PaymentFailed: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.billing.PaymentFailed"
    var paymentId: String
    var billId: String
    var customerId: String
    var failureReason: String
    var failedAt: Int64
}

/// `com.polecatworks.billing.BillAggregate`: the per-key billing aggregate (store `billing`).
struct BillAggregate: Equatable, Hashable, Sendable {
    static let fullName = "com.polecatworks.billing.BillAggregate"
    var bill: Bill? = nil
    var paymentRequests: [PaymentRequest] = []
    var lastPaymentFailed: PaymentFailed? = nil
    var errored: Bool = false
}

/// One record of the input topic: the four input event types.
enum InputEvent: Equatable, Hashable, Sendable {
    case chaser(Chaser)
    case bill(Bill)
    case paymentRequest(PaymentRequest)
    case paymentFailed(PaymentFailed)

    /// The Avro full name of the event's schema.
    var fullName: String {
        switch self {
        case .chaser: Chaser.fullName
        case .bill: Bill.fullName
        case .paymentRequest: PaymentRequest.fullName
        case .paymentFailed: PaymentFailed.fullName
        }
    }

    /// True for the events the billing store aggregates.
    var isBilling: Bool {
        if case .chaser = self { return false }
        return true
    }
}

/// The six record types of the wire format, by short name (as in `schemaRegistry.staticIds`).
enum SchemaKind: String, CaseIterable, Sendable {
    case chaser = "Chaser"
    case aggregate = "Aggregate"
    case bill = "Bill"
    case paymentRequest = "PaymentRequest"
    case paymentFailed = "PaymentFailed"
    case billAggregate = "BillAggregate"

    /// Avro full name (namespace + name); also the .avsc file name without extension.
    var fullName: String {
        switch self {
        case .chaser: Chaser.fullName
        case .aggregate: ChaserAggregate.fullName
        case .bill: Bill.fullName
        case .paymentRequest: PaymentRequest.fullName
        case .paymentFailed: PaymentFailed.fullName
        case .billAggregate: BillAggregate.fullName
        }
    }

    /// The kind with this Avro full name, if any.
    init?(fullName: String) {
        guard let kind = SchemaKind.allCases.first(where: { $0.fullName == fullName }) else { return nil }
        self = kind
    }

    /// Position in `allCases` (without allocating `allCases`).
    var index: Int {
        switch self {
        case .chaser: 0
        case .aggregate: 1
        case .bill: 2
        case .paymentRequest: 3
        case .paymentFailed: 4
        case .billAggregate: 5
        }
    }

    /// Aggregates are outputs; on the input topic they are "wrong-type".
    var isAggregate: Bool { self == .aggregate || self == .billAggregate }
}
