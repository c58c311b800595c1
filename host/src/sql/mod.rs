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
mod lexer;
mod parser;
pub mod plan;
mod props;

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
pub fn compile(
    text: &str,
    name: &str,
    data_dir: Option<String>,
    source: &str,
) -> Result<Compiled, SqlErrors> {
    let stmts = parser::parse(text)?;
    let mut plan = compile::compile(&stmts, name)?;
    plan.data_dir = data_dir;
    let yaml = plan.to_yaml(&format!(
        "Compiled by `sluice sql` from {source}.\n`sluice run` and `sluice validate` read this file as they read any pipeline file."
    ));
    Ok(Compiled { plan, yaml })
}

#[cfg(test)]
mod tests;
