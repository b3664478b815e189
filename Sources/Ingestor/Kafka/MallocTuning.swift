// The glibc malloc settings the ingestor makes before librdkafka starts its threads (applied by KafkaConf).

/// Which glibc malloc settings to make; an explicit setting in the environment wins over each.
struct MallocTuning {
    /// Enough malloc arenas for one per thread (the ingestor runs about 32 with librdkafka's; glibc's default is
    /// 8 per core). Threads that share an arena share its lock: with a cap of 2, the commit thread's produces
    /// and the consumer's fetch thread (one allocation per consumed record, freed by the stream thread) met on
    /// one lock in some benchmark runs (4 of 21 in an afternoon), each 20-40% slower (docs/benchmarks.md).
    /// Freed memory stays with each arena, but the periodic `malloc_trim` hands it back. Nil when
    /// `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` in `GLIBC_TUNABLES` is set.
    var arenaMax: Int?
    /// Blocks from this size up get a mapping of their own, unmapped on free (mmap and trim thresholds). glibc
    /// otherwise raises its mmap threshold to the largest block freed so far; each commit epoch's MB-sized
    /// buffers, freed a moment later, then came from the heap and stayed resident (a median of 7 MB of anon at a
    /// million keys in alternating runs, docs/benchmarks.md). Nil when either threshold is set in the
    /// environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES`).
    var unmapFromBytes: Int?

    static let arenasForEveryThread = 64

    init(environment: (String) -> String?) {
        let tunables = environment("GLIBC_TUNABLES") ?? ""
        let explicitArenas = environment("MALLOC_ARENA_MAX") != nil || tunables.contains("glibc.malloc.arena_max")
        arenaMax = explicitArenas ? nil : Self.arenasForEveryThread
        let explicitThresholds =
            environment("MALLOC_MMAP_THRESHOLD_") != nil || environment("MALLOC_TRIM_THRESHOLD_") != nil
            || tunables.contains("glibc.malloc.mmap_threshold") || tunables.contains("glibc.malloc.trim_threshold")
        unmapFromBytes = explicitThresholds ? nil : 128 * 1_024
    }
}
