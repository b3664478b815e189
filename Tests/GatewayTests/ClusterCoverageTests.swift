// Cluster listings through DataHandlers with a fake ingestor: complete pages, partitions nobody listed, no count.
import Shared
import Testing

@testable import Gateway

/// Answers from a script, synchronously. Loop-less: DataHandlers only needs the callbacks.
private final class ScriptedIngestor: IngestorClient {
    var table = RoutingInfo(epoch: 1, partitionCount: 0, localEndpoint: "10.0.0.1:8080", owners: [])
    var page = KeyPage(keys: [], nextCursor: nil)
    var isConnected: Bool { true }

    func send(_ request: SocketRequest, timeoutMs: UInt64, _ completion: @escaping (IngestorReply) -> Void) {
        switch request {
        case .routingTable: completion(.response(.routing(table)))
        case .listKeys: completion(.response(.keys(page)))
        default: completion(.response(.notFound))
        }
    }
    func close() {}
}

private final class CapturingSink: ResponseSink {
    var responses: [HTTPResponse] = []
    func complete(_ sequence: UInt64, _ response: HTTPResponse) { responses.append(response) }
}

@Suite struct ClusterCoverageTests {
    private func list(_ ingestor: ScriptedIngestor, marked: Bool = false, scope: String = "cluster") -> HTTPResponse? {
        let sink = CapturingSink()
        var headers = HTTPHeaders()
        if marked { headers = HTTPHeaders([(Forwarder.markerHeader, "1")]) }
        let request = HTTPRequest(method: .get, target: "/chaser?scope=\(scope)&limit=10", headers: headers)
        DataHandlers(client: ingestor).chaserKeys(
            RouteRequest(request: request, params: []), Responder(sink: sink, sequence: 0))
        #expect(sink.responses.count == 1)
        return sink.responses.first
    }

    private static func ownedHere(_ count: Int32) -> RoutingInfo {
        RoutingInfo(
            epoch: 1, partitionCount: count, localEndpoint: "10.0.0.1:8080",
            owners: (0..<count).map { PartitionEndpoint(partition: $0, endpoint: "10.0.0.1:8080") })
    }

    @Test func everyPartitionListedGivesThePage() {
        let ingestor = ScriptedIngestor()
        ingestor.table = Self.ownedHere(3)
        ingestor.page = KeyPage(keys: ["a", "b"], nextCursor: nil, partitions: [0, 1, 2])
        let r = list(ingestor)
        #expect(r?.status == 200)
        #expect(r.map { String(decoding: $0.body, as: UTF8.self) } == #"{"keys":["a","b"],"next":null}"#)
    }

    @Test func aPartitionNobodyListedIsA503NotAPartialPage() {
        // The table still names this pod for partition 2, but its ingestor no longer holds it (a rebalance).
        let ingestor = ScriptedIngestor()
        ingestor.table = Self.ownedHere(3)
        ingestor.page = KeyPage(keys: ["a"], nextCursor: nil, partitions: [0, 1])
        let r = list(ingestor)
        #expect(r?.status == 503)
        #expect(r?.headers.contains { $0.0 == "Retry-After" } == true)
        #expect(r.map { String(decoding: $0.body, as: UTF8.self).contains("listing-incomplete") } == true)
    }

    @Test func anIngestorThatDoesNotSayFallsBackToTheTable() {
        let ingestor = ScriptedIngestor()
        ingestor.table = Self.ownedHere(3)
        ingestor.page = KeyPage(keys: ["a"], nextCursor: nil, partitions: nil)
        #expect(list(ingestor)?.status == 200)
    }

    @Test func noPartitionCountYetIsA503() {
        // A pod before its first assignment lists nothing: that must not read as "the cluster has no keys".
        let ingestor = ScriptedIngestor()
        ingestor.page = KeyPage(keys: [], nextCursor: nil, partitions: [])
        #expect(list(ingestor)?.status == 503)
    }

    @Test func aPeerListingNamesItsPartitionsInAHeader() {
        let ingestor = ScriptedIngestor()
        ingestor.page = KeyPage(keys: ["a"], nextCursor: nil, partitions: [1, 4])
        let marked = list(ingestor, marked: true, scope: "local")
        #expect(marked?.headers.first { $0.0 == DataHandlers.partitionsHeader }?.1 == "1,4")
        // Not on a client's own listing (the public answer is unchanged).
        #expect(list(ingestor, scope: "local")?.headers.isEmpty == true)
    }
}
