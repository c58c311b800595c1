//! Every language's `normalize` example builds with `sluice plugin build`
//! (component path on the last stdout line) and produces byte for byte the
//! output of the Rust reference, with the same dead letters and reasons.
//! Toolchains are installed by `scripts/toolchains/*.sh` (run by
//! `scripts/test.sh`); a missing one fails the test rather than skipping it.

use std::path::{Path, PathBuf};

use crate::support::*;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins")
}

/// Builds `examples/plugins/<lang>` and returns the component path.
fn build(lang: &str) -> PathBuf {
    let out = run_ok(
        sluice()
            .args(["plugin", "build"])
            .arg(examples().join(lang)),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{lang}: no stdout from plugin build"));
    let path = PathBuf::from(last.trim());
    assert!(
        path.is_file(),
        "{lang}: the last stdout line is not a file: {last}"
    );
    path
}

/// (stdout, dead-letter lines) of running the component over the sample events.
fn run(wasm: &Path) -> (String, Vec<String>) {
    let out = run_ok(
        sluice()
            .args(["plugin", "test"])
            .arg(wasm)
            .arg("--input")
            .arg(examples().join("events.jsonl")),
    );
    let dead = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(without_path)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), dead)
}

/// A dead-letter line from ` line N: reason: event` on (the input path
/// before it depends on how the file was named on the command line).
fn without_path(line: &str) -> Option<String> {
    let rest = line.strip_prefix("dead letter: ")?;
    rest.find(" line ").map(|i| rest[i..].to_string())
}

fn expected() -> (String, Vec<String>) {
    let out = std::fs::read_to_string(examples().join("expected.jsonl")).expect("expected.jsonl");
    let dead = std::fs::read_to_string(examples().join("expected-dead-letters.txt"))
        .expect("expected-dead-letters.txt")
        .lines()
        .filter_map(without_path)
        .collect();
    (out, dead)
}

fn check(lang: &str) {
    let wasm = build(lang);
    let (out, dead) = run(&wasm);
    let (want_out, want_dead) = expected();
    assert_eq!(
        out, want_out,
        "{lang}: output differs from the Rust reference"
    );
    assert_eq!(
        dead, want_dead,
        "{lang}: dead letters differ from the Rust reference"
    );
}

#[test]
fn rust_reference_matches_the_recorded_expectation() {
    check("rust");
}

#[test]
fn python_normalize_matches_rust_byte_for_byte() {
    check("python");
}

#[test]
fn js_normalize_matches_rust_byte_for_byte() {
    check("js");
}

#[test]
fn c_normalize_matches_rust_byte_for_byte() {
    check("c");
}

/// `plugin new` scaffolds a project that builds and runs as it is.
fn scaffold_builds_and_runs(lang: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        sluice()
            .current_dir(dir.path())
            .args(["plugin", "new", "--lang", lang, "my-plugin"]),
    );
    let project = dir.path().join("my-plugin");
    assert!(
        project.join("README.md").is_file(),
        "{lang}: the scaffold has a README"
    );
    assert!(
        project.join("events.jsonl").is_file(),
        "{lang}: the scaffold has sample events"
    );
    builds_and_runs(lang, &project);
}

/// Builds the scaffold in `project` and runs its component on its sample events:
/// both objects come out, and the non-object is dead-lettered.
pub(crate) fn builds_and_runs(lang: &str, project: &Path) {
    let mut build = sluice();
    build.args(["plugin", "build"]).arg(project);
    if lang == "rust" {
        // One target directory for every Rust scaffold: their dependencies build once.
        build.env("CARGO_TARGET_DIR", target_dir().join("scaffolds"));
    }
    let out = run_ok(&mut build);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wasm = PathBuf::from(stdout.lines().last().expect("a path").trim());
    let run = run_ok(
        sluice()
            .args(["plugin", "test"])
            .arg(&wasm)
            .arg("--input")
            .arg(project.join("events.jsonl")),
    );
    let outputs: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON output"))
        .collect();
    assert_eq!(
        outputs.len(),
        2,
        "{lang}: both objects come out: {outputs:?}"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("line 3"),
        "{lang}: the non-object is dead-lettered: {stderr}"
    );
}

#[test]
fn rust_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("rust");
}

#[test]
fn plugin_new_refuses_unknown_languages_and_existing_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sluice()
        .current_dir(dir.path())
        .args(["plugin", "new", "--lang", "cobol", "x"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of rust, python"));
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    let out = sluice()
        .current_dir(dir.path())
        .args(["plugin", "new", "taken"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn go_normalize_matches_rust_byte_for_byte() {
    check("go");
}

#[test]
fn go_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("go");
}

#[test]
fn python_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("python");
}

#[test]
fn ts_normalize_matches_rust_byte_for_byte() {
    check("ts");
}

#[test]
fn js_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("js");
}

#[test]
fn ts_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("ts");
}

#[test]
fn c_scaffold_builds_and_runs() {
    scaffold_builds_and_runs("c");
}
