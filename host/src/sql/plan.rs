//! The pipeline the statements compile to, and its YAML text: the same file
//! format `sluice run` reads, so SQL and YAML pipelines share one loader,
//! one validator and one runner.

use std::fmt::Write as _;

use super::error::Pos;

/// A YAML value of the pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    /// A string (quoted when needed).
    Str(String),
    /// A whole number.
    Int(u64),
    /// A boolean.
    Bool(bool),
    /// A flow list `[a, b]`.
    List(Vec<Y>),
    /// A nested mapping.
    Map(Vec<(String, Y)>),
}

/// One named entry of a section, with the statement it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its name in the pipeline.
    pub name: String,
    /// The statement it comes from.
    pub at: Pos,
    /// A note for `--explain`, e.g. `CREATE STREAM orders`.
    pub note: String,
    /// Its fields, in order.
    pub body: Vec<(String, Y)>,
}

/// The compiled pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// `name:`.
    pub name: String,
    /// `data_dir:`, when given.
    pub data_dir: Option<String>,
    /// `sources:`.
    pub sources: Vec<Entry>,
    /// `stages:`.
    pub stages: Vec<Entry>,
    /// `tables:`.
    pub tables: Vec<Entry>,
    /// `sinks:`.
    pub sinks: Vec<Entry>,
    /// `udfs:`.
    pub udfs: Vec<Entry>,
}

impl Plan {
    /// The statement an entry of the YAML (`stages.NAME...`) comes from.
    pub fn origin(&self, field: &str) -> Option<(Pos, &str)> {
        let mut parts = field.splitn(3, '.');
        let section = parts.next()?;
        let name = parts.next()?;
        let list = match section {
            "sources" => &self.sources,
            "stages" => &self.stages,
            "tables" => &self.tables,
            "sinks" => &self.sinks,
            "udfs" => &self.udfs,
            _ => return None,
        };
        list.iter()
            .find(|e| e.name == name)
            .map(|e| (e.at, e.note.as_str()))
    }

    /// Drops every sink but `keep`, then the stages and sources that neither
    /// it nor a table reads (directly or through other stages), so a shell
    /// query runs only what it prints.
    pub fn keep_only_sink(&mut self, keep: &str) {
        self.sinks.retain(|e| e.name == keep);
        let mut needed = std::collections::HashSet::new();
        let mut todo: Vec<String> = self
            .sinks
            .iter()
            .chain(&self.tables)
            .flat_map(inputs)
            .collect();
        while let Some(n) = todo.pop() {
            if needed.insert(n.clone()) {
                if let Some(stage) = self.stages.iter().find(|e| e.name == n) {
                    todo.extend(inputs(stage));
                }
            }
        }
        self.stages.retain(|e| needed.contains(&e.name));
        self.sources.retain(|e| needed.contains(&e.name));
    }

    /// Drops the sources whose note starts with `note` that nothing reads.
    pub fn drop_unread_sources(&mut self, note: &str) {
        let read: std::collections::HashSet<String> = self
            .stages
            .iter()
            .chain(&self.tables)
            .chain(&self.sinks)
            .flat_map(inputs)
            .collect();
        self.sources
            .retain(|e| !e.note.starts_with(note) || read.contains(&e.name));
    }

    /// Makes relative file paths (`path`, `*_file`, `*_dir`) absolute
    /// against `base`, for a pipeline file written somewhere other than
    /// where its statements were typed.
    pub fn absolutize_paths(&mut self, base: &std::path::Path) {
        for e in self
            .sources
            .iter_mut()
            .chain(self.sinks.iter_mut())
            .chain(self.tables.iter_mut())
            .chain(self.udfs.iter_mut())
        {
            for (k, v) in &mut e.body {
                let is_path = k == "path"
                    || k.ends_with("_file")
                    || k.ends_with("_dir")
                    // A UDF's plugin written as a path (a bare name is
                    // looked up on the plugin path).
                    || (k == "plugin" && matches!(v, Y::Str(s) if s.contains('/') || s.ends_with(".wasm")));
                if let Y::Str(s) = v {
                    if is_path
                        && !s.contains("${")
                        && std::path::Path::new(s.as_str()).is_relative()
                    {
                        *s = base.join(s.as_str()).display().to_string();
                    }
                }
            }
        }
    }

    /// The pipeline file text.
    pub fn to_yaml(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "name: {}", scalar(&self.name));
        if let Some(d) = &self.data_dir {
            let _ = writeln!(out, "data_dir: {}", scalar(d));
        }
        for (title, list) in [
            ("udfs", &self.udfs),
            ("sources", &self.sources),
            ("stages", &self.stages),
            ("tables", &self.tables),
            ("sinks", &self.sinks),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for e in list {
                let _ = writeln!(out, "  # line {}: {}", e.at.line, e.note);
                let _ = writeln!(out, "  {}:", scalar(&e.name));
                write_map(&mut out, &e.body, 4);
            }
        }
        out
    }
}

/// The names in an entry's `inputs:` (a table's `input:`).
pub(super) fn inputs(e: &Entry) -> Vec<String> {
    e.body
        .iter()
        .filter(|(k, _)| k == "inputs" || k == "input")
        .flat_map(|(_, v)| match v {
            Y::List(items) => items
                .iter()
                .filter_map(|i| match i {
                    Y::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            Y::Str(s) => vec![s.clone()],
            _ => Vec::new(),
        })
        .collect()
}

fn write_map(out: &mut String, body: &[(String, Y)], indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in body {
        match v {
            Y::Map(m) if !m.is_empty() => {
                let _ = writeln!(out, "{pad}{}:", scalar(k));
                write_map(out, m, indent + 2);
            }
            other => {
                let _ = writeln!(out, "{pad}{}: {}", scalar(k), inline(other));
            }
        }
    }
}

fn inline(v: &Y) -> String {
    match v {
        Y::Str(s) => scalar(s),
        Y::Int(n) => n.to_string(),
        Y::Bool(b) => b.to_string(),
        Y::List(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Y::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A string as a YAML scalar: plain when that reads back as the same
/// string, else double-quoted (JSON string syntax is valid YAML).
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !s.starts_with(['-', '.'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_that_yaml_would_retype_are_quoted() {
        assert_eq!(scalar("orders"), "orders");
        assert_eq!(scalar("42"), "\"42\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("${PG_HOST}"), "\"${PG_HOST}\"");
        assert_eq!(scalar("it's \"x\""), "\"it's \\\"x\\\"\"");
    }
}
