//! `sluice plugin build|inspect|test`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{Limits, OnError};
use crate::event::BatchBuilder;
use crate::pipeline::process_batch;
use crate::plugin::{component, ComponentCache, TransformInstance, TransformPlugin, WasmEngine};

/// `sluice plugin build DIR`: builds with the language's own toolchain and
/// prints the component's path as the last line of stdout.
pub fn build(dir: &Path, release: bool) -> Result<ExitCode> {
    let wasm = super::build::build(dir, release)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    component::check_header(&wasm, &bytes)?;
    eprintln!("built {} ({} KiB)", wasm.display(), bytes.len() / 1024);
    println!("{}", wasm.display());
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin new --lang L NAME`.
pub fn new(lang: &str, name: &str) -> Result<ExitCode> {
    let dir = super::build::scaffold(lang, name)?;
    eprintln!(
        "created {} ({lang}); next:\n  sluice plugin build {}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin inspect X.wasm`.
pub fn inspect(wasm: &Path) -> Result<ExitCode> {
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    component::check_header(wasm, &bytes)?;
    let (c, outcome) = cache.load(engine.engine(), &bytes)?;
    let shape = component::shape(engine.engine(), &c);
    println!("file:      {}", wasm.display());
    println!("size:      {} bytes", bytes.len());
    {
        use sha2::Digest;
        println!("sha256:    {}", hex::encode(sha2::Sha256::digest(&bytes)));
    }
    println!(
        "world:     {}",
        shape
            .world
            .map_or("none (not a Sluice plugin)".to_string(), |w| format!(
                "{}:{}",
                component::PACKAGE,
                w.name()
            ))
    );
    println!("contract:  {}", shape.version.as_deref().unwrap_or("-"));
    println!(
        "compiled:  {}",
        match outcome {
            crate::plugin::CacheOutcome::Hit => "from cache",
            crate::plugin::CacheOutcome::Compiled => "now (cached for next time)",
            crate::plugin::CacheOutcome::Uncached => "now (no usable cache directory)",
        }
    );
    if shape.world == Some(component::World::Transform) {
        match TransformPlugin::load(&engine, &cache, wasm) {
            Ok(p) => {
                // What the plugin says about itself: unverified, so
                // escaped and labelled as a claim.
                println!(
                    "plugin:    {}@{} (self-described, not verified; the file and sha256 above are what the host knows)",
                    crate::plugin::identity::claim(&p.info.name),
                    crate::plugin::identity::claim(&p.info.version)
                );
                if !p.info.description.is_empty() {
                    println!(
                        "about:     {}",
                        crate::plugin::identity::claim(&p.info.description)
                    );
                }
            }
            Err(e) => println!("plugin:    cannot load: {e}"),
        }
    }
    println!("exports:");
    for e in &shape.exports {
        println!("  {e}");
    }
    println!("imports:");
    for i in &shape.imports {
        let note = if i.starts_with(component::PACKAGE) {
            ""
        } else {
            "  (not granted: traps if called)"
        };
        println!("  {i}{note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin test X.wasm --input FILE --param k=v`.
pub fn test(wasm: &Path, input: &Path, params: &[String], batch_size: usize) -> Result<ExitCode> {
    let params = crate::config::parse_params(params).map_err(anyhow::Error::msg)?;
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let plugin = Arc::new(TransformPlugin::load(&engine, &cache, wasm)?);
    let mut instance = TransformInstance::new(plugin, "test", &params, Limits::default())?;
    let file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let origin: Arc<str> = Arc::from(input.display().to_string());
    let mut lines = BufReader::new(file).lines();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line_no = 0u64;
    let (mut n_out, mut n_dead) = (0u64, 0u64);
    loop {
        let mut batch = BatchBuilder::new("input", origin.clone(), batch_size);
        let mut eof = false;
        while batch.len() < batch_size.max(1) {
            let Some(line) = lines.next() else {
                eof = true;
                break;
            };
            let line = line?;
            line_no += 1;
            let text = line.trim_end();
            if text.is_empty() {
                continue;
            }
            if let Err(e) = crate::event::check_json(text.as_bytes()) {
                eprintln!(
                    "dead letter: {} line {line_no}: malformed JSON: {e}: {text}",
                    input.display()
                );
                n_dead += 1;
                continue;
            }
            batch.push(None, Some(text.as_bytes()), &[], 0, line_no);
        }
        if !batch.is_empty() {
            let outcome =
                process_batch(&mut instance, "test", OnError::DeadLetter, &batch.finish())?;
            for b in &outcome.outputs {
                for e in b.iter() {
                    out.write_all(e.value.unwrap_or(b"null"))?;
                    out.write_all(b"\n")?;
                    n_out += 1;
                }
            }
            if let Some(dead) = &outcome.dead {
                for e in dead.iter() {
                    let reason = e
                        .headers()
                        .find(|(n, _)| *n == "sluice.error.message")
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    let value = e.value.map(String::from_utf8_lossy).unwrap_or_default();
                    eprintln!(
                        "dead letter: {} line {}: {reason}: {value}",
                        input.display(),
                        e.position
                    );
                    n_dead += 1;
                }
            }
        }
        if eof {
            break;
        }
    }
    out.flush()?;
    eprintln!("{n_out} event(s) out, {n_dead} dead letter(s)");
    Ok(ExitCode::SUCCESS)
}
