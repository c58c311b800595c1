//! Notices the two mistakes that make an expression silently wrong instead of
//! failing: a field name that no event has (a typo, `amout`), which reads as
//! null, and a comparison of a number with a string (`amount <= '1000'`),
//! which is never true. Each is reported once, in words, with the closest
//! field name the events do have.

use serde_json::Value;
use sluice_sdk::json::JsonView;

use crate::ast::{CmpOp, Node};
use crate::{Expr, ViewFields};

/// Events after which a field still never seen is reported as absent.
pub const ABSENT_AFTER: u64 = 100;

/// Distinct field names remembered for "did you mean".
const MAX_KEYS: usize = 256;

/// What one side of a watched comparison is.
#[derive(Debug, Clone)]
enum Side {
    /// The top-level field at this index of [`Expr::fields`].
    Field(usize),
    /// A literal number or string, with its text as written.
    Lit(Type, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Number,
    String,
}

impl Type {
    fn of(v: &Value) -> Option<Type> {
        match v {
            Value::Number(_) => Some(Type::Number),
            Value::String(_) => Some(Type::String),
            _ => None,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::String => "a string",
        }
    }
}

#[derive(Debug, Clone)]
struct Comparison {
    left: Side,
    right: Side,
    op: &'static str,
    reported: bool,
}

/// Watches the events one expression reads; see the module docs. Cheap per
/// event: a flag per field read, and a type check per comparison until each
/// has been reported.
#[derive(Debug, Clone)]
pub struct Watch {
    names: Vec<Box<str>>,
    seen: Vec<bool>,
    keys: Vec<String>,
    events: u64,
    absent_done: bool,
    comparisons: Vec<Comparison>,
}

impl Expr {
    /// A [`Watch`] for this expression.
    pub fn watch(&self) -> Watch {
        let names: Vec<Box<str>> = self.fields.to_vec();
        let side = |n: &Node| -> Option<Side> {
            match n {
                Node::Field(path) => {
                    let mut it = path.names();
                    let first = it.next()?;
                    if it.next().is_some() {
                        return None;
                    }
                    names.iter().position(|f| **f == *first).map(Side::Field)
                }
                Node::Lit(v) => Type::of(v)
                    .map(|t| (t, v.to_string()))
                    .map(|(t, s)| Side::Lit(t, s)),
                _ => None,
            }
        };
        let mut comparisons = Vec::new();
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            if let Node::Cmp(op, a, b) = node {
                if let (Some(left), Some(right)) = (side(a), side(b)) {
                    if matches!(left, Side::Field(_)) || matches!(right, Side::Field(_)) {
                        comparisons.push(Comparison {
                            left,
                            right,
                            op: op_text(*op),
                            reported: false,
                        });
                    }
                }
            }
            node.for_each_child(&mut |n| stack.push(n));
        }
        Watch {
            seen: vec![false; names.len()],
            names,
            keys: Vec::new(),
            events: 0,
            absent_done: false,
            comparisons,
        }
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

impl Watch {
    /// A watch over plain top-level field names (a projection's `select`),
    /// reporting only the ones no event has; use [`Watch::observe_names`].
    pub fn for_fields<S: AsRef<str>>(names: &[S]) -> Watch {
        Watch {
            names: names.iter().map(|n| n.as_ref().into()).collect(),
            seen: vec![false; names.len()],
            keys: Vec::new(),
            events: 0,
            absent_done: false,
            comparisons: Vec::new(),
        }
    }

    /// [`Watch::observe`] for a watch made by [`Watch::for_fields`]: looks
    /// the names up in `view` itself.
    pub fn observe_names(&mut self, view: &JsonView<'_>) -> Vec<String> {
        if self.absent_done || !view.is_object() {
            return Vec::new();
        }
        for (seen, name) in self.seen.iter_mut().zip(&self.names) {
            *seen = *seen || view.get(name).is_some();
        }
        self.count_and_report(view)
    }

    fn count_and_report(&mut self, view: &JsonView<'_>) -> Vec<String> {
        let mut out = Vec::new();
        self.events += 1;
        if self.seen.iter().any(|s| !s) {
            for (key, _) in view.fields() {
                if self.keys.len() >= MAX_KEYS {
                    break;
                }
                let key = key.text();
                if !self.keys.iter().any(|k| *k == key) {
                    self.keys.push(key.into_owned());
                }
            }
        }
        if self.events >= ABSENT_AFTER {
            self.absent_done = true;
            for (name, _) in self.names.iter().zip(&self.seen).filter(|(_, s)| !**s) {
                out.push(format!(
                    "field `{name}` is absent from all {} events so far, so it reads as null{}",
                    self.events,
                    suggestion(name, &self.keys)
                ));
            }
        }
        out
    }

    /// Whether anything is left to report; when not, callers may skip
    /// [`Watch::observe`] entirely.
    pub fn active(&self) -> bool {
        !self.absent_done || self.comparisons.iter().any(|c| !c.reported)
    }

    /// Observes one object event after [`Expr::load`] loaded `fields` from
    /// `view`; returns what to report now (usually nothing).
    pub fn observe(&mut self, view: &JsonView<'_>, fields: &ViewFields) -> Vec<String> {
        if !view.is_object() || fields.root.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !self.absent_done {
            for (seen, value) in self.seen.iter_mut().zip(&fields.values) {
                *seen |= value.is_some();
            }
            out = self.count_and_report(view);
        }
        for c in self.comparisons.iter_mut().filter(|c| !c.reported) {
            let ty = |s: &Side| match s {
                Side::Field(i) => fields
                    .values
                    .get(*i)
                    .and_then(|v| v.as_ref())
                    .and_then(Type::of),
                Side::Lit(t, _) => Some(*t),
            };
            if let (Some(l), Some(r)) = (ty(&c.left), ty(&c.right)) {
                if l != r {
                    c.reported = true;
                    let show = |s: &Side, t: Type| match s {
                        Side::Field(i) => {
                            format!("field `{}` ({} in this event)", self.names[*i], t.word())
                        }
                        Side::Lit(_, text) => format!("{} {text}", t.word()),
                    };
                    out.push(format!(
                        "`{}` compares {} with {}, which is never true; write both as the same type",
                        c.op,
                        show(&c.left, l),
                        show(&c.right, r)
                    ));
                }
            }
        }
        out
    }
}

/// `; did you mean `amount`?` when a seen key is close to `name`.
fn suggestion(name: &str, keys: &[String]) -> String {
    keys.iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(name.len() / 3) && *d < k.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}
