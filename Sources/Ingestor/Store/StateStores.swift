// The ingestor's two local stores (chaser, billing), each its own LMDB environment under ingestor.stateDir.

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

    package init(stateDir: String) throws(StoreError) {
        chaser = try LMDBStore(directory: "\(stateDir)/chaser", name: "chaser")
        billing = try LMDBStore(directory: "\(stateDir)/billing", name: "billing")
    }

    package subscript(kind: StoreKind) -> LMDBStore {
        switch kind {
        case .chaser: chaser
        case .billing: billing
        }
    }

    package func syncAll() {
        chaser.sync()
        billing.sync()
    }
}
