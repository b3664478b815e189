// libFuzzer entry for routing-topic records: any record value, read as the ingestor reads it (JSONDecoder
// into RoutingAnnouncement), then applied to an assignment table and queried, never crashes, and every
// answer names a partition inside the announced count.
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Shared/Routing).
import Foundation

nonisolated(unsafe) private var table = AssignmentTable()
nonisolated(unsafe) private var sequence: Int64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func routingRecordFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard var announcement = try? JSONDecoder().decode(RoutingAnnouncement.self, from: Data(bytes: data, count: size))
    else { return 0 }
    sequence += 1
    announcement.sequence = sequence
    // Several records build up one table, as on the topic; it is reset now and then to stay small.
    if table.members.count > 16 { table = AssignmentTable() }
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
    return 0
}
