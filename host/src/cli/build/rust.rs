//! Building Rust plugins: `cargo build --target wasm32-wasip2` emits a
//! component directly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::{BuildContext, Language};

const TARGET: &str = "wasm32-wasip2";

/// The Rust language.
pub static LANGUAGE: Language = Language {
    name: "rust",
    detect,
    build,
    template: &[
        (
            "Cargo.toml",
            include_str!("../../../../sdk/templates/rust/Cargo.toml"),
        ),
        (
            "src/lib.rs",
            include_str!("../../../../sdk/templates/rust/src/lib.rs"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/rust/README.md"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
    ],
};

/// `sluice plugin new --kind source --lang rust`.
pub static SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../sdk/templates/rust-source/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../sdk/templates/rust-source/src/lib.rs"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/rust-source/README.md"),
    ),
];

/// `sluice plugin new --kind sink --lang rust`.
pub static SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../sdk/templates/rust-sink/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../sdk/templates/rust-sink/src/lib.rs"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/rust-sink/README.md"),
    ),
];

/// `sluice plugin new --kind udf --lang rust`.
pub static UDF_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../sdk/templates/rust-udf/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../sdk/templates/rust-udf/src/lib.rs"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/rust-udf/README.md"),
    ),
];

/// Flags for every Wasm guest: inline far more than LLVM's -O3 default,
/// because under Wasmtime each call also pays Cranelift's calling convention
/// and an epoch check on entry. The checkout's `.cargo/config.toml` sets the
/// same for the built-in plugins.
const GUEST_RUSTFLAGS: &str = "-C llvm-args=-inline-threshold=3000";

/// Variables that already carry rustflags; the user's win over ours.
const RUSTFLAGS_VARS: [&str; 3] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
];

/// What `--release` exports to cargo. Plugins are small: whole-program
/// optimization is cheap for them and pays on every event; stripping shrinks
/// what the host compiles. Incremental compilation is turned off because,
/// in a workspace whose release profile turns it on (this one's does),
/// calls into other crates' one-line functions stayed calls despite LTO:
/// -3 to -6 % instructions per event when it is off (docs/performance.md).
/// A variable the user exported themselves wins.
fn release_env(is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = [
        ("CARGO_PROFILE_RELEASE_LTO", "true"),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
        ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
        ("CARGO_PROFILE_RELEASE_STRIP", "true"),
        ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
    ]
    .into_iter()
    .filter(|(key, _)| !is_set(key))
    .collect();
    if !RUSTFLAGS_VARS.iter().any(|key| is_set(key)) {
        env.push(("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", GUEST_RUSTFLAGS));
    }
    env
}

fn detect(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
}

fn build(cx: &BuildContext<'_>) -> Result<PathBuf> {
    if let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        if !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == TARGET)
        {
            bail!("the Rust target {TARGET} is not installed; install it with:\n  rustup target add {TARGET}");
        }
    }
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "build",
        "--target",
        TARGET,
        "--message-format=json-render-diagnostics",
        "--manifest-path",
    ])
    .arg(cx.dir.join("Cargo.toml"));
    if cx.release {
        cmd.arg("--release");
        cmd.envs(release_env(|key| std::env::var_os(key).is_some()));
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo (is Rust installed? https://rustup.rs)")?;
    let mut wasm: Option<PathBuf> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let is_cdylib = msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
            if msg["reason"] == "compiler-artifact" && is_cdylib {
                if let Some(files) = msg["filenames"].as_array() {
                    wasm = files
                        .iter()
                        .filter_map(|f| f.as_str())
                        .find(|f| f.ends_with(".wasm"))
                        .map(PathBuf::from)
                        .or(wasm);
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build failed for {}", cx.dir.display());
    }
    wasm.with_context(|| {
        format!("cargo built {} but produced no .wasm; is `crate-type = [\"cdylib\"]` set in its [lib] section?", cx.dir.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_exports_the_guest_flags_unless_the_user_set_rustflags() {
        let env = release_env(|_| false);
        assert!(env.contains(&("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", GUEST_RUSTFLAGS)));
        assert!(env.contains(&("CARGO_PROFILE_RELEASE_LTO", "true")));
        assert!(env.contains(&("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")));
        for var in RUSTFLAGS_VARS {
            let env = release_env(|key| key == var);
            assert!(
                env.iter().all(|(key, _)| !key.ends_with("RUSTFLAGS")),
                "{var} set, yet we export {env:?}"
            );
            assert_eq!(env.len(), 5, "the profile settings stay");
        }
        let env = release_env(|key| key == "CARGO_PROFILE_RELEASE_LTO");
        assert!(env
            .iter()
            .all(|(key, _)| *key != "CARGO_PROFILE_RELEASE_LTO"));
    }

    /// Plugins built by `sluice build` and the built-ins built in this
    /// checkout must be compiled alike, or the benchmarks measure something
    /// users don't get.
    #[test]
    fn the_checkout_builds_guests_with_the_same_flags() {
        let config: toml::Table = toml::from_str(include_str!("../../../../.cargo/config.toml"))
            .expect(".cargo/config.toml parses");
        let flags: Vec<&str> = config["target"]["wasm32-wasip2"]["rustflags"]
            .as_array()
            .expect("target.wasm32-wasip2.rustflags is a list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(flags.join(" "), GUEST_RUSTFLAGS);
    }

    /// The same for the profile: the script that builds the built-ins
    /// exports what `--release` exports.
    #[test]
    fn the_checkout_builds_guests_with_the_same_profile() {
        let script = include_str!("../../../../scripts/build-plugins.sh");
        let exported: Vec<&str> = script
            .lines()
            .filter(|l| l.starts_with("export CARGO_PROFILE_RELEASE_"))
            .flat_map(|l| l.split_whitespace().skip(1))
            .collect();
        for (key, value) in release_env(|_| false) {
            if key.ends_with("RUSTFLAGS") {
                continue; // .cargo/config.toml, checked above
            }
            let want = format!("{key}={value}");
            assert!(
                exported.contains(&want.as_str()),
                "scripts/build-plugins.sh does not export {want}: {exported:?}"
            );
        }
    }
}
