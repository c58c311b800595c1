//! `sluice-bench scan FILE`: the JSON scanner the host runs over every event
//! that reaches a stage reading field tables (`sluice_sdk::json::table::encode`,
//! which checks the value and writes its table), and the check it runs
//! otherwise (`check_json`: `json::check_syntax`, with serde_json's
//! `IgnoredAny` deciding only what that refuses), against `IgnoredAny`
//! alone, on the same lines in memory: no file reading, no pipeline. Time
//! per event (best of `runs`) and per byte. For instruction counts, run it
//! under `valgrind --tool=cachegrind` with `--only table` (or `check`,
//! `syntax`, `serde`) and with `--only nothing`, and divide the difference
//! by lines × runs.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Which scans to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// `table::encode`: check and field table.
    Table,
    /// `sluice_sdk::json::check`: the same scan without the table.
    Check,
    /// `sluice_sdk::json::check_syntax`: the check without UTF-8 (the
    /// host's `check_json`).
    Syntax,
    /// `serde_json::from_slice::<IgnoredAny>`.
    Serde,
    /// Read and split the file only: the baseline to subtract.
    Nothing,
}

pub fn run(file: &Path, runs: usize, only: Option<Only>) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        bail!("{} has no lines", file.display());
    }
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let mut table = Vec::new();
    // Every line must pass every scan, or the timings compare unlike work.
    let mut failed = 0usize;
    let mut table_scan = || {
        for l in &lines {
            table.clear();
            failed += usize::from(sluice_sdk::json::table::encode(l, &mut table).is_err());
        }
    };
    let mut checks = 0usize;
    let mut check_scan = || {
        for l in &lines {
            checks += usize::from(sluice_sdk::json::check(l).is_err());
        }
    };
    let mut syntax_failed = 0usize;
    let mut syntax_scan = || {
        for l in &lines {
            syntax_failed += usize::from(sluice_sdk::json::check_syntax(l).is_err());
        }
    };
    let mut serde_failed = 0usize;
    let mut serde_scan = || {
        for l in &lines {
            serde_failed +=
                usize::from(serde_json::from_slice::<serde::de::IgnoredAny>(l).is_err());
        }
    };
    let best = |f: &mut dyn FnMut()| {
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO)
    };
    let n = lines.len() as f64;
    println!(
        "{}: {} lines, {} bytes a line on average; best of {} runs",
        file.display(),
        lines.len(),
        bytes / lines.len(),
        runs.max(1)
    );
    let report = |name: &str, f: &mut dyn FnMut()| {
        let t = best(f).as_nanos() as f64;
        println!(
            "  {name:<34} {:>8.0} ns/event  {:>5.2} ns/byte",
            t / n,
            t / bytes as f64
        );
    };
    if only.is_none_or(|o| o == Only::Table) {
        report("table::encode (check + table)", &mut table_scan);
    }
    if only.is_none_or(|o| o == Only::Check) {
        report("json::check", &mut check_scan);
    }
    if only.is_none_or(|o| o == Only::Syntax) {
        report("json::check_syntax (check_json)", &mut syntax_scan);
    }
    if only.is_none_or(|o| o == Only::Serde) {
        report("serde_json IgnoredAny", &mut serde_scan);
    }
    if failed + checks + syntax_failed + serde_failed > 0 {
        bail!("lines refused: {failed} by table::encode, {checks} by check, {syntax_failed} by check_syntax, {serde_failed} by serde_json");
    }
    Ok(())
}
