// Value types of the local state store: checkpoints, write batches, errors.

/// Limits every store implementation shares.
package enum StoreLimits {
    /// LMDB's largest key (MDB_MAXKEYSIZE as Debian builds it). LMDB refuses longer and empty keys, so such
    /// records are dead-lettered instead of failing the commit (and every restart after it) forever.
    package static let maxKeyBytes = 511

    /// Why `key` cannot be stored (a dead-letter reason and its detail), or nil when it can.
    package static func refusal(keyBytes count: Int) -> (reason: String, detail: String)? {
        if count == 0 { return ("empty-key", "record key is empty") }
        if count > maxKeyBytes {
            return ("key-too-long", "key of \(count) bytes; the stores take at most \(maxKeyBytes)")
        }
        return nil
    }
}

/// What the local store of one partition is known to contain.
package struct Checkpoint: Sendable, Equatable {
    /// The committed input offset (next input offset to consume) the stored values are exact for.
    package var inputOffset: Int64
    /// The next changelog offset to replay from.
    package var changelogOffset: Int64
    package init(inputOffset: Int64, changelogOffset: Int64) {
        self.inputOffset = inputOffset
        self.changelogOffset = changelogOffset
    }

    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        withUnsafeBytes(of: inputOffset.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: changelogOffset.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        inputOffset = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        changelogOffset = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self))
    }
}

/// Everything one commit writes to a store, in one LMDB write transaction.
package struct StoreWriteBatch: Sendable {
    /// Values per partition, in write order (a later put of the same key wins).
    package var puts: [Int32: [(key: [UInt8], value: [UInt8])]] = [:]
    package var checkpoints: [Int32: Checkpoint] = [:]
    package init() {}

    package mutating func put(partition: Int32, key: [UInt8], value: [UInt8]) {
        puts[partition, default: []].append((key, value))
    }

    package var isEmpty: Bool { puts.isEmpty && checkpoints.isEmpty }
}

/// An LMDB failure with the call and store it happened in.
package struct StoreError: Error, CustomStringConvertible, Sendable {
    package var store: String
    package var operation: String
    package var code: Int32
    package var message: String
    package var description: String { "store \(store): \(operation): \(message) (\(code))" }
}

/// Disk use of one store (bytes).
package struct StoreSpace: Sendable, Equatable {
    /// Pages LMDB has committed (the file's high-water mark; free pages inside it are reused).
    package var usedBytes: Int
    /// Blocks allocated ahead of LMDB's writes (WRITEMAP); equals `usedBytes` without WRITEMAP.
    package var reservedBytes: Int
    /// What the file system still gives an unprivileged writer.
    package var freeBytes: Int
}
