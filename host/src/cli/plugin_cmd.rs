//! `sluice plugin build|inspect|test|list`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{Limits, OnError};
use crate::event::BatchBuilder;
use crate::pipeline::process_batch;
use crate::plugin::{
    component, ComponentCache, StagePlugin, TransformInstance, TransformPlugin, WasmEngine,
};

/// A plugin argument: a `.wasm` file, or a plugin's name (`filter`) looked
/// up like `plugin: NAME` in a pipeline file.
fn plugin_arg(spec: &Path) -> Result<PathBuf> {
    crate::config::plugin_file(spec).map_err(anyhow::Error::msg)
}

/// `sluice plugin build DIR`: builds with the language's own toolchain and
/// prints the component's path as the last line of stdout.
pub fn build(dir: &Path, release: bool) -> Result<ExitCode> {
    let wasm = super::build::build(dir, release)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    component::check_header(&wasm, &bytes)?;
    eprintln!("built {} ({} KiB)", wasm.display(), bytes.len() / 1024);
    // Compile it into the cache now, so the first `run` does not sit
    // silent for as long as a large component takes to compile.
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let world = cache
        .load_named(engine.engine(), &bytes, &stem)
        .ok()
        .and_then(|(c, _)| component::shape(engine.engine(), &c).world);
    if world == Some(component::World::Udf) {
        match crate::plugin::UdfPlugin::load(&engine, &cache, &wasm) {
            Ok(udf) => eprintln!(
                "precompiled {} (a user-defined function) into the compile cache",
                udf.label()
            ),
            Err(e) => eprintln!("warning: built, but it does not load as a UDF: {e}"),
        }
        println!("{}", wasm.display());
        return Ok(ExitCode::SUCCESS);
    }
    let connector =
        world.filter(|w| matches!(w, component::World::Source | component::World::Sink));
    if let Some(world) = connector {
        // A connector is loaded with its pipeline's grants; here it is only compiled.
        eprintln!(
            "precompiled {} (a {} connector) into the compile cache",
            wasm.display(),
            world.name()
        );
        println!("{}", wasm.display());
        return Ok(ExitCode::SUCCESS);
    }
    match StagePlugin::load(&engine, &cache, &wasm, Limits::default().cpu_ms_per_call) {
        Ok(plugin) => eprintln!("precompiled {} into the compile cache", plugin.label()),
        Err(e) => eprintln!("warning: built, but it does not load as a plugin: {e}"),
    }
    println!("{}", wasm.display());
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin new --kind K --lang L NAME`.
pub fn new(lang: &str, kind: &str, name: &str) -> Result<ExitCode> {
    let dir = super::build::scaffold_kind(lang, kind, name)?;
    eprintln!(
        "created {} ({lang}); next:\n  sluice plugin build {}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin inspect X.wasm`.
pub fn inspect(wasm: &Path) -> Result<ExitCode> {
    let wasm = &plugin_arg(wasm)?;
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    component::check_header(wasm, &bytes)?;
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (c, outcome) = cache.load_named(engine.engine(), &bytes, &stem)?;
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
    if matches!(
        shape.world,
        Some(component::World::Transform | component::World::Processor)
    ) {
        println!(
            "tables:    {}",
            if component::declares_field_tables(&bytes) {
                "reads field tables (the host scans each value once for it)"
            } else {
                "scans each value itself (no `sluice:field-tables` section)"
            }
        );
    }
    println!(
        "compiled:  {}",
        match outcome {
            crate::plugin::CacheOutcome::Hit => "from cache",
            crate::plugin::CacheOutcome::Kept => "already loaded",
            crate::plugin::CacheOutcome::Compiled => "now (cached for next time)",
            crate::plugin::CacheOutcome::Uncached => "now (no usable cache directory)",
        }
    );
    let described = match shape.world {
        Some(component::World::Transform) => {
            Some(TransformPlugin::load(&engine, &cache, wasm).map(|p| p.info))
        }
        Some(component::World::Udf) => {
            Some(crate::plugin::UdfPlugin::load(&engine, &cache, wasm).map(|p| p.info))
        }
        _ => None,
    };
    if let Some(described) = described {
        match described {
            Ok(info) => {
                // What the plugin says about itself: unverified, so
                // escaped and labelled as a claim.
                println!(
                    "plugin:    {}@{} (self-described, not verified; the file and sha256 above are what the host knows)",
                    crate::plugin::identity::claim(&info.name),
                    crate::plugin::identity::claim(&info.version)
                );
                if !info.description.is_empty() {
                    println!(
                        "about:     {}",
                        crate::plugin::identity::claim(&info.description)
                    );
                }
            }
            Err(e) => println!("plugin:    cannot load: {e}"),
        }
    }
    if matches!(
        shape.world,
        Some(component::World::Source | component::World::Sink)
    ) {
        let http = crate::plugin::connector::wants_http(&shape);
        let clock = crate::plugin::connector::wants_clock(&shape);
        if http {
            println!("grants:    asks for http: a pipeline must grant the hosts it may reach (`grants: {{http: [\"host:port\"]}}`)");
        }
        if clock {
            println!(
                "grants:    may ask for clock: reading the time needs `grants: {{clock: true}}`"
            );
        }
        if !http && !clock {
            println!("grants:    none asked for");
        }
    }
    println!("exports:");
    for e in &shape.exports {
        println!("  {e}");
    }
    println!("imports:");
    for i in &shape.imports {
        let note = if i.starts_with(crate::plugin::connector::HTTP_IMPORT) {
            "  (linked only when the pipeline grants `http`; else traps if called)"
        } else if i.starts_with(crate::plugin::clock::CLOCK_IMPORT) {
            "  (the time only when the pipeline grants `clock`; else a call stops the pipeline)"
        } else if i.starts_with(component::PACKAGE) {
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
    let wasm = &plugin_arg(wasm)?;
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
                    let reason = crate::pipeline::dead_letter::reason(&e);
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
    // Retired before the summary, so what it reports at the end (a field no
    // event had) comes first, as in a run.
    drop(instance);
    eprintln!("{n_out} event(s) out, {n_dead} dead letter(s)");
    Ok(ExitCode::SUCCESS)
}

/// `sluice plugin list`: the plugins found by name, with what each says it
/// is and its hash, then the compile cache's artifacts and whose they are.
pub fn list(plugin_path: &[PathBuf]) -> Result<ExitCode> {
    let dirs: Vec<PathBuf> = plugin_path
        .iter()
        .cloned()
        .chain(crate::config::default_plugin_dirs())
        .collect();
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();
    let names = crate::config::plugins_in(&dirs);
    let mut hashes: Vec<(String, String)> = Vec::new();
    println!("plugins (use by name: `plugin: NAME`):");
    if names.is_empty() {
        println!("  none found; build the built-ins with scripts/build-plugins.sh, or add a directory to SLUICE_PLUGIN_PATH or --plugin-path");
    }
    for name in &names {
        let kind = if crate::config::BUILTIN_PLUGINS.contains(&name.as_str()) {
            "built-in"
        } else {
            "found"
        };
        let path = match crate::config::resolve_plugin(name, Path::new("."), plugin_path) {
            Ok(p) => p,
            Err(e) => {
                println!("  {name:<18} {kind:<9} cannot resolve: {e}");
                continue;
            }
        };
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let about = match crate::plugin::StagePlugin::load(
            &engine,
            &cache,
            &path,
            Limits::default().cpu_ms_per_call,
        ) {
            Ok(p) => describe(&p),
            Err(e) => format!("does not load: {e}"),
        };
        println!(
            "  {name:<18} {kind:<9} {about:<50} sha256 {}  {} KiB",
            &sha[..12],
            bytes.len() / 1024
        );
        hashes.push((sha, name.clone()));
    }
    match ComponentCache::default_dir() {
        None => {
            println!("compile cache: none (HOME, XDG_CACHE_HOME and SLUICE_CACHE_DIR are unset)")
        }
        Some(dir) => {
            let mut artifacts: Vec<(String, u64)> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(|e| {
                        let e = e.ok()?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.ends_with(".cwasm")
                            .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
                    })
                    .collect()
                })
                .unwrap_or_default();
            artifacts.sort();
            println!(
                "compile cache {} ({} compiled plugin(s)):",
                dir.display(),
                artifacts.len()
            );
            for (file, size) in artifacts {
                // Artifacts are named `<first 16 bytes of the source's sha256>-<engine>`.
                let prefix = file.split('-').next().unwrap_or_default();
                let owner = hashes
                    .iter()
                    .find(|(sha, _)| sha.starts_with(prefix) && !prefix.is_empty())
                    .map_or(
                        "(no plugin found by name has this hash)".to_string(),
                        |(_, n)| n.clone(),
                    );
                println!(
                    "  sha256 {}  {:>6} KiB  {owner}",
                    &prefix[..prefix.len().min(12)],
                    size / 1024
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `name@version (transform)` as the plugin describes itself.
fn describe(p: &StagePlugin) -> String {
    let (info, world) = match p {
        StagePlugin::Transform(t) => (&t.info, "transform"),
        StagePlugin::Processor(q) => (&q.info, "processor"),
    };
    format!(
        "{}@{} ({world})",
        crate::plugin::identity::claim(&info.name),
        crate::plugin::identity::claim(&info.version)
    )
}
