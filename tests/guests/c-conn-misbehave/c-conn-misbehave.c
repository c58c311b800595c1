/*
 * A C test source connector that misbehaves on request, to prove the host contains a C
 * connector as any other. It counts {"n": i} for i in 0..count, at most 10 per poll;
 * its position is the next n as text.
 *
 *   - mode: too_many: every poll returns one event more than asked for.
 *   - mode: trap_once_at, at: N: an instance opened afresh aborts (a trap) at N; one
 *     reopened at a position goes on.
 *   - mode: retry_at, at: N: the poll that would start at N returns a retry, once per
 *     instance (a poll reaching N ends before it, since a retried poll's events are
 *     dropped).
 *   - mode: clock: each event carries now_ms and mono_ns from the clock.
 *   - mode: big_position: the position is 2 MiB (over the host's bound).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_connector.h"

typedef struct {
    long next, count, at;
    const char *mode;
    bool fresh, retried;
} counter;

static const char *num(const sluice_params *p, const char *name, long def, long *out) {
    const char *v = sluice_params_get(p, name);
    if (!v) {
        *out = def;
        return NULL;
    }
    char *end;
    *out = strtol(v, &end, 10);
    return *v && !*end ? NULL : sluice_format("`%s` is not a number: %s", name, v);
}

static const char *open_counter(const sluice_params *p, const sluice_bytes *position, void **state) {
    static const char *const allowed[] = {"count", "mode", "at", NULL};
    const char *err = sluice_params_only(p, allowed);
    if (err) return err;
    long count, at, next = 0;
    if ((err = num(p, "count", 100, &count)) || (err = num(p, "at", -1, &at))) return err;
    if (position) {
        char text[32];
        if (position->len == 0 || position->len >= sizeof text) return "damaged position";
        memcpy(text, position->ptr, position->len);
        text[position->len] = 0;
        char *end;
        next = strtol(text, &end, 10);
        if (*end) return "damaged position";
    }
    counter *c = calloc(1, sizeof *c);
    if (!c) return "out of memory";
    const char *mode = sluice_params_get(p, "mode");
    c->mode = mode ? mode : "";
    c->count = count;
    c->at = at;
    c->next = next;
    c->fresh = position == NULL;
    *state = c;
    return NULL;
}

static sluice_status poll_counter(void *state, uint32_t max, sluice_poll *out) {
    counter *c = state;
    if (strcmp(c->mode, "too_many") == 0) {
        for (uint32_t i = 0; i <= max; i++) sluice_poll_value(out, "{\"n\":0}", 7);
        return SLUICE_OK;
    }
    while (sluice_poll_len(out) < (max < 10 ? max : 10) && c->next < c->count) {
        if (c->next == c->at && strcmp(c->mode, "trap_once_at") == 0 && c->fresh) {
            sluice_log(SLUICE_LOG_ERROR, "aborting on purpose at n = %ld", c->next);
            abort();
        }
        if (c->next == c->at && strcmp(c->mode, "retry_at") == 0 && !c->retried) {
            /* A retried poll's events are dropped: end this poll before N, retry the next. */
            if (sluice_poll_len(out) > 0) break;
            c->retried = true;
            return sluice_call_retry("not yet at n = %ld", c->next);
        }
        char *ev;
        if (strcmp(c->mode, "clock") == 0)
            ev = sluice_format("{\"mono_ns\":%llu,\"n\":%ld,\"now_ms\":%lld}",
                               (unsigned long long)sluice_clock_monotonic_ns(), c->next,
                               (long long)sluice_clock_now_ms());
        else ev = sluice_format("{\"n\":%ld}", c->next);
        sluice_poll_value(out, ev, strlen(ev));
        c->next++;
    }
    if (strcmp(c->mode, "big_position") == 0) {
        size_t n = 2u << 20;
        char *big = malloc(n);
        if (!big) return sluice_call_fatal("out of memory");
        memset(big, '9', n);
        sluice_poll_position(out, big, n);
        free(big);
    } else {
        sluice_poll_position_str(out, sluice_format("%ld", c->next));
    }
    if (c->next >= c->count) {
        sluice_poll_caught_up(out);
        sluice_poll_done(out);
    }
    return SLUICE_OK;
}

static void close_counter(void *state) { free(state); }

SLUICE_EXPORT_SOURCE(.name = "c-conn-misbehave", .version = "0.1.0", .open = open_counter, .poll = poll_counter,
                     .close = close_counter);
