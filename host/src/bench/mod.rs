//! `sluice bench`: the figures in `docs/performance.md`.
//!
//! Measurements in one run, on the same generated events:
//! 1. end to end, file → filter → project → file through the pipeline runner,
//!    once with the Wasm components and once with the same crates compiled
//!    natively into this binary as the stages (alternated, best of two each);
//! 2. the transform alone: filter + project as Wasm versus native on one
//!    thread over identical in-memory batches — the sandbox's cost on the
//!    transform itself, with no I/O to dilute it;
//! 3. the `passthrough` component alone — what crossing the boundary costs
//!    per event, as a share of the filter + project work.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sluice_sdk::abi::{RawBatch, RawEvent, RawHeader, Span as SdkSpan};
use sluice_sdk::{Params, Transform};

use crate::config::{self, CpuBudget, Limits, LoadOptions};
use crate::event::{Batch, BatchBuilder};
use crate::pipeline::{self, RunOptions, StageLogic};
use crate::plugin::{
    bindings, CallFailure, ComponentCache, TransformInstance, TransformPlugin, WasmEngine,
};
use crate::sources::datagen::records::{self, Kind, Rng};

mod joins;
mod kafka;
mod postgres_cdc;

/// `sluice bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Events to generate and push through.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events per batch (one Wasm call each).
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Extra directories to look for the built-in plugins in.
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<PathBuf>,
    /// Measure one component instead: size, cold compile, cached load,
    /// instantiation and events/s over `--input` (repeated up to `--events`).
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
    /// A parameter for `--component`, `NAME=VALUE` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "component")]
    pub params: Vec<String>,
    /// JSON lines for `--component` (default: generated orders).
    #[arg(long, value_name = "FILE", requires = "component")]
    pub input: Option<PathBuf>,
    /// Benchmark the `postgres-cdc` source instead, against the PostgreSQL
    /// server at this superuser URL (`wal_level=logical`): `--events` rows
    /// through CDC → file, rows/s and commit-to-sink latency p50/p99. A
    /// scratch database and slot are created and dropped.
    #[arg(long, value_name = "URL", conflicts_with = "component")]
    pub postgres: Option<String>,
    /// Benchmark the join processors instead: `lookup-join` (`--events`
    /// orders against a 100,000-row table) and `window-join` (`--events` x
    /// `--events`), Wasm against the same crates compiled natively, and the
    /// state bytes per buffered event.
    #[arg(long, conflicts_with_all = ["component", "postgres", "kafka"])]
    pub joins: bool,
    /// Benchmark Kafka → filter → project → Kafka (Wasm plugins) against the
    /// broker(s) at `host:port`: `--events` events, events/s and end-to-end
    /// latency p50/p99. Topics with random names are created (and left).
    #[arg(long, value_name = "BROKERS", conflicts_with_all = ["component", "postgres"])]
    pub kafka: Option<String>,
}

/// Cuts `values` into batches of `size` events; positions count from 0.
fn into_batches(stream: &str, size: usize, values: impl IntoIterator<Item = String>) -> Vec<Batch> {
    let origin: Arc<str> = Arc::from("bench");
    let size = size.max(1);
    let mut batches = Vec::new();
    let mut b = BatchBuilder::new(stream, origin.clone(), size);
    for (i, value) in values.into_iter().enumerate() {
        b.push(None, Some(value.as_bytes()), &[], 0, i as u64);
        if b.len() == size {
            batches.push(
                std::mem::replace(&mut b, BatchBuilder::new(stream, origin.clone(), size)).finish(),
            );
        }
    }
    if !b.is_empty() {
        batches.push(b.finish());
    }
    batches
}

/// `sluice bench --component X.wasm`: the per-language figures.
fn run_component(args: &BenchArgs, wasm: &Path) -> Result<std::process::ExitCode> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let engine = WasmEngine::new()?;
    let t = Instant::now();
    let compiled = engine
        .engine()
        .precompile_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let compile = t.elapsed();
    let cache_dir = tempfile::Builder::new()
        .prefix("sluice-bench-cache")
        .tempdir()?;
    let cache = ComponentCache::new(cache_dir.path().to_path_buf());
    cache.load(engine.engine(), &bytes)?; // fills the cache
    let t = Instant::now();
    let plugin = Arc::new(TransformPlugin::load(&engine, &cache, wasm)?);
    let cached_load = t.elapsed();
    let t = Instant::now();
    let limits = Limits {
        memory_mb: 512,
        cpu_ms_per_call: CpuBudget::Millis(60_000),
        ..Limits::default()
    };
    let params = config::parse_params(&args.params).map_err(anyhow::Error::msg)?;
    let mut instance = TransformInstance::new(plugin.clone(), "bench", &params, limits)?;
    let instantiate = t.elapsed();

    let lines: Vec<String> = match &args.input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        None => (0..1000u64)
            .map(|seq| {
                let mut rng = Rng::new(seq);
                serde_json::to_string(&records::record(Kind::Orders, &mut rng, seq).1)
                    .unwrap_or_default()
            })
            .collect(),
    };
    anyhow::ensure!(!lines.is_empty(), "no input events");
    let batches = into_batches(
        "in",
        args.batch_size,
        (0..args.events as usize).map(|i| lines[i % lines.len()].clone()),
    );
    let t = Instant::now();
    let (mut out, mut dead) = (0usize, 0usize);
    for batch in &batches {
        let o = pipeline::process_batch(
            &mut instance,
            "bench",
            crate::config::OnError::DeadLetter,
            batch,
        )?;
        out += o.outputs.iter().map(Batch::len).sum::<usize>();
        dead += o.dead.as_ref().map_or(0, Batch::len);
    }
    let run = t.elapsed();
    println!(
        "{}: {} KiB, compile {:.0} ms ({} KiB compiled), load from cache {:.2} ms, instantiate {:.0} us, {:.0} events/s ({} events in, {out} out, {dead} dead-lettered)",
        plugin.label(),
        bytes.len() / 1024,
        compile.as_secs_f64() * 1e3,
        compiled.len() / 1024,
        cached_load.as_secs_f64() * 1e3,
        instantiate.as_secs_f64() * 1e6,
        args.events as f64 / run.as_secs_f64(),
        args.events,
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The filter expression the benchmark uses.
pub const WHERE: &str = "sex = 'F' or birth_date >= '1990-01-01'";
/// The project `set` parameter the benchmark uses.
pub const SET: &str =
    r#"{"age_group": "case when birth_date >= '2000-01-01' then 'young' else 'adult' end"}"#;
/// The project `drop` parameter the benchmark uses.
pub const DROP: &str = r#"["phone"]"#;

fn filter_params() -> Vec<(String, String)> {
    vec![("where".into(), WHERE.into())]
}

fn project_params() -> Vec<(String, String)> {
    vec![("set".into(), SET.into()), ("drop".into(), DROP.into())]
}

/// Converts a host batch to the SDK's layout (the native path's input).
fn to_sdk(b: &bindings::Batch) -> RawBatch {
    let span = |s: bindings::Span| SdkSpan {
        offset: s.offset,
        len: s.len,
    };
    RawBatch {
        data: b.data.clone(),
        events: b
            .events
            .iter()
            .map(|e| RawEvent {
                key: e.key.map(span),
                value: e.value.map(span),
                headers: span(e.headers),
                timestamp_ms: e.timestamp_ms,
                stream: e.stream,
                parent: e.parent,
            })
            .collect(),
        headers: b
            .headers
            .iter()
            .map(|h| RawHeader {
                name: span(h.name),
                value: span(h.value),
            })
            .collect(),
        streams: b.streams.clone(),
    }
}

/// Converts the SDK's output back to the host's layout.
fn from_sdk(out: sluice_sdk::abi::RawOutput) -> bindings::Output {
    let span = |s: SdkSpan| bindings::Span {
        offset: s.offset,
        len: s.len,
    };
    let b = out.events;
    bindings::Output {
        events: bindings::Batch {
            data: b.data,
            events: b
                .events
                .into_iter()
                .map(|e| bindings::Event {
                    key: e.key.map(span),
                    value: e.value.map(span),
                    headers: span(e.headers),
                    timestamp_ms: e.timestamp_ms,
                    stream: e.stream,
                    parent: e.parent,
                })
                .collect(),
            headers: b
                .headers
                .into_iter()
                .map(|h| bindings::Header {
                    name: span(h.name),
                    value: span(h.value),
                })
                .collect(),
            streams: b.streams,
        },
        rejected: out
            .rejected
            .into_iter()
            .map(|r| bindings::Rejection {
                index: r.index,
                reason: r.reason,
            })
            .collect(),
    }
}

/// A stage running a plugin crate compiled natively into the host: the
/// reference the Wasm path is measured against. It converts batches in and
/// out just as the Wasm boundary copies them.
struct NativeStage<T> {
    transform: T,
    name: &'static str,
}

impl<T: Transform + Send> StageLogic for NativeStage<T> {
    fn identity(&self) -> (String, String) {
        (self.name.to_string(), "native".to_string())
    }

    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure> {
        let raw = to_sdk(batch);
        sluice_sdk::run_transform(&mut self.transform, &raw)
            .map(from_sdk)
            .map_err(|e| CallFailure::Fatal {
                plugin: self.name.to_string(),
                stage: self.name.to_string(),
                message: format!("{e:?}"),
            })
    }

    fn instantiations(&self) -> u64 {
        1
    }

    fn swap(&mut self, _plugin: Arc<TransformPlugin>) -> Result<(), String> {
        Err("native reference stages cannot be hot-swapped".into())
    }
}

fn native_stages() -> Result<HashMap<String, Box<dyn StageLogic>>> {
    let filter = sluice_plugin_filter::Filter::new(&Params::new(filter_params()))
        .map_err(anyhow::Error::msg)?;
    let project = sluice_plugin_project::Project::new(&Params::new(project_params()))
        .map_err(anyhow::Error::msg)?;
    let mut m: HashMap<String, Box<dyn StageLogic>> = HashMap::new();
    m.insert(
        "young".into(),
        Box::new(NativeStage {
            transform: filter,
            name: "filter",
        }),
    );
    m.insert(
        "shape".into(),
        Box::new(NativeStage {
            transform: project,
            name: "project",
        }),
    );
    Ok(m)
}

fn per_event(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// The benchmark pipeline; YAML is a superset of JSON, so JSON-quoting every
/// scalar sidesteps the quotes inside the expressions.
fn pipeline_yaml(
    name: &str,
    batch_size: usize,
    input: &Path,
    filter: &Path,
    project: &Path,
    out: &Path,
    trusted: bool,
) -> String {
    let limits = if trusted {
        "\n    limits: {cpu_ms_per_call: unlimited}"
    } else {
        ""
    };
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let p = |p: &Path| q(&p.display().to_string());
    format!(
        "name: {name}\ndata_dir: state\nbatch_size: {batch_size}\nsources:\n  people: {{type: file, path: {}}}\nstages:\n  young:\n    plugin: {}\n    inputs: [people]\n    params: {{where: {}}}{limits}\n  shape:\n    plugin: {}\n    inputs: [young]{limits}\n    params:\n      set: {}\n      drop: {}\nsinks:\n  out: {{type: file, path: {}, inputs: [shape]}}\n",
        p(input),
        p(filter),
        q(WHERE),
        p(project),
        q(SET),
        q(DROP),
        p(out),
    )
}

/// Runs the benchmark and prints the figures.
pub fn run(args: BenchArgs) -> Result<std::process::ExitCode> {
    if let Some(wasm) = args.component.clone() {
        return run_component(&args, &wasm);
    }
    if args.joins {
        joins::run(args.events as usize, args.batch_size, &args.plugin_path)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Some(url) = &args.postgres {
        postgres_cdc::run(url, args.events)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Some(brokers) = &args.kafka {
        let base = std::env::current_dir()?;
        let find = |name: &str| {
            config::resolve_plugin(name, &base, &args.plugin_path).map_err(anyhow::Error::msg)
        };
        kafka::run(brokers, args.events, &find("filter")?, &find("project")?)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let n = args.events;
    let dir = tempfile::Builder::new().prefix("sluice-bench").tempdir()?;
    let input = dir.path().join("people.jsonl");
    eprintln!("generating {n} events into {} ...", input.display());
    let mut bytes_total = 0u64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for seq in 0..n {
            let mut rng = Rng::new(7 ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (_, v) = records::record(Kind::People, &mut rng, seq);
            let line = serde_json::to_vec(&v)?;
            bytes_total += line.len() as u64 + 1;
            w.write_all(&line)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }

    let search = &args.plugin_path;
    let base = std::env::current_dir()?;
    let find = |name: &str| config::resolve_plugin(name, &base, search).map_err(anyhow::Error::msg);
    let (filter_wasm, project_wasm, pass_wasm) =
        (find("filter")?, find("project")?, find("passthrough")?);

    // In-memory batches shared by the two single-thread measurements.
    let lines: Vec<String> = BufReader::new(std::fs::File::open(&input)?)
        .lines()
        .collect::<std::io::Result<_>>()?;
    let batches = into_batches("people", args.batch_size, lines);

    // 1a. Native.
    let mut native_out = 0u64;
    let native_time = {
        let fp = Params::new(filter_params());
        let pp = Params::new(project_params());
        let mut filter = sluice_plugin_filter::Filter::new(&fp).map_err(anyhow::Error::msg)?;
        let mut project = sluice_plugin_project::Project::new(&pp).map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        for b in &batches {
            let raw = to_sdk(&b.events);
            let f = sluice_sdk::run_transform(&mut filter, &raw)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let p = sluice_sdk::run_transform(&mut project, &f.events)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            native_out += p.events.events.len() as u64;
        }
        t.elapsed()
    };

    // 1b. Wasm, same batches, same thread.
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let load = |p: &PathBuf| -> Result<Arc<TransformPlugin>> {
        Ok(Arc::new(
            TransformPlugin::load(&engine, &cache, p).with_context(|| p.display().to_string())?,
        ))
    };
    let limits = Limits {
        memory_mb: 512,
        cpu_ms_per_call: CpuBudget::Millis(10_000),
        ..Limits::default()
    };
    let mut filter =
        TransformInstance::new(load(&filter_wasm)?, "filter", &filter_params(), limits)?;
    let mut project =
        TransformInstance::new(load(&project_wasm)?, "project", &project_params(), limits)?;
    let mut wasm_out = 0u64;
    let wasm_time = {
        let t = Instant::now();
        for b in &batches {
            let f = filter.process(&b.events)?;
            let f = Batch::from_output(b, "filter", f.events).map_err(anyhow::Error::msg)?;
            let p = project.process(&f.events)?;
            wasm_out += p.events.events.len() as u64;
        }
        t.elapsed()
    };
    anyhow::ensure!(
        native_out == wasm_out,
        "native and Wasm disagree: {native_out} vs {wasm_out} events out"
    );

    // 2. Crossing alone.
    let mut pass = TransformInstance::new(load(&pass_wasm)?, "passthrough", &[], limits)?;
    let cross_time = {
        let t = Instant::now();
        for b in &batches {
            pass.process(&b.events)?;
        }
        t.elapsed()
    };

    // End to end, Wasm and native alternated so drift on a shared box hits both.
    let (mut wasm_e2e, mut native_e2e, mut trusted_e2e) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 0..2 {
        for (native, trusted) in [(false, false), (true, false), (false, true)] {
            let tag = match (native, trusted) {
                (true, _) => "native",
                (false, false) => "wasm",
                (false, true) => "wasm-trusted",
            };
            let out = dir.path().join(format!("out-{tag}-{round}.jsonl"));
            let yaml = pipeline_yaml(
                &format!("bench-{tag}-{round}"),
                args.batch_size,
                &input,
                &filter_wasm,
                &project_wasm,
                &out,
                trusted,
            );
            let file = dir.path().join(format!("bench-{tag}-{round}.yaml"));
            std::fs::write(&file, &yaml)?;
            let p = config::load_str(&file, &yaml, &LoadOptions::default(), &|_| None)
                .map_err(|d| anyhow::anyhow!("{d}"))?;
            let overrides = if native {
                native_stages()?
            } else {
                HashMap::new()
            };
            let options = RunOptions::new(Arc::new(AtomicBool::new(false)));
            let summary = pipeline::run_with(&p, &engine, &cache, options, overrides)?;
            anyhow::ensure!(
                summary.events_out == wasm_out,
                "{tag} pipeline wrote {} events, expected {wasm_out}",
                summary.events_out
            );
            let best = match (native, trusted) {
                (true, _) => &mut native_e2e,
                (false, false) => &mut wasm_e2e,
                (false, true) => &mut trusted_e2e,
            };
            *best = (*best).min(summary.elapsed);
        }
    }

    let eps = |d: Duration| n as f64 / d.as_secs_f64();
    let native_us = per_event(native_time, n);
    let wasm_us = per_event(wasm_time, n);
    let cross_us = per_event(cross_time, n);
    println!(
        "sluice bench: {n} events, {} bytes/event average, batches of {}",
        bytes_total / n.max(1),
        args.batch_size
    );
    println!("end to end, file -> filter -> project -> file ({wasm_out} events out; best of 2 runs each):");
    println!(
        "  Wasm plugins:                      {:>10.0} events/s",
        eps(wasm_e2e)
    );
    println!(
        "  native stages (same crates):       {:>10.0} events/s",
        eps(native_e2e)
    );
    println!(
        "  Wasm / native:                     {:>10.1} %",
        100.0 * native_e2e.as_secs_f64() / wasm_e2e.as_secs_f64()
    );
    println!(
        "  Wasm, cpu_ms_per_call: unlimited:  {:>10.0} events/s  (trusted plugins: no epoch checks)",
        eps(trusted_e2e)
    );
    println!(
        "  trusted Wasm / native:             {:>10.1} %",
        100.0 * native_e2e.as_secs_f64() / trusted_e2e.as_secs_f64()
    );
    println!("transform alone, one thread, same in-memory batches:");
    println!(
        "  filter+project, native:            {:>10.0} events/s  {native_us:.3} us/event",
        eps(native_time)
    );
    println!(
        "  filter+project, Wasm:              {:>10.0} events/s  {wasm_us:.3} us/event",
        eps(wasm_time)
    );
    println!(
        "  Wasm / native:                     {:>10.1} %",
        100.0 * native_us / wasm_us
    );
    println!("ABI crossing (passthrough, in+out):  {cross_us:>10.3} us/event = {:.1} % of the Wasm filter+project time", 100.0 * cross_us / wasm_us);
    Ok(std::process::ExitCode::SUCCESS)
}
