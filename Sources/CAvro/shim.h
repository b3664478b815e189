// Thin C shim for avro: the one header Swift imports for this library.
// avro-c's avro_value_* accessors are function-like macros Swift cannot import; the static inline
// wrappers below expose the ones the Swift wrapper (Sources/Ingestor/Avro/AvroC.swift) uses.
#pragma once
#include <errno.h>
#include <avro.h>

static inline int cavro_value_reset(avro_value_t *v) { return avro_value_reset(v); }
static inline avro_type_t cavro_value_get_type(const avro_value_t *v) { return avro_value_get_type(v); }
static inline avro_schema_t cavro_value_get_schema(const avro_value_t *v) { return avro_value_get_schema(v); }

static inline int cavro_value_get_boolean(const avro_value_t *v, int *out) {
    return avro_value_get_boolean(v, out);
}
static inline int cavro_value_get_long(const avro_value_t *v, int64_t *out) { return avro_value_get_long(v, out); }
static inline int cavro_value_get_int(const avro_value_t *v, int32_t *out) { return avro_value_get_int(v, out); }
static inline int cavro_value_get_string(const avro_value_t *v, const char **str, size_t *size) {
    return avro_value_get_string(v, str, size);
}

static inline int cavro_value_set_boolean(avro_value_t *v, int val) { return avro_value_set_boolean(v, val); }
static inline int cavro_value_set_long(avro_value_t *v, int64_t val) { return avro_value_set_long(v, val); }
static inline int cavro_value_set_null(avro_value_t *v) { return avro_value_set_null(v); }
/// `size` includes the NUL terminator, as avro-c expects.
static inline int cavro_value_set_string_len(avro_value_t *v, const char *str, size_t size) {
    return avro_value_set_string_len(v, str, size);
}

static inline int cavro_value_get_size(const avro_value_t *v, size_t *size) { return avro_value_get_size(v, size); }
static inline int cavro_value_get_by_index(const avro_value_t *v, size_t idx, avro_value_t *child) {
    return avro_value_get_by_index(v, idx, child, NULL);
}
static inline int cavro_value_get_discriminant(const avro_value_t *v, int *out) {
    return avro_value_get_discriminant(v, out);
}
static inline int cavro_value_get_current_branch(const avro_value_t *v, avro_value_t *branch) {
    return avro_value_get_current_branch(v, branch);
}
static inline int cavro_value_append(avro_value_t *v, avro_value_t *child) {
    return avro_value_append(v, child, NULL);
}
static inline int cavro_value_set_branch(avro_value_t *v, int discriminant, avro_value_t *branch) {
    return avro_value_set_branch(v, discriminant, branch);
}
static inline void cavro_value_iface_decref(avro_value_iface_t *iface) { avro_value_iface_decref(iface); }

// Used to copy a decoded value into the full reader schema and fill reader defaults (AvroResolution.swift).
static inline int cavro_value_get_float(const avro_value_t *v, float *out) { return avro_value_get_float(v, out); }
static inline int cavro_value_get_double(const avro_value_t *v, double *out) { return avro_value_get_double(v, out); }
static inline int cavro_value_get_bytes(const avro_value_t *v, const void **buf, size_t *size) {
    return avro_value_get_bytes(v, buf, size);
}
static inline int cavro_value_get_enum(const avro_value_t *v, int *out) { return avro_value_get_enum(v, out); }
static inline int cavro_value_get_fixed(const avro_value_t *v, const void **buf, size_t *size) {
    return avro_value_get_fixed(v, buf, size);
}
static inline int cavro_value_set_int(avro_value_t *v, int32_t val) { return avro_value_set_int(v, val); }
static inline int cavro_value_set_float(avro_value_t *v, float val) { return avro_value_set_float(v, val); }
static inline int cavro_value_set_double(avro_value_t *v, double val) { return avro_value_set_double(v, val); }
static inline int cavro_value_set_bytes(avro_value_t *v, void *buf, size_t size) {
    return avro_value_set_bytes(v, buf, size);
}
static inline int cavro_value_set_enum(avro_value_t *v, int val) { return avro_value_set_enum(v, val); }
static inline int cavro_value_set_fixed(avro_value_t *v, void *buf, size_t size) {
    return avro_value_set_fixed(v, buf, size);
}
static inline int cavro_value_get_map_entry(const avro_value_t *v, size_t idx, avro_value_t *child, const char **key) {
    return avro_value_get_by_index(v, idx, child, key);
}
static inline int cavro_value_add(avro_value_t *v, const char *key, avro_value_t *child) {
    return avro_value_add(v, key, child, NULL, NULL);
}
