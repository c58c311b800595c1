//! A computed field, `set: {name: EXPRESSION}`, evaluated per event on a
//! zero-copy view: `project`'s splicing path, and what `lookup-join`
//! computes before it joins (SQL's projection and join compiled into one
//! stage). Arithmetic comes from the raw fields while nothing needs the
//! loaded ones; otherwise the fields are loaded and the watch told of them.

use serde_json::Value;
use sluice_sdk::json::JsonView;

use crate::{Expr, ViewFields, Watch};

/// One `set` entry: an expression, or a constant given as a non-string JSON
/// value (`set: {version: 2}`), with what it reuses from event to event.
#[derive(Debug, Clone)]
pub struct SetField {
    name: String,
    value: SetValue,
    /// Reused per event: the fields the expression reads.
    fields: ViewFields,
    /// Reports, once each, a field no event has and a number compared with
    /// a string; dropped once it has nothing left to report.
    watch: Option<Watch>,
}

#[derive(Debug, Clone)]
enum SetValue {
    Expr(Expr),
    Const(Value),
}

impl SetField {
    /// The entry `name: value` of parameter `param`: a string is an
    /// expression, anything else a constant.
    pub fn new(param: &str, name: &str, value: Value, udfs: &[String]) -> Result<Self, String> {
        let value = match value {
            Value::String(src) => SetValue::Expr(
                Expr::parse_with_udfs(&src, udfs)
                    .map_err(|e| format!("parameter `{param}`: field `{name}`: {e} in `{src}`"))?,
            ),
            constant => SetValue::Const(constant),
        };
        let watch = match &value {
            SetValue::Expr(e) => Some(e.watch()),
            SetValue::Const(_) => None,
        };
        Ok(SetField {
            name: name.to_string(),
            value,
            fields: ViewFields::default(),
            watch,
        })
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The top-level fields an arithmetic expression reads, in
    /// [`Expr::fields`] order: a caller that finds them with its own names
    /// in one search passes where they are to [`SetField::value`].
    pub fn arithmetic_reads(&self) -> Option<Vec<&str>> {
        match &self.value {
            SetValue::Expr(e) if e.is_arithmetic() => Some(e.fields().collect()),
            _ => None,
        }
    }

    /// The value for `view` (an object); `None` when a `case` without
    /// `else` matched nothing. `found`: where `view` has
    /// [`SetField::arithmetic_reads`], when the caller found them.
    /// `strict` (`project`'s): a mistake the watch finds in this event is an
    /// error, so the fields are always loaded and the watch kept. `Err`, the
    /// reason to reject the event: its value is not valid JSON, or under
    /// `strict` the watch's finding.
    pub fn value(
        &mut self,
        view: &JsonView<'_>,
        found: Option<&[Option<usize>]>,
        strict: bool,
    ) -> Result<Option<Value>, String> {
        let e = match &self.value {
            SetValue::Const(v) => return Ok(Some(v.clone())),
            SetValue::Expr(e) => e,
        };
        if !strict && self.watch.as_ref().is_some_and(|w| !w.active()) {
            // Nothing left to report: no need to ask again per event.
            self.watch = None;
        }
        if !strict && self.watch.is_none() {
            // Arithmetic from the raw fields when nothing needs the loaded
            // ones: the same answer (see `Expr::number_in`).
            let number = match found {
                Some(found) => e.number_in_found(view, found),
                None => e.number_in(view),
            };
            if let Some(number) = number {
                return Ok(Some(number));
            }
        }
        e.load(view, &mut self.fields)
            .map_err(|e| format!("value is not valid JSON: {e}"))?;
        if let Some(watch) = self.watch.as_mut().filter(|w| w.active()) {
            for warning in watch.observe(view, &self.fields) {
                sluice_sdk::log::warn(&format!("{}: {warning}", self.label()));
            }
        }
        let problem = self.watch.as_ref().filter(|_| strict);
        if let Some(problem) = problem.and_then(|w| w.check(view, &self.fields)) {
            return Err(format!("{}: {problem}", self.label()));
        }
        Ok(e.eval_loaded_or_omit(&self.fields))
    }

    /// At the end of the stream: what the watch still has to report.
    pub fn finish(&mut self) {
        if let Some(watch) = self.watch.as_mut() {
            for warning in watch.finish() {
                sluice_sdk::log::warn(&format!("{}: {warning}", self.label()));
            }
        }
    }

    /// How messages name the entry: `` `set: {flagged: amount > 10}` ``.
    fn label(&self) -> String {
        match &self.value {
            SetValue::Expr(e) => format!("`set: {{{}: {}}}`", self.name, e.source()),
            SetValue::Const(v) => format!("`set: {{{}: {v}}}`", self.name),
        }
    }
}
