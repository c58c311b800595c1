//! Notices the two mistakes that make an expression silently wrong instead of
//! failing: a field name that no event has (a typo, `amout`), which reads as
//! null, and a comparison of a number with a string (`amount <= '1000'`),
//! which is never true. Each is reported once, in words, with the closest
//! field name the events do have: after [`ABSENT_AFTER`] events, or by
//! [`Watch::finish`] when the stream ends sooner.
//!
//! Strict mode asks the same questions of every single event
//! ([`Watch::check`], [`Watch::check_names`]), so a plugin can dead-letter
//! the event with the answer as its reason.

use serde_json::Value;
use sluice_sdk::json::JsonView;

use crate::ast::{CmpOp, Func, Node};
use crate::quick::Field;
use crate::{Expr, QuickFields, ViewFields};

/// What a watch asks of one event's fields, however they were read.
trait ReadFields {
    /// Whether the expression's top-level field `i` is in the event.
    fn present(&self, i: usize) -> bool;
    /// Whether it is a number or a string (`None`: neither, or absent).
    fn type_at(&self, i: usize) -> Option<Type>;
}

impl ReadFields for ViewFields {
    fn present(&self, i: usize) -> bool {
        self.values.get(i).is_some_and(Option::is_some)
    }
    fn type_at(&self, i: usize) -> Option<Type> {
        self.values
            .get(i)
            .and_then(|v| v.as_ref())
            .and_then(Type::of)
    }
}

impl ReadFields for QuickFields<'_> {
    fn present(&self, i: usize) -> bool {
        i < self.len && self.get(i) != Field::Absent
    }
    fn type_at(&self, i: usize) -> Option<Type> {
        match self.get(i) {
            Field::Int(_) => Some(Type::Number),
            Field::Str(_) => Some(Type::String),
            Field::Absent | Field::Null | Field::Bool(_) => None,
        }
    }
}

/// Events after which a field still never seen is reported as absent.
pub const ABSENT_AFTER: u64 = 100;

/// Distinct field names remembered for "did you mean".
const MAX_KEYS: usize = 256;

/// Longer field names are not remembered (nor suggested): with [`MAX_KEYS`],
/// this bounds what a watch holds, whatever the events' keys.
const MAX_KEY_BYTES: usize = 256;

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
    /// Field names as reported (dotted for nested `select` paths).
    names: Vec<Box<str>>,
    /// For a [`Watch::for_paths`] watch: each name's path, looked up in the
    /// view. Empty for an expression's watch, which reads [`ViewFields`].
    paths: Vec<Vec<String>>,
    /// Fields read only where null is expected (`x is null`, `coalesce(x,
    /// ...)`): strict mode does not require them.
    optional: Vec<bool>,
    /// What an absent field does, for messages.
    consequence: &'static str,
    seen: Vec<bool>,
    keys: Vec<String>,
    events: u64,
    absent_done: bool,
    comparisons: Vec<Comparison>,
    /// The unreported comparisons of a field with a literal, as (index in
    /// `comparisons`, the field's index, the literal's type): what
    /// [`Watch::observe_types`] checks per event before the full check.
    typed: Vec<(usize, usize, Type)>,
    /// Whether every comparison is of a field with a literal (so `typed`
    /// says all there is to check).
    all_typed: bool,
}

impl Expr {
    /// A [`Watch`] for this expression.
    pub fn watch(&self) -> Watch {
        let names: Vec<Box<str>> = self.fields.to_vec();
        let side = |n: &Node| -> Option<Side> {
            match n {
                Node::Field(path, _) => {
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
        let mut optional = vec![false; names.len()];
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            match node {
                Node::Cmp(op, a, b) => {
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
                // The author expects these fields to be missing sometimes.
                Node::IsNull { .. } | Node::Call(Func::Coalesce | Func::Concat, _) => {
                    for field in node.top_level_fields() {
                        if let Some(i) = names.iter().position(|n| *n == field) {
                            optional[i] = true;
                        }
                    }
                }
                _ => {}
            }
            node.for_each_child(&mut |n| stack.push(n));
        }
        let typed: Vec<(usize, usize, Type)> = comparisons
            .iter()
            .enumerate()
            .filter_map(|(c, cmp)| match (&cmp.left, &cmp.right) {
                (Side::Field(i), Side::Lit(t, _)) | (Side::Lit(t, _), Side::Field(i)) => {
                    Some((c, *i, *t))
                }
                _ => None,
            })
            .collect();
        Watch {
            seen: vec![false; names.len()],
            paths: Vec::new(),
            optional,
            consequence: "so it reads as null",
            names,
            keys: Vec::new(),
            events: 0,
            absent_done: false,
            all_typed: typed.len() == comparisons.len(),
            typed,
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
    /// A watch over field paths a projection keeps (`select`), each given by
    /// its names (`["shipping", "city"]`), reporting the ones no event has;
    /// use [`Watch::observe_names`] and [`Watch::check_names`].
    pub fn for_paths<S: AsRef<str>>(paths: &[Vec<S>]) -> Watch {
        let paths: Vec<Vec<String>> = paths
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.iter().map(|n| n.as_ref().to_string()).collect())
            .collect();
        Watch {
            names: paths.iter().map(|p| p.join(".").into()).collect(),
            seen: vec![false; paths.len()],
            optional: vec![false; paths.len()],
            consequence: "so the output leaves it out",
            paths,
            keys: Vec::new(),
            events: 0,
            absent_done: false,
            comparisons: Vec::new(),
            typed: Vec::new(),
            all_typed: true,
        }
    }

    /// The same watch, for fields whose absence reads as null (a join
    /// writes `null` for them) rather than leaving them out of the output.
    pub fn reading_null(mut self) -> Watch {
        self.consequence = "so it reads as null";
        self
    }

    /// [`Watch::observe`] for a watch made by [`Watch::for_paths`]: looks
    /// the paths up in `view` itself.
    pub fn observe_names(&mut self, view: &JsonView<'_>) -> Vec<String> {
        if self.absent_done || !view.is_object() {
            return Vec::new();
        }
        for (seen, path) in self.seen.iter_mut().zip(&self.paths) {
            *seen = *seen || view.path(path).is_some();
        }
        self.count_and_report(view)
    }

    fn remember_keys(&mut self, view: &JsonView<'_>) {
        let unseen = self.paths.iter().zip(&self.seen).filter(|(_, s)| !**s);
        collect_keys(&mut self.keys, view, unseen.map(|(p, _)| p));
    }

    fn count_and_report(&mut self, view: &JsonView<'_>) -> Vec<String> {
        self.events += 1;
        if self.seen.iter().any(|s| !s) {
            self.remember_keys(view);
        }
        if self.events >= ABSENT_AFTER {
            return self.report_absent(" so far");
        }
        Vec::new()
    }

    fn report_absent(&mut self, when: &str) -> Vec<String> {
        self.absent_done = true;
        self.names
            .iter()
            .zip(&self.seen)
            .filter(|(_, s)| !**s)
            .map(|(name, _)| {
                format!(
                    "field `{name}` is absent from all {} events{when}, {}{}",
                    self.events,
                    self.consequence,
                    suggestion(name, &self.keys)
                )
            })
            .collect()
    }

    /// At the end of the stream (or of this instance): reports what is
    /// still unreported of a stream too short for [`ABSENT_AFTER`], a
    /// field absent from all of its events. Nothing after no events.
    pub fn finish(&mut self) -> Vec<String> {
        if self.absent_done || self.events == 0 {
            return Vec::new();
        }
        self.report_absent("")
    }

    /// Whether anything is left to report; when not, callers may skip
    /// [`Watch::observe`] entirely.
    pub fn active(&self) -> bool {
        !self.absent_done || !self.typed.is_empty() || self.comparisons.iter().any(|c| !c.reported)
    }

    /// Observes one object event after [`Expr::load`] loaded `fields` from
    /// `view`; returns what to report now (usually nothing).
    pub fn observe(&mut self, view: &JsonView<'_>, fields: &ViewFields) -> Vec<String> {
        if !view.is_object() || fields.root.is_some() {
            return Vec::new();
        }
        self.observe_read(view, fields)
    }

    /// [`Watch::observe`] for an event whose fields [`Expr::read_quick`]
    /// read.
    pub fn observe_quick(&mut self, view: &JsonView<'_>, fields: &QuickFields<'_>) -> Vec<String> {
        self.observe_read(view, fields)
    }

    fn observe_read(&mut self, view: &JsonView<'_>, fields: &impl ReadFields) -> Vec<String> {
        let mut out = Vec::new();
        if !self.absent_done {
            for (i, seen) in self.seen.iter_mut().enumerate() {
                *seen |= fields.present(i);
            }
            out = self.count_and_report(view);
        }
        self.compare_types(fields, &mut out);
        out
    }

    /// Whether [`Watch::observe`] still needs the event's view (to name
    /// the keys events do have, for an absent field); once not,
    /// [`Watch::observe_types`] does the rest of its job without one.
    pub fn needs_view(&self) -> bool {
        !self.absent_done
    }

    /// [`Watch::observe_quick`] once [`Watch::needs_view`] is false: only
    /// comparisons of a number with a string are left to notice.
    pub fn observe_types(&mut self, fields: &QuickFields<'_>) -> Vec<String> {
        let mut out = Vec::new();
        // Per event, mostly: each watched field against its literal's
        // type, and nothing found.
        let differs = |&(_, i, t): &(usize, usize, Type)| {
            matches!(
                (fields.get(i), t),
                (Field::Int(_), Type::String) | (Field::Str(_), Type::Number)
            )
        };
        if self.all_typed && !self.typed.iter().any(differs) {
            return out;
        }
        self.compare_types(fields, &mut out);
        out
    }

    fn compare_types(&mut self, fields: &impl ReadFields, out: &mut Vec<String>) {
        for i in 0..self.comparisons.len() {
            if self.comparisons[i].reported {
                continue;
            }
            if let Some(message) = self.mismatch(&self.comparisons[i], fields) {
                self.comparisons[i].reported = true;
                self.typed.retain(|&(c, _, _)| c != i);
                out.push(message);
            }
        }
    }

    /// The message when `c` compares a number with a string in this event.
    fn mismatch(&self, c: &Comparison, fields: &impl ReadFields) -> Option<String> {
        let ty = |s: &Side| match s {
            Side::Field(i) => fields.type_at(*i),
            Side::Lit(t, _) => Some(*t),
        };
        let (l, r) = (ty(&c.left)?, ty(&c.right)?);
        if l == r {
            return None;
        }
        let show = |s: &Side, t: Type| match s {
            Side::Field(i) => format!("field `{}` ({} in this event)", self.names[*i], t.word()),
            Side::Lit(_, text) => format!("{} {text}", t.word()),
        };
        Some(format!(
            "`{}` compares {} with {}, which is never true; write both as the same type",
            c.op,
            show(&c.left, l),
            show(&c.right, r)
        ))
    }

    /// Strict mode, after [`Expr::load`]: what is wrong with this one event,
    /// if anything: a field the expression reads is absent (unless it is
    /// only tested for null), or a comparison is between a number and a
    /// string. The message reads like the warning's.
    pub fn check(&self, view: &JsonView<'_>, fields: &ViewFields) -> Option<String> {
        if !view.is_object() || fields.root.is_some() {
            let name = self.names.iter().zip(&self.optional).find(|(_, o)| !**o)?.0;
            return Some(format!(
                "the value is not a JSON object: field `{name}` is absent, {}",
                self.consequence
            ));
        }
        let absent = (fields.values.iter().zip(&self.optional))
            .position(|(v, optional)| v.is_none() && !optional);
        if let Some(i) = absent {
            return Some(self.absent_here(&self.names[i], view));
        }
        self.comparisons
            .iter()
            .find_map(|c| self.mismatch(c, fields))
    }

    /// Strict mode for a [`Watch::for_paths`] watch: the first path absent
    /// from this event, in words.
    pub fn check_names(&self, view: &JsonView<'_>) -> Option<String> {
        let i = self.paths.iter().position(|p| view.path(p).is_none())?;
        Some(self.absent_here(&self.names[i], view))
    }

    fn absent_here(&self, name: &str, view: &JsonView<'_>) -> String {
        // Only on a failing event: the keys are gathered just for the hint.
        let mut keys = Vec::new();
        collect_keys(&mut keys, view, self.paths.iter());
        format!(
            "field `{name}` is absent from this event, {}{}",
            self.consequence,
            suggestion(name, &keys)
        )
    }
}

/// Adds to `keys` (up to [`MAX_KEYS`]) the event's field names and, for each
/// nested path whose parent object is in the event, the parent's field names
/// as paths (`shipping.city`), for "did you mean".
fn collect_keys<'p>(
    keys: &mut Vec<String>,
    view: &JsonView<'_>,
    paths: impl Iterator<Item = &'p Vec<String>>,
) {
    let mut add = |key: String| {
        if keys.len() < MAX_KEYS && key.len() <= MAX_KEY_BYTES && !keys.contains(&key) {
            keys.push(key);
        }
    };
    for (key, _) in view.fields() {
        if key.escaped_text().len() <= MAX_KEY_BYTES {
            add(key.text().into_owned());
        }
    }
    for path in paths {
        if let Some((_, parent)) = path.split_last().filter(|(_, p)| !p.is_empty()) {
            if let Some(raw) = view.path(parent) {
                for (key, _) in raw.entries() {
                    add(format!("{}.{}", parent.join("."), key.text()));
                }
            }
        }
    }
}

/// `; did you mean `amount`?` when a seen key is close to `name`.
fn suggestion(name: &str, keys: &[String]) -> String {
    let most = max_distance(name);
    candidates(name, keys)
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= most && *d < k.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// The most edits a suggestion may be away from `name`.
fn max_distance(name: &str) -> usize {
    2.max(name.len() / 3)
}

/// The keys worth a distance: one whose length alone is too far off is
/// never close, and skipping it keeps a hostile megabyte-long key from
/// costing a distance table a megabyte wide (tens of MB of the plugin's
/// memory) on every failing event in strict mode.
fn candidates<'k>(name: &str, keys: &'k [String]) -> impl Iterator<Item = &'k String> {
    let (most, len) = (max_distance(name), name.len());
    keys.iter().filter(move |k| k.len().abs_diff(len) <= most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_far_longer_or_shorter_than_the_name_are_not_measured() {
        let keys = vec![
            "amount".repeat(200_000),
            "amuont".to_string(),
            "a".to_string(),
            "amounts_".to_string(),
        ];
        let measured: Vec<&String> = candidates("amount", &keys).collect();
        assert_eq!(measured, vec!["amuont", "amounts_"]);
        assert_eq!(suggestion("amount", &keys), "; did you mean `amuont`?");
    }

    /// The type check the quick path runs per event reports each mismatch
    /// once, and once all are reported (and absent fields with them) the
    /// watch has nothing left to do: callers stop asking.
    #[test]
    fn a_reported_mismatch_is_checked_no_more() {
        let expr = Expr::parse("a > 'x' and b = 3").expect("expr");
        let mut watch = expr.watch();
        let mut reported = Vec::new();
        for (i, event) in std::iter::repeat_n(r#"{"a":1,"b":"3"}"#, 150).enumerate() {
            let view = JsonView::parse(event.as_bytes()).expect("json");
            let got = expr.read_quick(&view, |fields| match watch.needs_view() {
                true => watch.observe_quick(&view, fields),
                false => watch.observe_types(fields),
            });
            reported.extend(got.expect("a quick condition").into_iter().map(|m| (i, m)));
        }
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert!(reported.iter().all(|(i, _)| *i == 0), "{reported:?}");
        assert!(!watch.active(), "nothing left to report");
    }

    #[test]
    fn what_a_watch_remembers_is_bounded_whatever_the_keys() {
        let huge = "k".repeat(MAX_KEY_BYTES + 1);
        let wide: String = (0..MAX_KEYS + 50)
            .map(|i| format!(r#""f{i}":1,"#))
            .collect();
        let event = format!(r#"{{"{huge}":1,{wide}"shipping":{{"{huge}":2,"city":"x"}}}}"#);
        let view = JsonView::parse(event.as_bytes()).expect("json");
        let mut keys = Vec::new();
        let paths = [vec!["shipping".to_string(), "ctiy".to_string()]];
        collect_keys(&mut keys, &view, paths.iter());
        assert_eq!(keys.len(), MAX_KEYS);
        assert!(keys.iter().all(|k| k.len() <= MAX_KEY_BYTES));
        assert_eq!(keys[0], "f0");
    }
}
