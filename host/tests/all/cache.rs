//! The compile cache holds precompiled native code, so a planted artifact
//! must never run: an artifact that fails authentication is deleted with a
//! warning naming it, the plugin is compiled again, and the run goes on with
//! the right plugin's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;

/// Runs `file -> plugin -> file` with the cache in `cache`; the outputs and
/// stderr.
fn run_with(
    dir: &Path,
    cache: &Path,
    plugin: &Path,
    tag: &str,
) -> (Vec<serde_json::Value>, String) {
    let input = dir.join("in.jsonl");
    numbered_events(&input, 20);
    let out = dir.join(format!("out-{tag}.jsonl"));
    let pipeline = dir.join(format!("p-{tag}.yaml"));
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  in: {{type: file, path: {}}}\nstages:\n  s:\n    plugin: {}\n    inputs: [in]\nsinks:\n  out: {{type: file, path: {}, inputs: [s]}}\n",
            q(&input),
            q(plugin),
            q(&out)
        ),
    )
    .expect("write pipeline");
    let run = run_ok(
        sluice()
            .env("SLUICE_CACHE_DIR", cache)
            .arg("run")
            .arg(&pipeline)
            .arg("--no-progress"),
    );
    (
        json_lines(&out),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

fn artifacts(cache: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(cache)
        .expect("cache dir exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn a_planted_artifact_is_deleted_with_a_warning_and_recompiled_never_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let honest = plugin("passthrough");
    // Any other component's artifact: if it ran, every event would carry "tag".
    let other = guest("misbehave");

    let (out, _) = run_with(dir.path(), &cache, &honest, "first");
    assert_eq!(out.len(), 20);
    let mine: Vec<PathBuf> = artifacts(&cache).into_iter().collect();
    assert_eq!(mine.len(), 1, "one artifact after one plugin: {mine:?}");
    let target = mine[0].clone();
    let (_, _) = run_with(dir.path(), &cache, &other, "other");
    let theirs: Vec<PathBuf> = artifacts(&cache)
        .into_iter()
        .filter(|p| *p != target)
        .collect();
    assert_eq!(theirs.len(), 1, "the other plugin's artifact: {theirs:?}");

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700, "the cache directory is private");
    assert_eq!(mode(&target), 0o600, "artifacts are private");
    assert_eq!(mode(&cache.join("cache.key")), 0o600, "the key is private");

    // Two plants: another component's valid, authenticated artifact under
    // this one's name (a real attack needs nothing more than a copy), and
    // the raw wasmtime artifact inside it (what an unauthenticated cache
    // would have accepted).
    let valid_but_wrong = std::fs::read(&theirs[0]).expect("read");
    let raw = valid_but_wrong[40..].to_vec();
    let plants = [
        ("another component's artifact", valid_but_wrong),
        ("a raw artifact", raw),
    ];
    for (i, (what, planted)) in plants.into_iter().enumerate() {
        std::fs::write(&target, &planted).expect("plant");
        let (out, stderr) = run_with(dir.path(), &cache, &honest, &format!("again-{i}"));
        assert!(
            stderr.contains(&format!("deleting cached component {}", target.display()))
                && stderr.contains("failed authentication"),
            "{what}: the warning must name the file:\n{stderr}"
        );
        let got: Vec<i64> = out.iter().filter_map(|v| v["n"].as_i64()).collect();
        assert_eq!(
            got,
            (0..20).collect::<Vec<_>>(),
            "{what}: the honest plugin's output"
        );
        assert!(
            out.iter().all(|v| v.get("tag").is_none()),
            "{what}: the planted code must not have run: {out:?}"
        );
        let rewritten = std::fs::read(&target).expect("recompiled artifact");
        assert_ne!(rewritten, planted, "{what}: the artifact was replaced");
        // The recompiled artifact is trusted again: no warning next time.
        let (_, stderr) = run_with(dir.path(), &cache, &honest, &format!("clean-{i}"));
        assert!(!stderr.contains("deleting cached component"), "{stderr}");
    }
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("shared");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (out, stderr) = run_with(dir.path(), &cache, &plugin("passthrough"), "shared");
    assert_eq!(out.len(), 20, "the run goes on without the cache");
    assert!(
        stderr.contains("not using the compile cache") && stderr.contains("may write"),
        "{stderr}"
    );
    assert!(artifacts(&cache).is_empty(), "nothing written to it");
}

/// `sluice run` loads every plugin twice (to check the pipeline, then to
/// run it): the second load reuses the first's component instead of
/// reading, authenticating and deserializing the artifact again, but only
/// for the same bytes and the same engine, and only for the most recent
/// `LOADED_MAX` components.
#[test]
fn a_loaded_component_is_reused_only_for_the_same_bytes_and_engine() {
    use sluice::plugin::{CacheOutcome, ComponentCache, WasmEngine, LOADED_MAX};

    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("cache");
    let forget_artifacts = || {
        for a in artifacts(&dir) {
            std::fs::remove_file(a).expect("remove artifact");
        }
    };
    let cache = ComponentCache::new(dir.clone());
    let engine = WasmEngine::new().expect("engine");
    let passthrough = std::fs::read(plugin("passthrough")).expect("passthrough");
    let load = |cache: &ComponentCache, e: &wasmtime::Engine, wasm: &[u8]| {
        cache.load(e, wasm).expect("load").1
    };
    assert_eq!(
        load(&cache, engine.engine(), &passthrough),
        CacheOutcome::Compiled
    );
    // With no artifact left, only the kept component can answer.
    forget_artifacts();
    assert_eq!(
        load(&cache, engine.engine(), &passthrough),
        CacheOutcome::Kept
    );
    assert!(artifacts(&dir).is_empty(), "nothing was compiled again");
    // Other bytes, another engine, another cache: not the kept one.
    let mut changed = passthrough.clone();
    changed.extend_from_slice(b"\0\x0a\x08trailingx"); // a custom section
    assert_eq!(
        load(&cache, engine.engine(), &changed),
        CacheOutcome::Compiled
    );
    let other = WasmEngine::new().expect("engine");
    forget_artifacts();
    assert_eq!(
        load(&cache, other.engine(), &passthrough),
        CacheOutcome::Compiled
    );
    let fresh = ComponentCache::new(dir.clone());
    forget_artifacts();
    assert_eq!(
        load(&fresh, engine.engine(), &passthrough),
        CacheOutcome::Compiled
    );

    // Bounded: after LOADED_MAX other engines' loads, the first is gone.
    let bounded = ComponentCache::new(dir.clone());
    let first = wasmtime::Engine::default();
    load(&bounded, &first, &passthrough);
    let others: Vec<wasmtime::Engine> = (0..LOADED_MAX)
        .map(|_| wasmtime::Engine::default())
        .collect();
    for e in &others {
        load(&bounded, e, &passthrough);
    }
    forget_artifacts();
    assert_eq!(
        load(&bounded, others.last().expect("engines"), &passthrough),
        CacheOutcome::Kept
    );
    assert_eq!(load(&bounded, &first, &passthrough), CacheOutcome::Compiled);
}
