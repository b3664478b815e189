// Builds one EventCodec per thread from the resolved schema ids (embedded ids or registry-assigned ones).
import Logging
import Shared

/// Sendable recipe for codecs; each thread makes its own (EventCodec is single-threaded).
struct CodecFactory: Sendable {
    let schemaDir: String
    let ids: [String: Int32]
    let registry: SchemaRegistryClient?

    /// Registry mode registers our schemas first (with retries); embedded mode uses the static ids.
    static func resolve(config: AppConfig, logger: Logger) throws -> CodecFactory {
        guard let url = config.schemaRegistry.url, !url.isEmpty else {
            return CodecFactory(
                schemaDir: config.ingestor.schemaDir, ids: config.schemaRegistry.staticIds, registry: nil)
        }
        let client = try SchemaRegistryClient(url: url)
        let ids = try client.registerAll(
            schemaDir: config.ingestor.schemaDir, inputTopic: config.kafka.inputTopic, logger: logger)
        return CodecFactory(schemaDir: config.ingestor.schemaDir, ids: ids, registry: client)
    }

    func make() throws -> EventCodec {
        try EventCodec(schemaDir: schemaDir, ids: ids, registry: registry)
    }
}
