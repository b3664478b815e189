// Thin C shim for rdkafka: the one header Swift imports for this library (plus inline helpers for macros).
#pragma once
#include <librdkafka/rdkafka.h>
#include <malloc.h>

/* Cast-free constants: the header's macros are casts Swift cannot import. */
static const int32_t k8s_rdk_partition_ua = RD_KAFKA_PARTITION_UA;
static const int64_t k8s_rdk_offset_beginning = RD_KAFKA_OFFSET_BEGINNING;
static const int64_t k8s_rdk_offset_end = RD_KAFKA_OFFSET_END;
static const int64_t k8s_rdk_offset_stored = RD_KAFKA_OFFSET_STORED;
static const int64_t k8s_rdk_offset_invalid = RD_KAFKA_OFFSET_INVALID;

/* rd_kafka_producev is variadic: one non-variadic entry point. `headers` (may be NULL) is owned by
   librdkafka on success and must be destroyed by the caller on failure. Copies key and value. */
static inline rd_kafka_resp_err_t k8s_rdk_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                                                 const void *key, size_t keylen, const void *value,
                                                 size_t vallen, rd_kafka_headers_t *headers, void *opaque) {
    if (headers) {
        return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                                 RD_KAFKA_V_VALUE(value, vallen), RD_KAFKA_V_HEADERS(headers),
                                 RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                             RD_KAFKA_V_VALUE(value, vallen), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

/* Same as k8s_rdk_produce with a topic handle made once (rd_kafka_topic_new): no topic lookup by name (lock +
   list scan + refcount) per record. */
static inline rd_kafka_resp_err_t k8s_rdk_produce_rkt(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
                                                     const void *key, size_t keylen, const void *value,
                                                     size_t vallen, rd_kafka_headers_t *headers, void *opaque) {
    if (headers) {
        return rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                                 RD_KAFKA_V_VALUE(value, vallen), RD_KAFKA_V_HEADERS(headers),
                                 RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                             RD_KAFKA_V_VALUE(value, vallen), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

/* Sets glibc's cap on malloc arenas (MallocTuning says which and why); mallopt is not in Swift's Glibc module,
   hence this wrapper. */
static inline int k8s_malloc_arena_max(int arenas) {
#ifdef M_ARENA_MAX
    return mallopt(M_ARENA_MAX, arenas);
#else
    (void)arenas;
    return 0;
#endif
}

/* Fixes glibc's mmap and trim thresholds at `bytes`: a block from that size up gets a mapping of its own that
   free() unmaps. By default glibc raises the mmap threshold to the largest block freed so far (up to 32 MB);
   after the first epoch's buffers were freed, later ones came from the heap and their pages stayed resident
   (a median of 7 MB of anon at a million keys, measured in docs/benchmarks.md). */
static inline void k8s_malloc_unmap_from(int bytes) {
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, bytes);
    mallopt(M_TRIM_THRESHOLD, bytes);
#else
    (void)bytes;
#endif
}

/* Hands free heap pages back to the kernel (glibc keeps freed chunks of long-lived arenas resident). */
static inline void k8s_malloc_trim(void) {
#ifdef M_ARENA_MAX
    malloc_trim(0);
#endif
}
