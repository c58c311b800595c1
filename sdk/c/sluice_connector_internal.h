/* sluice_connector_internal.h: the connector core shared by the component glue
 * (sluice_connector_glue.c) and the native harness (sluice_connector_testing.c), so
 * what is tested natively is what runs. Not for plugin authors.
 *
 * The core borrows its inputs (the glue frees what the canonical ABI handed it) and
 * returns malloc'd outputs whose ownership passes to the caller. */
#ifndef SLUICE_CONNECTOR_INTERNAL_H
#define SLUICE_CONNECTOR_INTERNAL_H

#include "sluice_connector.h"

/* The contract's record sizes (wit/sluice.wit, package comment). */
#define SLUICE__EVENT_RECORD 48
#define SLUICE__HEADER_RECORD 16
#define SLUICE__FLAG_KEY 1u
#define SLUICE__FLAG_VALUE 2u

/* An open source or sink. */
typedef struct sluice__conn sluice__conn;

/* A malloc'd byte string (ptr may be NULL when len is 0). */
typedef struct {
    uint8_t *ptr;
    size_t len;
} sluice__owned;

/* A failed call: SLUICE_RETRY or SLUICE_FATAL and its message. */
typedef struct {
    sluice_status status;
    sluice__owned message;
} sluice__failure;

typedef struct {
    sluice__owned raw, reason;
} sluice__malformed;

/* One poll in the contract's tables. */
typedef struct {
    sluice__owned data, events, headers;
    sluice__malformed *malformed;
    size_t malformed_len;
    sluice__owned position; /* empty: unchanged */
    bool caught_up, done;
} sluice__polled;

typedef struct {
    uint32_t index;
    sluice__owned reason;
} sluice__rejection;

/* Open: `names`/`values` are n borrowed parameters; position NULL: afresh. On a
 * refusal returns false with *err malloc'd (NUL-terminated). */
bool sluice__source_open(const sluice_bytes *names, const sluice_bytes *values, size_t n,
                         const sluice_bytes *position, sluice__conn **ret, sluice__owned *err);
bool sluice__sink_open(const sluice_bytes *names, const sluice_bytes *values, size_t n,
                       const sluice_bytes *position, sluice__conn **ret, sluice__owned *err);
void sluice__source_close(sluice__conn *c);
void sluice__sink_close(sluice__conn *c);

bool sluice__source_poll(sluice__conn *c, uint32_t max, sluice__polled *ret, sluice__failure *err);
bool sluice__source_commit(sluice__conn *c, sluice_bytes position, sluice__failure *err);
/* The tables are borrowed and checked before the sink sees them. */
bool sluice__sink_write(sluice__conn *c, sluice_bytes data, sluice_bytes events, sluice_bytes headers,
                        const sluice_bytes *streams, size_t n_streams, sluice__rejection **ret,
                        size_t *ret_len, sluice__failure *err);
bool sluice__sink_flush(sluice__conn *c, sluice__owned *position, sluice__failure *err);

/* Checks the tables of a batch as the host does (record sizes, flags, spans, header
 * ranges, header names UTF-8, streams). NULL if valid, else a malloc'd reason. */
char *sluice__check_batch(sluice_bytes data, sluice_bytes events, sluice_bytes headers, size_t n_streams);

/* The host's side of the imports. In a component the glue implements them with the
 * generated bindings; natively sluice_connector.c does, through the hooks below. */
void sluice__import_log(sluice_log_level level, const char *msg, size_t len);
/* Fills resp (in the current arena) or returns the error kind with *message (arena). */
sluice_http_error sluice__import_http(const sluice_http_request *req, sluice_http_response *resp,
                                      const char **message);
int64_t sluice__import_now_ms(void);
uint64_t sluice__import_monotonic_ns(void);

#ifndef __wasm__
/* Native stand-ins, set by the harness (sluice_connector_testing.c). */
extern sluice_http_error (*sluice__native_http)(const sluice_http_request *req, sluice_http_response *resp,
                                                const char **message);
extern bool sluice__native_clock_fixed;
extern int64_t sluice__native_clock_ms;
#endif

#endif
