/*
 * sluice_connector.h: write a Sluice custom connector (a source or a sink) in C.
 *
 * A connector is a component exporting the `source` or `sink` world of contract 0.2.0
 * (wit/sluice.wit). Define the callbacks and export them with SLUICE_EXPORT_SOURCE or
 * SLUICE_EXPORT_SINK; say which world the project builds with a `SLUICE_WORLD = source`
 * (or `sink`) line in its Makefile; build with `sluice plugin build DIR`.
 *
 *   static const char *open(const sluice_params *params, const sluice_bytes *position,
 *                           void **state);           // position NULL: start afresh
 *   static sluice_status poll(void *state, uint32_t max, sluice_poll *out);
 *   SLUICE_EXPORT_SOURCE(.name = "my-api", .version = "0.1.0", .open = open, .poll = poll);
 *
 *   static sluice_status write(void *state, const sluice_event *const *events, size_t n,
 *                              sluice_rejections *rejected);
 *   static sluice_status flush(void *state, sluice_buf *position);
 *   SLUICE_EXPORT_SINK(.name = "my-hook", .version = "0.1.0", .open = open,
 *                      .write = write, .flush = flush);
 *
 * Callbacks return SLUICE_OK, or what sluice_call_retry / sluice_call_fatal (or a failed
 * sluice_http_send) returned: a retry makes the host call again after a backoff, a
 * fatal stops the pipeline, each with its message. A crash (abort(), a bad pointer) is
 * a trap: the host reports it, discards the instance and reopens the connector at its
 * last safe position.
 *
 * The event accessors, parameters, JSON (sluice_json.h, sluice_view.h), sluice_format
 * and sluice_log of sluice.h work here too: a connector links sluice_connector.c (which
 * implements them for 0.2.0 batches) instead of sluice.c.
 *
 * Memory: JSON values, sluice_alloc'd memory and HTTP responses made during a call
 * (poll, commit, write, flush) are freed after it; those made in `open` (the parameter
 * strings included) live as long as the connector. Use malloc for state that changes.
 */
#ifndef SLUICE_CONNECTOR_H
#define SLUICE_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The contract connectors build against. */
#define SLUICE_CONNECTOR_CONTRACT_VERSION "0.2.0"

typedef struct sluice_poll sluice_poll;
typedef struct sluice_rejections sluice_rejections;

/* ---- sources ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *version;
    const char *description;
    /* Validates params and resumes after `position` (the checkpointed bytes; NULL to
     * start afresh). Sets *state; returns NULL, or the error that fails the deployment
     * (copied; `close` is not called then, so free what was allocated). */
    const char *(*open)(const sluice_params *params, const sluice_bytes *position, void **state);
    /* Adds up to `max` events to `out` and the position after them. Return quickly
     * with nothing when nothing is there: the host polls again after a pause. */
    sluice_status (*poll)(void *state, uint32_t max, sluice_poll *out);
    /* A checkpoint holding `position` is durable: acknowledge upstream here, never
     * earlier. May be NULL. */
    sluice_status (*commit)(void *state, sluice_bytes position);
    /* Frees the state when the host drops the instance (may be NULL; the host may
     * also just discard the whole instance). */
    void (*close)(void *state);
} sluice_source;

#define SLUICE_EXPORT_SOURCE(...) const sluice_source sluice_source_def = {__VA_ARGS__}

/* Adds an event (sluice.h's sluice_out_event: key NULL = none, value NULL = a
 * tombstone; timestamp_ms 0 gets the time it was polled). Everything is copied. */
void sluice_poll_emit(sluice_poll *p, const sluice_out_event *event);
/* Adds a keyless event with this value (UTF-8 JSON inside a pipeline). */
void sluice_poll_value(sluice_poll *p, const void *value, size_t len);
/* Adds a keyless event whose value is `value` serialized (sluice_json_write). */
void sluice_poll_json(sluice_poll *p, const sluice_json *value);
/* An input that could not be decoded: it is dead-lettered with its raw bytes and the
 * reason (kind `malformed`), and the source moves on. */
void sluice_poll_malformed(sluice_poll *p, const void *raw, size_t len, const char *reason);
/* The position after everything this poll returned (copied); not set: unchanged. */
void sluice_poll_position(sluice_poll *p, const void *position, size_t len);
void sluice_poll_position_str(sluice_poll *p, const char *position);
/* The backlog that existed at open is delivered. Once set it stays set: the SDK
 * carries it to every later poll of this instance. */
void sluice_poll_caught_up(sluice_poll *p);
/* A bounded source is drained: the host stops polling. */
void sluice_poll_done(sluice_poll *p);
/* Events added so far (malformed inputs not counted). */
size_t sluice_poll_len(const sluice_poll *p);

/* ---- sinks ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *version;
    const char *description;
    /* Validates params and restores the state of `position` (what `flush` returned for
     * the checkpoint resumed from; NULL: afresh). As the source's open. */
    const char *(*open)(const sluice_params *params, const sluice_bytes *position, void **state);
    /* Writes a batch (it may buffer). Refuse an event for good with sluice_reject_event:
     * it is dead-lettered with the reason. The events live until the call returns. */
    sluice_status (*write)(void *state, const sluice_event *const *events, size_t n,
                           sluice_rejections *rejected);
    /* Makes every write durable and appends the position to checkpoint to `position`
     * (left empty: none). */
    sluice_status (*flush)(void *state, sluice_buf *position);
    void (*close)(void *state);
} sluice_sink;

#define SLUICE_EXPORT_SINK(...) const sluice_sink sluice_sink_def = {__VA_ARGS__}

/* Dead-letters `event` with `reason` (copied). */
void sluice_reject_event(sluice_rejections *r, const sluice_event *event, const char *reason);
/* By index in the batch. The host refuses an index outside the batch, or one given
 * twice, as an invalid output (the instance is discarded). */
void sluice_reject_index(sluice_rejections *r, uint32_t index, const char *reason);
size_t sluice_rejections_len(const sluice_rejections *r);

/* ---- call errors ------------------------------------------------------------- */

/* Record the call's error (printf format) and return SLUICE_RETRY / SLUICE_FATAL:
 * `return sluice_call_retry("HTTP %d", status);`. */
sluice_status sluice_call_retry(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
sluice_status sluice_call_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- HTTP, through the host's sluice:plugin/http import ---------------------- */

typedef struct {
    const char *name;
    const char *value;
} sluice_http_header;

typedef struct {
    const char *method; /* GET, POST, PUT, PATCH, DELETE or HEAD; NULL: GET */
    const char *url;    /* absolute http:// or https:// */
    const sluice_http_header *headers;
    size_t header_count;
    const void *body;
    size_t body_len;
} sluice_http_request;

/* Why no response came back, as the contract's http-error names it. */
typedef enum {
    SLUICE_HTTP_OK = 0,     /* a response came (whatever its status) */
    SLUICE_HTTP_DENIED,     /* the grant does not cover the host: fatal */
    SLUICE_HTTP_TIMEOUT,    /* past http_limits: retry */
    SLUICE_HTTP_TOO_LARGE,  /* the response is over max_response_kb: fatal */
    SLUICE_HTTP_FAILED,     /* a malformed request, DNS, connection or TLS: retry */
} sluice_http_error;

typedef struct {
    uint16_t status;
    sluice_http_header *headers; /* NUL-terminated strings */
    size_t header_count;
    const uint8_t *body;         /* followed by a NUL, for convenience */
    size_t body_len;
    sluice_http_error error;     /* SLUICE_HTTP_OK when a response came */
    const char *message;         /* "timeout: ..." etc. when no response came, else "" */
} sluice_http_response;

/* Sends a request and waits. SLUICE_OK with a response of any status (a 4xx or 5xx is
 * a response, not an error); else no response came: resp->error says why, and the
 * result is SLUICE_RETRY (timeout, failed) or SLUICE_FATAL (denied, too-large) with
 * resp->message recorded as the call's error, so `return st;` hands it to the host.
 * The response lives until the call (poll, write, ...) returns. */
sluice_status sluice_http_send(const sluice_http_request *req, sluice_http_response *resp);
sluice_status sluice_http_get(const char *url, sluice_http_response *resp);
/* POST with a Content-Type (NULL: none). */
sluice_status sluice_http_post(const char *url, const void *body, size_t len, const char *content_type,
                               sluice_http_response *resp);
/* The first header called `name` (case-insensitive), or NULL. */
const char *sluice_http_response_header(const sluice_http_response *resp, const char *name);

/* ---- the clock, through sluice:plugin/clock (with `grants: {clock: true}`) --- */

/* Milliseconds since the Unix epoch (UTC). */
int64_t sluice_clock_now_ms(void);
/* Nanoseconds since a point fixed when the host started; never decreases. */
uint64_t sluice_clock_monotonic_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_CONNECTOR_H */
