/* Native unit tests for {{name}}: `make test` (gcc, no Wasm runtime needed). */
#include <stdio.h>
#include <string.h>

#include "sluice_testing.h"

static int passed, failed;

#define CHECK(cond)                                                   \
    do {                                                              \
        if (cond) passed++;                                           \
        else {                                                        \
            failed++;                                                 \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                             \
    } while (0)

static void marks_objects_and_rejects_the_rest(void) {
    const char *in[] = {"{\"a\":1}", "[1]", NULL};
    sluice_test_output out;
    CHECK(sluice_test_run(NULL, in, 3, &out));
    CHECK(out.len == 2);
    CHECK(out.len >= 1 && strcmp(out.values[0], "{\"a\":1,\"seen\":true}") == 0);
    CHECK(out.len >= 1 && strcmp(out.keys[0], "key-0") == 0 && out.parents[0] == 0 && out.timestamps[0] == 1000);
    CHECK(out.len >= 2 && out.values[1] == NULL && out.parents[1] == 2); /* the tombstone survives */
    CHECK(out.rejected_len == 1 && out.rejected_index[0] == 1);
    CHECK(out.rejected_len == 1 && strcmp(out.rejected_reason[0], "expected a JSON object") == 0);
    sluice_test_output_free(&out);
}

static void refuses_unknown_parameters(void) {
    const char *params[] = {"fild", "x", NULL};
    const char *in[] = {"{}"};
    sluice_test_output out;
    CHECK(!sluice_test_run(params, in, 1, &out));
    CHECK(out.error && strcmp(out.error, "unknown parameter `fild`; allowed: field") == 0);
    sluice_test_output_free(&out);
}

int main(void) {
    marks_objects_and_rejects_the_rest();
    refuses_unknown_parameters();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
