/*
 * sluice_json.c: see sluice_json.h. Parsing is a port of serde_json 1.0 (without the
 * float_roundtrip and arbitrary_precision features, as the Rust SDK uses it);
 * serializing follows serde_json::to_writer and its shortest float format (zmij).
 */
#include "sluice_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arenas ------------------------------------------------------------------ */

typedef struct block {
    struct block *next;
    size_t size, used;
    /* data follows, 8-aligned */
} block;

struct sluice_arena {
    block *head;
};

#define BLOCK_HEADER ((sizeof(block) + 7) & ~(size_t)7)
#define BLOCK_DEFAULT (64 * 1024)

static sluice_arena fallback_arena;
static sluice_arena *current = &fallback_arena;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) __builtin_trap();
    return p;
}

sluice_arena *sluice_arena_new(void) {
    sluice_arena *a = xmalloc(sizeof *a);
    a->head = NULL;
    return a;
}

void sluice_arena_reset(sluice_arena *a) {
    if (!a || !a->head) return;
    block *b = a->head;
    /* Keep the oldest block (the last in the list); free the rest. */
    while (b->next) {
        block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
}

void sluice_arena_free(sluice_arena *a) {
    if (!a) return;
    block *b = a->head;
    while (b) {
        block *next = b->next;
        free(b);
        b = next;
    }
    if (current == a) current = &fallback_arena;
    if (a != &fallback_arena) free(a);
    else a->head = NULL;
}

sluice_arena *sluice_arena_use(sluice_arena *a) {
    sluice_arena *prev = current;
    current = a ? a : &fallback_arena;
    return prev;
}

void *sluice_alloc(size_t n) {
    n = (n + 7) & ~(size_t)7;
    block *b = current->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > BLOCK_DEFAULT ? n : BLOCK_DEFAULT;
        if (size > SIZE_MAX - BLOCK_HEADER) __builtin_trap();
        block *nb = xmalloc(BLOCK_HEADER + size);
        nb->size = size;
        nb->used = 0;
        nb->next = b;
        current->head = nb;
        b = nb;
    }
    void *p = (char *)b + BLOCK_HEADER + b->used;
    b->used += n;
    return p;
}

char *sluice_strndup(const void *ptr, size_t len) {
    if (len == SIZE_MAX) __builtin_trap();
    char *s = sluice_alloc(len + 1);
    if (len) memcpy(s, ptr, len);
    s[len] = 0;
    return s;
}

/* ---- buffers ----------------------------------------------------------------- */

void sluice_buf_reserve(sluice_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return;
    if (extra > SIZE_MAX / 2 - b->len) __builtin_trap();
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->ptr, cap);
    if (!p) __builtin_trap();
    b->ptr = p;
    b->cap = cap;
}

void sluice_buf_push(sluice_buf *b, const void *p, size_t n) {
    if (!n) return;
    sluice_buf_reserve(b, n);
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
}

static void buf_byte(sluice_buf *b, uint8_t c) {
    if (b->len == b->cap) sluice_buf_reserve(b, 1);
    b->ptr[b->len++] = c;
}

/* ---- constructors ------------------------------------------------------------ */

static sluice_json *new_value(sluice_json_type t) {
    sluice_json *v = sluice_alloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

sluice_json *sluice_json_null(void) { return new_value(SLUICE_JSON_NULL); }

sluice_json *sluice_json_bool(bool b) {
    sluice_json *v = new_value(SLUICE_JSON_BOOL);
    v->u.boolean = b;
    return v;
}

sluice_json *sluice_json_uint(uint64_t u) {
    sluice_json *v = new_value(SLUICE_JSON_NUMBER);
    v->u.number.kind = SLUICE_JSON_U64;
    v->u.number.as.u = u;
    return v;
}

sluice_json *sluice_json_int(int64_t i) {
    if (i >= 0) return sluice_json_uint((uint64_t)i);
    sluice_json *v = new_value(SLUICE_JSON_NUMBER);
    v->u.number.kind = SLUICE_JSON_I64;
    v->u.number.as.i = i;
    return v;
}

sluice_json *sluice_json_double(double f) {
    sluice_json *v = new_value(SLUICE_JSON_NUMBER);
    v->u.number.kind = SLUICE_JSON_F64;
    v->u.number.as.f = f;
    return v;
}

sluice_json *sluice_json_string_n(const void *s, size_t len) {
    sluice_json *v = new_value(SLUICE_JSON_STRING);
    v->u.string.ptr = sluice_strndup(s, len);
    v->u.string.len = len;
    return v;
}

sluice_json *sluice_json_string(const char *s) { return sluice_json_string_n(s, strlen(s)); }

sluice_json *sluice_json_array(void) { return new_value(SLUICE_JSON_ARRAY); }

sluice_json *sluice_json_object(void) { return new_value(SLUICE_JSON_OBJECT); }

sluice_json *sluice_json_clone(const sluice_json *v) {
    if (!v) return NULL;
    sluice_json *c = new_value(v->type);
    *c = *v;
    switch (v->type) {
    case SLUICE_JSON_STRING:
        c->u.string.ptr = sluice_strndup(v->u.string.ptr, v->u.string.len);
        break;
    case SLUICE_JSON_ARRAY:
        c->u.array.items = NULL;
        c->u.array.len = c->u.array.cap = 0;
        for (size_t i = 0; i < v->u.array.len; i++) sluice_json_push(c, sluice_json_clone(v->u.array.items[i]));
        break;
    case SLUICE_JSON_OBJECT:
        c->u.object.cap = v->u.object.len;
        c->u.object.items = sluice_alloc(c->u.object.cap * sizeof(sluice_json_member));
        for (size_t i = 0; i < v->u.object.len; i++) {
            const sluice_json_member *m = &v->u.object.items[i];
            c->u.object.items[i].key = sluice_strndup(m->key, m->key_len);
            c->u.object.items[i].key_len = m->key_len;
            c->u.object.items[i].value = sluice_json_clone(m->value);
        }
        break;
    default:
        break;
    }
    return c;
}

sluice_json *sluice_json_copy(const sluice_json *v) {
    if (!v) return NULL;
    sluice_json *c = new_value(v->type);
    *c = *v;
    if (v->type == SLUICE_JSON_ARRAY) {
        c->u.array.cap = v->u.array.len;
        c->u.array.items = sluice_alloc(v->u.array.len * sizeof(sluice_json *));
        if (v->u.array.len) memcpy(c->u.array.items, v->u.array.items, v->u.array.len * sizeof(sluice_json *));
    } else if (v->type == SLUICE_JSON_OBJECT) {
        c->u.object.cap = v->u.object.len;
        c->u.object.items = sluice_alloc(v->u.object.len * sizeof(sluice_json_member));
        if (v->u.object.len) memcpy(c->u.object.items, v->u.object.items, v->u.object.len * sizeof(sluice_json_member));
    }
    return c;
}

/* ---- accessors --------------------------------------------------------------- */

bool sluice_json_as_double(const sluice_json *v, double *out) {
    if (!v || v->type != SLUICE_JSON_NUMBER) return false;
    switch (v->u.number.kind) {
    case SLUICE_JSON_U64: *out = (double)v->u.number.as.u; break;
    case SLUICE_JSON_I64: *out = (double)v->u.number.as.i; break;
    default: *out = v->u.number.as.f; break;
    }
    return true;
}

const char *sluice_json_as_string(const sluice_json *v, size_t *len) {
    if (!v || v->type != SLUICE_JSON_STRING) return NULL;
    if (len) *len = v->u.string.len;
    return v->u.string.ptr;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of `key`, or (if absent) -(insertion point) - 1. */
static ptrdiff_t find_member(const sluice_json *obj, const void *key, size_t len) {
    size_t lo = 0, hi = obj->u.object.len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sluice_json_member *m = &obj->u.object.items[mid];
        int c = key_cmp(m->key, m->key_len, key, len);
        if (c == 0) return (ptrdiff_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

sluice_json *sluice_json_get_n(const sluice_json *obj, const void *key, size_t len) {
    if (!obj || obj->type != SLUICE_JSON_OBJECT) return NULL;
    ptrdiff_t i = find_member(obj, key, len);
    return i >= 0 ? obj->u.object.items[i].value : NULL;
}

sluice_json *sluice_json_get(const sluice_json *obj, const char *key) {
    return sluice_json_get_n(obj, key, strlen(key));
}

/* Inserts without copying the key (the key must live in the arena). */
static void set_member(sluice_json *obj, const char *key, size_t len, sluice_json *value) {
    ptrdiff_t i = find_member(obj, key, len);
    if (i >= 0) {
        obj->u.object.items[i].value = value;
        return;
    }
    size_t at = (size_t)(-i - 1);
    if (obj->u.object.len == obj->u.object.cap) {
        size_t cap = obj->u.object.cap ? obj->u.object.cap * 2 : 8;
        sluice_json_member *items = sluice_alloc(cap * sizeof *items);
        if (obj->u.object.len) memcpy(items, obj->u.object.items, obj->u.object.len * sizeof *items);
        obj->u.object.items = items;
        obj->u.object.cap = cap;
    }
    sluice_json_member *items = obj->u.object.items;
    memmove(items + at + 1, items + at, (obj->u.object.len - at) * sizeof *items);
    items[at].key = key;
    items[at].key_len = len;
    items[at].value = value;
    obj->u.object.len++;
}

void sluice_json_set_n(sluice_json *obj, const void *key, size_t len, sluice_json *value) {
    if (!obj || obj->type != SLUICE_JSON_OBJECT || !value) return;
    ptrdiff_t i = find_member(obj, key, len);
    if (i >= 0) {
        obj->u.object.items[i].value = value;
        return;
    }
    set_member(obj, sluice_strndup(key, len), len, value);
}

void sluice_json_set(sluice_json *obj, const char *key, sluice_json *value) {
    sluice_json_set_n(obj, key, strlen(key), value);
}

sluice_json *sluice_json_remove(sluice_json *obj, const char *key) {
    if (!obj || obj->type != SLUICE_JSON_OBJECT) return NULL;
    ptrdiff_t i = find_member(obj, key, strlen(key));
    if (i < 0) return NULL;
    sluice_json_member *items = obj->u.object.items;
    sluice_json *v = items[i].value;
    memmove(items + i, items + i + 1, (obj->u.object.len - (size_t)i - 1) * sizeof *items);
    obj->u.object.len--;
    return v;
}

size_t sluice_json_len(const sluice_json *v) {
    if (!v) return 0;
    if (v->type == SLUICE_JSON_ARRAY) return v->u.array.len;
    if (v->type == SLUICE_JSON_OBJECT) return v->u.object.len;
    return 0;
}

sluice_json *sluice_json_at(const sluice_json *arr, size_t i) {
    if (!arr || arr->type != SLUICE_JSON_ARRAY || i >= arr->u.array.len) return NULL;
    return arr->u.array.items[i];
}

void sluice_json_push(sluice_json *arr, sluice_json *value) {
    if (!arr || arr->type != SLUICE_JSON_ARRAY || !value) return;
    if (arr->u.array.len == arr->u.array.cap) {
        size_t cap = arr->u.array.cap ? arr->u.array.cap * 2 : 8;
        sluice_json **items = sluice_alloc(cap * sizeof *items);
        if (arr->u.array.len) memcpy(items, arr->u.array.items, arr->u.array.len * sizeof *items);
        arr->u.array.items = items;
        arr->u.array.cap = cap;
    }
    arr->u.array.items[arr->u.array.len++] = value;
}

/* ---- UTF-8 ------------------------------------------------------------------- */

/* Strict UTF-8 validation, as Rust's str::from_utf8. */
bool sluice_utf8_valid(const void *p, size_t len) {
    const uint8_t *s = p;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else
            return false;
        if (len - i < n) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

size_t sluice_utf8_char_len(const char *s, size_t len) {
    if (!len) return 0;
    uint8_t c = (uint8_t)s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return n <= len ? n : len;
}

static void put_utf8(sluice_buf *b, uint32_t cp) {
    uint8_t t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (uint8_t)(0xC0 | (cp >> 6));
        t[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (uint8_t)(0xE0 | (cp >> 12));
        t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        t[0] = (uint8_t)(0xF0 | (cp >> 18));
        t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sluice_buf_push(b, t, n);
}

/* ---- parsing (a port of serde_json's Deserializer over a slice) --------------- */

typedef struct {
    const uint8_t *p, *end;
    int remaining_depth;
    sluice_buf scratch;
} parser;

static int peek_or_null(const parser *ps) { return ps->p < ps->end ? *ps->p : 0; }

static int next_char(parser *ps) { return ps->p < ps->end ? *ps->p++ : -1; }

static int skip_ws(parser *ps) {
    while (ps->p < ps->end) {
        uint8_t c = *ps->p;
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') ps->p++;
        else return c;
    }
    return -1;
}

static const double POW10[309] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
    1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
    1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39,
    1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49,
    1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59,
    1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69,
    1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76, 1e77, 1e78, 1e79,
    1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89,
    1e90, 1e91, 1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99,
    1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109,
    1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119,
    1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129,
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139,
    1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149,
    1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159,
    1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169,
    1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179,
    1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189,
    1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199,
    1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209,
    1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219,
    1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229,
    1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239,
    1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249,
    1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259,
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269,
    1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279,
    1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289,
    1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299,
    1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
};

#define OVERFLOW_U64(a, b) ((a) >= UINT64_MAX / 10 && ((a) > UINT64_MAX / 10 || (b) > UINT64_MAX % 10))
#define OVERFLOW_I32(a, b) ((a) >= INT32_MAX / 10 && ((a) > INT32_MAX / 10 || (b) > INT32_MAX % 10))

/* serde_json's f64_from_parts (without float_roundtrip). */
static bool f64_from_parts(bool positive, uint64_t significand, int32_t exponent, double *out) {
    double f = (double)significand;
    for (;;) {
        int64_t a = exponent < 0 ? -(int64_t)exponent : (int64_t)exponent;
        if (a <= 308) {
            if (exponent >= 0) {
                f *= POW10[a];
                if (__builtin_isinf(f)) return false;
            } else {
                f /= POW10[a];
            }
            break;
        }
        if (f == 0.0) break;
        if (exponent >= 0) return false;
        f /= 1e308;
        exponent += 308;
    }
    *out = positive ? f : -f;
    return true;
}

static bool parse_exponent(parser *ps, bool positive, uint64_t significand, int32_t starting_exp, double *out) {
    ps->p++; /* e or E */
    bool positive_exp = true;
    int c = peek_or_null(ps);
    if (c == '+') ps->p++;
    else if (c == '-') {
        ps->p++;
        positive_exp = false;
    }
    c = next_char(ps);
    if (c < '0' || c > '9') return false;
    int32_t exp = c - '0';
    while ((c = peek_or_null(ps)) >= '0' && c <= '9') {
        ps->p++;
        int32_t digit = c - '0';
        if (OVERFLOW_I32(exp, digit)) {
            /* parse_exponent_overflow */
            if (significand != 0 && positive_exp) return false;
            while ((c = peek_or_null(ps)) >= '0' && c <= '9') ps->p++;
            *out = positive ? 0.0 : -0.0;
            return true;
        }
        exp = exp * 10 + digit;
    }
    int64_t final_exp = positive_exp ? (int64_t)starting_exp + exp : (int64_t)starting_exp - exp;
    if (final_exp > INT32_MAX) final_exp = INT32_MAX;
    if (final_exp < INT32_MIN) final_exp = INT32_MIN;
    return f64_from_parts(positive, significand, (int32_t)final_exp, out);
}

static bool parse_decimal(parser *ps, bool positive, uint64_t significand, int32_t exponent_before, double *out) {
    ps->p++; /* . */
    int32_t exponent_after = 0;
    int c;
    while ((c = peek_or_null(ps)) >= '0' && c <= '9') {
        uint64_t digit = (uint64_t)(c - '0');
        if (OVERFLOW_U64(significand, digit)) {
            /* parse_decimal_overflow: ignore all further digits. */
            int32_t exponent = exponent_before + exponent_after;
            while ((c = peek_or_null(ps)) >= '0' && c <= '9') ps->p++;
            if (c == 'e' || c == 'E') return parse_exponent(ps, positive, significand, exponent, out);
            return f64_from_parts(positive, significand, exponent, out);
        }
        ps->p++;
        significand = significand * 10 + digit;
        exponent_after -= 1;
    }
    if (exponent_after == 0) return false; /* no digit after the point */
    int32_t exponent = exponent_before + exponent_after;
    c = peek_or_null(ps);
    if (c == 'e' || c == 'E') return parse_exponent(ps, positive, significand, exponent, out);
    return f64_from_parts(positive, significand, exponent, out);
}

static bool parse_long_integer(parser *ps, bool positive, uint64_t significand, double *out) {
    int32_t exponent = 0;
    for (;;) {
        int c = peek_or_null(ps);
        if (c >= '0' && c <= '9') {
            ps->p++;
            exponent += 1;
        } else if (c == '.') {
            return parse_decimal(ps, positive, significand, exponent, out);
        } else if (c == 'e' || c == 'E') {
            return parse_exponent(ps, positive, significand, exponent, out);
        } else {
            return f64_from_parts(positive, significand, exponent, out);
        }
    }
}

static sluice_json *number_f64(double f) { return sluice_json_double(f); }

static sluice_json *parse_number(parser *ps, bool positive, uint64_t significand) {
    int c = peek_or_null(ps);
    double f;
    if (c == '.') return parse_decimal(ps, positive, significand, 0, &f) ? number_f64(f) : NULL;
    if (c == 'e' || c == 'E') return parse_exponent(ps, positive, significand, 0, &f) ? number_f64(f) : NULL;
    if (positive) return sluice_json_uint(significand);
    int64_t neg = (int64_t)(0 - significand); /* wrapping_neg */
    if (neg >= 0) return number_f64(-(double)significand);
    sluice_json *v = new_value(SLUICE_JSON_NUMBER);
    v->u.number.kind = SLUICE_JSON_I64;
    v->u.number.as.i = neg;
    return v;
}

static sluice_json *parse_integer(parser *ps, bool positive) {
    int c = next_char(ps);
    if (c == '0') {
        int n = peek_or_null(ps);
        if (n >= '0' && n <= '9') return NULL;
        return parse_number(ps, positive, 0);
    }
    if (c < '1' || c > '9') return NULL;
    uint64_t significand = (uint64_t)(c - '0');
    for (;;) {
        c = peek_or_null(ps);
        if (c < '0' || c > '9') return parse_number(ps, positive, significand);
        uint64_t digit = (uint64_t)(c - '0');
        if (OVERFLOW_U64(significand, digit)) {
            double f;
            return parse_long_integer(ps, positive, significand, &f) ? number_f64(f) : NULL;
        }
        ps->p++;
        significand = significand * 10 + digit;
    }
}

static int hex_val(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int32_t decode_hex_escape(parser *ps) {
    if (ps->end - ps->p < 4) return -1;
    int32_t n = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val(ps->p[i]);
        if (h < 0) return -1;
        n = (n << 4) | h;
    }
    ps->p += 4;
    return n;
}

/* Parses a string after its opening quote into ps->scratch; false if invalid. */
static bool parse_str(parser *ps) {
    ps->scratch.len = 0;
    for (;;) {
        const uint8_t *start = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && *ps->p >= 0x20) ps->p++;
        sluice_buf_push(&ps->scratch, start, (size_t)(ps->p - start));
        int c = next_char(ps);
        if (c == '"') break;
        if (c != '\\') return false; /* end of input, or a control character */
        c = next_char(ps);
        switch (c) {
        case '"': buf_byte(&ps->scratch, '"'); break;
        case '\\': buf_byte(&ps->scratch, '\\'); break;
        case '/': buf_byte(&ps->scratch, '/'); break;
        case 'b': buf_byte(&ps->scratch, '\b'); break;
        case 'f': buf_byte(&ps->scratch, '\f'); break;
        case 'n': buf_byte(&ps->scratch, '\n'); break;
        case 'r': buf_byte(&ps->scratch, '\r'); break;
        case 't': buf_byte(&ps->scratch, '\t'); break;
        case 'u': {
            int32_t n = decode_hex_escape(ps);
            if (n < 0) return false;
            if (n >= 0xDC00 && n <= 0xDFFF) return false; /* lone trailing surrogate */
            if (n >= 0xD800 && n <= 0xDBFF) {
                if (next_char(ps) != '\\' || next_char(ps) != 'u') return false;
                int32_t n2 = decode_hex_escape(ps);
                if (n2 < 0xDC00 || n2 > 0xDFFF) return false;
                n = (((n - 0xD800) << 10) | (n2 - 0xDC00)) + 0x10000;
            }
            put_utf8(&ps->scratch, (uint32_t)n);
            break;
        }
        default:
            return false;
        }
    }
    return sluice_utf8_valid(ps->scratch.ptr, ps->scratch.len);
}

static bool expect_ident(parser *ps, const char *rest) {
    for (; *rest; rest++)
        if (next_char(ps) != (uint8_t)*rest) return false;
    return true;
}

static sluice_json *parse_value(parser *ps);

static sluice_json *parse_array(parser *ps) {
    sluice_json *arr = sluice_json_array();
    int c = skip_ws(ps);
    if (c == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        sluice_json *v = parse_value(ps);
        if (!v) return NULL;
        sluice_json_push(arr, v);
        c = skip_ws(ps);
        if (c == ']') {
            ps->p++;
            return arr;
        }
        if (c != ',') return NULL;
        ps->p++;
        c = skip_ws(ps);
        if (c == ']') return NULL; /* trailing comma */
    }
}

static sluice_json *parse_object(parser *ps) {
    sluice_json *obj = sluice_json_object();
    int c = skip_ws(ps);
    if (c == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        if (c != '"') return NULL;
        ps->p++;
        if (!parse_str(ps)) return NULL;
        size_t klen = ps->scratch.len;
        char *key = sluice_strndup(ps->scratch.ptr, klen);
        if (skip_ws(ps) != ':') return NULL;
        ps->p++;
        sluice_json *v = parse_value(ps);
        if (!v) return NULL;
        set_member(obj, key, klen, v);
        c = skip_ws(ps);
        if (c == '}') {
            ps->p++;
            return obj;
        }
        if (c != ',') return NULL;
        ps->p++;
        c = skip_ws(ps);
    }
}

static sluice_json *parse_value(parser *ps) {
    int c = skip_ws(ps);
    switch (c) {
    case 'n':
        ps->p++;
        return expect_ident(ps, "ull") ? sluice_json_null() : NULL;
    case 't':
        ps->p++;
        return expect_ident(ps, "rue") ? sluice_json_bool(true) : NULL;
    case 'f':
        ps->p++;
        return expect_ident(ps, "alse") ? sluice_json_bool(false) : NULL;
    case '-':
        ps->p++;
        return parse_integer(ps, false);
    case '"':
        ps->p++;
        if (!parse_str(ps)) return NULL;
        return sluice_json_string_n(ps->scratch.ptr, ps->scratch.len);
    case '[':
    case '{': {
        if (--ps->remaining_depth == 0) return NULL;
        ps->p++;
        sluice_json *v = c == '[' ? parse_array(ps) : parse_object(ps);
        ps->remaining_depth++;
        return v;
    }
    default:
        if (c >= '0' && c <= '9') return parse_integer(ps, true);
        return NULL;
    }
}

sluice_json *sluice_json_parse(const void *data, size_t len) {
    parser ps = {(const uint8_t *)data, (const uint8_t *)data + len, 128, {0}};
    sluice_json *v = parse_value(&ps);
    if (v && skip_ws(&ps) != -1) v = NULL;
    free(ps.scratch.ptr);
    return v;
}

/* ---- serializing ------------------------------------------------------------- */

static void write_u64(sluice_buf *b, uint64_t u) {
    char t[20];
    size_t n = 0;
    do {
        t[sizeof t - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    sluice_buf_push(b, t + sizeof t - n, n);
}

/* Shortest decimal digits that read back as `v` (v > 0, finite), as ryu/zmij find them:
 * writes the digits (no trailing zeros) to `digits` and returns their count; *exp10 is
 * the exponent of the first digit (v = d.ddd * 10^exp10). */
static int shortest_digits(double v, char digits[18], int *exp10) {
    char t[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(t, sizeof t, "%.*e", prec, v);
        /* t = d[.ddd]e±XX */
        char d[18];
        int n = 0;
        const char *s = t;
        for (; *s && *s != 'e'; s++)
            if (*s != '.') d[n++] = *s;
        int e = atoi(s + 1);
        if (strtod(t, NULL) != v) {
            /* The rounding interval can be asymmetric (at powers of two): a neighbour
             * with the same number of digits may still read back as v. */
            char c[18], u[40];
            int ce = e;
            bool found = false;
            for (int dir = -1; dir <= 1 && !found; dir += 2) {
                memcpy(c, d, (size_t)n);
                ce = e;
                int i = n - 1;
                if (dir > 0) {
                    while (i >= 0 && c[i] == '9') c[i--] = '0';
                    if (i < 0) {
                        c[0] = '1'; /* 9.99 -> 1.00e+1 */
                        ce++;
                    } else
                        c[i]++;
                } else {
                    while (i >= 0 && c[i] == '0') c[i--] = '9';
                    if (i <= 0 && (i < 0 || c[0] == '1')) continue; /* would lose a digit */
                    c[i]--;
                }
                int k = 0;
                u[k++] = c[0];
                if (n > 1) {
                    u[k++] = '.';
                    memcpy(u + k, c + 1, (size_t)n - 1);
                    k += n - 1;
                }
                snprintf(u + k, sizeof u - (size_t)k, "e%d", ce);
                if (strtod(u, NULL) == v) found = true;
            }
            if (!found) continue;
            memcpy(d, c, (size_t)n);
            e = ce;
        }
        while (n > 1 && d[n - 1] == '0') n--;
        memcpy(digits, d, (size_t)n);
        *exp10 = e;
        return n;
    }
    /* Unreachable: 17 significant digits always read back. */
    snprintf(t, sizeof t, "%.16e", v);
    int n = 0;
    const char *s = t;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[n++] = *s;
    *exp10 = atoi(s + 1);
    while (n > 1 && digits[n - 1] == '0') n--;
    return n;
}

static void write_exp(sluice_buf *b, int e) {
    if (e < 0) {
        buf_byte(b, '-');
        e = -e;
    } else
        buf_byte(b, '+');
    write_u64(b, (uint64_t)e);
}

/* zmij's format_finite, as serde_json 1.0.154 writes an f64 (the same layout as ryu's
 * except for the '+' of positive exponents): plain notation when the first digit's
 * exponent is in -5..=15, else d[.ddd]e±x. */
static void write_f64(sluice_buf *b, double f) {
    if (__builtin_isnan(f) || __builtin_isinf(f)) {
        sluice_buf_push(b, "null", 4);
        return;
    }
    if (__builtin_signbit(f)) buf_byte(b, '-');
    if (f == 0.0) {
        sluice_buf_push(b, "0.0", 3);
        return;
    }
    char d[18];
    int e;
    int length = shortest_digits(__builtin_fabs(f), d, &e);
    int kk = e + 1; /* 10^(kk-1) <= v < 10^kk */
    int k = kk - length;
    if (0 <= k && kk <= 16) {
        sluice_buf_push(b, d, (size_t)length);
        for (int i = length; i < kk; i++) buf_byte(b, '0');
        sluice_buf_push(b, ".0", 2);
    } else if (0 < kk && kk <= 16) {
        sluice_buf_push(b, d, (size_t)kk);
        buf_byte(b, '.');
        sluice_buf_push(b, d + kk, (size_t)(length - kk));
    } else if (-5 < kk && kk <= 0) {
        sluice_buf_push(b, "0.", 2);
        for (int i = kk; i < 0; i++) buf_byte(b, '0');
        sluice_buf_push(b, d, (size_t)length);
    } else if (length == 1) {
        buf_byte(b, (uint8_t)d[0]);
        buf_byte(b, 'e');
        write_exp(b, kk - 1);
    } else {
        buf_byte(b, (uint8_t)d[0]);
        buf_byte(b, '.');
        sluice_buf_push(b, d + 1, (size_t)(length - 1));
        buf_byte(b, 'e');
        write_exp(b, kk - 1);
    }
}

static void write_str(sluice_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    sluice_buf_reserve(b, len + 2);
    buf_byte(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        const char *esc = NULL;
        char u[6];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c < 0x20) {
            switch (c) {
            case '\b': esc = "\\b"; break;
            case '\t': esc = "\\t"; break;
            case '\n': esc = "\\n"; break;
            case '\f': esc = "\\f"; break;
            case '\r': esc = "\\r"; break;
            default: break;
            }
        } else
            continue;
        sluice_buf_push(b, s + start, i - start);
        start = i + 1;
        if (esc) sluice_buf_push(b, esc, strlen(esc));
        else {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            sluice_buf_push(b, u, 6);
        }
    }
    sluice_buf_push(b, s + start, len - start);
    buf_byte(b, '"');
}

void sluice_json_write(const sluice_json *v, sluice_buf *b) {
    if (!v) {
        sluice_buf_push(b, "null", 4);
        return;
    }
    switch (v->type) {
    case SLUICE_JSON_NULL: sluice_buf_push(b, "null", 4); break;
    case SLUICE_JSON_BOOL:
        if (v->u.boolean) sluice_buf_push(b, "true", 4);
        else sluice_buf_push(b, "false", 5);
        break;
    case SLUICE_JSON_NUMBER:
        switch (v->u.number.kind) {
        case SLUICE_JSON_U64: write_u64(b, v->u.number.as.u); break;
        case SLUICE_JSON_I64: {
            int64_t i = v->u.number.as.i;
            if (i < 0) {
                buf_byte(b, '-');
                write_u64(b, (uint64_t)0 - (uint64_t)i);
            } else
                write_u64(b, (uint64_t)i);
            break;
        }
        default: write_f64(b, v->u.number.as.f); break;
        }
        break;
    case SLUICE_JSON_STRING: write_str(b, v->u.string.ptr, v->u.string.len); break;
    case SLUICE_JSON_ARRAY:
        buf_byte(b, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i) buf_byte(b, ',');
            sluice_json_write(v->u.array.items[i], b);
        }
        buf_byte(b, ']');
        break;
    case SLUICE_JSON_OBJECT:
        buf_byte(b, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            const sluice_json_member *m = &v->u.object.items[i];
            if (i) buf_byte(b, ',');
            write_str(b, m->key, m->key_len);
            buf_byte(b, ':');
            sluice_json_write(m->value, b);
        }
        buf_byte(b, '}');
        break;
    }
}

char *sluice_json_to_string(const sluice_json *v, size_t *len) {
    sluice_buf b = {0};
    sluice_json_write(v, &b);
    char *s = sluice_strndup(b.ptr, b.len);
    if (len) *len = b.len;
    free(b.ptr);
    return s;
}

/* ---- case mapping ------------------------------------------------------------ */

char *sluice_ascii_upper(const char *s, size_t len, size_t *out_len) {
    char *r = sluice_strndup(s, len);
    for (size_t i = 0; i < len; i++)
        if (r[i] >= 'a' && r[i] <= 'z') r[i] = (char)(r[i] - 'a' + 'A');
    if (out_len) *out_len = len;
    return r;
}

#include "sluice_case_tables.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static uint32_t lower_simple(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    size_t lo = 0, hi = COUNT(LOWER_RUNS);
    while (lo < hi) { /* the first run starting after cp */
        size_t mid = lo + (hi - lo) / 2;
        if (LOWER_RUNS[mid].lo <= cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return cp;
    const struct lower_run *r = &LOWER_RUNS[lo - 1];
    uint32_t off = cp - r->lo;
    if (off % r->stride == 0 && off / r->stride < r->count) return (uint32_t)((int64_t)cp + r->delta);
    return cp;
}

/* Decodes one code point at s[*i] (valid UTF-8 assumed; a stray byte decodes as itself). */
static uint32_t decode_at(const uint8_t *s, size_t len, size_t *i) {
    uint8_t c = s[*i];
    size_t n = sluice_utf8_char_len((const char *)s + *i, len - *i);
    if (c < 0x80 || n < 2 || !sluice_utf8_valid(s + *i, n)) {
        *i += 1;
        return c;
    }
    uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < n; k++) cp = (cp << 6) | (s[*i + k] & 0x3F);
    *i += n;
    return cp;
}

/* The code point ending just before s[end] (end > 0). */
static uint32_t decode_before(const uint8_t *s, size_t *end) {
    size_t start = *end - 1;
    while (start > 0 && *end - start < 4 && (s[start] & 0xC0) == 0x80) start--;
    size_t i = start;
    uint32_t cp = decode_at(s, *end, &i);
    if (i != *end) { /* not one whole sequence: step back one byte */
        start = *end - 1;
        cp = s[start];
    }
    *end = start;
    return cp;
}

/* Rust's Final_Sigma test: skipping Case_Ignorable characters, a Cased one comes next. */
static bool ignorable_then_cased(const uint8_t *s, size_t len, size_t at, bool backwards) {
    for (;;) {
        uint32_t cp;
        if (backwards) {
            if (at == 0) return false;
            cp = decode_before(s, &at);
        } else {
            if (at >= len) return false;
            cp = decode_at(s, len, &at);
        }
        if (in_ranges(CASE_IGNORABLE, COUNT(CASE_IGNORABLE), cp)) continue;
        return in_ranges(CASED, COUNT(CASED), cp);
    }
}

char *sluice_utf8_lower(const char *str, size_t len, size_t *out_len) {
    const uint8_t *s = (const uint8_t *)str;
    sluice_buf b = {0};
    sluice_buf_reserve(&b, len + 1);
    size_t i = 0;
    while (i < len) {
        size_t at = i;
        uint32_t cp = decode_at(s, len, &i);
        if (i - at == 1 && cp >= 0x80) { /* a stray byte: copy it */
            buf_byte(&b, (uint8_t)cp);
            continue;
        }
        if (cp == 0x130) { /* İ -> i + combining dot above */
            put_utf8(&b, 'i');
            put_utf8(&b, 0x307);
        } else if (cp == 0x3A3) { /* Σ -> ς at the end of a word, else σ */
            bool final = ignorable_then_cased(s, len, at, true) && !ignorable_then_cased(s, len, i, false);
            put_utf8(&b, final ? 0x3C2 : 0x3C3);
        } else
            put_utf8(&b, lower_simple(cp));
    }
    char *r = sluice_strndup(b.ptr, b.len);
    if (out_len) *out_len = b.len;
    free(b.ptr);
    return r;
}
