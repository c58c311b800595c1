/*
 * The `normalize` transform (see ../SPEC.md) in C: masks `email`, turns `price` into
 * integer `price_cents` by currency, drops `aud`, and emits one event per element of
 * `items`.
 */
#include <string.h>

#include "sluice.h"

static double factor(const char *currency) {
    if (!strcmp(currency, "usd") || !strcmp(currency, "eur") || !strcmp(currency, "gbp") ||
        !strcmp(currency, "brl"))
        return 100.0;
    if (!strcmp(currency, "jpy")) return 1.0;
    return 0.0;
}

/* First character (code point), "***@", everything after the last '@'; else "***". */
static sluice_json *mask(const char *email, size_t len) {
    const char *at = NULL;
    for (size_t i = len; i > 0; i--)
        if (email[i - 1] == '@') {
            at = email + i - 1;
            break;
        }
    if (len == 0 || !at) return sluice_json_string("***");
    size_t first = sluice_utf8_char_len(email, len);
    size_t rest = len - (size_t)(at + 1 - email);
    char *out = sluice_alloc(first + 4 + rest);
    memcpy(out, email, first);
    memcpy(out + first, "***@", 4);
    memcpy(out + first + 4, at + 1, rest);
    return sluice_json_string_n(out, first + 4 + rest);
}

/* floor(x) converted to an integer the way Rust's `as i64` does (saturating). */
static int64_t saturating_floor(double x) {
    double f = __builtin_floor(x);
    if (f != f) return 0;
    if (f >= 9223372036854775807.0) return INT64_MAX;
    if (f <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)f;
}

static const char *create(const sluice_params *params, void **state) {
    static const char *const allowed[] = {NULL};
    (void)state;
    return sluice_params_only(params, allowed);
}

static sluice_status process(void *state, const sluice_event *event, sluice_emitter *out) {
    (void)state;
    if (sluice_event_is_tombstone(event)) {
        sluice_forward(out);
        return SLUICE_OK;
    }
    sluice_json *obj = sluice_event_json(event);
    if (!sluice_json_is_object(obj)) return sluice_reject(out, "expected a JSON object");

    size_t clen;
    const char *c = sluice_json_as_string(sluice_json_get(obj, "currency"), &clen);
    if (!c) return sluice_reject(out, "currency must be a string");
    size_t lower_len;
    char *currency = sluice_utf8_lower(c, clen, &lower_len);
    bool plain = strlen(currency) == lower_len; /* no NUL inside */
    if (plain && !strcmp(currency, "aud")) return SLUICE_OK;
    double f = plain ? factor(currency) : 0.0;
    if (f == 0.0) {
        /* The reason carries the currency's bytes as they are (NULs included). */
        static const char prefix[] = "unknown currency ";
        char *reason = sluice_alloc(sizeof prefix - 1 + lower_len);
        memcpy(reason, prefix, sizeof prefix - 1);
        memcpy(reason + sizeof prefix - 1, currency, lower_len);
        return sluice_reject_n(out, reason, sizeof prefix - 1 + lower_len);
    }

    double price;
    if (!sluice_json_as_double(sluice_json_get(obj, "price"), &price) || !(price >= 0.0))
        return sluice_reject(out, "price must be a non-negative number");

    sluice_json_remove(obj, "price");
    sluice_json_set(obj, "price_cents", sluice_json_int(saturating_floor(price * f + 0.5)));
    sluice_json_set(obj, "currency", sluice_json_string(sluice_ascii_upper(currency, lower_len, NULL)));
    size_t elen;
    const char *email = sluice_json_as_string(sluice_json_get(obj, "email"), &elen);
    if (email) sluice_json_set(obj, "email", mask(email, elen));

    sluice_json *items = sluice_json_get(obj, "items");
    if (!sluice_json_is_array(items)) {
        sluice_emit_json(out, obj);
        return SLUICE_OK;
    }
    sluice_json_remove(obj, "items");
    for (size_t i = 0; i < sluice_json_len(items); i++) {
        /* A shallow copy is enough: only top-level members change. */
        sluice_json *one = sluice_json_copy(obj);
        sluice_json_set(one, "item", sluice_json_at(items, i));
        sluice_json_set(one, "item_index", sluice_json_uint(i));
        sluice_emit_json(out, one);
    }
    return SLUICE_OK;
}

SLUICE_EXPORT_TRANSFORM(.name = "normalize", .version = "0.1.0",
                        .description = "Reference transform for the multi-language examples: mask email, "
                                       "price to cents, drop aud, fan out items.",
                        .create = create, .process = process);
