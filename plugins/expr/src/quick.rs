//! Conditions answered straight from a zero-copy view, without building a
//! `serde_json::Value` per field read.
//!
//! Most `where` clauses compare top-level fields with literals
//! (`currency != 'aud'`, `status in ('paid', 'shipped') and total > 100`). For
//! those, [`Expr::load`] built a `Value` per field (a copy of each string and
//! its UTF-8 check) and the tree evaluation wrapped every step in a
//! `Cow<Value>`: in Wasm that was about a third of the filter's own
//! instructions. Here such a condition is compiled once, at parse time, into a
//! small tree over field slots, and answered on the fields' raw text.
//!
//! Only cases whose answer is certain to equal the general path's take it:
//! - the condition is made of comparisons of a top-level field with a string,
//!   boolean or 64-bit integer literal, `in` lists of such literals,
//!   `is [not] null`, `and`, `or` and `not`;
//! - and, per event, every field it reads is absent, `null`, a boolean, a
//!   string without backslash escapes, or an integer of at most 18 digits.
//!
//! Any other value (a decimal, an exponent, an escaped string, an array...)
//! makes [`Expr::read_quick`] answer `None` and the caller takes the general
//! path for that event, which also keeps its errors (a number serde_json
//! cannot hold fails the event there, as before).

use std::cmp::Ordering;

use serde_json::Value;
use sluice_sdk::json::table::Lookup;
use sluice_sdk::json::{same_bytes, JsonView, Kind, Raw};

use crate::ast::{CmpOp, Node};
use crate::{eval, Expr};

/// Fields a quick condition may read: a fixed array, so reading them
/// allocates nothing.
pub const QUICK_FIELDS: usize = 8;

/// A literal a quick comparison compares with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Str(Box<[u8]>),
    Bool(bool),
    Int(i64),
}

/// A condition over field slots (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Quick {
    /// `field op literal` (a literal on the left is turned around).
    Cmp(CmpOp, usize, Lit),
    In {
        slot: usize,
        list: Box<[Lit]>,
        negated: bool,
    },
    IsNull {
        slot: usize,
        negated: bool,
    },
    Not(Box<Quick>),
    And(Box<Quick>, Box<Quick>),
    Or(Box<Quick>, Box<Quick>),
}

/// One field's value as the quick path reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    Absent,
    Null,
    Bool(bool),
    Int(i64),
    /// A string's text between the quotes, which has no escape.
    Str(&'a [u8]),
}

/// The fields a quick condition reads, from one event ([`Expr::read_quick`]).
#[derive(Clone, Copy, Debug)]
pub struct QuickFields<'a> {
    pub(crate) values: [Field<'a>; QUICK_FIELDS],
    pub(crate) len: usize,
}

impl QuickFields<'_> {
    pub(crate) fn get(&self, slot: usize) -> Field<'_> {
        self.values
            .get(slot)
            .filter(|_| slot < self.len)
            .copied()
            .unwrap_or(Field::Absent)
    }
}

/// The top-level field slot of a one-name field path.
pub(crate) fn top_slot(node: &Node) -> Option<usize> {
    match node {
        Node::Field(path, slot) => {
            let mut names = path.names();
            names.next()?;
            names.next().is_none().then_some(*slot)
        }
        _ => None,
    }
}

fn literal(node: &Node) -> Option<Lit> {
    match node {
        Node::Lit(Value::String(s)) => Some(Lit::Str(s.as_bytes().into())),
        Node::Lit(Value::Bool(b)) => Some(Lit::Bool(*b)),
        // Only what `short_int` reads back exactly: the comparison is then
        // the general path's `i64` comparison.
        Node::Lit(Value::Number(n)) => n
            .as_i64()
            .filter(|i| i.unsigned_abs() < 1_000_000_000_000_000_000)
            .map(Lit::Int),
        _ => None,
    }
}

fn flipped(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        same => same,
    }
}

/// Compiles `node` when all of it has a quick form.
pub(crate) fn compile(node: &Node) -> Option<Quick> {
    Some(match node {
        Node::Cmp(op, a, b) => match (top_slot(a), top_slot(b)) {
            (Some(slot), None) => Quick::Cmp(*op, slot, literal(b)?),
            (None, Some(slot)) => Quick::Cmp(flipped(*op), slot, literal(a)?),
            _ => return None,
        },
        Node::In {
            value,
            list,
            negated,
        } => Quick::In {
            slot: top_slot(value)?,
            list: list.iter().map(literal).collect::<Option<_>>()?,
            negated: *negated,
        },
        Node::IsNull { value, negated } => Quick::IsNull {
            slot: top_slot(value)?,
            negated: *negated,
        },
        Node::Not(a) => Quick::Not(Box::new(compile(a)?)),
        Node::And(a, b) => Quick::And(Box::new(compile(a)?), Box::new(compile(b)?)),
        Node::Or(a, b) => Quick::Or(Box::new(compile(a)?), Box::new(compile(b)?)),
        _ => return None,
    })
}

/// An integer of at most 18 digits, as JSON writes it (the view checked
/// the grammar); `None` for anything else, including `-0` (serde_json
/// reads it as the float `-0.0`; left to it to be sure).
fn short_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || (negative && digits == b"0") {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// How the quick path reads one raw value; `None` sends the event down the
/// general path.
fn field(raw: Option<Raw<'_>>) -> Option<Field<'_>> {
    let Some(raw) = raw else {
        return Some(Field::Absent);
    };
    match raw.kind() {
        Kind::Null => Some(Field::Null),
        Kind::Bool => raw.as_bool().map(Field::Bool),
        Kind::Number => short_int(raw.bytes()).map(Field::Int),
        Kind::String => match raw.bytes() {
            [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => Some(Field::Str(inner)),
            _ => None,
        },
        Kind::Array | Kind::Object => None,
    }
}

/// The general path's `compare` of a present, non-null field with a
/// literal: `None` for different types.
fn compare(field: Field<'_>, lit: &Lit) -> Option<Ordering> {
    match (field, lit) {
        (Field::Str(s), Lit::Str(l)) => Some(s.cmp(&l[..])),
        (Field::Int(i), Lit::Int(l)) => Some(i.cmp(l)),
        (Field::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

fn equals(field: Field<'_>, lit: &Lit) -> Option<bool> {
    match (field, lit) {
        // Word by word, as the general path compares strings.
        (Field::Str(s), Lit::Str(l)) => Some(same_bytes(s, l)),
        _ => compare(field, lit).map(|o| o == Ordering::Equal),
    }
}

impl Quick {
    /// SQL three-valued truth, as `Node::as_bool` answers it.
    fn truth(&self, fields: &QuickFields<'_>) -> Option<bool> {
        match self {
            Quick::Cmp(op, slot, lit) => {
                let f = fields.get(*slot);
                if matches!(f, Field::Absent | Field::Null) {
                    return None;
                }
                eval::answer(*op, || equals(f, lit), || compare(f, lit))
            }
            Quick::In {
                slot,
                list,
                negated,
            } => {
                let f = fields.get(*slot);
                if matches!(f, Field::Absent | Field::Null) {
                    return None;
                }
                // No literal in a quick list is null, so "nothing matched"
                // is a plain false.
                let hit = list.iter().any(|l| equals(f, l) == Some(true));
                Some(hit != *negated)
            }
            Quick::IsNull { slot, negated } => {
                Some(matches!(fields.get(*slot), Field::Absent | Field::Null) != *negated)
            }
            Quick::Not(a) => a.truth(fields).map(|b| !b),
            Quick::And(a, b) => eval::and(a.truth(fields), || b.truth(fields)),
            Quick::Or(a, b) => eval::or(a.truth(fields), || b.truth(fields)),
        }
    }
}

impl Expr {
    /// Reads the fields this condition needs from `view` and hands them to
    /// `then` (for [`Expr::matches_quick`] and [`Watch::observe_quick`]),
    /// without building values; `None`, without calling `then`, when the
    /// condition or this event's values need the general path
    /// ([`Expr::load`] and [`Expr::matches_loaded`]), which gives the same
    /// answer. See the `quick` module docs for what qualifies.
    ///
    /// [`Watch::observe_quick`]: crate::Watch::observe_quick
    // A callback and inlined, so the fields stay in one frame: returning
    // them moved them with a `memcpy` call per event.
    #[inline]
    pub fn read_quick<'a, R>(
        &self,
        view: &JsonView<'a>,
        then: impl FnOnce(&QuickFields<'a>) -> R,
    ) -> Option<R> {
        if !view.is_object() {
            return None;
        }
        self.read_quick_by(|name| Some(view.get(name)), then)
    }

    /// [`Expr::read_quick`] from the host's field table read in place
    /// ([`Event::table_lookup`]), without a view: `None` also when the
    /// table cannot answer (an escaped key), and then the view can.
    ///
    /// [`Event::table_lookup`]: sluice_sdk::Event::table_lookup
    #[inline]
    pub fn read_quick_in<'a, R>(
        &self,
        table: &Lookup<'a>,
        then: impl FnOnce(&QuickFields<'a>) -> R,
    ) -> Option<R> {
        self.read_quick_by(|name| table.get(name).ok(), then)
    }

    #[inline]
    fn read_quick_by<'a, R>(
        &self,
        get: impl Fn(&str) -> Option<Option<Raw<'a>>>,
        then: impl FnOnce(&QuickFields<'a>) -> R,
    ) -> Option<R> {
        self.quick.as_ref()?;
        let mut fields = QuickFields {
            values: [Field::Absent; QUICK_FIELDS],
            len: self.fields.len(),
        };
        for (name, value) in self.fields.iter().zip(fields.values.iter_mut()) {
            *value = field(get(name)?)?;
        }
        Some(then(&fields))
    }

    /// What [`Expr::matches_loaded`] answers for the same event, from fields
    /// read by [`Expr::read_quick`].
    #[inline]
    pub fn matches_quick(&self, fields: &QuickFields<'_>) -> bool {
        self.quick
            .as_ref()
            .is_some_and(|q| q.truth(fields) == Some(true))
    }
}

/// The quick form of a parsed condition, if it has one and reads few
/// enough fields.
pub(crate) fn of(root: &Node, fields: usize) -> Option<Box<Quick>> {
    if fields > QUICK_FIELDS {
        return None;
    }
    compile(root).map(Box::new)
}

#[cfg(test)]
mod tests {
    use sluice_sdk::json::table::Lookup;
    use sluice_sdk::json::JsonParser;

    use crate::test_rng::Rng;
    use crate::{Expr, ViewFields};

    /// Names events have.
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];

    /// Names conditions read: one no event has (a typo, for the watch).
    const READ: [&str; 5] = ["a", "b", "c", "d", "amout"];

    /// Field values of every kind the quick path reads or refuses.
    const VALUES: [&str; 22] = [
        r#""usd""#,
        r#""aud""#,
        r#""""#,
        r#""2000-01-01""#,
        r#""1999-12-31T23:59""#,
        r#""us\u0064""#,
        r#""a\"b""#,
        r#""é""#,
        "0",
        "7",
        "-7",
        "100",
        "-0",
        "7.0",
        "1e2",
        "123456789012345678",
        "1234567890123456789",
        "true",
        "false",
        "null",
        "[1,2]",
        r#"{"x":1}"#,
    ];

    const LITERALS: [&str; 20] = [
        "999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "-9223372036854775808",
        "'usd'",
        "'aud'",
        "''",
        "'2000-01-01'",
        "'é'",
        "'us'",
        "7",
        "-7",
        "0",
        "100",
        "7.5",
        "1e2",
        "true",
        "false",
        "null",
        "'7'",
    ];

    fn condition(rng: &mut Rng, depth: usize) -> String {
        let field = READ[rng.below(READ.len())];
        let choice = if depth == 0 {
            rng.below(4)
        } else {
            rng.below(8)
        };
        match choice {
            0 | 1 => {
                let op = rng.pick(&["=", "!=", "<", "<=", ">", ">="]);
                let lit = rng.pick(&LITERALS);
                if rng.below(2) == 0 {
                    format!("{field} {op} {lit}")
                } else {
                    format!("{lit} {op} {field}")
                }
            }
            2 => {
                let n = 1 + rng.below(3);
                let items: Vec<&str> = (0..n).map(|_| rng.pick(&LITERALS)).collect();
                let not = if rng.below(2) == 0 { "" } else { "not " };
                format!("{field} {not}in ({})", items.join(", "))
            }
            3 => format!("{field} is {}null", rng.pick(&["", "not "])),
            4 => format!("not ({})", condition(rng, depth - 1)),
            5 | 6 => format!(
                "({}) {} ({})",
                condition(rng, depth - 1),
                rng.pick(&["and", "or"]),
                condition(rng, depth - 1)
            ),
            // Forms without a quick form: the general path must answer.
            _ => rng
                .pick(&["a.x = 1", "length(a) > 2", "a = b", "a || 'x' = 'ux'", "a"])
                .to_string(),
        }
    }

    fn event(rng: &mut Rng) -> String {
        let n = rng.below(6);
        let fields: Vec<String> = (0..n)
            .map(|_| {
                let name = NAMES[rng.below(NAMES.len())];
                // Now and then the key escaped (`\u0061` is `a`).
                let key = match rng.below(12) {
                    0 => format!("\\u00{:x}", u32::from(name.as_bytes()[0])),
                    _ => name.to_string(),
                };
                format!("\"{key}\":{}", rng.pick(&VALUES))
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    }

    /// Every quick answer is the general path's, over random conditions
    /// and events (duplicate and escaped keys, escaped strings, decimals,
    /// big integers and literals at the i64 limits, mixed types, absent
    /// fields), read from a view and from the host's table in place; and
    /// both quick paths are taken for most.
    #[test]
    fn quick_answers_are_the_general_answers() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parser = JsonParser::new();
        let mut loaded = ViewFields::default();
        let (mut quick, mut in_table, mut total) = (0, 0, 0);
        let mut table = Vec::new();
        for _ in 0..3_000 {
            let source = condition(&mut rng, 3);
            let expr = Expr::parse(&source).expect("generated conditions parse");
            for _ in 0..20 {
                let value = event(&mut rng);
                let view = parser
                    .parse(value.as_bytes())
                    .expect("generated events are JSON");
                let general = match expr.load(&view, &mut loaded) {
                    Ok(()) => Some(expr.matches_loaded(&loaded)),
                    Err(_) => None,
                };
                total += 1;
                if let Some(answer) = expr.read_quick(&view, |f| expr.matches_quick(f)) {
                    quick += 1;
                    assert_eq!(Some(answer), general, "`{source}` on {value}");
                }
                table.clear();
                let tabled = sluice_sdk::json::table::encode(value.as_bytes(), &mut table);
                assert_eq!(tabled, Ok(true), "{value}");
                let lookup = Lookup::new(value.as_bytes(), &table).expect("an object's table");
                if let Some(answer) = expr.read_quick_in(&lookup, |f| expr.matches_quick(f)) {
                    in_table += 1;
                    assert_eq!(Some(answer), general, "`{source}` on {value}, table");
                }
            }
        }
        assert!(
            quick * 3 > total && in_table * 3 > total,
            "quick paths taken {quick} and {in_table} times of {total}"
        );
    }

    /// A watch fed the quick path's fields says what it says when fed the
    /// general path's: the same warnings after the same events.
    #[test]
    fn the_watch_hears_the_same_from_either_path() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut parser = JsonParser::new();
        let mut loaded = ViewFields::default();
        let mut warned = 0;
        for _ in 0..300 {
            let source = condition(&mut rng, 2);
            let expr = Expr::parse(&source).expect("generated conditions parse");
            let (mut general, mut mixed) = (expr.watch(), expr.watch());
            for i in 0..150 {
                let value = event(&mut rng);
                let view = parser.parse(value.as_bytes()).expect("json");
                if expr.load(&view, &mut loaded).is_err() {
                    continue;
                }
                let heard = general.observe(&view, &loaded);
                let also = expr
                    .read_quick(&view, |fields| mixed.observe_quick(&view, fields))
                    .unwrap_or_else(|| mixed.observe(&view, &loaded));
                assert_eq!(heard, also, "`{source}`, event {i}: {value}");
                warned += heard.len();
            }
            assert_eq!(general.finish(), mixed.finish(), "`{source}` at the end");
        }
        assert!(warned > 0, "no warning was compared");
    }

    #[test]
    fn what_takes_the_quick_path() {
        let mut parser = JsonParser::new();
        let quick = |source: &str, value: &str, parser: &mut JsonParser| {
            let expr = Expr::parse(source).expect("parses");
            let view = parser.parse(value.as_bytes()).expect("json");
            expr.read_quick(&view, |f| expr.matches_quick(f))
        };
        let row = r#"{"currency":"usd","n":7,"ok":true,"x":null}"#;
        for (source, expected) in [
            ("currency != 'aud'", Some(true)),
            ("'usd' = currency and n >= 7", Some(true)),
            ("n < 7 or ok = false", Some(false)),
            (
                "currency in ('eur', 'usd') and not (x is not null)",
                Some(true),
            ),
            ("missing = 'a'", Some(false)),
            // No quick form: a decimal literal, a nested path, a function.
            ("n > 6.5", None),
            ("currency.x = 1", None),
            ("lower(currency) = 'usd'", None),
        ] {
            assert_eq!(quick(source, row, &mut parser), expected, "{source}");
        }
        // Values the quick path leaves to the general one.
        for value in [
            r#"{"currency":"us\u0064"}"#,
            r#"{"currency":1.5}"#,
            r#"{"currency":[1]}"#,
            r#"["currency"]"#,
        ] {
            assert_eq!(
                quick("currency = 'usd'", value, &mut parser),
                None,
                "{value}"
            );
        }
        // A field read only by an `and` that is already false still
        // decides the path: the general path would fail on `1e400`.
        assert_eq!(
            quick(
                "ok = false and n = 1",
                r#"{"ok":true,"n":1e400}"#,
                &mut parser
            ),
            None
        );
    }
}
