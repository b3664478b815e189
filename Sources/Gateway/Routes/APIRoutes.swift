// The API route table (gateway.port): declared here as data, printed at start-up.

/// Builds the API table. The handlers live in StaticHandlers and DataHandlers.
enum APIRoutes {
    static func table(prefix: String, statics: StaticHandlers, data: DataHandlers) -> RouteTable {
        RouteTable([
            Route(.get, "/", prefix: prefix, "demo: {\"str\":\"params.a\"}", .sync(statics.root)),
            Route(.get, "/hello", prefix: prefix, "demo: Hello back", .sync(statics.hello)),
            Route(.get, "/string/{a}", prefix: prefix, "demo: Smoke{a}", .sync(statics.smoke)),
            Route(.get, "/count", prefix: prefix, "demo: counter {\"count\":N}", .sync(statics.count)),
            Route(.get, "/chaser/{key}", prefix: prefix, "chaser aggregate (ingestor)", .async(data.chaser)),
            Route(.get, "/chaser", prefix: prefix, "keys of the chaser store (ingestor)", .async(data.chaserKeys)),
            Route(.get, "/billing/{key}", prefix: prefix, "billing aggregate (ingestor)", .async(data.billing)),
            Route(.get, "/billing", prefix: prefix, "keys of the billing store (ingestor)", .async(data.billingKeys)),
            Route(.post, "/events", prefix: prefix, "publish one event (ingestor → Kafka)", .async(data.publish)),
            Route(.get, "/openapi.json", prefix: prefix, "this API's OpenAPI 3 document", .sync(statics.openAPI)),
        ])
    }
}
