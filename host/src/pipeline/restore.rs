//! Restoring a processor stage's keyed state from the checkpoint a run
//! resumes from. The state must be the one saved at that checkpoint's
//! barrier: if it is missing or damaged the run stops with an error naming
//! the file, because starting the stage empty would give wrong results with
//! exit status 0 (see `state::recovery_hint` for why there is no fallback).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use crate::state::{keyed, recovery_hint, Checkpoint, KeyedState};

/// The state `stage` resumes with from `checkpoint`; `None` when it starts
/// empty by design: the checkpoint predates the stage, or the stage drained
/// its inputs in the run that wrote it (the final checkpoint).
pub(crate) fn stage_state(
    state_dir: &Path,
    checkpoint: &Checkpoint,
    stage: &str,
) -> Result<Option<KeyedState>> {
    let path = match &checkpoint.stages {
        Some(stages) => match stages.get(stage) {
            Some(record) if record.get("ended") == Some(&Value::Bool(true)) => {
                tracing::info!(
                    stage,
                    checkpoint = checkpoint.id,
                    "the stage drained its inputs in the last run (windows closed, timers fired); it starts empty"
                );
                return Ok(None);
            }
            Some(record) if record.get("changelog").is_some() => {
                tracing::info!(
                    stage,
                    checkpoint = checkpoint.id,
                    topic = %record["changelog"],
                    "the stage keeps its state per partition in a changelog topic: each partition's is read back when the stage first sees it"
                );
                return Ok(None);
            }
            Some(record) => {
                let file = record.get("file").and_then(Value::as_str).unwrap_or("");
                // The checkpoint is input: it may only name a file in the
                // stage's own directory.
                if file.is_empty()
                    || Path::new(file).file_name() != Some(std::ffi::OsStr::new(file))
                {
                    bail!(
                        "stage `{stage}`: checkpoint {} records its state as {record}, which is not a file name; {}",
                        checkpoint.id,
                        recovery_hint(state_dir)
                    );
                }
                state_dir.join("stages").join(stage).join(file)
            }
            None => {
                tracing::info!(
                    stage,
                    checkpoint = checkpoint.id,
                    "the stage is not in the checkpoint (added since); it starts empty"
                );
                return Ok(None);
            }
        },
        // Written before checkpoints recorded stages: the file of its id.
        None => keyed::state_file(state_dir, stage, checkpoint.id),
    };
    if !path.exists() {
        bail!(
            "stage `{stage}`: its state for checkpoint {}, {}, is missing; {}",
            checkpoint.id,
            path.display(),
            recovery_hint(state_dir)
        );
    }
    let state = keyed::load_saved(&path).map_err(|e| {
        anyhow!(
            "stage `{stage}`: its state for checkpoint {} cannot be restored: {e:#}; {}",
            checkpoint.id,
            recovery_hint(state_dir)
        )
    })?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn saved(dir: &Path, stage: &str, file: &str) -> KeyedState {
        let mut s = KeyedState::default();
        s.put(b"EUR".to_vec(), b"12".to_vec(), None);
        s.commit();
        s.save(&dir.join("stages").join(stage).join(file))
            .expect("save");
        s
    }

    fn checkpoint(stages: Option<BTreeMap<String, Value>>) -> Checkpoint {
        Checkpoint {
            id: 7,
            stages,
            ..Default::default()
        }
    }

    #[test]
    fn the_recorded_file_is_restored_and_a_stage_added_since_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        saved(dir.path(), "agg", "7.state");
        let cp = checkpoint(Some(BTreeMap::from([
            ("agg".to_string(), json!({"file": "7.state"})),
            ("done".to_string(), json!({"ended": true})),
        ])));
        let s = stage_state(dir.path(), &cp, "agg")
            .expect("restore")
            .expect("state");
        assert_eq!(s.get(b"EUR"), Some(b"12".to_vec()));
        for fresh in ["new_stage", "done"] {
            assert!(stage_state(dir.path(), &cp, fresh)
                .expect("restore")
                .is_none());
        }
        // An older checkpoint without the record: the file of its id.
        let legacy = checkpoint(None);
        assert!(stage_state(dir.path(), &legacy, "agg")
            .expect("legacy")
            .is_some());
    }

    #[test]
    fn missing_damaged_or_misnamed_state_stops_the_restore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shown = dir.path().display().to_string();
        let record = |file: &str| {
            checkpoint(Some(BTreeMap::from([(
                "agg".to_string(),
                json!({ "file": file }),
            )])))
        };
        let err = |cp: &Checkpoint| {
            format!(
                "{:#}",
                stage_state(dir.path(), cp, "agg").expect_err("must not start empty")
            )
        };
        let path = dir.path().join("stages").join("agg").join("7.state");
        // Missing, recorded or not (an older checkpoint names it by id).
        for cp in [record("7.state"), checkpoint(None)] {
            let e = err(&cp);
            assert!(
                e.contains(&format!(
                    "stage `agg`: its state for checkpoint 7, {}, is missing",
                    path.display()
                )),
                "{e}"
            );
            assert!(
                e.contains(&format!("delete the state directory {shown}")),
                "{e}"
            );
        }
        // Damaged.
        saved(dir.path(), "agg", "7.state");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 5;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let e = err(&record("7.state"));
        assert!(e.contains("checksum does not match"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(
            e.contains(&format!("delete the state directory {shown}")),
            "{e}"
        );
        // A record naming a path outside the stage's directory.
        let e = err(&record("../../checkpoint.json"));
        assert!(e.contains("which is not a file name"), "{e}");
    }
}
