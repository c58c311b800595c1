//! Tables the pipeline materializes from a stream: the latest value per key,
//! a tombstone deletes. Processors read them (granted by name) through the
//! `tables` import; the table itself is fed like a sink, so its contents are
//! saved at every checkpoint and restored with the positions that built them.
//!
//! A checkpoint saves only the rows changed since the previous one (a delta,
//! `<table>.<n>.delta.jsonl`: `[key, value]` per row written, `[key, null]`
//! per row deleted) on top of an occasional full snapshot (`<table>.<n>.jsonl`,
//! the format every snapshot had before). The checkpoint position lists the
//! snapshot and its deltas with each file's checksum, so restore applies
//! exactly the files that checkpoint saw. A new full snapshot is written once
//! the deltas would add up to half of the last one (at least 64 KiB) or
//! after 128 deltas.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

pub use super::rows::Rows;
pub use super::table_row::Row;
use crate::connector::{Rejected, Sink};
use crate::event::Batch;

/// Checkpoints whose files are kept behind the newest (checkpoints commit
/// in order, one barrier at a time, so the last committed lags at most one).
const KEEP_SNAPSHOTS: u64 = 8;
/// Deltas on one snapshot at most.
const MAX_DELTAS: usize = 128;
/// Deltas may add up to this much however small their snapshot.
const COMPACT_FLOOR: u64 = 64 << 10;
/// Changed keys remembered however small the table.
const CHANGES_FLOOR: usize = 4096;

/// A table definition in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The stream it is built from (a source or stage).
    pub input: String,
    /// Top-level field of the value to key by; the event key when absent.
    pub key_field: Option<String>,
    /// Most bytes the table may hold in the host's memory, in MiB: keys and
    /// values plus [`ROW_OVERHEAD`] per row. A row that would take it over
    /// is refused (dead-lettered); updates that do not grow it and deletes
    /// always apply.
    #[serde(default = "default_max_mb")]
    pub max_mb: u64,
}

impl TableConfig {
    /// What identifies the table in a checkpoint: what it is built from,
    /// not its bound, so raising `max_mb` resumes. The text is what the
    /// whole configuration printed before `max_mb` existed, so checkpoints
    /// taken then still match.
    pub fn identity(&self) -> String {
        format!(
            "TableConfig {{ input: {:?}, key_field: {:?} }}",
            self.input, self.key_field
        )
    }
}

/// The default `max_mb` of a table.
pub const DEFAULT_MAX_MB: u64 = 256;

fn default_max_mb() -> u64 {
    DEFAULT_MAX_MB
}

/// Bytes a row costs beyond its key, value and field table, so a table of
/// many tiny rows is bounded too: its 40-byte slot in [`Rows`], which is
/// kept between a quarter and three quarters full (160 bytes a row at the
/// emptiest), and the allocation's header and rounding.
pub const ROW_OVERHEAD: u64 = 192;

fn row_bytes(row: &Row) -> u64 {
    row.len() as u64 + ROW_OVERHEAD
}

/// A shared, read-mostly table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Arc<RwLock<Rows>>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// The run failed before the table loaded: it never will.
    abandoned: Arc<std::sync::atomic::AtomicBool>,
}

impl Table {
    /// True once the table holds what its sources had when they started
    /// (their snapshots): stages reading it wait until then.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks the table loaded.
    pub fn set_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The run failed: a table not loaded by now never will be, and the
    /// stages waiting for it must give up rather than wait for ever (in
    /// `sluice serve` a waiting stage would otherwise outlive its run).
    pub fn abandon(&self) {
        if !self.is_ready() {
            self.abandoned
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// True once [`Table::abandon`] found the table not loaded.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The latest value for `key`.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.get(key).map(|r| r.value().to_vec())
    }

    /// Runs `f` over the rows under one read lock: many lookups (a plugin's
    /// `lookup-many`) take the lock once and copy each row once, into `f`'s answer.
    pub fn with_rows<T>(&self, f: impl FnOnce(&Rows) -> T) -> T {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        f(&rows)
    }

    /// Stores a row directly, outside the `max_mb` accounting: for tests
    /// and the fuzz targets. Pipelines feed tables through their
    /// [`TableSink`], which bounds them.
    #[doc(hidden)]
    pub fn insert(&self, key: Vec<u8>, value: Vec<u8>) {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        rows.insert(Row::new(&key, &value));
    }

    /// Every row as `key → value` (tests).
    #[cfg(test)]
    pub fn to_map(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.iter()
            .map(|r| (r.key().to_vec(), r.value().to_vec()))
            .collect()
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key a table stores `value` under: the named field's value as text
/// (strings unquoted, other JSON as written), or the event key.
pub fn table_key(
    key_field: Option<&str>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Option<Vec<u8>> {
    match key_field {
        None => key.map(<[u8]>::to_vec),
        Some(field) => {
            let text = |v: &Value| match v {
                Value::Null => None,
                Value::String(s) => Some(s.as_bytes().to_vec()),
                other => Some(other.to_string().into_bytes()),
            };
            match value {
                Some(value) => {
                    let v: Value = serde_json::from_slice(value).ok()?;
                    text(v.get(field)?)
                }
                // A tombstone has only its key: a change-capture key is an
                // object of key columns (`{"id": "5"}`), else the key itself.
                None => {
                    let key = key?;
                    match serde_json::from_slice::<Value>(key) {
                        Ok(Value::Object(m)) => text(m.get(field)?),
                        Ok(Value::String(s)) => Some(s.into_bytes()),
                        _ => Some(key.to_vec()),
                    }
                }
            }
        }
    }
}

/// Feeds a [`Table`] from its input stream.
pub struct TableSink {
    name: String,
    config: TableConfig,
    table: Table,
    dir: PathBuf,
    saves: u64,
    /// Keys written or deleted since the last save (`None`: more than a
    /// delta is worth, the next save is a full snapshot).
    changed: Option<HashSet<Vec<u8>>>,
    /// The files the last save's position lists, which the next builds on.
    chain: Option<Chain>,
    /// (save, the snapshot its chain starts from) of recent saves.
    history: VecDeque<(u64, u64)>,
    /// What the rows take, by [`row_bytes`].
    bytes: u64,
}

/// A snapshot and the deltas on top of it, as a position lists them.
#[derive(Debug, Clone)]
struct Chain {
    snapshot: String,
    snapshot_n: u64,
    crc: u32,
    snapshot_bytes: u64,
    deltas: Vec<(String, u32)>,
    delta_bytes: u64,
}

impl TableSink {
    /// A sink that maintains `table`, saving snapshots under `dir`.
    pub fn new(name: &str, config: TableConfig, table: Table, dir: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            config,
            table,
            dir,
            saves: 0,
            changed: Some(HashSet::new()),
            chain: None,
            history: VecDeque::new(),
            bytes: 0,
        }
    }

    /// What the rows take now, by the `max_mb` measure.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn snapshot_name(&self, n: u64) -> String {
        format!("{}.{n}.jsonl", self.name)
    }

    fn delta_name(&self, n: u64) -> String {
        format!("{}.{n}.delta.jsonl", self.name)
    }

    /// The save number of one of this table's files.
    fn file_number(&self, file: &str) -> Option<u64> {
        let rest = file.strip_prefix(&self.name)?.strip_prefix('.')?;
        let n = rest
            .strip_suffix(".delta.jsonl")
            .or_else(|| rest.strip_suffix(".jsonl"))?;
        n.parse().ok()
    }

    /// Reads a file a checkpoint position names, checking it against the
    /// checksum recorded (when one was: older positions have none).
    fn read_named(&self, file: &str, crc: Option<u64>) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        let hint = || super::recovery_hint(self.dir.parent().unwrap_or(&self.dir));
        if Path::new(file).file_name() != Some(std::ffi::OsStr::new(file)) {
            bail!(
                "table `{}`: the checkpoint names snapshot {file:?}, which is not a file name in {}; {}",
                self.name,
                self.dir.display(),
                hint()
            );
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "table `{}`: its snapshot {} for the checkpoint being restored is missing; {}",
                self.name,
                path.display(),
                hint()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("table `{}`: reading {}", self.name, path.display()))
            }
        };
        if crc.is_some_and(|want| u64::from(crc32fast::hash(&bytes)) != want) {
            bail!(
                "table `{}`: snapshot {} is damaged (its checksum does not match); {}",
                self.name,
                path.display(),
                hint()
            );
        }
        Ok(bytes)
    }

    /// Writes `text` to `file` durably and atomically; returns its checksum.
    fn write_file(&self, file: &str, text: &str) -> Result<u32> {
        let path = self.dir.join(file);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            // Rows are event data: readable by the owner only. A
            // leftover temp file (a crash mid-save) would keep its mode.
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            // Durable before the checkpoint that names it can commit.
            f.sync_data()
        };
        write().with_context(|| format!("writing {}", tmp.display()))?;
        crate::failpoint::hit("table.snapshot.rename.before")?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(crc32fast::hash(text.as_bytes()))
    }

    /// Removes the files no checkpoint of the last [`KEEP_SNAPSHOTS`] needs.
    fn prune(&mut self) {
        let keep_from = self.saves.saturating_sub(KEEP_SNAPSHOTS);
        while self.history.len() > 1 && self.history.front().is_some_and(|(n, _)| *n < keep_from) {
            self.history.pop_front();
        }
        let Some(&(_, floor)) = self.history.front() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let old = name
                .to_str()
                .and_then(|f| self.file_number(f))
                .is_some_and(|n| n < floor);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn row_line(k: &[u8], v: Option<&[u8]>) -> Result<String> {
    let v = v.map(String::from_utf8_lossy);
    let mut line = serde_json::to_string(&(String::from_utf8_lossy(k), v))?;
    line.push('\n');
    Ok(line)
}

impl Sink for TableSink {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let Some(position) = position else {
            return Ok(());
        };
        let Some(file) = position.get("snapshot").and_then(Value::as_str) else {
            return Ok(());
        };
        let hint = || super::recovery_hint(self.dir.parent().unwrap_or(&self.dir));
        let damaged = |file: &str, why: String| {
            anyhow!(
                "table `{}`: snapshot {} is damaged ({why}); {}",
                self.name,
                self.dir.join(file).display(),
                hint()
            )
        };
        let crc = position.get("crc32").and_then(Value::as_u64);
        let bytes = self.read_named(file, crc)?;
        let mut rows = parse_snapshot(&bytes).map_err(|why| damaged(file, why))?;
        let mut chain = Chain {
            snapshot: file.to_string(),
            snapshot_n: self.file_number(file).unwrap_or(0),
            crc: crc32fast::hash(&bytes),
            snapshot_bytes: bytes.len() as u64,
            deltas: Vec::new(),
            delta_bytes: 0,
        };
        let deltas = position.get("deltas").and_then(Value::as_array);
        for d in deltas.into_iter().flatten() {
            let (Some(file), Some(crc)) = (
                d.get("file").and_then(Value::as_str),
                d.get("crc32").and_then(Value::as_u64),
            ) else {
                bail!(
                    "table `{}`: the checkpoint lists delta {d}, which has no file and checksum; {}",
                    self.name,
                    hint()
                );
            };
            let bytes = self.read_named(file, Some(crc))?;
            apply_delta(&mut rows, &bytes).map_err(|why| damaged(file, why))?;
            chain
                .deltas
                .push((file.to_string(), crc32fast::hash(&bytes)));
            chain.delta_bytes += bytes.len() as u64;
        }
        if let Some(want) = position.get("rows").and_then(Value::as_u64) {
            if rows.len() as u64 != want {
                return Err(damaged(
                    file,
                    format!("{} rows, the checkpoint recorded {want}", rows.len()),
                ));
            }
        }
        let mut table = self.table.rows.write().unwrap_or_else(|p| p.into_inner());
        for (k, v) in rows {
            table.insert(Row::new(&k, &v));
        }
        // A checkpoint saved under a larger `max_mb` still restores whole;
        // only new growth is refused until it is back under the bound.
        self.bytes = table.iter().map(row_bytes).sum();
        self.saves = position.get("saves").and_then(Value::as_u64).unwrap_or(0);
        self.history = VecDeque::from([(self.saves, chain.snapshot_n)]);
        self.chain = Some(chain);
        tracing::info!(table = %self.name, rows = table.len(), "table restored");
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        let limit = self.config.max_mb.saturating_mul(1 << 20);
        // Keys and rows (each with its field table, a scan of its value) are
        // built before the write lock is taken: readers wait only for the
        // inserts.
        let key_field = self.config.key_field.as_deref();
        let prepared: Vec<_> = batch
            .iter()
            .map(|e| {
                let k = table_key(key_field, e.key, e.value)?;
                let row = e.value.map(|v| Row::new(&k, v));
                Some((k, row))
            })
            .collect();
        let mut rows = self.table.rows.write().unwrap_or_else(|p| p.into_inner());
        for (i, (e, prepared)) in batch.iter().zip(prepared).enumerate() {
            let Some((k, row)) = prepared else {
                rejected.push(
                    batch,
                    i,
                    match &self.config.key_field {
                        Some(f) => format!(
                            "table `{}`: the value has no usable `{f}` field to key by",
                            self.name
                        ),
                        None => format!("table `{}`: the event has no key", self.name),
                    },
                );
                continue;
            };
            let changed = match (row, e.value) {
                (Some(row), Some(v)) => {
                    let old = rows.get(&k).map_or(0, row_bytes);
                    let new = row_bytes(&row);
                    if new > old && self.bytes.saturating_sub(old) + new > limit {
                        rejected.push(
                            batch,
                            i,
                            format!(
                                "table `{}` is full: its rows take {} bytes and this one {new} more than the limit of `max_mb: {}` allows; the row is not stored (raise `tables.{}.max_mb`)",
                                self.name, self.bytes, self.config.max_mb, self.name
                            ),
                        );
                        continue;
                    }
                    self.bytes = self.bytes.saturating_sub(old) + new;
                    rows.insert(row).as_ref().map(Row::value) != Some(v)
                }
                _ => match rows.remove(&k) {
                    Some(o) => {
                        self.bytes = self.bytes.saturating_sub(row_bytes(&o));
                        true
                    }
                    None => false,
                },
            };
            if changed {
                if let Some(keys) = &mut self.changed {
                    keys.insert(k);
                    // More changes than rows: a snapshot is no larger than
                    // the delta, and the names are not kept without bound.
                    if keys.len() > rows.len().max(CHANGES_FLOOR) {
                        self.changed = None;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        self.saves += 1;
        let n = self.saves;
        let rows = self.table.rows.read().unwrap_or_else(|p| p.into_inner());
        let rows_written = rows.len();
        // A delta of the rows changed since the last save, while the bounds
        // allow; else a full snapshot, which starts a new chain.
        let mut delta = None;
        if let (Some(chain), Some(keys)) = (&self.chain, &self.changed) {
            if chain.deltas.len() < MAX_DELTAS {
                let mut text = String::new();
                for k in keys {
                    text.push_str(&row_line(k, rows.get(k).map(Row::value))?);
                }
                let grown = chain.delta_bytes + text.len() as u64;
                if grown <= (chain.snapshot_bytes / 2).max(COMPACT_FLOOR) {
                    delta = Some(text);
                }
            }
        }
        let chain = match delta {
            Some(text) => {
                let file = self.delta_name(n);
                let crc = self.write_file(&file, &text)?;
                let mut chain = self.chain.clone().context("a delta has a chain")?;
                chain.deltas.push((file, crc));
                chain.delta_bytes += text.len() as u64;
                chain
            }
            None => {
                let mut text = String::new();
                for r in rows.iter() {
                    text.push_str(&row_line(r.key(), Some(r.value()))?);
                }
                let file = self.snapshot_name(n);
                let crc = self.write_file(&file, &text)?;
                Chain {
                    snapshot: file,
                    snapshot_n: n,
                    crc,
                    snapshot_bytes: text.len() as u64,
                    deltas: Vec::new(),
                    delta_bytes: 0,
                }
            }
        };
        drop(rows);
        self.changed = Some(HashSet::new());
        self.history.push_back((n, chain.snapshot_n));
        let deltas: Vec<Value> = chain
            .deltas
            .iter()
            .map(|(file, crc)| json!({"file": file, "crc32": crc}))
            .collect();
        let mut position = json!({
            "snapshot": chain.snapshot,
            "saves": n,
            "rows": rows_written,
            "crc32": chain.crc,
        });
        if !deltas.is_empty() {
            position["deltas"] = Value::Array(deltas);
        }
        self.chain = Some(chain);
        self.prune();
        Ok(position)
    }
}

/// Applies a delta's lines (`[key, value]` or `[key, null]`) to `rows`.
fn apply_delta(rows: &mut HashMap<Vec<u8>, Vec<u8>>, bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    for (n, line) in text.lines().enumerate() {
        let row: (String, Option<String>) =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        match row.1 {
            Some(v) => rows.insert(row.0.into_bytes(), v.into_bytes()),
            None => rows.remove(row.0.as_bytes()),
        };
    }
    Ok(())
}

/// The rows of a full snapshot.
fn parse_snapshot(bytes: &[u8]) -> Result<HashMap<Vec<u8>, Vec<u8>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut rows = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let row: (String, String) =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        rows.insert(row.0.into_bytes(), row.1.into_bytes());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BatchBuilder;

    fn users_sink(dir: &Path) -> (TableSink, Table) {
        let table = Table::default();
        let config = TableConfig {
            input: "users".into(),
            key_field: Some("id".into()),
            max_mb: DEFAULT_MAX_MB,
        };
        let sink = TableSink::new("users_t", config, table.clone(), dir.join("tables"));
        (sink, table)
    }

    #[test]
    fn a_tables_identity_is_its_input_and_key_as_printed_before_max_mb() {
        let c = |max_mb| TableConfig {
            input: "users".into(),
            key_field: Some("id".into()),
            max_mb,
        };
        assert_eq!(
            c(1).identity(),
            r#"TableConfig { input: "users", key_field: Some("id") }"#
        );
        assert_eq!(c(1).identity(), c(DEFAULT_MAX_MB).identity());
    }

    #[test]
    fn a_full_table_refuses_growth_but_applies_updates_that_fit_and_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = Table::default();
        let config = TableConfig {
            input: "users".into(),
            key_field: Some("id".into()),
            max_mb: 1,
        };
        let mut sink = TableSink::new("users_t", config, table.clone(), dir.path().join("t"));
        sink.open(None).expect("fresh");
        // A hostile stream of distinct keys, each value 1 KiB: far more
        // than 1 MiB in all.
        let pad = "x".repeat(1000);
        let values: Vec<String> = (0..2000)
            .map(|i| format!(r#"{{"id":{i},"p":"{pad}"}}"#))
            .collect();
        let mut b = BatchBuilder::new("users", Arc::from("users"), values.len());
        for (i, v) in values.iter().enumerate() {
            b.push(None, Some(v.as_bytes()), &[], 0, i as u64);
        }
        let mut rejected = Rejected::default();
        sink.write(&Arc::new(b.finish()), &mut rejected)
            .expect("write");
        assert!(sink.bytes() <= 1 << 20, "{} bytes held", sink.bytes());
        let kept = table.len();
        assert!(
            kept > 800 && kept < 1000,
            "{kept} rows of about 1.2 KiB (value, field table, overhead) fit in 1 MiB"
        );
        assert_eq!(rejected.len(), 2000 - kept);
        let reasons: Vec<String> = rejected.drain().map(|(_, _, r)| r).collect();
        let reason = &reasons[0];
        assert!(
            reason.contains("table `users_t` is full")
                && reason.contains("raise `tables.users_t.max_mb`"),
            "{reason}"
        );
        // Full, an update that does not grow a row applies; a delete frees
        // room for a new key.
        let mut b = BatchBuilder::new("users", Arc::from("users"), 3);
        let same = format!(r#"{{"id":0,"p":"{}"}}"#, "y".repeat(1000));
        b.push(None, Some(same.as_bytes()), &[], 0, 0);
        b.push(Some(br#"{"id":1}"#), None, &[], 0, 1);
        let fresh = format!(r#"{{"id":"new","p":"{pad}"}}"#);
        b.push(None, Some(fresh.as_bytes()), &[], 0, 2);
        let mut rejected = Rejected::default();
        sink.write(&Arc::new(b.finish()), &mut rejected)
            .expect("write");
        assert_eq!(rejected.len(), 0);
        assert_eq!(table.get(b"0"), Some(same.into_bytes()));
        assert_eq!(table.get(b"1"), None);
        assert!(table.get(b"new").is_some());
        assert_eq!(table.len(), kept);
        // The measure survives a checkpoint and a restore.
        let position = sink.flush(&mut rejected).expect("flush");
        let held = sink.bytes();
        let back_table = Table::default();
        let config = TableConfig {
            input: "users".into(),
            key_field: Some("id".into()),
            max_mb: 1,
        };
        let mut back = TableSink::new("users_t", config, back_table, dir.path().join("t"));
        back.open(Some(&position)).expect("restore");
        assert_eq!(back.bytes(), held);
    }

    #[test]
    fn a_missing_or_damaged_snapshot_stops_the_restore_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sink, _) = users_sink(dir.path());
        sink.open(None).expect("fresh");
        let mut b = BatchBuilder::new("users", Arc::from("users"), 3);
        for (i, v) in [
            r#"{"id":1,"n":"a"}"#,
            r#"{"id":2,"n":"b"}"#,
            r#"{"id":3,"n":"c"}"#,
        ]
        .iter()
        .enumerate()
        {
            b.push(None, Some(v.as_bytes()), &[], 0, i as u64);
        }
        let mut rejected = Rejected::default();
        sink.write(&Arc::new(b.finish()), &mut rejected)
            .expect("write");
        let position = sink.flush(&mut rejected).expect("flush");
        assert_eq!(position["rows"], json!(3));
        let file = dir
            .path()
            .join("tables")
            .join(position["snapshot"].as_str().expect("name"));

        let (mut back, table) = users_sink(dir.path());
        back.open(Some(&position)).expect("intact snapshot");
        assert_eq!(table.get(b"2"), Some(br#"{"id":2,"n":"b"}"#.to_vec()));

        let good = std::fs::read(&file).expect("read");
        let restore = || {
            let (mut s, _) = users_sink(dir.path());
            format!(
                "{:#}",
                s.open(Some(&position)).expect_err("must not restore")
            )
        };
        let state_dir = dir.path().display().to_string();
        // A dropped last line still parses: only the checksum catches it.
        let cut = good[..good.len() - 1]
            .iter()
            .rposition(|c| *c == b'\n')
            .expect("two lines");
        for (what, bytes) in [("torn", &good[..cut + 1]), ("garbage", b"{{{{".as_slice())] {
            std::fs::write(&file, bytes).expect("write");
            let err = restore();
            assert!(
                err.contains(&format!(
                    "snapshot {} is damaged (its checksum does not match)",
                    file.display()
                )),
                "{what}: {err}"
            );
            assert!(err.contains(&state_dir), "{what}: {err}");
        }
        std::fs::remove_file(&file).expect("remove");
        let err = restore();
        assert!(
            err.contains(&format!(
                "{} for the checkpoint being restored is missing",
                file.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("delete the state directory {state_dir}")),
            "{err}"
        );
        // A checkpoint naming a path outside the table directory is refused.
        let mut outside = position.clone();
        outside["snapshot"] = json!("../checkpoint.json");
        let (mut s, _) = users_sink(dir.path());
        let err = format!("{:#}", s.open(Some(&outside)).expect_err("outside"));
        assert!(err.contains("is not a file name"), "{err}");
    }

    #[test]
    fn keys_come_from_a_field_or_the_event_key() {
        assert_eq!(
            table_key(Some("id"), None, Some(br#"{"id":"5"}"#)),
            Some(b"5".to_vec())
        );
        assert_eq!(
            table_key(Some("id"), None, Some(br#"{"id":5}"#)),
            Some(b"5".to_vec())
        );
        assert_eq!(table_key(Some("id"), None, Some(br#"{"x":5}"#)), None);
        assert_eq!(table_key(None, Some(b"k"), None), Some(b"k".to_vec()));
        // Tombstones: the field from a change-capture key object.
        assert_eq!(
            table_key(Some("id"), Some(br#"{"id":"5"}"#), None),
            Some(b"5".to_vec())
        );
        assert_eq!(table_key(Some("id"), Some(b"5"), None), Some(b"5".to_vec()));
    }

    fn feed(sink: &mut TableSink, rows: &[(u64, Option<&str>)]) {
        let mut b = BatchBuilder::new("users", Arc::from("users"), rows.len());
        let keys: Vec<String> = rows
            .iter()
            .map(|(id, _)| format!(r#"{{"id":{id}}}"#))
            .collect();
        let values: Vec<Option<String>> = rows
            .iter()
            .map(|(id, n)| n.map(|n| format!(r#"{{"id":{id},"n":"{n}"}}"#)))
            .collect();
        for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
            b.push(
                Some(k.as_bytes()),
                v.as_deref().map(str::as_bytes),
                &[],
                0,
                i as u64,
            );
        }
        let mut rejected = Rejected::default();
        sink.write(&Arc::new(b.finish()), &mut rejected)
            .expect("write");
    }

    fn flush(sink: &mut TableSink) -> Value {
        sink.flush(&mut Rejected::default()).expect("flush")
    }

    fn restored(dir: &Path, position: &Value) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        let (mut s, table) = users_sink(dir);
        s.open(Some(position))?;
        Ok(table.to_map())
    }

    #[test]
    fn checkpoints_after_the_first_save_only_the_rows_changed_and_restore_them_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sink, table) = users_sink(dir.path());
        sink.open(None).expect("fresh");
        let many: Vec<(u64, Option<&str>)> = (0..5000).map(|i| (i, Some("a"))).collect();
        feed(&mut sink, &many);
        let first = flush(&mut sink);
        assert!(
            first.get("deltas").is_none(),
            "the first save is a snapshot"
        );
        feed(&mut sink, &[(1, Some("b")), (2, None), (9000, Some("new"))]);
        let second = flush(&mut sink);
        let tables = dir.path().join("tables");
        let size = |f: &Value| {
            std::fs::metadata(tables.join(f.as_str().expect("name")))
                .expect("file")
                .len()
        };
        let snapshot = size(&second["snapshot"]);
        let delta = size(&second["deltas"][0]["file"]);
        assert_eq!(second["snapshot"], first["snapshot"], "{second}");
        assert!(
            delta * 100 < snapshot,
            "delta {delta} bytes, snapshot {snapshot}"
        );
        feed(&mut sink, &[(9000, None), (3, Some("c"))]);
        let third = flush(&mut sink);
        assert_eq!(third["deltas"].as_array().map(Vec::len), Some(2), "{third}");
        assert_eq!(third["rows"], json!(4999));
        let want = table.to_map();
        assert_eq!(restored(dir.path(), &third).expect("restore"), want);
        // The second checkpoint's state is still there as it was.
        let two = restored(dir.path(), &second).expect("restore 2");
        assert_eq!(
            two.get(b"9000".as_slice()),
            Some(&br#"{"id":9000,"n":"new"}"#.to_vec())
        );
        assert!(!two.contains_key(b"2".as_slice()));
        // A position from before deltas (a snapshot alone) still restores.
        let old = json!({"snapshot": first["snapshot"], "saves": 1, "rows": 5000, "crc32": first["crc32"]});
        assert_eq!(
            restored(dir.path(), &old).expect("old position").len(),
            5000
        );
        // Restored, the sink continues the chain.
        let (mut back, _) = users_sink(dir.path());
        back.open(Some(&third)).expect("restore");
        feed(&mut back, &[(4, Some("d"))]);
        let fourth = flush(&mut back);
        assert_eq!(
            fourth["deltas"].as_array().map(Vec::len),
            Some(3),
            "{fourth}"
        );
        let rows = restored(dir.path(), &fourth).expect("restore 4");
        assert_eq!(
            rows.get(b"4".as_slice()),
            Some(&br#"{"id":4,"n":"d"}"#.to_vec())
        );
    }

    #[test]
    fn a_torn_or_missing_delta_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sink, _) = users_sink(dir.path());
        sink.open(None).expect("fresh");
        feed(&mut sink, &[(1, Some("a")), (2, Some("b"))]);
        flush(&mut sink);
        feed(&mut sink, &[(2, None)]);
        let position = flush(&mut sink);
        let file = dir
            .path()
            .join("tables")
            .join(position["deltas"][0]["file"].as_str().expect("delta"));
        let good = std::fs::read(&file).expect("read");
        std::fs::write(&file, &good[..good.len() - 1]).expect("tear");
        let err = format!("{:#}", restored(dir.path(), &position).expect_err("torn"));
        assert!(
            err.contains(&format!(
                "snapshot {} is damaged (its checksum does not match)",
                file.display()
            )),
            "{err}"
        );
        std::fs::remove_file(&file).expect("remove");
        let err = format!(
            "{:#}",
            restored(dir.path(), &position).expect_err("missing")
        );
        assert!(
            err.contains(&format!(
                "{} for the checkpoint being restored is missing",
                file.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn deltas_are_bounded_and_pruning_keeps_what_recent_checkpoints_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sink, table) = users_sink(dir.path());
        sink.open(None).expect("fresh");
        feed(&mut sink, &[(0, Some("start"))]);
        flush(&mut sink);
        let mut positions = Vec::new();
        for i in 1..=(MAX_DELTAS as u64 + 12) {
            feed(&mut sink, &[(i, Some("x"))]);
            positions.push(flush(&mut sink));
        }
        let longest = positions
            .iter()
            .filter_map(|p| p.get("deltas").and_then(Value::as_array).map(Vec::len))
            .max();
        assert_eq!(
            longest,
            Some(MAX_DELTAS),
            "a new snapshot after {MAX_DELTAS} deltas"
        );
        // Every checkpoint the last committed one may be still restores.
        let recent = &positions[positions.len() - KEEP_SNAPSHOTS as usize..];
        for p in recent {
            let rows = restored(dir.path(), p).expect("kept");
            assert_eq!(rows.len() as u64, p["rows"].as_u64().expect("rows"));
        }
        assert_eq!(
            restored(dir.path(), &positions[positions.len() - 1]).expect("last"),
            table.to_map()
        );
        // Files older than the snapshot the oldest of them builds on are gone.
        let floor = recent[0]["snapshot"]
            .as_str()
            .and_then(|f| sink.file_number(f))
            .expect("snapshot number");
        let last = sink.saves;
        let mut kept: Vec<u64> = std::fs::read_dir(dir.path().join("tables"))
            .expect("dir")
            .flatten()
            .filter_map(|e| sink.file_number(&e.file_name().to_string_lossy()))
            .collect();
        kept.sort_unstable();
        assert_eq!(kept, (floor..=last).collect::<Vec<u64>>());
        assert!(floor > 1, "the first chain was pruned");
        // Changing more keys than the table holds makes the next save a snapshot.
        let churn: Vec<(u64, Option<&str>)> = (0..(CHANGES_FLOOR as u64 + 10))
            .map(|i| (100_000 + i, None))
            .collect();
        feed(&mut sink, &churn);
        let p = flush(&mut sink);
        assert!(
            p.get("deltas").is_some(),
            "deleting absent rows changes nothing"
        );
        let churn: Vec<(u64, Option<&str>)> = (0..(CHANGES_FLOOR as u64 + 10))
            .map(|i| (200_000 + i, Some("y")))
            .collect();
        feed(&mut sink, &churn);
        let deletes: Vec<(u64, Option<&str>)> = churn.iter().map(|(i, _)| (*i, None)).collect();
        feed(&mut sink, &deletes);
        let p = flush(&mut sink);
        assert!(p.get("deltas").is_none(), "{p}");
    }
}
