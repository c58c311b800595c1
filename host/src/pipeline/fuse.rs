//! Running adjacent built-in stages as one.
//!
//! Each stage costs its events a crossing into Wasm and back, a check of
//! what the plugin wrote, and, for a stage that reads field tables, a scan
//! of what the stage before it wrote. A `filter` in front of a `project`,
//! and a `project` in front of the `lookup-join` that is its only reader,
//! do work the later plugin can do itself (`project`'s and `lookup-join`'s
//! `where`, `lookup-join`'s `set`), so the run replaces the chain with its
//! last stage, given the others' parameters. `sluice sql` makes the same
//! fusion in the file it writes; this one is made at run time, for files
//! written by hand, and `fuse_stages: false` turns it off.
//!
//! The fused stage gives what the chain gives, event for event and byte for
//! byte; the fusion is made only where that holds:
//! - every stage in it is a built-in plugin (its file is in the plugins
//!   directory beside the binary, not a build of the user's that shares
//!   its name), and the file defines no functions;
//! - the earlier stage's only reader is the later one, and the later one
//!   reads nothing else (no other stage, sink or table sees the events
//!   between them);
//! - both have the same `on_error` and limits, and neither has an
//!   `event_time` or tables of its own to lose;
//! - `filter` into `project`: the filter has only `where`, and the
//!   projection has no `where` or `strict` of its own (its `where` is
//!   decided as a filter in front decides it: tombstones pass, a value that
//!   is not JSON is refused with the same reason);
//! - `project` into `lookup-join`: the rules of [`projection_fits_join`].
//!
//! What changes is what names the work: the chain's earlier stages have no
//! metrics, taps or swaps of their own in the run, and their events'
//! dead letters and log lines name the stage they were fused into. The run
//! logs each fusion when it starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sluice_sdk::select::Selection;

use crate::config::{Pipeline, StageDef};

/// One fusion the run made: `absorbed` (in the order events reach them) now
/// run as part of stage `into`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fusion {
    /// The stage that runs the chain.
    pub into: String,
    /// The stages it took over.
    pub absorbed: Vec<String>,
}

impl Fusion {
    /// "stages `keep` and `shape` run as part of `enrich`".
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.absorbed.iter().map(|s| format!("`{s}`")).collect();
        let (noun, verb) = if names.len() == 1 {
            ("stage", "runs")
        } else {
            ("stages", "run")
        };
        format!(
            "{noun} {} {verb} as part of `{}`",
            names.join(" and "),
            self.into
        )
    }
}

/// `pipeline` as `sluice run` runs it: [`fuse_stages`] with the built-ins
/// beside the binary.
pub fn as_run(pipeline: &Pipeline) -> (Pipeline, Vec<Fusion>) {
    let dirs = crate::config::builtin_plugin_dirs();
    fuse_stages(pipeline, &|f| builtin_in(f, &dirs))
}

/// The built-in plugins that can take over a stage in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `filter`.
    Filter,
    /// `project`.
    Project,
    /// `lookup-join`.
    LookupJoin,
}

/// `plugin`, if it is one of the built-ins in `dirs` that fusion knows.
pub fn builtin_in(plugin: &Path, dirs: &[PathBuf]) -> Option<Builtin> {
    let real = plugin.canonicalize().ok()?;
    let dir = real.parent()?;
    if !dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .any(|d| d == dir)
    {
        return None;
    }
    match real.file_name()?.to_str()? {
        "filter.wasm" => Some(Builtin::Filter),
        "project.wasm" => Some(Builtin::Project),
        "lookup-join.wasm" => Some(Builtin::LookupJoin),
        _ => None,
    }
}

/// `pipeline` with each chain of built-in stages that can run as one
/// replaced by its last stage (see the module docs), and the fusions made.
/// `builtin` names a stage's plugin if it is a built-in.
pub fn fuse_stages(
    pipeline: &Pipeline,
    builtin: &dyn Fn(&Path) -> Option<Builtin>,
) -> (Pipeline, Vec<Fusion>) {
    let mut p = pipeline.clone();
    let mut fusions: Vec<Fusion> = Vec::new();
    if !p.fuse_stages || !p.udfs.is_empty() {
        return (p, fusions);
    }
    // Worked out once: a file may hold many stages, and each check would
    // otherwise read the file system and scan every stage's inputs.
    let kinds: HashMap<String, Option<Builtin>> = p
        .stages
        .iter()
        .map(|s| (s.name.clone(), builtin(&s.plugin)))
        .collect();
    // A fusion keeps every count right: the stage taken over read its input
    // as the fused one now does, and its one reader was the fused stage.
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for inputs in p
        .stages
        .iter()
        .map(|s| &s.inputs)
        .chain(p.sinks.iter().map(|s| &s.inputs))
    {
        let mut names: Vec<&str> = inputs.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            *readers.entry(n).or_default() += 1;
        }
    }
    for t in &p.tables {
        *readers.entry(t.config.input.as_str()).or_default() += 1;
    }
    let readers: HashMap<String, usize> = readers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    // Upstream stages first, so a filter goes into its projection before
    // the projection goes into its join, whatever order the file lists them.
    for name in upstream_first(&p) {
        while let Some((front, back)) = p
            .stages
            .iter()
            .position(|s| s.name == name)
            .and_then(|back| Some((front_of(&p, back, &kinds, &readers)?, back)))
        {
            let absorbed = p.stages.remove(front);
            let back = if front < back { back - 1 } else { back };
            let into = &mut p.stages[back];
            take_over(&absorbed, into);
            // The absorbed stage may itself have absorbed others.
            let mut names: Vec<String> = fusions
                .iter()
                .position(|f| f.into == absorbed.name)
                .map(|i| fusions.remove(i).absorbed)
                .unwrap_or_default();
            names.push(absorbed.name.clone());
            match fusions.iter_mut().find(|f| f.into == into.name) {
                Some(f) => {
                    names.append(&mut f.absorbed);
                    f.absorbed = names;
                }
                None => fusions.push(Fusion {
                    into: into.name.clone(),
                    absorbed: names,
                }),
            }
        }
    }
    (p, fusions)
}

/// The stages' names, each after the stages it reads (validation refused
/// cycles; a stage met again on the way is skipped).
fn upstream_first(p: &Pipeline) -> Vec<String> {
    let index: HashMap<&str, usize> = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut seen = vec![false; p.stages.len()];
    let mut order = Vec::with_capacity(p.stages.len());
    for start in 0..p.stages.len() {
        // Depth-first without recursion: a long chain must not grow the stack.
        let mut stack = vec![(start, false)];
        while let Some((i, inputs_done)) = stack.pop() {
            if inputs_done {
                order.push(p.stages[i].name.clone());
                continue;
            }
            if seen[i] {
                continue;
            }
            seen[i] = true;
            stack.push((i, true));
            for input in &p.stages[i].inputs {
                if let Some(&j) = index.get(input.as_str()) {
                    if !seen[j] {
                        stack.push((j, false));
                    }
                }
            }
        }
    }
    order
}

/// The stage (its index) that the stage at index `back` can take over.
fn front_of(
    p: &Pipeline,
    back: usize,
    kinds: &HashMap<String, Option<Builtin>>,
    readers: &HashMap<String, usize>,
) -> Option<usize> {
    let b = &p.stages[back];
    let [input] = b.inputs.as_slice() else {
        return None;
    };
    let front = p.stages.iter().position(|s| &s.name == input)?;
    let f = &p.stages[front];
    let fits = match ((*kinds.get(&f.name)?)?, (*kinds.get(&b.name)?)?) {
        (Builtin::Filter, Builtin::Project) => filter_fits_projection(f, b),
        (Builtin::Project, Builtin::LookupJoin) => projection_fits_lookup_join(f, b),
        _ => false,
    };
    (fits && same_settings(f, b) && readers.get(&f.name) == Some(&1)).then_some(front)
}

/// Settings the fused stage could not keep for both.
fn same_settings(front: &StageDef, back: &StageDef) -> bool {
    front.on_error == back.on_error
        && front.limits == back.limits
        && front.event_time.is_none()
        && back.event_time.is_none()
        && front.tables.is_empty()
}

fn param<'s>(stage: &'s StageDef, key: &str) -> Option<&'s str> {
    stage
        .params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn only(stage: &StageDef, keys: &[&str]) -> bool {
    stage.params.iter().all(|(k, _)| keys.contains(&k.as_str()))
}

fn filter_fits_projection(filter: &StageDef, project: &StageDef) -> bool {
    only(filter, &["where"])
        && param(filter, "where").is_some()
        && param(project, "where").is_none()
        && param(project, "strict").is_none()
}

fn projection_fits_lookup_join(project: &StageDef, join: &StageDef) -> bool {
    if !only(project, &["where", "select", "set"])
        || !only(join, &["table", "on", "join", "fields"])
        || (param(project, "where").is_none() && param(project, "set").is_none())
    {
        return false;
    }
    let (Some(select), Some(on), Some(fields)) = (
        param(project, "select").and_then(names_listed),
        param(join, "on"),
        param(join, "fields"),
    ) else {
        return false;
    };
    let set = match param(project, "set") {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => return false,
        },
    };
    let select: Vec<&str> = select.iter().map(String::as_str).collect();
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    projection_fits_join(&select, &set, on, fields)
}

/// `select` as `project` reads it (a JSON list of names, or names
/// separated by commas), if every item is a plain name.
fn names_listed(text: &str) -> Option<Vec<String>> {
    let items: Vec<String> = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<_>>()?,
        Ok(serde_json::Value::String(s)) => s.split(',').map(|i| i.trim().to_string()).collect(),
        Ok(_) => return None,
        Err(_) => text.split(',').map(|i| i.trim().to_string()).collect(),
    };
    items.iter().all(|i| plain(i)).then_some(items)
}

/// Whether a `lookup-join` keyed on `on` and writing `fields` gives, with a
/// projection's `where` and `set` (of fields named `set`, keeping `select`)
/// moved into it, what it gives after the projection:
/// - every name is a plain top-level name (`project` and `lookup-join`
///   read dotted and quoted names differently);
/// - the join reads only fields the projection outputs (a field it dropped
///   would be `null` after it, but found in the input by the fused stage);
/// - its key field is one `select` keeps, not one `set` computes (`on` is
///   read from the input).
///
/// The caller checks the rest: the projection has only `where`, `select`
/// and `set`, and `where` or `set` (with either, `lookup-join` refuses
/// values that are not objects, as `project` does); the join has only
/// `table`, `on`, `join` and `fields`; nothing else reads the projection.
/// `lookup-join`'s test `where_and_set_do_what_project_then_lookup_join_do`
/// holds the two forms to the same output.
pub fn projection_fits_join(select: &[&str], set: &[&str], on: &str, fields: &str) -> bool {
    if !select.iter().chain(set).all(|n| plain(n)) || !select.contains(&on) || set.contains(&on) {
        return false;
    }
    let Ok(fields) = Selection::parse("fields", fields, &["stream", "table"]) else {
        return false;
    };
    let outputs = |name: &str| select.contains(&name) || set.contains(&name);
    fields
        .0
        .iter()
        .all(|item| item.source != 0 || outputs(&item.field))
}

/// A name `project` and `lookup-join` read the same way: no quoting, no path.
fn plain(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `into` given `front`'s input and work: `where` (and `set`) run before
/// its own, in the order the chain ran them.
fn take_over(front: &StageDef, into: &mut StageDef) {
    into.inputs = front.inputs.clone();
    let moved = front
        .params
        .iter()
        .filter(|(k, _)| k == "where" || k == "set")
        .cloned();
    let mut params: Vec<(String, String)> = moved.collect();
    params.append(&mut into.params);
    into.params = params;
}

#[cfg(test)]
mod tests;
