/*
 * sluice_connector.c: the connector core behind sluice_connector.h, and sluice.h's
 * events, parameters, sluice_format and sluice_log for connectors (a connector links
 * this file instead of sluice.c, whose batch loop speaks the transform contract).
 *
 * Batches cross as the contract's packed tables (wit/sluice.wit, package comment):
 * 48-byte event records and 16-byte header records, little-endian, with spans into one
 * data buffer. A poll is packed here as sdk/go/connector/tables.go packs it; a batch the
 * host hands a sink is checked record by record (sluice__check_batch) before any event
 * is read, so no span, header range or stream index is ever trusted.
 */
#include "sluice_connector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef __wasm__
#include <time.h>
#endif

#include "sluice_connector_internal.h"

extern const sluice_source sluice_source_def __attribute__((weak));
extern const sluice_sink sluice_sink_def __attribute__((weak));

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) __builtin_trap();
    return p;
}

static sluice__owned owned_copy(const void *p, size_t len) {
    sluice__owned o = {NULL, len};
    if (len) {
        o.ptr = xmalloc(len);
        memcpy(o.ptr, p, len);
    }
    return o;
}

/* A NUL-terminated malloc'd copy (the NUL is not counted in len). */
static sluice__owned owned_str(const char *s, size_t len) {
    sluice__owned o = {xmalloc(len + 1), len};
    if (len) memcpy(o.ptr, s, len);
    o.ptr[len] = 0;
    return o;
}

static char *vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) n = 0;
    char *s = xmalloc((size_t)n + 1);
    if (n == 0) s[0] = 0;
    else vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- call errors ------------------------------------------------------------- */

/* The message of the last sluice_call_retry / _fatal / failed HTTP call. */
static char *pending_message;

static sluice_status record(sluice_status st, char *message) {
    free(pending_message);
    pending_message = message;
    return st;
}

sluice_status sluice_call_retry(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    return record(SLUICE_RETRY, m);
}

sluice_status sluice_call_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    return record(SLUICE_FATAL, m);
}

/* Turns a callback's status into the call's outcome: true for SLUICE_OK, else fills
 * err with the retry or fatal and its recorded message. */
static bool outcome(sluice_status st, const char *call, sluice__failure *err) {
    char *m = pending_message;
    pending_message = NULL;
    if (st == SLUICE_OK) {
        free(m);
        return true;
    }
    if (st != SLUICE_RETRY && st != SLUICE_FATAL) {
        free(m);
        size_t n = strlen(call) + 128;
        m = xmalloc(n);
        snprintf(m, n, "the connector's %s returned status %d; expected SLUICE_OK, SLUICE_RETRY or SLUICE_FATAL",
                 call, (int)st);
        st = SLUICE_FATAL;
    } else if (!m) {
        size_t n = strlen(call) + 96;
        m = xmalloc(n);
        snprintf(m, n, "the connector's %s returned %s without a message (use sluice_call_retry / _fatal)",
                 call, st == SLUICE_RETRY ? "SLUICE_RETRY" : "SLUICE_FATAL");
    }
    err->status = st;
    err->message.ptr = (uint8_t *)m;
    err->message.len = strlen(m);
    return false;
}

/* ---- events (sluice.h) over a checked batch ---------------------------------- */

typedef struct {
    sluice_bytes data, headers;
    const sluice_bytes *streams;
    size_t n_streams;
} conn_batch;

struct sluice_event {
    const conn_batch *batch;
    uint32_t index;
    uint32_t key_off, key_len, value_off, value_len, first_header, header_count, stream, flags;
    int64_t timestamp_ms;
};

char *sluice__check_batch(sluice_bytes data, sluice_bytes events, sluice_bytes headers, size_t n_streams) {
    char buf[200];
    if (events.len % SLUICE__EVENT_RECORD) {
        snprintf(buf, sizeof buf, "event table of %zu bytes is not a whole number of %d-byte records", events.len,
                 SLUICE__EVENT_RECORD);
        return strdup(buf);
    }
    if (headers.len % SLUICE__HEADER_RECORD) {
        snprintf(buf, sizeof buf, "header table of %zu bytes is not a whole number of %d-byte records", headers.len,
                 SLUICE__HEADER_RECORD);
        return strdup(buf);
    }
#define SPAN_OK(off, n) ((uint64_t)(off) + (uint64_t)(n) <= (uint64_t)data.len)
    size_t nh = headers.len / SLUICE__HEADER_RECORD;
    for (size_t i = 0; i < nh; i++) {
        const uint8_t *r = headers.ptr + i * SLUICE__HEADER_RECORD;
        uint32_t no = get32(r), nl = get32(r + 4), vo = get32(r + 8), vl = get32(r + 12);
        if (!SPAN_OK(no, nl) || !SPAN_OK(vo, vl)) {
            snprintf(buf, sizeof buf, "header %zu: a span outside the %zu data bytes", i, data.len);
            return strdup(buf);
        }
        if (!sluice_utf8_valid(data.ptr + no, nl)) {
            snprintf(buf, sizeof buf, "header %zu: the name is not UTF-8", i);
            return strdup(buf);
        }
    }
    size_t ne = events.len / SLUICE__EVENT_RECORD;
    for (size_t i = 0; i < ne; i++) {
        const uint8_t *r = events.ptr + i * SLUICE__EVENT_RECORD;
        uint32_t flags = get32(r + 40);
        if (flags & ~(SLUICE__FLAG_KEY | SLUICE__FLAG_VALUE)) {
            snprintf(buf, sizeof buf, "event %zu: unknown flags %#x", i, (unsigned)flags);
            return strdup(buf);
        }
        if (!SPAN_OK(get32(r), get32(r + 4)) || !SPAN_OK(get32(r + 8), get32(r + 12))) {
            snprintf(buf, sizeof buf, "event %zu: a span outside the %zu data bytes", i, data.len);
            return strdup(buf);
        }
        uint64_t first = get32(r + 16), n = get32(r + 20);
        if (first + n > nh) {
            snprintf(buf, sizeof buf, "event %zu: headers %llu..%llu outside the %zu-record header table", i,
                     (unsigned long long)first, (unsigned long long)(first + n), nh);
            return strdup(buf);
        }
        uint32_t stream = get32(r + 32);
        if (n_streams > 0 && stream >= n_streams) {
            snprintf(buf, sizeof buf, "event %zu: stream %u of %zu", i, (unsigned)stream, n_streams);
            return strdup(buf);
        }
    }
#undef SPAN_OK
    return NULL;
}

/* Reads record i of a checked batch. */
static void read_event(const conn_batch *b, sluice_bytes events, uint32_t i, sluice_event *e) {
    const uint8_t *r = events.ptr + (size_t)i * SLUICE__EVENT_RECORD;
    e->batch = b;
    e->index = i;
    e->key_off = get32(r);
    e->key_len = get32(r + 4);
    e->value_off = get32(r + 8);
    e->value_len = get32(r + 12);
    e->first_header = get32(r + 16);
    e->header_count = get32(r + 20);
    e->timestamp_ms = (int64_t)get64(r + 24);
    e->stream = get32(r + 32);
    e->flags = get32(r + 40);
}

bool sluice_event_key(const sluice_event *e, sluice_bytes *key) {
    if (!(e->flags & SLUICE__FLAG_KEY)) return false;
    key->ptr = e->batch->data.ptr + e->key_off;
    key->len = e->key_len;
    return true;
}

bool sluice_event_value(const sluice_event *e, sluice_bytes *value) {
    if (!(e->flags & SLUICE__FLAG_VALUE)) return false;
    value->ptr = e->batch->data.ptr + e->value_off;
    value->len = e->value_len;
    return true;
}

bool sluice_event_is_tombstone(const sluice_event *e) { return !(e->flags & SLUICE__FLAG_VALUE); }

sluice_json *sluice_event_json(const sluice_event *e) {
    sluice_bytes v;
    if (!sluice_event_value(e, &v)) return NULL;
    return sluice_json_parse(v.ptr, v.len);
}

int64_t sluice_event_timestamp_ms(const sluice_event *e) { return e->timestamp_ms; }

sluice_bytes sluice_event_stream(const sluice_event *e) {
    if (e->stream < e->batch->n_streams) return e->batch->streams[e->stream];
    sluice_bytes none = {(const uint8_t *)"", 0};
    return none;
}

uint32_t sluice_event_index(const sluice_event *e) { return e->index; }

size_t sluice_event_header_count(const sluice_event *e) { return e->header_count; }

bool sluice_event_header_at(const sluice_event *e, size_t i, sluice_bytes *name, sluice_bytes *value) {
    if (i >= e->header_count) return false;
    const uint8_t *r = e->batch->headers.ptr + ((size_t)e->first_header + i) * SLUICE__HEADER_RECORD;
    name->ptr = e->batch->data.ptr + get32(r);
    name->len = get32(r + 4);
    value->ptr = e->batch->data.ptr + get32(r + 8);
    value->len = get32(r + 12);
    return true;
}

bool sluice_event_header(const sluice_event *e, const char *name, sluice_bytes *value) {
    size_t len = strlen(name);
    for (size_t i = 0; i < e->header_count; i++) {
        sluice_bytes k, v;
        if (sluice_event_header_at(e, i, &k, &v) && k.len == len && memcmp(k.ptr, name, len) == 0) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* ---- parameters, format, log ------------------------------------------------- */

#include "sluice_params.inc"

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
    sluice__import_log(level, m, strlen(m));
    free(m);
}

/* ---- the instance ------------------------------------------------------------ */

struct sluice__conn {
    void *state;
    sluice_arena *arena;   /* open's allocations, parameters included */
    sluice_arena *scratch; /* per call, reset after it */
    bool caught_up;        /* sticky, see sluice_poll_caught_up */
};

typedef const char *(*open_fn)(const sluice_params *, const sluice_bytes *, void **);

static bool conn_open(open_fn open, const char *missing, const sluice_bytes *names, const sluice_bytes *values,
                      size_t n, const sluice_bytes *position, sluice__conn **ret, sluice__owned *err) {
    if (!open) {
        *err = owned_str(missing, strlen(missing));
        return false;
    }
    sluice__conn *c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->arena = sluice_arena_new();
    c->scratch = sluice_arena_new();
    sluice_arena *prev = sluice_arena_use(c->arena);
    sluice_params p = {n, sluice_alloc(n * sizeof(char *) + 1), sluice_alloc(n * sizeof(char *) + 1)};
    for (size_t i = 0; i < n; i++) {
        p.names[i] = sluice_strndup(names[i].ptr, names[i].len);
        p.values[i] = sluice_strndup(values[i].ptr, values[i].len);
    }
    free(pending_message);
    pending_message = NULL;
    const char *error = open(&p, position, &c->state);
    sluice_arena_use(prev);
    if (error) {
        *err = owned_str(error, strlen(error));
        sluice_arena_free(c->scratch);
        sluice_arena_free(c->arena);
        free(c);
        return false;
    }
    *ret = c;
    return true;
}

static void conn_close(sluice__conn *c, void (*close)(void *)) {
    if (!c) return;
    if (close) close(c->state);
    sluice_arena_free(c->scratch);
    sluice_arena_free(c->arena);
    free(c);
}

/* Refused at open rather than trapping on the first call: a definition lacking a
 * callback the host will call. */
bool sluice__source_open(const sluice_bytes *names, const sluice_bytes *values, size_t n,
                         const sluice_bytes *position, sluice__conn **ret, sluice__owned *err) {
    bool defined = &sluice_source_def && sluice_source_def.open && sluice_source_def.poll;
    return conn_open(defined ? sluice_source_def.open : NULL,
                     "this C connector defines no source: SLUICE_EXPORT_SOURCE(.open = ..., .poll = ...) needs both",
                     names, values, n, position, ret, err);
}

bool sluice__sink_open(const sluice_bytes *names, const sluice_bytes *values, size_t n,
                       const sluice_bytes *position, sluice__conn **ret, sluice__owned *err) {
    bool defined = &sluice_sink_def && sluice_sink_def.open && sluice_sink_def.write;
    return conn_open(defined ? sluice_sink_def.open : NULL,
                     "this C connector defines no sink: SLUICE_EXPORT_SINK(.open = ..., .write = ..., .flush = ...) "
                     "needs .open and .write",
                     names, values, n, position, ret, err);
}

void sluice__source_close(sluice__conn *c) { conn_close(c, &sluice_source_def ? sluice_source_def.close : NULL); }

void sluice__sink_close(sluice__conn *c) { conn_close(c, &sluice_sink_def ? sluice_sink_def.close : NULL); }

/* Runs a call in the instance's scratch arena. */
#define IN_SCRATCH(c, body)                                    \
    do {                                                       \
        sluice_arena *prev_ = sluice_arena_use((c)->scratch); \
        free(pending_message);                                 \
        pending_message = NULL;                                \
        body;                                                  \
        sluice_arena_use(prev_);                               \
        sluice_arena_reset((c)->scratch);                      \
    } while (0)

/* ---- polls ------------------------------------------------------------------- */

struct sluice_poll {
    sluice_buf data, events, headers;
    size_t n_events, n_headers;
    sluice__malformed *malformed;
    size_t malformed_len, malformed_cap;
    sluice_buf position;
    bool caught_up, done;
};

static uint32_t push(sluice_poll *p, const void *b, size_t n) {
    uint32_t at = (uint32_t)p->data.len;
    if (n) sluice_buf_push(&p->data, b, n);
    return at;
}

void sluice_poll_emit(sluice_poll *p, const sluice_out_event *ev) {
    uint8_t r[SLUICE__EVENT_RECORD];
    memset(r, 0, sizeof r);
    uint32_t flags = 0;
    if (ev->key) {
        flags |= SLUICE__FLAG_KEY;
        put32(r, push(p, ev->key->ptr, ev->key->len));
        put32(r + 4, (uint32_t)ev->key->len);
    }
    if (ev->value) {
        flags |= SLUICE__FLAG_VALUE;
        put32(r + 8, push(p, ev->value->ptr, ev->value->len));
        put32(r + 12, (uint32_t)ev->value->len);
    }
    put32(r + 16, (uint32_t)p->n_headers);
    put32(r + 20, (uint32_t)ev->header_count);
    for (size_t i = 0; i < ev->header_count; i++) {
        uint8_t h[SLUICE__HEADER_RECORD];
        put32(h, push(p, ev->header_names[i].ptr, ev->header_names[i].len));
        put32(h + 4, (uint32_t)ev->header_names[i].len);
        put32(h + 8, push(p, ev->header_values[i].ptr, ev->header_values[i].len));
        put32(h + 12, (uint32_t)ev->header_values[i].len);
        sluice_buf_push(&p->headers, h, sizeof h);
        p->n_headers++;
    }
    put64(r + 24, (uint64_t)ev->timestamp_ms);
    /* stream and parent: 0 (the host sets a source's origin). */
    put32(r + 40, flags);
    sluice_buf_push(&p->events, r, sizeof r);
    p->n_events++;
}

void sluice_poll_value(sluice_poll *p, const void *value, size_t len) {
    sluice_bytes v = {value, len};
    sluice_out_event ev = {NULL, &v, NULL, NULL, 0, 0};
    sluice_poll_emit(p, &ev);
}

void sluice_poll_json(sluice_poll *p, const sluice_json *value) {
    sluice_buf b = {0};
    sluice_json_write(value, &b);
    sluice_poll_value(p, b.ptr ? b.ptr : (const void *)"", b.len);
    free(b.ptr);
}

void sluice_poll_malformed(sluice_poll *p, const void *raw, size_t len, const char *reason) {
    if (p->malformed_len == p->malformed_cap) {
        p->malformed_cap = p->malformed_cap ? p->malformed_cap * 2 : 8;
        p->malformed = realloc(p->malformed, p->malformed_cap * sizeof *p->malformed);
        if (!p->malformed) __builtin_trap();
    }
    sluice__malformed *m = &p->malformed[p->malformed_len++];
    m->raw = owned_copy(raw, len);
    m->reason = owned_str(reason, strlen(reason));
}

void sluice_poll_position(sluice_poll *p, const void *position, size_t len) {
    p->position.len = 0;
    if (len) sluice_buf_push(&p->position, position, len);
}

void sluice_poll_position_str(sluice_poll *p, const char *position) {
    sluice_poll_position(p, position, strlen(position));
}

void sluice_poll_caught_up(sluice_poll *p) { p->caught_up = true; }

void sluice_poll_done(sluice_poll *p) { p->done = true; }

size_t sluice_poll_len(const sluice_poll *p) { return p->n_events; }

static sluice__owned take(sluice_buf *b) {
    sluice__owned o = {(uint8_t *)b->ptr, b->len};
    if (!o.len) {
        free(b->ptr);
        o.ptr = NULL;
    }
    memset(b, 0, sizeof *b);
    return o;
}

static void free_poll(sluice_poll *p) {
    free(p->data.ptr);
    free(p->events.ptr);
    free(p->headers.ptr);
    free(p->position.ptr);
    for (size_t i = 0; i < p->malformed_len; i++) {
        free(p->malformed[i].raw.ptr);
        free(p->malformed[i].reason.ptr);
    }
    free(p->malformed);
}

bool sluice__source_poll(sluice__conn *c, uint32_t max, sluice__polled *ret, sluice__failure *err) {
    sluice_poll p;
    memset(&p, 0, sizeof p);
    sluice_status st = SLUICE_OK;
    IN_SCRATCH(c, st = sluice_source_def.poll(c->state, max, &p));
    if (!outcome(st, "poll", err)) {
        free_poll(&p);
        return false;
    }
    c->caught_up = c->caught_up || p.caught_up;
    memset(ret, 0, sizeof *ret);
    ret->data = take(&p.data);
    ret->events = take(&p.events);
    ret->headers = take(&p.headers);
    ret->position = take(&p.position);
    ret->malformed = p.malformed_len ? p.malformed : NULL;
    if (!p.malformed_len) free(p.malformed);
    ret->malformed_len = p.malformed_len;
    ret->caught_up = c->caught_up;
    ret->done = p.done;
    return true;
}

bool sluice__source_commit(sluice__conn *c, sluice_bytes position, sluice__failure *err) {
    if (!sluice_source_def.commit) return true;
    sluice_status st = SLUICE_OK;
    IN_SCRATCH(c, st = sluice_source_def.commit(c->state, position));
    return outcome(st, "commit", err);
}

/* ---- sinks ------------------------------------------------------------------- */

struct sluice_rejections {
    sluice__rejection *items;
    size_t len, cap;
};

void sluice_reject_index(sluice_rejections *r, uint32_t index, const char *reason) {
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->items = realloc(r->items, r->cap * sizeof *r->items);
        if (!r->items) __builtin_trap();
    }
    r->items[r->len].index = index;
    r->items[r->len].reason = owned_str(reason, strlen(reason));
    r->len++;
}

void sluice_reject_event(sluice_rejections *r, const sluice_event *event, const char *reason) {
    sluice_reject_index(r, event->index, reason);
}

size_t sluice_rejections_len(const sluice_rejections *r) { return r->len; }

bool sluice__sink_write(sluice__conn *c, sluice_bytes data, sluice_bytes events, sluice_bytes headers,
                        const sluice_bytes *streams, size_t n_streams, sluice__rejection **ret, size_t *ret_len,
                        sluice__failure *err) {
    char *bad = sluice__check_batch(data, events, headers, n_streams);
    if (bad) {
        /* The host never sends one; refuse rather than read outside the batch. */
        size_t n = strlen(bad) + 64;
        char *m = xmalloc(n);
        snprintf(m, n, "the host sent a malformed batch: %s", bad);
        free(bad);
        err->status = SLUICE_FATAL;
        err->message.ptr = (uint8_t *)m;
        err->message.len = strlen(m);
        return false;
    }
    conn_batch b = {data, headers, streams, n_streams};
    size_t n = events.len / SLUICE__EVENT_RECORD;
    sluice_event *evs = xmalloc(n * sizeof *evs);
    const sluice_event **ptrs = xmalloc(n * sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        read_event(&b, events, (uint32_t)i, &evs[i]);
        ptrs[i] = &evs[i];
    }
    sluice_rejections r = {NULL, 0, 0};
    sluice_status st = SLUICE_OK;
    IN_SCRATCH(c, st = sluice_sink_def.write(c->state, ptrs, n, &r));
    free(ptrs);
    free(evs);
    if (!outcome(st, "write", err)) {
        for (size_t i = 0; i < r.len; i++) free(r.items[i].reason.ptr);
        free(r.items);
        return false;
    }
    if (!r.len) {
        free(r.items);
        r.items = NULL;
    }
    *ret = r.items;
    *ret_len = r.len;
    return true;
}

bool sluice__sink_flush(sluice__conn *c, sluice__owned *position, sluice__failure *err) {
    sluice_buf pos = {0};
    sluice_status st = SLUICE_OK;
    IN_SCRATCH(c, st = sluice_sink_def.flush ? sluice_sink_def.flush(c->state, &pos) : SLUICE_OK);
    if (!outcome(st, "flush", err)) {
        free(pos.ptr);
        return false;
    }
    *position = take(&pos);
    return true;
}

/* ---- HTTP and the clock ------------------------------------------------------ */

sluice_status sluice_http_send(const sluice_http_request *req, sluice_http_response *resp) {
    static const char *const kinds[] = {"", "denied", "timeout", "too-large", "failed"};
    memset(resp, 0, sizeof *resp);
    resp->message = "";
    resp->body = (const uint8_t *)"";
    const char *message = "";
    sluice_http_error e = sluice__import_http(req, resp, &message);
    if (e == SLUICE_HTTP_OK) return SLUICE_OK;
    if (e > SLUICE_HTTP_FAILED) e = SLUICE_HTTP_FAILED;
    resp->error = e;
    resp->message = sluice_format("%s: %s", kinds[e], message);
    sluice_status st = e == SLUICE_HTTP_TIMEOUT || e == SLUICE_HTTP_FAILED ? SLUICE_RETRY : SLUICE_FATAL;
    return record(st, strdup(resp->message));
}

sluice_status sluice_http_get(const char *url, sluice_http_response *resp) {
    sluice_http_request req = {"GET", url, NULL, 0, NULL, 0};
    return sluice_http_send(&req, resp);
}

sluice_status sluice_http_post(const char *url, const void *body, size_t len, const char *content_type,
                               sluice_http_response *resp) {
    sluice_http_header h = {"Content-Type", content_type};
    sluice_http_request req = {"POST", url, content_type ? &h : NULL, content_type ? 1 : 0, body, len};
    return sluice_http_send(&req, resp);
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

const char *sluice_http_response_header(const sluice_http_response *resp, const char *name) {
    for (size_t i = 0; i < resp->header_count; i++) {
        const char *a = resp->headers[i].name, *b = name;
        while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return resp->headers[i].value;
    }
    return NULL;
}

int64_t sluice_clock_now_ms(void) { return sluice__import_now_ms(); }

uint64_t sluice_clock_monotonic_ns(void) { return sluice__import_monotonic_ns(); }

#ifndef __wasm__
/* ---- native stand-ins for the host ------------------------------------------- */

sluice_http_error (*sluice__native_http)(const sluice_http_request *, sluice_http_response *, const char **);
bool sluice__native_clock_fixed;
int64_t sluice__native_clock_ms;

void sluice__import_log(sluice_log_level level, const char *msg, size_t len) {
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    fprintf(stderr, "[%s] %.*s\n", names[level <= SLUICE_LOG_ERROR ? level : SLUICE_LOG_ERROR], (int)len, msg);
}

sluice_http_error sluice__import_http(const sluice_http_request *req, sluice_http_response *resp,
                                      const char **message) {
    if (!sluice__native_http) {
        *message = sluice_format("%s: no HTTP in this native test; answer it with sluice_test_with_http",
                                 req->url ? req->url : "");
        return SLUICE_HTTP_DENIED;
    }
    return sluice__native_http(req, resp, message);
}

int64_t sluice__import_now_ms(void) {
    if (sluice__native_clock_fixed) return sluice__native_clock_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sluice__import_monotonic_ns(void) {
    if (sluice__native_clock_fixed)
        return sluice__native_clock_ms > 0 ? (uint64_t)sluice__native_clock_ms * 1000000u : 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif
