//! JSON text for the generators, and the canonical form outputs are compared in.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Writes one JSON object field by field, in the order given, so the
/// generated events have a fixed layout and exact number text (`12.30`).
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_str(self.out, k);
        self.out.push(':');
    }

    /// A string field, escaped as JSON requires.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str(self.out, v);
        self
    }

    /// A field whose value is already JSON text (numbers, booleans, arrays).
    pub fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.out.push_str(v);
        self
    }

    /// An integer field.
    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    /// A number with exactly two decimals, from hundredths.
    pub fn cents(&mut self, k: &str, hundredths: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{}.{:02}", hundredths / 100, hundredths % 100);
        self
    }

    /// A nested object, written by `f`.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut inner = Obj::open(self.out);
        f(&mut inner);
        inner.close();
        self
    }

    /// Closes the object.
    pub fn close(self) {
        self.out.push('}');
    }
}

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut String, s: &str) {
    // serde_json's escaping, so generated text is valid JSON whatever `s` holds.
    out.push_str(&Value::from(s).to_string());
}

/// `items` as a JSON array of strings.
pub fn str_array<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, s);
    }
    out.push(']');
    out
}

/// One value as canonical text: object keys sorted, and a number written
/// the same whether it arrived as `1230` or `1230.0`, so two producers that
/// agree on the data agree on the text.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, k);
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (_, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                let _ = write!(out, "{}", f as i64);
            }
            (_, _, Some(f)) => {
                let _ = write!(out, "{f:?}");
            }
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// What a JSON-lines output holds, independent of line order: the number of
/// lines and two order-free sums of their canonical forms' hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// Lines.
    pub lines: u64,
    sum: u64,
    xor: u64,
}

/// Reads `path` and digests its lines (each must be JSON).
pub fn digest(path: &Path) -> Result<Digest> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut d = Digest {
        lines: 0,
        sum: 0,
        xor: 0,
    };
    let mut text = String::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        text.clear();
        canonical(&v, &mut text);
        // SipHash with fixed keys: the same text gives the same hash in every run.
        let mut h = DefaultHasher::new();
        h.write(text.as_bytes());
        let h = h.finish();
        d.lines += 1;
        d.sum = d.sum.wrapping_add(h);
        d.xor ^= h;
    }
    Ok(d)
}

/// The first line, by position, where two JSON-lines files differ in
/// canonical form, for the error message when their digests differ.
pub fn first_difference(a: &Path, b: &Path) -> Result<Option<(u64, String, String)>> {
    let read = |p: &Path| -> Result<std::io::Lines<std::io::BufReader<std::fs::File>>> {
        Ok(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )
        .lines())
    };
    let canon = |line: &str| -> String {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => {
                let mut s = String::new();
                canonical(&v, &mut s);
                s
            }
            Err(_) => line.to_string(),
        }
    };
    let (mut la, mut lb) = (read(a)?, read(b)?);
    let mut n = 0u64;
    loop {
        n += 1;
        match (la.next().transpose()?, lb.next().transpose()?) {
            (None, None) => return Ok(None),
            (x, y) => {
                let (x, y) = (
                    x.as_deref().map(canon).unwrap_or_else(|| "(end)".into()),
                    y.as_deref().map(canon).unwrap_or_else(|| "(end)".into()),
                );
                if x != y {
                    return Ok(Some((n, x, y)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        let mut out = String::new();
        canonical(&serde_json::from_str(s).expect("json"), &mut out);
        out
    }

    #[test]
    fn canonical_form_ignores_key_order_and_integral_float_spelling() {
        assert_eq!(
            canon(r#"{"b":1230.0,"a":{"y":[1,"é"],"x":null}}"#),
            canon(r#"{"a":{"x":null,"y":[1,"é"]},"b":1230}"#)
        );
        assert_ne!(canon(r#"{"a":1.5}"#), canon(r#"{"a":1}"#));
        assert_ne!(canon(r#"{"a":"1"}"#), canon(r#"{"a":1}"#));
    }

    #[test]
    fn digests_agree_across_line_order_and_differ_on_a_changed_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let a = write("a", "{\"x\":1,\"y\":\"p\"}\n{\"x\":2}\n");
        let b = write("b", "{\"x\":2.0}\n{\"y\":\"p\",\"x\":1}\n");
        let c = write("c", "{\"x\":2}\n{\"y\":\"q\",\"x\":1}\n");
        let (da, db, dc) = (
            digest(&a).expect("a"),
            digest(&b).expect("b"),
            digest(&c).expect("c"),
        );
        assert_eq!(da, db);
        assert_eq!(da.lines, dc.lines);
        assert_ne!(da, dc);
        let diff = first_difference(&a, &c).expect("read");
        assert_eq!(
            diff,
            Some((
                1,
                "{\"x\":1,\"y\":\"p\"}".to_string(),
                "{\"x\":2}".to_string()
            ))
        );
    }

    #[test]
    fn obj_writes_exact_number_text_and_escapes_strings() {
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.cents("price", 1230).str("q", "a\"b").int("n", -3);
        o.obj("in", |i| {
            i.raw("t", "true");
        });
        o.close();
        assert_eq!(s, r#"{"price":12.30,"q":"a\"b","n":-3,"in":{"t":true}}"#);
    }
}
