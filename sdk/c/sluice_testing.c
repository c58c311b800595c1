/* sluice_testing.c: see sluice_testing.h. */
#include "sluice_testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "sluice_internal.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* Like the host, hand over no allocation for an empty list or string (the plugin frees
 * only non-empty ones). */
static void *list_alloc(size_t n) { return n ? xmalloc(n) : NULL; }

static transform_string_t owned(const void *s, size_t len) {
    transform_string_t r = {list_alloc(len), len};
    if (len) memcpy(r.ptr, s, len);
    return r;
}

static char *cstr(const uint8_t *p, size_t len) {
    char *s = xmalloc(len + 1);
    if (len) memcpy(s, p, len);
    s[len] = 0;
    return s;
}

bool sluice_test_run(const char *const *params, const char *const *values, size_t n, sluice_test_output *out) {
    memset(out, 0, sizeof *out);
    size_t np = 0;
    while (params && params[2 * np]) np++;
    sluice_plugin_types_param_t *ps = list_alloc(np * sizeof *ps);
    for (size_t i = 0; i < np; i++) {
        const char *v = params[2 * i + 1] ? params[2 * i + 1] : "";
        ps[i].name = owned(params[2 * i], strlen(params[2 * i]));
        ps[i].value = owned(v, strlen(v));
    }
    sluice__transform *t;
    transform_string_t err;
    if (!sluice__create(ps, np, &t, &err)) {
        out->error = cstr(err.ptr, err.len);
        free(err.ptr);
        return false;
    }

    /* The framed batch, laid out as the host does. */
    sluice_buf data = {0};
    sluice_plugin_types_batch_t in;
    memset(&in, 0, sizeof in);
    in.events.ptr = list_alloc(n * sizeof *in.events.ptr);
    in.events.len = n;
    in.headers.ptr = list_alloc(n * sizeof *in.headers.ptr);
    in.headers.len = n;
    for (size_t i = 0; i < n; i++) {
        char key[32], hv[32];
        snprintf(key, sizeof key, "key-%zu", i);
        snprintf(hv, sizeof hv, "v%zu", i);
        sluice_plugin_types_event_t *e = &in.events.ptr[i];
        memset(e, 0, sizeof *e);
        e->key.is_some = true;
        e->key.val.offset = (uint32_t)data.len;
        e->key.val.len = (uint32_t)strlen(key);
        sluice_buf_push(&data, key, strlen(key));
        if (values[i]) {
            e->value.is_some = true;
            e->value.val.offset = (uint32_t)data.len;
            e->value.val.len = (uint32_t)strlen(values[i]);
            sluice_buf_push(&data, values[i], strlen(values[i]));
        }
        in.headers.ptr[i].name.offset = (uint32_t)data.len;
        in.headers.ptr[i].name.len = 1;
        sluice_buf_push(&data, "h", 1);
        in.headers.ptr[i].value.offset = (uint32_t)data.len;
        in.headers.ptr[i].value.len = (uint32_t)strlen(hv);
        sluice_buf_push(&data, hv, strlen(hv));
        e->headers.offset = (uint32_t)i;
        e->headers.len = 1;
        e->timestamp_ms = 1000 + (int64_t)i;
        e->stream = 0;
        e->parent = (uint32_t)i;
    }
    in.data.ptr = data.ptr;
    in.data.len = data.len;
    in.streams.ptr = xmalloc(sizeof *in.streams.ptr);
    in.streams.ptr[0] = owned("input", 5);
    in.streams.len = 1;

    sluice_plugin_types_output_t res;
    sluice_plugin_types_call_error_t cerr;
    bool ok = sluice__process(t, &in, &res, &cerr);
    sluice__destroy(t);
    if (!ok) {
        transform_string_t *m = cerr.tag == SLUICE_PLUGIN_TYPES_CALL_ERROR_RETRY ? &cerr.val.retry : &cerr.val.fatal;
        out->error = cstr(m->ptr, m->len);
        free(m->ptr);
        return false;
    }
    const sluice_plugin_types_batch_t *b = &res.events;
    out->len = b->events.len;
    out->values = xmalloc(out->len * sizeof(char *));
    out->keys = xmalloc(out->len * sizeof(char *));
    out->parents = xmalloc(out->len * sizeof(uint32_t));
    out->timestamps = xmalloc(out->len * sizeof(int64_t));
    out->header_counts = xmalloc(out->len * sizeof(size_t));
    for (size_t i = 0; i < out->len; i++) {
        const sluice_plugin_types_event_t *e = &b->events.ptr[i];
        out->values[i] = e->value.is_some ? cstr(b->data.ptr + e->value.val.offset, e->value.val.len) : NULL;
        out->keys[i] = e->key.is_some ? cstr(b->data.ptr + e->key.val.offset, e->key.val.len) : NULL;
        out->parents[i] = e->parent;
        out->timestamps[i] = e->timestamp_ms;
        out->header_counts[i] = e->headers.len;
    }
    out->rejected_len = res.rejected.len;
    out->rejected_index = xmalloc(out->rejected_len * sizeof(uint32_t));
    out->rejected_reason = xmalloc(out->rejected_len * sizeof(char *));
    for (size_t i = 0; i < out->rejected_len; i++) {
        out->rejected_index[i] = res.rejected.ptr[i].index;
        out->rejected_reason[i] = cstr(res.rejected.ptr[i].reason.ptr, res.rejected.ptr[i].reason.len);
        free(res.rejected.ptr[i].reason.ptr);
    }
    free(res.rejected.ptr);
    free(b->data.ptr);
    free(b->events.ptr);
    free(b->headers.ptr);
    return true;
}

void sluice_test_output_free(sluice_test_output *out) {
    for (size_t i = 0; i < out->len; i++) {
        free(out->values[i]);
        free(out->keys[i]);
    }
    for (size_t i = 0; i < out->rejected_len; i++) free(out->rejected_reason[i]);
    free(out->values);
    free(out->keys);
    free(out->parents);
    free(out->timestamps);
    free(out->header_counts);
    free(out->rejected_index);
    free(out->rejected_reason);
    free(out->error);
    memset(out, 0, sizeof *out);
}
