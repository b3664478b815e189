// Errors from librdkafka with the classes its transactional API documents (retriable, abortable, fatal).
import CRdKafka

/// One librdkafka error, classified the way the transactional API asks callers to react.
package struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// What the caller should do about it.
    package enum Kind: String, Sendable {
        /// Try the same call again.
        case retriable
        /// Abort the transaction and rewind to the committed offsets.
        case abortable
        /// The client instance is unusable: exit and let Kubernetes restart the process.
        case fatal
        /// Anything else (configuration, timeouts outside a transaction, ...).
        case other
    }

    package var code: Int32
    package var name: String
    package var message: String
    package var kind: Kind
    /// The call that failed, e.g. "commit_transaction".
    package var operation: String

    package init(code: Int32, name: String, message: String, kind: Kind, operation: String) {
        self.code = code
        self.name = name
        self.message = message
        self.kind = kind
        self.operation = operation
    }

    /// librdkafka's "all brokers down": every connection of the client is down.
    package var meansBrokersDown: Bool { code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue }

    package var description: String { "\(operation): \(name) (\(kind.rawValue)): \(message)" }

    /// Takes ownership of `error` (destroys it).
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        code = rd_kafka_error_code(error).rawValue
        name = rd_kafka_error_name(error).map { String(cString: $0) } ?? "unknown"
        message = rd_kafka_error_string(error).map { String(cString: $0) } ?? ""
        kind = Self.kind(
            code: code, fatal: rd_kafka_error_is_fatal(error) != 0,
            requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0,
            retriable: rd_kafka_error_is_retriable(error) != 0)
        self.operation = operation
    }

    /// librdkafka's own class, except that fencing is always fatal: librdkafka can report a fence (tansu sends
    /// PRODUCER_FENCED per partition of a TxnOffsetCommit) as merely abortable, but a fenced transactional.id
    /// never works again in this process, and aborting and going on would wait forever for a commit that
    /// cannot happen. The restart gets a new epoch (or stays fenced while the newer instance lives).
    static func kind(code: Int32, fatal: Bool, requiresAbort: Bool, retriable: Bool) -> Kind {
        if fatal || Self.isFence(code) { return .fatal }
        if requiresAbort { return .abortable }
        if retriable { return .retriable }
        return .other
    }

    /// The fence codes: librdkafka's local one and the broker's two (it maps both to the local one).
    static func isFence(_ code: Int32) -> Bool {
        code == RD_KAFKA_RESP_ERR__FENCED.rawValue || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue
            || code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue
    }

    init(code err: rd_kafka_resp_err_t, operation: String, kind: Kind = .other) {
        code = err.rawValue
        name = rd_kafka_err2name(err).map { String(cString: $0) } ?? "unknown"
        message = rd_kafka_err2str(err).map { String(cString: $0) } ?? ""
        self.kind = kind
        self.operation = operation
    }

    init(config message: String) {
        self.init(code: -1, name: "config", message: message, kind: .other, operation: "configure")
    }
}

/// The librdkafka actually loaded at run time (may differ from the headers built against).
package enum KafkaLibrary {
    package static var version: String { String(cString: rd_kafka_version_str()) }

    /// librdkafka before 2.2.0 mis-skips tagged fields and cannot finish the ApiVersions handshake with newer
    /// brokers (tansu among them): clients then retry forever without an error.
    package static var isTooOld: Bool { rd_kafka_version() < 0x0202_0000 }
}
