/*
 * sluice_view.h: zero-copy JSON for Sluice C plugins. Read fields of an event value
 * without building a tree, and build output objects by splicing the input's bytes.
 *
 *   sluice_view v;
 *   if (!sluice_event_view(event, &v))
 *       return sluice_rejectf(out, "value is not valid JSON: %s at byte %zu", v.error, v.error_offset);
 *   sluice_raw id;
 *   if (sluice_view_path(&v, "customer.id", &id)) { ... id.ptr, id.len: its exact text ... }
 *   sluice_buf buf = {0};
 *   sluice_writer w;
 *   sluice_writer_begin(&w, &buf);
 *   static const char *const drop[] = {"price", NULL};
 *   sluice_writer_copy(&w, &v, drop, NULL);                 // raw slices, input order
 *   sluice_writer_value(&w, "price_cents", sluice_json_int(5050)); // new values serialized
 *   sluice_writer_end(&w);
 *   sluice_emit_value(out, buf.ptr, buf.len);
 *   free(buf.ptr);
 *
 * sluice_view_parse checks the whole value once and records where each top-level
 * field's key and value lie; a sluice_raw is the exact text of one value, read on
 * demand (sluice_raw_as_u64, ...). What the plugin does not change is copied byte for
 * byte: 18446744073709551615 stays itself and 1.50 stays 1.50.
 *
 * Semantics are the Rust SDK's (sluice_sdk::json): RFC 8259, every string checked as
 * UTF-8, nesting capped at SLUICE_VIEW_MAX_DEPTH (128) so hostile input fails with a
 * reason instead of exhausting the stack, duplicate keys resolved to the *last*
 * occurrence on lookup. The field table lives in the current arena (freed after the
 * event); views point into the input and are valid as long as it is.
 */
#ifndef SLUICE_VIEW_H
#define SLUICE_VIEW_H
#include "sluice.h"
#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_VIEW_MAX_DEPTH 128

/* The exact JSON text of one checked value (or of a key between its quotes, escaped). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} sluice_raw;

typedef struct {
    size_t key_start, key_end, value_start, value_end;
    bool escaped;
} sluice_view_field;

typedef struct {
    const uint8_t *data;
    size_t len;
    sluice_view_field *fields; /* current arena */
    size_t field_count, field_cap;
    const char *error; /* static text, NULL after a successful parse */
    size_t error_offset;
} sluice_view;

/* Checks `len` bytes as one JSON value and indexes its top-level fields. False (with
 * v->error and v->error_offset) when they are not JSON. */
bool sluice_view_parse(sluice_view *v, const void *data, size_t len);
/* Parses the event's value; false for a tombstone (v->error = "tombstone") or bad JSON. */
bool sluice_event_view(const sluice_event *e, sluice_view *v);

sluice_raw sluice_view_root(const sluice_view *v);
bool sluice_view_is_object(const sluice_view *v);
/* Top-level field `name` (its last occurrence). */
bool sluice_view_get(const sluice_view *v, const char *name, sluice_raw *out);
bool sluice_view_get_n(const sluice_view *v, const void *name, size_t len, sluice_raw *out);
/* Index of the last top-level field named `name`, or -1. */
long sluice_view_find_n(const sluice_view *v, const void *name, size_t len);
/* The value at a dotted path from the root ("a.b.0": all-digit names index arrays). */
bool sluice_view_path(const sluice_view *v, const char *path, sluice_raw *out);
/* Field i: its key (escaped text between the quotes; *escaped if it has a backslash) and value. */
sluice_raw sluice_view_key(const sluice_view *v, size_t i, bool *escaped);
sluice_raw sluice_view_value(const sluice_view *v, size_t i);

/* ---- raw values (checked text) ----------------------------------------------- */
sluice_json_type sluice_raw_type(sluice_raw r);
bool sluice_raw_is_null(sluice_raw r);
bool sluice_raw_as_bool(sluice_raw r, bool *out);
/* An integer (no fraction or exponent) that fits; false otherwise. */
bool sluice_raw_as_i64(sluice_raw r, int64_t *out);
bool sluice_raw_as_u64(sluice_raw r, uint64_t *out);
/* A number as a double (as sluice_json_as_double reads it); false if not a number or too large. */
bool sluice_raw_as_double(sluice_raw r, double *out);
/* A string unescaped, NUL-terminated, in the current arena (may contain NULs: see len); NULL
 * if not a string. Without escapes, the bytes are copied as they are. */
const char *sluice_raw_as_string(sluice_raw r, size_t *len);
/* The value as a tree (sluice_json_parse), in the current arena. */
sluice_json *sluice_raw_to_json(sluice_raw r);
/* Whether an escaped key (from a view or an entry) is `name` (`len` bytes). */
bool sluice_raw_key_is(sluice_raw key, bool escaped, const void *name, size_t len);
/* Member of an object (last occurrence) or item (all-digit name) of an array. */
bool sluice_raw_member(sluice_raw r, const void *name, size_t len, sluice_raw *out);
bool sluice_raw_get(sluice_raw obj, const char *name, sluice_raw *out);
bool sluice_raw_path(sluice_raw r, const char *path, sluice_raw *out);

/* Iterates an object's members or an array's items, in input order:
 *   sluice_raw_iter it = sluice_raw_iter_begin(obj); sluice_raw k, val; bool esc;
 *   while (sluice_raw_next_entry(&it, &k, &esc, &val)) ...
 *   while (sluice_raw_next_item(&it, &val)) ...                                   */
typedef struct {
    sluice_raw r;
    size_t pos;
} sluice_raw_iter;
sluice_raw_iter sluice_raw_iter_begin(sluice_raw r);
bool sluice_raw_next_entry(sluice_raw_iter *it, sluice_raw *key, bool *escaped, sluice_raw *value);
bool sluice_raw_next_item(sluice_raw_iter *it, sluice_raw *item);

/* ---- the splice writer ------------------------------------------------------- */
/* Writes one JSON object into a sluice_buf: raw slices copied as they are, new values
 * serialized (sluice_json_write). It does not check for duplicate keys; keys come out
 * in the order written. */
typedef struct {
    sluice_buf *buf;
    bool empty;
} sluice_writer;
void sluice_writer_begin(sluice_writer *w, sluice_buf *buf);
/* Copies an input field: its key as written (escaped, from a view) and its raw value. */
void sluice_writer_raw_field(sluice_writer *w, sluice_raw key, sluice_raw value);
/* `name` (NUL-terminated, escaped as needed) with a raw value. */
void sluice_writer_raw(sluice_writer *w, const char *name, sluice_raw value);
/* `name` with `value` serialized. */
void sluice_writer_value(sluice_writer *w, const char *name, const sluice_json *value);
/* `name` with an object as its value: writes into `inner`; sluice_writer_end it before
 * writing on to `w`. */
void sluice_writer_object(sluice_writer *w, const char *name, sluice_writer *inner);
/* Copies v's top-level fields in input order (the last occurrence of a duplicated key),
 * except those named in `drop`; `rename` holds pairs {from, to, from, to, ...}. Both
 * lists are NULL-terminated and may be NULL. */
void sluice_writer_copy(sluice_writer *w, const sluice_view *v, const char *const *drop,
                        const char *const *rename);
void sluice_writer_end(sluice_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_VIEW_H */
