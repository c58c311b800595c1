//! # sluice-plugin-filter
//!
//! Keeps the events whose JSON value matches the `where` expression (see
//! [`sluice_expr`] for the language) and drops the others. Tombstones are
//! always forwarded unchanged; a value that is not JSON is rejected. Each value
//! is checked once by the SDK's zero-copy view ([`sluice_sdk::json`]); only
//! the top-level fields the condition reads are built as values, and kept
//! events are forwarded byte for byte, never re-serialized (big integers,
//! number formatting, key order and duplicate keys all pass unchanged; the
//! condition sees the last occurrence of a duplicated key).
//!
//! Most conditions (top-level fields compared with literals, joined by
//! `and`, `or`, `not`) are answered from the fields' raw text, with no value
//! built ([`sluice_expr::Expr::read_quick`]); once the watch has seen its
//! first events, their fields are found in the host's field table in place,
//! without a view ([`sluice_sdk::Event::table_lookup`]). Both give the general
//! path's answer, which any other condition or value takes.
//!
//! The type is public so a host benchmark can run the same logic natively
//! through [`sluice_sdk::run_transform`].
#![deny(missing_docs)]

use sluice_expr::{Condition, Expr};
use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The `filter` transform: forwards the events matching `where`.
#[derive(Debug, Clone)]
pub struct Filter {
    condition: Condition,
}

impl Filter {
    /// The parsed `where` expression.
    pub fn condition(&self) -> &Expr {
        self.condition.expr()
    }
}

impl Transform for Filter {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["where", "strict", sluice_expr::UDFS_PARAM])?;
        let strict = params.bool_or("strict", false)?;
        let source = params.required("where")?;
        let udfs = sluice_expr::udf_names(params.get(sluice_expr::UDFS_PARAM));
        Ok(Filter {
            condition: Condition::new(source, &udfs, strict)?,
        })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        // Tombstones are never filtered out. Kept events go out as their
        // original bytes: no re-serialization.
        if event.is_tombstone() || self.condition.keeps(event)? {
            out.forward();
        }
        Ok(())
    }

    fn finish(&mut self) {
        self.condition.finish();
    }
}

sluice_sdk::export_transform!(Filter);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::abi::RawBatch;
    use sluice_sdk::testing::{batch_with_tables, run, run_batch, TestError};

    fn init_error(params: &[(&str, &str)]) -> String {
        match run::<Filter>(params, &[]) {
            Err(TestError::Init(msg)) => msg,
            other => panic!("expected an init error, got {other:?}"),
        }
    }

    #[test]
    fn keeps_matching_events_byte_for_byte() {
        let input = [
            r#"{"name":"ana","birth_date":"2003-01-02","email":"a@x.io"}"#,
            r#"{"name":"bob","birth_date":"1990-05-06","email":"b@x.io"}"#,
            r#"{"name":"cy","birth_date":"2001-07-08","email":null}"#,
            r#"{ "name" : "di", "birth_date":"2000-01-01", "email":"d@x.io" }"#,
            r#"{"name":"ed"}"#,
        ];
        let out = run::<Filter>(
            &[("where", "birth_date >= '2000-01-01' and email is not null")],
            &input,
        )
        .expect("runs");
        assert_eq!(out.raw_values(), vec![input[0], input[3]]);
        assert!(out.rejected().is_empty());
        let parents: Vec<u32> = out.raw.events.events.iter().map(|e| e.parent).collect();
        assert_eq!(parents, vec![0, 3]);
    }

    /// With the host's field tables (read in place once the watch has seen
    /// its first events) and without them (scanned): the same events kept,
    /// the same rejections, the same warnings, over values of every kind,
    /// escaped keys, duplicates and non-objects, and a number meeting a
    /// string only after the watch's first hundred events.
    #[test]
    fn tables_read_in_place_answer_as_scanning_does() {
        let values = [
            r#"{"amount":5,"currency":"usd"}"#,
            r#"{"amount":1500,"currency":"aud","note":"x"}"#,
            r#"{"currency":"eur","amount":999}"#,
            r#"{"amount":12.5,"currency":"usd"}"#,
            r#"{"amount":null,"currency":"gbp"}"#,
            r#"{"amou\u006et":7,"currency":"usd"}"#,
            r#"{"amount":7,"currency":"usd","amount":2000}"#,
            r#"{"amount":1e400,"currency":"usd"}"#,
            r#"{"currency":"us\u0064","amount":1}"#,
            r#"{"other":true}"#,
            r#"[1,2]"#,
            r#""text""#,
        ];
        let mut events: Vec<String> = (0..300)
            .map(|i| values[i % values.len()].to_string())
            .collect();
        events[250] = r#"{"amount":"5","currency":"usd"}"#.to_string();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        for condition in [
            "amount <= 1000 and currency != 'aud'",
            "currency in ('usd', 'eur') or amount is null",
            "not (amount > 100)",
            "amount < 10.5",
        ] {
            let params = [("where", condition)];
            sluice_sdk::log::take_captured();
            let scanned = run::<Filter>(&params, &events).expect("runs");
            let heard = sluice_sdk::log::take_captured();
            let tabled = run_batch::<Filter>(&params, &batch_with_tables(&events)).expect("runs");
            let also = sluice_sdk::log::take_captured();
            assert_eq!(tabled.raw_values(), scanned.raw_values(), "{condition}");
            assert_eq!(tabled.rejected(), scanned.rejected(), "{condition}");
            assert_eq!(also, heard, "{condition}");
            assert!(!scanned.raw_values().is_empty(), "{condition}");
        }
        // The mismatch at event 250 was heard on the table path too.
        let params = [("where", "amount <= 1000")];
        run_batch::<Filter>(&params, &batch_with_tables(&events)).expect("runs");
        let heard = sluice_sdk::log::take_captured();
        assert!(
            heard.iter().any(|(_, m)| m.contains("which is never true")),
            "{heard:?}"
        );
    }

    #[test]
    fn a_misspelled_field_is_reported_once_with_the_closest_name() {
        let events: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"amount":{i},"currency":"usd"}}"#))
            .collect();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        sluice_sdk::log::take_captured();
        let out = run::<Filter>(&[("where", "amout <= 1000")], &events).expect("runs");
        assert!(out.values().is_empty());
        let logged = sluice_sdk::log::take_captured();
        assert_eq!(
            logged,
            vec![(
                sluice_sdk::log::Level::Warn,
                "`where: amout <= 1000`: field `amout` is absent from all 100 events so far, so it \
                 reads as null; did you mean `amount`?"
                    .to_string()
            )]
        );
    }

    #[test]
    fn a_number_compared_with_a_string_is_reported_once() {
        let events = [r#"{"amount":5}"#, r#"{"amount":7}"#, r#"{"amount":"10"}"#];
        sluice_sdk::log::take_captured();
        let out = run::<Filter>(&[("where", "amount <= '1000'")], &events).expect("runs");
        // The string event compares as text and matches; the numbers never do.
        assert_eq!(out.values(), vec![events[2]]);
        let logged = sluice_sdk::log::take_captured();
        assert_eq!(
            logged,
            vec![(
                sluice_sdk::log::Level::Warn,
                "`where: amount <= '1000'`: `<=` compares field `amount` (a number in this \
                 event) with a string \"1000\", which is never true; write both as the same type"
                    .to_string()
            )]
        );
    }

    #[test]
    fn a_stream_shorter_than_the_threshold_hears_of_the_typo_at_its_end() {
        let events: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"amount":{i},"currency":"usd"}}"#))
            .collect();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        sluice_sdk::log::take_captured();
        let out = run::<Filter>(&[("where", "amout <= 1000")], &events).expect("runs");
        assert!(out.values().is_empty());
        assert_eq!(
            sluice_sdk::log::take_captured(),
            vec![(
                sluice_sdk::log::Level::Warn,
                "`where: amout <= 1000`: field `amout` is absent from all 10 events, so it \
                 reads as null; did you mean `amount`?"
                    .to_string()
            )]
        );
        // A field some event has is not reported at the end either.
        let out = run::<Filter>(
            &[("where", "note = 'x'")],
            &[r#"{"amount":1}"#, r#"{"note":"x"}"#],
        )
        .expect("runs");
        assert_eq!(out.values(), vec![r#"{"note":"x"}"#]);
        assert_eq!(sluice_sdk::log::take_captured(), vec![]);
    }

    #[test]
    fn strict_dead_letters_absent_fields_and_mismatched_types_with_the_reason() {
        let events = [
            r#"{"amount":5,"currency":"usd"}"#,
            r#"{"amuont":7,"currency":"usd"}"#,
            r#"{"amount":"9","currency":"usd"}"#,
            r#"{"amount":2000,"currency":"usd"}"#,
            "[1,2]",
        ];
        let out = run::<Filter>(&[("where", "amount <= 1000"), ("strict", "true")], &events)
            .expect("runs");
        // Correct events still flow (or are filtered out) as before.
        assert_eq!(out.values(), vec![events[0]]);
        let rejected = out.rejected();
        assert_eq!(
            rejected,
            vec![
                (
                    1,
                    "`where: amount <= 1000`: field `amount` is absent from this event, so it \
                     reads as null; did you mean `amuont`?"
                        .to_string()
                ),
                (
                    2,
                    "`where: amount <= 1000`: `<=` compares field `amount` (a string in this \
                     event) with a number 1000, which is never true; write both as the same type"
                        .to_string()
                ),
                (
                    4,
                    "`where: amount <= 1000`: the value is not a JSON object: field `amount` is \
                     absent, so it reads as null"
                        .to_string()
                ),
            ]
        );
        // Not strict: the same events are filtered out without a trace.
        let out = run::<Filter>(&[("where", "amount <= 1000")], &events).expect("runs");
        assert_eq!(out.values(), vec![events[0]]);
        assert!(out.rejected().is_empty());
    }

    #[test]
    fn strict_lets_a_field_tested_for_null_be_absent() {
        let events = [r#"{"amount":5}"#, r#"{"amount":5,"note":"x"}"#];
        let out = run::<Filter>(
            &[
                ("where", "note is null and amount < 10"),
                ("strict", "true"),
            ],
            &events,
        )
        .expect("runs");
        assert_eq!(out.values(), vec![events[0]]);
        assert!(out.rejected().is_empty());
        let out = run::<Filter>(
            &[
                ("where", "coalesce(note, 'none') = 'none'"),
                ("strict", "true"),
            ],
            &events,
        )
        .expect("runs");
        assert_eq!(out.values(), vec![events[0]]);
        assert!(out.rejected().is_empty());
    }

    #[test]
    fn strict_on_events_with_huge_keys_suggests_the_close_one() {
        // The bound that keeps this cheap is tested in sluice-expr's watch.
        let huge = "amount".repeat(200_000);
        let event = format!(r#"{{"{huge}":1,"amuont":2}}"#);
        let events: Vec<&str> = std::iter::repeat_n(event.as_str(), 50).collect();
        let out =
            run::<Filter>(&[("where", "amount < 5"), ("strict", "true")], &events).expect("runs");
        let rejected = out.rejected();
        assert_eq!(rejected.len(), 50);
        assert!(
            rejected[0].1.ends_with("did you mean `amuont`?"),
            "{}",
            rejected[0].1
        );
    }

    #[test]
    fn strict_must_be_true_or_false() {
        assert_eq!(
            init_error(&[("where", "true"), ("strict", "yes")]),
            "parameter `strict`: expected `true` or `false`, found `yes`"
        );
    }

    #[test]
    fn a_correct_condition_on_fields_that_exist_reports_nothing() {
        let events: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"amount":{i},"note":"x"}}"#))
            .collect();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        sluice_sdk::log::take_captured();
        let out =
            run::<Filter>(&[("where", "amount <= 10 and note = 'x'")], &events).expect("runs");
        assert_eq!(out.values().len(), 11);
        assert_eq!(sluice_sdk::log::take_captured(), vec![]);
    }

    #[test]
    fn youth_filter_with_case() {
        let out = run::<Filter>(
            &[(
                "where",
                "case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end = 'JOVEM'",
            )],
            &[
                r#"{"nascimento":"2004-02-03"}"#,
                r#"{"nascimento":"1980-02-03"}"#,
            ],
        )
        .expect("runs");
        assert_eq!(out.values(), vec![r#"{"nascimento":"2004-02-03"}"#]);
    }

    #[test]
    fn null_results_drop_the_event() {
        let out = run::<Filter>(
            &[("where", "amount > 10")],
            &[
                r#"{"amount":null}"#,
                r#"{}"#,
                r#"{"amount":"20"}"#,
                r#"{"amount":11}"#,
                "[1]",
                "3",
            ],
        )
        .expect("runs");
        assert_eq!(out.values(), vec![r#"{"amount":11}"#]);
        assert!(out.rejected().is_empty());
    }

    #[test]
    fn rejects_values_that_are_not_json() {
        let out =
            run::<Filter>(&[("where", "true")], &[r#"{"ok":1}"#, "not json", "{"]).expect("runs");
        assert_eq!(out.values(), vec![r#"{"ok":1}"#]);
        let rejected = out.rejected();
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0].0, 1);
        assert!(
            rejected[0].1.starts_with("value is not valid JSON"),
            "{}",
            rejected[0].1
        );
        assert_eq!(rejected[1].0, 2);
    }

    #[test]
    fn forwards_tombstones_with_key_and_headers() {
        let mut batch = RawBatch {
            streams: vec!["in".to_string()],
            ..RawBatch::default()
        };
        batch.push_event(Some(b"k1"), None, &[("h", b"v")], 42, 0);
        batch.push_event(Some(b"k2"), Some(br#"{"a":1}"#), &[], 43, 0);
        batch.push_event(Some(b"k3"), Some(br#"{"a":2}"#), &[], 44, 0);
        let out = run_batch::<Filter>(&[("where", "a = 2")], &batch).expect("runs");
        assert_eq!(out.values(), vec!["null", r#"{"a":2}"#]);
        assert_eq!(
            out.keys(),
            vec![Some("k1".to_string()), Some("k3".to_string())]
        );
        let first = out.raw.events.events[0];
        assert_eq!(first.value, None);
        assert_eq!(first.timestamp_ms, 42);
        assert_eq!(first.headers.len, 1);
    }

    #[test]
    fn where_is_required() {
        assert_eq!(init_error(&[]), "parameter `where` is required");
    }

    #[test]
    fn bad_expression_names_parameter_and_position() {
        assert_eq!(
            init_error(&[("where", "birth_date >=")]),
            "parameter `where`: expected a value after '>=' at column 14 in `birth_date >=`"
        );
        assert!(init_error(&[("where", "a = 'x")]).contains("unterminated string"));
    }

    #[test]
    fn unknown_parameters_fail() {
        assert_eq!(
            init_error(&[("where", "true"), ("wehre", "x")]),
            "unknown parameter `wehre`; allowed: where, strict, udfs"
        );
    }

    #[test]
    fn in_and_functions() {
        let out = run::<Filter>(
            &[("where", "lower(country) in ('br', 'pt') and not (age < 18)")],
            &[
                r#"{"country":"BR","age":30}"#,
                r#"{"country":"br","age":10}"#,
                r#"{"country":"US","age":30}"#,
                r#"{"country":"Pt","age":18}"#,
            ],
        )
        .expect("runs");
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"country":"BR","age":30}"#,
                r#"{"country":"Pt","age":18}"#
            ]
        );
    }

    #[test]
    fn kept_events_pass_byte_for_byte_big_ints_unicode_nesting() {
        let input = [
            r#"{"id":9007199254740993,"cur":"usd","n":{"deep":[1.50,{"x":null}]}}"#,
            r#"{"id":18446744073709551615,"cur":"aud"}"#,
            "{\"caf\\u00e9\":\"\\\"\u{1f600}\",\"cur\":\"eur\",\"big\":1e400}",
            r#"{"id":-9223372036854775808,"cur":"gbp"}"#,
        ];
        let out = run::<Filter>(&[("where", "cur != 'aud'")], &input).expect("runs");
        assert_eq!(out.raw_values(), vec![input[0], input[2], input[3]]);
        // A condition on a big integer compares it exactly.
        let out = run::<Filter>(&[("where", "id = 9007199254740993")], &input).expect("runs");
        assert_eq!(out.raw_values(), vec![input[0]]);
        // Escaped keys are matched by their value.
        let out = run::<Filter>(&[("where", "`caf\u{e9}` is not null")], &input).expect("runs");
        assert_eq!(out.raw_values(), vec![input[2]]);
    }

    #[test]
    fn duplicate_keys_the_condition_sees_the_last() {
        let input = [r#"{"a":1,"a":2}"#, r#"{"a":2,"a":1}"#];
        let out = run::<Filter>(&[("where", "a = 2")], &input).expect("runs");
        // Passed through unchanged, duplicates included.
        assert_eq!(out.raw_values(), vec![input[0]]);
    }

    #[test]
    fn malformed_values_are_rejected_with_where_the_problem_is() {
        let out = run::<Filter>(
            &[("where", "cur = 'usd'")],
            &[
                r#"{"cur":"usd","x":[1,}"#,
                r#"{"cur":"usd"} trailing"#,
                "{\"cur\":\"usd\",\"s\":\"\\ud800\"}",
                r#"{"cur":"usd","big":1e400}"#,
                r#"{"cur":1e400}"#,
            ],
        )
        .expect("runs");
        // Unread out-of-range numbers pass (they are valid JSON); a read one
        // cannot be evaluated and is rejected.
        assert_eq!(out.raw_values(), vec![r#"{"cur":"usd","big":1e400}"#]);
        let rejected = out.rejected();
        let indexes: Vec<u32> = rejected.iter().map(|r| r.0).collect();
        assert_eq!(indexes, vec![0, 1, 2, 4]);
        assert_eq!(
            rejected[0].1,
            "value is not valid JSON: expected a value at byte 20"
        );
        assert_eq!(
            rejected[1].1,
            "value is not valid JSON: trailing characters at byte 14"
        );
        assert!(rejected[2].1.contains("surrogate"), "{}", rejected[2].1);
        assert!(
            rejected[3]
                .1
                .starts_with("value is not valid JSON: number out of range"),
            "{}",
            rejected[3].1
        );
    }

    fn shout(args: &[serde_json::Value]) -> Result<serde_json::Value, String> {
        match args {
            [serde_json::Value::String(s)] => Ok(serde_json::json!(s.to_uppercase())),
            _ => Err("shout takes one string".into()),
        }
    }

    #[test]
    fn a_failed_udf_call_rejects_the_event_even_when_the_condition_ignores_it() {
        sluice_sdk::udf::register_native("shout", shout);
        let out = run::<Filter>(
            &[("where", "shout(name) = 'ADA' or true"), ("udfs", "shout")],
            &[r#"{"name":"ada"}"#, r#"{"name":1}"#, r#"{"name":"bo"}"#],
        )
        .expect("runs");
        assert_eq!(out.values(), vec![r#"{"name":"ada"}"#, r#"{"name":"bo"}"#]);
        assert_eq!(
            out.rejected(),
            vec![(
                1,
                "`where: shout(name) = 'ADA' or true`: shout takes one string".to_string()
            )]
        );
        // Without the `udfs` parameter the name is unknown.
        assert!(init_error(&[("where", "shout(name) = 'A'")])
            .starts_with("parameter `where`: unknown function 'shout'"));
    }
}
