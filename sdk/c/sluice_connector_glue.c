/*
 * sluice_connector_glue.c: the component side of a C connector. Compiled only for
 * Wasm, with -DSLUICE_WORLD_SOURCE (bindings/source.c, the `reader` export) or
 * -DSLUICE_WORLD_SINK (bindings/sink.c, the `writer` export); `sluice plugin build`
 * picks one from the project's SLUICE_WORLD. The exports convert between the
 * generated binding types and the core (sluice_connector.c); the imports (log, http,
 * clock) are the host's.
 *
 * Ownership follows the canonical ABI as wit-bindgen's C bindings implement it: the
 * callee owns its inputs (freed here once the core has copied what it keeps), and
 * everything returned is malloc'd and freed by the generated post-return functions,
 * which free only non-empty lists and strings (so an empty one is handed over as NULL).
 */
#ifdef __wasm__

#include <stdlib.h>
#include <string.h>

#include "sluice_connector_internal.h"

#if defined(SLUICE_WORLD_SOURCE)
#include "bindings/source.h"
typedef source_string_t world_string;
typedef source_list_u8_t world_bytes;
typedef source_tuple2_string_string_t world_pair;
#define WORLD_STRING_DUP source_string_dup
#elif defined(SLUICE_WORLD_SINK)
#include "bindings/sink.h"
typedef sink_string_t world_string;
typedef sink_list_u8_t world_bytes;
typedef sink_tuple2_string_string_t world_pair;
#define WORLD_STRING_DUP sink_string_dup
#else
#error "define SLUICE_WORLD_SOURCE or SLUICE_WORLD_SINK (sluice plugin build does, from SLUICE_WORLD)"
#endif

#define FREE_LIST(p, len)        \
    do {                         \
        if ((len) > 0) free(p);  \
    } while (0)

static sluice_bytes view(const uint8_t *p, size_t len) {
    sluice_bytes b = {p, len};
    return b;
}

/* ---- imports ----------------------------------------------------------------- */

void sluice__import_log(sluice_log_level level, const char *msg, size_t len) {
    world_string s = {(uint8_t *)msg, len};
    sluice_plugin_log_log((sluice_plugin_log_level_t)level, &s);
}

static char *arena_str(const uint8_t *p, size_t len) { return sluice_strndup(p, len); }

sluice_http_error sluice__import_http(const sluice_http_request *req, sluice_http_response *resp,
                                      const char **message) {
    const char *method = req->method ? req->method : "GET";
    const char *url = req->url ? req->url : "";
    sluice_plugin_http_request_t r;
    memset(&r, 0, sizeof r);
    r.method.ptr = (uint8_t *)method;
    r.method.len = strlen(method);
    r.url.ptr = (uint8_t *)url;
    r.url.len = strlen(url);
    world_pair *pairs = NULL;
    if (req->header_count) {
        pairs = malloc(req->header_count * sizeof *pairs);
        if (!pairs) __builtin_trap();
        for (size_t i = 0; i < req->header_count; i++) {
            const char *n = req->headers[i].name ? req->headers[i].name : "";
            const char *v = req->headers[i].value ? req->headers[i].value : "";
            pairs[i].f0.ptr = (uint8_t *)n;
            pairs[i].f0.len = strlen(n);
            pairs[i].f1.ptr = (uint8_t *)v;
            pairs[i].f1.len = strlen(v);
        }
    }
    r.headers.ptr = pairs;
    r.headers.len = req->header_count;
    r.body.ptr = (uint8_t *)req->body;
    r.body.len = req->body ? req->body_len : 0;
    sluice_plugin_http_response_t ok;
    sluice_plugin_http_http_error_t err;
    bool sent = sluice_plugin_http_send(&r, &ok, &err);
    free(pairs);
    if (!sent) {
        /* Every variant case holds one string at the same place. */
        *message = arena_str(err.val.denied.ptr, err.val.denied.len);
        sluice_plugin_http_http_error_free(&err);
        switch (err.tag) {
        case SLUICE_PLUGIN_HTTP_HTTP_ERROR_DENIED: return SLUICE_HTTP_DENIED;
        case SLUICE_PLUGIN_HTTP_HTTP_ERROR_TIMEOUT: return SLUICE_HTTP_TIMEOUT;
        case SLUICE_PLUGIN_HTTP_HTTP_ERROR_TOO_LARGE: return SLUICE_HTTP_TOO_LARGE;
        default: return SLUICE_HTTP_FAILED;
        }
    }
    resp->status = ok.status;
    resp->header_count = ok.headers.len;
    resp->headers = sluice_alloc(ok.headers.len * sizeof *resp->headers + 1);
    for (size_t i = 0; i < ok.headers.len; i++) {
        resp->headers[i].name = arena_str(ok.headers.ptr[i].f0.ptr, ok.headers.ptr[i].f0.len);
        resp->headers[i].value = arena_str(ok.headers.ptr[i].f1.ptr, ok.headers.ptr[i].f1.len);
    }
    resp->body = (const uint8_t *)arena_str(ok.body.ptr, ok.body.len);
    resp->body_len = ok.body.len;
    sluice_plugin_http_response_free(&ok);
    return SLUICE_HTTP_OK;
}

int64_t sluice__import_now_ms(void) { return sluice_plugin_clock_now_ms(); }

uint64_t sluice__import_monotonic_ns(void) { return sluice_plugin_clock_monotonic_ns(); }

/* ---- shared export helpers ---------------------------------------------------- */

/* Copies the parameters' views for the core, which copies them into its arena. */
static void params_view(sluice_plugin_types_param_t *ps, size_t n, sluice_bytes **names, sluice_bytes **values) {
    *names = malloc(n * sizeof **names + 1);
    *values = malloc(n * sizeof **values + 1);
    if (!*names || !*values) __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        (*names)[i] = view(ps[i].name.ptr, ps[i].name.len);
        (*values)[i] = view(ps[i].value.ptr, ps[i].value.len);
    }
}

static void free_params(sluice_plugin_types_param_t *ps, size_t n) {
    for (size_t i = 0; i < n; i++) {
        FREE_LIST(ps[i].name.ptr, ps[i].name.len);
        FREE_LIST(ps[i].value.ptr, ps[i].value.len);
    }
    FREE_LIST(ps, n);
}

typedef bool (*core_open)(const sluice_bytes *, const sluice_bytes *, size_t, const sluice_bytes *, sluice__conn **,
                          sluice__owned *);

static bool open_with(core_open open, sluice_plugin_types_param_t *ps, size_t n, world_bytes *maybe_position,
                      sluice__conn **conn, world_string *err) {
    sluice_bytes *names, *values;
    params_view(ps, n, &names, &values);
    sluice_bytes position;
    if (maybe_position) position = view(maybe_position->ptr, maybe_position->len);
    sluice__owned e;
    bool ok = open(names, values, n, maybe_position ? &position : NULL, conn, &e);
    free(names);
    free(values);
    free_params(ps, n);
    if (maybe_position) FREE_LIST(maybe_position->ptr, maybe_position->len);
    if (!ok) {
        if (!e.len) {
            free(e.ptr);
            e.ptr = NULL;
        }
        err->ptr = e.ptr;
        err->len = e.len;
    }
    return ok;
}

static void to_bytes(world_bytes *out, sluice__owned o) {
    out->ptr = o.len ? o.ptr : NULL;
    out->len = o.len;
    if (!o.len) free(o.ptr);
}

static void to_string(world_string *out, sluice__owned o) {
    out->ptr = o.len ? o.ptr : NULL;
    out->len = o.len;
    if (!o.len) free(o.ptr);
}

static void to_call_error(sluice_plugin_types_call_error_t *err, sluice__failure *f) {
    err->tag = f->status == SLUICE_RETRY ? SLUICE_PLUGIN_TYPES_CALL_ERROR_RETRY : SLUICE_PLUGIN_TYPES_CALL_ERROR_FATAL;
    to_string(&err->val.retry, f->message); /* both cases hold the string at the same place */
}

static void describe(sluice_plugin_types_plugin_info_t *ret, const char *name, const char *version,
                     const char *description) {
    WORLD_STRING_DUP(&ret->name, name ? name : "");
    WORLD_STRING_DUP(&ret->version, version ? version : "");
    WORLD_STRING_DUP(&ret->description, description ? description : "");
}

#if defined(SLUICE_WORLD_SOURCE)
/* ---- the reader export ------------------------------------------------------- */

extern const sluice_source sluice_source_def;

/* The bindings link a *_component_type.o object by this symbol; the build embeds the
 * component type with `wasm-tools component embed` instead (see sluice.c). */
void __component_type_object_force_link_source(void) {}

struct exports_sluice_plugin_reader_source_t {
    sluice__conn *conn;
};

void exports_sluice_plugin_reader_describe(exports_sluice_plugin_reader_plugin_info_t *ret) {
    describe(ret, sluice_source_def.name, sluice_source_def.version, sluice_source_def.description);
}

bool exports_sluice_plugin_reader_static_source_open(exports_sluice_plugin_reader_list_param_t *params,
                                                     source_list_u8_t *maybe_position,
                                                     exports_sluice_plugin_reader_own_source_t *ret,
                                                     source_string_t *err) {
    sluice__conn *conn;
    if (!open_with(sluice__source_open, params->ptr, params->len, maybe_position, &conn, err)) return false;
    exports_sluice_plugin_reader_source_t *rep = malloc(sizeof *rep);
    if (!rep) __builtin_trap();
    rep->conn = conn;
    *ret = exports_sluice_plugin_reader_source_new(rep);
    return true;
}

bool exports_sluice_plugin_reader_method_source_poll(exports_sluice_plugin_reader_borrow_source_t self,
                                                     uint32_t max_events, exports_sluice_plugin_reader_polled_t *ret,
                                                     exports_sluice_plugin_reader_call_error_t *err) {
    sluice__polled p;
    sluice__failure f;
    if (!sluice__source_poll(self->conn, max_events, &p, &f)) {
        to_call_error(err, &f);
        return false;
    }
    memset(ret, 0, sizeof *ret);
    to_bytes(&ret->events.data, p.data);
    to_bytes(&ret->events.events, p.events);
    to_bytes(&ret->events.headers, p.headers);
    if (p.malformed_len) {
        exports_sluice_plugin_reader_malformed_t *m = malloc(p.malformed_len * sizeof *m);
        if (!m) __builtin_trap();
        for (size_t i = 0; i < p.malformed_len; i++) {
            to_bytes(&m[i].raw, p.malformed[i].raw);
            to_string(&m[i].reason, p.malformed[i].reason);
        }
        ret->malformed.ptr = m;
        ret->malformed.len = p.malformed_len;
    }
    free(p.malformed);
    to_bytes(&ret->position, p.position);
    ret->caught_up = p.caught_up;
    ret->done = p.done;
    return true;
}

bool exports_sluice_plugin_reader_method_source_commit(exports_sluice_plugin_reader_borrow_source_t self,
                                                       source_list_u8_t *position,
                                                       exports_sluice_plugin_reader_call_error_t *err) {
    sluice__failure f;
    bool ok = sluice__source_commit(self->conn, view(position->ptr, position->len), &f);
    FREE_LIST(position->ptr, position->len);
    if (!ok) to_call_error(err, &f);
    return ok;
}

void exports_sluice_plugin_reader_source_destructor(exports_sluice_plugin_reader_source_t *rep) {
    if (!rep) return;
    sluice__source_close(rep->conn);
    free(rep);
}

#else
/* ---- the writer export ------------------------------------------------------- */

extern const sluice_sink sluice_sink_def;

void __component_type_object_force_link_sink(void) {}

struct exports_sluice_plugin_writer_sink_t {
    sluice__conn *conn;
};

void exports_sluice_plugin_writer_describe(exports_sluice_plugin_writer_plugin_info_t *ret) {
    describe(ret, sluice_sink_def.name, sluice_sink_def.version, sluice_sink_def.description);
}

bool exports_sluice_plugin_writer_static_sink_open(exports_sluice_plugin_writer_list_param_t *params,
                                                   sink_list_u8_t *maybe_position,
                                                   exports_sluice_plugin_writer_own_sink_t *ret, sink_string_t *err) {
    sluice__conn *conn;
    if (!open_with(sluice__sink_open, params->ptr, params->len, maybe_position, &conn, err)) return false;
    exports_sluice_plugin_writer_sink_t *rep = malloc(sizeof *rep);
    if (!rep) __builtin_trap();
    rep->conn = conn;
    *ret = exports_sluice_plugin_writer_sink_new(rep);
    return true;
}

bool exports_sluice_plugin_writer_method_sink_write(exports_sluice_plugin_writer_borrow_sink_t self,
                                                    exports_sluice_plugin_writer_batch_t *events,
                                                    exports_sluice_plugin_writer_list_rejection_t *ret,
                                                    exports_sluice_plugin_writer_call_error_t *err) {
    size_t ns = events->streams.len;
    sluice_bytes *streams = malloc(ns * sizeof *streams + 1);
    if (!streams) __builtin_trap();
    for (size_t i = 0; i < ns; i++) streams[i] = view(events->streams.ptr[i].ptr, events->streams.ptr[i].len);
    sluice__rejection *rs = NULL;
    size_t n = 0;
    sluice__failure f;
    bool ok = sluice__sink_write(self->conn, view(events->data.ptr, events->data.len),
                                 view(events->events.ptr, events->events.len),
                                 view(events->headers.ptr, events->headers.len), streams, ns, &rs, &n, &f);
    free(streams);
    /* The callee owns its inputs; the sink has returned, so nothing refers to them. */
    for (size_t i = 0; i < ns; i++) FREE_LIST(events->streams.ptr[i].ptr, events->streams.ptr[i].len);
    FREE_LIST(events->streams.ptr, events->streams.len);
    FREE_LIST(events->data.ptr, events->data.len);
    FREE_LIST(events->events.ptr, events->events.len);
    FREE_LIST(events->headers.ptr, events->headers.len);
    if (!ok) {
        to_call_error(err, &f);
        return false;
    }
    ret->ptr = NULL;
    ret->len = n;
    if (n) {
        ret->ptr = malloc(n * sizeof *ret->ptr);
        if (!ret->ptr) __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            ret->ptr[i].index = rs[i].index;
            to_string(&ret->ptr[i].reason, rs[i].reason);
        }
    }
    free(rs);
    return true;
}

bool exports_sluice_plugin_writer_method_sink_flush(exports_sluice_plugin_writer_borrow_sink_t self,
                                                    sink_list_u8_t *ret,
                                                    exports_sluice_plugin_writer_call_error_t *err) {
    sluice__owned position;
    sluice__failure f;
    if (!sluice__sink_flush(self->conn, &position, &f)) {
        to_call_error(err, &f);
        return false;
    }
    to_bytes(ret, position);
    return true;
}

void exports_sluice_plugin_writer_sink_destructor(exports_sluice_plugin_writer_sink_t *rep) {
    if (!rep) return;
    sluice__sink_close(rep->conn);
    free(rep);
}
#endif

#endif /* __wasm__ */
