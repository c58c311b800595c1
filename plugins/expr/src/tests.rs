use serde_json::{json, Value};

use crate::{Expr, ParseError};

fn expr(src: &str) -> Expr {
    Expr::parse(src).unwrap_or_else(|e| panic!("`{src}` should parse: {e}"))
}

fn ev(src: &str, input: &Value) -> Value {
    expr(src).eval(input)
}

fn ev0(src: &str) -> Value {
    ev(src, &json!({}))
}

fn err(src: &str) -> String {
    match Expr::parse(src) {
        Ok(e) => panic!("`{src}` should not parse, got {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn person() -> Value {
    json!({
        "name": "Ana Souza",
        "email": "ana@example.com",
        "nascimento": "2001-04-09",
        "age": 23,
        "score": 7.5,
        "active": true,
        "nick": null,
        "address": {"city": "Recife", "zip": "50000-000", "geo": {"lat": -8.05}},
        "tags": ["a", "b"],
        "my field": 1,
        "end": "kw",
        "big": 18446744073709551615u64
    })
}

#[test]
fn youth_example() {
    let e = expr("case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end");
    assert_eq!(e.eval(&json!({"nascimento": "2003-05-01"})), json!("JOVEM"));
    assert_eq!(e.eval(&json!({"nascimento": "2000-01-01"})), json!("JOVEM"));
    assert_eq!(
        e.eval(&json!({"nascimento": "1999-12-31"})),
        json!("ADULTO")
    );
    // Missing date: the comparison is null, so the `else` branch applies.
    assert_eq!(e.eval(&json!({})), json!("ADULTO"));
    // Case-insensitive keywords.
    let upper = expr("CASE WHEN nascimento >= '2000-01-01' THEN 'JOVEM' ELSE 'ADULTO' END");
    assert_eq!(upper.eval(&person()), json!("JOVEM"));
}

#[test]
fn field_paths() {
    let p = person();
    assert_eq!(ev("name", &p), json!("Ana Souza"));
    assert_eq!(ev("address.city", &p), json!("Recife"));
    assert_eq!(ev("address.geo.lat", &p), json!(-8.05));
    assert_eq!(ev("`my field`", &p), json!(1));
    assert_eq!(ev("`end`", &p), json!("kw"));
    assert_eq!(ev("address.`zip`", &p), json!("50000-000"));
    assert_eq!(ev("tags.1", &p), json!("b"));
    assert_eq!(ev("tags.5", &p), Value::Null);
    assert_eq!(ev("missing", &p), Value::Null);
    assert_eq!(ev("name.first", &p), Value::Null);
    assert_eq!(ev("address", &p), p["address"]);
    // Unicode identifiers.
    assert_eq!(ev("endereço", &json!({"endereço": "x"})), json!("x"));
}

#[test]
fn literals() {
    assert_eq!(ev0("'single'"), json!("single"));
    assert_eq!(ev0("\"double\""), json!("double"));
    assert_eq!(ev0("'it''s'"), json!("it's"));
    assert_eq!(ev0("\"say \"\"hi\"\"\""), json!("say \"hi\""));
    assert_eq!(ev0("''"), json!(""));
    assert_eq!(ev0("42"), json!(42));
    assert_eq!(ev0("-42"), json!(-42));
    assert_eq!(ev0("3.25"), json!(3.25));
    assert_eq!(ev0(".5"), json!(0.5));
    assert_eq!(ev0("1e3"), json!(1000.0));
    assert_eq!(ev0("2.5E-1"), json!(0.25));
    assert_eq!(ev0("18446744073709551615"), json!(18446744073709551615u64));
    assert_eq!(ev0("TRUE"), json!(true));
    assert_eq!(ev0("false"), json!(false));
    assert_eq!(ev0("Null"), Value::Null);
}

#[test]
fn comparisons() {
    let p = person();
    for (src, want) in [
        ("age = 23", json!(true)),
        ("age == 23", json!(true)),
        ("age = 23.0", json!(true)),
        ("age != 23", json!(false)),
        ("age <> 24", json!(true)),
        ("age < 24", json!(true)),
        ("age <= 23", json!(true)),
        ("age > 23", json!(false)),
        ("age >= 23.5", json!(false)),
        ("score > 7", json!(true)),
        ("big > 9223372036854775807", json!(true)),
        ("big = 18446744073709551615", json!(true)),
        ("-1 < big", json!(true)),
        ("name = 'Ana Souza'", json!(true)),
        ("name < 'B'", json!(true)),
        ("'abc' < 'abd'", json!(true)),
        ("nascimento >= '2000-01-01'", json!(true)),
        ("nascimento < '2001-04-10'", json!(true)),
        ("active = true", json!(true)),
        ("false < true", json!(true)),
        ("tags = tags", json!(true)),
        ("address != tags", Value::Null),
        ("tags < tags", Value::Null),
        // Mismatched types and nulls are unknown.
        ("age = '23'", Value::Null),
        ("active = 1", Value::Null),
        ("nick = null", Value::Null),
        ("nick != 'x'", Value::Null),
        ("missing > 1", Value::Null),
        ("1 > missing", Value::Null),
        ("null = null", Value::Null),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn three_valued_logic() {
    for (src, want) in [
        ("true and true", json!(true)),
        ("true and false", json!(false)),
        ("false and null", json!(false)),
        ("null and false", json!(false)),
        ("true and null", Value::Null),
        ("null and null", Value::Null),
        ("true or null", json!(true)),
        ("null or true", json!(true)),
        ("false or null", Value::Null),
        ("false or false", json!(false)),
        ("not true", json!(false)),
        ("not false", json!(true)),
        ("not null", Value::Null),
        ("not 'x'", Value::Null),
        ("'x' and true", Value::Null),
        ("1 or false", Value::Null),
        ("NOT (true AND false) Or false", json!(true)),
        // `and` binds tighter than `or`.
        ("true or false and false", json!(true)),
        ("(true or false) and false", json!(false)),
        ("not 1 = 2", json!(true)),
        ("not not true", json!(true)),
    ] {
        assert_eq!(ev0(src), want, "{src}");
    }
}

#[test]
fn matches_only_true() {
    let p = person();
    assert!(expr("age > 18 and email is not null").matches(&p));
    assert!(!expr("missing = 1").matches(&p));
    assert!(!expr("name").matches(&p));
    assert!(!expr("1").matches(&p));
    assert!(expr("active").matches(&p));
    assert!(!expr("not (missing = 1)").matches(&p));
}

#[test]
fn in_lists() {
    let p = person();
    for (src, want) in [
        ("name in ('Ana Souza', 'Bob')", json!(true)),
        ("name in ('x', 'b', 3)", json!(false)),
        ("age in ('a', 'b', 23)", json!(true)),
        ("age in (23.0)", json!(true)),
        ("age not in ('a', 'b', 3)", json!(true)),
        ("age NOT IN (1, 23)", json!(false)),
        ("missing in (1, 2)", Value::Null),
        ("missing not in (1, 2)", Value::Null),
        ("age in (1, null)", Value::Null),
        ("age in (23, null)", json!(true)),
        ("age not in (1, null)", Value::Null),
        ("address.city in (lower('RECIFE'), 'Recife')", json!(true)),
        ("tags in (tags)", json!(true)),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn is_null() {
    let p = person();
    for (src, want) in [
        ("nick is null", true),
        ("missing is null", true),
        ("name is null", false),
        ("name IS NOT NULL", true),
        ("nick is not null", false),
        ("address.nope is null", true),
        ("(age > 1) is not null", true),
        ("missing > 1 is null", true),
        ("age > 1 is not null is null", false),
    ] {
        assert_eq!(ev(src, &p), json!(want), "{src}");
    }
}

#[test]
fn arithmetic() {
    let p = json!({"price": 50.5, "qty": 3, "n": -4, "big": 9223372036854775807i64, "s": "x"});
    for (src, want) in [
        ("qty + 2", json!(5)),
        ("qty - 5", json!(-2)),
        ("qty * 4", json!(12)),
        ("12 / 4", json!(3)),
        ("7 / 2", json!(3.5)),
        ("7 % 4", json!(3)),
        ("-7 % 4", json!(-3)),
        ("price * 100", json!(5050.0)),
        ("price * 2", json!(101.0)),
        ("price + qty", json!(53.5)),
        ("1 + 2 * 3", json!(7)),
        ("(1 + 2) * 3", json!(9)),
        ("10 - 2 - 3", json!(5)),
        ("2 * 3 / 4", json!(1.5)),
        ("-n", json!(4)),
        ("-(qty)", json!(-3)),
        ("- -qty", json!(3)),
        ("-price", json!(-50.5)),
        ("big + 1", json!(9223372036854775808u64)),
        ("big * big", json!(8.507059173023462e37)),
        ("1 / 0", Value::Null),
        ("1.5 / 0", Value::Null),
        ("1 % 0", Value::Null),
        ("qty + missing", Value::Null),
        ("s + 1", Value::Null),
        ("-s", Value::Null),
        ("qty + '1'", Value::Null),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn concatenation() {
    let p = person();
    for (src, want) in [
        ("'a' || 'b'", json!("ab")),
        (
            "name || ' <' || email || '>'",
            json!("Ana Souza <ana@example.com>"),
        ),
        ("'n=' || age", json!("n=23")),
        ("age || 'y'", json!("23y")),
        ("'x' || active", json!("xtrue")),
        ("'t' || tags", json!("t[\"a\",\"b\"]")),
        ("'a' || nick", Value::Null),
        ("missing || 'a'", Value::Null),
        // `||` binds looser than `+`.
        ("'v' || 1 + 2", json!("v3")),
        ("'ab' || 'c' = 'abc'", json!(true)),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn case_expressions() {
    let p = person();
    for (src, want) in [
        (
            "case when age < 18 then 'minor' when age < 65 then 'adult' else 'senior' end",
            json!("adult"),
        ),
        ("case when age < 18 then 'minor' end", Value::Null),
        ("case when missing then 1 else 2 end", json!(2)),
        (
            "case when nick is null then coalesce(nick, 'none') end",
            json!("none"),
        ),
        (
            "case address.city when 'Recife' then 'PE' when 'Natal' then 'RN' end",
            json!("PE"),
        ),
        (
            "case age when 1 then 'one' else 'other' end",
            json!("other"),
        ),
        ("case missing when null then 'x' else 'y' end", json!("y")),
        (
            "case when true then case when false then 1 else 2 end end",
            json!(2),
        ),
        ("(case when true then 10 end) * 2", json!(20)),
        ("case when age > 1 then name end", json!("Ana Souza")),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn functions() {
    let p = person();
    for (src, want) in [
        ("lower(name)", json!("ana souza")),
        ("UPPER(name)", json!("ANA SOUZA")),
        ("upper('ção')", json!("ÇÃO")),
        ("lower(age)", Value::Null),
        ("lower(missing)", Value::Null),
        ("trim('  x y ')", json!("x y")),
        ("length(name)", json!(9)),
        ("length('ção')", json!(3)),
        ("length(tags)", json!(2)),
        ("length(address)", json!(3)),
        ("length(age)", Value::Null),
        ("coalesce(nick, missing, name)", json!("Ana Souza")),
        ("coalesce(nick, missing)", Value::Null),
        ("coalesce(age)", json!(23)),
        (
            "concat(name, '/', age, nick, '/', active)",
            json!("Ana Souza/23/true"),
        ),
        ("concat(nick)", json!("")),
        ("round(2.5)", json!(3)),
        ("round(-2.5)", json!(-3)),
        ("round(2.4)", json!(2)),
        ("round(2.567, 2)", json!(2.57)),
        ("round(2.5, 0)", json!(3)),
        ("round(1234.5, -2)", json!(1200)),
        ("round(1250, -2)", json!(1300)),
        ("round(-1250, -2)", json!(-1300)),
        ("round(1249, -2)", json!(1200)),
        ("round(7, 2)", json!(7)),
        ("round(score)", json!(8)),
        ("round(2.5, 1.5)", Value::Null),
        ("round('x')", Value::Null),
        ("substr('hello', 2)", json!("ello")),
        ("substr('hello', 2, 3)", json!("ell")),
        ("substr('hello', 0, 3)", json!("he")),
        ("substr('hello', -1, 3)", json!("h")),
        ("substr('hello', 10)", json!("")),
        ("substr('hello', 1, 0)", json!("")),
        ("substr('hello', 1, -1)", Value::Null),
        ("substr('ação', 2, 2)", json!("çã")),
        ("substr(nascimento, 1, 4)", json!("2001")),
        ("substr(age, 1)", Value::Null),
        ("abs(-3)", json!(3)),
        ("abs(address.geo.lat)", json!(8.05)),
        ("abs('x')", Value::Null),
        (
            "abs(-9223372036854775807 - 1)",
            json!(9223372036854775808u64),
        ),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn like_matches_sql_wildcards() {
    let p = person();
    for (src, want) in [
        ("like(name, 'Ana%')", json!(true)),
        ("like(name, '%Souza')", json!(true)),
        ("like(name, '%a S%')", json!(true)),
        ("like(name, 'ana%')", json!(false)),
        ("like(name, 'An_ Souza')", json!(true)),
        ("like(name, 'An_')", json!(false)),
        ("like(name, '%')", json!(true)),
        ("like('', '%')", json!(true)),
        ("like('', '_')", json!(false)),
        ("like('ação', 'a_ã_')", json!(true)),
        ("like('abcabd', '%ab_')", json!(true)),
        ("like('aaa', 'a%%a')", json!(true)),
        ("like('ab', 'a%b%c')", json!(false)),
        ("like(name, 'Ana Souza')", json!(true)),
        ("like(age, '2%')", Value::Null),
        ("like(nick, '%')", Value::Null),
        ("like(name, missing)", Value::Null),
        // An escape character makes the next `%`, `_` or itself literal.
        ("like('100%', '100!%', '!')", json!(true)),
        ("like('1000', '100!%', '!')", json!(false)),
        ("like('a_b', '%!_%', '!')", json!(true)),
        ("like('ab', '%!_%', '!')", json!(false)),
        ("like('a!b', 'a!!b', '!')", json!(true)),
        (r"like('a\b', 'a\\_', '\')", json!(true)),
        // Without one, `!` is itself.
        ("like('100!x', '100!%')", json!(true)),
        // SQL's errors: the escape before anything else, or at the end; an
        // escape that is not one character.
        ("like('ab', 'a!b', '!')", Value::Null),
        ("like('a!', 'a!', '!')", Value::Null),
        ("like('ab', 'ab', '!!')", Value::Null),
        ("like('ab', 'ab', '')", Value::Null),
        ("like('ab', 'ab', missing)", Value::Null),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn like_on_a_hostile_pattern_is_bounded() {
    // Backtracking matchers go exponential on `%a%a%...b`; this one is
    // text × pattern at worst.
    let text = "a".repeat(20_000);
    let pattern = format!("{}b", "%a".repeat(50));
    let e = expr("like(t, p)");
    let start = std::time::Instant::now();
    assert_eq!(e.eval(&json!({"t": text, "p": pattern})), json!(false));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn conversions_give_null_when_the_value_does_not_convert() {
    let p = person();
    for (src, want) in [
        ("to_int(42)", json!(42)),
        ("to_int(' -42 ')", json!(-42)),
        ("to_int(2.9)", json!(2)),
        ("to_int(-2.9)", json!(-2)),
        ("to_int(2147483647)", json!(2147483647)),
        ("to_int(2147483648)", Value::Null),
        ("to_int('2147483648')", Value::Null),
        ("to_int(-2147483648)", json!(-2147483648i64)),
        ("to_int('1.5')", Value::Null),
        ("to_int('abc')", Value::Null),
        ("to_int('')", Value::Null),
        ("to_int(true)", Value::Null),
        ("to_int(null)", Value::Null),
        ("to_int(missing)", Value::Null),
        ("to_int(age)", json!(23)),
        ("to_bigint(2147483648)", json!(2147483648i64)),
        ("to_bigint('9223372036854775807')", json!(i64::MAX)),
        ("to_bigint('9223372036854775808')", Value::Null),
        ("to_bigint(1e30)", Value::Null),
        ("to_bigint(score)", json!(7)),
        ("to_double(3)", json!(3.0)),
        ("to_double(' 2.5 ')", json!(2.5)),
        ("to_double('1e3')", json!(1000.0)),
        ("to_double('NaN')", Value::Null),
        ("to_double('inf')", Value::Null),
        ("to_double('x')", Value::Null),
        ("to_double(false)", Value::Null),
        ("to_boolean(true)", json!(true)),
        ("to_boolean(' TRUE ')", json!(true)),
        ("to_boolean('false')", json!(false)),
        ("to_boolean('yes')", Value::Null),
        ("to_boolean(1)", Value::Null),
        ("to_boolean(active)", json!(true)),
    ] {
        assert_eq!(ev(src, &p), want, "{src}");
    }
}

#[test]
fn parse_errors_say_where_and_what() {
    for (src, want) in [
        ("nascimento >=", "expected a value after '>=' at column 14"),
        ("nascimento >= ", "expected a value after '>=' at column 15"),
        ("a >= )", "expected a value after '>=' but found ')' at column 6"),
        ("", "empty expression at column 1"),
        ("   ", "empty expression at column 1"),
        ("a and", "expected a value after 'and' at column 6"),
        ("(a = 1", "expected ')' to close the '(' at column 1 but found the end of the expression at column 7"),
        ("a = 1)", "unexpected ')'; it closes no '(' at column 6"),
        ("a b", "unexpected 'b'; expected an operator, 'and', 'or' or the end of the expression at column 3"),
        ("a = 'x", "unterminated string starting at column 5"),
        ("a = `x", "unterminated backquoted name starting at column 5"),
        ("a ! b", "unexpected '!'; did you mean '!=' or 'not'? at column 3"),
        ("a | b", "unexpected '|'; did you mean '||'? at column 3"),
        ("a # b", "unexpected character '#' at column 3"),
        ("x in 1", "expected '(' and a list of values after 'in' but found '1' at column 6"),
        ("x in (1, 2", "expected ',' or ')' to close the '(' at column 6 but found the end of the expression at column 11"),
        ("x in ()", "expected a value after '(' but found ')' at column 7"),
        ("x is 1", "expected 'null' or 'not null' after 'is' but found '1' at column 6"),
        ("x is not 1", "expected 'null' after 'is not' but found '1' at column 10"),
        ("case x end", "expected 'when' after 'x' but found 'end' at column 8"),
        ("case end", "expected a value after 'case' but found 'end' at column 6"),
        ("case when a 1 end", "expected 'then' after the 'when' condition but found '1' at column 13"),
        ("case when a then 1", "expected 'when', 'else' or 'end' to finish the 'case' at column 1 but found the end of the expression at column 19"),
        ("foo(1)", "unknown function 'foo' (known: abs, coalesce, concat, length, like, lower, round, substr, to_bigint, to_boolean, to_decimal, to_double, to_int, trim, upper) at column 1"),
        ("to_int(a, b)", "function 'to_int' takes 1 argument, found 2 at column 1"),
        ("lower(a, b)", "function 'lower' takes 1 argument, found 2 at column 1"),
        ("round()", "function 'round' takes 1 to 2 arguments, found 0 at column 1"),
        ("coalesce()", "function 'coalesce' takes at least 1 argument, found 0 at column 1"),
        ("12abc", "unexpected 'a' after the number at column 3"),
        ("1.2.3", "unexpected '.' after the number at column 4"),
        ("1e999", "number 1e999 is out of range at column 1"),
        ("a = = 1", "expected a value after '=' but found '=' at column 5"),
        ("a = 1 = 2", "unexpected '='; expected an operator, 'and', 'or' or the end of the expression at column 7"),
        ("a = 'x' b", "unexpected 'b'; expected an operator, 'and', 'or' or the end of the expression at column 9"),
        ("x >= 'a' and", "expected a value after 'and' at column 13"),
        ("`` = 1", "empty backquoted name at column 1"),
    ] {
        assert_eq!(err(src), want, "{src}");
    }
}

#[test]
fn parse_error_accessors() {
    let e: ParseError = Expr::parse("nascimento >=").expect_err("incomplete");
    assert_eq!(e.column(), 14);
    assert_eq!(e.message(), "expected a value after '>='");
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(err("'ção' = "), "expected a value after '=' at column 9");
}

#[test]
fn deep_nesting_is_refused_not_overflowing() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&deep).contains("nested too deeply"));
    let nots = format!("{}true", "not ".repeat(10_000));
    assert!(err(&nots).contains("nested too deeply"));
    let chain = vec!["1"; 10_000].join(" + ");
    assert!(err(&chain).contains("too deep"));
    // Reasonable nesting is fine.
    let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    assert_eq!(ev0(&ok), json!(1));
    let long = vec!["1"; 200].join(" + ");
    assert_eq!(ev0(&long), json!(200));
    // The deepest trees accepted, mixing the paths evaluation recurses
    // through (eval, as_bool, num), evaluate in a small stack.
    let logic = format!("{}{}", "not ".repeat(60), vec!["1 = 1"; 190].join(" and "));
    let numbers =
        format!("round({}{})", "-(".repeat(30), vec!["1"; 220].join(" * ")) + &")".repeat(30);
    let answers = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || (ev0(&logic), ev0(&numbers)))
        .expect("thread")
        .join()
        .expect("no overflow");
    assert_eq!(answers, (json!(true), json!(1)));
}

#[test]
fn keywords_are_not_field_names_but_path_segments_can_be() {
    let v = json!({"a": {"end": 1, "and": 2}});
    assert_eq!(ev("a.end + a.and", &v), json!(3));
}

#[test]
fn eval_ref_borrows_fields_and_literals() {
    let p = person();
    let e = expr("address");
    assert!(matches!(e.eval_ref(&p), std::borrow::Cow::Borrowed(_)));
    let e = expr("coalesce(nick, 'default')");
    assert!(matches!(e.eval_ref(&p), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn expr_is_send_sync_and_displays_source() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
    let e: Expr = "a  =  1".parse().expect("parses");
    assert_eq!(e.to_string(), "a  =  1");
    assert_eq!(e.source(), "a  =  1");
}

#[test]
fn non_object_inputs() {
    assert_eq!(ev("a", &json!([1, 2])), Value::Null);
    assert_eq!(ev("0", &json!([1, 2])), json!(0));
    assert_eq!(ev("`0`", &json!([7, 2])), json!(7));
    assert_eq!(ev("a is null", &json!("text")), json!(true));
}

#[test]
fn fields_lists_top_level_names_once() {
    let e = expr("a.b = 1 and c in (a.x, d) or lower(`e f`.g) = 'x' and not h is null");
    assert_eq!(e.fields().collect::<Vec<_>>(), ["a", "c", "d", "e f", "h"]);
    assert_eq!(expr("1 + 2").fields().count(), 0);
}

#[test]
fn parse_input_keeps_only_read_fields_and_gives_same_results() {
    let text =
        r#"{"a":{"b":1,"c":[1,2]},"skip":{"deep":[{"x":"\u00e9\"q"}]},"n":null,"s":"x\ty","a2":3}"#;
    let full: Value = serde_json::from_str(text).expect("valid");
    for src in [
        "a.b = 1 and s = 'x\ty'",
        "length(a.c) = 2 and n is null",
        "skip.deep.0.x",
        "missing is null",
        "a2 * 2",
        "true",
    ] {
        let e = expr(src);
        let partial = e.parse_input(text.as_bytes()).expect("parses");
        assert_eq!(e.eval(&partial), e.eval(&full), "{src}");
    }
    let e = expr("a.b = 1");
    assert_eq!(
        e.parse_input(text.as_bytes()).expect("parses"),
        json!({"a": {"b": 1, "c": [1, 2]}})
    );
    // Non-object roots are kept whole.
    assert_eq!(
        expr("`0`").parse_input(b"[5, 6]").expect("parses"),
        json!([5, 6])
    );
    assert_eq!(
        expr("x").parse_input(b" \"s\" ").expect("parses"),
        json!("s")
    );
    assert_eq!(expr("x").parse_input(b"1.5").expect("parses"), json!(1.5));
    assert_eq!(expr("x").parse_input(b"null").expect("parses"), Value::Null);
    // Duplicate keys: the last wins, as with serde_json.
    assert_eq!(
        expr("x").parse_input(br#"{"x":1,"x":2}"#).expect("parses"),
        json!({"x": 2})
    );
}

#[test]
fn parse_input_still_validates_skipped_parts() {
    let e = expr("a = 1");
    for bad in [
        &br#"{"a":1,"b":}"#[..],
        br#"{"a":1,"b":[1,}"#,
        br#"{"a":1} x"#,
        br#"{"a":1,"b":"unterminated}"#,
        br#"{"a":1,"b":tru}"#,
        br#"{"a":1,"b":"\x"}"#,
        b"",
        b"{",
    ] {
        let err = e.parse_input(bad).expect_err("should be rejected");
        let full = serde_json::from_slice::<Value>(bad).expect_err("serde_json rejects too");
        assert_eq!(
            err.to_string(),
            full.to_string(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn loaded_view_fields_evaluate_like_the_whole_value() {
    use sluice_sdk::json::JsonView;
    let exprs = [
        "a.b.0 + 1",
        "lower(s) || '!'",
        "x is null and a is not null",
        "`0`.k = 2",
        "big = 9007199254740993",
        "case when `caf\u{e9}` = '\u{e9}' then n * 2 end",
        "d = 3",
        // Several fields, read again and out of their first-seen order: each
        // field node finds its own slot.
        "z || y || x || y || z || coalesce(w, x)",
        "case a.b.0 when 41 then s || z else lower(s) end",
    ];
    let inputs = [
        r#"{"x":"1","y":"2","z":"3","s":"S","a":{"b":[41]}}"#,
        r#"{"z":"3","w":"4","y":"2","x":"1","s":"T"}"#,
        r#"{"a":{"b":[41]},"s":"HeY","n":2.5,"big":9007199254740993}"#,
        "{\"caf\\u00e9\":\"\\u00e9\",\"n\":4,\"d\":1,\"d\":3}",
        r#"[{"k":2}]"#,
        r#""text""#,
        r#"{"a":null}"#,
    ];
    let mut fields = crate::ViewFields::default();
    for src in exprs {
        let expr = Expr::parse(src).expect("parses");
        for input in inputs {
            let whole: Value = serde_json::from_str(input).expect("json");
            let view = JsonView::parse(input.as_bytes()).expect("json");
            expr.load(&view, &mut fields).expect("loads");
            assert_eq!(
                expr.eval_loaded(&fields),
                expr.eval(&whole),
                "{src} on {input}"
            );
            assert_eq!(
                expr.matches_loaded(&fields),
                expr.matches(&whole),
                "{src} on {input}"
            );
        }
    }
}

/// `twice(x)`: the native stand-in of a UDF (numbers doubled, else an error).
fn twice(args: &[Value]) -> Result<Value, String> {
    match args {
        [Value::Number(n)] => Ok(json!(n.as_f64().unwrap_or_default() * 2.0)),
        other => Err(format!("twice takes one number, found {other:?}")),
    }
}

#[test]
fn udf_calls_parse_only_with_their_names_and_evaluate_through_the_host() {
    sluice_sdk::udf::register_native("twice", twice);
    let udfs = vec!["twice".to_string()];
    let e = Expr::parse_with_udfs("TWICE(a.b) + 1", &udfs).expect("parses");
    assert_eq!(e.fields().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(e.eval(&json!({"a": {"b": 2}})), json!(5.0));
    assert_eq!(crate::take_udf_error(), None);
    // A failed call reads as null and is reported once.
    assert_eq!(e.eval(&json!({"a": {"b": "x"}})), Value::Null);
    assert_eq!(
        crate::take_udf_error().as_deref(),
        Some("twice takes one number, found [String(\"x\")]")
    );
    assert_eq!(crate::take_udf_error(), None);
    // Without the name the call does not parse, and the error suggests it.
    assert_eq!(
        Expr::parse_with_udfs("twise(1)", &udfs).map_err(|e| e.to_string()),
        Err("unknown function 'twise' (known: abs, coalesce, concat, length, like, lower, round, substr, to_bigint, to_boolean, to_decimal, to_double, to_int, trim, upper; user-defined: twice); did you mean 'twice'? at column 1".to_string())
    );
    assert_eq!(
        err("twice(1)"),
        "unknown function 'twice' (known: abs, coalesce, concat, length, like, lower, round, substr, to_bigint, to_boolean, to_decimal, to_double, to_int, trim, upper) at column 1"
    );
    // A built-in keeps its meaning whatever the UDFs are called.
    assert_eq!(
        Expr::parse_with_udfs("lower('A')", &["lower".to_string()])
            .expect("parses")
            .eval(&json!({})),
        json!("a")
    );
    assert_eq!(crate::udf_names(Some(" A, b ,,")), vec!["a", "b"]);
    assert!(crate::is_builtin_function("LOWER"));
}

#[test]
fn a_misspelt_builtin_gets_a_suggestion() {
    assert_eq!(
        err("lowr(a)"),
        "unknown function 'lowr' (known: abs, coalesce, concat, length, like, lower, round, substr, to_bigint, to_boolean, to_decimal, to_double, to_int, trim, upper); did you mean 'lower'? at column 1"
    );
}

#[test]
fn to_decimal_rounds_half_up_from_the_digits_as_written_and_bounds_the_integer_digits() {
    for (src, want) in [
        ("to_decimal(2.675, 10, 2)", json!(2.68)),
        ("to_decimal(2.665, 10, 2)", json!(2.67)),
        ("to_decimal(-2.675, 10, 2)", json!(-2.68)),
        ("to_decimal(12, 10, 2)", json!(12.0)),
        ("to_decimal(0.5, 3, 0)", json!(1)),
        ("to_decimal(-0.4, 3, 0)", json!(0)),
        ("to_decimal(9.995, 3, 2)", Value::Null),
        ("to_decimal(9.995, 4, 2)", json!(10.0)),
        ("to_decimal(99.4, 2, 0)", json!(99)),
        ("to_decimal(99.5, 2, 0)", Value::Null),
        ("to_decimal(' 19.999 ', 5, 2)", json!(20.0)),
        ("to_decimal('.5', 3, 1)", json!(0.5)),
        ("to_decimal('1e3', 5, 1)", json!(1000.0)),
        (
            "to_decimal('12345678901234567890.125', 38, 2)",
            json!(12345678901234567890.13),
        ),
        ("to_decimal(1.0e300, 38, 0)", Value::Null),
        ("to_decimal('abc', 10, 2)", Value::Null),
        ("to_decimal('1.2.3', 10, 2)", Value::Null),
        ("to_decimal('--1', 10, 2)", Value::Null),
        ("to_decimal(true, 10, 2)", Value::Null),
        ("to_decimal(missing, 10, 2)", Value::Null),
        // Sizes out of range give null, never a panic.
        ("to_decimal(1, 0, 0)", Value::Null),
        ("to_decimal(1, 39, 2)", Value::Null),
        ("to_decimal(1, 2, 3)", Value::Null),
        ("to_decimal(1, -1, 0)", Value::Null),
    ] {
        assert_eq!(ev(src, &json!({})), want, "{src}");
    }
    // The output text keeps exactly the scale's digits.
    assert_eq!(
        ev("to_decimal(2.675, 10, 2)", &json!({})).to_string(),
        "2.68"
    );
}

#[test]
fn fields_are_listed_once_in_order_of_appearance() {
    for (src, want) in [
        ("b + a.x * b - c", &["b", "a", "c"][..]),
        ("case z when 1 then y else x end", &["z", "y", "x"]),
        ("q not in (r, q, s) or t is null", &["q", "r", "s", "t"]),
        (
            "coalesce(m.n, lower(`k k`), m) || round(p, d)",
            &["m", "k k", "p", "d"],
        ),
        ("1 + 2", &[]),
    ] {
        let expr = Expr::parse(src).expect(src);
        let fields: Vec<&str> = expr.fields().collect();
        assert_eq!(fields, want, "{src}");
        // The same order a walk of the tree gives.
        let walked: Vec<Box<str>> = expr.root.top_level_fields();
        assert_eq!(
            walked.iter().map(|f| &**f).collect::<Vec<_>>(),
            want,
            "{src}"
        );
    }
}
