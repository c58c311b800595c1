/* Native tests for {{name}}: `make test` (any C compiler, no Wasm runtime, no server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *const params[] = {"url", "http://hook.test/in", NULL};
static const char *const grant[] = {"hook.test:80", NULL};

/* What the endpoint got last, and what it answers. */
static char last_body[256];
static uint16_t answer = 200;

static sluice_test_http_reply hook(void *ctx, const sluice_http_request *req) {
    (void)ctx;
    snprintf(last_body, sizeof last_body, "%.*s", (int)req->body_len, (const char *)req->body);
    sluice_test_http_reply r = {.status = answer, .body = answer == 422 ? "no" : "{}"};
    return r;
}

static void posts_the_batch_as_a_json_array(void) {
    sluice_test_with_http(hook, NULL, grant);
    answer = 200;
    sluice_test_sink *k = sluice_test_sink_open(params, NULL, NULL);
    const char *values[] = {"{\"a\":1}", NULL};
    sluice_test_write w;
    CHECK(k && sluice_test_sink_write(k, values, 2, &w));
    CHECK(w.rejected_len == 0);
    CHECK(strcmp(last_body, "[{\"a\":1},null]") == 0);
    sluice_test_write_free(&w);
    char *position = NULL;
    CHECK(k && sluice_test_sink_flush(k, &position, NULL, NULL) == SLUICE_OK && position && position[0] == 0);
    free(position);
    sluice_test_sink_close(k);
    sluice_test_without_http();
}

static void a_4xx_dead_letters_and_a_5xx_retries(void) {
    sluice_test_with_http(hook, NULL, grant);
    sluice_test_sink *k = sluice_test_sink_open(params, NULL, NULL);
    const char *values[] = {"{\"a\":1}"};
    sluice_test_write w;
    answer = 422;
    CHECK(k && sluice_test_sink_write(k, values, 1, &w));
    CHECK(w.rejected_len == 1 && w.rejected_index[0] == 0 && strcmp(w.rejected_reason[0], "HTTP 422: no") == 0);
    sluice_test_write_free(&w);
    answer = 503;
    CHECK(k && !sluice_test_sink_write(k, values, 1, &w));
    CHECK(w.status == SLUICE_RETRY && w.error && strcmp(w.error, "HTTP 503") == 0);
    sluice_test_write_free(&w);
    sluice_test_sink_close(k);
    sluice_test_without_http();
}

static void a_host_outside_the_grant_stops_the_pipeline(void) {
    static const char *const other[] = {"other.test:80", NULL};
    sluice_test_with_http(hook, NULL, other);
    sluice_test_sink *k = sluice_test_sink_open(params, NULL, NULL);
    const char *values[] = {"{}"};
    sluice_test_write w;
    CHECK(k && !sluice_test_sink_write(k, values, 1, &w));
    CHECK(w.status == SLUICE_FATAL && w.error && strstr(w.error, "denied: hook.test:80 is not in this connector's grant (grants.http: [other.test:80])"));
    sluice_test_write_free(&w);
    sluice_test_sink_close(k);
    sluice_test_without_http();
}

static void refuses_unknown_parameters(void) {
    static const char *const bad[] = {"url", "x", "urll", "y", NULL};
    char *err = NULL;
    CHECK(sluice_test_sink_open(bad, NULL, &err) == NULL);
    CHECK(err && strcmp(err, "unknown parameter `urll`; allowed: url") == 0);
    free(err);
}

int main(void) {
    posts_the_batch_as_a_json_array();
    a_4xx_dead_letters_and_a_5xx_retries();
    a_host_outside_the_grant_stops_the_pipeline();
    refuses_unknown_parameters();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
