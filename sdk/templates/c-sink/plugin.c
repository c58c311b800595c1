/*
 * {{name}}: a Sluice sink connector in C. It POSTs each batch to `url` as a JSON array;
 * replace write_sink with your system's protocol. A 429 or 5xx asks the host to write
 * the batch again after a backoff; another 4xx dead-letters the batch's events with
 * the response.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_connector.h"

typedef struct {
    const char *url; /* open's arena: lives as long as the connector */
} sink;

static const char *open_sink(const sluice_params *params, const sluice_bytes *position, void **state) {
    (void)position; /* nothing is buffered across checkpoints, so there is nothing to restore */
    static const char *const allowed[] = {"url", NULL};
    const char *err = sluice_params_only(params, allowed);
    if (err) return err; /* fails the deployment */
    const char *url;
    if ((err = sluice_params_required(params, "url", &url))) return err;
    sink *k = calloc(1, sizeof *k);
    if (!k) return "out of memory";
    k->url = url;
    *state = k;
    return NULL;
}

static sluice_status write_sink(void *state, const sluice_event *const *events, size_t n,
                                sluice_rejections *rejected) {
    sink *k = state;
    sluice_buf body = {0};
    sluice_buf_push(&body, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) sluice_buf_push(&body, ",", 1);
        sluice_bytes v;
        if (sluice_event_value(events[i], &v)) sluice_buf_push(&body, v.ptr, v.len);
        else sluice_buf_push(&body, "null", 4); /* a tombstone */
    }
    sluice_buf_push(&body, "]", 1);
    /* Only hosts the pipeline grants (`grants: {http: ["host:port"]}`). */
    sluice_http_response resp;
    sluice_status st = sluice_http_post(k->url, body.ptr, body.len, "application/json", &resp);
    free(body.ptr);
    if (st != SLUICE_OK) return st; /* a timeout is retried, a denied host stops the pipeline */
    if (resp.status == 429 || resp.status >= 500)
        return sluice_call_retry("HTTP %u", (unsigned)resp.status); /* the batch is written again later */
    if (resp.status >= 400) {
        const char *reason = sluice_format("HTTP %u: %.*s", (unsigned)resp.status, (int)resp.body_len,
                                           (const char *)resp.body);
        for (size_t i = 0; i < n; i++) sluice_reject_event(rejected, events[i], reason);
    }
    return SLUICE_OK;
}

/* The writes above are synchronous: nothing is buffered, no position to keep. */
static sluice_status flush_sink(void *state, sluice_buf *position) {
    (void)state;
    (void)position;
    return SLUICE_OK;
}

static void close_sink(void *state) { free(state); }

SLUICE_EXPORT_SINK(.name = "{{name}}", .version = "0.1.0", .description = "posts batches as JSON arrays",
                   .open = open_sink, .write = write_sink, .flush = flush_sink, .close = close_sink);
