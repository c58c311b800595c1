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
            _ => return None,
        };
        list.iter()
            .find(|e| e.name == name)
            .map(|e| (e.at, e.note.as_str()))
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
