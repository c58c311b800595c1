//! `sluice dlq purge`: removes selected dead letters by rewriting the file.
//!
//! The new file is written beside the old one (`0600`), fsynced and renamed
//! over it, so a reader sees the old file or the new one, never a mix. The
//! checkpoint records the dead-letter file's length (a rerun cuts the file
//! back to it), so it must learn the new length too: the ledger notes the
//! purge (old and new length) before the rename, and the checkpoint is
//! updated after it; a purge killed in between is finished by the next
//! `sluice dlq` command ([`super::recover`]). Lines that are not dead
//! letters are kept: nothing is deleted that could not be read.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};

use anyhow::{Context, Result};

use super::ledger::{self, Ledger, PendingPurge};
use super::select::Selection;
use super::store::{self, Item};
use super::{checkpointed_len, dead_letter_file};
use crate::config::Pipeline;
use crate::pipeline::DEAD_LETTER_SINK;
use crate::state::{CheckpointStore, RunLock};

/// What a purge did (or would do).
#[derive(Debug, Default, serde::Serialize)]
pub struct PurgeReport {
    /// Letters removed.
    pub removed: u64,
    /// Letters kept.
    pub kept: u64,
    /// Lines kept that are not dead letters.
    pub bad_lines: u64,
    /// The file's length before and after.
    pub bytes_before: u64,
    /// After.
    pub bytes_after: u64,
    /// What an earlier, interrupted command left and this one finished.
    pub recovered: Vec<String>,
}

/// Removes the letters `selection` picks (only those replayed before, with
/// `replayed_only`); with `dry_run`, only counts them.
pub fn purge(
    pipeline: &Pipeline,
    selection: &Selection,
    replayed_only: bool,
    dry_run: bool,
) -> Result<PurgeReport> {
    let state = pipeline.state_dir();
    let _lock = RunLock::acquire(&state, "sluice dlq purge")?;
    let ledger_path = ledger::path(&state);
    let mut ledger = Ledger::load(&ledger_path)?;
    let mut report = PurgeReport {
        recovered: super::recover(pipeline, &mut ledger)?,
        ..PurgeReport::default()
    };
    let file = dead_letter_file(pipeline)?;
    let store = CheckpointStore::new(&state);
    let cp = store.load()?;
    let on_disk = match std::fs::metadata(&file) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    // What a rerun keeps: anything after the checkpointed length is cut off
    // by the next run anyway (it was written after the last checkpoint).
    let end = cp.as_ref().and_then(checkpointed_len).unwrap_or(on_disk);
    report.bytes_before = end;
    let mut removed: Vec<(u64, u64)> = Vec::new();
    let mut digests = HashSet::new();
    store::scan(&file, 0, Some(end), |item| {
        match item {
            Item::Bad(_) => report.bad_lines += 1,
            Item::Letter(l) => {
                let replayed = ledger.outcome(&l.digest);
                if selection.matches(&l, replayed) && (!replayed_only || replayed.is_some()) {
                    report.removed += 1;
                    digests.insert(l.digest.clone());
                    match removed.last_mut() {
                        Some((_, e)) if *e == l.offset => *e = l.offset + l.len,
                        _ => removed.push((l.offset, l.offset + l.len)),
                    }
                } else {
                    report.kept += 1;
                }
            }
        }
        Ok(true)
    })?;
    let removed_bytes: u64 = removed.iter().map(|(s, e)| e - s).sum();
    report.bytes_after = end - removed_bytes;
    if dry_run || (report.removed == 0 && end == on_disk) {
        return Ok(report);
    }

    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.purge.tmp",
        file.file_name()
            .map_or_else(|| "dead-letters".into(), |n| n.to_string_lossy())
    ));
    copy_without(&file, &tmp, end, &removed)?;
    if cp.is_some() {
        use std::os::unix::fs::MetadataExt;
        ledger.purge = Some(PendingPurge {
            from: end,
            to: report.bytes_after,
            inode: std::fs::metadata(&tmp)?.ino(),
        });
        ledger.save(&ledger_path)?;
    }
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    File::open(dir)?.sync_all()?;
    if let Some(mut cp) = cp {
        cp.sinks.insert(
            DEAD_LETTER_SINK.to_string(),
            serde_json::json!({ "bytes": report.bytes_after }),
        );
        store.save(&cp)?;
    }
    ledger.purge = None;
    ledger.letters.retain(|d, _| !digests.contains(d));
    ledger.save(&ledger_path)?;
    Ok(report)
}

/// Copies `from[..end]` to a new private file `to`, leaving out the byte
/// ranges `skip` (sorted, disjoint), and fsyncs it.
fn copy_without(
    from: &std::path::Path,
    to: &std::path::Path,
    end: u64,
    skip: &[(u64, u64)],
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut at = 0u64;
    for &(start, stop) in skip.iter().chain(std::iter::once(&(end, end))) {
        src.seek(SeekFrom::Start(at))?;
        let n = std::io::copy(&mut (&mut src).take(start - at), &mut w)?;
        anyhow::ensure!(
            n == start - at,
            "{} changed while it was being purged",
            from.display()
        );
        at = stop;
    }
    let out = w.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    Ok(())
}
