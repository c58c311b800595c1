/*
 * sluice_json.h: a small JSON value type for Sluice C plugins.
 *
 * Parsing follows serde_json (the Rust SDK's parser) exactly, so a C plugin accepts
 * and refuses the same inputs and reads the same numbers as a Rust one:
 *   - RFC 8259 syntax; whitespace is space, tab, CR, LF; nothing may follow the value;
 *   - at most 127 nested arrays/objects;
 *   - strings must be valid UTF-8, with no raw control characters, and \u escapes
 *     must pair surrogates (\u0000 is allowed: strings carry their length);
 *   - duplicate object keys: the last one wins;
 *   - integers stay integers (u64 / i64; "-0" and out-of-range integers become
 *     doubles), other numbers are doubles computed as serde_json computes them
 *     (significand * or / a power of ten); a number too large for a double is an error.
 *
 * Serializing follows serde_json::to_writer, so output is byte-for-byte the same:
 * compact, object keys sorted by their UTF-8 bytes (objects are kept sorted), only
 * `"`, `\` and control characters escaped (\b \t \n \f \r, else \u00xx), integers
 * without a decimal point, doubles in their shortest form ("50.5", "1.0", "1e+21").
 *
 * Memory: every value lives in the *current arena*. The SDK makes one current for
 * each call: values made while processing an event are freed after that event,
 * values made in `create` live as long as the transform. Nothing is freed by hand.
 * An allocation failure traps (the host reports the plugin crashed).
 */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SLUICE_JSON_NULL,
    SLUICE_JSON_BOOL,
    SLUICE_JSON_NUMBER,
    SLUICE_JSON_STRING,
    SLUICE_JSON_ARRAY,
    SLUICE_JSON_OBJECT,
} sluice_json_type;

/* How a number is held, as in serde_json: a non-negative integer, a negative
 * integer, or a double. */
typedef enum {
    SLUICE_JSON_U64,
    SLUICE_JSON_I64,
    SLUICE_JSON_F64,
} sluice_json_number_kind;

typedef struct sluice_json sluice_json;

/* One object member. */
typedef struct {
    const char *key; /* NUL-terminated; may also contain NULs: use key_len */
    size_t key_len;
    sluice_json *value;
} sluice_json_member;

struct sluice_json {
    sluice_json_type type;
    union {
        bool boolean;
        struct {
            sluice_json_number_kind kind;
            union {
                uint64_t u;
                int64_t i;
                double f;
            } as;
        } number;
        struct {
            char *ptr; /* NUL-terminated; may contain NULs: use len */
            size_t len;
        } string;
        struct {
            sluice_json **items;
            size_t len, cap;
        } array;
        struct {
            sluice_json_member *items; /* sorted by key bytes, keys unique */
            size_t len, cap;
        } object;
    } u;
};

/* ---- arenas ------------------------------------------------------------------ */

typedef struct sluice_arena sluice_arena;

sluice_arena *sluice_arena_new(void);
/* Frees everything allocated in `a` (keeps its first block for reuse). */
void sluice_arena_reset(sluice_arena *a);
void sluice_arena_free(sluice_arena *a);
/* Makes `a` current; returns the previously current arena. */
sluice_arena *sluice_arena_use(sluice_arena *a);
/* `n` bytes (8-aligned) from the current arena; never NULL. */
void *sluice_alloc(size_t n);
/* A NUL-terminated copy of `len` bytes in the current arena. */
char *sluice_strndup(const void *ptr, size_t len);

/* ---- parsing and serializing ------------------------------------------------- */

/* Parses `len` bytes; NULL when they are not valid JSON (see above). */
sluice_json *sluice_json_parse(const void *data, size_t len);

/* A growable byte buffer (malloc'd; free `ptr` with free()). */
typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} sluice_buf;

void sluice_buf_reserve(sluice_buf *b, size_t extra);
void sluice_buf_push(sluice_buf *b, const void *p, size_t n);

/* Appends the compact, key-sorted serialization of `v` to `b`. */
void sluice_json_write(const sluice_json *v, sluice_buf *b);
/* The serialization as a NUL-terminated string in the current arena. */
char *sluice_json_to_string(const sluice_json *v, size_t *len);

/* ---- constructors (in the current arena) ------------------------------------- */

sluice_json *sluice_json_null(void);
sluice_json *sluice_json_bool(bool b);
sluice_json *sluice_json_int(int64_t i);
sluice_json *sluice_json_uint(uint64_t u);
/* A double; NaN and infinities serialize as null, as in serde_json. */
sluice_json *sluice_json_double(double f);
/* Copies a NUL-terminated string. It must be UTF-8. */
sluice_json *sluice_json_string(const char *s);
/* Copies `len` bytes. They must be UTF-8. */
sluice_json *sluice_json_string_n(const void *s, size_t len);
sluice_json *sluice_json_array(void);
sluice_json *sluice_json_object(void);
/* A deep copy. */
sluice_json *sluice_json_clone(const sluice_json *v);
/* A shallow copy: a new array/object whose elements are shared with `v`. */
sluice_json *sluice_json_copy(const sluice_json *v);

/* ---- accessors --------------------------------------------------------------- */

static inline bool sluice_json_is_object(const sluice_json *v) { return v && v->type == SLUICE_JSON_OBJECT; }
static inline bool sluice_json_is_array(const sluice_json *v) { return v && v->type == SLUICE_JSON_ARRAY; }
static inline bool sluice_json_is_string(const sluice_json *v) { return v && v->type == SLUICE_JSON_STRING; }
static inline bool sluice_json_is_number(const sluice_json *v) { return v && v->type == SLUICE_JSON_NUMBER; }

/* The number as a double (like serde_json's as_f64); false if `v` is not a number. */
bool sluice_json_as_double(const sluice_json *v, double *out);
/* The string's bytes (NUL-terminated) and length; NULL if `v` is not a string. */
const char *sluice_json_as_string(const sluice_json *v, size_t *len);

/* Object member `key` (NUL-terminated / `len` bytes), or NULL. */
sluice_json *sluice_json_get(const sluice_json *obj, const char *key);
sluice_json *sluice_json_get_n(const sluice_json *obj, const void *key, size_t len);
/* Inserts or replaces member `key` (the key is copied). No-op if obj is not an object. */
void sluice_json_set(sluice_json *obj, const char *key, sluice_json *value);
void sluice_json_set_n(sluice_json *obj, const void *key, size_t len, sluice_json *value);
/* Removes member `key` and returns its value, or NULL if there was none. */
sluice_json *sluice_json_remove(sluice_json *obj, const char *key);

/* Array / object length (0 for other types), element i of an array (or NULL). */
size_t sluice_json_len(const sluice_json *v);
sluice_json *sluice_json_at(const sluice_json *arr, size_t i);
/* Appends to an array. No-op if arr is not an array. */
void sluice_json_push(sluice_json *arr, sluice_json *value);

/* ---- UTF-8 ------------------------------------------------------------------- */

/* True if `len` bytes are valid UTF-8 (as Rust's str::from_utf8 decides). */
bool sluice_utf8_valid(const void *s, size_t len);
/* Length (1-4) of the UTF-8 sequence starting `s` (at most `len` bytes); 0 if len is 0. */
size_t sluice_utf8_char_len(const char *s, size_t len);
/* Unicode lower-casing exactly as Rust's str::to_lowercase (tables generated from Rust's
 * std, final sigma included); result in the current arena, NUL-terminated. */
char *sluice_utf8_lower(const char *s, size_t len, size_t *out_len);
/* ASCII upper-casing; result in the current arena, NUL-terminated. */
char *sluice_ascii_upper(const char *s, size_t len, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_JSON_H */
