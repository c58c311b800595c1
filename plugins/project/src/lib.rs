//! # sluice-plugin-project
//!
//! Reshapes JSON object values: keep (`select`), remove (`drop`) and rename
//! (`rename`) fields, and add computed ones (`set`, expressions in the
//! [`sluice_expr`] language).
//!
//! Order, per event: every `set` expression is evaluated against the *input*
//! value first; then `select`, `rename` and `drop` are applied in that order;
//! finally the computed values are written. So a `set` can read a field that
//! `select` or `drop` removes, and a computed field survives `select`/`drop`.
//!
//! Tombstones are forwarded unchanged; values that are not JSON objects are
//! rejected. The type is public so a host benchmark can run the same logic
//! natively through [`sluice_sdk::run_transform`].
#![deny(missing_docs)]

mod order;
mod splice;

use serde_json::{Map, Value};
use sluice_expr::{
    parse_json_keeping, type_name, Condition, Expr, Path, SetField, ViewFields, Watch,
};
use sluice_sdk::json::JsonParser;
use sluice_sdk::{Emitter, Event, EventError, OutEvent, Params, Transform};
use splice::{Sel, Splice};

const PARAMS: [&str; 5] = ["select", "drop", "rename", "set", "key"];

/// Not a reshaping parameter: alone it does nothing.
const STRICT: &str = "strict";

/// Not a reshaping parameter either: `preserve` (the default) or `canonical`.
const STYLE: &str = "style";

/// Not a reshaping parameter: a condition an event must meet to be reshaped
/// at all, as a `filter` stage in front would decide it (SQL's `SELECT ...
/// WHERE` in one stage, so events cross into Wasm once).
const WHERE: &str = "where";

/// The `project` transform.
#[derive(Debug, Clone)]
pub struct Project {
    /// Paths to keep, none a prefix of another; `None` keeps everything.
    select: Option<Vec<Path>>,
    /// (old, new) pairs, applied as one simultaneous move.
    rename: Vec<(Path, Path)>,
    drop: Vec<Path>,
    set: Vec<(Path, Computed)>,
    /// With `select`, the only top-level input fields that matter (selected
    /// or read by `set`); the others are skipped while parsing.
    needed: Option<Vec<String>>,
    /// Reused per event: computed values, then renamed values.
    scratch: Vec<Option<Value>>,
    moved: Vec<Option<Value>>,
    /// When every path is a top-level name: the splicing path (no tree).
    splice: Option<Splice>,
    /// Reused per event on the tree path in strict mode: the fields each
    /// `set` expression reads.
    loaded: Vec<ViewFields>,
    /// `set` as the splicing path computes it (`sluice_expr::SetField`).
    set_fields: Vec<SetField>,
    parser: JsonParser,
    splice_scratch: splice::Scratch,
    /// Report, once each, a selected field no event has (the `set`
    /// expressions' watches are in `set_fields`). Only on the splicing
    /// path, where the view already indexes the fields.
    select_watch: Option<Watch>,
    /// The `set` expressions' watches for strict mode on the tree path.
    set_watches: Vec<Option<Watch>>,
    /// `strict: true`: an event missing a selected field, or on which a
    /// `set` expression meets what its watch reports, is rejected
    /// (dead-lettered) with that as the reason.
    strict: bool,
    /// `style: canonical`: keys sorted at every level, `serde_json`'s number
    /// and string forms. Otherwise the tree path writes in the splicing
    /// path's style (see `order`), with the selected top-level names first
    /// and the renamed and computed ones after the input's own.
    canonical: bool,
    plan: order::Plan,
    /// `key`: the output event's key, computed against the input value
    /// (what ksqlDB's `PARTITION BY` does); the input's key when absent.
    key: Option<Expr>,
    /// `where`: events it does not keep are dropped before reshaping.
    condition: Option<Condition>,
}

/// A `set` entry: an expression, or a constant given as a non-string JSON
/// value (`set: {version: 2}`).
#[derive(Debug, Clone)]
enum Computed {
    Expr(Expr),
    Const(Value),
}

/// Splits `a, b.c, `x,y`` on commas outside backquotes, trimming items.
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    let items: Vec<String> = items.into_iter().map(|s| s.trim().to_string()).collect();
    if items.len() == 1 && items[0].is_empty() {
        Vec::new()
    } else {
        items
    }
}

fn parse_path(param: &str, text: &str) -> Result<Path, String> {
    Path::parse(text).map_err(|e| format!("parameter `{param}`: field path `{text}`: {e}"))
}

/// A list of paths: a JSON list of strings, or comma-separated text.
fn path_list(params: &Params, name: &str) -> Result<Option<Vec<Path>>, String> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    let items = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "parameter `{name}`: expected a list of field paths, found {} in the list",
                    type_name(&other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Ok(Value::String(s)) => split_list(&s),
        Ok(other) => {
            return Err(format!(
                "parameter `{name}`: expected a list of field paths (like [\"id\", \"user.name\"] \
                 or \"id, user.name\"), found {}",
                type_name(&other)
            ))
        }
        // Plain YAML text arrives unquoted: `select: id, user.name`.
        Err(_) => split_list(text),
    };
    items
        .iter()
        .map(|item| parse_path(name, item))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An object parameter (`rename`, `set`).
fn object(
    params: &Params,
    name: &str,
    example: &str,
) -> Result<Option<Map<String, Value>>, String> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(format!(
            "parameter `{name}`: expected a map like {example}, found {}",
            type_name(&other)
        )),
        Err(e) => Err(format!(
            "parameter `{name}`: expected a map like {example} ({e})"
        )),
    }
}

/// Whether `prefix` is a strict or equal prefix of `path` (by names).
fn covers(prefix: &Path, path: &Path) -> bool {
    let mut names = path.names();
    prefix.names().all(|p| names.next() == Some(p))
}

impl Project {
    /// The same projection on the tree path (every event parsed into a
    /// `serde_json::Value` and re-serialized): for benchmarks and tests that
    /// compare the two paths.
    #[doc(hidden)]
    pub fn without_splicing(mut self) -> Self {
        self.splice = None;
        self
    }

    fn reject(reason: impl std::fmt::Display) -> EventError {
        EventError::Reject(reason.to_string())
    }

    /// The splicing path (see [`splice`]): no tree is built; fields are
    /// copied as raw slices and only computed values are serialized.
    fn process_spliced(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
    ) -> Result<(), EventError> {
        let Some(splice) = &self.splice else {
            return Err(EventError::Fatal("splicing path without a plan".into()));
        };
        if event.is_tombstone() {
            // Tombstones pass unchanged.
            out.forward();
            return Ok(());
        }
        let view = event.view(&mut self.parser)?;
        if !view.is_object() {
            return Err(Self::reject(format_args!(
                "value is {}, not a JSON object",
                view.root().kind().described()
            )));
        }
        if let Some(watch) = self.select_watch.as_mut().filter(|w| w.active()) {
            for warning in watch.observe_names(&view) {
                sluice_sdk::log::warn(&format!("`select`: {warning}"));
            }
        }
        if self.strict {
            Self::check_select(self.select_watch.as_ref(), &view)?;
        }
        splice.find(&view, &mut self.splice_scratch);
        let mut computed = std::mem::take(&mut self.scratch);
        computed.clear();
        for (i, f) in self.set_fields.iter_mut().enumerate() {
            let found = splice.reads(&self.splice_scratch, i);
            computed.push(
                f.value(&view, found, self.strict)
                    .map_err(EventError::Reject)?,
            );
        }
        let scratch = &mut self.splice_scratch;
        out.value_with(|buf| splice.write(&view, scratch, computed.iter(), buf));
        self.scratch = computed;
        Ok(())
    }
}

impl Project {
    /// Strict mode: rejects an event that lacks a selected field.
    fn check_select(
        watch: Option<&Watch>,
        view: &sluice_sdk::json::JsonView<'_>,
    ) -> Result<(), EventError> {
        match watch.and_then(|w| w.check_names(view)) {
            Some(problem) => Err(Self::reject(format_args!("`select`: {problem}"))),
            None => Ok(()),
        }
    }

    /// Strict mode on the tree path: the checks of the splicing path, on a
    /// zero-copy view taken for them alone.
    fn check_tree(&mut self, event: &Event<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            return Ok(());
        }
        let view = event.view(&mut self.parser)?;
        if !view.is_object() {
            // The tree path rejects it, saying so.
            return Ok(());
        }
        Self::check_select(self.select_watch.as_ref(), &view)?;
        self.loaded.resize_with(self.set.len(), ViewFields::default);
        for (((path, c), fields), watch) in self
            .set
            .iter()
            .zip(self.loaded.iter_mut())
            .zip(self.set_watches.iter())
        {
            let (Computed::Expr(e), Some(watch)) = (c, watch) else {
                continue;
            };
            e.load(&view, fields)
                .map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}")))?;
            if let Some(problem) = watch.check(&view, fields) {
                return Err(Self::reject(format_args!(
                    "{}: {problem}",
                    set_label(path, e)
                )));
            }
        }
        Ok(())
    }
}

/// How messages name a `set` entry: `` `set: {flagged: amount > 10}` ``.
fn set_label(path: &Path, e: &Expr) -> String {
    let name: Vec<&str> = path.names().collect();
    format!("`set: {{{}: {}}}`", name.join("."), e.source())
}

impl Transform for Project {
    fn new(params: &Params) -> Result<Self, String> {
        let mut allowed = PARAMS.to_vec();
        allowed.extend([STRICT, STYLE, WHERE, sluice_expr::UDFS_PARAM]);
        params.only(&allowed)?;
        let udfs = sluice_expr::udf_names(params.get(sluice_expr::UDFS_PARAM));
        let strict = params.bool_or(STRICT, false)?;
        let condition = match params.get(WHERE) {
            Some(source) => Some(Condition::new(source, &udfs, strict)?),
            None => None,
        };
        let canonical = match params.get(STYLE) {
            None | Some("preserve") => false,
            Some("canonical") => true,
            Some(other) => {
                return Err(format!(
                    "parameter `style`: expected `preserve` (the default: keys in the input's order, values as the input wrote them) or `canonical` (keys sorted, numbers and strings re-serialized), found `{other}`"
                ))
            }
        };
        if PARAMS.iter().all(|p| params.get(p).is_none()) {
            let alone = if condition.is_some() {
                " (`where` alone reshapes nothing: that is the `filter` plugin)"
            } else {
                ""
            };
            return Err(format!(
                "at least one parameter is required: {}{alone}",
                PARAMS.join(", ")
            ));
        }

        // A path under another selected path is already kept with it.
        let select = path_list(params, "select")?.map(|paths| {
            let mut kept: Vec<Path> = Vec::with_capacity(paths.len());
            for (i, p) in paths.iter().enumerate() {
                let redundant = paths
                    .iter()
                    .enumerate()
                    .any(|(j, q)| j != i && covers(q, p) && (q != p || j < i));
                if !redundant {
                    kept.push(p.clone());
                }
            }
            kept
        });
        let drop = path_list(params, "drop")?.unwrap_or_default();

        let mut rename = Vec::new();
        if let Some(map) = object(params, "rename", r#"{"old.path": "new_name"}"#)? {
            for (old, new) in map {
                let Value::String(new) = new else {
                    return Err(format!(
                        "parameter `rename`: the new name of `{old}` must be a string, found {}",
                        type_name(&new)
                    ));
                };
                rename.push((parse_path("rename", &old)?, parse_path("rename", &new)?));
            }
        }

        let mut set = Vec::new();
        let mut set_fields = Vec::new();
        if let Some(map) = object(params, "set", r#"{"field": "EXPRESSION"}"#)? {
            for (field, expr) in map {
                let path = parse_path("set", &field)?;
                let name: Vec<&str> = path.names().collect();
                set_fields.push(SetField::new("set", &name.join("."), expr.clone(), &udfs)?);
                let computed = match expr {
                    Value::String(src) => {
                        Computed::Expr(Expr::parse_with_udfs(&src, &udfs).map_err(|e| {
                            format!("parameter `set`: field `{field}`: {e} in `{src}`")
                        })?)
                    }
                    constant => Computed::Const(constant),
                };
                set.push((path, computed));
            }
        }

        let key = params
            .get("key")
            .map(|src| {
                Expr::parse_with_udfs(src, &udfs)
                    .map_err(|e| format!("parameter `key`: {e} in `{src}`"))
            })
            .transpose()?;
        let needed = select.as_ref().map(|select| {
            let mut needed: Vec<String> = Vec::new();
            let exprs = set
                .iter()
                .filter_map(|(_, c)| match c {
                    Computed::Expr(e) => Some(e),
                    Computed::Const(_) => None,
                })
                .chain(key.iter());
            let names = select
                .iter()
                .filter_map(|p| p.names().next())
                .chain(exprs.flat_map(Expr::fields));
            for name in names {
                if !needed.iter().any(|n| n == name) {
                    needed.push(name.to_string());
                }
            }
            needed
        });

        let single = |p: &Path| -> Option<String> {
            let mut names = p.names();
            let first = names.next()?;
            names.next().is_none().then(|| first.to_string())
        };
        let splice = (|| {
            let select = match &select {
                Some(paths) => {
                    let mut list = Vec::new();
                    for p in paths {
                        Sel::insert(&mut list, &p.names().collect::<Vec<_>>());
                    }
                    Some(list)
                }
                None => None,
            };
            // A name selected in part must not be renamed, dropped or set
            // too: those work on whole top-level fields.
            let partial: Vec<&str> = select
                .iter()
                .flatten()
                .filter(|s| !s.children.is_empty())
                .map(|s| s.name.as_str())
                .collect();
            let first = |p: &Path| p.names().next().map(str::to_string);
            let touched = rename
                .iter()
                .flat_map(|(old, new)| [first(old), first(new)])
                .chain(drop.iter().map(first))
                .chain(set.iter().map(|(p, _)| first(p)))
                .flatten()
                .any(|n| partial.contains(&n.as_str()));
            if touched {
                return None;
            }
            Some(Splice::new(
                select,
                rename
                    .iter()
                    .map(|(old, new)| Some((single(old)?, single(new)?)))
                    .collect::<Option<Vec<_>>>()?,
                drop.iter().map(single).collect::<Option<Vec<_>>>()?,
                set.iter()
                    .map(|(p, _)| single(p))
                    .collect::<Option<Vec<_>>>()?,
                // Arithmetic reads its fields by index from the splice's
                // one search (`Expr::number_in_found`).
                set.iter()
                    .map(|(_, c)| match c {
                        Computed::Expr(e) if e.is_arithmetic() => {
                            Some(e.fields().map(str::to_string).collect())
                        }
                        _ => None,
                    })
                    .collect(),
            ))
        })();
        let select_watch = select.as_ref().map(|paths| {
            let paths: Vec<Vec<&str>> = paths.iter().map(|p| p.names().collect()).collect();
            Watch::for_paths(&paths)
        });
        let set_watches = set
            .iter()
            .map(|(_, c)| match c {
                Computed::Expr(e) => Some(e.watch()),
                Computed::Const(_) => None,
            })
            .collect();
        let targets: Vec<&Path> = rename
            .iter()
            .map(|(_, new)| new)
            .chain(set.iter().map(|(p, _)| p))
            .collect();
        let plan = order::Plan {
            selected: select
                .iter()
                .flatten()
                .map(|p| p.names().map(str::to_string).collect())
                .collect(),
            added: targets.iter().filter_map(|p| single(p)).collect(),
            parents: targets
                .iter()
                .filter(|p| single(p).is_none())
                .filter_map(|p| p.names().next().map(str::to_string))
                .collect(),
        };
        Ok(Project {
            condition,
            canonical,
            plan,
            strict,
            select_watch,
            set_watches,
            // The splicing path keeps the input's text and key; canonical
            // output and a new key are the tree's.
            splice: if canonical || key.is_some() {
                None
            } else {
                splice
            },
            key,
            loaded: Vec::new(),
            set_fields,
            parser: JsonParser::new(),
            splice_scratch: splice::Scratch::default(),
            select,
            needed,
            rename,
            drop,
            scratch: Vec::with_capacity(set.len()),
            set,
            moved: Vec::new(),
        })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if let Some(condition) = &mut self.condition {
            // Tombstones pass, as `filter` lets them.
            if !event.is_tombstone() && !condition.keeps(event)? {
                return Ok(());
            }
        }
        let result = self.process_event(event, out);
        // A failed user-defined function fails this event (the SDK withdraws
        // what was emitted for it).
        match sluice_expr::take_udf_error() {
            Some(reason) if result.is_ok() => Err(Self::reject(reason)),
            _ => result,
        }
    }

    fn finish(&mut self) {
        // A stream shorter than the watches' threshold still hears about a
        // field none of its events had.
        if let Some(condition) = &mut self.condition {
            condition.finish();
        }
        if let Some(watch) = &mut self.select_watch {
            for warning in watch.finish() {
                sluice_sdk::log::warn(&format!("`select`: {warning}"));
            }
        }
        for f in &mut self.set_fields {
            f.finish();
        }
    }
}

impl Project {
    fn process_event(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
    ) -> Result<(), EventError> {
        if self.splice.is_some() {
            return self.process_spliced(event, out);
        }
        if self.strict {
            self.check_tree(event)?;
        }
        let Some(bytes) = event.value() else {
            // Tombstones pass unchanged.
            out.forward();
            return Ok(());
        };
        let parsed = match &self.needed {
            Some(fields) => parse_json_keeping(bytes, fields),
            None => serde_json::from_slice(bytes),
        };
        let mut value =
            parsed.map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(Self::reject(format_args!(
                "value is {}, not a JSON object",
                type_name(&value)
            )));
        }

        // 0. The new key, against the untouched input: a string as it is,
        //    other values as JSON text, null or nothing as no key.
        let new_key = self.key.as_ref().map(|e| match e.eval_or_omit(&value) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        });

        // 1. Computed fields, against the untouched input.
        let mut computed = std::mem::take(&mut self.scratch);
        computed.clear();
        for (_, c) in &self.set {
            computed.push(match c {
                Computed::Expr(e) => e.eval_or_omit(&value),
                Computed::Const(v) => Some(v.clone()),
            });
        }

        // 2. select: move the kept fields into a fresh object.
        if let Some(select) = &self.select {
            let mut kept = Value::Object(Map::new());
            for path in select {
                let mut names = path.names();
                match (names.next(), names.next(), &mut value, &mut kept) {
                    // A top-level field: move the entry, reusing its key.
                    (Some(name), None, Value::Object(from), Value::Object(to)) => {
                        if let Some((k, v)) = from.remove_entry(name) {
                            to.insert(k, v);
                        }
                    }
                    _ => {
                        if let Some(v) = path.remove(&mut value) {
                            path.set(&mut kept, v).map_err(Self::reject)?;
                        }
                    }
                }
            }
            value = kept;
        }

        // 3. rename: take every old field out first, then write the new
        //    names, so swaps and chains do not depend on order.
        if !self.rename.is_empty() {
            let mut moved = std::mem::take(&mut self.moved);
            moved.clear();
            moved.extend(self.rename.iter().map(|(old, _)| old.remove(&mut value)));
            for ((_, new), v) in self.rename.iter().zip(moved.drain(..)) {
                if let Some(v) = v {
                    new.set(&mut value, v).map_err(Self::reject)?;
                }
            }
            self.moved = moved;
        }

        // 4. drop.
        for path in &self.drop {
            path.remove(&mut value);
        }

        // 5. Write the computed fields.
        //    A `case` without `else` that matched nothing leaves its field
        //    out (an input field of that name too, as when it is set).
        for ((path, _), v) in self.set.iter().zip(computed.drain(..)) {
            match v {
                Some(v) => {
                    path.set(&mut value, v).map_err(Self::reject)?;
                }
                None => {
                    path.remove(&mut value);
                }
            }
        }
        self.scratch = computed;

        let write = |buf: &mut Vec<u8>| {
            if self.canonical {
                order::write_canonical(&value, buf);
            } else {
                let input = sluice_sdk::json::JsonView::parse(bytes).ok();
                let input = input.as_ref().map(|v| v.root());
                order::write(&value, input, &self.plan, buf);
            }
        };
        match new_key {
            None => out.value_with(write),
            Some(key) => {
                let mut buf = Vec::with_capacity(bytes.len());
                write(&mut buf);
                out.emit(&OutEvent {
                    key: key.as_deref().map(str::as_bytes),
                    value: Some(&buf),
                    headers: event.headers().collect(),
                    timestamp_ms: event.timestamp_ms(),
                });
            }
        }
        Ok(())
    }
}

sluice_sdk::export_transform!(Project);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests;
