/*
 * A C test sink connector that misbehaves on request. It writes nothing anywhere; its
 * position is the number of events written, as text.
 *
 *   - mode: reject_odd: refuses each event whose value has an odd "n" ("odd n 3").
 *   - mode: retry_first: the first write of an instance is a retry.
 *   - mode: bad_reject: refuses index 99 (outside any batch of this test).
 *   - mode: trap: every write aborts (a trap).
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_connector.h"
#include "sluice_view.h"

typedef struct {
    const char *mode;
    long written;
    bool retried;
} sink;

static const char *open_sink(const sluice_params *p, const sluice_bytes *position, void **state) {
    static const char *const allowed[] = {"mode", NULL};
    const char *err = sluice_params_only(p, allowed);
    if (err) return err;
    sink *k = calloc(1, sizeof *k);
    if (!k) return "out of memory";
    const char *mode = sluice_params_get(p, "mode");
    k->mode = mode ? mode : "";
    (void)position;
    *state = k;
    return NULL;
}

static sluice_status write_sink(void *state, const sluice_event *const *events, size_t n,
                                sluice_rejections *rejected) {
    sink *k = state;
    if (strcmp(k->mode, "retry_first") == 0 && !k->retried) {
        k->retried = true;
        return sluice_call_retry("the first write is retried on purpose");
    }
    if (strcmp(k->mode, "trap") == 0) abort();
    if (strcmp(k->mode, "bad_reject") == 0) {
        sluice_reject_index(rejected, 99, "index 99 on purpose");
        return SLUICE_OK;
    }
    for (size_t i = 0; i < n; i++) {
        sluice_view v;
        sluice_raw raw;
        int64_t num;
        if (strcmp(k->mode, "reject_odd") == 0 && sluice_event_view(events[i], &v) &&
            sluice_view_get(&v, "n", &raw) && sluice_raw_as_i64(raw, &num) && num % 2 != 0) {
            sluice_reject_event(rejected, events[i], sluice_format("odd n %lld", (long long)num));
            continue;
        }
        k->written++;
    }
    return SLUICE_OK;
}

static sluice_status flush_sink(void *state, sluice_buf *position) {
    sink *k = state;
    const char *text = sluice_format("%ld", k->written);
    sluice_buf_push(position, text, strlen(text));
    return SLUICE_OK;
}

static void close_sink(void *state) { free(state); }

SLUICE_EXPORT_SINK(.name = "c-conn-sink-misbehave", .version = "0.1.0", .open = open_sink, .write = write_sink,
                   .flush = flush_sink, .close = close_sink);
