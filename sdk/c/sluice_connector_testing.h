/*
 * sluice_connector_testing.h: unit-test a C connector natively (cc, no Wasm runtime,
 * no server). The harness calls the connector as the host does: open at a position,
 * poll / commit, write / flush, with every batch packed into the contract's tables and
 * read back and checked (events beyond `max`, a bad span, a rejection outside the
 * batch are invalid outputs, as the host says). HTTP is answered by a handler, with the
 * host's own refusal for a host outside a grant; the clock can be fixed.
 *
 *   cc -I<sdk/c> my_api.c my_api_test.c <sdk/c>/sluice_connector.c <sdk/c>/sluice_json.c \
 *      <sdk/c>/sluice_view.c <sdk/c>/sluice_connector_testing.c -lm -o test && ./test
 */
#ifndef SLUICE_CONNECTOR_TESTING_H
#define SLUICE_CONNECTOR_TESTING_H

#include "sluice_connector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- HTTP and the clock ------------------------------------------------------ */

/* What a test's handler answers: a response (error SLUICE_HTTP_OK), or no response
 * (error and message, as the host's http-error). Everything is copied. */
typedef struct {
    uint16_t status;
    const char *body;      /* NULL: empty */
    size_t body_len;       /* 0: strlen(body) */
    const sluice_http_header *headers;
    size_t header_count;
    sluice_http_error error;
    const char *message;
} sluice_test_http_reply;

typedef sluice_test_http_reply (*sluice_test_http_handler)(void *ctx, const sluice_http_request *req);

/* Answers sluice_http_send with `handler` until sluice_test_without_http. With `grant`
 * (a NULL-terminated list of "host:port", as in the pipeline) a request to any other
 * host is refused as the host refuses it (SLUICE_HTTP_DENIED, the same message) and the
 * handler never sees it; NULL: every host. Without a handler every request is denied. */
void sluice_test_with_http(sluice_test_http_handler handler, void *ctx, const char *const *grant);
void sluice_test_without_http(void);

/* Fixes sluice_clock_now_ms at `now_ms` (and sluice_clock_monotonic_ns at the same
 * instant) until sluice_test_clock_restore; advance moves both forward. */
void sluice_test_with_clock(int64_t now_ms);
void sluice_test_clock_advance(int64_t ms);
void sluice_test_clock_restore(void);

/* ---- sources ----------------------------------------------------------------- */

typedef struct sluice_test_source sluice_test_source;

/* `params` is name, value, name, value, ..., NULL (or NULL for none); `position` the
 * checkpointed text (NULL: afresh). NULL with *error (malloc'd) when open refuses. */
sluice_test_source *sluice_test_source_open(const char *const *params, const char *position, char **error);

typedef struct {
    sluice_status status;  /* SLUICE_OK, else SLUICE_RETRY or SLUICE_FATAL with `error` */
    char *error;           /* the call error, or "invalid output: ..." (SLUICE_FATAL) */
    size_t len;            /* events */
    char **values;         /* NUL-terminated; NULL for a tombstone */
    char **keys;           /* NULL: no key */
    int64_t *timestamps;
    size_t *header_counts;
    size_t malformed_len;
    char **malformed_raw;
    char **malformed_reason;
    char *position;        /* NUL-terminated; NULL: unchanged */
    size_t position_len;
    bool caught_up, done;
} sluice_test_poll;

/* Polls once for up to `max` events. False unless status is SLUICE_OK. */
bool sluice_test_source_poll(sluice_test_source *s, uint32_t max, sluice_test_poll *out);
void sluice_test_poll_free(sluice_test_poll *p);
/* Tells the source `position` is durable. SLUICE_OK, or the call error in *error. */
sluice_status sluice_test_source_commit(sluice_test_source *s, const char *position, char **error);
void sluice_test_source_close(sluice_test_source *s);

/* ---- sinks ------------------------------------------------------------------- */

typedef struct sluice_test_sink sluice_test_sink;

sluice_test_sink *sluice_test_sink_open(const char *const *params, const char *position, char **error);

typedef struct {
    sluice_status status;
    char *error;
    size_t rejected_len;
    uint32_t *rejected_index;
    char **rejected_reason;
} sluice_test_write;

/* Writes a batch of n events: value i is values[i] (NULL: a tombstone), key "key-<i>",
 * timestamp 1000 + i, one header ("h", "v<i>"), stream "input". False unless
 * SLUICE_OK. */
bool sluice_test_sink_write(sluice_test_sink *k, const char *const *values, size_t n, sluice_test_write *out);
void sluice_test_write_free(sluice_test_write *w);
/* Flushes: SLUICE_OK with *position (malloc'd, NUL-terminated, *len bytes), or the
 * call error in *error. */
sluice_status sluice_test_sink_flush(sluice_test_sink *k, char **position, size_t *len, char **error);
void sluice_test_sink_close(sluice_test_sink *k);

#ifdef __cplusplus
}
#endif

#endif
