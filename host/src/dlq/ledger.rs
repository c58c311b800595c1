//! The replay ledger, `DATA_DIR/NAME/dlq-ledger.json`: which dead letters
//! were replayed, in which run, with what outcome, and the plan of a replay
//! in progress. Created `0600` (it names raw events' reasons) and replaced
//! atomically (write, fsync, rename, fsync the directory).
//!
//! Letters are keyed by the SHA-256 of their line, not by ID: a purge moves
//! lines (their offsets, hence their IDs, change) but not their bytes.
//!
//! The ledger is not what makes a replay exactly-once: the replay's sources
//! record how far each target's plan got in the pipeline's own
//! checkpoint, committed atomically with the sinks' positions. The ledger
//! holds the plan those positions index (written before the run starts), and
//! is brought up to date from the checkpoint when a run ends or, after a
//! crash, when the next `dlq` command starts.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The ledger's file name in the pipeline's state directory.
pub const FILE: &str = "dlq-ledger.json";

/// One replayed letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The replay run.
    pub run: u64,
    /// Its ID when it was replayed.
    pub id: String,
    /// The stage or sink it was sent into.
    pub to: String,
    /// `delivered`, `dead-lettered`, `filtered` or `replayed` (the run was
    /// killed: it went through, to a sink or filtered out, unrecorded which).
    pub outcome: String,
    /// Sinks that took what it became (`delivered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<String>,
    /// The new dead letter's ID (`dead-lettered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_id: Option<String>,
    /// The new dead letter's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A letter in a replay's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// Where its line starts.
    pub offset: u64,
    /// Its line's SHA-256 prefix.
    pub digest: String,
}

/// A replay that has started and not yet been recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its run number.
    pub run: u64,
    /// The dead-letter file's checkpointed length when it started: new dead
    /// letters from the replay are after this.
    pub dead_letters_from: u64,
    /// Target (stage or sink) → the letters sent into it, in order.
    pub plan: BTreeMap<String, Vec<Planned>>,
}

/// One replay run, for the history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run number.
    pub run: u64,
    /// Started, ms since the epoch.
    pub started_ms: i64,
    /// The `--filter` given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The `--to` given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Letters planned.
    pub planned: u64,
    /// Outcome → count, once recorded.
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
    /// Whether the run was killed and recorded by a later command.
    #[serde(default)]
    pub interrupted: bool,
}

/// A purge that has replaced the dead-letter file and may not yet have
/// told the checkpoint the file's new length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPurge {
    /// The checkpointed length before.
    pub from: u64,
    /// The new file's length.
    pub to: u64,
    /// The new file's inode: the file at the path is the new one only if
    /// this matches (lengths alone could match by chance).
    pub inode: u64,
}

/// The whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Line digest → what its replay did.
    #[serde(default)]
    pub letters: BTreeMap<String, Record>,
    /// Every replay run, oldest first.
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// The replay in progress (or killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The purge in progress (or killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<PendingPurge>,
}

/// Where a pipeline's ledger lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl Ledger {
    /// The ledger at `path`, or an empty one when there is none.
    pub fn load(path: &Path) -> Result<Ledger> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the replay ledger {} is damaged; restore it from a backup (deleting it forgets which dead letters were replayed)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the ledger at `path` atomically, `0600`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// The next run's number.
    pub fn next_run(&self) -> u64 {
        self.runs.last().map_or(1, |r| r.run + 1)
    }

    /// The outcome recorded for the letter with line digest `digest`.
    pub fn outcome(&self, digest: &str) -> Option<&str> {
        self.letters.get(digest).map(|r| r.outcome.as_str())
    }
}

/// Replaces `path` with `bytes` so that after a crash either the old or the
/// new file is there: a private temporary file, fsynced, renamed over it,
/// then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "ledger".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saves_private_and_loads_what_it_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = path(dir.path());
        assert_eq!(Ledger::load(&p).expect("none yet"), Ledger::default());
        let mut l = Ledger::default();
        l.letters.insert(
            "abc".into(),
            Record {
                run: 1,
                id: "0-abc".into(),
                to: "s".into(),
                outcome: "delivered".into(),
                sinks: vec!["out".into()],
                new_id: None,
                reason: None,
            },
        );
        l.runs.push(RunRecord {
            run: 1,
            ..Default::default()
        });
        l.save(&p).expect("save");
        let mode = std::fs::metadata(&p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Ledger::load(&p).expect("load");
        assert_eq!(back, l);
        assert_eq!(back.next_run(), 2);
        assert_eq!(back.outcome("abc"), Some("delivered"));
        std::fs::write(&p, "{\"letters\": [").expect("damage");
        let err = format!("{:#}", Ledger::load(&p).expect_err("damaged"));
        assert!(err.contains("damaged"), "{err}");
    }
}
