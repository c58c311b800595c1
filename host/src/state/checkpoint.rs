//! The embedded checkpoint store: one JSON document per pipeline, replaced
//! atomically (write, fsync, rename, fsync the directory), holding the source
//! positions and the sink positions that match them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One consistent cut of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Increases with every checkpoint.
    pub id: u64,
    /// Position of each source after the last event covered.
    pub sources: BTreeMap<String, Value>,
    /// Position of each sink (e.g. durable file length) matching `sources`.
    pub sinks: BTreeMap<String, Value>,
    /// Each processor stage's saved state (`{"file": "<name>"}` under
    /// `stages/<stage>/`). `None` in checkpoints written before stages were
    /// recorded; a stage missing from `Some` was added to the pipeline since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<BTreeMap<String, Value>>,
    /// What the pipeline looked like when this was written (each source's,
    /// sink's and table's configuration hash, each stage's plugin and
    /// parameters), so a rerun can say what changed since. `None` in
    /// checkpoints written before fingerprints were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Value>,
}

/// Where a pipeline's checkpoint lives.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    /// The store in `dir` (created on first save).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("checkpoint.json"),
        }
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last saved checkpoint, if any.
    pub fn load(&self) -> Result<Option<Checkpoint>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "checkpoint {} is corrupt; {}",
                    self.path.display(),
                    super::recovery_hint(self.path.parent().unwrap_or(Path::new(".")))
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    /// Saves `checkpoint` atomically: after a crash either the old or the new
    /// one is there, never a mix.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let dir = self
            .path
            .parent()
            .context("checkpoint path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("checkpoint.json.tmp");
        {
            let mut f =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&serde_json::to_vec_pretty(checkpoint)?)?;
            f.sync_all()?;
        }
        crate::failpoint::hit("checkpoint.rename.before")?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))?;
        File::open(dir)?.sync_all()?;
        crate::failpoint::hit("checkpoint.rename.after")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically_replacing_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::new(dir.path());
        assert_eq!(store.load().expect("load"), None);
        let mut cp = Checkpoint {
            id: 1,
            ..Default::default()
        };
        cp.sources
            .insert("in".into(), serde_json::json!({"offset": 10}));
        store.save(&cp).expect("save");
        cp.id = 2;
        store.save(&cp).expect("save again");
        assert_eq!(store.load().expect("load").map(|c| c.id), Some(2));
        assert!(!dir.path().join("checkpoint.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_naming_the_file_and_the_way_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::new(dir.path());
        let cp = Checkpoint {
            id: 3,
            stages: Some(BTreeMap::new()),
            ..Default::default()
        };
        store.save(&cp).expect("save");
        let text = std::fs::read(store.path()).expect("read");
        // Torn (truncated) and overwritten with garbage.
        for bytes in [&text[..text.len() / 2], b"\0\0\0\0".as_slice()] {
            std::fs::write(store.path(), bytes).expect("corrupt");
            let err = format!("{:#}", store.load().expect_err("corrupt"));
            assert!(
                err.contains(&format!("checkpoint {} is corrupt", store.path().display())),
                "{err}"
            );
            assert!(
                err.contains(&format!(
                    "delete the state directory {}",
                    dir.path().display()
                )),
                "{err}"
            );
        }
    }
}
