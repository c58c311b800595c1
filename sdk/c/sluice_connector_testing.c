/* sluice_connector_testing.c: see sluice_connector_testing.h. */
#include "sluice_connector_testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice_connector_internal.h"

/* The host's bound on a position (host/src/plugin/connector.rs). */
#define MAX_POSITION_BYTES (1u << 20)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static char *cstr(const void *p, size_t len) {
    char *s = xmalloc(len + 1);
    if (len) memcpy(s, p, len);
    s[len] = 0;
    return s;
}

static char *fmt_error(const char *prefix, const char *detail) {
    size_t n = strlen(prefix) + strlen(detail) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s", prefix, detail);
    return s;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- HTTP and the clock ------------------------------------------------------ */

static sluice_test_http_handler handler;
static void *handler_ctx;
static char **grant_list; /* NULL: any host */

/* Host and port of an http(s) URL, as the host reads them; false if not http(s). */
static bool host_port(const char *url, char *host, size_t host_cap, char *port, size_t port_cap) {
    const char *rest;
    const char *def;
    if (strncasecmp(url, "http://", 7) == 0) rest = url + 7, def = "80";
    else if (strncasecmp(url, "https://", 8) == 0) rest = url + 8, def = "443";
    else return false;
    size_t auth_len = strcspn(rest, "/?#");
    const char *at = memchr(rest, '@', auth_len);
    if (at) {
        auth_len -= (size_t)(at + 1 - rest);
        rest = at + 1;
    }
    const char *h = rest, *colon = NULL;
    size_t h_len;
    if (auth_len && rest[0] == '[') {
        const char *close = memchr(rest, ']', auth_len);
        if (!close) return false;
        h = rest + 1;
        h_len = (size_t)(close - h);
        if (close + 1 < rest + auth_len && close[1] == ':') colon = close + 1;
    } else {
        colon = memchr(rest, ':', auth_len);
        h_len = colon ? (size_t)(colon - rest) : auth_len;
    }
    const char *p = colon ? colon + 1 : def;
    size_t p_len = colon ? (size_t)(rest + auth_len - p) : strlen(def);
    if (h_len == 0 || h_len >= host_cap || p_len >= port_cap) return false;
    for (size_t i = 0; i < h_len; i++) host[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
    host[h_len] = 0;
    memcpy(port, p, p_len);
    port[p_len] = 0;
    if (p_len == 0) strcpy(port, def);
    return true;
}

static sluice_http_error native_http(const sluice_http_request *req, sluice_http_response *resp,
                                     const char **message) {
    const char *url = req->url ? req->url : "";
    if (grant_list) {
        char host[256], port[16];
        if (!host_port(url, host, sizeof host, port, sizeof port)) {
            *message = sluice_format("URL `%s` is not http:// or https://", url);
            return SLUICE_HTTP_FAILED;
        }
        bool allowed = false;
        sluice_buf list = {0};
        for (size_t i = 0; grant_list[i]; i++) {
            const char *g = grant_list[i];
            if (i) sluice_buf_push(&list, ", ", 2);
            sluice_buf_push(&list, g, strlen(g));
            const char *colon = strrchr(g, ':');
            if (!colon) continue;
            const char *gh = g;
            size_t gh_len = (size_t)(colon - g);
            if (gh_len >= 2 && gh[0] == '[' && gh[gh_len - 1] == ']') gh++, gh_len -= 2;
            if (gh_len == strlen(host) && strncasecmp(gh, host, gh_len) == 0 && strcmp(colon + 1, port) == 0)
                allowed = true;
        }
        char *joined = sluice_strndup(list.ptr ? list.ptr : (void *)"", list.len);
        free(list.ptr);
        if (!allowed) {
            /* The host's own message (host/src/plugin/net.rs). */
            *message = sluice_format("%s:%s is not in this connector's grant (grants.http: [%s]); add it to the "
                                     "pipeline's `grants.http` if the connector should reach it",
                                     host, port, joined);
            return SLUICE_HTTP_DENIED;
        }
    }
    sluice_test_http_reply r = handler(handler_ctx, req);
    if (r.error != SLUICE_HTTP_OK) {
        *message = sluice_strndup(r.message ? r.message : "", r.message ? strlen(r.message) : 0);
        return r.error;
    }
    resp->status = r.status;
    size_t body_len = r.body ? (r.body_len ? r.body_len : strlen(r.body)) : 0;
    resp->body = (const uint8_t *)sluice_strndup(r.body ? r.body : "", body_len);
    resp->body_len = body_len;
    resp->header_count = r.header_count;
    resp->headers = sluice_alloc(r.header_count * sizeof *resp->headers + 1);
    for (size_t i = 0; i < r.header_count; i++) {
        resp->headers[i].name = sluice_strndup(r.headers[i].name, strlen(r.headers[i].name));
        resp->headers[i].value = sluice_strndup(r.headers[i].value, strlen(r.headers[i].value));
    }
    return SLUICE_HTTP_OK;
}

void sluice_test_without_http(void) {
    if (grant_list) {
        for (size_t i = 0; grant_list[i]; i++) free(grant_list[i]);
        free(grant_list);
    }
    grant_list = NULL;
    handler = NULL;
    handler_ctx = NULL;
    sluice__native_http = NULL;
}

void sluice_test_with_http(sluice_test_http_handler h, void *ctx, const char *const *grant) {
    sluice_test_without_http();
    handler = h;
    handler_ctx = ctx;
    if (grant) {
        size_t n = 0;
        while (grant[n]) n++;
        grant_list = xmalloc((n + 1) * sizeof *grant_list);
        for (size_t i = 0; i < n; i++) grant_list[i] = cstr(grant[i], strlen(grant[i]));
        grant_list[n] = NULL;
    }
    sluice__native_http = h ? native_http : NULL;
}

void sluice_test_with_clock(int64_t now_ms) {
    sluice__native_clock_fixed = true;
    sluice__native_clock_ms = now_ms;
}

void sluice_test_clock_advance(int64_t ms) { sluice__native_clock_ms += ms; }

void sluice_test_clock_restore(void) { sluice__native_clock_fixed = false; }

/* ---- opening ----------------------------------------------------------------- */

typedef bool (*core_open)(const sluice_bytes *, const sluice_bytes *, size_t, const sluice_bytes *, sluice__conn **,
                          sluice__owned *);

static sluice__conn *open_conn(core_open open, const char *const *params, const char *position, char **error) {
    size_t n = 0;
    while (params && params[2 * n]) n++;
    sluice_bytes *names = xmalloc(n * sizeof *names), *values = xmalloc(n * sizeof *values);
    for (size_t i = 0; i < n; i++) {
        const char *v = params[2 * i + 1] ? params[2 * i + 1] : "";
        names[i].ptr = (const uint8_t *)params[2 * i];
        names[i].len = strlen(params[2 * i]);
        values[i].ptr = (const uint8_t *)v;
        values[i].len = strlen(v);
    }
    sluice_bytes pos = {(const uint8_t *)position, position ? strlen(position) : 0};
    sluice__conn *c = NULL;
    sluice__owned err;
    bool ok = open(names, values, n, position ? &pos : NULL, &c, &err);
    free(names);
    free(values);
    if (error) *error = NULL;
    if (!ok) {
        if (error) *error = cstr(err.ptr, err.len);
        free(err.ptr);
        return NULL;
    }
    return c;
}

struct sluice_test_source {
    sluice__conn *conn;
};

struct sluice_test_sink {
    sluice__conn *conn;
};

sluice_test_source *sluice_test_source_open(const char *const *params, const char *position, char **error) {
    sluice__conn *c = open_conn(sluice__source_open, params, position, error);
    if (!c) return NULL;
    sluice_test_source *s = xmalloc(sizeof *s);
    s->conn = c;
    return s;
}

void sluice_test_source_close(sluice_test_source *s) {
    if (!s) return;
    sluice__source_close(s->conn);
    free(s);
}

sluice_test_sink *sluice_test_sink_open(const char *const *params, const char *position, char **error) {
    sluice__conn *c = open_conn(sluice__sink_open, params, position, error);
    if (!c) return NULL;
    sluice_test_sink *k = xmalloc(sizeof *k);
    k->conn = c;
    return k;
}

void sluice_test_sink_close(sluice_test_sink *k) {
    if (!k) return;
    sluice__sink_close(k->conn);
    free(k);
}

/* ---- polling ----------------------------------------------------------------- */

static void free_polled(sluice__polled *p) {
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

static bool invalid(sluice_test_poll *out, char *reason) {
    out->status = SLUICE_FATAL;
    out->error = fmt_error("invalid output: ", reason);
    free(reason);
    return false;
}

bool sluice_test_source_poll(sluice_test_source *s, uint32_t max, sluice_test_poll *out) {
    memset(out, 0, sizeof *out);
    sluice__polled p;
    sluice__failure f;
    if (!sluice__source_poll(s->conn, max, &p, &f)) {
        out->status = f.status;
        out->error = cstr(f.message.ptr, f.message.len);
        free(f.message.ptr);
        return false;
    }
    /* Read back from the tables, checked as the host checks them. */
    sluice_bytes data = {p.data.ptr, p.data.len}, events = {p.events.ptr, p.events.len},
                 headers = {p.headers.ptr, p.headers.len};
    char *bad = sluice__check_batch(data, events, headers, 0);
    size_t n = events.len / SLUICE__EVENT_RECORD;
    if (!bad && n > max) {
        bad = xmalloc(96);
        snprintf(bad, 96, "poll returned %zu events but was asked for at most %u", n, (unsigned)max);
    }
    if (!bad && p.position.len > MAX_POSITION_BYTES) {
        bad = xmalloc(96);
        snprintf(bad, 96, "position ceiling of %u bytes (the poll returned %zu)", MAX_POSITION_BYTES, p.position.len);
    }
    if (bad) {
        free_polled(&p);
        return invalid(out, bad);
    }
    out->len = n;
    out->values = xmalloc(n * sizeof *out->values);
    out->keys = xmalloc(n * sizeof *out->keys);
    out->timestamps = xmalloc(n * sizeof *out->timestamps);
    out->header_counts = xmalloc(n * sizeof *out->header_counts);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = events.ptr + i * SLUICE__EVENT_RECORD;
        uint32_t flags = get32(r + 40);
        out->keys[i] = flags & SLUICE__FLAG_KEY ? cstr(data.ptr + get32(r), get32(r + 4)) : NULL;
        out->values[i] = flags & SLUICE__FLAG_VALUE ? cstr(data.ptr + get32(r + 8), get32(r + 12)) : NULL;
        out->header_counts[i] = get32(r + 20);
        out->timestamps[i] = (int64_t)((uint64_t)get32(r + 24) | (uint64_t)get32(r + 28) << 32);
    }
    out->malformed_len = p.malformed_len;
    out->malformed_raw = xmalloc(p.malformed_len * sizeof(char *));
    out->malformed_reason = xmalloc(p.malformed_len * sizeof(char *));
    for (size_t i = 0; i < p.malformed_len; i++) {
        out->malformed_raw[i] = cstr(p.malformed[i].raw.ptr, p.malformed[i].raw.len);
        out->malformed_reason[i] = cstr(p.malformed[i].reason.ptr, p.malformed[i].reason.len);
    }
    if (p.position.len) {
        out->position = cstr(p.position.ptr, p.position.len);
        out->position_len = p.position.len;
    }
    out->caught_up = p.caught_up;
    out->done = p.done;
    out->status = SLUICE_OK;
    free_polled(&p);
    return true;
}

void sluice_test_poll_free(sluice_test_poll *p) {
    for (size_t i = 0; i < p->len; i++) {
        free(p->values[i]);
        free(p->keys[i]);
    }
    for (size_t i = 0; i < p->malformed_len; i++) {
        free(p->malformed_raw[i]);
        free(p->malformed_reason[i]);
    }
    free(p->values);
    free(p->keys);
    free(p->timestamps);
    free(p->header_counts);
    free(p->malformed_raw);
    free(p->malformed_reason);
    free(p->position);
    free(p->error);
    memset(p, 0, sizeof *p);
}

sluice_status sluice_test_source_commit(sluice_test_source *s, const char *position, char **error) {
    sluice_bytes pos = {(const uint8_t *)position, position ? strlen(position) : 0};
    sluice__failure f;
    if (error) *error = NULL;
    if (sluice__source_commit(s->conn, pos, &f)) return SLUICE_OK;
    if (error) *error = cstr(f.message.ptr, f.message.len);
    free(f.message.ptr);
    return f.status;
}

/* ---- writing ----------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t push(sluice_buf *data, const char *s) {
    uint32_t at = (uint32_t)data->len;
    sluice_buf_push(data, s, strlen(s));
    return at;
}

bool sluice_test_sink_write(sluice_test_sink *k, const char *const *values, size_t n, sluice_test_write *out) {
    memset(out, 0, sizeof *out);
    /* The batch laid out as the host does. */
    sluice_buf data = {0};
    uint8_t *events = calloc(n ? n : 1, SLUICE__EVENT_RECORD);
    uint8_t *headers = calloc(n ? n : 1, SLUICE__HEADER_RECORD);
    if (!events || !headers) abort();
    for (size_t i = 0; i < n; i++) {
        char key[32], hv[32];
        snprintf(key, sizeof key, "key-%zu", i);
        snprintf(hv, sizeof hv, "v%zu", i);
        uint8_t *r = events + i * SLUICE__EVENT_RECORD, *h = headers + i * SLUICE__HEADER_RECORD;
        uint32_t flags = SLUICE__FLAG_KEY;
        put32(r, push(&data, key));
        put32(r + 4, (uint32_t)strlen(key));
        if (values[i]) {
            flags |= SLUICE__FLAG_VALUE;
            put32(r + 8, push(&data, values[i]));
            put32(r + 12, (uint32_t)strlen(values[i]));
        }
        put32(h, push(&data, "h"));
        put32(h + 4, 1);
        put32(h + 8, push(&data, hv));
        put32(h + 12, (uint32_t)strlen(hv));
        put32(r + 16, (uint32_t)i);
        put32(r + 20, 1);
        put32(r + 24, (uint32_t)(1000 + i));
        put32(r + 36, (uint32_t)i);
        put32(r + 40, flags);
    }
    sluice_bytes stream = {(const uint8_t *)"input", 5};
    sluice_bytes d = {(const uint8_t *)(data.ptr ? data.ptr : (void *)""), data.len},
                 e = {events, n * SLUICE__EVENT_RECORD}, h = {headers, n * SLUICE__HEADER_RECORD};
    sluice__rejection *rs = NULL;
    size_t rn = 0;
    sluice__failure f;
    bool ok = sluice__sink_write(k->conn, d, e, h, &stream, 1, &rs, &rn, &f);
    free(data.ptr);
    free(events);
    free(headers);
    if (!ok) {
        out->status = f.status;
        out->error = cstr(f.message.ptr, f.message.len);
        free(f.message.ptr);
        return false;
    }
    /* The host refuses an index outside the batch or given twice. */
    char *bad = NULL;
    for (size_t i = 0; i < rn && !bad; i++) {
        bool twice = false;
        for (size_t j = 0; j < i; j++) twice = twice || rs[j].index == rs[i].index;
        if (rs[i].index >= n || twice) {
            bad = xmalloc(128);
            snprintf(bad, 128, "rejection index %u (a batch of %zu, or given twice)", (unsigned)rs[i].index, n);
        }
    }
    out->rejected_len = bad ? 0 : rn;
    out->rejected_index = xmalloc(rn * sizeof *out->rejected_index);
    out->rejected_reason = xmalloc(rn * sizeof *out->rejected_reason);
    for (size_t i = 0; i < rn; i++) {
        if (!bad) {
            out->rejected_index[i] = rs[i].index;
            out->rejected_reason[i] = cstr(rs[i].reason.ptr, rs[i].reason.len);
        }
        free(rs[i].reason.ptr);
    }
    free(rs);
    if (bad) {
        out->status = SLUICE_FATAL;
        out->error = fmt_error("invalid output: ", bad);
        free(bad);
        return false;
    }
    out->status = SLUICE_OK;
    return true;
}

void sluice_test_write_free(sluice_test_write *w) {
    for (size_t i = 0; i < w->rejected_len; i++) free(w->rejected_reason[i]);
    free(w->rejected_index);
    free(w->rejected_reason);
    free(w->error);
    memset(w, 0, sizeof *w);
}

sluice_status sluice_test_sink_flush(sluice_test_sink *k, char **position, size_t *len, char **error) {
    sluice__owned pos;
    sluice__failure f;
    if (error) *error = NULL;
    if (position) *position = NULL;
    if (len) *len = 0;
    if (!sluice__sink_flush(k->conn, &pos, &f)) {
        if (error) *error = cstr(f.message.ptr, f.message.len);
        free(f.message.ptr);
        return f.status;
    }
    if (pos.len > MAX_POSITION_BYTES) {
        if (error) {
            *error = xmalloc(128);
            snprintf(*error, 128, "invalid output: position ceiling of %u bytes (flush returned %zu)",
                     MAX_POSITION_BYTES, pos.len);
        }
        free(pos.ptr);
        return SLUICE_FATAL;
    }
    if (position) *position = cstr(pos.ptr, pos.len);
    if (len) *len = pos.len;
    free(pos.ptr);
    return SLUICE_OK;
}
