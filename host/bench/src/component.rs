//! `sluice-bench --component X.wasm`: one component's figures (the
//! per-language table): size, cold compile, load from the cache,
//! instantiation and events/s.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use sluice::config::{CpuBudget, Limits, OnError};
use sluice::event::Batch;
use sluice::pipeline;
use sluice::plugin::{ComponentCache, TransformInstance, TransformPlugin, WasmEngine};
use sluice::sources::datagen::records::{self, Kind, Rng};

use crate::convert::into_batches;

/// Measures `wasm` over `input` (or generated orders), repeated to `events`.
pub fn run(
    wasm: &Path,
    params: &[(String, String)],
    input: Option<&Path>,
    events: u64,
    batch_size: usize,
) -> Result<()> {
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
    let mut instance = TransformInstance::new(plugin.clone(), "bench", params, limits)?;
    let instantiate = t.elapsed();

    let lines: Vec<String> = match input {
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
        batch_size,
        (0..events as usize).map(|i| lines[i % lines.len()].clone()),
    );
    let t = Instant::now();
    let (mut out, mut dead) = (0usize, 0usize);
    for batch in &batches {
        let o = pipeline::process_batch(&mut instance, "bench", OnError::DeadLetter, batch)?;
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
        events as f64 / run.as_secs_f64(),
        events,
    );
    Ok(())
}
