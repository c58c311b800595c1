/*
 * sluice_view.c: the zero-copy JSON view and splice writer (see sluice_view.h).
 * A port of the Rust SDK's validating scanner (sdk/src/json.rs): one pass, no
 * allocation except the table of top-level fields.
 */
#include "sluice_view.h"

#include <stdlib.h>
#include <string.h>

/* ---- the validating scanner -------------------------------------------------- */

typedef struct {
    const uint8_t *b;
    size_t n, p;
    const char *error;
} scanner;

static bool fail(scanner *s, const char *msg) {
    s->error = msg;
    return false;
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const uint8_t *b, size_t n, size_t p) {
    while (p < n && is_ws(b[p])) p++;
    return p;
}

static int peek(const scanner *s) { return s->p < s->n ? s->b[s->p] : -1; }

static void ws(scanner *s) { s->p = skip_ws(s->b, s->n, s->p); }

static bool value(scanner *s, int depth);

static bool literal(scanner *s, const char *word) {
    size_t len = strlen(word);
    if (s->n - s->p < len || memcmp(s->b + s->p, word, len) != 0) return fail(s, "expected a value");
    s->p += len;
    return true;
}

static size_t digits(scanner *s) {
    size_t start = s->p;
    while (s->p < s->n && s->b[s->p] >= '0' && s->b[s->p] <= '9') s->p++;
    return s->p - start;
}

static bool number(scanner *s) {
    if (peek(s) == '-') s->p++;
    int c = peek(s);
    if (c == '0')
        s->p++;
    else if (c >= '1' && c <= '9')
        digits(s);
    else
        return fail(s, "invalid number");
    if (peek(s) == '.') {
        s->p++;
        if (digits(s) == 0) return fail(s, "invalid number");
    }
    c = peek(s);
    if (c == 'e' || c == 'E') {
        s->p++;
        c = peek(s);
        if (c == '+' || c == '-') s->p++;
        if (digits(s) == 0) return fail(s, "invalid number");
    }
    return true;
}

static bool hex4(scanner *s, unsigned *out) {
    if (s->n - s->p < 4) return fail(s, "EOF while parsing a string");
    unsigned n = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t d = s->b[s->p + i];
        unsigned v;
        if (d >= '0' && d <= '9')
            v = d - '0';
        else if (d >= 'a' && d <= 'f')
            v = d - 'a' + 10;
        else if (d >= 'A' && d <= 'F')
            v = d - 'A' + 10;
        else
            return fail(s, "invalid escape");
        n = n * 16 + v;
    }
    s->p += 4;
    *out = n;
    return true;
}

static bool in_range(const uint8_t *b, size_t n, size_t i, uint8_t lo, uint8_t hi) {
    return i < n && b[i] >= lo && b[i] <= hi;
}

/* Scans a string at `"`; sets *escaped if it has a backslash escape. */
static bool string(scanner *s, bool *escaped) {
    const uint8_t *b = s->b;
    size_t n = s->n;
    s->p++;
    *escaped = false;
    for (;;) {
        /* Plain text: ASCII or well-formed UTF-8 (Unicode table 3-7: no overlongs,
         * surrogates or code points above U+10FFFF). Outside strings the grammar
         * admits only ASCII, so this checks the whole value. */
        size_t p = s->p;
        while (p < n) {
            uint8_t c = b[p];
            if (c < 0x80) {
                if (c == '"' || c == '\\' || c < 0x20) break;
                p++;
                continue;
            }
            size_t width = 0;
#define TAIL(i) in_range(b, n, p + (i), 0x80, 0xBF)
            if (c >= 0xC2 && c <= 0xDF)
                width = TAIL(1) ? 2 : 0;
            else if (c == 0xE0)
                width = in_range(b, n, p + 1, 0xA0, 0xBF) && TAIL(2) ? 3 : 0;
            else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
                width = TAIL(1) && TAIL(2) ? 3 : 0;
            else if (c == 0xED)
                width = in_range(b, n, p + 1, 0x80, 0x9F) && TAIL(2) ? 3 : 0;
            else if (c == 0xF0)
                width = in_range(b, n, p + 1, 0x90, 0xBF) && TAIL(2) && TAIL(3) ? 4 : 0;
            else if (c >= 0xF1 && c <= 0xF3)
                width = TAIL(1) && TAIL(2) && TAIL(3) ? 4 : 0;
            else if (c == 0xF4)
                width = in_range(b, n, p + 1, 0x80, 0x8F) && TAIL(2) && TAIL(3) ? 4 : 0;
#undef TAIL
            if (width == 0) {
                s->p = p;
                return fail(s, "invalid UTF-8");
            }
            p += width;
        }
        s->p = p;
        if (p >= n) return fail(s, "EOF while parsing a string");
        if (b[p] == '"') {
            s->p++;
            return true;
        }
        if (b[p] != '\\') return fail(s, "control character in string");
        *escaped = true;
        s->p++;
        int e = peek(s);
        switch (e) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            s->p++;
            break;
        case 'u': {
            s->p++;
            unsigned u;
            if (!hex4(s, &u)) return false;
            if (u >= 0xDC00 && u < 0xE000) return fail(s, "lone trailing surrogate in hex escape");
            if (u >= 0xD800 && u < 0xDC00) {
                if (s->n - s->p < 2 || b[s->p] != '\\' || b[s->p + 1] != 'u')
                    return fail(s, "lone leading surrogate in hex escape");
                s->p += 2;
                unsigned low;
                if (!hex4(s, &low)) return false;
                if (!(low >= 0xDC00 && low < 0xE000)) return fail(s, "lone leading surrogate in hex escape");
            }
            break;
        }
        case -1:
            return fail(s, "EOF while parsing a string");
        default:
            return fail(s, "invalid escape");
        }
    }
}

static bool array(scanner *s, int depth) {
    if (depth > SLUICE_VIEW_MAX_DEPTH) return fail(s, "recursion limit exceeded");
    s->p++;
    ws(s);
    if (peek(s) == ']') {
        s->p++;
        return true;
    }
    for (;;) {
        ws(s);
        if (!value(s, depth)) return false;
        ws(s);
        switch (peek(s)) {
        case ',':
            s->p++;
            break;
        case ']':
            s->p++;
            return true;
        case -1:
            return fail(s, "EOF while parsing a list");
        default:
            return fail(s, "expected `,` or `]`");
        }
    }
}

static void record_field(sluice_view *v, sluice_view_field f) {
    if (v->field_count == v->field_cap) {
        size_t cap = v->field_cap ? v->field_cap * 2 : 16;
        sluice_view_field *next = sluice_alloc(cap * sizeof *next);
        if (v->field_count) memcpy(next, v->fields, v->field_count * sizeof *next);
        v->fields = next;
        v->field_cap = cap;
    }
    v->fields[v->field_count++] = f;
}

static bool object(scanner *s, int depth, sluice_view *record) {
    if (depth > SLUICE_VIEW_MAX_DEPTH) return fail(s, "recursion limit exceeded");
    s->p++;
    ws(s);
    if (peek(s) == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        ws(s);
        int c = peek(s);
        if (c == -1) return fail(s, "EOF while parsing an object");
        if (c != '"') return fail(s, "key must be a string");
        size_t key_start = s->p + 1;
        bool escaped;
        if (!string(s, &escaped)) return false;
        size_t key_end = s->p - 1;
        ws(s);
        c = peek(s);
        if (c == -1) return fail(s, "EOF while parsing an object");
        if (c != ':') return fail(s, "expected `:`");
        s->p++;
        ws(s);
        size_t value_start = s->p;
        if (!value(s, depth)) return false;
        if (record)
            record_field(record, (sluice_view_field){key_start, key_end, value_start, s->p, escaped});
        ws(s);
        switch (peek(s)) {
        case ',':
            s->p++;
            break;
        case '}':
            s->p++;
            return true;
        case -1:
            return fail(s, "EOF while parsing an object");
        default:
            return fail(s, "expected `,` or `}`");
        }
    }
}

static bool value(scanner *s, int depth) {
    int c = peek(s);
    bool escaped;
    switch (c) {
    case '{':
        return object(s, depth + 1, NULL);
    case '[':
        return array(s, depth + 1);
    case '"':
        return string(s, &escaped);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    case -1:
        return fail(s, "EOF while parsing a value");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(s);
        return fail(s, "expected a value");
    }
}

bool sluice_view_parse(sluice_view *v, const void *data, size_t len) {
    v->data = data;
    v->len = len;
    v->fields = NULL;
    v->field_count = v->field_cap = 0;
    v->error = NULL;
    v->error_offset = 0;
    scanner s = {.b = data, .n = len, .p = 0, .error = NULL};
    ws(&s);
    bool ok = peek(&s) == '{' ? object(&s, 1, v) : value(&s, 0);
    if (ok) {
        ws(&s);
        if (s.p != len) ok = fail(&s, "trailing characters");
    }
    if (!ok) {
        v->field_count = 0;
        v->error = s.error;
        v->error_offset = s.p;
    }
    return ok;
}

bool sluice_event_view(const sluice_event *e, sluice_view *v) {
    sluice_bytes value;
    if (!sluice_event_value(e, &value)) {
        memset(v, 0, sizeof *v);
        v->error = "tombstone";
        return false;
    }
    return sluice_view_parse(v, value.ptr, value.len);
}

/* ---- skipping over checked text ---------------------------------------------- */

static size_t skip_string_checked(const uint8_t *b, size_t n, size_t p) {
    p++;
    while (p < n) {
        if (b[p] == '"') return p + 1;
        p += b[p] == '\\' ? 2 : 1;
    }
    return n;
}

static size_t skip_checked(const uint8_t *b, size_t n, size_t p) {
    if (p >= n) return n;
    if (b[p] == '"') return skip_string_checked(b, n, p);
    if (b[p] == '{' || b[p] == '[') {
        size_t depth = 0;
        size_t q = p;
        while (q < n) {
            uint8_t c = b[q];
            if (c == '"') {
                q = skip_string_checked(b, n, q);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return q + 1;
            }
            q++;
        }
        return n;
    }
    size_t q = p;
    while (q < n && b[q] != ',' && b[q] != '}' && b[q] != ']' && !is_ws(b[q])) q++;
    return q;
}

/* ---- reading ----------------------------------------------------------------- */

sluice_raw sluice_view_root(const sluice_view *v) {
    size_t start = skip_ws(v->data, v->len, 0);
    size_t end = v->len;
    while (end > start && is_ws(v->data[end - 1])) end--;
    return (sluice_raw){v->data + start, end - start};
}

bool sluice_view_is_object(const sluice_view *v) { return sluice_raw_type(sluice_view_root(v)) == SLUICE_JSON_OBJECT; }

sluice_raw sluice_view_key(const sluice_view *v, size_t i, bool *escaped) {
    const sluice_view_field *f = &v->fields[i];
    if (escaped) *escaped = f->escaped;
    return (sluice_raw){v->data + f->key_start, f->key_end - f->key_start};
}

sluice_raw sluice_view_value(const sluice_view *v, size_t i) {
    const sluice_view_field *f = &v->fields[i];
    return (sluice_raw){v->data + f->value_start, f->value_end - f->value_start};
}

/* The unescaped text of an escaped key, via the tree parser (checked text). */
static const char *unescape_key(sluice_raw key, size_t *len) {
    return sluice_json_as_string(sluice_json_parse(key.ptr - 1, key.len + 2), len);
}

bool sluice_raw_key_is(sluice_raw key, bool escaped, const void *name, size_t len) {
    if (!escaped) return key.len == len && memcmp(key.ptr, name, len) == 0;
    size_t n;
    const char *text = unescape_key(key, &n);
    return text && n == len && memcmp(text, name, len) == 0;
}

long sluice_view_find_n(const sluice_view *v, const void *name, size_t len) {
    for (size_t i = v->field_count; i > 0; i--) {
        bool escaped;
        sluice_raw key = sluice_view_key(v, i - 1, &escaped);
        if (sluice_raw_key_is(key, escaped, name, len)) return (long)(i - 1);
    }
    return -1;
}

bool sluice_view_get_n(const sluice_view *v, const void *name, size_t len, sluice_raw *out) {
    long i = sluice_view_find_n(v, name, len);
    if (i < 0) return false;
    *out = sluice_view_value(v, (size_t)i);
    return true;
}

bool sluice_view_get(const sluice_view *v, const char *name, sluice_raw *out) {
    return sluice_view_get_n(v, name, strlen(name), out);
}

sluice_json_type sluice_raw_type(sluice_raw r) {
    if (r.len == 0) return SLUICE_JSON_NULL;
    switch (r.ptr[0]) {
    case '{':
        return SLUICE_JSON_OBJECT;
    case '[':
        return SLUICE_JSON_ARRAY;
    case '"':
        return SLUICE_JSON_STRING;
    case 't':
    case 'f':
        return SLUICE_JSON_BOOL;
    case 'n':
        return SLUICE_JSON_NULL;
    default:
        return SLUICE_JSON_NUMBER;
    }
}

bool sluice_raw_is_null(sluice_raw r) { return r.len > 0 && r.ptr[0] == 'n'; }

bool sluice_raw_as_bool(sluice_raw r, bool *out) {
    if (r.len == 0 || (r.ptr[0] != 't' && r.ptr[0] != 'f')) return false;
    *out = r.ptr[0] == 't';
    return true;
}

/* Digits of an integer literal (after an optional '-'); false for other numbers. */
static bool integer_digits(sluice_raw r, bool *negative, const uint8_t **d, size_t *n) {
    if (sluice_raw_type(r) != SLUICE_JSON_NUMBER) return false;
    size_t i = 0;
    *negative = r.ptr[0] == '-';
    if (*negative) i++;
    for (size_t j = i; j < r.len; j++)
        if (r.ptr[j] < '0' || r.ptr[j] > '9') return false;
    *d = r.ptr + i;
    *n = r.len - i;
    return *n > 0;
}

/* The magnitude of n digits, false on overflow of uint64. */
static bool magnitude(const uint8_t *d, size_t n, uint64_t *out) {
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned digit = d[i] - '0';
        if (m > (UINT64_MAX - digit) / 10) return false;
        m = m * 10 + digit;
    }
    *out = m;
    return true;
}

bool sluice_raw_as_u64(sluice_raw r, uint64_t *out) {
    bool negative;
    const uint8_t *d;
    size_t n;
    uint64_t m;
    if (!integer_digits(r, &negative, &d, &n) || !magnitude(d, n, &m)) return false;
    if (negative && m != 0) return false;
    *out = m;
    return true;
}

bool sluice_raw_as_i64(sluice_raw r, int64_t *out) {
    bool negative;
    const uint8_t *d;
    size_t n;
    uint64_t m;
    if (!integer_digits(r, &negative, &d, &n) || !magnitude(d, n, &m)) return false;
    if (negative) {
        if (m > (uint64_t)INT64_MAX + 1) return false;
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)m;
    }
    return true;
}

bool sluice_raw_as_double(sluice_raw r, double *out) {
    if (sluice_raw_type(r) != SLUICE_JSON_NUMBER) return false;
    /* The tree parser reads numbers exactly as serde_json does; a number is small. */
    sluice_json *j = sluice_json_parse(r.ptr, r.len);
    return j && sluice_json_as_double(j, out);
}

const char *sluice_raw_as_string(sluice_raw r, size_t *len) {
    if (sluice_raw_type(r) != SLUICE_JSON_STRING) return NULL;
    if (!memchr(r.ptr, '\\', r.len)) {
        if (len) *len = r.len - 2;
        return sluice_strndup(r.ptr + 1, r.len - 2);
    }
    return sluice_json_as_string(sluice_json_parse(r.ptr, r.len), len);
}

sluice_json *sluice_raw_to_json(sluice_raw r) { return sluice_json_parse(r.ptr, r.len); }

sluice_raw_iter sluice_raw_iter_begin(sluice_raw r) { return (sluice_raw_iter){r, 1}; }

bool sluice_raw_next_entry(sluice_raw_iter *it, sluice_raw *key, bool *escaped, sluice_raw *value) {
    const uint8_t *b = it->r.ptr;
    size_t n = it->r.len;
    if (n == 0 || b[0] != '{') return false;
    size_t p = skip_ws(b, n, it->pos);
    if (p >= n || b[p] == '}') {
        it->pos = n;
        return false;
    }
    if (b[p] == ',') p = skip_ws(b, n, p + 1);
    size_t key_end = skip_string_checked(b, n, p);
    *key = (sluice_raw){b + p + 1, key_end - p - 2};
    if (escaped) *escaped = memchr(key->ptr, '\\', key->len) != NULL;
    p = skip_ws(b, n, key_end);
    p = skip_ws(b, n, p + 1); /* the colon */
    size_t end = skip_checked(b, n, p);
    *value = (sluice_raw){b + p, end - p};
    it->pos = end;
    return true;
}

bool sluice_raw_next_item(sluice_raw_iter *it, sluice_raw *item) {
    const uint8_t *b = it->r.ptr;
    size_t n = it->r.len;
    if (n == 0 || b[0] != '[') return false;
    size_t p = skip_ws(b, n, it->pos);
    if (p < n && b[p] == ',') p = skip_ws(b, n, p + 1);
    if (p >= n || b[p] == ']') {
        it->pos = n;
        return false;
    }
    size_t end = skip_checked(b, n, p);
    *item = (sluice_raw){b + p, end - p};
    it->pos = end;
    return true;
}

static bool object_member(sluice_raw obj, const void *name, size_t len, sluice_raw *out) {
    sluice_raw_iter it = sluice_raw_iter_begin(obj);
    sluice_raw key, value;
    bool escaped, found = false;
    while (sluice_raw_next_entry(&it, &key, &escaped, &value)) {
        if (sluice_raw_key_is(key, escaped, name, len)) {
            *out = value;
            found = true;
        }
    }
    return found;
}

bool sluice_raw_member(sluice_raw r, const void *name, size_t len, sluice_raw *out) {
    switch (sluice_raw_type(r)) {
    case SLUICE_JSON_OBJECT:
        return object_member(r, name, len, out);
    case SLUICE_JSON_ARRAY: {
        const uint8_t *d = name;
        uint64_t index;
        if (len == 0) return false;
        for (size_t i = 0; i < len; i++)
            if (d[i] < '0' || d[i] > '9') return false;
        if (!magnitude(d, len, &index)) return false;
        sluice_raw_iter it = sluice_raw_iter_begin(r);
        sluice_raw item;
        for (uint64_t i = 0; sluice_raw_next_item(&it, &item); i++) {
            if (i == index) {
                *out = item;
                return true;
            }
        }
        return false;
    }
    default:
        return false;
    }
}

bool sluice_raw_get(sluice_raw obj, const char *name, sluice_raw *out) {
    if (sluice_raw_type(obj) != SLUICE_JSON_OBJECT) return false;
    return object_member(obj, name, strlen(name), out);
}

bool sluice_raw_path(sluice_raw r, const char *path, sluice_raw *out) {
    sluice_raw at = r;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!sluice_raw_member(at, p, len, &at)) return false;
        if (!dot) break;
        p = dot + 1;
    }
    *out = at;
    return true;
}

bool sluice_view_path(const sluice_view *v, const char *path, sluice_raw *out) {
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    sluice_raw first;
    bool ok = sluice_view_is_object(v) ? sluice_view_get_n(v, path, len, &first)
                                       : sluice_raw_member(sluice_view_root(v), path, len, &first);
    if (!ok) return false;
    if (!dot) {
        *out = first;
        return true;
    }
    return sluice_raw_path(first, dot + 1, out);
}

/* ---- writing ----------------------------------------------------------------- */

void sluice_writer_begin(sluice_writer *w, sluice_buf *buf) {
    w->buf = buf;
    w->empty = true;
    sluice_buf_push(buf, "{", 1);
}

static void sep(sluice_writer *w) {
    if (!w->empty) sluice_buf_push(w->buf, ",", 1);
    w->empty = false;
}

static void key(sluice_writer *w, const char *name) {
    sep(w);
    /* Escaping a key the way every string is escaped: through the serializer. */
    sluice_json_write(sluice_json_string(name), w->buf);
    sluice_buf_push(w->buf, ":", 1);
}

void sluice_writer_raw_field(sluice_writer *w, sluice_raw k, sluice_raw value) {
    sep(w);
    sluice_buf_push(w->buf, "\"", 1);
    sluice_buf_push(w->buf, k.ptr, k.len);
    sluice_buf_push(w->buf, "\":", 2);
    sluice_buf_push(w->buf, value.ptr, value.len);
}

void sluice_writer_raw(sluice_writer *w, const char *name, sluice_raw value) {
    key(w, name);
    sluice_buf_push(w->buf, value.ptr, value.len);
}

void sluice_writer_value(sluice_writer *w, const char *name, const sluice_json *value) {
    key(w, name);
    sluice_json_write(value, w->buf);
}

void sluice_writer_object(sluice_writer *w, const char *name, sluice_writer *inner) {
    key(w, name);
    sluice_writer_begin(inner, w->buf);
}

static bool listed(const char *const *names, size_t step, const char *name, size_t len, size_t *at) {
    if (!names) return false;
    for (size_t i = 0; names[i]; i += step) {
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
            if (at) *at = i;
            return true;
        }
        if (step == 2 && !names[i + 1]) break;
    }
    return false;
}

void sluice_writer_copy(sluice_writer *w, const sluice_view *v, const char *const *drop,
                        const char *const *rename) {
    for (size_t i = 0; i < v->field_count; i++) {
        bool escaped;
        sluice_raw k = sluice_view_key(v, i, &escaped);
        const char *name = (const char *)k.ptr;
        size_t len = k.len;
        if (escaped) name = unescape_key(k, &len);
        /* Only the last occurrence of a duplicated key is copied. */
        if (sluice_view_find_n(v, name, len) != (long)i) continue;
        if (listed(drop, 1, name, len, NULL)) continue;
        size_t at;
        if (listed(rename, 2, name, len, &at))
            sluice_writer_raw(w, rename[at + 1], sluice_view_value(v, i));
        else
            sluice_writer_raw_field(w, k, sluice_view_value(v, i));
    }
}

void sluice_writer_end(sluice_writer *w) { sluice_buf_push(w->buf, "}", 1); }
