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
        // Plugins are small: whole-program optimization is cheap for them and
        // pays on every event; stripping shrinks what the host compiles.
        // Settings the user exported themselves win.
        for (key, value) in [
            ("CARGO_PROFILE_RELEASE_LTO", "true"),
            ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
            ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
            ("CARGO_PROFILE_RELEASE_STRIP", "true"),
        ] {
            if std::env::var_os(key).is_none() {
                cmd.env(key, value);
            }
        }
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
