//! `sluice run` and `sluice validate`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

use crate::config::{self, Diagnostics, HostConfig, LoadOptions, Pipeline};
use crate::pipeline::{self, check_plugins, RunOptions};
use crate::plugin::{ComponentCache, WasmEngine};

fn report(diags: &Diagnostics) -> ExitCode {
    eprintln!("{}", diags.clone().sorted());
    ExitCode::FAILURE
}

/// Loads the file and every plugin; the diagnostics when anything is wrong.
pub(super) fn prepare(
    file: &Path,
    plugin_path: Vec<PathBuf>,
) -> Result<Result<(Pipeline, WasmEngine, ComponentCache), Diagnostics>> {
    prepare_as(file, plugin_path, false)
}

/// [`prepare`], with `--strict` applied first (see [`super::strict`]) so
/// that the plugins check the parameter it adds.
fn prepare_as(
    file: &Path,
    plugin_path: Vec<PathBuf>,
    strict: bool,
) -> Result<Result<(Pipeline, WasmEngine, ComponentCache), Diagnostics>> {
    let options = LoadOptions::for_host(
        &HostConfig::current().map_err(anyhow::Error::msg)?,
        plugin_path,
    );
    let (p, diags) = config::load_partial(file, &options);
    let Some(mut p) = p else {
        return Ok(Err(diags));
    };
    if strict {
        super::strict::apply(&mut p);
    }
    // The stages that loaded have their plugins checked even when other
    // sections have problems, so one pass reports everything.
    prepare_with(p, diags)
}

/// Loads every plugin of a loaded pipeline; the diagnostics when anything is wrong.
pub(super) fn prepare_loaded(
    p: Pipeline,
) -> Result<Result<(Pipeline, WasmEngine, ComponentCache), Diagnostics>> {
    prepare_with(p, Diagnostics::default())
}

fn prepare_with(
    p: Pipeline,
    mut diags: Diagnostics,
) -> Result<Result<(Pipeline, WasmEngine, ComponentCache), Diagnostics>> {
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    diags.0.extend(check_plugins(&p, &engine, &cache).0);
    if !diags.is_empty() {
        return Ok(Err(diags));
    }
    Ok(Ok((p, engine, cache)))
}

/// `sluice validate FILE [--sample EVENTS] [--strict]`.
pub fn validate(
    file: &Path,
    plugin_path: Vec<PathBuf>,
    sample: Option<&Path>,
    strict: bool,
) -> Result<ExitCode> {
    let (p, engine, cache) = match prepare_as(file, plugin_path, strict)? {
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
    for f in crate::pipeline::fuse::as_run(&p).1 {
        println!(
            "  {} (built-in stages fused; `fuse_stages: false` runs them apart)",
            f.describe()
        );
    }
    if let Some(sample) = sample {
        let report = super::sample::run(&p, &engine, &cache, sample)?;
        if report.dead_letters > 0 {
            eprintln!(
                "{}: {} sample event(s) became dead letters",
                file.display(),
                report.dead_letters
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How `sluice run` was asked to run.
pub struct RunArgs {
    /// Hot-reload plugins.
    pub watch: bool,
    /// Draw the progress bar (in a terminal).
    pub progress: bool,
    /// Seconds between `stats` log lines (0: none).
    pub stats_every: u64,
    /// `-v` was given: log the `stats` line in a terminal too.
    pub verbose: bool,
    /// Delete the checkpoint and state first (`--reset`).
    pub reset: bool,
    /// Serve `sluice tap` on this loopback address (`--tap`).
    pub tap: Option<String>,
    /// `--strict`: dead letters instead of warnings (see [`super::strict`]).
    pub strict: bool,
}

/// `sluice run FILE`.
pub fn run(file: &Path, plugin_path: Vec<PathBuf>, args: RunArgs) -> Result<ExitCode> {
    let (p, engine, cache) = match prepare_as(file, plugin_path, args.strict)? {
        Ok(ready) => ready,
        Err(diags) => return Ok(report(&diags)),
    };
    if args.reset {
        let _lock = crate::state::RunLock::acquire(&p.state_dir(), "sluice run --reset")?;
        super::reset_cmd::reset_state(&p)?;
    }
    execute(&p, &engine, &cache, &args)
}

/// Runs a prepared pipeline until it drains or is stopped, and reports.
pub(super) fn execute(
    p: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    args: &RunArgs,
) -> Result<ExitCode> {
    // `sluice dlq replay` and `purge` refuse while this is held.
    let _lock = crate::state::RunLock::acquire(&p.state_dir(), "sluice run")?;
    let tap = match &args.tap {
        Some(addr) => Some(open_tap(p, addr)?),
        None => None,
    };
    let terminal = std::io::stderr().is_terminal();
    // Without a terminal (systemd, Kubernetes) nothing else says how a
    // long run is going; in one, the bar does unless -v asks for more.
    let stats_every = (args.stats_every > 0 && (!terminal || args.verbose))
        .then(|| std::time::Duration::from_secs(args.stats_every));
    let progress = args.progress && terminal;
    let stop = Arc::new(AtomicBool::new(false));
    super::signals::install(stop.clone())?;
    tracing::info!(pipeline = %p.name, sources = p.sources.len(), stages = p.stages.len(), sinks = p.sinks.len(), "starting");
    let bar = progress.then(super::progress::RunBar::new);
    let watch = args.watch;
    let summary = pipeline::run(
        p,
        engine,
        cache,
        RunOptions {
            watch,
            stop,
            on_status: bar.as_ref().map(|b| b.callback()),
            stats_every,
            metrics: None,
            pause: None,
            swaps: None,
            tap,
        },
    );
    if let Some(bar) = bar {
        bar.finish();
    }
    let summary = summary?;
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "done: {} events in, {} dead-lettered, {} skipped in {:.2}s ({:.0} events/s); {} checkpoint(s), {} plugin instance restart(s)",
        summary.events_in,
        summary.dead_letters,
        summary.skipped,
        secs,
        summary.events_in as f64 / secs.max(1e-9),
        summary.checkpoints,
        summary.instance_restarts,
    );
    eprint!("{}", component_lines(&summary));
    if summary.dead_letters > 0 {
        if let Some(path) = &summary.dead_letter_path {
            eprintln!("  dead letters (with reasons) are in {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per source, stage, table and sink with its counts (and the file
/// a sink wrote), names aligned.
fn component_lines(summary: &pipeline::RunSummary) -> String {
    super::progress::component_lines(&summary.components, |c| {
        let fused = summary
            .fusions
            .iter()
            .find(|f| f.into == c.name && c.role == pipeline::Role::Stage)
            .map(|f| {
                let names: Vec<String> = f.absorbed.iter().map(|s| format!("`{s}`")).collect();
                format!(" (ran {} too, fused)", names.join(" and "))
            })
            .unwrap_or_default();
        let output = summary
            .outputs
            .iter()
            .find(|(sink, _)| *sink == c.name)
            .map(|(_, path)| format!(" -> {path}"))
            .unwrap_or_default();
        fused + &output
    })
}

/// Starts the `sluice tap` endpoint on `addr` (loopback only: it shows raw
/// events to whoever connects) and writes where it listens to
/// `DATA_DIR/NAME/tap.addr` (0600), where `sluice tap` finds it.
fn open_tap(p: &Pipeline, addr: &str) -> Result<Arc<pipeline::tap::TapHub>> {
    use anyhow::Context;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("--tap {addr}"))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        anyhow::bail!("--tap {addr}: only a loopback address is allowed (the tap shows raw events to whoever connects)");
    }
    let file = p.state_dir().join("tap.addr");
    crate::dlq::ledger::write_atomic(&file, bound.to_string().as_bytes())?;
    let hub = Arc::new(pipeline::tap::TapHub::default());
    pipeline::tap::serve(listener, hub.clone())?;
    tracing::info!(addr = %bound, "tap: `sluice tap` can connect");
    Ok(hub)
}
