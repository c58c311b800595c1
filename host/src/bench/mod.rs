//! `sluice bench`: the figures in `docs/performance.md`.
//!
//! Three measurements in one run, on the same generated events:
//! 1. filter + project as Wasm components versus the same crates compiled
//!    natively into this binary, both on one thread over identical in-memory
//!    batches — the cost of the sandbox on the transform itself;
//! 2. the `passthrough` component alone — what crossing the boundary costs
//!    per event, as a share of the filter + project work;
//! 3. the whole pipeline, file → filter → project → file, end to end.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sluice_sdk::abi::{RawBatch, RawEvent, RawHeader, Span as SdkSpan};
use sluice_sdk::{Params, Transform};

use crate::config::{self, Limits, LoadOptions};
use crate::pipeline::{self, Batch, BatchBuilder, RunOptions};
use crate::plugin::{bindings, ComponentCache, TransformInstance, TransformPlugin, WasmEngine};
use crate::sources::datagen::records::{self, Kind, Rng};

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

fn per_event(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Runs the benchmark and prints the figures.
pub fn run(args: BenchArgs) -> Result<std::process::ExitCode> {
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
    let origin: Arc<str> = Arc::from("bench");
    let mut batches = Vec::new();
    {
        let mut b = BatchBuilder::new("people", origin.clone(), args.batch_size);
        for (i, line) in BufReader::new(std::fs::File::open(&input)?)
            .lines()
            .enumerate()
        {
            b.push(None, Some(line?.as_bytes()), &[], 0, i as u64);
            if b.len() == args.batch_size {
                batches.push(
                    std::mem::replace(
                        &mut b,
                        BatchBuilder::new("people", origin.clone(), args.batch_size),
                    )
                    .finish(),
                );
            }
        }
        if !b.is_empty() {
            batches.push(b.finish());
        }
    }

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
    let cache = ComponentCache::new(ComponentCache::default_dir());
    let load = |p: &PathBuf| -> Result<Arc<TransformPlugin>> {
        Ok(Arc::new(
            TransformPlugin::load(&engine, &cache, p).with_context(|| p.display().to_string())?,
        ))
    };
    let limits = Limits {
        memory_mb: 512,
        cpu_ms_per_call: 10_000,
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

    // 3. End to end.
    let out = dir.path().join("out.jsonl");
    // YAML is a superset of JSON: JSON-quoting every scalar sidesteps the
    // quotes inside SQL-ish expressions.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let yaml = format!(
        "name: bench\ndata_dir: state\nbatch_size: {bs}\nsources:\n  people: {{type: file, path: {input}}}\nstages:\n  young:\n    plugin: {f}\n    inputs: [people]\n    params: {{where: {w}}}\n  shape:\n    plugin: {p}\n    inputs: [young]\n    params:\n      set: {set}\n      drop: {drop}\nsinks:\n  out: {{type: file, path: {out}, inputs: [shape]}}\n",
        bs = args.batch_size,
        input = q(&input.display().to_string()),
        f = q(&filter_wasm.display().to_string()),
        p = q(&project_wasm.display().to_string()),
        w = q(WHERE),
        set = q(SET),
        drop = q(DROP),
        out = q(&out.display().to_string()),
    );
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, &yaml)?;
    let p = config::load_str(&file, &yaml, &LoadOptions::default(), &|_| None)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let summary = pipeline::run(
        &p,
        &engine,
        &cache,
        RunOptions {
            watch: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
        },
    )?;
    anyhow::ensure!(
        summary.events_out == wasm_out,
        "pipeline wrote {} events, expected {wasm_out}",
        summary.events_out
    );

    let eps = |d: Duration| n as f64 / d.as_secs_f64();
    let native_us = per_event(native_time, n);
    let wasm_us = per_event(wasm_time, n);
    let cross_us = per_event(cross_time, n);
    println!(
        "sluice bench: {n} events, {} bytes/event average, batches of {}",
        bytes_total / n.max(1),
        args.batch_size
    );
    println!(
        "  filter+project, native (1 thread): {:>10.0} events/s  {native_us:.3} us/event",
        eps(native_time)
    );
    println!(
        "  filter+project, Wasm   (1 thread): {:>10.0} events/s  {wasm_us:.3} us/event",
        eps(wasm_time)
    );
    println!(
        "  Wasm / native throughput ratio:    {:>10.1} %",
        100.0 * native_us / wasm_us
    );
    println!("  ABI crossing (passthrough, in+out): {cross_us:.3} us/event = {:.1} % of the Wasm filter+project time", 100.0 * cross_us / wasm_us);
    println!(
        "  end to end file -> filter -> project -> file: {:.0} events/s ({} in, {} out, {:.2} s)",
        summary.events_in as f64 / summary.elapsed.as_secs_f64(),
        summary.events_in,
        summary.events_out,
        summary.elapsed.as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
