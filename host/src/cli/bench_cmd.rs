//! `sluice bench`: hands over to the `sluice-bench` binary beside this one.
//!
//! The benchmarks compare Sluice with the plugin crates compiled natively and
//! with hand-written Rust, so they link crates the engine itself must not
//! carry; they live in their own package (`host/bench`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

/// Where `sluice-bench` is expected: next to the running `sluice`.
fn bench_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the sluice executable")?;
    let dir = exe
        .parent()
        .context("the sluice executable has no parent directory")?;
    Ok(dir.join(format!("sluice-bench{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs `sluice-bench ARGS` and passes its exit status on.
pub fn run(args: &[OsString]) -> Result<ExitCode> {
    let exe = bench_exe()?;
    anyhow::ensure!(
        exe.is_file(),
        "`sluice bench` runs `{}`, which does not exist; build it with `cargo build --release -p sluice-bench` (same profile as this sluice)",
        exe.display()
    );
    let status = Command::new(&exe)
        .args(args)
        .status()
        .with_context(|| format!("starting {}", exe.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
