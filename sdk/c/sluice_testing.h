/*
 * sluice_testing.h: unit-test a C transform natively (gcc or clang, no Wasm runtime).
 * The harness builds a framed batch the way the host does and runs it through the same
 * batch loop as the component, so what passes here is what runs in the sandbox.
 *
 *   gcc -I<sdk/c> normalize.c normalize_test.c <sdk/c>/sluice.c  <sdk/c>/sluice_json.c <sdk/c>/sluice_view.c \
 *       <sdk/c>/sluice_testing.c -o test && ./test
 */
#ifndef SLUICE_TESTING_H
#define SLUICE_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *error;            /* create's error, or a retry/fatal message; else NULL */
    size_t len;             /* output events */
    char **values;          /* NUL-terminated values; NULL for a tombstone */
    char **keys;            /* NUL-terminated keys; NULL when absent */
    uint32_t *parents;      /* index of the input event each output derives from */
    int64_t *timestamps;
    size_t *header_counts;
    size_t rejected_len;    /* rejected input events */
    uint32_t *rejected_index;
    char **rejected_reason;
} sluice_test_output;

/* Runs the plugin over one batch. `params` is name, value, name, value, ..., NULL (or
 * NULL for none). `values[i]` is the value of input event i (NULL: a tombstone); input
 * event i has key "key-<i>", timestamp 1000 + i and one header ("h", "v<i>"). Returns
 * false if create or the call failed (see out->error). */
bool sluice_test_run(const char *const *params, const char *const *values, size_t n, sluice_test_output *out);
void sluice_test_output_free(sluice_test_output *out);

#ifdef __cplusplus
}
#endif

#endif
