use super::*;

/// Inputs on which the scanner must agree with `serde_json::from_slice`.
const CASES: &[&str] = &[
    "{}",
    "[]",
    " { \"a\" : 1 , \"b\":[1, 2 ,{\"c\":null}] } ",
    "0",
    "-0.5e+10",
    "1E5",
    "\"\\u00e9\\ud83d\\ude00\\n\"",
    "true",
    "null",
    "{\"a\":\"caf\u{e9} \u{1f600}\"}",
    // Malformed:
    "",
    " ",
    "{",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "01",
    "1.",
    "-",
    ".5",
    "1e",
    "+1",
    "tru",
    "nul",
    "\"abc",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"tab\there\"",
    "{1:2}",
    "{\"a\":1}}",
    "[1]x",
    "{\"a\" 1}",
    "NaN",
];

#[test]
fn accepts_and_rejects_what_serde_json_does() {
    for case in CASES {
        let ours = JsonView::parse(case.as_bytes()).is_ok();
        let theirs = serde_json::from_slice::<Value>(case.as_bytes()).is_ok();
        assert_eq!(ours, theirs, "disagreement on {case:?}");
    }
}

#[test]
fn rejects_invalid_utf8_and_deep_nesting() {
    let err = JsonView::parse(b"{\"a\":\"\xff\"}").expect_err("not UTF-8");
    assert_eq!(err.to_string(), "invalid UTF-8 at byte 6");
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    let err = JsonView::parse(deep.as_bytes()).expect_err("too deep");
    assert_eq!(err.message, "recursion limit exceeded");
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(JsonView::parse(ok.as_bytes()).is_ok());
    // An object root counts as one level, like any other.
    let deep_obj = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
    assert!(JsonView::parse(deep_obj.as_bytes()).is_err());
}

#[test]
fn reads_fields_without_a_tree() {
    let text = br#"{"id":9007199254740993,"price":12.50,"name":"Ana \"A\"","tags":["x",{"k":[1,2]}],"nested":{"a":{"b":true}},"n":null}"#;
    let view = JsonView::parse(text).expect("valid");
    assert!(view.is_object());
    assert_eq!(view.len(), 6);
    let id = view.get("id").expect("id");
    assert_eq!(id.text(), "9007199254740993");
    assert_eq!(id.as_u64(), Some(9_007_199_254_740_993));
    assert_eq!(id.as_i64(), Some(9_007_199_254_740_993));
    assert_eq!(view.get("price").and_then(|p| p.as_f64()), Some(12.5));
    assert_eq!(view.get("price").map(|p| p.text()), Some("12.50"));
    assert_eq!(view.get("price").and_then(|p| p.as_i64()), None);
    assert_eq!(
        view.get("name").and_then(|n| n.as_str()).as_deref(),
        Some("Ana \"A\"")
    );
    assert_eq!(
        view.path(&["tags", "1", "k", "1"]).map(|r| r.text()),
        Some("2")
    );
    assert_eq!(
        view.path(&["nested", "a", "b"]).and_then(|r| r.as_bool()),
        Some(true)
    );
    assert_eq!(view.path(&["nested", "zz"]), None);
    assert!(view.get("n").is_some_and(|n| n.is_null()));
    assert_eq!(view.get("missing"), None);
    assert_eq!(view.get("tags").map(|t| t.items().count()), Some(2));
    assert_eq!(
        view.get("nested").map(|n| n.text()),
        Some(r#"{"a":{"b":true}}"#)
    );
}

#[test]
fn escaped_and_unicode_keys_match_their_value() {
    let text = "{\"caf\\u00e9\":1,\"\u{1f600}\":2,\"a\\\"b\":3, \"plain\" :\t4}";
    let view = JsonView::parse(text.as_bytes()).expect("valid");
    assert_eq!(view.get("caf\u{e9}").map(|r| r.text()), Some("1"));
    assert_eq!(view.get("\u{1f600}").map(|r| r.text()), Some("2"));
    assert_eq!(view.get("a\"b").map(|r| r.text()), Some("3"));
    assert_eq!(view.get("plain").map(|r| r.text()), Some("4"));
    let keys: Vec<String> = view.fields().map(|(k, _)| k.text().into_owned()).collect();
    assert_eq!(keys, vec!["caf\u{e9}", "\u{1f600}", "a\"b", "plain"]);
    let root = view.root();
    assert_eq!(root.get("caf\u{e9}").map(|r| r.text()), Some("1"));
}

#[test]
fn duplicate_keys_read_the_last_occurrence() {
    let text = br#"{"a":1,"b":2,"a":{"x":3}}"#;
    let view = JsonView::parse(text).expect("valid");
    assert_eq!(view.get("a").map(|r| r.text()), Some(r#"{"x":3}"#));
    assert_eq!(view.root().get("a").map(|r| r.text()), Some(r#"{"x":3}"#));
    assert_eq!(view.len(), 3);
    // Same as serde_json's tree.
    let tree: Value = serde_json::from_slice(text).expect("valid");
    assert_eq!(
        view.get("a").map(|r| r.to_value().ok()),
        Some(Some(tree["a"].clone()))
    );
    // A field's value alone is the value `field` gives with its key.
    let values: Vec<&str> = (0..view.len())
        .map(|i| view.field_value(i).text())
        .collect();
    assert_eq!(values, ["1", "2", r#"{"x":3}"#]);
    for i in 0..view.len() {
        assert_eq!(view.field_value(i), view.field(i).1);
    }
}

#[test]
fn non_object_roots_have_no_fields() {
    for text in ["[1,2]", " \"s\" ", "3", "null"] {
        let view = JsonView::parse(text.as_bytes()).expect("valid");
        assert!(view.is_empty());
        assert!(!view.is_object());
        assert_eq!(view.get("a"), None);
    }
    let view = JsonView::parse(b" [10, {\"a\":1}] ").expect("valid");
    assert_eq!(view.root().text(), "[10, {\"a\":1}]");
    assert_eq!(view.path(&["1", "a"]).map(|r| r.text()), Some("1"));
    assert_eq!(view.root().kind(), Kind::Array);
    // An object without fields is still an object.
    for text in [" {} ", "{ }"] {
        let view = JsonView::parse(text.as_bytes()).expect("valid");
        assert!(view.is_empty());
        assert!(view.is_object(), "{text}");
    }
}

#[test]
fn parser_reuses_its_table() {
    let mut parser = JsonParser::new();
    for (text, n) in [
        (&br#"{"a":1,"b":2}"#[..], 2),
        (br#"{"c":3}"#, 1),
        (b"[]", 0),
    ] {
        assert_eq!(parser.parse(text).expect("valid").len(), n);
    }
    let view = parser.parse(br#"{"c":3}"#).expect("valid");
    assert_eq!(view.len(), 1);
    assert_eq!(view.get("a"), None);
    assert!(parser.parse(b"{").is_err());
}

#[test]
fn writer_splices_raw_slices_and_new_values() {
    let text = "{\"id\":9007199254740993,\"k\\u00e9y\":1.50,\"big\":1e400,\"o\":{\"z\":[1, 2]}}";
    let view = JsonView::parse(text.as_bytes()).expect("valid");
    let mut out = b"prefix".to_vec();
    let mut w = ObjectWriter::new(&mut out);
    for (key, value) in view.fields() {
        if !key.is("big") {
            w.raw_field(key, value);
        }
    }
    if let Some(big) = view.get("big") {
        w.raw("renamed \"big\"", big);
    }
    w.value("n\u{e9}w", &serde_json::json!({"q": "\u{1f600}"}));
    w.finish();
    let written = std::str::from_utf8(&out).expect("utf-8");
    assert_eq!(
        written,
        "prefix{\"id\":9007199254740993,\"k\\u00e9y\":1.50,\"o\":{\"z\":[1, 2]},\"renamed \\\"big\\\"\":1e400,\"n\u{e9}w\":{\"q\":\"\u{1f600}\"}}"
    );
    assert!(JsonView::parse(&out[6..]).is_ok());
    let empty = {
        let mut b = Vec::new();
        ObjectWriter::new(&mut b).finish();
        b
    };
    assert_eq!(empty, b"{}");
}

#[test]
fn numbers_out_of_range_are_valid_but_not_convertible() {
    let view = JsonView::parse(br#"{"x":1e400,"y":-12345678901234567890123}"#).expect("valid");
    let x = view.get("x").expect("x");
    assert_eq!(x.as_f64(), None);
    assert!(x.to_value().is_err());
    let y = view.get("y").expect("y");
    assert_eq!(y.as_i64(), None);
    assert_eq!(y.text(), "-12345678901234567890123");
}

#[test]
fn utf8_is_checked_inside_strings_and_refused_outside() {
    for bad in [
        &b"\"\xc3\""[..],        // truncated sequence
        b"\"\xc0\xaf\"",         // overlong
        b"\"\xed\xa0\x80\"",     // encoded surrogate
        b"\"\xf5\x80\x80\x80\"", // above U+10FFFF
        b"\"\x80\"",             // lone continuation byte
        b"{\"a\":1}\xc3\xa9",    // non-ASCII outside a string
        b"[\xc3\xa9]",
    ] {
        assert!(JsonView::parse(bad).is_err(), "{bad:?}");
        assert!(serde_json::from_slice::<Value>(bad).is_err(), "{bad:?}");
    }
    let good = "{\"\u{e9}\u{20ac}\u{1f600}\":\"\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}\"}";
    let view = JsonView::parse(good.as_bytes()).expect("valid");
    assert_eq!(
        view.get("\u{e9}\u{20ac}\u{1f600}")
            .and_then(|r| r.as_str())
            .as_deref(),
        Some("\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}")
    );
}

#[test]
fn utf8_check_agrees_with_std_on_every_short_sequence() {
    // Every 1–3 byte sequence after a quote, and 4-byte ones around the edges.
    let check = |seq: &[u8]| {
        let mut text = vec![b'"'];
        text.extend_from_slice(seq);
        text.push(b'"');
        let std_ok = std::str::from_utf8(seq).is_ok()
            && !seq.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        assert_eq!(JsonView::parse(&text).is_ok(), std_ok, "{seq:x?}");
    };
    for a in 0x80..=0xFFu8 {
        check(&[a]);
        for b in 0x00..=0xFFu8 {
            check(&[a, b]);
            for c in [0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0] {
                check(&[a, b, c]);
                for d in [0x7F, 0x80, 0xBF, 0xC0] {
                    check(&[a, b, c, d]);
                }
            }
        }
    }
}

/// The eight-bytes-at-a-time string loop: every special byte at every
/// offset of strings up to 40 bytes long, against serde_json.
#[test]
fn strings_agree_with_serde_json_whatever_the_offset_of_a_special_byte() {
    let specials: [&[u8]; 9] = [
        b"\\\"",
        b"\\\\",
        b"\\u00e9",
        b"\x01",
        b"\x1f",
        b"\x7f",
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\xc3",
    ];
    for len in 0..40 {
        for at in 0..=len {
            for special in specials {
                let mut text = b"{\"k\":\"".to_vec();
                text.extend(std::iter::repeat_n(b'a', at));
                text.extend_from_slice(special);
                text.extend(std::iter::repeat_n(b'b', len - at));
                text.extend_from_slice(b"\"}");
                let theirs = serde_json::from_slice::<Value>(&text);
                let ours = JsonView::parse(&text);
                assert_eq!(
                    ours.is_ok(),
                    theirs.is_ok(),
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
                if let (Ok(view), Ok(tree)) = (ours, theirs) {
                    let got = view
                        .get("k")
                        .and_then(|r| r.as_str().map(|s| s.into_owned()));
                    assert_eq!(got.as_deref(), tree["k"].as_str());
                }
            }
        }
    }
}

#[test]
fn byte_strings_of_every_short_length_differ_at_every_position() {
    for n in 0..=40usize {
        let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(same_bytes(&a, &a.clone()), "{n}");
        for at in 0..n {
            let mut b = a.clone();
            b[at] ^= 0x20;
            assert!(!same_bytes(&a, &b), "length {n}, differing at {at}");
        }
        assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
    }
}

#[test]
fn short_copies_write_every_byte_of_every_length() {
    for n in 0..=SHORT + 8 {
        let src: Vec<u8> = (0..n).map(|i| i as u8 + 1).collect();
        let mut dst = vec![0u8; n];
        copy_short(&mut dst, &src);
        if n <= SHORT {
            assert_eq!(dst, src, "length {n}");
        } else {
            assert!(
                dst.iter().all(|&b| b == 0),
                "length {n}: too long, untouched"
            );
        }
        // Lengths that differ copy nothing.
        let mut longer = vec![0u8; n + 1];
        copy_short(&mut longer, &src);
        assert!(longer.iter().all(|&b| b == 0), "length {n} into {}", n + 1);
        // `append` (in Wasm, `append_short` up to `SHORT`) leaves what was
        // there and adds exactly `src`.
        let mut buf = b"{\"k\":".to_vec();
        append(&mut buf, &src);
        assert_eq!(&buf[..5], b"{\"k\":");
        assert_eq!(&buf[5..], &src[..]);
        let mut buf = b"{\"k\":".to_vec();
        assert_eq!(append_short(&mut buf, &src), n <= SHORT, "length {n}");
        let want: &[u8] = if n <= SHORT { &src } else { &[] };
        assert_eq!(&buf[..5], b"{\"k\":");
        assert_eq!(&buf[5..], want, "length {n}");
    }
}

#[test]
fn keys_compare_equal_only_when_every_byte_does() {
    let names = [
        "",
        "a",
        "ts",
        "order_id",
        "order_ie",
        "customer_id",
        "customer_ie",
        "dustomer_id",
        "abcdefghijklmnop",
        "abcdefghijklmnoq",
        "bbcdefghijklmnop",
    ];
    for a in names {
        for b in names {
            assert_eq!(
                same_bytes(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} {b:?}"
            );
        }
    }
    let view =
        JsonView::parse(br#"{"customer_id":1,"customer_ie":2,"dustomer_id":3}"#).expect("valid");
    assert_eq!(view.get("customer_id").map(|r| r.text()), Some("1"));
    assert_eq!(view.get("dustomer_id").map(|r| r.text()), Some("3"));
    assert!(view.get("customer_i").is_none());
}

#[test]
fn keys_are_written_as_serde_json_writes_them() {
    for key in [
        "plain",
        "",
        "with space",
        "quo\"te",
        "back\\slash",
        "tab\t",
        "\u{1}",
        "caf\u{e9} \u{1f600}",
        "del\u{7f}",
    ] {
        let mut buf = Vec::new();
        let mut w = ObjectWriter::new(&mut buf);
        w.raw(key, Raw(b"1"));
        w.raw_at(&JsonKey::new(key), Raw(b"2"));
        w.value_at(&JsonKey::new(key), &serde_json::json!([3]));
        w.finish();
        let k = serde_json::to_string(key).expect("str");
        let want = format!("{{{k}:1,{k}:2,{k}:[3]}}");
        assert_eq!(String::from_utf8(buf).expect("utf8"), want, "{key:?}");
    }
}

#[test]
fn values_are_written_as_serde_json_writes_them() {
    use serde_json::json;
    let values = [
        json!(0),
        json!(-1),
        json!(7),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.0),
        json!(1e300),
        json!(100.0),
        json!(null),
        json!(true),
        json!("s\"q"),
        json!({"a": [1, 2.5]}),
    ];
    for value in values {
        let mut buf = Vec::new();
        let mut w = ObjectWriter::new(&mut buf);
        w.value_at(&JsonKey::new("k"), &value);
        w.finish();
        let want = format!("{{\"k\":{}}}", serde_json::to_string(&value).expect("json"));
        assert_eq!(String::from_utf8(buf).expect("utf8"), want, "{value}");
    }
}

#[test]
fn a_compact_run_writes_what_its_fields_one_by_one_write() {
    let inputs = [
        r#"{"a":1,"bb":"x","c":{"d":[1,2]},"e":null}"#,
        r#"{"a":1, "bb":"x","c" :2,"e": 3}"#,
        "{\"a\":1,\"b\\u0062\":2,\"c\":3}",
        r#"{ "a":1,"bb":2 }"#,
        r#"{"a":1,"a":2,"a":3}"#,
        r#"{}"#,
    ];
    let mut runs = 0;
    let (mut table, mut parser) = (Vec::new(), JsonParser::new());
    for input in inputs {
        let view = JsonView::parse(input.as_bytes()).expect("json");
        // The same view from the host's field table finds the same runs.
        table.clear();
        assert!(super::table::encode(input.as_bytes(), &mut table).expect("json"));
        let (mut decoded, mut scanned) = (Vec::new(), Vec::new());
        assert!(super::table::decode(input.as_bytes(), &table, &mut decoded));
        scan_root(input.as_bytes(), &mut scanned).expect("json");
        assert_eq!(
            decoded, scanned,
            "{input}: the table's entries are the scan's"
        );
        let from_table = parser
            .parse_with_table(input.as_bytes(), Some(&table))
            .expect("json");
        for first in 0..view.len() + 2 {
            for last in 0..view.len() + 2 {
                assert_eq!(
                    from_table.compact_run(first, last).map(|r| r.0),
                    view.compact_run(first, last).map(|r| r.0),
                    "{input} {first}..={last} from the table"
                );
                if last < first {
                    assert!(
                        view.compact_run(first, last).is_none(),
                        "{input} {first}..={last}"
                    );
                    continue;
                }
                // Compact exactly when the input, from the first key's quote
                // to the last value's end, is the fields written one by one
                // and no key has an escape.
                let expected = (last < view.len()).then(|| {
                    let at = |b: &[u8]| b.as_ptr() as usize - input.as_ptr() as usize;
                    let (k0, _) = view.field(first);
                    let (_, vn) = view.field(last);
                    let slice =
                        &input[at(k0.escaped_text()) - 1..at(vn.bytes()) + vn.bytes().len()];
                    let joined: Vec<String> = (first..=last)
                        .map(|i| {
                            let (k, v) = view.field(i);
                            format!(
                                "\"{}\":{}",
                                String::from_utf8_lossy(k.escaped_text()),
                                v.text()
                            )
                        })
                        .collect();
                    let escaped = (first..=last).any(|i| view.field(i).0.has_escape());
                    !escaped && slice == joined.join(",")
                });
                assert_eq!(
                    view.compact_run(first, last).is_some(),
                    expected == Some(true),
                    "{input} {first}..={last}"
                );
                let Some(run) = view.compact_run(first, last) else {
                    continue;
                };
                runs += 1;
                let (mut whole, mut each) = (Vec::new(), Vec::new());
                let mut w = ObjectWriter::new(&mut whole);
                w.raw("z", Raw::NULL);
                w.raw_run(run);
                w.finish();
                let mut w = ObjectWriter::new(&mut each);
                w.raw("z", Raw::NULL);
                for i in first..=last {
                    let (k, v) = view.field(i);
                    w.raw_field(k, v);
                }
                w.finish();
                assert_eq!(
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&each),
                    "{input} {first}..={last}"
                );
            }
        }
    }
    assert!(runs >= 16, "{runs} runs");
    // Spaces or an escape inside the range refuse it; around it they do not.
    let view = JsonView::parse(br#"{"a":1, "b":2,"c":3}"#).expect("json");
    assert!(view.compact_run(0, 1).is_none());
    assert_eq!(
        view.compact_run(1, 2).map(|r| r.0),
        Some(&br#""b":2,"c":3"#[..])
    );
    let view = JsonView::parse(b"{\"a\":1,\"\\u0062\":2}").expect("json");
    assert!(view.compact_run(1, 1).is_none());
    assert!(view.compact_run(0, 0).is_some());
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const WS: &[&str] = &["", "", "", " ", "\n", "\t ", "\r\n  "];
const STRINGS: &[&str] = &[
    "",
    "a",
    "order_id",
    "caf\u{e9} \u{1f600}",
    "\\\"",
    "\\\\",
    "\\\\\\\"x",
    "a\\/b\\b\\f\\n\\r\\t",
    "\\u00e9\\ud83d\\ude00",
    "\\\\\\\\\\\\\\\\",
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    "\u{7f}",
];
const SCALARS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-12",
    "3.25",
    "1e5",
    "-2.5E-3",
    "9007199254740993",
    "true",
    "false",
    "null",
];

fn ws(r: &mut Rng, out: &mut String) {
    out.push_str(r.pick(WS));
}

fn value(r: &mut Rng, depth: usize, out: &mut String) {
    let kind = if depth >= 6 { r.below(2) } else { r.below(5) };
    match kind {
        0 => out.push_str(r.pick(SCALARS)),
        1 => {
            out.push('"');
            for _ in 0..r.below(3) {
                out.push_str(r.pick(STRINGS));
            }
            out.push('"');
        }
        2 => {
            out.push('[');
            for i in 0..r.below(4) {
                if i > 0 {
                    out.push(',');
                }
                ws(r, out);
                value(r, depth + 1, out);
                ws(r, out);
            }
            out.push(']');
        }
        _ => object(r, depth + 1, out),
    }
}

fn object(r: &mut Rng, depth: usize, out: &mut String) {
    out.push('{');
    ws(r, out);
    for i in 0..r.below(8) {
        if i > 0 {
            out.push(',');
            ws(r, out);
        }
        out.push('"');
        out.push_str(r.pick(STRINGS));
        out.push('"');
        ws(r, out);
        out.push(':');
        ws(r, out);
        value(r, depth, out);
        ws(r, out);
    }
    out.push('}');
}

/// Bytes a mutation writes: every class the scan tells apart.
const BYTES: &[u8] = b"\"\\{}[]:, \t\n\r\x00\x01\x1f\x7fa0-.eEtu\xc3\xa9\xff\xed";

fn mutate(r: &mut Rng, b: &mut Vec<u8>) {
    let at = r.below(b.len() + 1);
    match r.below(4) {
        0 if at < b.len() => b[at] = r.pick(BYTES),
        1 => b.insert(at, r.pick(BYTES)),
        2 if at < b.len() => {
            b.remove(at);
        }
        _ => {
            // A run of backslashes, which moves every escape after it.
            for _ in 0..r.below(4) + 1 {
                b.insert(at.min(b.len()), b'\\');
            }
        }
    }
}

/// Whether the scanner accepts what `serde_json` accepts, and its table of
/// an object's fields describes the object: the fields rebuilt from their
/// raw slices parse to the same value (duplicates, last wins, included).
fn agrees_with_serde(b: &[u8]) {
    let mut fields = Vec::new();
    let ours = scan_root(b, &mut fields);
    let theirs = serde_json::from_slice::<Value>(b);
    let show = || String::from_utf8_lossy(b).into_owned();
    // `check_syntax` takes all the scanner takes, and no more than
    // `IgnoredAny`; it refuses only what has a `\u` escape (a lone
    // surrogate; these values nest too shallowly to reach the depth cap).
    let syntax = check_syntax(b).is_ok();
    let ignored = serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok();
    assert!(ours.is_err() || syntax, "check_syntax refused {:?}", show());
    assert!(!syntax || ignored, "IgnoredAny refused {:?}", show());
    assert!(
        syntax || !ignored || b.windows(2).any(|w| w == b"\\u"),
        "check_syntax refused what IgnoredAny takes: {:?}",
        show()
    );
    match (&ours, &theirs) {
        // A number past f64 is valid JSON here (copied as text).
        (Ok(()), Err(e)) if e.to_string().contains("number out of range") => return,
        _ => assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{ours:?} / {theirs:?} on {:?}",
            show()
        ),
    }
    let Ok(value) = theirs else { return };
    if !value.is_object() {
        assert!(fields.is_empty(), "fields of a non-object {:?}", show());
        return;
    }
    let mut rebuilt = b"{".to_vec();
    for (i, e) in fields.iter().enumerate() {
        if i > 0 {
            rebuilt.push(b',');
        }
        let key = &b[e.key.0..e.key.1];
        assert_eq!(
            e.escaped,
            key.contains(&b'\\'),
            "escape flag in {:?}",
            show()
        );
        rebuilt.push(b'"');
        rebuilt.extend_from_slice(key);
        rebuilt.extend_from_slice(b"\":");
        let raw = &b[e.value.0..e.value.1];
        assert_eq!(trim(raw), raw, "value with whitespace in {:?}", show());
        rebuilt.extend_from_slice(raw);
    }
    rebuilt.push(b'}');
    let again = serde_json::from_slice::<Value>(&rebuilt).ok();
    assert_eq!(again.as_ref(), Some(&value), "fields of {:?}", show());
}

#[test]
fn scanner_agrees_with_serde_json_on_generated_and_mutated_values() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let mut text = String::new();
        // Leading text of every length moves every token across word and
        // block boundaries.
        text.push_str(&" ".repeat(round % 70));
        if round % 5 == 0 {
            value(&mut r, 0, &mut text);
        } else {
            object(&mut r, 0, &mut text);
        }
        ws(&mut r, &mut text);
        let mut b = text.into_bytes();
        agrees_with_serde(&b);
        for _ in 0..8 {
            mutate(&mut r, &mut b);
            agrees_with_serde(&b);
        }
    }
}

#[test]
fn scanner_agrees_with_serde_json_on_every_short_input() {
    // Every string of up to three bytes from the classes that matter, alone,
    // as a field's value and inside a string, at offsets around 8-byte words.
    let alphabet = b"\"\\{}[]:, \x01a0-.e\xc3\xa9";
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    for len in 1..=3 {
        let mut next = Vec::new();
        for s in inputs.iter().filter(|s| s.len() == len - 1) {
            for &c in alphabet {
                let mut t = s.clone();
                t.push(c);
                next.push(t);
            }
        }
        inputs.extend(next);
    }
    for s in &inputs {
        agrees_with_serde(s);
        for pad in [0, 5, 6, 7, 13] {
            let mut b = format!("{{\"k\":\"{}\",\"v\":", "x".repeat(pad)).into_bytes();
            b.extend_from_slice(s);
            b.extend_from_slice(b"}");
            agrees_with_serde(&b);
            let mut quoted = format!("{{\"{}\":\"", "y".repeat(pad)).into_bytes();
            quoted.extend_from_slice(s);
            quoted.extend_from_slice(b"\"}");
            agrees_with_serde(&quoted);
        }
    }
}

#[test]
fn scanner_agrees_with_serde_json_on_backslash_runs_and_split_scalars() {
    // Backslash runs of every length ending at every offset: an odd run
    // escapes the quote after it.
    for run in 1..=6 {
        for end in 6..40 {
            let mut b = b"{\"a\":\"".to_vec();
            while b.len() + run < end {
                b.push(b'x');
            }
            b.extend(std::iter::repeat_n(b'\\', run));
            b.extend_from_slice(b"\"\"}");
            agrees_with_serde(&b);
            b.truncate(b.len() - 2);
            b.extend_from_slice(b"}");
            agrees_with_serde(&b);
        }
    }
    for pad in 0..20 {
        for scalar in [
            "123456789",
            "-1.5e10",
            "true",
            "nul",
            "12x",
            "1 2",
            "0.",
            "-",
            "1e+",
        ] {
            agrees_with_serde(format!("{{{}\"n\":{scalar}}}", " ".repeat(pad)).as_bytes());
        }
    }
}

#[test]
fn utf8_errors_after_valid_text_are_reported_where_std_finds_them() {
    // Once the rest of a value fails the one-pass check, the byte-by-byte
    // check must still name the first bad byte, after any valid non-ASCII
    // text before it, in this string or an earlier one.
    let err = |b: &[u8]| JsonView::parse(b).map(|_| ()).expect_err("not UTF-8");
    assert_eq!(err(b"{\"a\":\"\xc3\xa9\",\"b\":\"x\xffy\"}").offset, 16);
    assert_eq!(err(b"{\"a\":\"\xc3\xa9\xc3\"}").offset, 8);
    let pieces: &[&[u8]] = &[
        b"a",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
        b"\xf0\x9f\x98\x80",
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xe2\x82",
        b"\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
    ];
    let mut r = Rng(7);
    for _ in 0..5000 {
        let mut text = Vec::new();
        for _ in 0..r.below(8) {
            text.extend_from_slice(r.pick(pieces));
        }
        let mut value = b"{\"k\":\"".to_vec();
        value.extend_from_slice(&text);
        value.extend_from_slice(b"\"}");
        match std::str::from_utf8(&text) {
            Ok(_) => assert!(JsonView::parse(&value).is_ok(), "{value:?}"),
            Err(e) => {
                let got = err(&value);
                assert_eq!(got.message, "invalid UTF-8", "{value:?}");
                assert_eq!(got.offset, 6 + e.valid_up_to(), "{value:?}");
            }
        }
    }
}

#[test]
fn check_syntax_skips_only_the_utf8_check_of_string_text() {
    // Broken UTF-8 inside strings: only `check` refuses it.
    for text in [
        &b"{\"a\":\"\xff\"}"[..],
        b"[\"\xc3\"]",
        b"\"\xed\xa0\x80 \xf4\x90\x80\x80\"",
    ] {
        assert!(check_syntax(text).is_ok(), "{text:?}");
        assert_eq!(check(text).map_err(|e| e.message), Err("invalid UTF-8"));
    }
    // Everything else as `check`: the grammar, escapes, controls, nesting.
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let over = deep(MAX_DEPTH + 1);
    let at_cap = deep(MAX_DEPTH);
    for text in [
        &br#"{"a":"\ud800"}"#[..],
        br#"{"a":"\x"}"#,
        b"{\"a\":\"\x01\"}",
        b"\xff",
        b"{\"a\":1,}",
        b"{\"\xc3\xa9\":1} \xc3\xa9",
        over.as_bytes(),
    ] {
        assert!(check_syntax(text).is_err(), "{text:?}");
        assert_eq!(
            check_syntax(text).map_err(|e| e.offset),
            check(text).map_err(|e| e.offset),
            "{text:?}"
        );
    }
    assert!(check_syntax(at_cap.as_bytes()).is_ok());
    assert!(check_syntax(br#"{"a":"\ud83d\ude00 \u00e9","b":[1e400,-0.5]}"#).is_ok());
}

/// Where plain ASCII string text ends, byte by byte, against what
/// [`plain_run_end`] (and [`text_run_end`], which non-ASCII bytes do not
/// stop) finds in blocks (16 bytes with SSE2 on x86-64, then 8):
/// the first stop byte, or, when there is none in whole 8-byte words, where
/// the words end (fewer than 8 bytes before the end, for the caller to read
/// one at a time).
#[test]
fn plain_text_ends_at_the_first_quote_backslash_control_or_non_ascii_byte() {
    let reference = |b: &[u8], p: usize| {
        (p..b.len())
            .find(|&i| matches!(b[i], b'"' | b'\\' | 0..=0x1f | 0x80..=0xff))
            .unwrap_or(b.len())
    };
    // 0x7f and 0x20 are plain; the others stop it.
    let bytes = [b'"', b'\\', 0x00, 0x1f, 0x80, 0xc3, 0xff, 0x7f, b' ', b'a'];
    for len in 0..48 {
        for at in 0..=len {
            for stop in bytes {
                let mut b = vec![b'x'; len];
                if at < len {
                    b[at] = stop;
                }
                for start in [0, 1, 7, 15, 16, 17].into_iter().filter(|&s| s <= len) {
                    let (got, first) = (plain_run_end(&b, start), reference(&b, start));
                    assert!(
                        got == first || (got < first && b.len() - got < 8),
                        "{len} bytes, {stop:#x} at {at}, from {start}: {got}, not {first}"
                    );
                    // Text that may hold non-ASCII bytes (known UTF-8)
                    // ends only at a quote, a backslash or a control.
                    let text_end = (start..b.len())
                        .find(|&i| matches!(b[i], b'"' | b'\\' | 0..=0x1f))
                        .unwrap_or(b.len());
                    assert_eq!(
                        text_run_end(&b, start),
                        text_end,
                        "text: {len} bytes, {stop:#x} at {at}, from {start}"
                    );
                }
            }
        }
    }
}
