//! Arithmetic answered straight from a zero-copy view, without building a
//! `serde_json::Value` per field read or per step.
//!
//! A `set` such as `price_cents: round(price * 100)` went through
//! [`Expr::load`] (each field read built into a `Value` in a reused table),
//! then the tree evaluation (a `Cow<Value>` per step): in Wasm that was
//! over a fifth of the orders transform's instructions. Here such an
//! expression is compiled once, at parse time, into a small tree over
//! number slots, and each event's fields are read into those slots from
//! their raw text.
//!
//! What qualifies: arithmetic (`+ - * / %`, unary `-`, `abs`, `round`) at the
//! top, over top-level fields, number literals and more of the same. The
//! steps are `eval.rs`'s own (`arith`, `round`, `settled`, ...), applied in
//! the order `Node::eval` and `Node::num` apply them, so the answer is the
//! general path's. A field is read as [`Expr::load`] reads it
//! (`partial::raw_to_value`); where that fails (a number serde_json cannot
//! hold), [`Expr::number_in`] answers `None` and the caller's general path
//! fails the event as before.
//!
//! Each event is first evaluated on `i64` and `f64` ([`Lean`]), the same
//! steps in the same order: `Num`'s `i128` is a software routine per step
//! in Wasm. A field this path does not read (a string, a long number) or a
//! step past `i64` sends the event to the `Num` evaluation, which answers
//! exactly.

use serde_json::Value;
use sluice_sdk::json::{JsonView, Kind, Raw};

use crate::ast::{ArithOp, Func, Node};
use crate::eval::{
    absolute, absolute_lean, arith, arith_lean, negated, negated_lean, round, round_lean, Lean, Num,
};
use crate::quick::{top_slot, QUICK_FIELDS};
use crate::{partial, Expr};

/// An arithmetic expression over number slots (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arith {
    /// A literal that is a number, or `None` for one that is not (it reads
    /// as no number, as `Num::of` reads a string); and the same for the
    /// fast path, worked out once.
    Lit(Option<Num>, Lean),
    /// The top-level field with this slot in [`Expr::fields`].
    Field(usize),
    Op(ArithOp, Box<Arith>, Box<Arith>),
    Neg(Box<Arith>),
    Abs(Box<Arith>),
    Round(Box<Arith>, Option<Box<Arith>>),
}

/// Compiles an operand: anything `Node::num` reads without calling
/// `Node::eval` on it, plus one-name fields and literals.
fn operand(node: &Node) -> Option<Arith> {
    Some(match node {
        Node::Lit(Value::Number(n)) => {
            let n = Some(Num::of_number(n));
            Arith::Lit(n, Lean::of(n))
        }
        Node::Lit(_) => Arith::Lit(None, Lean::Null),
        Node::Field(..) => Arith::Field(top_slot(node)?),
        _ => top(node)?,
    })
}

/// Compiles an expression whose value is a number or null: arithmetic,
/// `-`, `abs` and `round` at its top.
fn top(node: &Node) -> Option<Arith> {
    let boxed = |n: &Node| operand(n).map(Box::new);
    Some(match node {
        Node::Arith(op, a, b) => Arith::Op(*op, boxed(a)?, boxed(b)?),
        Node::Neg(a) => Arith::Neg(boxed(a)?),
        Node::Call(Func::Abs, args) => match &args[..] {
            [x] => Arith::Abs(boxed(x)?),
            _ => return None,
        },
        Node::Call(Func::Round, args) => match &args[..] {
            [x] => Arith::Round(boxed(x)?, None),
            [x, digits] => Arith::Round(boxed(x)?, Some(boxed(digits)?)),
            _ => return None,
        },
        _ => return None,
    })
}

/// The arithmetic form of a parsed expression, if it has one and reads few
/// enough fields for a fixed array of slots.
pub(crate) fn of(root: &Node, fields: usize) -> Option<Box<Arith>> {
    if fields > QUICK_FIELDS {
        return None;
    }
    top(root).map(Box::new)
}

impl Arith {
    /// The value as `Node::num` gives it for an operand (settled).
    fn num(&self, slots: &[Option<Num>]) -> Option<Num> {
        match self {
            Arith::Lit(n, _) => *n,
            Arith::Field(slot) => slots.get(*slot).copied().flatten(),
            _ => self.value(slots)?.settled(),
        }
    }

    /// The value as `Node::eval` gives it at the top, before it becomes a
    /// `Value`: `None` is `null`.
    fn value(&self, slots: &[Option<Num>]) -> Option<Num> {
        match self {
            Arith::Lit(n, _) => *n,
            Arith::Field(slot) => slots.get(*slot).copied().flatten(),
            // The left operand first, as `eval` reads them.
            Arith::Op(op, a, b) => {
                let x = a.num(slots)?;
                arith(*op, x, b.num(slots)?)
            }
            Arith::Neg(a) => Some(negated(a.num(slots)?)),
            Arith::Abs(a) => Some(absolute(a.num(slots)?)),
            Arith::Round(x, digits) => {
                let x = x.num(slots)?;
                let digits = match digits {
                    Some(d) => d.num(slots).and_then(Num::as_int)?,
                    None => 0,
                };
                round(x, digits)
            }
        }
    }
}

impl Arith {
    /// [`Arith::num`] on the fast path.
    fn lean_num(&self, slots: &[Lean]) -> Lean {
        match self {
            Arith::Lit(_, n) => *n,
            Arith::Field(slot) => slots.get(*slot).copied().unwrap_or(Lean::Null),
            _ => self.lean_value(slots).settled(),
        }
    }

    /// [`Arith::value`] on the fast path: the same steps, on `i64` and
    /// `f64`; `Wide` where only [`Arith::value`] answers exactly.
    fn lean_value(&self, slots: &[Lean]) -> Lean {
        match self {
            Arith::Lit(..) | Arith::Field(_) => self.lean_num(slots),
            // `value` reads the right operand only when the left is a
            // number; reading it anyway changes nothing (no step has an
            // effect), and a `Null` left answers `Null` either way.
            Arith::Op(op, a, b) => arith_lean(*op, a.lean_num(slots), b.lean_num(slots)),
            Arith::Neg(a) => negated_lean(a.lean_num(slots)),
            Arith::Abs(a) => absolute_lean(a.lean_num(slots)),
            Arith::Round(x, digits) => {
                let x = x.lean_num(slots);
                let digits = match digits.as_ref().map(|d| d.lean_num(slots)) {
                    None => Some(0),
                    Some(Lean::Wide) => return Lean::Wide,
                    Some(d) => d.num().and_then(Num::as_int),
                };
                match (x, digits) {
                    (Lean::Null, _) | (_, None) => Lean::Null,
                    (x, Some(digits)) => round_lean(x, digits),
                }
            }
        }
    }
}

/// A present field as the fast path reads it: `Null` when it is null or a
/// boolean (no number), `None` when only [`read`] can read it.
#[inline(always)]
fn read_lean(raw: Raw<'_>) -> Option<Lean> {
    match raw.kind() {
        Kind::Null | Kind::Bool => Some(Lean::Null),
        Kind::Number => partial::short_lean(raw.bytes()),
        Kind::String | Kind::Array | Kind::Object => None,
    }
}

/// A present field as a number slot, as [`Expr::load`] then `Node::num`
/// read it: `Some(None)` when it is not a number, `None` when `load` fails
/// on it.
#[inline(always)]
fn read(raw: Raw<'_>) -> Option<Option<Num>> {
    match raw.kind() {
        Kind::Null | Kind::Bool => Some(None),
        Kind::Number => match partial::short_num(raw.bytes()) {
            Some(n) => Some(Some(n)),
            None => match partial::raw_to_value(raw).ok()? {
                Value::Number(n) => Some(Some(Num::of_number(&n))),
                _ => Some(None),
            },
        },
        // Never a number, but `load` builds it, and may fail doing so.
        Kind::String | Kind::Array | Kind::Object => {
            partial::raw_to_value(raw).ok()?;
            Some(None)
        }
    }
}

impl Expr {
    /// What [`Expr::load`] then [`Expr::eval_loaded_or_omit`] give for this
    /// event, computed from the fields' raw text when the expression is
    /// arithmetic over top-level fields (`round(price * 100)`; see the
    /// `numeric` module docs): a number or `null`, and no field is built into
    /// a `Value`. `None` when the expression has no such form, the value is
    /// not an object, or a field it reads is one [`Expr::load`] fails on:
    /// then the general path gives the answer (or the error).
    pub fn number_in(&self, view: &JsonView<'_>) -> Option<Value> {
        self.number_from(view, |_, name| view.get(name))
    }

    /// [`Expr::number_in`] with the fields already found: `found[k]` is
    /// where `view` has the `k`th of [`Expr::fields`], as
    /// [`JsonView::find`] gives it, for a plugin that finds them with other
    /// names in one [`sluice_sdk::json::FieldSet`] search instead of one
    /// search per name. `None` also when `found` does not fit the fields or
    /// the view.
    pub fn number_in_found(&self, view: &JsonView<'_>, found: &[Option<usize>]) -> Option<Value> {
        if found.len() != self.fields.len() || found.iter().flatten().any(|&i| i >= view.len()) {
            return None;
        }
        self.number_from(view, |k, _| {
            found.get(k).copied().flatten().map(|i| view.field_value(i))
        })
    }

    /// [`Expr::number_in`] reading the `k`th field, `name`, with `get`.
    /// Inlined into both callers, `read` with it: a call per field read
    /// cost more than the search `number_in_found` saves.
    #[inline(always)]
    fn number_from<'v>(
        &self,
        view: &JsonView<'v>,
        get: impl Fn(usize, &str) -> Option<Raw<'v>>,
    ) -> Option<Value> {
        let arith = self.arith.as_ref()?;
        if !view.is_object() {
            return None;
        }
        // First on `i64` and `f64`, which most events never leave.
        let mut lean = [Lean::Null; QUICK_FIELDS];
        let mut readable = true;
        for (k, (name, slot)) in self.fields.iter().zip(lean.iter_mut()).enumerate() {
            if let Some(raw) = get(k, name) {
                match read_lean(raw) {
                    Some(n) => *slot = n,
                    None => {
                        readable = false;
                        break;
                    }
                }
            }
        }
        if readable {
            if let Some(answer) = arith.lean_value(&lean).into_value() {
                return Some(answer);
            }
        }
        let mut slots: [Option<Num>; QUICK_FIELDS] = [None; QUICK_FIELDS];
        // Every field is read, as `load` reads them all, so that one it
        // fails on sends the event to the general path whichever operands
        // the evaluation reaches.
        for (k, (name, slot)) in self.fields.iter().zip(slots.iter_mut()).enumerate() {
            *slot = match get(k, name) {
                None => None,
                Some(raw) => read(raw)?,
            };
        }
        Some(arith.value(&slots).map_or(Value::Null, Num::into_value))
    }

    /// Whether [`Expr::number_in`] can answer for this expression (on some
    /// events): for tests and for callers that choose a path once.
    pub fn is_arithmetic(&self) -> bool {
        self.arith.is_some()
    }
}

#[cfg(test)]
mod tests {
    use sluice_sdk::json::{FieldSet, JsonView};

    use crate::test_rng::Rng;
    use crate::{Expr, ViewFields};

    /// Values a field may hold: every kind, numbers at every edge the
    /// arithmetic has (64-bit limits, floats serde_json reads its own way,
    /// one it refuses, negative zero, exponents).
    const VALUES: &[&str] = &[
        "0",
        "-0",
        "7",
        "-7",
        "2",
        "123.45",
        "0.1",
        "-0.0",
        "1.5e3",
        "1E-7",
        "12.3456789012345678",
        "9007199254740993",
        "999999999999999",
        "1000000000000000",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "1.7976931348623157e308",
        "1e400",
        "null",
        "true",
        "\"12\"",
        "\"a\\u0062\"",
        "[1,2]",
        "{\"x\":1}",
    ];

    fn operand(rng: &mut Rng, depth: usize) -> String {
        match rng.below(if depth > 2 { 3 } else { 5 }) {
            0 => rng.pick(&["a", "b", "c", "missing"]).to_string(),
            1 => rng
                .pick(&["100", "3", "0", "-2", "2.5", "1e308", "'x'", "null", "true"])
                .to_string(),
            2 => rng.pick(&["a", "b"]).to_string(),
            _ => expression(rng, depth + 1),
        }
    }

    fn expression(rng: &mut Rng, depth: usize) -> String {
        let x = operand(rng, depth);
        match rng.below(8) {
            0 => format!("-({x})"),
            1 => format!("abs({x})"),
            2 => format!("round({x})"),
            3 => format!("round({x}, {})", operand(rng, depth)),
            _ => {
                let op = rng.pick(&["+", "-", "*", "/", "%"]);
                format!("({x}) {op} ({})", operand(rng, depth))
            }
        }
    }

    /// The general path's answer, or `None` where it fails the event.
    fn general(expr: &Expr, view: &JsonView<'_>) -> Option<Option<serde_json::Value>> {
        let mut fields = ViewFields::default();
        expr.load(view, &mut fields).ok()?;
        Some(expr.eval_loaded_or_omit(&fields))
    }

    #[test]
    fn arithmetic_from_raw_fields_is_what_the_general_path_gives() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut answered = 0;
        for _ in 0..3000 {
            let source = expression(&mut rng, 0);
            let expr = Expr::parse(&source).expect(&source);
            // The parser folds some (`-(3)`) into a literal: those have no
            // arithmetic form, and `number_in` must say so.
            let arithmetic = expr.is_arithmetic();
            for _ in 0..6 {
                let event = format!(
                    r#"{{"a":{},"b":{},"c":{},"a":{}}}"#,
                    rng.pick(VALUES),
                    rng.pick(VALUES),
                    rng.pick(VALUES),
                    rng.pick(VALUES),
                );
                let view = JsonView::parse(event.as_bytes()).expect(&event);
                let want = general(&expr, &view);
                // The fields found by a field set (last occurrences, as
                // `get` reads them) give the same answer.
                let set = FieldSet::new(expr.fields());
                let mut found = Vec::new();
                set.find_all(&view, &mut found);
                assert_eq!(
                    expr.number_in_found(&view, &found),
                    expr.number_in(&view),
                    "{source} on {event}"
                );
                if !found.is_empty() {
                    // An answer that does not fit the view is none.
                    assert_eq!(expr.number_in_found(&view, &found[1..]), None);
                    let past = vec![Some(view.len()); found.len()];
                    assert_eq!(expr.number_in_found(&view, &past), None);
                }
                match expr.number_in(&view) {
                    Some(got) => {
                        answered += 1;
                        // Compared as JSON text: `1.0` and `1` differ there.
                        let want = want.unwrap_or_else(|| {
                            panic!("{source} on {event}: the general path fails, this gave {got}")
                        });
                        assert_eq!(
                            Some(got.to_string()),
                            want.map(|w| w.to_string()),
                            "{source} on {event}"
                        );
                    }
                    None => assert!(
                        !arithmetic || want.is_none(),
                        "{source} on {event}: no answer where the general path has one"
                    ),
                }
            }
        }
        // Most events have an answer: the general path is the exception.
        assert!(answered > 12000, "{answered} of 18000 answered");
    }

    /// Common arithmetic on common values is answered here, not left to
    /// the general path (which would answer the same, at its cost).
    #[test]
    fn everyday_arithmetic_is_answered_without_the_general_path() {
        let event = r#"{"price":51.47,"qty":3,"big":9007199254740993,"neg":-2.5,"s":"x"}"#;
        let view = JsonView::parse(event.as_bytes()).expect("json");
        for (source, want) in [
            ("round(price * 100)", "5147"),
            ("price * qty", "154.41"),
            ("qty * 2 - 1", "5"),
            ("qty / 2", "1.5"),
            ("qty % 2", "1"),
            ("-qty", "-3"),
            ("abs(neg)", "2.5"),
            ("round(neg)", "-3"),
            ("round(price, 1)", "51.5"),
            ("big + 1", "9007199254740994"),
            ("s * 2", "null"),
            ("missing + 1", "null"),
            ("qty / 0", "null"),
        ] {
            let expr = Expr::parse(source).expect(source);
            let got = expr.number_in(&view).map(|v| v.to_string());
            assert_eq!(got.as_deref(), Some(want), "{source}");
            let general = general(&expr, &view).flatten().map(|v| v.to_string());
            assert_eq!(general.as_deref(), Some(want), "{source}");
        }
    }

    /// Where an `i64` step overflows, the fast path hands the expression to
    /// the `i128` one, which answers exactly (and JSON holds up to `u64`).
    #[test]
    fn past_i64_the_answer_is_the_exact_one() {
        let view = JsonView::parse(br#"{"a":0,"b":7}"#).expect("json");
        for (source, want) in [
            ("-(a - 9223372036854775807 - 1)", "9223372036854775808"),
            ("abs(a - 9223372036854775807 - 1)", "9223372036854775808"),
            ("(b + 9223372036854775807) - 8", "9223372036854775806"),
            // Past `u64` an intermediate answer settles as a float.
            ("b * 9223372036854775807 / 7", "9.223372036854776e+18"),
            (
                "round(a - 9223372036854775807 - 1, -1)",
                "-9.223372036854776e+18",
            ),
            ("round(b * 10 + 5, -1)", "80"),
            ("b / a", "null"),
            ("b % a", "null"),
        ] {
            let expr = Expr::parse(source).expect(source);
            assert!(expr.is_arithmetic(), "{source}");
            let got = expr.number_in(&view).map(|v| v.to_string());
            let general = general(&expr, &view).flatten().map(|v| v.to_string());
            assert_eq!(got, general, "{source}");
            assert_eq!(got.as_deref(), Some(want), "{source}");
        }
    }

    #[test]
    fn what_takes_the_arithmetic_path() {
        for source in [
            "round(price * 100)",
            "round(price, 2)",
            "-amount",
            "abs(a - b)",
            "a / 3 % 2",
            "1 + 2",
            "a + 'x'",
        ] {
            assert!(
                Expr::parse(source).expect(source).is_arithmetic(),
                "{source}"
            );
        }
        for source in [
            "price",
            "100",
            "a.b * 2",
            "coalesce(a, 0) * 2",
            "case when a > 1 then a end * 2",
            "round(a, 1, 2)",
            "a * 2 > 3",
            "a || 'x'",
            "a+b+c+d+e+f+g+h+i",
        ] {
            let parsed = Expr::parse(source);
            assert!(
                !parsed.is_ok_and(|e| e.is_arithmetic()),
                "{source} should take the general path"
            );
        }
    }

    /// A hostile `set` gets no deeper than the parser's limit; the deepest
    /// arithmetic it accepts compiles and evaluates here, recursion and
    /// all, in a small stack, and answers as the general path does.
    #[test]
    fn the_deepest_arithmetic_accepted_evaluates_in_a_small_stack() {
        let sources = [
            vec!["a"; 250].join(" * "),
            format!("round({}{})", "-(".repeat(30), vec!["a"; 220].join(" + ")) + &")".repeat(30),
            format!("{}a{}", "abs(".repeat(30), ")".repeat(30)),
        ];
        let answers = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let view = JsonView::parse(br#"{"a":1}"#).expect("json");
                sources
                    .iter()
                    .map(|source| {
                        let expr = Expr::parse(source).expect("within the depth limit");
                        assert!(expr.is_arithmetic());
                        (expr.number_in(&view), general(&expr, &view).flatten())
                    })
                    .collect::<Vec<_>>()
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        for (got, want) in answers {
            assert!(got.is_some());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_root_that_is_not_an_object_takes_the_general_path() {
        let expr = Expr::parse("a * 2").expect("expr");
        for text in ["[1,2]", "3", "null", "\"a\""] {
            let view = JsonView::parse(text.as_bytes()).expect(text);
            assert_eq!(expr.number_in(&view), None, "{text}");
        }
    }
}
