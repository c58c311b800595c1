//! `sluice run` and `sluice validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

use crate::config::{self, Diagnostics, LoadOptions, Pipeline};
use crate::pipeline::{self, check_plugins, RunOptions};
use crate::plugin::{ComponentCache, WasmEngine};

fn load(file: &Path, plugin_path: Vec<PathBuf>) -> Result<Pipeline, Diagnostics> {
    config::load(file, &LoadOptions { plugin_path })
}

fn report(diags: &Diagnostics) -> ExitCode {
    eprintln!("{}", diags.clone().sorted());
    ExitCode::FAILURE
}

/// Loads the file and every plugin; the diagnostics when anything is wrong.
fn prepare(
    file: &Path,
    plugin_path: Vec<PathBuf>,
) -> Result<Result<(Pipeline, WasmEngine, ComponentCache), Diagnostics>> {
    let p = match load(file, plugin_path) {
        Ok(p) => p,
        Err(d) => return Ok(Err(d)),
    };
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let diags = check_plugins(&p, &engine, &cache);
    if !diags.is_empty() {
        return Ok(Err(diags));
    }
    Ok(Ok((p, engine, cache)))
}

/// `sluice validate FILE`.
pub fn validate(file: &Path, plugin_path: Vec<PathBuf>) -> Result<ExitCode> {
    let (p, _, _) = match prepare(file, plugin_path)? {
        Ok(ready) => ready,
        Err(diags) => return Ok(report(&diags)),
    };
    let tables = if p.tables.is_empty() {
        String::new()
    } else {
        format!(", {} table(s)", p.tables.len())
    };
    println!(
        "{}: ok ({} source(s), {} stage(s), {} sink(s){tables})",
        file.display(),
        p.sources.len(),
        p.stages.len(),
        p.sinks.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sluice run FILE`.
pub fn run(
    file: &Path,
    watch: bool,
    plugin_path: Vec<PathBuf>,
    progress: bool,
) -> Result<ExitCode> {
    let (p, engine, cache) = match prepare(file, plugin_path)? {
        Ok(ready) => ready,
        Err(diags) => return Ok(report(&diags)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    super::signals::install(stop.clone())?;
    tracing::info!(pipeline = %p.name, sources = p.sources.len(), stages = p.stages.len(), sinks = p.sinks.len(), "starting");
    let bar = progress.then(super::progress::RunBar::new);
    let summary = pipeline::run(
        &p,
        &engine,
        &cache,
        RunOptions {
            watch,
            stop,
            on_status: bar.as_ref().map(|b| b.callback()),
        },
    );
    if let Some(bar) = bar {
        bar.finish();
    }
    let summary = summary?;
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "done: {} events in, {} out, {} dead-lettered, {} skipped in {:.2}s ({:.0} events/s); {} checkpoint(s), {} plugin instance restart(s)",
        summary.events_in,
        summary.events_out,
        summary.dead_letters,
        summary.skipped,
        secs,
        summary.events_in as f64 / secs.max(1e-9),
        summary.checkpoints,
        summary.instance_restarts,
    );
    for (sink, path) in &summary.outputs {
        if sink != "dead-letter" {
            eprintln!("  sink `{sink}` wrote {path}");
        }
    }
    if summary.dead_letters > 0 {
        if let Some(path) = &summary.dead_letter_path {
            eprintln!("  dead letters (with reasons) are in {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
