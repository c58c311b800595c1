/* The connector SDK's own tests (`make -C sdk/c test`): the tables, the error mapping,
 * the sticky caught-up flag, the harness's HTTP grant and clock, and hostile batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_connector_internal.h"
#include "sluice_connector_testing.h"

static int passed, failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) passed++;                                                            \
        else {                                                                         \
            failed++;                                                                  \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                              \
    } while (0)

/* ---- a source driven by its params -------------------------------------------- */

typedef struct {
    const char *mode;
    int polls;
} src;

static const char *src_open(const sluice_params *p, const sluice_bytes *position, void **state) {
    const char *mode = sluice_params_get(p, "mode");
    if (mode && strcmp(mode, "refuse") == 0) return sluice_format("refused at %.*s", position ? (int)position->len : 4,
                                                                  position ? (const char *)position->ptr : "none");
    src *s = calloc(1, sizeof *s);
    s->mode = mode ? mode : "";
    *state = s;
    return NULL;
}

static sluice_status src_poll(void *state, uint32_t max, sluice_poll *out) {
    src *s = state;
    s->polls++;
    if (strcmp(s->mode, "status") == 0) return SLUICE_REJECT;
    if (strcmp(s->mode, "silent_retry") == 0) return SLUICE_RETRY;
    if (strcmp(s->mode, "http") == 0) {
        sluice_http_response r;
        sluice_status st = sluice_http_get(s->polls == 1 ? "https://API.test/x" : "http://[::1]:8080/y", &r);
        if (st != SLUICE_OK) return st;
        sluice_poll_value(out, r.body, r.body_len);
        sluice_poll_position_str(out, sluice_http_response_header(&r, "x-cursor"));
        return SLUICE_OK;
    }
    if (strcmp(s->mode, "clock") == 0) {
        char *v = sluice_format("{\"ms\":%lld,\"ns\":%llu}", (long long)sluice_clock_now_ms(),
                                (unsigned long long)sluice_clock_monotonic_ns());
        sluice_poll_value(out, v, strlen(v));
        return SLUICE_OK;
    }
    for (uint32_t i = 0; i < max + (strcmp(s->mode, "too_many") == 0); i++) {
        static const sluice_bytes key = {(const uint8_t *)"k", 1}, name = {(const uint8_t *)"h", 1},
                                  value = {(const uint8_t *)"hv", 2};
        char *v = sluice_format("{\"i\":%u}", (unsigned)i);
        sluice_bytes val = {(const uint8_t *)v, strlen(v)};
        sluice_out_event ev = {&key, i == 1 ? NULL : &val, &name, &value, 1, 42};
        sluice_poll_emit(out, &ev);
    }
    sluice_poll_malformed(out, "raw", 3, "bad input");
    if (s->polls == 1) sluice_poll_caught_up(out); /* only the first poll says so */
    sluice_poll_position_str(out, "p");
    return SLUICE_OK;
}

static void src_close(void *state) { free(state); }

SLUICE_EXPORT_SOURCE(.name = "t", .open = src_open, .poll = src_poll, .close = src_close);

/* ---- a sink that echoes what it reads ----------------------------------------- */

static sluice_buf seen;

static const char *sink_open(const sluice_params *p, const sluice_bytes *position, void **state) {
    (void)p;
    (void)position;
    *state = NULL;
    return NULL;
}

static sluice_status sink_write(void *state, const sluice_event *const *events, size_t n, sluice_rejections *r) {
    (void)state;
    seen.len = 0;
    for (size_t i = 0; i < n; i++) {
        sluice_bytes k = {(const uint8_t *)"-", 1}, v = {(const uint8_t *)"-", 1}, hn = {NULL, 0}, hv = {NULL, 0};
        sluice_bytes s = sluice_event_stream(events[i]);
        sluice_event_key(events[i], &k);
        sluice_event_value(events[i], &v);
        sluice_event_header_at(events[i], 0, &hn, &hv);
        char *line = sluice_format("%u %.*s=%.*s %lld %.*s h:%.*s=%.*s;", (unsigned)sluice_event_index(events[i]),
                                   (int)k.len, (const char *)k.ptr, (int)v.len, (const char *)v.ptr,
                                   (long long)sluice_event_timestamp_ms(events[i]), (int)s.len, (const char *)s.ptr,
                                   (int)hn.len, (const char *)hn.ptr, (int)hv.len, (const char *)hv.ptr);
        sluice_buf_push(&seen, line, strlen(line));
        if (sluice_event_is_tombstone(events[i])) sluice_reject_event(r, events[i], "a tombstone");
    }
    return SLUICE_OK;
}

static sluice_status sink_flush(void *state, sluice_buf *position) {
    (void)state;
    sluice_buf_push(position, "at-2", 4);
    return SLUICE_OK;
}

SLUICE_EXPORT_SINK(.name = "t", .open = sink_open, .write = sink_write, .flush = sink_flush);

/* ---- tests --------------------------------------------------------------------- */

static void polls_pack_events_headers_malformed_and_a_sticky_caught_up(void) {
    sluice_test_source *s = sluice_test_source_open(NULL, NULL, NULL);
    sluice_test_poll p;
    CHECK(sluice_test_source_poll(s, 3, &p));
    CHECK(p.len == 3 && strcmp(p.values[0], "{\"i\":0}") == 0 && p.values[1] == NULL);
    CHECK(p.len == 3 && strcmp(p.keys[2], "k") == 0 && p.timestamps[2] == 42 && p.header_counts[2] == 1);
    CHECK(p.malformed_len == 1 && strcmp(p.malformed_raw[0], "raw") == 0 &&
          strcmp(p.malformed_reason[0], "bad input") == 0);
    CHECK(p.caught_up && !p.done && p.position && strcmp(p.position, "p") == 0);
    sluice_test_poll_free(&p);
    CHECK(sluice_test_source_poll(s, 0, &p));
    CHECK(p.len == 0 && p.caught_up); /* carried from the first poll */
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
}

static void open_refusals_and_call_errors(void) {
    static const char *const refuse[] = {"mode", "refuse", NULL};
    char *err;
    CHECK(sluice_test_source_open(refuse, "42", &err) == NULL && err && strcmp(err, "refused at 42") == 0);
    free(err);
    static const char *const status[] = {"mode", "status", NULL};
    sluice_test_source *s = sluice_test_source_open(status, NULL, NULL);
    sluice_test_poll p;
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_FATAL &&
          strcmp(p.error, "the connector's poll returned status 1; expected SLUICE_OK, SLUICE_RETRY or SLUICE_FATAL") == 0);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
    static const char *const silent[] = {"mode", "silent_retry", NULL};
    s = sluice_test_source_open(silent, NULL, NULL);
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_RETRY && strstr(p.error, "without a message"));
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
    static const char *const many[] = {"mode", "too_many", NULL};
    s = sluice_test_source_open(many, NULL, NULL);
    CHECK(!sluice_test_source_poll(s, 2, &p) && p.status == SLUICE_FATAL &&
          strcmp(p.error, "invalid output: poll returned 3 events but was asked for at most 2") == 0);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
}

static const char *http_mode = "ok";

static sluice_test_http_reply answer(void *ctx, const sluice_http_request *req) {
    (void)ctx;
    (void)req;
    static const sluice_http_header h = {"X-Cursor", "c7"};
    sluice_test_http_reply r = {.status = 200, .body = "{\"b\":1}", .headers = &h, .header_count = 1};
    if (strcmp(http_mode, "timeout") == 0) r.error = SLUICE_HTTP_TIMEOUT, r.message = "first byte after 30000 ms";
    if (strcmp(http_mode, "too_large") == 0) r.error = SLUICE_HTTP_TOO_LARGE, r.message = "over 16384 KiB";
    return r;
}

static void http_grants_and_error_mapping(void) {
    static const char *const mode[] = {"mode", "http", NULL};
    static const char *const grant[] = {"api.test:443", "[::1]:8080", NULL};
    sluice_test_with_http(answer, NULL, grant);
    sluice_test_source *s = sluice_test_source_open(mode, NULL, NULL);
    sluice_test_poll p;
    http_mode = "ok";
    /* https's default port, a host in capitals, then an IPv6 literal. */
    CHECK(sluice_test_source_poll(s, 1, &p) && strcmp(p.values[0], "{\"b\":1}") == 0 && strcmp(p.position, "c7") == 0);
    sluice_test_poll_free(&p);
    CHECK(sluice_test_source_poll(s, 1, &p));
    sluice_test_poll_free(&p);
    http_mode = "timeout";
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_RETRY &&
          strcmp(p.error, "timeout: first byte after 30000 ms") == 0);
    sluice_test_poll_free(&p);
    http_mode = "too_large";
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_FATAL && strcmp(p.error, "too-large: over 16384 KiB") == 0);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);

    static const char *const other[] = {"other.test:443", NULL};
    sluice_test_with_http(answer, NULL, other);
    s = sluice_test_source_open(mode, NULL, NULL);
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_FATAL &&
          strcmp(p.error, "denied: api.test:443 is not in this connector's grant (grants.http: [other.test:443]); "
                          "add it to the pipeline's `grants.http` if the connector should reach it") == 0);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);

    sluice_test_without_http();
    s = sluice_test_source_open(mode, NULL, NULL);
    CHECK(!sluice_test_source_poll(s, 1, &p) && p.status == SLUICE_FATAL &&
          strcmp(p.error, "denied: https://API.test/x: no HTTP in this native test; answer it with sluice_test_with_http") == 0);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
}

static void a_fixed_clock(void) {
    static const char *const mode[] = {"mode", "clock", NULL};
    sluice_test_with_clock(1700000000000);
    sluice_test_clock_advance(5);
    sluice_test_source *s = sluice_test_source_open(mode, NULL, NULL);
    sluice_test_poll p;
    CHECK(sluice_test_source_poll(s, 1, &p) && strcmp(p.values[0], "{\"ms\":1700000000005,\"ns\":1700000000005000000}") == 0);
    sluice_test_poll_free(&p);
    sluice_test_clock_restore();
    CHECK(sluice_test_source_poll(s, 1, &p) && strstr(p.values[0], "1700000000005") == NULL);
    sluice_test_poll_free(&p);
    sluice_test_source_close(s);
}

static void writes_read_every_field_and_flush_returns_the_position(void) {
    sluice_test_sink *k = sluice_test_sink_open(NULL, NULL, NULL);
    const char *values[] = {"{\"a\":1}", NULL};
    sluice_test_write w;
    CHECK(sluice_test_sink_write(k, values, 2, &w));
    CHECK(seen.len && strncmp((char *)seen.ptr, "0 key-0={\"a\":1} 1000 input h:h=v0;1 key-1=- 1001 input h:h=v1;",
                              seen.len) == 0);
    CHECK(w.rejected_len == 1 && w.rejected_index[0] == 1 && strcmp(w.rejected_reason[0], "a tombstone") == 0);
    sluice_test_write_free(&w);
    char *pos;
    size_t len;
    CHECK(sluice_test_sink_flush(k, &pos, &len, NULL) == SLUICE_OK && len == 4 && strcmp(pos, "at-2") == 0);
    free(pos);
    sluice_test_sink_close(k);
    free(seen.ptr);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void hostile_batches_are_refused_before_the_sink_reads_them(void) {
    uint8_t data[8] = "abcdefgh", ev[48], hd[16];
    sluice_bytes d = {data, 8}, e = {ev, 48}, h = {hd, 16};
    struct {
        int field;
        uint32_t value;
        const char *reason;
    } cases[] = {
        {0, 7, "event 0: a span outside the 8 data bytes"},          /* key offset 7 + len 2 */
        {40, 4, "event 0: unknown flags 0x4"},
        {16, 1, "event 0: headers 1..2 outside the 1-record header table"},
        {32, 3, "event 0: stream 3 of 1"},
        {-8, 0xFFFFFFFFu, "header 0: a span outside the 8 data bytes"}, /* value offset */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        memset(ev, 0, sizeof ev);
        memset(hd, 0, sizeof hd);
        put32(ev + 4, 2); /* key length 2 */
        put32(ev + 20, 1); /* one header */
        put32(hd + 4, 1);
        if (cases[c].field >= 0) put32(ev + cases[c].field, cases[c].value);
        else put32(hd + 8, cases[c].value);
        char *bad = sluice__check_batch(d, e, h, 1);
        CHECK(bad && strcmp(bad, cases[c].reason) == 0);
        if (bad && strcmp(bad, cases[c].reason) != 0) fprintf(stderr, "  got: %s\n", bad);
        free(bad);
    }
    sluice_bytes short_events = {ev, 47};
    char *bad = sluice__check_batch(d, short_events, h, 1);
    CHECK(bad && strcmp(bad, "event table of 47 bytes is not a whole number of 48-byte records") == 0);
    free(bad);
    uint8_t name[2] = {0xff, 0xfe};
    sluice_bytes nd = {name, 2};
    memset(hd, 0, sizeof hd);
    put32(hd + 4, 2);
    sluice_bytes none = {ev, 0};
    bad = sluice__check_batch(nd, none, h, 0);
    CHECK(bad && strcmp(bad, "header 0: the name is not UTF-8") == 0);
    free(bad);

    /* Through the write path: a fatal error naming the fault, and the sink never called. */
    memset(ev, 0, sizeof ev);
    put32(ev + 40, 8);
    sluice__conn *c;
    sluice__owned err;
    CHECK(sluice__sink_open(NULL, NULL, 0, NULL, &c, &err));
    sluice__rejection *rs;
    size_t rn;
    sluice__failure f;
    sluice_bytes stream = {(const uint8_t *)"s", 1};
    seen.len = 0;
    CHECK(!sluice__sink_write(c, d, e, none, &stream, 1, &rs, &rn, &f) && f.status == SLUICE_FATAL &&
          strcmp((char *)f.message.ptr, "the host sent a malformed batch: event 0: unknown flags 0x8") == 0);
    CHECK(seen.len == 0);
    free(f.message.ptr);
    sluice__sink_close(c);
}

int main(void) {
    polls_pack_events_headers_malformed_and_a_sticky_caught_up();
    open_refusals_and_call_errors();
    http_grants_and_error_mapping();
    a_fixed_clock();
    writes_read_every_field_and_flush_returns_the_position();
    hostile_batches_are_refused_before_the_sink_reads_them();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
