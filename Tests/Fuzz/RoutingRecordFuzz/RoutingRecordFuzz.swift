// libFuzzer entry for routing-topic records: an input is up to 8 record values, one per line, each read as
// the ingestor reads it (RoutingRecord.decode, the strict JSON reader) and applied in turn to one assignment
// table, as on the topic. Nothing crashes, every owner lookup names a partition inside the announced count,
// and a record read is written back unchanged (encode → decode gives the same announcement).
// Each input starts from an empty table, so a crash reproduces from its input alone and nothing is carried
// from one input to the next (state that grew across inputs kept LeakSanitizer scanning the heap).
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Shared/Routing and JSON).

@_cdecl("LLVMFuzzerTestOneInput")
public func routingRecordFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let records = UnsafeBufferPointer(start: data, count: size).split(
        separator: UInt8(ascii: "\n"), maxSplits: 7, omittingEmptySubsequences: false)
    var table = AssignmentTable()
    for (offset, record) in records.enumerated() {
        guard var announcement = try? RoutingRecord.decode(Array(record)) else { continue }
        let again = try? RoutingRecord.decode(RoutingRecord.encode(announcement))
        precondition(again == announcement, "encode → decode changed \(announcement) into \(String(describing: again))")
        announcement.sequence = Int64(offset)
        for now in [Int64.min, 0, announcement.time, Int64.max] {
            var copy = table
            copy.apply(announcement)
            let count = copy.partitionCount(now: now)
            for key in ["", "a", "key-1", "\u{e9}"] {
                if let (partition, _) = copy.owner(ofKey: key, now: now) {
                    precondition(partition >= 0 && partition < count, "partition \(partition) outside 0..<\(count)")
                }
            }
            for partition in announcement.partitions.prefix(8) { _ = copy.owner(ofPartition: partition, now: now) }
            _ = copy.endpoints(now: now)
            copy.expire(now: now)
        }
        table.apply(announcement)
    }
    return 0
}
