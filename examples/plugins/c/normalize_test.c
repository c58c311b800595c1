/* Native unit test for normalize (see ../SPEC.md): `make test`, no Wasm runtime needed. */
#include <stdio.h>
#include <string.h>

#include "sluice_testing.h"

static int passed, failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) passed++;                                                    \
        else {                                                                 \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                      \
    } while (0)

#define CHECK_STR(got, want)                                                                      \
    do {                                                                                          \
        const char *g_ = (got), *w_ = (want);                                                     \
        if (g_ && w_ && strcmp(g_, w_) == 0) passed++;                                            \
        else {                                                                                    \
            failed++;                                                                             \
            fprintf(stderr, "%s:%d: got %s\n  want %s\n", __FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
        }                                                                                         \
    } while (0)

static void normalizes_masks_drops_aud_and_fans_out_items(void) {
    const char *in[] = {
        "{\"price\":50.5,\"currency\":\"usd\",\"email\":\"bill@example.com\"}",
        "{\"price\":1,\"currency\":\"aud\"}",
        "{\"price\":1,\"currency\":\"jpy\",\"items\":[\"a\",\"b\"]}",
        "[1]",
        NULL,
        "{\"price\":0.125,\"currency\":\"Usd\",\"email\":\"\\u00fcber@x@y.z\",\"items\":{\"k\":1}}",
        "{\"price\":-0.0,\"currency\":\"EUR\",\"email\":\"no-at\",\"f\":3.10,\"big\":1e+21,\"tiny\":1e-7}",
        "{\"price\":1,\"currency\":\"chf\"}",
        "{\"price\":\"1\",\"currency\":\"usd\"}",
        "{\"price\":1,\"currency\":7}",
        "{\"price\":1,\"currency\":\"usd\"} x",
    };
    sluice_test_output out;
    CHECK(sluice_test_run(NULL, in, sizeof in / sizeof *in, &out));
    CHECK(out.len == 6);
    if (out.len == 6) {
        CHECK_STR(out.values[0], "{\"currency\":\"USD\",\"email\":\"b***@example.com\",\"price_cents\":5050}");
        CHECK_STR(out.values[1], "{\"currency\":\"JPY\",\"item\":\"a\",\"item_index\":0,\"price_cents\":1}");
        CHECK_STR(out.values[2], "{\"currency\":\"JPY\",\"item\":\"b\",\"item_index\":1,\"price_cents\":1}");
        CHECK(out.values[3] == NULL && out.parents[3] == 4); /* the tombstone is forwarded */
        CHECK_STR(out.values[4], "{\"currency\":\"USD\",\"email\":\"\xc3\xbc***@y.z\",\"items\":{\"k\":1},\"price_cents\":13}");
        CHECK_STR(out.values[5], "{\"big\":1e+21,\"currency\":\"EUR\",\"email\":\"***\",\"f\":3.1,\"price_cents\":0,\"tiny\":1e-7}");
        CHECK(out.parents[0] == 0 && out.parents[1] == 2 && out.parents[2] == 2 && out.parents[4] == 5);
        CHECK_STR(out.keys[1], "key-2");
        CHECK(out.timestamps[2] == 1002 && out.header_counts[2] == 1);
    }
    CHECK(out.rejected_len == 5);
    if (out.rejected_len == 5) {
        CHECK(out.rejected_index[0] == 3);
        CHECK_STR(out.rejected_reason[0], "expected a JSON object");
        CHECK_STR(out.rejected_reason[1], "unknown currency chf");
        CHECK_STR(out.rejected_reason[2], "price must be a non-negative number");
        CHECK_STR(out.rejected_reason[3], "currency must be a string");
        CHECK_STR(out.rejected_reason[4], "expected a JSON object");
    }
    sluice_test_output_free(&out);
}

static void refuses_parameters(void) {
    const char *params[] = {"x", "1", NULL};
    const char *in[] = {"{}"};
    sluice_test_output out;
    CHECK(!sluice_test_run(params, in, 1, &out));
    CHECK_STR(out.error, "unknown parameter `x`; allowed: ");
    sluice_test_output_free(&out);
}

int main(void) {
    normalizes_masks_drops_aud_and_fans_out_items();
    refuses_parameters();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
