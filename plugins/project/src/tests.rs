use serde_json::{json, Value};
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::{run, run_batch, TestError};

use super::*;

const PERSON: &str = r#"{"id":7,"name":"Ana","nascimento":"2001-04-09","email":"ana@x.io","address":{"city":"Recife","zip":"50000"},"internal":{"score":3}}"#;

fn one(params: &[(&str, &str)], input: &str) -> Value {
    let out = run::<Project>(params, &[input]).expect("runs");
    assert!(
        out.rejected().is_empty(),
        "unexpected rejection: {:?}",
        out.rejected()
    );
    let mut values = out.json();
    assert_eq!(values.len(), 1);
    values.remove(0)
}

fn init_error(params: &[(&str, &str)]) -> String {
    match run::<Project>(params, &[]) {
        Err(TestError::Init(msg)) => msg,
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[test]
fn select_keeps_only_listed_paths() {
    let got = one(
        &[("select", r#"["id", "address.city", "missing"]"#)],
        PERSON,
    );
    assert_eq!(got, json!({"id": 7, "address": {"city": "Recife"}}));
}

#[test]
fn select_accepts_comma_separated_text() {
    let want = json!({"id": 7, "name": "Ana"});
    assert_eq!(one(&[("select", "id, name")], PERSON), want);
    assert_eq!(one(&[("select", r#""id,name""#)], PERSON), want);
    assert_eq!(one(&[("select", "id")], PERSON), json!({"id": 7}));
}

#[test]
fn select_with_overlapping_paths_keeps_the_ancestor_whole() {
    let want = json!({"address": {"city": "Recife", "zip": "50000"}});
    assert_eq!(
        one(&[("select", r#"["address.city", "address"]"#)], PERSON),
        want
    );
    assert_eq!(
        one(&[("select", r#"["address", "address.city"]"#)], PERSON),
        want
    );
    assert_eq!(
        one(&[("select", r#"["id", "id"]"#)], PERSON),
        json!({"id": 7})
    );
}

#[test]
fn empty_select_keeps_only_computed_fields() {
    let got = one(
        &[("select", "[]"), ("set", r#"{"n": "length(name)"}"#)],
        PERSON,
    );
    assert_eq!(got, json!({"n": 3}));
}

#[test]
fn drop_removes_paths() {
    let got = one(
        &[("drop", r#"["internal", "address.zip", "nope", "a.b.c"]"#)],
        PERSON,
    );
    assert_eq!(
        got,
        json!({"id": 7, "name": "Ana", "nascimento": "2001-04-09", "email": "ana@x.io", "address": {"city": "Recife"}})
    );
}

#[test]
fn rename_moves_values_including_into_nested_paths() {
    let got = one(
        &[
            ("select", r#"["id", "name", "address.city"]"#),
            (
                "rename",
                r#"{"name": "full_name", "address.city": "location.city", "nope": "x"}"#,
            ),
        ],
        PERSON,
    );
    assert_eq!(
        got,
        json!({"id": 7, "full_name": "Ana", "address": {}, "location": {"city": "Recife"}})
    );
}

#[test]
fn rename_is_simultaneous() {
    let got = one(&[("rename", r#"{"a": "b", "b": "a"}"#)], r#"{"a":1,"b":2}"#);
    assert_eq!(got, json!({"a": 2, "b": 1}));
    let got = one(&[("rename", r#"{"a": "b", "b": "c"}"#)], r#"{"a":1,"b":2}"#);
    assert_eq!(got, json!({"b": 1, "c": 2}));
}

#[test]
fn set_computes_from_the_input_before_select_and_drop() {
    let got = one(
        &[
            ("select", r#"["id"]"#),
            ("drop", r#"["id"]"#),
            (
                "set",
                r#"{"faixa": "case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end",
                    "contact.email": "upper(email)",
                    "score": "internal.score * 10",
                    "id_copy": "id"}"#,
            ),
        ],
        PERSON,
    );
    assert_eq!(
        got,
        json!({"faixa": "JOVEM", "contact": {"email": "ANA@X.IO"}, "score": 30, "id_copy": 7})
    );
}

#[test]
fn set_reads_input_names_not_renamed_ones() {
    let got = one(
        &[
            ("rename", r#"{"name": "nome"}"#),
            ("set", r#"{"greeting": "'hi ' || name"}"#),
        ],
        r#"{"name":"Ana"}"#,
    );
    assert_eq!(got, json!({"nome": "Ana", "greeting": "hi Ana"}));
}

#[test]
fn set_overwrites_existing_fields_and_accepts_constants() {
    let got = one(
        &[(
            "set",
            r#"{"name": "lower(name)", "version": 2, "flag": true, "gone": null}"#,
        )],
        r#"{"name":"ANA","version":1}"#,
    );
    assert_eq!(
        got,
        json!({"name": "ana", "version": 2, "flag": true, "gone": null})
    );
}

#[test]
fn youth_example() {
    let out = run::<Project>(
        &[(
            "set",
            r#"{"faixa": "case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end"}"#,
        )],
        &[
            r#"{"nascimento":"2003-05-01"}"#,
            r#"{"nascimento":"1970-01-01"}"#,
            r#"{}"#,
        ],
    )
    .expect("runs");
    assert_eq!(
        out.json(),
        vec![
            json!({"nascimento": "2003-05-01", "faixa": "JOVEM"}),
            json!({"nascimento": "1970-01-01", "faixa": "ADULTO"}),
            json!({"faixa": "ADULTO"}),
        ]
    );
}

#[test]
fn rejects_non_objects_and_non_json() {
    let out = run::<Project>(
        &[("drop", r#"["x"]"#)],
        &["[1,2]", r#"{"x":1,"y":2}"#, "\"text\"", "null", "nope"],
    )
    .expect("runs");
    assert_eq!(out.values(), vec![r#"{"y":2}"#]);
    let rejected = out.rejected();
    assert_eq!(
        rejected[0],
        (0, "value is an array, not a JSON object".to_string())
    );
    assert_eq!(
        rejected[1],
        (2, "value is a string, not a JSON object".to_string())
    );
    assert_eq!(
        rejected[2],
        (3, "value is null, not a JSON object".to_string())
    );
    assert_eq!(rejected[3].0, 4);
    assert!(rejected[3].1.starts_with("value is not valid JSON"));
}

#[test]
fn rejects_when_a_computed_field_cannot_be_written() {
    let out = run::<Project>(
        &[("set", r#"{"name.first": "'x'"}"#)],
        &[r#"{"name":"Ana"}"#, r#"{"name":{"last":"S"}}"#],
    )
    .expect("runs");
    assert_eq!(
        out.json(),
        vec![json!({"name": {"last": "S", "first": "x"}})]
    );
    assert_eq!(
        out.rejected(),
        vec![(
            0,
            "cannot set `name.first`: `name` is a string, not an object".to_string()
        )]
    );
}

#[test]
fn forwards_tombstones_unchanged() {
    let mut batch = RawBatch {
        streams: vec!["in".to_string()],
        ..RawBatch::default()
    };
    batch.push_event(Some(b"k1"), None, &[("h", b"v")], 5, 0);
    batch.push_event(Some(b"k2"), Some(br#"{"a":1,"b":2}"#), &[("h", b"w")], 6, 0);
    let out = run_batch::<Project>(&[("select", r#"["a"]"#)], &batch).expect("runs");
    assert_eq!(out.values(), vec!["null", r#"{"a":1}"#]);
    assert_eq!(
        out.keys(),
        vec![Some("k1".to_string()), Some("k2".to_string())]
    );
    assert_eq!(out.raw.events.events[0].value, None);
    assert_eq!(out.raw.events.events[0].timestamp_ms, 5);
    assert_eq!(out.raw.events.events[1].headers.len, 1);
}

#[test]
fn parameter_errors_name_the_parameter() {
    assert_eq!(
        init_error(&[]),
        "at least one parameter is required: select, drop, rename, set, key"
    );
    assert_eq!(
        init_error(&[("selct", "[\"a\"]")]),
        "unknown parameter `selct`; allowed: select, drop, rename, set, key, strict, style, where, udfs"
    );
    assert_eq!(
        init_error(&[("select", "[1]")]),
        "parameter `select`: expected a list of field paths, found a number in the list"
    );
    assert_eq!(
        init_error(&[("drop", "{}")]),
        "parameter `drop`: expected a list of field paths (like [\"id\", \"user.name\"] or \"id, user.name\"), found an object"
    );
    assert_eq!(
        init_error(&[("select", r#"["a..b"]"#)]),
        "parameter `select`: field path `a..b`: empty field name at column 3"
    );
    assert_eq!(
        init_error(&[("rename", "[\"a\"]")]),
        r#"parameter `rename`: expected a map like {"old.path": "new_name"}, found an array"#
    );
    assert!(init_error(&[("rename", "a: b")])
        .starts_with(r#"parameter `rename`: expected a map like {"old.path": "new_name"} ("#));
    assert_eq!(
        init_error(&[("rename", r#"{"a": 1}"#)]),
        "parameter `rename`: the new name of `a` must be a string, found a number"
    );
    assert_eq!(
        init_error(&[("set", r#"{"x": "price >="}"#)]),
        "parameter `set`: field `x`: expected a value after '>=' at column 9 in `price >=`"
    );
    assert_eq!(
        init_error(&[("set", r#"{"": "1"}"#)]),
        "parameter `set`: field path ``: empty field name at column 1"
    );
}

#[test]
fn backquoted_paths_in_params() {
    let got = one(
        &[
            ("select", "`my field`, `a.b`"),
            ("rename", r#"{"`a.b`": "`c.d`"}"#),
        ],
        r#"{"my field":1,"a.b":2,"a":{"b":3}}"#,
    );
    assert_eq!(got, json!({"my field": 1, "c.d": 2}));
}

#[test]
fn split_list_respects_backquotes() {
    assert_eq!(split_list("a, `b,c` ,d"), vec!["a", "`b,c`", "d"]);
    assert!(split_list("  ").is_empty());
}

#[test]
fn readme_example() {
    let got = one(
        &[
            ("select", r#"["id","name","email","address.city"]"#),
            ("rename", r#"{"address.city":"city"}"#),
            ("drop", r#"["address"]"#),
            (
                "set",
                r#"{"faixa":"case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end","email":"lower(email)","price_cents":"round(price * 100)","schema_version":2}"#,
            ),
        ],
        r#"{"id": 7, "name": "Ana", "email": "Ana@X.io", "nascimento": "2003-05-01", "price": 50.5,
            "address": {"city": "Recife", "zip": "50000"}, "internal": {"score": 3}}"#,
    );
    assert_eq!(
        got,
        json!({"id": 7, "name": "Ana", "email": "ana@x.io", "city": "Recife",
               "faixa": "JOVEM", "price_cents": 5050, "schema_version": 2})
    );
}

/// Runs `project` on the tree path (splicing off) for comparison.
struct TreeProject(Project);

impl Transform for TreeProject {
    fn new(params: &Params) -> Result<Self, String> {
        let mut p = Project::new(params)?;
        p.splice = None;
        Ok(TreeProject(p))
    }

    fn process(
        &mut self,
        event: &sluice_sdk::Event<'_>,
        out: &mut sluice_sdk::Emitter<'_>,
    ) -> Result<(), sluice_sdk::EventError> {
        self.0.process(event, out)
    }

    fn finish(&mut self) {
        self.0.finish();
    }
}

#[test]
fn splicing_and_tree_paths_agree() {
    let inputs = [
        PERSON,
        r#"{"a":1,"b":2,"c":{"d":[1,2,{"e":null}]},"price":12.5,"name":"Ana"}"#,
        r#"{"a":1,"a":2,"b":"x"}"#,
        "{\"caf\\u00e9\":\"\\u00e9\\n\",\"a\":true,\"b\":false}",
        r#"{}"#,
        r#"[1]"#,
        r#"{"a":"#,
        r#"{"address":"street","c":{"d":[1,2,{"e":{"f":1.50}}]},"c":{"d":[0]}}"#,
        r#"{"address":{"city":"Rio","city":"Recife"},"internal":[{"score":1}]}"#,
        // Keys seen before, other values and spacing; then the same keys
        // again (what the splicing path planned for the keys is reused),
        // then other orders.
        r#"{"a": 5 ,"b":"y","c":[], "price":0.5,"name":"Bo"}"#,
        r#"{"a":6,"b":"z","c":{},"price":1,"name":"Cy"}"#,
        r#"{"b":6,"a":"z"}"#,
        r#"{"b":7, "a":"w"}"#,
        r#"{"a":8,"b":9}"#,
        // The same keys, but a nested selection finds something in one
        // value and nothing in the next: values decide, not keys.
        r#"{"address":{"city":"Rio"},"a":1}"#,
        r#"{"address":{"street":"x"},"a":2}"#,
    ];
    let cases: &[&[(&str, &str)]] = &[
        &[("select", "a, b, missing")],
        &[("select", "b, a, b")],
        &[("drop", "a, c")],
        &[("rename", r#"{"a": "b", "b": "a"}"#)],
        &[("rename", r#"{"a": "b", "b": "c"}"#)],
        &[("rename", r#"{"a": "z"}"#), ("drop", "z")],
        &[("select", "a, name"), ("rename", r#"{"name": "a"}"#)],
        &[("set", r#"{"a": "a * 10", "n": "length(name)", "k": 7}"#)],
        &[
            ("select", "id, name, price"),
            (
                "set",
                r#"{"cents": "round(price * 100)", "café": "upper(`café`)"}"#,
            ),
            ("drop", "price"),
        ],
        &[("set", r#"{"x": "coalesce(b, 'none')"}"#), ("drop", "b")],
        &[(
            "select",
            "id, address.city, address.zip, missing.x, name.first",
        )],
        &[("select", "c.d.2.e, c.d.0, a, address.nope")],
        &[
            ("select", "address.city, internal.score, a"),
            ("rename", r#"{"a": "z"}"#),
            ("set", r#"{"s": "internal.score * 2"}"#),
        ],
        // A name selected in part and renamed: the tree path.
        &[
            ("select", "address.city"),
            ("rename", r#"{"address": "x"}"#),
        ],
        // A `case` without `else` that matches nothing leaves its field out.
        &[(
            "set",
            r#"{"b": "case when a = 1 then 'one' end", "big": "case a when 2 then true end"}"#,
        )],
    ];
    for params in cases {
        let spliced = run::<Project>(params, &inputs).expect("runs");
        let tree = run::<TreeProject>(params, &inputs).expect("runs");
        assert_eq!(spliced.json(), tree.json(), "values differ for {params:?}");
        // And in style: the same key order and the same text (inputs that
        // repeat a key aside: the splicing path copies untouched repeats,
        // the tree has one of each).
        let once: Vec<&str> = inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| ![2, 7, 8].contains(i))
            .map(|(_, s)| *s)
            .collect();
        let spliced = run::<Project>(params, &once).expect("runs");
        let tree = run::<TreeProject>(params, &once).expect("runs");
        assert_eq!(
            spliced.raw_values(),
            tree.raw_values(),
            "text differs for {params:?}"
        );
        assert_eq!(
            spliced.rejected().len(),
            tree.rejected().len(),
            "{params:?}"
        );
        for (s, t) in spliced.rejected().iter().zip(tree.rejected()) {
            assert_eq!(s.0, t.0, "{params:?}");
        }
    }
}

/// Once the watches have seen their first events (`ABSENT_AFTER`),
/// arithmetic in `set` is computed from the raw fields
/// (`Expr::number_in`): past that point, and with or without the host's
/// field tables, it must write what the tree path writes and dead-letter
/// what it dead-letters.
#[test]
fn arithmetic_after_the_first_events_is_the_tree_paths() {
    let prices = [
        "12.5",
        "51.47",
        "174.70",
        "-0.0",
        "-0",
        "7",
        "1e2",
        "0.1",
        "9007199254740993",
        "18446744073709551615",
        "1e400",
        "\"12\"",
        "null",
        "true",
        "[1]",
        "{\"a\":1}",
    ];
    let values: Vec<String> = (0..2 * sluice_expr::ABSENT_AFTER as usize + 40)
        .map(|i| {
            let price = prices[i % prices.len()];
            format!(
                r#"{{"id":{i},"price":{price},"qty":{},"price":{price}}}"#,
                i % 7
            )
        })
        .collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let cases: &[&[(&str, &str)]] = &[
        &[
            ("select", "id"),
            (
                "set",
                r#"{"cents": "round(price * 100)", "total": "price * qty - 1"}"#,
            ),
        ],
        &[(
            "set",
            r#"{"neg": "-price", "r": "round(price, -1) % 3", "a": "abs(qty - price)"}"#,
        )],
        &[
            ("drop", "id"),
            (
                "set",
                r#"{"q": "qty / 2", "z": "qty % 0", "p": "price / qty"}"#,
            ),
        ],
    ];
    for params in cases {
        for batch in [sluice_sdk::testing::batch_with_tables(&values), {
            let mut b = RawBatch::default();
            for v in &values {
                b.push_event(None, Some(v.as_bytes()), &[], 0, 0);
            }
            b
        }] {
            let spliced = run_batch::<Project>(params, &batch).expect("runs");
            let tree = run_batch::<TreeProject>(params, &batch).expect("runs");
            // As values: the splicing path copies an untouched repeated key,
            // the tree keeps one. `-1` and `-1.0` still differ as values.
            assert_eq!(spliced.json(), tree.json(), "{params:?}");
            let reasons = |o: &sluice_sdk::testing::TestOutput| -> Vec<u32> {
                o.rejected().iter().map(|r| r.0).collect()
            };
            assert_eq!(reasons(&spliced), reasons(&tree), "{params:?}");
            // `1e400` is one serde_json cannot hold: rejected past the
            // first events too.
            assert!(
                reasons(&spliced).iter().any(|&i| i as usize > 2 * prices.len()
                    && values[i as usize].contains("1e400")),
                "{params:?}: {:?}",
                spliced.rejected()
            );
        }
    }
}

#[test]
fn big_integers_and_number_text_survive_byte_for_byte() {
    let input = r#"{"id":9007199254740993,"u":18446744073709551615,"p":1.50,"e":1E+2,"x":1}"#;
    let out = run::<Project>(&[("select", "id, u, p, e")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"id":9007199254740993,"u":18446744073709551615,"p":1.50,"e":1E+2}"#]
    );
    let out = run::<Project>(
        &[("rename", r#"{"id": "order_id"}"#), ("drop", "x")],
        &[input],
    )
    .expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"u":18446744073709551615,"p":1.50,"e":1E+2,"order_id":9007199254740993}"#]
    );
    // A computed big integer is exact too.
    let out =
        run::<Project>(&[("select", "x"), ("set", r#"{"y": "id + 0"}"#)], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"x":1,"y":9007199254740993}"#]);
}

#[test]
fn nested_objects_and_escaped_text_pass_unchanged() {
    let input = "{\"k\\u00e9y\" : {\"deep\": [1, {\"x\": \"\\\"q\\\"\"}], \"s\":\"\u{1f600}\\n\"},\"drop\":0}";
    let out = run::<Project>(&[("drop", "drop")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec!["{\"k\\u00e9y\":{\"deep\": [1, {\"x\": \"\\\"q\\\"\"}], \"s\":\"\u{1f600}\\n\"}}"]
    );
    let out = run::<Project>(&[("select", "`k\u{e9}y`")], &[input]).expect("runs");
    assert_eq!(
        out.json(),
        vec![json!({"k\u{e9}y": {"deep": [1, {"x": "\"q\""}], "s": "\u{1f600}\n"}})]
    );
    let out = run::<Project>(&[("rename", "{\"k\u{e9}y\": \"n\\\"ew\"}")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec!["{\"drop\":0,\"n\\\"ew\":{\"deep\": [1, {\"x\": \"\\\"q\\\"\"}], \"s\":\"\u{1f600}\\n\"}}"]
    );
}

#[test]
fn duplicate_keys_last_wins_for_touched_fields() {
    let input = r#"{"a":1,"b":2,"a":3,"b":4,"c":5}"#;
    let out = run::<Project>(&[("select", "a, c")], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"a":3,"c":5}"#]);
    let out = run::<Project>(&[("drop", "c")], &[input]).expect("runs");
    // Untouched duplicates are copied as they are.
    assert_eq!(out.raw_values(), vec![r#"{"a":1,"b":2,"a":3,"b":4}"#]);
    let out = run::<Project>(&[("rename", r#"{"a": "z"}"#)], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"b":2,"b":4,"c":5,"z":3}"#]);
    let out = run::<Project>(&[("set", r#"{"b": "a + 1"}"#)], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"a":1,"a":3,"c":5,"b":4}"#]);
}

#[test]
fn malformed_values_are_dead_lettered_with_a_reason() {
    let out = run::<Project>(
        &[("select", "a")],
        &[
            r#"{"a":1,"b":[1,2}"#,
            "{\"a\":\"\\q\"}",
            r#"{"a":1}"#,
            r#"{"a":1} {}"#,
        ],
    )
    .expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"a":1}"#]);
    assert_eq!(
        out.rejected(),
        vec![
            (
                0,
                "value is not valid JSON: expected `,` or `]` at byte 15".to_string()
            ),
            (
                1,
                "value is not valid JSON: invalid escape at byte 7".to_string()
            ),
            (
                3,
                "value is not valid JSON: trailing characters at byte 8".to_string()
            ),
        ]
    );
}

#[test]
fn nested_selections_read_the_last_of_duplicate_and_escaped_names_in_select_order() {
    // Read in one pass (up to eight selections under one name) or name by
    // name (more): the same fields either way.
    let input = r#"{"s":{"a":1,"b":2,"a":3,"c\u0061":4,"z":{"y":1,"y":2},"a":5}}"#;
    let out = run::<Project>(&[("select", "s.z.y, s.ca, s.a, s.nope")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"s":{"z":{"y":2},"ca":4,"a":5}}"#]
    );
    // Presence: a leaf is there when its name occurs; a nested selection
    // only when the last occurrence of its parent has it.
    let input = r#"{"id":1,"s":{"z":{"y":1},"a":0,"z":{"x":1}}}"#;
    let out = run::<Project>(&[("select", "id, s.z.y")], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"id":1}"#]);
    let out = run::<Project>(&[("select", "id, s.a, s.z.x")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"id":1,"s":{"a":0,"z":{"x":1}}}"#]
    );
    let names: Vec<String> = (0..10).rev().map(|i| format!("s.k{i}")).collect();
    let fields: Vec<String> = (0..10).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let input = format!(r#"{{"s":{{{},"k3":33}}}}"#, fields.join(","));
    let out = run::<Project>(&[("select", &names.join(", "))], &[&input]).expect("runs");
    let want: Vec<String> = (0..10)
        .rev()
        .map(|i| format!(r#""k{i}":{}"#, if i == 3 { 33 } else { i }))
        .collect();
    assert_eq!(
        out.raw_values(),
        vec![format!(r#"{{"s":{{{}}}}}"#, want.join(","))]
    );
}

#[test]
fn nested_select_paths_are_spliced_around_raw_leaves() {
    let input = r#"{"id":9007199254740993,"shipping":{"city":"Köln","zip":"50667","geo":{"lat":50.9375,"lon":6.9603}},"items":[{"sku":"A"}]}"#;
    let out = run::<Project>(
        &[(
            "select",
            "id, shipping.city, shipping.geo.lat, items.0.sku, shipping.nope.x",
        )],
        &[input],
    )
    .expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![
            r#"{"id":9007199254740993,"shipping":{"city":"Köln","geo":{"lat":50.9375}},"items":{"0":{"sku":"A"}}}"#
        ]
    );
    // The parent is written only when a selected leaf exists.
    let out = run::<Project>(&[("select", "id, shipping.nope")], &[input]).expect("runs");
    assert_eq!(out.raw_values(), vec![r#"{"id":9007199254740993}"#]);
}

#[test]
fn a_case_without_else_that_matches_nothing_leaves_the_field_out() {
    let params = [(
        "set",
        r#"{"flagged": "case when amount > 100 then true end", "tier": "case when amount > 100 then 'big' else 'small' end"}"#,
    )];
    let big = one(&params, r#"{"amount":500,"flagged":"old"}"#);
    assert_eq!(big, json!({"amount": 500, "flagged": true, "tier": "big"}));
    // Not `"flagged": null`, and an input field of that name goes too.
    let small = one(&params, r#"{"amount":5,"flagged":"old"}"#);
    assert_eq!(small, json!({"amount": 5, "tier": "small"}));
    let tree = run::<TreeProject>(&params, &[r#"{"amount":5,"flagged":"old"}"#]).expect("runs");
    assert_eq!(tree.json(), vec![json!({"amount": 5, "tier": "small"})]);
}

#[test]
fn a_misspelled_selected_or_read_field_is_reported_once_with_the_closest_name() {
    let events: Vec<String> = (0..120)
        .map(|i| format!(r#"{{"order_id":"o{i}","price":{i}.5,"currency":"usd"}}"#))
        .collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    sluice_sdk::log::take_captured();
    let out = run::<Project>(
        &[
            ("select", "order_id, curency"),
            (
                "set",
                r#"{"cents": "round(prise * 100)", "cheap": "price < '10'"}"#,
            ),
        ],
        &events,
    )
    .expect("runs");
    assert_eq!(out.values().len(), 120);
    let logged: Vec<String> = sluice_sdk::log::take_captured_lines();
    assert_eq!(
        logged,
        vec![
            "Warn `set: {cheap: price < '10'}`: `<` compares field `price` (a number in this event) \
             with a string \"10\", which is never true; write both as the same type",
            "Warn `select`: field `curency` is absent from all 100 events so far, so the output \
             leaves it out; did you mean `currency`?",
            "Warn `set: {cents: round(prise * 100)}`: field `prise` is absent from all 100 events \
             so far, so it reads as null; did you mean `price`?",
        ]
    );
}

#[test]
fn a_stream_shorter_than_the_threshold_hears_of_absent_fields_at_its_end_nested_ones_too() {
    let events: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"id":{i},"price":{i},"shipping":{{"city":"Recife"}}}}"#))
        .collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    sluice_sdk::log::take_captured();
    let out = run::<Project>(
        &[
            ("select", "id, shipping.ctiy, shipping.city"),
            ("set", r#"{"cents": "prise * 100"}"#),
        ],
        &events,
    )
    .expect("runs");
    assert_eq!(out.values().len(), 10);
    let logged: Vec<String> = sluice_sdk::log::take_captured_lines();
    assert_eq!(
        logged,
        vec![
            "Warn `select`: field `shipping.ctiy` is absent from all 10 events, so the output \
             leaves it out; did you mean `shipping.city`?",
            "Warn `set: {cents: prise * 100}`: field `prise` is absent from all 10 events, so it \
             reads as null; did you mean `price`?",
        ]
    );
}

#[test]
fn strict_dead_letters_a_missing_selected_field_and_a_mismatched_set_on_both_paths() {
    let events = [
        r#"{"id":1,"price":5,"shipping":{"city":"Recife"}}"#,
        r#"{"id":2,"price":5,"shipping":{"zip":"50000"}}"#,
        r#"{"id":3,"price":"5","shipping":{"city":"Natal"}}"#,
        r#"{"iid":4,"price":5,"shipping":{"city":"Natal"}}"#,
        r#"{"id":5,"price":500,"shipping":{"city":"Natal"},"note":"x"}"#,
    ];
    let strict = [
        ("select", "id, shipping.city"),
        (
            "set",
            r#"{"cheap": "price < 10", "note": "coalesce(note, 'none')"}"#,
        ),
        ("strict", "true"),
    ];
    // A rename of a nested path sends `project` down the tree path.
    let tree_params = [
        ("select", "id, shipping.city"),
        ("rename", r#"{"shipping.city": "city"}"#),
        (
            "set",
            r#"{"cheap": "price < 10", "note": "coalesce(note, 'none')"}"#,
        ),
        ("strict", "true"),
    ];
    let spliced = run::<Project>(&strict, &events).expect("runs");
    let tree = run::<TreeProject>(&tree_params, &events).expect("runs");
    let expected_rejections = vec![
        (
            1,
            "`select`: field `shipping.city` is absent from this event, so the output leaves it \
             out; did you mean `shipping.zip`?"
                .to_string(),
        ),
        (
            2,
            "`set: {cheap: price < 10}`: `<` compares field `price` (a string in this event) \
             with a number 10, which is never true; write both as the same type"
                .to_string(),
        ),
        (
            3,
            "`select`: field `id` is absent from this event, so the output leaves it out; did \
             you mean `iid`?"
                .to_string(),
        ),
    ];
    assert_eq!(spliced.rejected(), expected_rejections);
    assert_eq!(tree.rejected(), expected_rejections);
    // The correct events flow, `note` (read through coalesce) may be absent.
    assert_eq!(
        spliced.json(),
        vec![
            json!({"id": 1, "shipping": {"city": "Recife"}, "cheap": true, "note": "none"}),
            json!({"id": 5, "shipping": {"city": "Natal"}, "cheap": false, "note": "x"}),
        ]
    );
    assert_eq!(
        tree.json(),
        vec![
            json!({"id": 1, "shipping": {}, "city": "Recife", "cheap": true, "note": "none"}),
            json!({"id": 5, "shipping": {}, "city": "Natal", "cheap": false, "note": "x"}),
        ]
    );
    // Without `strict` nothing is rejected.
    let lax = run::<Project>(&strict[..2], &events).expect("runs");
    assert!(lax.rejected().is_empty());
    assert_eq!(lax.values().len(), 5);
}

/// Strict mode keeps checking after the watch has reported: every event
/// missing a field a `set` reads is rejected, not only the first hundred.
#[test]
fn strict_rejects_past_the_watchs_first_events() {
    let events: Vec<String> = (0..150).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let params = [
        ("select", "id"),
        ("set", r#"{"cents": "price * 100"}"#),
        ("strict", "true"),
    ];
    let out = run::<Project>(&params, &events).expect("runs");
    assert_eq!(out.rejected().len(), 150);
    assert!(out.values().is_empty());
}

#[test]
fn the_tree_path_writes_in_the_inputs_style_unless_canonical_is_asked() {
    // A nested rename takes the tree path.
    let input = r#"{"z":1.50,"a":{"k":"caf\u00e9","b":2},"m":[3, 4]}"#;
    let params = [("rename", r#"{"a.b": "a.c"}"#)];
    let out = run::<Project>(&params, &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"z":1.50,"a":{"k":"caf\u00e9","c":2},"m":[3, 4]}"#]
    );
    let canonical = [params[0], ("style", "canonical")];
    let out = run::<Project>(&canonical, &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"a":{"c":2,"k":"café"},"m":[3,4],"z":1.5}"#]
    );
    // Canonical on what would be the splicing path too.
    let out = run::<Project>(&[("drop", "m"), ("style", "canonical")], &[input]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![r#"{"a":{"b":2,"k":"café"},"z":1.5}"#]
    );
    assert_eq!(
        init_error(&[("drop", "m"), ("style", "sorted")]),
        "parameter `style`: expected `preserve` (the default: keys in the input's order, values as the input wrote them) or `canonical` (keys sorted, numbers and strings re-serialized), found `sorted`"
    );
}

#[test]
fn key_re_keys_events_by_an_expression_of_the_input() {
    let params = [
        ("select", "id, name"),
        ("key", "lower(address.city) || '-' || id"),
    ];
    let out = run::<Project>(&params, &[PERSON]).expect("runs");
    assert_eq!(out.keys(), vec![Some("recife-7".to_string())]);
    assert_eq!(out.json(), vec![json!({"id": 7, "name": "Ana"})]);
    // A number is its JSON text; null or an absent field gives no key.
    let out = run::<Project>(
        &[("key", "id")],
        &[r#"{"id":7}"#, r#"{"id":null}"#, r#"{"other":1}"#],
    )
    .expect("runs");
    assert_eq!(out.keys(), vec![Some("7".to_string()), None, None]);
    assert_eq!(
        out.json(),
        vec![json!({"id": 7}), json!({"id": null}), json!({"other": 1})]
    );
    assert!(init_error(&[("key", "id +")]).contains("parameter `key`"));
}

#[test]
fn selected_fields_next_to_each_other_keep_their_text_with_or_without_spaces() {
    // Runs of fields kept as they are go out in one copy when the input is
    // compact; spaces or an escaped key make it field by field. The bytes
    // are the same: each field's key as written, its raw value, no spaces.
    let params = [("select", "a, b, c, e"), ("set", r#"{"n": "b + 1"}"#)];
    let inputs = [
        r#"{"a":[1, 2],"b":2,"c":"x","d":0,"e":1.50}"#,
        r#"{"a": [1, 2], "b" :2 ,"c":"x","d":0,"e":1.50}"#,
        "{\"a\":[1, 2],\"\\u0062\":2,\"c\":\"x\",\"d\":0,\"e\":1.50}",
        r#"{"e":1.50,"c":"x","b":2,"a":[1, 2]}"#,
    ];
    let out = run::<Project>(&params, &inputs).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![
            r#"{"a":[1, 2],"b":2,"c":"x","e":1.50,"n":3}"#,
            r#"{"a":[1, 2],"b":2,"c":"x","e":1.50,"n":3}"#,
            "{\"a\":[1, 2],\"\\u0062\":2,\"c\":\"x\",\"e\":1.50,\"n\":3}",
            r#"{"a":[1, 2],"b":2,"c":"x","e":1.50,"n":3}"#,
        ]
    );
    // Without select: every field but the dropped one, in input order.
    let out = run::<Project>(&[("drop", "d")], &inputs[..2]).expect("runs");
    assert_eq!(
        out.raw_values(),
        vec![
            r#"{"a":[1, 2],"b":2,"c":"x","e":1.50}"#,
            r#"{"a":[1, 2],"b":2,"c":"x","e":1.50}"#,
        ]
    );
}

/// What `filter` then `project` make of one value: the filter's rejection,
/// nothing if it drops the value, else what `project` makes of it.
fn filter_then_project(
    condition: &str,
    strict: &str,
    reshape: &[(&str, &str)],
    value: &str,
    tables: bool,
) -> (Vec<String>, Vec<String>) {
    let batch = |v: &str| {
        if tables {
            sluice_sdk::testing::batch_with_tables(&[v])
        } else {
            let mut b = RawBatch::default();
            b.push_event(None, Some(v.as_bytes()), &[], 0, 0);
            b
        }
    };
    let filtered = run_batch::<sluice_plugin_filter::Filter>(
        &[("where", condition), ("strict", strict)],
        &batch(value),
    )
    .expect("filter runs");
    let reasons = |o: &sluice_sdk::testing::TestOutput| -> Vec<String> {
        o.rejected().into_iter().map(|(_, r)| r).collect()
    };
    let kept = filtered.raw_values();
    if !filtered.rejected().is_empty() || kept.is_empty() {
        return (kept, reasons(&filtered));
    }
    let mut params = reshape.to_vec();
    params.push(("strict", strict));
    let projected = run_batch::<Project>(&params, &batch(&kept[0])).expect("project runs");
    (projected.raw_values(), reasons(&projected))
}

#[test]
fn where_keeps_drops_and_rejects_exactly_as_a_filter_stage_in_front() {
    let values = [
        r#"{"id":1,"currency":"usd","price":1.5}"#,
        r#"{"id":2,"currency":"aud","price":9.99}"#,
        r#"{"id":3,"price":2}"#,
        r#"{"id":4,"currency":5,"price":2}"#,
        r#"{"id":5,"currency":"aud","currency":"eur","price":0.5}"#,
        r#"{"id":6,"c\u0075rrency":"aud","price":3}"#,
        r#"{"id":7,"currency":null,"price":12345678901234567890}"#,
        "{\"id\":8,\"currency\":\"caf\\u00e9 😀\",\"price\":1e2}",
        r#"[1,2,3]"#,
        r#""aud""#,
        r#"{"id":9,"currency":"usd""#,
        "not json",
        r#"{"id":10,"currency":"usd","price":"x"}"#,
    ];
    let reshapes: [&[(&str, &str)]; 3] = [
        &[
            ("select", "id, currency"),
            ("set", r#"{"cents":"round(price * 100)"}"#),
        ],
        &[("drop", "price"), ("rename", r#"{"id":"order"}"#)],
        &[("set", r#"{"tag":"upper(currency)"}"#), ("key", "id")],
    ];
    let conditions = [
        "currency != 'aud'",
        "round(price * 100) > 150 or upper(currency) = 'EUR'",
        "currency is null",
    ];
    let mut compared = 0;
    for condition in conditions {
        for strict in ["false", "true"] {
            for reshape in reshapes {
                for value in values {
                    for tables in [false, true] {
                        let want = filter_then_project(condition, strict, reshape, value, tables);
                        let mut params = reshape.to_vec();
                        params.extend([("where", condition), ("strict", strict)]);
                        let batch = if tables {
                            sluice_sdk::testing::batch_with_tables(&[value])
                        } else {
                            let mut b = RawBatch::default();
                            b.push_event(None, Some(value.as_bytes()), &[], 0, 0);
                            b
                        };
                        let out = run_batch::<Project>(&params, &batch).expect("runs");
                        let got = (
                            out.raw_values(),
                            out.rejected().into_iter().map(|(_, r)| r).collect(),
                        );
                        assert_eq!(
                            got, want,
                            "where `{condition}` strict {strict}, {reshape:?}, tables {tables}, on {value}"
                        );
                        compared += 1;
                    }
                }
            }
        }
    }
    assert_eq!(compared, 3 * 2 * 3 * values.len() * 2);
}

#[test]
fn where_lets_tombstones_through_and_its_errors_name_the_parameter() {
    let mut batch = RawBatch::default();
    batch.push_event(Some(b"k"), None, &[], 0, 0);
    batch.push_event(None, Some(br#"{"a":1}"#), &[], 0, 0);
    let out = run_batch::<Project>(&[("select", "a"), ("where", "a > 1")], &batch).expect("runs");
    assert_eq!(out.raw_values(), vec!["null".to_string()]);
    assert_eq!(out.keys(), vec![Some("k".to_string())]);
    let err = init_error(&[("select", "a"), ("where", "a >")]);
    assert!(err.starts_with("parameter `where`: "), "{err}");
    // `where` alone reshapes nothing: that is a `filter` stage.
    assert_eq!(
        init_error(&[("where", "a > 1")]),
        "at least one parameter is required: select, drop, rename, set, key (`where` alone reshapes nothing: that is the `filter` plugin)"
    );
}
