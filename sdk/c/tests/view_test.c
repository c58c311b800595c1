/* Unit test of the zero-copy JSON view (sluice_view.h): `make -C sdk/c test`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_testing.h"
#include "sluice_view.h"

static int passed, failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) passed++;                                                    \
        else {                                                                 \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                      \
    } while (0)

#define CHECK_STR(got, want)                                                                          \
    do {                                                                                              \
        const char *g_ = (got), *w_ = (want);                                                         \
        if (g_ && w_ && strcmp(g_, w_) == 0) passed++;                                                \
        else {                                                                                        \
            failed++;                                                                                 \
            fprintf(stderr, "%s:%d: got %s\n  want %s\n", __FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
        }                                                                                             \
    } while (0)

static bool raw_is(sluice_raw r, const char *text) { return r.len == strlen(text) && !memcmp(r.ptr, text, r.len); }

static sluice_view parse(const char *s) {
    sluice_view v;
    if (!sluice_view_parse(&v, s, strlen(s))) fprintf(stderr, "parse failed: %s at %zu\n", v.error, v.error_offset);
    return v;
}

static void reads_by_name_and_path_last_duplicate_wins(void) {
    const char *in = "{\"a\":1,\"b\":{\"c\":[10,{\"d\":\"x\\u00e9\"}],\"c\":{\"e\":true}},\"a\":18446744073709551615, \"p\":1.50 }";
    sluice_view v = parse(in);
    sluice_raw r;
    CHECK(sluice_view_is_object(&v));
    CHECK(v.field_count == 4);
    CHECK(sluice_view_get(&v, "a", &r) && raw_is(r, "18446744073709551615"));
    uint64_t u;
    int64_t i;
    CHECK(sluice_raw_as_u64(r, &u) && u == UINT64_MAX);
    CHECK(!sluice_raw_as_i64(r, &i));
    CHECK(sluice_view_get(&v, "p", &r) && raw_is(r, "1.50"));
    double d;
    CHECK(sluice_raw_as_double(r, &d) && d == 1.5);
    CHECK(!sluice_raw_as_u64(r, &u));
    bool b;
    CHECK(sluice_view_path(&v, "b.c.e", &r) && sluice_raw_as_bool(r, &b) && b); /* the second c wins */
    CHECK(!sluice_view_path(&v, "b.c.0", &r));
    CHECK(!sluice_view_get(&v, "missing", &r));

    sluice_view arr = parse("[10,{\"d\":\"x\\u00e9\"}, -9223372036854775808]");
    size_t len;
    CHECK(sluice_view_path(&arr, "1.d", &r) && raw_is(r, "\"x\\u00e9\""));
    CHECK_STR(sluice_raw_as_string(r, &len), "x\xc3\xa9");
    CHECK(sluice_view_path(&arr, "2", &r) && sluice_raw_as_i64(r, &i) && i == INT64_MIN);
    sluice_raw_iter it = sluice_raw_iter_begin(sluice_view_root(&arr));
    int n = 0;
    while (sluice_raw_next_item(&it, &r)) n++;
    CHECK(n == 3);
    CHECK(sluice_json_len(sluice_raw_to_json(sluice_view_root(&arr))) == 3);

    sluice_view esc = parse("{\"caf\\u00e9\":1,\"caf\xc3\xa9\":2,\"q\\\"\":3}");
    CHECK(sluice_view_get(&esc, "caf\xc3\xa9", &r) && raw_is(r, "2"));
    CHECK(sluice_view_get(&esc, "q\"", &r) && raw_is(r, "3"));
}

static void refuses_hostile_input_with_a_reason(void) {
    static const struct {
        const char *in;
        const char *reason;
    } cases[] = {
        {"", "EOF while parsing a value"},
        {"{\"a\":", "EOF while parsing a value"},
        {"{\"a\":1", "EOF while parsing an object"},
        {"{\"a\":\"x", "EOF while parsing a string"},
        {"[1,2", "EOF while parsing a list"},
        {"{\"a\":1}x", "trailing characters"},
        {"{a:1}", "key must be a string"},
        {"[01]", "expected `,` or `]`"},
        {"[1.]", "invalid number"},
        {"-", "invalid number"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\ud800\"", "lone leading surrogate in hex escape"},
        {"\"\\udc00\"", "lone trailing surrogate in hex escape"},
        {"\"a\nb\"", "control character in string"},
        {"tru", "expected a value"},
        {"\"\xff\"", "invalid UTF-8"},
        {"\"\xc0\xaf\"", "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", "invalid UTF-8"},
        {"\"\xe2\x82\"", "invalid UTF-8"},
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sluice_view v;
        bool ok = sluice_view_parse(&v, cases[k].in, strlen(cases[k].in));
        CHECK(!ok);
        CHECK_STR(v.error, cases[k].reason);
    }
    /* Nesting: 128 levels pass, 129 fail, a million opening brackets fail fast. */
    size_t big = 1000000;
    char *deep = malloc(big + 1);
    memset(deep, '[', big);
    deep[big] = 0;
    sluice_view v;
    CHECK(!sluice_view_parse(&v, deep, big));
    CHECK_STR(v.error, "recursion limit exceeded");
    char nest[2 * 129 + 1];
    memset(nest, '[', 129);
    memset(nest + 129, ']', 129);
    CHECK(!sluice_view_parse(&v, nest, 2 * 129));
    CHECK(sluice_view_parse(&v, nest + 1, 2 * 128));
    free(deep);
    /* A huge number is valid JSON and keeps its text; it fits no integer type. */
    char huge[420] = "{\"n\":1";
    memset(huge + 6, '0', 400);
    strcpy(huge + 406, "}");
    sluice_raw r;
    uint64_t u;
    CHECK(sluice_view_parse(&v, huge, strlen(huge)) && sluice_view_get(&v, "n", &r) && r.len == 401);
    CHECK(!sluice_raw_as_u64(r, &u));
}

/* The plugin under test: copies the input object minus `drop`, `ts` renamed, plus new fields. */
static sluice_status process(void *state, const sluice_event *event, sluice_emitter *out) {
    (void)state;
    sluice_view v;
    if (!sluice_event_view(event, &v))
        return sluice_rejectf(out, "value is not valid JSON: %s at byte %zu", v.error, v.error_offset);
    if (!sluice_view_is_object(&v)) return sluice_reject(out, "expected a JSON object");
    sluice_buf buf = {0};
    sluice_writer w, inner;
    sluice_writer_begin(&w, &buf);
    static const char *const drop[] = {"drop", NULL};
    static const char *const rename[] = {"ts", "time", NULL};
    sluice_writer_copy(&w, &v, drop, rename);
    sluice_writer_value(&w, "big", sluice_json_uint(UINT64_MAX));
    sluice_json *o = sluice_json_object();
    sluice_json_set(o, "b", sluice_json_int(1));
    sluice_writer_value(&w, "new \"q\"", o);
    sluice_writer_object(&w, "nested", &inner);
    sluice_raw id;
    if (sluice_view_get(&v, "id", &id)) sluice_writer_raw(&inner, "copy", id);
    sluice_writer_end(&inner);
    sluice_writer_end(&w);
    sluice_emit_value(out, buf.ptr, buf.len);
    free(buf.ptr);
    return SLUICE_OK;
}

SLUICE_EXPORT_TRANSFORM(.name = "view-test", .version = "0.1.0", .process = process);

static void event_view_and_writer_splice_raw_slices(void) {
    const char *in[] = {
        "{\"id\":9007199254740993,\"drop\":1,\"ts\":\"2020\",\"p\":1.50,\"id\":18446744073709551615}",
        "{\"\xff\":1}",
        "[1,",
        "[1]",
    };
    sluice_test_output o;
    CHECK(sluice_test_run(NULL, in, 4, &o));
    CHECK(o.len == 1);
    if (o.len == 1)
        CHECK_STR(o.values[0], "{\"time\":\"2020\",\"p\":1.50,\"id\":18446744073709551615,\"big\":18446744073709551615,"
                               "\"new \\\"q\\\"\":{\"b\":1},\"nested\":{\"copy\":18446744073709551615}}");
    CHECK(o.rejected_len == 3);
    if (o.rejected_len == 3) {
        CHECK_STR(o.rejected_reason[0], "value is not valid JSON: invalid UTF-8 at byte 2");
        CHECK_STR(o.rejected_reason[1], "value is not valid JSON: EOF while parsing a value at byte 3");
        CHECK_STR(o.rejected_reason[2], "expected a JSON object");
    }
    sluice_test_output_free(&o);
}

static void tree_keeps_64_bit_integers(void) {
    const char *in = "{\"id\":9007199254740993,\"max\":18446744073709551615,\"min\":-9223372036854775808}";
    sluice_json *v = sluice_json_parse(in, strlen(in));
    CHECK_STR(sluice_json_to_string(v, NULL), in);
}

int main(void) {
    reads_by_name_and_path_last_duplicate_wins();
    refuses_hostile_input_with_a_reason();
    event_view_and_writer_splice_raw_slices();
    tree_keeps_64_bit_integers();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
