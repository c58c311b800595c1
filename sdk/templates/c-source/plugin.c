/*
 * {{name}}: a Sluice source connector in C. It pages through a JSON API
 * (`url?cursor=C&limit=N` answering `{"items": [...], "next": "C2"}`), one page per
 * poll; replace poll with your system's protocol. The position is the cursor, so a
 * restart resumes after the last checkpoint. With `stop_when_caught_up: true` the read
 * ends at the first empty page.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_connector.h"
#include "sluice_view.h"

typedef struct {
    const char *url; /* open's arena: lives as long as the connector */
    bool stop;
    char *cursor;    /* malloc'd: it changes on every poll */
    bool caught_up;
} source;

static const char *open_source(const sluice_params *params, const sluice_bytes *position, void **state) {
    static const char *const allowed[] = {"url", "stop_when_caught_up", NULL};
    const char *err = sluice_params_only(params, allowed);
    if (err) return err; /* fails the deployment */
    const char *url;
    if ((err = sluice_params_required(params, "url", &url))) return err;
    const char *stop = sluice_params_get(params, "stop_when_caught_up");
    if (stop && strcmp(stop, "true") != 0 && strcmp(stop, "false") != 0)
        return sluice_format("parameter `stop_when_caught_up`: expected true or false, found `%s`", stop);
    source *s = calloc(1, sizeof *s);
    if (!s) return "out of memory";
    s->url = url;
    s->stop = stop && strcmp(stop, "true") == 0;
    /* The position is the cursor of the last checkpoint (NULL: the beginning). */
    s->cursor = position ? strndup((const char *)position->ptr, position->len) : strdup("");
    *state = s;
    return NULL;
}

/* Percent-encodes a query value (in the call's arena). */
static const char *query_escape(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = sluice_alloc(strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~", c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = 0;
    return out;
}

static sluice_status poll_source(void *state, uint32_t max, sluice_poll *out) {
    source *s = state;
    /* Only hosts the pipeline grants (`grants: {http: ["host:port"]}`); another is
     * refused naming the host and the grant, which stops the pipeline. */
    char *url = sluice_format("%s?cursor=%s&limit=%u", s->url, query_escape(s->cursor), (unsigned)max);
    sluice_http_response resp;
    sluice_status st = sluice_http_get(url, &resp);
    if (st != SLUICE_OK) return st; /* a timeout is retried, a denied host stops the pipeline */
    if (resp.status != 200) return sluice_call_retry("HTTP %u", (unsigned)resp.status); /* polled again later */
    sluice_view page;
    sluice_raw items, next;
    if (!sluice_view_parse(&page, resp.body, resp.body_len) || !sluice_view_get(&page, "items", &items) ||
        sluice_raw_type(items) != SLUICE_JSON_ARRAY)
        return sluice_call_retry("the page is not {\"items\": [...]}");
    sluice_raw_iter it = sluice_raw_iter_begin(items);
    sluice_raw item;
    size_t n = 0;
    while (sluice_raw_next_item(&it, &item)) {
        n++;
        if (sluice_raw_type(item) != SLUICE_JSON_OBJECT) {
            sluice_poll_malformed(out, item.ptr, item.len, "expected a JSON object"); /* a dead letter */
            continue;
        }
        sluice_poll_value(out, item.ptr, item.len); /* the item's exact text */
    }
    if (n == 0) {
        s->caught_up = true; /* the backlog is delivered */
        if (s->stop) sluice_poll_done(out);
    }
    if (s->caught_up) sluice_poll_caught_up(out);
    if (sluice_view_get(&page, "next", &next) && !sluice_raw_is_null(next)) {
        size_t len;
        const char *text = sluice_raw_as_string(next, &len);
        char *cursor = text ? strndup(text, len) : strndup((const char *)next.ptr, next.len);
        if (!cursor) return sluice_call_fatal("out of memory");
        free(s->cursor);
        s->cursor = cursor;
    }
    sluice_poll_position_str(out, s->cursor);
    return SLUICE_OK;
}

static void close_source(void *state) {
    source *s = state;
    free(s->cursor);
    free(s);
}

SLUICE_EXPORT_SOURCE(.name = "{{name}}", .version = "0.1.0", .description = "pages through a JSON API",
                     .open = open_source, .poll = poll_source, .close = close_source);
