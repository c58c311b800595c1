/*
 * sluice.c: the batch loop and the component exports behind sluice.h. The Wasm export
 * glue and the native test harness (sluice_testing.c) both go through
 * sluice__create / sluice__process, so what is tested natively is what runs.
 *
 * Ownership follows the canonical ABI as wit-bindgen's C bindings implement it: the
 * callee owns its inputs (the parameter list and the input batch are freed here once
 * used), and everything returned is malloc'd and freed by the generated post-return
 * functions.
 */
#include "sluice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/transform.h"
#include "sluice_internal.h"

extern const sluice_transform sluice_transform_def;

typedef sluice_plugin_types_batch_t raw_batch;
typedef sluice_plugin_types_event_t raw_event;
typedef sluice_plugin_types_header_t raw_header;
typedef sluice_plugin_types_span_t raw_span;

struct exports_sluice_plugin_transformer_transform_t {
    void *state;
    sluice_arena *arena; /* create's allocations, parameters included */
    sluice_arena *scratch;
};

struct sluice_event {
    const raw_batch *batch;
    const raw_event *raw;
    uint32_t index;
};

struct sluice_emitter {
    const sluice_event *input;
    sluice_buf data;
    raw_event *events;
    size_t events_len, events_cap;
    raw_header *headers;
    size_t headers_len, headers_cap;
    char *message; /* malloc'd reason / error of the last sluice_reject etc. */
    size_t message_len;
};

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) __builtin_trap();
    return p;
}

static char *xstrndup(const void *s, size_t len) {
    char *r = xmalloc(len + 1);
    if (len) memcpy(r, s, len);
    r[len] = 0;
    return r;
}

static char *vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return xstrndup("", 0);
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* ---- events ------------------------------------------------------------------ */

static bool slice(const raw_batch *b, raw_span s, sluice_bytes *out) {
    if ((size_t)s.offset > b->data.len || (size_t)s.len > b->data.len - s.offset) return false;
    out->ptr = b->data.ptr + s.offset;
    out->len = s.len;
    return true;
}

bool sluice_event_key(const sluice_event *e, sluice_bytes *key) {
    return e->raw->key.is_some && slice(e->batch, e->raw->key.val, key);
}

bool sluice_event_value(const sluice_event *e, sluice_bytes *value) {
    return e->raw->value.is_some && slice(e->batch, e->raw->value.val, value);
}

bool sluice_event_is_tombstone(const sluice_event *e) { return !e->raw->value.is_some; }

sluice_json *sluice_event_json(const sluice_event *e) {
    sluice_bytes v;
    if (!sluice_event_value(e, &v)) return NULL;
    return sluice_json_parse(v.ptr, v.len);
}

int64_t sluice_event_timestamp_ms(const sluice_event *e) { return e->raw->timestamp_ms; }

sluice_bytes sluice_event_stream(const sluice_event *e) {
    sluice_bytes s = {(const uint8_t *)"", 0};
    if (e->raw->stream < e->batch->streams.len) {
        const transform_string_t *n = &e->batch->streams.ptr[e->raw->stream];
        s.ptr = n->ptr;
        s.len = n->len;
    }
    return s;
}

uint32_t sluice_event_index(const sluice_event *e) { return e->index; }

/* The event's header range, clamped to the batch. */
static void header_range(const sluice_event *e, size_t *start, size_t *end) {
    size_t n = e->batch->headers.len;
    size_t s = e->raw->headers.offset, l = e->raw->headers.len;
    if (s > n || l > n - s) { /* out of range: no headers, as in the Rust SDK */
        *start = *end = 0;
        return;
    }
    *start = s;
    *end = s + l;
}

size_t sluice_event_header_count(const sluice_event *e) {
    size_t s, t;
    header_range(e, &s, &t);
    return t - s;
}

bool sluice_event_header_at(const sluice_event *e, size_t i, sluice_bytes *name, sluice_bytes *value) {
    size_t s, t;
    header_range(e, &s, &t);
    if (i >= t - s) return false;
    const raw_header *h = &e->batch->headers.ptr[s + i];
    return slice(e->batch, h->name, name) && sluice_utf8_valid(name->ptr, name->len) &&
           slice(e->batch, h->value, value);
}

bool sluice_event_header(const sluice_event *e, const char *name, sluice_bytes *value) {
    size_t len = strlen(name), n = sluice_event_header_count(e);
    for (size_t i = 0; i < n; i++) {
        sluice_bytes k, v;
        if (sluice_event_header_at(e, i, &k, &v) && k.len == len && memcmp(k.ptr, name, len) == 0) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* ---- emitting ---------------------------------------------------------------- */

static raw_span push_bytes(sluice_emitter *out, const void *p, size_t n) {
    raw_span s = {(uint32_t)out->data.len, (uint32_t)n};
    sluice_buf_push(&out->data, p, n);
    return s;
}

static void push_header(sluice_emitter *out, raw_span name, raw_span value) {
    if (out->headers_len == out->headers_cap) {
        size_t cap = out->headers_cap ? out->headers_cap * 2 : 16;
        raw_header *h = realloc(out->headers, cap * sizeof *h);
        if (!h) __builtin_trap();
        out->headers = h;
        out->headers_cap = cap;
    }
    out->headers[out->headers_len].name = name;
    out->headers[out->headers_len].value = value;
    out->headers_len++;
}

static void push_event(sluice_emitter *out, sluice_plugin_types_option_span_t key,
                       sluice_plugin_types_option_span_t value, raw_span headers, int64_t ts) {
    if (out->events_len == out->events_cap) {
        size_t cap = out->events_cap ? out->events_cap * 2 : 16;
        raw_event *e = realloc(out->events, cap * sizeof *e);
        if (!e) __builtin_trap();
        out->events = e;
        out->events_cap = cap;
    }
    raw_event *e = &out->events[out->events_len++];
    e->key = key;
    e->value = value;
    e->headers = headers;
    e->timestamp_ms = ts;
    e->stream = 0;
    e->parent = out->input->index;
}

static raw_span copy_input_headers(sluice_emitter *out) {
    raw_span r = {(uint32_t)out->headers_len, 0};
    size_t n = sluice_event_header_count(out->input);
    for (size_t i = 0; i < n; i++) {
        sluice_bytes k, v;
        if (!sluice_event_header_at(out->input, i, &k, &v)) continue;
        raw_span ks = push_bytes(out, k.ptr, k.len);
        raw_span vs = push_bytes(out, v.ptr, v.len);
        push_header(out, ks, vs);
        r.len++;
    }
    return r;
}

static sluice_plugin_types_option_span_t copy_input_key(sluice_emitter *out) {
    sluice_plugin_types_option_span_t k = {false, {0, 0}};
    sluice_bytes key;
    if (sluice_event_key(out->input, &key)) {
        k.is_some = true;
        k.val = push_bytes(out, key.ptr, key.len);
    }
    return k;
}

static void finish(sluice_emitter *out, sluice_plugin_types_option_span_t key,
                   sluice_plugin_types_option_span_t value) {
    raw_span headers = copy_input_headers(out);
    push_event(out, key, value, headers, sluice_event_timestamp_ms(out->input));
}

void sluice_emit_value(sluice_emitter *out, const void *value, size_t len) {
    sluice_plugin_types_option_span_t key = copy_input_key(out);
    sluice_plugin_types_option_span_t v = {true, push_bytes(out, value, len)};
    finish(out, key, v);
}

void sluice_forward(sluice_emitter *out) {
    sluice_bytes v;
    if (sluice_event_value(out->input, &v)) sluice_emit_value(out, v.ptr, v.len);
    else sluice_emit_tombstone(out);
}

void sluice_emit_json(sluice_emitter *out, const sluice_json *value) {
    sluice_plugin_types_option_span_t key = copy_input_key(out);
    size_t start = out->data.len;
    sluice_json_write(value, &out->data);
    sluice_plugin_types_option_span_t v = {true, {(uint32_t)start, (uint32_t)(out->data.len - start)}};
    finish(out, key, v);
}

void sluice_emit_tombstone(sluice_emitter *out) {
    sluice_plugin_types_option_span_t key = copy_input_key(out);
    sluice_plugin_types_option_span_t v = {false, {0, 0}};
    finish(out, key, v);
}

void sluice_emit(sluice_emitter *out, const sluice_out_event *ev) {
    sluice_plugin_types_option_span_t key = {false, {0, 0}}, value = {false, {0, 0}};
    if (ev->key) {
        key.is_some = true;
        key.val = push_bytes(out, ev->key->ptr, ev->key->len);
    }
    if (ev->value) {
        value.is_some = true;
        value.val = push_bytes(out, ev->value->ptr, ev->value->len);
    }
    raw_span headers = {(uint32_t)out->headers_len, (uint32_t)ev->header_count};
    for (size_t i = 0; i < ev->header_count; i++) {
        raw_span k = push_bytes(out, ev->header_names[i].ptr, ev->header_names[i].len);
        raw_span v = push_bytes(out, ev->header_values[i].ptr, ev->header_values[i].len);
        push_header(out, k, v);
    }
    push_event(out, key, value, headers, ev->timestamp_ms);
}

static sluice_status set_message_n(sluice_emitter *out, sluice_status status, char *message, size_t len) {
    free(out->message);
    out->message = message;
    out->message_len = len;
    return status;
}

static sluice_status set_message(sluice_emitter *out, sluice_status status, char *message) {
    return set_message_n(out, status, message, strlen(message));
}

sluice_status sluice_reject(sluice_emitter *out, const char *reason) {
    return set_message(out, SLUICE_REJECT, xstrndup(reason, strlen(reason)));
}

sluice_status sluice_reject_n(sluice_emitter *out, const void *reason, size_t len) {
    return set_message_n(out, SLUICE_REJECT, xstrndup(reason, len), len);
}

sluice_status sluice_retry(sluice_emitter *out, const char *message) {
    return set_message(out, SLUICE_RETRY, xstrndup(message, strlen(message)));
}

sluice_status sluice_fatal(sluice_emitter *out, const char *message) {
    return set_message(out, SLUICE_FATAL, xstrndup(message, strlen(message)));
}

sluice_status sluice_rejectf(sluice_emitter *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    return set_message(out, SLUICE_REJECT, m);
}

#include "sluice_params.inc"

/* ---- misc -------------------------------------------------------------------- */

char *sluice_format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    char *r = sluice_strndup(m, strlen(m));
    free(m);
    return r;
}

void sluice_log(sluice_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
#ifdef __wasm__
    transform_string_t s = {(uint8_t *)m, strlen(m)};
    sluice_plugin_log_log((sluice_plugin_log_level_t)level, &s);
#else
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    fprintf(stderr, "[%s] %s\n", names[level <= SLUICE_LOG_ERROR ? level : SLUICE_LOG_ERROR], m);
#endif
    free(m);
}

/* ---- the batch loop ---------------------------------------------------------- */

/* An empty list or string from the host may point anywhere (cabi_realloc hands out the
 * alignment for size 0), so only non-empty ones are freed, as the generated *_free do. */
#define FREE_LIST(p, len) \
    do {                  \
        if ((len) > 0) free(p); \
    } while (0)

static void free_batch(raw_batch *b) {
    FREE_LIST(b->data.ptr, b->data.len);
    FREE_LIST(b->events.ptr, b->events.len);
    FREE_LIST(b->headers.ptr, b->headers.len);
    for (size_t i = 0; i < b->streams.len; i++) FREE_LIST(b->streams.ptr[i].ptr, b->streams.ptr[i].len);
    FREE_LIST(b->streams.ptr, b->streams.len);
}

/* Hands a malloc'd string to the ABI; an empty one is freed here, since the
 * post-return function frees only non-empty strings. */
static void string_from_n(transform_string_t *s, char *owned, size_t len) {
    if (len == 0) {
        free(owned);
        owned = NULL;
    }
    s->ptr = (uint8_t *)owned;
    s->len = len;
}

static void string_from(transform_string_t *s, char *owned) { string_from_n(s, owned, strlen(owned)); }

bool sluice__create(sluice_plugin_types_param_t *params, size_t n, sluice__transform **ret,
                    transform_string_t *err) {
    sluice__transform *t = xmalloc(sizeof *t);
    t->state = NULL;
    t->arena = sluice_arena_new();
    t->scratch = sluice_arena_new();
    sluice_arena *prev = sluice_arena_use(t->arena);
    sluice_params p = {n, sluice_alloc(n * sizeof(char *) + 1), sluice_alloc(n * sizeof(char *) + 1)};
    for (size_t i = 0; i < n; i++) {
        p.names[i] = sluice_strndup(params[i].name.ptr, params[i].name.len);
        p.values[i] = sluice_strndup(params[i].value.ptr, params[i].value.len);
    }
    /* The callee owns its inputs. */
    for (size_t i = 0; i < n; i++) {
        FREE_LIST(params[i].name.ptr, params[i].name.len);
        FREE_LIST(params[i].value.ptr, params[i].value.len);
    }
    FREE_LIST(params, n);
    const char *error = sluice_transform_def.create ? sluice_transform_def.create(&p, &t->state) : NULL;
    if (error) {
        string_from(err, xstrndup(error, strlen(error)));
        sluice_arena_use(prev);
        sluice_arena_free(t->scratch);
        sluice_arena_free(t->arena);
        free(t);
        return false;
    }
    sluice_arena_use(prev);
    *ret = t;
    return true;
}

void sluice__destroy(sluice__transform *t) {
    if (!t) return;
    if (sluice_transform_def.destroy) sluice_transform_def.destroy(t->state);
    sluice_arena_free(t->scratch);
    sluice_arena_free(t->arena);
    free(t);
}

bool sluice__process(sluice__transform *t, raw_batch *input, sluice_plugin_types_output_t *ret,
                     sluice_plugin_types_call_error_t *err) {
    sluice_emitter out;
    memset(&out, 0, sizeof out);
    sluice_buf_reserve(&out.data, input->data.len ? input->data.len : 1);
    sluice_plugin_types_rejection_t *rejected = NULL;
    size_t rejected_len = 0, rejected_cap = 0;
    bool ok = true;
    sluice_arena *prev = sluice_arena_use(t->scratch);
    for (size_t i = 0; i < input->events.len; i++) {
        sluice_event ev = {input, &input->events.ptr[i], (uint32_t)i};
        out.input = &ev;
        size_t mark_data = out.data.len, mark_events = out.events_len, mark_headers = out.headers_len;
        sluice_status st = sluice_transform_def.process(t->state, &ev, &out);
        sluice_arena_reset(t->scratch);
        if (st == SLUICE_OK) continue;
        char *message = out.message ? out.message : xstrndup("", 0);
        size_t message_len = out.message ? out.message_len : 0;
        out.message = NULL;
        if (st == SLUICE_REJECT) {
            /* Withdraw whatever was emitted for the rejected event. */
            out.data.len = mark_data;
            out.events_len = mark_events;
            out.headers_len = mark_headers;
            if (rejected_len == rejected_cap) {
                rejected_cap = rejected_cap ? rejected_cap * 2 : 8;
                rejected = realloc(rejected, rejected_cap * sizeof *rejected);
                if (!rejected) __builtin_trap();
            }
            rejected[rejected_len].index = (uint32_t)i;
            string_from_n(&rejected[rejected_len].reason, message, message_len);
            rejected_len++;
            continue;
        }
        err->tag = st == SLUICE_RETRY ? SLUICE_PLUGIN_TYPES_CALL_ERROR_RETRY : SLUICE_PLUGIN_TYPES_CALL_ERROR_FATAL;
        string_from(st == SLUICE_RETRY ? &err->val.retry : &err->val.fatal, message);
        ok = false;
        break;
    }
    sluice_arena_use(prev);
    free(out.message);
    /* The callee owns its inputs. */
    free_batch(input);
    if (!ok) {
        free(out.data.ptr);
        free(out.events);
        free(out.headers);
        for (size_t i = 0; i < rejected_len; i++) free(rejected[i].reason.ptr);
        free(rejected);
        return false;
    }
    /* The post-return function frees only non-empty lists. */
    if (out.data.len == 0) {
        free(out.data.ptr);
        out.data.ptr = NULL;
    }
    if (out.events_len == 0) {
        free(out.events);
        out.events = NULL;
    }
    if (out.headers_len == 0) {
        free(out.headers);
        out.headers = NULL;
    }
    ret->events.data.ptr = out.data.ptr;
    ret->events.data.len = out.data.len;
    ret->events.events.ptr = out.events;
    ret->events.events.len = out.events_len;
    ret->events.headers.ptr = out.headers;
    ret->events.headers.len = out.headers_len;
    ret->events.streams.ptr = NULL;
    ret->events.streams.len = 0;
    ret->rejected.ptr = rejected;
    ret->rejected.len = rejected_len;
    return true;
}

/* ---- component exports ------------------------------------------------------- */

#ifdef __wasm__
/* The generated bindings link a *_component_type.o object by this symbol. The build
 * embeds the component type with `wasm-tools component embed` instead (from the WIT the
 * host ships), so the bindings are generated with --no-object-file and this stands in. */
void __component_type_object_force_link_transform(void) {}

void exports_sluice_plugin_transformer_describe(sluice_plugin_types_plugin_info_t *ret) {
    transform_string_dup(&ret->name, sluice_transform_def.name ? sluice_transform_def.name : "");
    transform_string_dup(&ret->version, sluice_transform_def.version ? sluice_transform_def.version : "");
    transform_string_dup(&ret->description, sluice_transform_def.description ? sluice_transform_def.description : "");
}

bool exports_sluice_plugin_transformer_static_transform_create(exports_sluice_plugin_transformer_list_param_t *params,
                                                               exports_sluice_plugin_transformer_own_transform_t *ret,
                                                               transform_string_t *err) {
    sluice__transform *t;
    if (!sluice__create(params->ptr, params->len, &t, err)) return false;
    *ret = exports_sluice_plugin_transformer_transform_new(t);
    return true;
}

bool exports_sluice_plugin_transformer_method_transform_process(exports_sluice_plugin_transformer_borrow_transform_t self,
                                                                exports_sluice_plugin_transformer_batch_t *input,
                                                                exports_sluice_plugin_transformer_output_t *ret,
                                                                exports_sluice_plugin_transformer_call_error_t *err) {
    return sluice__process(self, input, ret, err);
}

void exports_sluice_plugin_transformer_transform_destructor(exports_sluice_plugin_transformer_transform_t *rep) {
    sluice__destroy(rep);
}
#endif
