//! Streaming SQL for people coming from ksqlDB: `CREATE SOURCE|SINK
//! CONNECTOR`, `CREATE STREAM|TABLE [AS SELECT]` compiled to the same
//! pipeline file the YAML front end reads, so one engine runs both.
//!
//! `lexer` → `parser` (→ `ast`) → `compile` (with `connectors`, `expr`,
//! `props`) → `plan` (the pipeline as YAML text). The text is then loaded
//! by [`crate::config::load_str`] exactly as `sluice run` loads a file.

pub mod ast;
mod compile;
mod connectors;
pub mod error;
mod expr;
mod fuse;
mod lexer;
mod parser;
pub mod plan;
mod props;
pub mod shell;

pub use compile::{Catalog, ConnectorInfo, KafkaLink, Probe, RelationInfo, PROBE_SINK};
pub use error::{Pos, SqlError, SqlErrors};
pub use plan::Plan;

/// Statements compiled to a pipeline.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The pipeline, with where each entry comes from.
    pub plan: Plan,
    /// The pipeline file text (what `--explain` prints).
    pub yaml: String,
}

/// Compiles a statement file's text. `name` names the pipeline (its
/// checkpoints live under it); `source` names the file in the header.
/// With `kafka` (brokers), the topics `CREATE STREAM ... AS SELECT` writes
/// are real Kafka topics between the statements.
pub fn compile(
    text: &str,
    name: &str,
    data_dir: Option<String>,
    source: &str,
    kafka: Option<&KafkaLink>,
) -> Result<Compiled, SqlErrors> {
    let stmts = parser::parse(text)?;
    let mut plan = compile::compile(&stmts, name, kafka)?;
    plan.data_dir = data_dir;
    let yaml = plan.to_yaml(&format!(
        "Compiled by `sluice sql` from {source}.\n`sluice run` and `sluice validate` read this file as they read any pipeline file."
    ));
    Ok(Compiled { plan, yaml })
}

/// Compiles a shell session: its statements need no sink yet, and a probe
/// adds the `stdout` sink a push query or `PRINT` reads.
pub fn compile_session(
    text: &str,
    name: &str,
    data_dir: Option<String>,
    probe: Option<Probe>,
) -> Result<(Plan, Catalog), SqlErrors> {
    let stmts = parser::parse(text)?;
    let opts = compile::Options {
        sink_optional: true,
        probe,
        kafka: None,
    };
    let (mut plan, catalog) = compile::compile_with(&stmts, name, &opts)?;
    plan.data_dir = data_dir;
    Ok((plan, catalog))
}

/// The stream, table or connector a statement defines.
pub fn defined_name(text: &str) -> Option<String> {
    match parser::parse(text).ok()?.first()? {
        ast::Statement::Connector { name, .. }
        | ast::Statement::Declare { name, .. }
        | ast::Statement::CreateAs { name, .. }
        | ast::Statement::Function { name, .. } => Some(name.name.clone()),
    }
}

pub use shell::split_statements;

#[cfg(test)]
mod tests;
