//! A `where` condition applied to events: what the `filter` plugin does to
//! each event, and `project` with a `where` before it reshapes one. One
//! implementation, so a condition keeps or drops exactly the same events,
//! with the same warnings and dead-letter reasons, in either plugin.

use sluice_sdk::json::JsonParser;
use sluice_sdk::{Event, EventError};

use crate::{take_udf_error, Expr, ViewFields, Watch};

/// A parsed `where` condition with what it reuses from event to event.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
    /// Reused per event: the table of top-level fields.
    parser: JsonParser,
    /// Reused per event: the fields the condition reads.
    fields: ViewFields,
    /// Reports, once each, a field no event has and a number compared with
    /// a string: both make the condition silently false.
    watch: Watch,
    /// An event on which the watch finds either mistake is rejected
    /// (dead-lettered) with it as the reason, instead of dropped.
    strict: bool,
}

impl Condition {
    /// Parses `source`; an error names the parameter `where`.
    pub fn new(source: &str, udfs: &[String], strict: bool) -> Result<Self, String> {
        let expr = Expr::parse_with_udfs(source, udfs)
            .map_err(|e| format!("parameter `where`: {e} in `{source}`"))?;
        Ok(Condition {
            watch: expr.watch(),
            expr,
            parser: JsonParser::new(),
            fields: ViewFields::default(),
            strict,
        })
    }

    /// The parsed expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether `event`, which must not be a tombstone, passes. A value that
    /// is not JSON, a failed user-defined function, and under `strict` a
    /// mistake the watch finds, reject the event.
    ///
    /// Most conditions (top-level fields compared with literals, joined by
    /// `and`, `or`, `not`) are answered from the fields' raw text, with no
    /// value built ([`Expr::read_quick`]); once the watch has seen its first
    /// events, their fields are found in the host's field table in place,
    /// without a view ([`Event::table_lookup`]). Both give the general
    /// path's answer, which any other condition or value takes.
    pub fn keeps(&mut self, event: &Event<'_>) -> Result<bool, EventError> {
        if !self.strict {
            if let Some(keep) = self.quick_from_table(event) {
                return Ok(keep);
            }
        }
        // One checking pass over the bytes (zero-copy view), then only the
        // fields the condition reads are built.
        let view = event.view(&mut self.parser)?;
        if !self.strict {
            let (expr, watch) = (&self.expr, &mut self.watch);
            let keep = expr.read_quick(&view, |fields| {
                if watch.active() {
                    for warning in watch.observe_quick(&view, fields) {
                        warn(expr, &warning);
                    }
                }
                expr.matches_quick(fields)
            });
            if let Some(keep) = keep {
                return Ok(keep);
            }
        }
        self.expr
            .load(&view, &mut self.fields)
            .map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}")))?;
        if self.watch.active() {
            for warning in self.watch.observe(&view, &self.fields) {
                warn(&self.expr, &warning);
            }
        }
        if self.strict {
            if let Some(problem) = self.watch.check(&view, &self.fields) {
                return Err(EventError::Reject(format!(
                    "`where: {}`: {problem}",
                    self.expr.source()
                )));
            }
        }
        let keep = self.expr.matches_loaded(&self.fields);
        // A failed user-defined function fails this event, whatever the
        // condition made of its `null`.
        if let Some(reason) = take_udf_error() {
            return Err(EventError::Reject(format!(
                "`where: {}`: {reason}",
                self.expr.source()
            )));
        }
        Ok(keep)
    }

    /// The condition's answer from the host's field table read in place,
    /// when the condition has a quick form and the table and values allow
    /// it (see [`Expr::read_quick`]): no view is made, so the table is not
    /// decoded. Not while the watch still needs views (its first events).
    fn quick_from_table(&mut self, event: &Event<'_>) -> Option<bool> {
        if self.watch.needs_view() {
            return None;
        }
        let table = event.table_lookup()?;
        let (expr, watch) = (&self.expr, &mut self.watch);
        expr.read_quick_in(&table, |fields| {
            if watch.active() {
                for warning in watch.observe_types(fields) {
                    warn(expr, &warning);
                }
            }
            expr.matches_quick(fields)
        })
    }

    /// At the end of the stream: a stream shorter than the watch's threshold
    /// still hears about a field none of its events had.
    pub fn finish(&mut self) {
        for warning in self.watch.finish() {
            warn(&self.expr, &warning);
        }
    }
}

fn warn(expr: &Expr, warning: &str) {
    sluice_sdk::log::warn(&format!("`where: {}`: {warning}", expr.source()));
}
