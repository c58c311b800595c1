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

static const char *const params[] = {"url", "http://api.test/items", NULL};

/* The API: three items, two per page, from `cursor`. */
static sluice_test_http_reply api(void *ctx, const sluice_http_request *req) {
    (void)ctx;
    const char *c = strstr(req->url, "cursor=");
    int cursor = c ? atoi(c + 7) : 0, end = cursor + 2 < 3 ? cursor + 2 : 3;
    if (end < cursor) end = cursor;
    sluice_buf body = {0};
    sluice_buf_push(&body, "{\"items\":[", 10);
    for (int i = cursor; i < end; i++) {
        char item[32];
        int n = snprintf(item, sizeof item, "%s{\"id\":%d}", i > cursor ? "," : "", i);
        sluice_buf_push(&body, item, (size_t)n);
    }
    char *text = sluice_format("%.*s],\"next\":\"%d\"}", (int)body.len, body.ptr, end);
    free(body.ptr);
    sluice_test_http_reply r = {.status = 200, .body = text}; /* copied by the harness */
    return r;
}

static void pages_and_resumes_from_the_position(void) {
    static const char *const grant[] = {"api.test:80", NULL};
    sluice_test_with_http(api, NULL, grant);
    char *err;
    sluice_test_source *src = sluice_test_source_open(params, NULL, &err);
    CHECK(src != NULL);
    if (!src) return;
    sluice_test_poll first;
    CHECK(sluice_test_source_poll(src, 100, &first));
    CHECK(first.len == 2 && strcmp(first.values[0], "{\"id\":0}") == 0 && strcmp(first.values[1], "{\"id\":1}") == 0);
    CHECK(first.position && strcmp(first.position, "2") == 0);
    /* A restart at the checkpointed position reads on from there. */
    sluice_test_source *restarted = sluice_test_source_open(params, first.position, &err);
    CHECK(restarted != NULL);
    sluice_test_poll second, last;
    CHECK(restarted && sluice_test_source_poll(restarted, 100, &second));
    CHECK(second.len == 1 && strcmp(second.values[0], "{\"id\":2}") == 0);
    CHECK(restarted && sluice_test_source_poll(restarted, 100, &last));
    CHECK(last.len == 0 && last.caught_up && !last.done);
    sluice_test_poll_free(&first);
    sluice_test_poll_free(&second);
    sluice_test_poll_free(&last);
    sluice_test_source_close(src);
    sluice_test_source_close(restarted);
    sluice_test_without_http();
}

static void a_bounded_read_ends_when_caught_up(void) {
    sluice_test_with_http(api, NULL, NULL);
    static const char *const bounded[] = {"url", "http://api.test/items", "stop_when_caught_up", "true", NULL};
    sluice_test_source *src = sluice_test_source_open(bounded, NULL, NULL);
    CHECK(src != NULL);
    if (!src) return;
    size_t events = 0, polls = 0;
    bool done = false;
    while (!done && polls++ < 10) {
        sluice_test_poll p;
        if (!sluice_test_source_poll(src, 100, &p)) break;
        events += p.len;
        done = p.done;
        sluice_test_poll_free(&p);
    }
    CHECK(done && events == 3);
    sluice_test_source_close(src);
    sluice_test_without_http();
}

static void a_host_outside_the_grant_stops_the_pipeline(void) {
    static const char *const grant[] = {"other.test:80", NULL};
    sluice_test_with_http(api, NULL, grant);
    sluice_test_source *src = sluice_test_source_open(params, NULL, NULL);
    sluice_test_poll p;
    CHECK(src && !sluice_test_source_poll(src, 100, &p));
    CHECK(p.status == SLUICE_FATAL && p.error && strstr(p.error, "denied: api.test:80 is not in this connector's grant (grants.http: [other.test:80])"));
    sluice_test_poll_free(&p);
    sluice_test_source_close(src);
    sluice_test_without_http();
}

static void refuses_unknown_parameters(void) {
    static const char *const bad[] = {"url", "x", "urll", "y", NULL};
    char *err = NULL;
    CHECK(sluice_test_source_open(bad, NULL, &err) == NULL);
    CHECK(err && strcmp(err, "unknown parameter `urll`; allowed: url, stop_when_caught_up") == 0);
    free(err);
}

int main(void) {
    pages_and_resumes_from_the_position();
    a_bounded_read_ends_when_caught_up();
    a_host_outside_the_grant_stops_the_pipeline();
    refuses_unknown_parameters();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
