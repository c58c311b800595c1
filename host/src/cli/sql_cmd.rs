//! `sluice sql FILE.sql [--explain]`: ksqlDB-style statements compiled to a
//! pipeline file, then loaded, checked and run exactly as `sluice run` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config::{self, Diagnostics, HostConfig, LoadOptions};
use crate::sql;

/// What `sluice sql` was asked to do.
pub struct SqlArgs {
    /// The statement file.
    pub file: PathBuf,
    /// Print the pipeline YAML instead of running it.
    pub explain: bool,
    /// Kafka brokers: topics between statements are real topics.
    pub kafka: Option<String>,
    /// Schema Registry for Avro topics between statements.
    pub schema_registry: Option<String>,
    /// Where checkpoints go (default `.sluice` next to the file).
    pub data_dir: Option<PathBuf>,
    /// Extra plugin directories.
    pub plugin_path: Vec<PathBuf>,
    /// Show the progress bar.
    pub progress: bool,
}

/// `sluice sql`.
pub fn run(args: SqlArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let shown = args.file.display().to_string();
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sql".into());
    let data_dir = args
        .data_dir
        .as_ref()
        .map(|d| absolute(d).display().to_string());
    let link = args.kafka.clone().map(|brokers| sql::KafkaLink {
        brokers,
        schema_registry: args.schema_registry.clone(),
    });
    let compiled = match sql::compile(&text, &name, data_dir, &shown, link.as_ref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}", errors.render(&shown));
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.explain {
        print!("{}", compiled.yaml);
        return Ok(ExitCode::SUCCESS);
    }
    // Relative paths in the pipeline resolve next to the statement file, as
    // they would next to a YAML file in its place.
    let options = LoadOptions::for_host(
        &HostConfig::current().map_err(anyhow::Error::msg)?,
        args.plugin_path,
    );
    let loaded = config::load_str(&args.file, &compiled.yaml, &options, &|v| {
        std::env::var(v).ok()
    });
    let prepared = match loaded {
        Ok(p) => super::run_cmd::prepare_loaded(p)?,
        Err(d) => Err(d),
    };
    match prepared {
        Ok((p, engine, cache)) => super::run_cmd::execute(
            &p,
            &engine,
            &cache,
            &super::run_cmd::RunArgs {
                watch: false,
                progress: args.progress,
                stats_every: 10,
                verbose: false,
                reset: false,
                tap: None,
                strict: false,
            },
        ),
        Err(diags) => {
            eprintln!("{}", located(&diags, &compiled.plan, &shown));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Problems found in the compiled pipeline, each pointed at the statement
/// it comes from (`--explain` shows the pipeline they are about).
fn located(diags: &Diagnostics, plan: &sql::Plan, file: &str) -> String {
    let mut out = String::new();
    for d in &diags.clone().sorted().0 {
        match plan.origin(&d.field) {
            Some((at, note)) => out.push_str(&format!(
                "error: {file}:{}:{}: {note}: {}: {}\n",
                at.line, at.col, d.field, d.message
            )),
            None => out.push_str(&format!("error: {file}: {}: {}\n", d.field, d.message)),
        }
    }
    out.push_str(&format!(
        "{} problem(s) found; nothing was run (`sluice sql {file} --explain` prints the pipeline they are about)",
        diags.0.len()
    ));
    out
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
