//! Shared helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.env("SLUICE_CACHE_DIR", target_dir().join("test-cache"));
    c.env("NO_COLOR", "1");
    c
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A built component; fails loudly (never skips) when it was not built.
pub fn component(dir: &str, name: &str) -> PathBuf {
    let p = target_dir().join(dir).join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-plugins.sh --test-guests first",
        p.display()
    );
    p
}

pub fn plugin(name: &str) -> PathBuf {
    component("plugins", name)
}

pub fn guest(name: &str) -> PathBuf {
    component("test-guests", name)
}

/// What a service script printed on `start` (`VAR=value`), read from the environment.
/// A service-backed test never skips: without its service it fails, and the message
/// names the script that starts the service. `script` is the file name under
/// `scripts/services/` without `.sh`.
pub fn service(var: &str, script: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{var} is not set: start the service with scripts/services/{script}.sh start and export what it prints, \
             e.g. `export \"$(scripts/services/{script}.sh start)\"` (scripts/test.sh does)"
        ),
    }
}

/// The Python interpreter of a service's venv (it has that service's reference client
/// libraries): `override_var` when set, else the path the script's `start` wrote to
/// `$SLUICE_SERVICES_DIR/<script>.python`. Fails, never skips, when neither is there.
pub fn service_python(script: &str, override_var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(override_var) {
        return PathBuf::from(p);
    }
    let dir =
        std::env::var("SLUICE_SERVICES_DIR").unwrap_or_else(|_| "/tmp/sluice-services".into());
    let file = Path::new(&dir).join(format!("{script}.python"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): start the service with scripts/services/{script}.sh start, or set {override_var}",
            file.display()
        )
    });
    PathBuf::from(text.trim())
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("sluice runs");
    assert!(
        out.status.success(),
        "sluice failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// Writes `n` events `{"n": i, "pad": "..."}` as JSON lines.
pub fn numbered_events(path: &Path, n: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    for i in 0..n {
        writeln!(
            w,
            r#"{{"n":{i},"pad":"the quick brown fox jumps over the lazy dog"}}"#
        )
        .expect("write");
    }
}

/// A path as a YAML double-quoted scalar.
pub fn q(p: &Path) -> String {
    serde_json::Value::from(p.display().to_string()).to_string()
}

/// Writes a pipeline file `p.yaml` into `dir`.
pub fn write_pipeline(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(&p, body).expect("write pipeline");
    p
}

/// Runs `cmd`, which must fail, and returns its stderr.
pub fn run_failing(cmd: &mut Command) -> String {
    let out = cmd.output().expect("sluice runs");
    assert!(
        !out.status.success(),
        "expected a failure:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
