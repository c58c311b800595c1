//! Fusing a projection into the table join that reads it.
//!
//! `CREATE STREAM shaped AS SELECT ... WHERE ...` then `CREATE STREAM
//! enriched AS SELECT ... FROM shaped JOIN table ...` compile to a `project`
//! stage and a `lookup-join` stage. When the join is the projection's only
//! reader, `lookup-join` can do the projection's work itself (its `where`
//! and `set`), and one stage replaces two: each event crosses into Wasm
//! once, and the projected event is never written, checked, scanned and
//! read again (a third of the orders join's instructions).
//!
//! The fused stage gives what the two stages give, event for event and byte
//! for byte, and the fusion is made only where that holds:
//! - the pipeline defines no functions (`lookup-join` does not import the
//!   `udfs` interface, so its expressions cannot call them);
//! - the `project` stage has only `where`, `select` and `set` (no `rename`,
//!   `key`, `drop`, `strict`, `style` or functions), and `where` or `set`;
//! - no other stage, table or sink reads the projection;
//! - the names and fields meet the rule a run applies to a hand-written
//!   file ([`projection_fits_join`], `crate::pipeline::fuse`), which would
//!   fuse the two stages anyway: done here, the file `--explain` shows is
//!   the one that runs.

use super::plan::{Entry, Plan, Y};
use crate::pipeline::fuse::projection_fits_join;

impl Plan {
    /// Fuses each `project` stage into the `lookup-join` stage that is its
    /// only reader, where the fused stage gives the same output (see the
    /// module docs).
    pub fn fuse_projections_into_joins(&mut self) {
        let mut j = 0;
        while j < self.stages.len() {
            if let Some(p) = self.fusable_projection(j) {
                let projection = self.stages.remove(p);
                let j = if p < j { j - 1 } else { j };
                fuse(&projection, &mut self.stages[j]);
            }
            j += 1;
        }
    }

    /// The index of the `project` stage that stage `j`, a `lookup-join`,
    /// can absorb.
    fn fusable_projection(&self, j: usize) -> Option<usize> {
        if !self.udfs.is_empty() {
            return None;
        }
        let join = self.stages.get(j)?;
        if str_of(join, "plugin")? != "lookup-join" {
            return None;
        }
        let [Y::Str(input)] = list_of(join, "inputs")? else {
            return None;
        };
        let p = self.stages.iter().position(|e| &e.name == input)?;
        let project = &self.stages[p];
        if str_of(project, "plugin")? != "project" {
            return None;
        }
        // Nothing else on either entry (an `event_time`, limits) that the
        // fused one would lose or apply to the other's work.
        let only =
            |e: &Entry, keys: &[&str]| e.body.iter().all(|(k, _)| keys.contains(&k.as_str()));
        if !only(project, &["plugin", "inputs", "params"])
            || !only(join, &["plugin", "inputs", "tables", "params"])
        {
            return None;
        }
        let readers = self
            .stages
            .iter()
            .chain(&self.tables)
            .chain(&self.sinks)
            .filter(|e| super::plan::inputs(e).contains(input))
            .count();
        if readers != 1 {
            return None;
        }
        let params = map_of(project, "params")?;
        if params
            .iter()
            .any(|(k, _)| !matches!(k.as_str(), "where" | "select" | "set"))
            || !params.iter().any(|(k, _)| k == "where" || k == "set")
        {
            return None;
        }
        let select: Vec<&str> = match param(params, "select")? {
            Y::List(items) => items
                .iter()
                .map(|i| match i {
                    Y::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            _ => return None,
        };
        let set: Vec<&str> = match param(params, "set") {
            None => Vec::new(),
            Some(Y::Map(entries)) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            Some(_) => return None,
        };
        let join_params = map_of(join, "params")?;
        if join_params
            .iter()
            .any(|(k, _)| !matches!(k.as_str(), "table" | "on" | "join" | "fields"))
        {
            return None;
        }
        let (Some(Y::Str(on)), Some(Y::Str(fields))) =
            (param(join_params, "on"), param(join_params, "fields"))
        else {
            return None;
        };
        projection_fits_join(&select, &set, on, fields).then_some(p)
    }
}

/// Moves `projection`'s input, `where` and `set` into `join`.
fn fuse(projection: &Entry, join: &mut Entry) {
    let input = projection
        .body
        .iter()
        .find(|(k, _)| k == "inputs")
        .map(|(_, v)| v.clone());
    let moved: Vec<(String, Y)> = map_of(projection, "params")
        .into_iter()
        .flatten()
        .filter(|(k, _)| k == "where" || k == "set")
        .cloned()
        .collect();
    for (k, v) in &mut join.body {
        match (k.as_str(), v) {
            ("inputs", v) => {
                if let Some(input) = &input {
                    *v = input.clone();
                }
            }
            ("params", Y::Map(params)) => {
                // Before `fields`, in the order they run.
                let at = params
                    .iter()
                    .position(|(k, _)| k == "fields")
                    .unwrap_or(params.len());
                params.splice(at..at, moved.iter().cloned());
            }
            _ => {}
        }
    }
    join.note = format!(
        "{}, and line {}'s {} (fused: the join is its only reader)",
        join.note, projection.at.line, projection.note
    );
}

fn str_of<'e>(e: &'e Entry, key: &str) -> Option<&'e str> {
    match e.body.iter().find(|(k, _)| k == key)? {
        (_, Y::Str(s)) => Some(s),
        _ => None,
    }
}

fn list_of<'e>(e: &'e Entry, key: &str) -> Option<&'e [Y]> {
    match e.body.iter().find(|(k, _)| k == key)? {
        (_, Y::List(items)) => Some(items),
        _ => None,
    }
}

fn map_of<'e>(e: &'e Entry, key: &str) -> Option<&'e [(String, Y)]> {
    match e.body.iter().find(|(k, _)| k == key)? {
        (_, Y::Map(entries)) => Some(entries),
        _ => None,
    }
}

fn param<'p>(params: &'p [(String, Y)], key: &str) -> Option<&'p Y> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Pos;

    fn entry(name: &str, body: Vec<(&str, Y)>) -> Entry {
        Entry {
            name: name.into(),
            at: Pos { line: 1, col: 1 },
            note: name.into(),
            body: body.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    fn plan(extra: Option<(&str, Y)>) -> Plan {
        let s = |t: &str| Y::Str(t.into());
        let mut project = vec![
            ("plugin", s("project")),
            ("inputs", Y::List(vec![s("src")])),
            (
                "params",
                Y::Map(vec![
                    ("where".into(), s("k > 1")),
                    ("select".into(), Y::List(vec![s("k")])),
                    ("set".into(), Y::Map(vec![("d".into(), s("k * 2"))])),
                ]),
            ),
        ];
        project.extend(extra);
        Plan {
            stages: vec![
                entry("p", project),
                entry(
                    "j",
                    vec![
                        ("plugin", s("lookup-join")),
                        ("inputs", Y::List(vec![s("p")])),
                        ("tables", Y::List(vec![s("t")])),
                        (
                            "params",
                            Y::Map(vec![
                                ("table".into(), s("t")),
                                ("on".into(), s("k")),
                                ("fields".into(), s("k, d, table.n")),
                            ]),
                        ),
                    ],
                ),
            ],
            sinks: vec![entry("out", vec![("inputs", Y::List(vec![s("j")]))])],
            ..Plan::default()
        }
    }

    #[test]
    fn entries_with_settings_the_fused_stage_would_lose_stay_apart() {
        let mut fused = plan(None);
        fused.fuse_projections_into_joins();
        assert_eq!(fused.stages.len(), 1);
        assert_eq!(
            fused.stages[0].body[1],
            ("inputs".to_string(), Y::List(vec![Y::Str("src".into())]))
        );
        let event_time = Y::Map(vec![("field".into(), Y::Str("at".into()))]);
        let mut apart = plan(Some(("event_time", event_time)));
        apart.fuse_projections_into_joins();
        assert_eq!(apart.stages.len(), 2);
    }
}
