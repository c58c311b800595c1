//! Dead letters as a store: browse them (`sluice dlq ls`, `show`), send
//! them back through the pipeline once whatever refused them is fixed
//! (`replay`, exactly once per letter), and remove them (`purge`).
//!
//! The store is the pipeline's dead-letter file (its `dead_letter` when that
//! is a `file` sink, else `DATA_DIR/NAME/dead-letters.jsonl`), in the
//! envelope format. Next to the checkpoint sits the replay ledger
//! ([`ledger`]). Commands that write take the pipeline's run lock
//! ([`crate::state::RunLock`]), so they refuse while `sluice run` runs it.

pub mod ledger;
pub mod purge;
pub mod replay;
pub mod select;
pub mod store;

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::Pipeline;
use crate::pipeline::DEAD_LETTER_SINK;
use crate::state::{Checkpoint, CheckpointStore};

/// Where `pipeline`'s dead letters are, when that is a file.
pub fn dead_letter_file(pipeline: &Pipeline) -> Result<PathBuf> {
    match &pipeline.dead_letter {
        None => Ok(pipeline.state_dir().join("dead-letters.jsonl")),
        Some(config) => config.output_path().map(PathBuf::from).with_context(|| {
            format!(
                "pipeline `{}` sends dead letters to a sink that is not a file ({config:?}); `sluice dlq` reads dead-letter files only",
                pipeline.name
            )
        }),
    }
}

/// The dead-letter file's length as the checkpoint records it: what a
/// rerun keeps (it truncates anything after).
pub fn checkpointed_len(cp: &Checkpoint) -> Option<u64> {
    cp.sinks
        .get(DEAD_LETTER_SINK)
        .and_then(|p| p.get("bytes"))
        .and_then(Value::as_u64)
}

/// Finishes what a killed `purge` or `replay` left: a purge that replaced
/// the file but not the checkpoint's length gets its checkpoint; a replay
/// that did not record its outcomes gets them recorded from the checkpoint
/// (see [`replay::settle`]). Call with the run lock held.
pub fn recover(pipeline: &Pipeline, ledger: &mut ledger::Ledger) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let state = pipeline.state_dir();
    let ledger_path = ledger::path(&state);
    let store = CheckpointStore::new(&state);
    if let Some(purge) = ledger.purge.clone() {
        let file = dead_letter_file(pipeline)?;
        use std::os::unix::fs::MetadataExt;
        let replaced =
            std::fs::metadata(&file).is_ok_and(|m| m.ino() == purge.inode && m.len() == purge.to);
        if let Some(mut cp) = store.load()? {
            if replaced && checkpointed_len(&cp) == Some(purge.from) {
                cp.sinks.insert(
                    DEAD_LETTER_SINK.to_string(),
                    serde_json::json!({ "bytes": purge.to }),
                );
                store.save(&cp)?;
                notes.push(format!(
                    "finished an interrupted purge: the checkpoint now records {} bytes of dead letters",
                    purge.to
                ));
            }
        }
        ledger.purge = None;
        ledger.save(&ledger_path)?;
    }
    if ledger.pending.is_some() {
        let cp = store.load()?;
        if let Some(note) = replay::settle(pipeline, ledger, cp.as_ref(), None)? {
            notes.push(note);
        }
        ledger.save(&ledger_path)?;
    }
    Ok(notes)
}
