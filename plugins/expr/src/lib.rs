//! # sluice-expr
//!
//! The small expression language of Sluice's `filter` and `project` plugins:
//! SQL-flavoured expressions over one JSON value, parsed once into a tree and
//! evaluated per event without re-parsing and (mostly) without allocating.
//!
//! ```
//! use serde_json::json;
//! use sluice_expr::Expr;
//!
//! let youth = Expr::parse(
//!     "case when nascimento >= '2000-01-01' then 'JOVEM' else 'ADULTO' end",
//! ).unwrap();
//! assert_eq!(youth.eval(&json!({"nascimento": "2003-05-01"})), json!("JOVEM"));
//!
//! let keep = Expr::parse("status in ('paid', 'shipped') and total > 100").unwrap();
//! assert!(keep.matches(&json!({"status": "paid", "total": 250})));
//! assert!(!keep.matches(&json!({"status": "paid"}))); // total is null: not true
//! ```
//!
//! ## Syntax
//!
//! | Form | Meaning |
//! |---|---|
//! | `a`, `a.b.c`, `` `my field`.x ``, `items.0` | field of the input (missing → `null`); all-digit names index arrays |
//! | `'text'`, `"text"` | string; the quote is escaped by doubling it (`'it''s'`); no backslash escapes |
//! | `42`, `-7`, `3.14`, `1e3` | numbers |
//! | `true`, `false`, `null` | constants |
//! | `=` `==` `!=` `<>` `<` `<=` `>` `>=` | comparisons |
//! | `and`, `or`, `not` | three-valued logic |
//! | `x in (v, ...)`, `x not in (...)` | membership |
//! | `x is null`, `x is not null` | null tests (missing fields are null) |
//! | `+ - * / %`, unary `-` | arithmetic on numbers |
//! | <code>a &#124;&#124; b</code> | string concatenation |
//! | `case when c then v [when ...] [else v] end` | first `v` whose `c` is true |
//! | `case x when v1 then r1 ... end` | first `r` whose `v` equals `x` |
//! | `f(args)` | functions, see below |
//!
//! Keywords and function names are case-insensitive. A field named like a
//! keyword is written in backquotes (`` `end` ``). Double-quoted text is a
//! string, not a field name (unlike standard SQL).
//!
//! Precedence, loosest first: `or`; `and`; `not`; comparisons / `in` / `is`;
//! `||`; `+ -`; `* / %`; unary `-`.
//!
//! ## Semantics
//!
//! * **Null** (SQL three-valued logic): a comparison with `null` on either
//!   side, or between different types (`'1' = 1`), is `null`. `not null` is
//!   `null`; `false and null` is `false`; `true or null` is `true`; other
//!   mixes with `null` are `null`. Non-boolean operands of `and`/`or`/`not`
//!   count as `null`. [`Expr::matches`] is true only for JSON `true`, so a
//!   `null` result filters the event out.
//! * **Comparisons**: numbers numerically (`1 = 1.0`), strings by byte order
//!   (so ISO-8601 dates and timestamps compare chronologically:
//!   `birth_date >= '2000-01-01'`), booleans `false < true`. Arrays and
//!   objects support only `=` / `!=` (structural equality).
//! * **`in`**: true when the value equals an item; items of another type just
//!   don't match. `null` when the value is `null`, or when nothing matched
//!   and the list holds a `null`; otherwise false. `not in` negates that.
//! * **Arithmetic**: both operands must be numbers, else `null`. Integer
//!   operands give an exact integer (`7 / 2` is `3.5`, `6 / 3` is `2`);
//!   if either operand is a decimal the result is a decimal, even when whole
//!   (`price * 100` with `price` = `50.5` is `5050.0`). Division or `%` by
//!   zero is `null`. Integers overflowing 64 bits become decimals.
//! * **`||`**: `null` if either side is `null`; non-strings are written as
//!   JSON text (`'n=' || 5` is `"n=5"`).
//!
//! ## Functions
//!
//! | Function | Result |
//! |---|---|
//! | `lower(s)`, `upper(s)`, `trim(s)` | string case / surrounding whitespace removed; `null` for non-strings |
//! | `length(x)` | characters of a string, items of an array, keys of an object; else `null` |
//! | `coalesce(a, b, ...)` | the first argument that is not `null` |
//! | `concat(a, b, ...)` | the arguments as text, `null`s skipped (never `null`) |
//! | `round(x[, digits])` | half away from zero; `digits` may be negative (`round(1234, -2)` = `1200`); with 0 or fewer digits the result is an integer |
//! | `substr(s, start[, len])` | characters from 1-based `start` (SQL semantics) |
//! | `abs(x)` | absolute value |
//! | `to_decimal(x, precision, scale)` | SQL `CAST(x AS DECIMAL(p, s))`: rounded half up to `scale` places from the decimal digits as written; null past `precision - scale` integer digits or when not a number |
//! | `like(s, pattern[, escape])` | SQL `LIKE`: `%` any run of characters, `_` one character; after the one-character `escape`, `%`, `_` or the escape itself is literal (null if the escape precedes anything else or ends the pattern) |
//! | `to_int(x)`, `to_bigint(x)`, `to_double(x)`, `to_boolean(x)` | SQL casts; `null` when `x` does not convert (see the README) |
//!
//! The pipeline's user-defined functions (Wasm components of the `udf`
//! world, see [`Expr::parse_with_udfs`]) are called like built-ins. A
//! built-in's name always wins over a UDF's.
//!
//! ## Paths
//!
//! [`Path`], [`get_path`], [`set_path`] and [`remove_path`] read and write a
//! JSON document by dotted path, with the same backquote quoting as field
//! references in expressions (outside backquotes, any character but `.` is
//! part of a name).
#![deny(missing_docs)]

mod ast;
mod computed;
mod condition;
mod eval;
mod numeric;
mod parse;
mod partial;
mod path;
mod quick;
#[cfg(test)]
mod test_rng;
mod watch;

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;
use sluice_sdk::json::JsonView;

pub use computed::SetField;
pub use condition::Condition;
pub use eval::take_udf_error;
pub use partial::parse_json_keeping;
pub use path::{get_path, remove_path, set_path, type_name, Path, PathError};
pub use quick::{QuickFields, QUICK_FIELDS};
pub use watch::{Watch, ABSENT_AFTER};

/// A malformed expression or path: where (1-based character column) and what
/// was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    column: usize,
    message: String,
}

impl ParseError {
    pub(crate) fn new(column: usize, message: String) -> Self {
        ParseError { column, message }
    }

    /// 1-based column (in characters) where the problem was found.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What was wrong, without the column.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

impl std::error::Error for ParseError {}

/// The fields of one event that an expression reads, built by [`Expr::load`]
/// from a zero-copy view and reused across events.
#[derive(Debug, Default, Clone)]
pub struct ViewFields {
    pub(crate) values: Vec<Option<Value>>,
    pub(crate) root: Option<Value>,
}

/// A parsed expression. Parse once with [`Expr::parse`], then evaluate per
/// event; it is immutable, cheap to share, `Send` and `Sync`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub(crate) root: ast::Node,
    source: Box<str>,
    /// Top-level fields the expression reads.
    pub(crate) fields: Box<[Box<str>]>,
    /// The condition in the form [`Expr::matches_quick`] answers, when it
    /// has one (see `quick.rs`).
    quick: Option<Box<quick::Quick>>,
    /// The expression in the form [`Expr::number_in`] answers, when it has
    /// one (see `numeric.rs`).
    arith: Option<Box<numeric::Arith>>,
}

impl Expr {
    /// Parses `source`; errors name the column and what was expected, e.g.
    /// `expected a value after '>=' at column 14`.
    pub fn parse(source: &str) -> Result<Expr, ParseError> {
        Self::parse_with_udfs(source, &[])
    }

    /// Like [`Expr::parse`], also knowing the pipeline's user-defined
    /// functions by name (case-insensitive). A call of one crosses to the
    /// host ([`sluice_sdk::udf::call`]) per evaluation; a failed call reads
    /// as `null` and is reported by [`take_udf_error`].
    pub fn parse_with_udfs(source: &str, udfs: &[String]) -> Result<Expr, ParseError> {
        let (root, fields) = parse::parse(source, udfs)?;
        Ok(Expr {
            quick: quick::of(&root, fields.len()),
            arith: numeric::of(&root, fields.len()),
            fields: fields.into(),
            root,
            source: source.into(),
        })
    }

    /// The top-level field names the expression reads (the first name of
    /// each field path), each once, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = &str> + '_ {
        self.fields.iter().map(|f| &**f)
    }

    /// Parses an event value (JSON bytes) for this expression: the whole
    /// text is checked to be one JSON value, as by `serde_json::from_slice`,
    /// but of a top-level object only the fields the expression reads are
    /// built; the others are skipped. [`Expr::eval`] and [`Expr::matches`]
    /// give the same result on it as on the full value, at a fraction of the
    /// parsing cost for wide events.
    ///
    /// Skipped strings are checked for JSON syntax but not for valid UTF-8.
    pub fn parse_input(&self, bytes: &[u8]) -> Result<Value, serde_json::Error> {
        partial::parse_json_keeping(bytes, &self.fields)
    }

    /// Loads into `fields` the top-level fields this expression reads, from a
    /// zero-copy view of the event: only those are built, into a reused
    /// buffer (no map, no key strings). Then [`Expr::eval_loaded`] and
    /// [`Expr::matches_loaded`] give the same result as [`Expr::eval`] and
    /// [`Expr::matches`] on the whole value. Use one [`ViewFields`] per
    /// expression. Fails only on a read number serde_json cannot hold (like
    /// `1e400`), as parsing the whole value would.
    pub fn load(
        &self,
        view: &JsonView<'_>,
        fields: &mut ViewFields,
    ) -> Result<(), serde_json::Error> {
        fields.root = None;
        if !view.is_object() {
            // Arrays and scalars: paths like `0.x` index the whole root.
            fields.values.clear();
            fields.root = Some(view.root().to_value()?);
            return Ok(());
        }
        fields.values.resize(self.fields.len(), None);
        for (name, slot) in self.fields.iter().zip(fields.values.iter_mut()) {
            match view.get(name) {
                Some(raw) => partial::raw_into_value(raw, slot)?,
                None => *slot = None,
            }
        }
        Ok(())
    }

    fn loaded<'a>(&'a self, fields: &'a ViewFields) -> eval::Input<'a> {
        match &fields.root {
            Some(root) => eval::Input::Tree(root),
            None => eval::Input::Fields(&fields.values),
        }
    }

    /// Evaluates against fields loaded by [`Expr::load`].
    pub fn eval_loaded(&self, fields: &ViewFields) -> Value {
        self.root.eval(self.loaded(fields)).into_owned()
    }

    /// True only when the result on fields loaded by [`Expr::load`] is JSON
    /// `true`.
    pub fn matches_loaded(&self, fields: &ViewFields) -> bool {
        self.root.as_bool(self.loaded(fields)) == Some(true)
    }

    /// Like [`Expr::eval_loaded`], but `None` when the expression is a
    /// `case` without `else` and no branch matched: the caller leaves the
    /// value out instead of writing `null`.
    pub fn eval_loaded_or_omit(&self, fields: &ViewFields) -> Option<Value> {
        self.root
            .eval_or_omit(self.loaded(fields))
            .map(Cow::into_owned)
    }

    /// Like [`Expr::eval`], but `None` when the expression is a `case`
    /// without `else` and no branch matched.
    pub fn eval_or_omit(&self, input: &Value) -> Option<Value> {
        self.root
            .eval_or_omit(eval::Input::Tree(input))
            .map(Cow::into_owned)
    }

    /// Evaluates against `input`; a missing field reads as `null`.
    pub fn eval(&self, input: &Value) -> Value {
        self.eval_ref(input).into_owned()
    }

    /// Evaluates against `input`, borrowing the result from `input` or from
    /// the expression's literals when possible (no clone for field reads).
    pub fn eval_ref<'a>(&'a self, input: &'a Value) -> Cow<'a, Value> {
        self.root.eval(eval::Input::Tree(input))
    }

    /// True only when the result is JSON `true` (`null` counts as false).
    pub fn matches(&self, input: &Value) -> bool {
        self.root.as_bool(eval::Input::Tree(input)) == Some(true)
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The stage parameter through which the host names the pipeline's
/// user-defined functions to an expression plugin: `udfs`, a
/// comma-separated list. The host sets it on stages whose plugin imports
/// the `udfs` interface; written by hand it only changes which names parse.
pub const UDFS_PARAM: &str = "udfs";

/// True when `name` is a built-in function (case-insensitive); a UDF may
/// not take such a name, since the built-in would always win.
pub fn is_builtin_function(name: &str) -> bool {
    ast::Func::ALL_NAMES
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The names in a `udfs` parameter value, lowercase, empty ones skipped.
pub fn udf_names(param: Option<&str>) -> Vec<String> {
    param
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

impl std::str::FromStr for Expr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests;
