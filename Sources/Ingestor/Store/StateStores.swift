// The ingestor's two local stores (chaser, billing), each its own LMDB environment under ingestor.stateDir.
import CLMDB
import FoundationEssentials
package import Logging
import Metrics

/// Which store; the raw value indexes per-store arrays.
package enum StoreKind: Int, CaseIterable, Sendable {
    case chaser = 0
    case billing = 1

    package var name: String {
        switch self {
        case .chaser: "chaser"
        case .billing: "billing"
        }
    }

    package init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }
}

/// Both stores; thread-safety as `LMDBStore` (one writer thread, readers anywhere).
package final class StateStores: Sendable {
    package let chaser: LMDBStore
    package let billing: LMDBStore
    /// `store_disk_{free,reserved,used}_bytes{store}` by `StoreKind.rawValue`, refreshed by `syncAll`.
    private let diskGauges: [(free: Gauge, reserved: Gauge, used: Gauge)]

    package init(stateDir: String, logger: Logger = Logger(label: "k8s-micro.ingestor.store")) throws(StoreError) {
        chaser = try Self.open(directory: "\(stateDir)/chaser", name: "chaser", logger: logger)
        billing = try Self.open(directory: "\(stateDir)/billing", name: "billing", logger: logger)
        diskGauges = StoreKind.allCases.map { kind in
            let store = [("store", kind.name)]
            return (
                Gauge(label: "store_disk_free_bytes", dimensions: store),
                Gauge(label: "store_disk_reserved_bytes", dimensions: store),
                Gauge(label: "store_disk_used_bytes", dimensions: store)
            )
        }
        recordSpace()
    }

    /// Start-up: room for each store's first writes (see `LMDBStore.reserveHeadroom`).
    package func reserveHeadroom() throws(StoreError) {
        defer { recordSpace() }
        try chaser.reserveHeadroom()
        try billing.reserveHeadroom()
    }

    private func recordSpace() {
        for kind in StoreKind.allCases {
            let space = self[kind].space
            let gauges = diskGauges[kind.rawValue]
            gauges.free.record(space.freeBytes)
            gauges.reserved.record(space.reservedBytes)
            gauges.used.record(space.usedBytes)
        }
    }

    /// Opens a store. One whose files LMDB refuses as damaged (an OS crash inside the 5 s sync window can leave
    /// a NOSYNC store so) is moved aside to `<directory>.damaged` (replacing an older one) and opened empty: its
    /// partitions then restore from the changelog like a new pod's, instead of the pod failing on every start.
    static func open(directory: String, name: String, logger: Logger) throws(StoreError) -> LMDBStore {
        do throws(StoreError) {
            if FileManager.default.fileExists(atPath: directory + "/" + damagedMarker) {
                throw StoreError(
                    store: name, operation: "open", code: MDB_CORRUPTED, message: "marked damaged by the last run")
            }
            return try LMDBStore(directory: directory, name: name)
        } catch  where error.meansDamagedFiles {
            let aside = directory + ".damaged"
            logger.error(
                "local store damaged; moving it aside and restoring from the changelog",
                metadata: ["store": "\(name)", "error": "\(error)", "movedTo": "\(aside)"])
            do {
                if FileManager.default.fileExists(atPath: aside) { try FileManager.default.removeItem(atPath: aside) }
                try FileManager.default.moveItem(atPath: directory, toPath: aside)
            } catch {
                throw StoreError(store: name, operation: "move aside \(directory)", code: -1, message: "\(error)")
            }
            return try LMDBStore(directory: directory, name: name)
        }
    }

    private static let damagedMarker = "damaged"

    /// Damage found while running (a read or write LMDB refused): the next start moves the store aside. The
    /// process exits on such an error anyway; without the mark it would fail again on every start.
    package func markDamaged(by error: any Error) {
        guard let error = error as? StoreError, error.meansDamagedFiles,
            let kind = StoreKind(name: error.store)
        else { return }
        _ = FileManager.default.createFile(atPath: self[kind].directory + "/" + Self.damagedMarker, contents: nil)
    }

    package subscript(kind: StoreKind) -> LMDBStore {
        switch kind {
        case .chaser: chaser
        case .billing: billing
        }
    }

    /// Flushes both stores and refreshes the disk gauges (every 5 s on the stream thread, and at shutdown).
    package func syncAll() {
        chaser.sync()
        billing.sync()
        recordSpace()
    }
}

extension StoreError {
    /// LMDB refused the files themselves (bad meta pages, a damaged B-tree, another format): not a resource
    /// problem a restart could fix.
    var meansDamagedFiles: Bool {
        [MDB_CORRUPTED, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_PANIC, MDB_PAGE_NOTFOUND].contains(code)
    }
}
