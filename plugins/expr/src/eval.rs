//! Evaluation of a [`Node`] tree against one JSON value.
//!
//! Results are `Cow`s: field reads and literals are borrowed, never cloned;
//! booleans, numbers and null are built without touching the heap. Only
//! string-producing operations (`||`, `lower`, ...) allocate.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Number, Value};

use crate::ast::{ArithOp, CmpOp, Func, Node};
use sluice_sdk::json::same_bytes;

type Out<'a> = Cow<'a, Value>;

/// What an expression reads its fields from.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    /// A whole value (or one holding at least the fields read).
    Tree(&'a Value),
    /// Only the top-level fields the expression reads: `values[i]` is the
    /// field at index `i` of [`crate::Expr::fields`] (`None` when missing).
    Fields(&'a [Option<Value>]),
}

impl<'a> Input<'a> {
    /// The value at `path`, whose first name is the expression's top-level
    /// field number `slot`.
    fn get(self, path: &crate::Path, slot: usize) -> Option<&'a Value> {
        match self {
            Input::Tree(v) => path.get(v),
            Input::Fields(values) => path.get_in_fields(values.get(slot)?.as_ref()?),
        }
    }
}

const fn null<'a>() -> Out<'a> {
    Cow::Owned(Value::Null)
}

fn boolean<'a>(b: bool) -> Out<'a> {
    Cow::Owned(Value::Bool(b))
}

fn maybe_bool<'a>(b: Option<bool>) -> Out<'a> {
    b.map_or(null(), boolean)
}

/// SQL `and` (three-valued) of `l` and the right side, which is not
/// computed when `l` is false.
#[inline]
pub(crate) fn and(l: Option<bool>, r: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if l == Some(false) {
        return Some(false);
    }
    match (l, r()) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// SQL `or` (three-valued) of `l` and the right side, which is not computed
/// when `l` is true.
#[inline]
pub(crate) fn or(l: Option<bool>, r: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if l == Some(true) {
        return Some(true);
    }
    match (l, r()) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// `Some(b)` for a JSON boolean; anything else is unknown.
fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A number during arithmetic: integers are exact (wide enough for any sum of
/// JSON `i64`/`u64`), the rest is `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(v: &Value) -> Option<Num> {
        match v {
            Value::Number(n) => Some(Self::of_number(n)),
            _ => None,
        }
    }

    pub(crate) fn of_number(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            // Through i64 when it fits: the same value, and in Wasm a single
            // instruction instead of a software i128 conversion.
            Num::Int(i) => i64::try_from(i).map_or_else(|_| wide_to_f64(i), |i| i as f64),
            Num::Float(f) => f,
        }
    }

    /// Back to JSON; integers too wide for `i64`/`u64` become floats, and
    /// non-finite floats (which JSON cannot hold) become null.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Num::Int(i) => {
                if let Ok(i) = i64::try_from(i) {
                    Value::from(i)
                } else if let Ok(u) = u64::try_from(i) {
                    Value::from(u)
                } else {
                    Num::Float(i as f64).into_value()
                }
            }
            Num::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }

    /// What this number reads back as once written into a `Value` and read
    /// again ([`Num::into_value`] then [`Num::of`]): integers too wide for
    /// JSON become floats, non-finite floats `None` (JSON `null`). Arithmetic
    /// on arithmetic goes through this instead of building the `Value`.
    pub(crate) fn settled(self) -> Option<Num> {
        match self {
            Num::Int(i) if i64::try_from(i).is_ok() || u64::try_from(i).is_ok() => Some(self),
            Num::Int(i) => Num::Float(i as f64).settled(),
            Num::Float(f) => f.is_finite().then_some(self),
        }
    }

    /// An integer argument (`round` digits, `substr` positions): integers, or
    /// floats without a fractional part.
    pub(crate) fn as_int(self) -> Option<i128> {
        match self {
            Num::Int(i) => Some(i),
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => Some(f as i128),
            Num::Float(_) => None,
        }
    }
}

/// An integer past `i64` as the nearest `f64`. Not inlined: where it was,
/// LLVM saw that `as_f64`'s two branches compute the same value and kept
/// only this one, which in Wasm is a software routine (`__floattidf`) run
/// for every integer, `100` in `price * 100` included.
#[inline(never)]
fn wide_to_f64(i: i128) -> f64 {
    i as f64
}

/// `-n`, or `None` if it cannot be represented.
pub(crate) fn negate(n: &Number) -> Option<Value> {
    let v = match Num::of_number(n) {
        Num::Int(i) => Num::Int(-i),
        Num::Float(f) => Num::Float(-f),
    }
    .into_value();
    (!v.is_null()).then_some(v)
}

/// A number as the arithmetic's fast path holds it: an integer that fits
/// `i64`, a float, or no number (`Null`). Each `i128` step of [`Num`] is a
/// software routine in Wasm; where a step's exact answer does not fit here,
/// the fast path gives `Wide`, and the [`Num`] path answers instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Lean {
    Int(i64),
    Float(f64),
    Null,
    Wide,
}

impl Lean {
    /// `n` on the fast path.
    pub(crate) fn of(n: Option<Num>) -> Lean {
        match n {
            None => Lean::Null,
            Some(Num::Int(i)) => i64::try_from(i).map_or(Lean::Wide, Lean::Int),
            Some(Num::Float(f)) => Lean::Float(f),
        }
    }

    /// The number `Num` holds for it; `None` for `Null` and `Wide`.
    pub(crate) fn num(self) -> Option<Num> {
        match self {
            Lean::Int(i) => Some(Num::Int(i128::from(i))),
            Lean::Float(f) => Some(Num::Float(f)),
            Lean::Null | Lean::Wide => None,
        }
    }

    /// [`Num::settled`]: an `i64` integer always settles as it is.
    pub(crate) fn settled(self) -> Lean {
        match self {
            Lean::Float(f) if !f.is_finite() => Lean::Null,
            _ => self,
        }
    }

    /// [`Num::into_value`], `Null` as JSON null; `None` for `Wide`.
    pub(crate) fn into_value(self) -> Option<Value> {
        Some(match self {
            Lean::Int(i) => Value::from(i),
            Lean::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Lean::Null => Value::Null,
            Lean::Wide => return None,
        })
    }
}

/// `arith` on two integers that fit `i64`, when the `i64` answer is exact:
/// `i128` arithmetic is a software routine in Wasm. `None` hands the
/// operands to the `i128` path (overflow, division by zero), which answers
/// the same for everything this does.
fn arith_i64(op: ArithOp, x: i64, y: i64) -> Option<Lean> {
    let int = |r: Option<i64>| r.map(Lean::Int);
    match op {
        ArithOp::Add => int(x.checked_add(y)),
        ArithOp::Sub => int(x.checked_sub(y)),
        ArithOp::Mul => int(x.checked_mul(y)),
        ArithOp::Div => match x.checked_rem(y)? {
            0 => int(x.checked_div(y)),
            _ => Some(Lean::Float(x as f64 / y as f64)),
        },
        ArithOp::Rem => int(x.checked_rem(y)),
    }
}

/// [`arith`] on the fast path, for `a` and `b` read as `Node::num` reads
/// operands: `Null` if either is, else `Wide` if either is or `arith` would
/// take its `i128` path, else `arith`'s answer.
pub(crate) fn arith_lean(op: ArithOp, a: Lean, b: Lean) -> Lean {
    match (a, b) {
        (Lean::Null, _) | (_, Lean::Null) => Lean::Null,
        (Lean::Wide, _) | (_, Lean::Wide) => Lean::Wide,
        (Lean::Int(x), Lean::Int(y)) => arith_i64(op, x, y).unwrap_or(Lean::Wide),
        (Lean::Int(x), Lean::Float(y)) => float_lean(arith_f64(op, x as f64, y)),
        (Lean::Float(x), Lean::Int(y)) => float_lean(arith_f64(op, x, y as f64)),
        (Lean::Float(x), Lean::Float(y)) => float_lean(arith_f64(op, x, y)),
    }
}

fn float_lean(f: Option<f64>) -> Lean {
    f.map_or(Lean::Null, Lean::Float)
}

/// [`negated`] on the fast path.
pub(crate) fn negated_lean(n: Lean) -> Lean {
    match n {
        Lean::Int(i) => i.checked_neg().map_or(Lean::Wide, Lean::Int),
        Lean::Float(f) => Lean::Float(-f),
        other => other,
    }
}

/// [`absolute`] on the fast path.
pub(crate) fn absolute_lean(n: Lean) -> Lean {
    match n {
        Lean::Int(i) => i.checked_abs().map_or(Lean::Wide, Lean::Int),
        Lean::Float(f) => Lean::Float(f.abs()),
        other => other,
    }
}

/// [`round`] on the fast path, `digits` already an integer.
pub(crate) fn round_lean(x: Lean, digits: i128) -> Lean {
    match x {
        Lean::Int(_) if digits >= 0 => x,
        Lean::Int(_) => Lean::Wide,
        Lean::Float(f) => round_float(f, digits).unwrap_or(Lean::Null),
        other => other,
    }
}

pub(crate) fn arith(op: ArithOp, a: Num, b: Num) -> Option<Num> {
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        if let (Ok(x), Ok(y)) = (i64::try_from(x), i64::try_from(y)) {
            if let Some(n) = arith_i64(op, x, y).and_then(Lean::num) {
                return Some(n);
            }
        }
        let exact = match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => {
                if y == 0 {
                    return None;
                }
                if x % y == 0 {
                    Some(x / y)
                } else {
                    return Some(Num::Float(Num::Int(x).as_f64() / Num::Int(y).as_f64()));
                }
            }
            ArithOp::Rem => {
                if y == 0 {
                    return None;
                }
                Some(x % y)
            }
        };
        if let Some(i) = exact {
            return Some(Num::Int(i));
        }
    }
    arith_f64(op, a.as_f64(), b.as_f64()).map(Num::Float)
}

/// Arithmetic on two numbers that are not both integers; `None` (null) on
/// division by zero.
fn arith_f64(op: ArithOp, x: f64, y: f64) -> Option<f64> {
    Some(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div if y == 0.0 => return None,
        ArithOp::Div => x / y,
        ArithOp::Rem if y == 0.0 => return None,
        ArithOp::Rem => x % y,
    })
}

fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    match (Num::of_number(a), Num::of_number(b)) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (x, y) => x.as_f64().partial_cmp(&y.as_f64()),
    }
}

/// Ordering of two values of the same scalar type; `None` for null, mixed
/// types, arrays and objects.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL equality: `None` (unknown) when either side is null or the types
/// differ; arrays and objects compare structurally.
pub(crate) fn equals(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => Some(a == b),
        // Word by word: `==` on strings calls `memcmp`, in Wasm a byte loop
        // behind a call.
        (Value::String(x), Value::String(y)) => Some(same_bytes(x.as_bytes(), y.as_bytes())),
        _ => compare(a, b).map(|o| o == Ordering::Equal),
    }
}

fn compare_op(op: CmpOp, a: &Value, b: &Value) -> Option<bool> {
    answer(op, || equals(a, b), || compare(a, b))
}

/// What comparison `op` answers, from the operands' equality (for `=` and
/// `!=`) or ordering (the others), each computed only when asked for.
#[inline]
pub(crate) fn answer(
    op: CmpOp,
    equal: impl FnOnce() -> Option<bool>,
    order: impl FnOnce() -> Option<Ordering>,
) -> Option<bool> {
    match op {
        CmpOp::Eq => equal(),
        CmpOp::Ne => equal().map(|e| !e),
        CmpOp::Lt => order().map(Ordering::is_lt),
        CmpOp::Le => order().map(Ordering::is_le),
        CmpOp::Gt => order().map(Ordering::is_gt),
        CmpOp::Ge => order().map(Ordering::is_ge),
    }
}

/// Appends `v` as text: strings as they are, other values as JSON.
fn push_text(buf: &mut String, v: &Value) {
    match v {
        Value::String(s) => buf.push_str(s),
        Value::Null => buf.push_str("null"),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(buf, "{n}");
        }
        other => buf.push_str(&other.to_string()),
    }
}

fn into_string(v: Out<'_>) -> String {
    match v {
        Cow::Owned(Value::String(s)) => s,
        other => {
            let mut s = String::new();
            push_text(&mut s, &other);
            s
        }
    }
}

fn string<'a>(s: String) -> Out<'a> {
    Cow::Owned(Value::String(s))
}

impl Node {
    /// Like [`Node::eval`], except that a `case` without `else` at the top
    /// whose branches all miss gives `None` (the value is left out) rather
    /// than `null`.
    pub(crate) fn eval_or_omit<'a>(&'a self, input: Input<'a>) -> Option<Out<'a>> {
        let Node::Case {
            operand,
            whens,
            otherwise: None,
        } = self
        else {
            return Some(self.eval(input));
        };
        let hit = match operand {
            Some(operand) => {
                let v = operand.eval(input);
                whens
                    .iter()
                    .find(|(when, _)| equals(&v, &when.eval(input)) == Some(true))
            }
            None => whens
                .iter()
                .find(|(when, _)| when.as_bool(input) == Some(true)),
        };
        hit.map(|(_, then)| then.eval(input))
    }

    /// The node's value as a number, `None` when it is not one: the same as
    /// `Num::of(&self.eval(input))`, but the operands of arithmetic, `-`,
    /// `abs` and `round` are not built into a `Value` on the way.
    fn num(&self, input: Input<'_>) -> Option<Num> {
        match self {
            Node::Lit(Value::Number(n)) => Some(Num::of_number(n)),
            Node::Field(path, slot) => match input.get(path, *slot) {
                Some(Value::Number(n)) => Some(Num::of_number(n)),
                _ => None,
            },
            // The left operand first, and the right only when the left is a
            // number, as `eval` does (a UDF call on the right is not made).
            Node::Arith(op, a, b) => {
                let x = a.num(input)?;
                arith(*op, x, b.num(input)?)?.settled()
            }
            Node::Neg(a) => negated(a.num(input)?).settled(),
            Node::Call(Func::Abs, args) => absolute(args.first()?.num(input)?).settled(),
            Node::Call(Func::Round, args) => rounded(args, input)?.settled(),
            _ => Num::of(&self.eval(input)),
        }
    }

    /// The node's value as SQL truth: `Some(b)` for a boolean, `None` for
    /// anything else (null included). The same as `truth(&self.eval(input))`,
    /// but logic and comparisons build no `Value` for their answers: a
    /// filter's condition is answered without one.
    pub(crate) fn as_bool(&self, input: Input<'_>) -> Option<bool> {
        match self {
            Node::Not(a) => a.as_bool(input).map(|b| !b),
            Node::And(a, b) => and(a.as_bool(input), || b.as_bool(input)),
            Node::Or(a, b) => or(a.as_bool(input), || b.as_bool(input)),
            Node::Cmp(op, a, b) => {
                let l = a.eval(input);
                if l.is_null() {
                    return None;
                }
                compare_op(*op, &l, &b.eval(input))
            }
            Node::In {
                value,
                list,
                negated,
            } => {
                let v = value.eval(input);
                if v.is_null() {
                    return None;
                }
                let mut saw_null = false;
                for item in list.iter() {
                    let item = item.eval(input);
                    if item.is_null() {
                        saw_null = true;
                    } else if equals(&v, &item) == Some(true) {
                        return Some(!negated);
                    }
                }
                (!saw_null).then_some(*negated)
            }
            Node::IsNull { value, negated } => Some(value.eval(input).is_null() != *negated),
            _ => truth(&self.eval(input)),
        }
    }

    pub(crate) fn eval<'a>(&'a self, input: Input<'a>) -> Out<'a> {
        match self {
            Node::Lit(v) => Cow::Borrowed(v),
            Node::Field(path, slot) => input.get(path, *slot).map_or(null(), Cow::Borrowed),
            Node::Not(_)
            | Node::And(..)
            | Node::Or(..)
            | Node::Cmp(..)
            | Node::In { .. }
            | Node::IsNull { .. } => maybe_bool(self.as_bool(input)),
            Node::Neg(a) => a
                .num(input)
                .map_or(null(), |n| Cow::Owned(negated(n).into_value())),
            Node::Arith(op, a, b) => {
                let Some(x) = a.num(input) else {
                    return null();
                };
                let Some(y) = b.num(input) else {
                    return null();
                };
                arith(*op, x, y).map_or(null(), |n| Cow::Owned(n.into_value()))
            }
            Node::Concat(a, b) => {
                let l = a.eval(input);
                if l.is_null() {
                    return null();
                }
                let r = b.eval(input);
                if r.is_null() {
                    return null();
                }
                let mut s = into_string(l);
                push_text(&mut s, &r);
                string(s)
            }
            Node::Case {
                operand,
                whens,
                otherwise,
            } => {
                match operand {
                    Some(operand) => {
                        let v = operand.eval(input);
                        for (when, then) in whens.iter() {
                            if equals(&v, &when.eval(input)) == Some(true) {
                                return then.eval(input);
                            }
                        }
                    }
                    None => {
                        for (when, then) in whens.iter() {
                            if when.as_bool(input) == Some(true) {
                                return then.eval(input);
                            }
                        }
                    }
                }
                otherwise.as_ref().map_or(null(), |e| e.eval(input))
            }
            Node::Call(func, args) => call(*func, args, input),
            Node::Udf(name, args) => call_udf(name, args, input),
        }
    }
}

fn arg<'a>(args: &'a [Node], i: usize, input: Input<'a>) -> Out<'a> {
    args.get(i).map_or(null(), |a| a.eval(input))
}

fn call<'a>(func: Func, args: &'a [Node], input: Input<'a>) -> Out<'a> {
    match func {
        Func::Lower | Func::Upper | Func::Trim => match &*arg(args, 0, input) {
            Value::String(s) => string(match func {
                Func::Lower => s.to_lowercase(),
                Func::Upper => s.to_uppercase(),
                _ => s.trim().to_string(),
            }),
            _ => null(),
        },
        Func::Length => match &*arg(args, 0, input) {
            Value::String(s) => Cow::Owned(Value::from(s.chars().count())),
            Value::Array(a) => Cow::Owned(Value::from(a.len())),
            Value::Object(o) => Cow::Owned(Value::from(o.len())),
            _ => null(),
        },
        Func::Abs => args
            .first()
            .and_then(|a| a.num(input))
            .map_or(null(), |n| Cow::Owned(absolute(n).into_value())),
        Func::Coalesce => {
            for a in args {
                let v = a.eval(input);
                if !v.is_null() {
                    return v;
                }
            }
            null()
        }
        Func::Concat => {
            let mut s = String::new();
            for a in args {
                let v = a.eval(input);
                if !v.is_null() {
                    push_text(&mut s, &v);
                }
            }
            string(s)
        }
        Func::Round => rounded(args, input).map_or(null(), |n| Cow::Owned(n.into_value())),
        Func::Substr => {
            let s = arg(args, 0, input);
            let Value::String(text) = &*s else {
                return null();
            };
            let Some(start) = Num::of(&arg(args, 1, input)).and_then(Num::as_int) else {
                return null();
            };
            let len = if args.len() > 2 {
                match Num::of(&arg(args, 2, input)).and_then(Num::as_int) {
                    Some(l) if l >= 0 => Some(l),
                    _ => return null(),
                }
            } else {
                None
            };
            string(substr(text, start, len))
        }
        Func::ToInt => Cow::Owned(to_integer(
            &arg(args, 0, input),
            i128::from(i32::MIN),
            i128::from(i32::MAX),
        )),
        Func::ToBigint => Cow::Owned(to_integer(
            &arg(args, 0, input),
            i128::from(i64::MIN),
            i128::from(i64::MAX),
        )),
        Func::ToDouble => Cow::Owned(to_double(&arg(args, 0, input))),
        Func::Like => {
            let escape = match args.get(2).map(|_| arg(args, 2, input)) {
                None => None,
                Some(e) => match single_char(&e) {
                    Some(c) => Some(c),
                    None => return null(),
                },
            };
            match (&*arg(args, 0, input), &*arg(args, 1, input)) {
                (Value::String(s), Value::String(p)) => match like(s, p, escape) {
                    Some(m) => boolean(m),
                    None => null(),
                },
                _ => null(),
            }
        }
        Func::ToDecimal => {
            let size = |i: usize| arg(args, i, input).as_u64();
            match (size(1), size(2)) {
                (Some(p), Some(s)) => to_decimal(&arg(args, 0, input), p, s),
                _ => null(),
            }
        }
        Func::ToBoolean => match &*arg(args, 0, input) {
            Value::Bool(b) => boolean(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => boolean(true),
                "false" => boolean(false),
                _ => null(),
            },
            _ => null(),
        },
    }
}

/// The one character of an `escape` argument; anything else is no escape.
fn single_char(v: &Value) -> Option<char> {
    let Value::String(s) = v else { return None };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// One element of a `LIKE` pattern.
#[derive(Clone, Copy, PartialEq)]
enum Wild {
    /// `%`: any run of characters.
    Any,
    /// `_`: any one character.
    One,
    /// Itself (an escaped `%`, `_` or escape character too).
    Char(char),
}

/// SQL `LIKE`: `%` matches any run of characters, `_` any one character,
/// everything else itself (case-sensitive); with `escape`, the escape
/// character before `%`, `_` or itself makes that character literal. `None`
/// when the escape character ends the pattern or precedes anything else,
/// as SQL makes that an error. One backtrack point (the last `%`)
/// suffices, so the cost is at most text × pattern characters, never
/// exponential, whatever the pattern.
fn like(text: &str, pattern: &str, escape: Option<char>) -> Option<bool> {
    let t: Vec<char> = text.chars().collect();
    let mut p: Vec<Wild> = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        p.push(match c {
            c if Some(c) == escape => match chars.next() {
                Some(n) if n == '%' || n == '_' || Some(n) == escape => Wild::Char(n),
                _ => return None,
            },
            '%' => Wild::Any,
            '_' => Wild::One,
            c => Wild::Char(c),
        });
    }
    let (mut ti, mut pi) = (0, 0);
    // After the last `%`: where the pattern resumes, and the text position
    // that `%` has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Wild::Any) => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(Wild::One) => {
                pi += 1;
                ti += 1;
            }
            Some(&Wild::Char(c)) if c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return Some(false),
            },
        }
    }
    Some(p[pi..].iter().all(|&w| w == Wild::Any))
}

/// Largest `DECIMAL` precision (ksqlDB's and Kafka Connect's limit).
const MAX_PRECISION: u64 = 38;

/// SQL `CAST(x AS DECIMAL(precision, scale))`: the number (or numeric
/// string) rounded half up to `scale` places from its decimal digits as
/// written (so `2.675` gives `2.68`, which binary rounding would not); null
/// when it needs more than `precision - scale` integer digits, is not a
/// number, or the sizes are out of range. The result is a JSON number: exact
/// in the output text, but a double to the expressions that read it.
fn to_decimal(v: &Value, precision: u64, scale: u64) -> Cow<'static, Value> {
    if precision == 0 || precision > MAX_PRECISION || scale > precision {
        return null();
    }
    let text = match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f}"),
            _ => n.to_string(),
        },
        Value::String(s) => {
            let s = s.trim();
            let plain = !s.is_empty()
                && s.trim_start_matches(['-', '+'])
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')
                && s.matches('.').count() <= 1
                && s.len() - s.trim_start_matches(['-', '+']).len() <= 1
                && s.chars().any(|c| c.is_ascii_digit());
            if plain {
                s.to_string()
            } else {
                match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => format!("{f}"),
                    _ => return null(),
                }
            }
        }
        _ => return null(),
    };
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches(['-', '+']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = scale as usize;
    // Digits kept, most significant first, then half up on the next one.
    let mut kept: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
        .map(|b| b - b'0')
        .collect();
    if frac.as_bytes().get(scale).is_some_and(|d| *d >= b'5') {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let split = kept.len() - scale;
    let int_digits: String = kept[..split]
        .iter()
        .map(|d| char::from(b'0' + d))
        .collect::<String>()
        .trim_start_matches('0')
        .to_string();
    if int_digits.len() as u64 > precision - scale as u64 {
        return null();
    }
    let frac_digits: String = kept[split..].iter().map(|d| char::from(b'0' + d)).collect();
    let zero = int_digits.is_empty() && frac_digits.bytes().all(|d| d == b'0');
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(if int_digits.is_empty() {
        "0"
    } else {
        &int_digits
    });
    if scale > 0 {
        out.push('.');
        out.push_str(&frac_digits);
    }
    match serde_json::from_str::<Value>(&out) {
        Ok(n) => Cow::Owned(n),
        Err(_) => null(),
    }
}

/// SQL `CAST(x AS INT|BIGINT)`: integers in `[min, max]` stay; decimals are
/// truncated toward zero (as Java's `intValue`); strings must hold an
/// integer (surrounding whitespace allowed). Anything else, or a value
/// outside the range, is null: a cast that fails gives null, not an error.
fn to_integer(v: &Value, min: i128, max: i128) -> Value {
    let n = match v {
        Value::Number(n) => match Num::of_number(n) {
            Num::Int(i) => Some(i),
            // Beyond ±1e19 no i64 fits; the bound also keeps `as` exact.
            Num::Float(f) if f.is_finite() && f.abs() < 1e19 => Some(f.trunc() as i128),
            Num::Float(_) => None,
        },
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    n.filter(|i| (min..=max).contains(i))
        .map_or(Value::Null, |i| Num::Int(i).into_value())
}

/// SQL `CAST(x AS DOUBLE)`: numbers become decimals; strings must hold a
/// finite number. Anything else is null.
fn to_double(v: &Value) -> Value {
    let f = match v {
        Value::Number(n) => Some(Num::of_number(n).as_f64()),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    f.filter(|f| f.is_finite())
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// SQL `substr`: 1-based character positions; the window
/// `[start, start + len)` is clipped to the string.
fn substr(text: &str, start: i128, len: Option<i128>) -> String {
    let end = len.map(|l| start.saturating_add(l));
    let from = usize::try_from(start.max(1) - 1).unwrap_or(usize::MAX);
    let take = match end {
        Some(end) if end <= 1 => 0,
        Some(end) => usize::try_from(end - 1)
            .unwrap_or(usize::MAX)
            .saturating_sub(from),
        None => usize::MAX,
    };
    text.chars().skip(from).take(take).collect()
}

/// `10^d`: from a table of the exact powers where there is one (what `powi`
/// computes for them too, without its call), else `powi`.
fn pow10(d: i32) -> f64 {
    const EXACT: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    usize::try_from(d)
        .ok()
        .and_then(|i| EXACT.get(i).copied())
        .unwrap_or_else(|| 10f64.powi(d))
}

pub(crate) fn negated(n: Num) -> Num {
    match n {
        Num::Int(i) => Num::Int(-i),
        Num::Float(f) => Num::Float(-f),
    }
}

pub(crate) fn absolute(n: Num) -> Num {
    match n {
        Num::Int(i) => Num::Int(i.abs()),
        Num::Float(f) => Num::Float(f.abs()),
    }
}

/// `round(x[, digits])`; `None` (null) when `x` is not a number or `digits`
/// not an integer.
fn rounded(args: &[Node], input: Input<'_>) -> Option<Num> {
    let x = args.first()?.num(input)?;
    let digits = match args.get(1) {
        Some(d) => d.num(input).and_then(Num::as_int)?,
        None => 0,
    };
    round(x, digits)
}

/// Rounds half away from zero to `digits` decimals (negative: to tens,
/// hundreds, ...). Integers stay integers; a float rounded to 0 or fewer
/// decimals becomes an integer when it fits.
pub(crate) fn round(x: Num, digits: i128) -> Option<Num> {
    match x {
        Num::Int(i) if digits >= 0 => Some(Num::Int(i)),
        Num::Int(i) => {
            if digits < -38 {
                return Some(Num::Int(0));
            }
            let p = 10i128.checked_pow(u32::try_from(-digits).ok()?)?;
            let half = p / 2;
            let r = if i >= 0 {
                (i + half) / p * p
            } else {
                -((-i + half) / p * p)
            };
            Some(Num::Int(r))
        }
        Num::Float(f) => round_float(f, digits).and_then(Lean::num),
    }
}

/// [`round`] of a float.
fn round_float(f: f64, digits: i128) -> Option<Lean> {
    let d = i32::try_from(digits.clamp(-300, 300)).ok()?;
    let scale = pow10(d);
    let r = if d >= 0 {
        (f * scale).round() / scale
    } else {
        (f / pow10(-d)).round() * pow10(-d)
    };
    if !r.is_finite() {
        return Some(Lean::Float(f));
    }
    if d <= 0 && r.abs() < 9.0e15 {
        // Fits i64 exactly; the i64 conversion is one Wasm instruction, an
        // i128 one a software routine.
        Some(Lean::Int(r as i64))
    } else {
        Some(Lean::Float(r))
    }
}

thread_local! {
    /// The first UDF failure since [`take_udf_error`] last ran.
    static UDF_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The first failure of a user-defined function since the last call, if
/// any. Evaluation cannot fail (a failed call reads as `null`), so a plugin
/// asks after each event and rejects the event when a call failed.
pub fn take_udf_error() -> Option<String> {
    UDF_ERROR.with(|e| e.borrow_mut().take())
}

fn call_udf<'a>(name: &str, args: &'a [Node], input: Input<'a>) -> Out<'a> {
    let values: Vec<Out<'_>> = args.iter().map(|a| a.eval(input)).collect();
    let mut text = Vec::with_capacity(64);
    text.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        // Writing a `Value` to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut text, &**v);
    }
    text.push(b']');
    let failed = |reason: String| {
        UDF_ERROR.with(|e| {
            let mut e = e.borrow_mut();
            if e.is_none() {
                *e = Some(reason);
            }
        });
        null()
    };
    match sluice_sdk::udf::call(name, &text) {
        Ok(out) => match serde_json::from_slice::<Value>(&out) {
            Ok(v) => Cow::Owned(v),
            Err(e) => failed(format!("function '{name}' returned invalid JSON: {e}")),
        },
        Err(reason) => failed(reason),
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn the_power_table_is_what_powi_computes() {
        for d in -30..=30 {
            assert_eq!(pow10(d).to_bits(), 10f64.powi(d).to_bits(), "10^{d}");
        }
    }

    #[test]
    fn an_integer_turns_into_the_same_float_through_i64() {
        for i in [
            0i128,
            1,
            -1,
            100,
            (1 << 53) + 1,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
        ] {
            assert_eq!(Num::Int(i).as_f64().to_bits(), (i as f64).to_bits(), "{i}");
        }
        let wide = i128::from(u64::MAX) + 12_345;
        assert_eq!(Num::Int(wide).as_f64(), wide as f64);
    }

    #[test]
    fn integer_arithmetic_through_i64_answers_as_through_i128() {
        let edges = [
            0i64,
            1,
            -1,
            2,
            -2,
            3,
            7,
            -7,
            100,
            i64::from(i32::MAX),
            i64::MAX,
            i64::MAX - 1,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX / 2 + 1,
            i64::MIN / 2 - 1,
        ];
        let ops = [
            ArithOp::Add,
            ArithOp::Sub,
            ArithOp::Mul,
            ArithOp::Div,
            ArithOp::Rem,
        ];
        for &x in &edges {
            for &y in &edges {
                for op in ops {
                    // The i128 path alone, as before the i64 one existed.
                    let (x, y) = (i128::from(x), i128::from(y));
                    let wide = match op {
                        ArithOp::Add => x.checked_add(y).map(Num::Int),
                        ArithOp::Sub => x.checked_sub(y).map(Num::Int),
                        ArithOp::Mul => x.checked_mul(y).map(Num::Int),
                        ArithOp::Div if y == 0 => None,
                        ArithOp::Div if x % y == 0 => Some(Num::Int(x / y)),
                        ArithOp::Div => Some(Num::Float(x as f64 / y as f64)),
                        ArithOp::Rem if y == 0 => None,
                        ArithOp::Rem => Some(Num::Int(x % y)),
                    };
                    let got = arith(op, Num::Int(x), Num::Int(y));
                    assert_eq!(format!("{got:?}"), format!("{wide:?}"), "{x} {op:?} {y}");
                }
            }
        }
    }

    /// `as_bool` answers logic and comparisons without building `Value`s;
    /// each answer here is the documented three-valued one, and `eval`
    /// (which now goes through `as_bool`) gives it as a `Value`.
    #[test]
    fn conditions_answer_with_sql_truth() {
        let input = serde_json::json!({
            "s": "usd", "n": 7, "f": 7.0, "nul": null, "t": true, "a": [1, 2], "o": {"k": 1},
        });
        let cases: [(&str, Option<bool>); 28] = [
            ("s != 'aud'", Some(true)),
            ("s = 'usd'", Some(true)),
            ("s = 'us'", Some(false)),
            ("s < 'v'", Some(true)),
            ("s = 7", None),
            ("n = f", Some(true)),
            ("n >= 8", Some(false)),
            ("nul = 1", None),
            ("missing != 'x'", None),
            ("not (s = 'usd')", Some(false)),
            ("not nul", None),
            ("not (nul = 1)", None),
            ("nul = 1 and false", Some(false)),
            ("false and nul = 1", Some(false)),
            ("true and nul = 1", None),
            ("nul = 1 or true", Some(true)),
            ("nul = 1 or false", None),
            ("n in (1, 7)", Some(true)),
            ("n in (1, null)", None),
            ("n not in (1, 2)", Some(true)),
            ("n not in (7, null)", Some(false)),
            ("nul in (1)", None),
            ("nul is null and missing is null", Some(true)),
            ("s is not null", Some(true)),
            ("a = a", Some(true)),
            ("o != o", Some(false)),
            ("t", Some(true)),
            ("case when n > 3 then t end", Some(true)),
        ];
        for (source, want) in cases {
            let expr = crate::Expr::parse(source).expect(source);
            let input = Input::Tree(&input);
            assert_eq!(expr.root.as_bool(input), want, "{source}");
            let value = match want {
                Some(b) => Value::Bool(b),
                None => Value::Null,
            };
            assert_eq!(*expr.root.eval(input), value, "{source}");
        }
    }

    /// `num` skips building the `Value`s between arithmetic steps; it must
    /// read every node as `eval` then `Num::of` would, at the edges too:
    /// integers past 64 bits, non-finite floats, negative zero, division.
    #[test]
    fn numbers_read_without_values_are_those_eval_gives() {
        let input = serde_json::json!({
            "big": 18_446_744_073_709_551_615u64,
            "min": i64::MIN,
            "max": i64::MAX,
            "f": 1.5e308,
            "neg_zero": -0.0,
            "price": 123.45,
            "n": 7,
            "s": "12",
            "nul": null,
        });
        let sources = [
            "round(price * 100)",
            "round(price * 100, 1)",
            "round(price, -1)",
            "round(n * 3.5)",
            "round(price, s)",
            "big + big",
            "big * big * big",
            "-min",
            "-(min) - 1",
            "-big",
            "max + 1",
            "min - 1",
            "f * 10",
            "f * 10 - f * 10",
            "abs(min)",
            "abs(-big - 1)",
            "abs(neg_zero)",
            "-neg_zero",
            "n / 2",
            "n / 0",
            "n % 0",
            "n % 4 * 2",
            "s * 2",
            "nul + 1",
            "1 + nul",
            "missing * 3",
            "round(f * 10)",
            "round(big * 10, -2)",
            "abs(round(-price))",
            "coalesce(nul, n) * 2",
            "case when n > 3 then n * 2 end + 1",
            "-(n * 2)",
        ];
        for source in sources {
            let expr = crate::Expr::parse(source).expect(source);
            let input = Input::Tree(&input);
            let want = Num::of(&expr.root.eval(input));
            let got = expr.root.num(input);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{source}");
            // Inside arithmetic too.
            let outer = crate::Expr::parse(&format!("({source}) + 0")).expect(source);
            let want = Num::of(&outer.root.eval(input));
            assert_eq!(
                format!("{:?}", outer.root.num(input)),
                format!("{want:?}"),
                "({source}) + 0"
            );
        }
    }
}
