//! `sluice reset` and `sluice run --reset`: forget a pipeline's progress so
//! the next run starts over. Only what Sluice itself keeps under the
//! pipeline's state directory is deleted, each item named; anything else
//! found there is left alone and named too.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::config::{self, LoadOptions, Pipeline};
use crate::state::CheckpointStore;

/// What a reset deletes, and what it leaves.
#[derive(Debug, Default)]
struct Plan {
    delete: Vec<(PathBuf, String)>,
    keep: Vec<PathBuf>,
}

/// Looks at `dir` and says what a reset would delete.
fn plan(dir: &Path) -> Result<Plan> {
    let mut plan = Plan::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(plan),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let what = match name.as_str() {
            "checkpoint.json" => match CheckpointStore::new(dir).load() {
                Ok(Some(cp)) => format!(
                    "checkpoint {} (the position of {} source(s) and {} sink(s))",
                    cp.id,
                    cp.sources.len(),
                    cp.sinks.len()
                ),
                _ => "the checkpoint (unreadable)".to_string(),
            },
            "checkpoint.json.tmp" => "an unfinished checkpoint write".to_string(),
            "stages" => format!("saved stage state ({})", children(&path).join(", ")),
            "tables" => format!("table snapshots ({})", children(&path).join(", ")),
            "dead-letters.jsonl" => format!("{} dead letter(s)", lines(&path)),
            _ => {
                plan.keep.push(path);
                continue;
            }
        };
        plan.delete.push((path, what));
    }
    Ok(plan)
}

fn children(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|es| {
            es.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for (path, what) in &plan.delete {
        out.push_str(&format!("  {}: {what}\n", path.display()));
    }
    out
}

/// Deletes what `plan` lists, then the directory if it is empty.
fn execute(dir: &Path, plan: &Plan) -> Result<()> {
    for (path, _) in &plan.delete {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.with_context(|| format!("deleting {}", path.display()))?;
    }
    let _ = std::fs::remove_dir(dir); // only succeeds when empty
    Ok(())
}

const UNTOUCHED: &str =
    "Sinks' targets are not touched: file sinks are rewritten from the start by the next run; \
databases, topics, indexes and buckets keep what was written, so the next run writes it again \
(upserts by key overwrite it, appends duplicate it).";

/// Deletes `pipeline`'s checkpoint and state before a run (`--reset`),
/// saying what it deleted.
pub fn reset_state(pipeline: &Pipeline) -> Result<()> {
    let dir = pipeline.state_dir();
    let plan = plan(&dir)?;
    if plan.delete.is_empty() {
        eprintln!(
            "reset: nothing to delete in {}; starting afresh",
            dir.display()
        );
        return Ok(());
    }
    execute(&dir, &plan)?;
    eprintln!(
        "reset: deleted from {}:\n{}Every source starts from its beginning. {UNTOUCHED}",
        dir.display(),
        describe(&plan)
    );
    Ok(())
}

/// The state directory `target` names: a pipeline file's, or the
/// pipeline `NAME` under `data_dir`.
fn state_dir_of(target: &str, data_dir: &Path) -> Result<PathBuf> {
    let as_file = Path::new(target);
    if as_file.is_file() {
        let p = config::load(as_file, &LoadOptions::default()).map_err(|d| {
            anyhow::anyhow!(
                "{} does not load, so its state directory is unknown:\n{}",
                as_file.display(),
                d.sorted()
            )
        })?;
        return Ok(p.state_dir());
    }
    let valid = !target.is_empty()
        && target != "."
        && target != ".."
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        bail!("`{target}` is neither a pipeline file nor a pipeline name (letters, digits, `_`, `-`, `.`)");
    }
    Ok(data_dir.join(target))
}

/// `sluice reset TARGET`.
pub fn run(target: &str, data_dir: &Path, yes: bool) -> Result<ExitCode> {
    let dir = state_dir_of(target, data_dir)?;
    let plan = plan(&dir)?;
    for path in &plan.keep {
        eprintln!("reset: leaving {} (not Sluice's)", path.display());
    }
    if plan.delete.is_empty() {
        eprintln!(
            "reset: nothing to delete: no checkpoint or state in {}",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprint!(
        "reset: this deletes from {}:\n{}",
        dir.display(),
        describe(&plan)
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("not deleting without confirmation; pass --yes (scripts) to delete");
        }
        eprint!("Delete? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("reset: nothing deleted");
            return Ok(ExitCode::FAILURE);
        }
    }
    execute(&dir, &plan)?;
    eprintln!("reset: deleted. The next run reads every source from its beginning. {UNTOUCHED}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_deletes_only_what_sluice_keeps_and_names_each_item() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("orders");
        std::fs::create_dir_all(state.join("stages/agg")).expect("mkdir");
        std::fs::write(state.join("stages/agg/1.state"), b"x").expect("write");
        std::fs::write(state.join("dead-letters.jsonl"), b"{}\n{}\n").expect("write");
        std::fs::write(state.join("notes.txt"), b"mine").expect("write");
        CheckpointStore::new(&state)
            .save(&crate::state::Checkpoint {
                id: 4,
                ..Default::default()
            })
            .expect("save");
        let p = plan(&state).expect("plan");
        let text = describe(&p);
        assert!(text.contains("checkpoint 4"), "{text}");
        assert!(text.contains("saved stage state (agg)"), "{text}");
        assert!(text.contains("2 dead letter(s)"), "{text}");
        assert_eq!(p.keep, vec![state.join("notes.txt")]);
        execute(&state, &p).expect("execute");
        assert!(!state.join("checkpoint.json").exists());
        assert!(!state.join("stages").exists());
        assert!(state.join("notes.txt").exists(), "not Sluice's: kept");
        assert_eq!(state_dir_of("orders", dir.path()).expect("a name"), state);
        let err = state_dir_of("../etc", dir.path()).expect_err("a path out");
        assert!(
            err.to_string()
                .contains("`../etc` is neither a pipeline file nor a pipeline name"),
            "{err}"
        );
    }
}
