// Which input partitions this ingestor owns and whether each is restoring or serving; shared with queries.
import Synchronization

/// Written by the stream thread, read by the socket thread (thread-safe).
package final class PartitionRegistry: Sendable {
    package enum State: Sendable, Equatable {
        case restoring
        case active
        /// Lost (the session timed out, typically a broker outage): no longer processed here, but its committed
        /// local state is served until the group gives the partition to this member again or to another one.
        case retained
    }

    package struct Snapshot: Sendable {
        package var partitionCount: Int32 = 0
        package var states: [Int32: State] = [:]
        package var joinedGroup = false
        package var running = true
        package var memberId = ""
        package var brokerReachable = true
        /// The input topic exists (the stream thread waits for it before it joins the group).
        package var inputTopicFound = false

        /// Why nothing is served yet, for "not ready" answers before the first assignment.
        package var notAssignedReason: String {
            inputTopicFound ? "not assigned yet (joining the consumer group)" : "waiting for the input topic"
        }

        package var active: [Int32] { states.filter { $0.value == .active }.map(\.key).sorted() }
        /// Partitions whose stores answer queries: active and retained ones.
        package var served: [Int32] { states.filter { $0.value != .restoring }.map(\.key).sorted() }
        package var restoring: [Int32] { states.filter { $0.value == .restoring }.map(\.key).sorted() }
        package var ready: Bool { joinedGroup && running && !states.values.contains(.restoring) }
    }

    private let state = Mutex(Snapshot())

    package init() {}

    package var snapshot: Snapshot { state.withLock { $0 } }

    package func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    package func state(of partition: Int32) -> State? {
        state.withLock { $0.states[partition] }
    }
}
