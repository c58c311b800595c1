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
