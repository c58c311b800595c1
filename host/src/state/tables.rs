//! Tables the pipeline materializes from a stream: the latest value per key,
//! a tombstone deletes. Processors read them (granted by name) through the
//! `tables` import; the table itself is fed like a sink, so its contents are
//! saved at every checkpoint and restored with the positions that built them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::connector::{Rejected, Sink};
use crate::event::Batch;

const KEEP_SNAPSHOTS: u64 = 8;

/// A table definition in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The stream it is built from (a source or stage).
    pub input: String,
    /// Top-level field of the value to key by; the event key when absent.
    pub key_field: Option<String>,
}

/// A shared, read-mostly table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Arc<RwLock<HashMap<Vec<u8>, Vec<u8>>>>,
    ready: Arc<std::sync::atomic::AtomicBool>,
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

    /// The latest value for `key`.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        rows.get(key).cloned()
    }

    /// Runs `f` over the rows under one read lock: many lookups (a plugin's
    /// `lookup-many`) take the lock once and copy each row once, into `f`'s answer.
    pub fn with_rows<T>(&self, f: impl FnOnce(&HashMap<Vec<u8>, Vec<u8>>) -> T) -> T {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        f(&rows)
    }

    /// Stores a row directly (tests; pipelines feed tables through their sink).
    #[cfg(test)]
    pub fn insert(&self, key: Vec<u8>, value: Vec<u8>) {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        rows.insert(key, value);
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
        }
    }

    fn snapshot_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}.{n}.jsonl", self.name))
    }
}

impl Sink for TableSink {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let Some(file) = position
            .and_then(|p| p.get("snapshot"))
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
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
        let rows = parse_snapshot(&bytes, position).map_err(|why| {
            anyhow!(
                "table `{}`: snapshot {} is damaged ({why}); {}",
                self.name,
                path.display(),
                hint()
            )
        })?;
        let mut table = self.table.rows.write().unwrap_or_else(|p| p.into_inner());
        table.extend(rows);
        self.saves = position
            .and_then(|p| p.get("saves"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        tracing::info!(table = %self.name, rows = table.len(), "table restored");
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        let mut rows = self.table.rows.write().unwrap_or_else(|p| p.into_inner());
        for (i, e) in batch.iter().enumerate() {
            match table_key(self.config.key_field.as_deref(), e.key, e.value) {
                Some(k) => match e.value {
                    Some(v) => {
                        rows.insert(k, v.to_vec());
                    }
                    None => {
                        rows.remove(&k);
                    }
                },
                None => rejected.push(
                    batch,
                    i,
                    match &self.config.key_field {
                        Some(f) => format!(
                            "table `{}`: the value has no usable `{f}` field to key by",
                            self.name
                        ),
                        None => format!("table `{}`: the event has no key", self.name),
                    },
                ),
            }
        }
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        // A snapshot per checkpoint keeps the table consistent with the
        // positions it reflects; tables are expected to be modest (a
        // dimension such as customers), so a full copy is fine.
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        self.saves += 1;
        let path = self.snapshot_path(self.saves);
        let tmp = path.with_extension("tmp");
        let rows_written;
        let crc;
        {
            let rows = self.table.rows.read().unwrap_or_else(|p| p.into_inner());
            let mut out = String::new();
            for (k, v) in rows.iter() {
                let line = serde_json::to_string(&(
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v),
                ))?;
                out.push_str(&line);
                out.push('\n');
            }
            rows_written = rows.len();
            crc = crc32fast::hash(out.as_bytes());
            let write = || -> std::io::Result<()> {
                // Rows are event data: readable by the owner only. A
                // leftover temp file (a crash mid-save) would keep its mode.
                let _ = std::fs::remove_file(&tmp);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(out.as_bytes())?;
                // Durable before the checkpoint that names it can commit.
                f.sync_data()
            };
            write().with_context(|| format!("writing {}", tmp.display()))?;
        }
        crate::failpoint::hit("table.snapshot.rename.before")?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        // Keep a few older snapshots: the last committed checkpoint may
        // point at one of them while later barriers are still in flight.
        if self.saves > KEEP_SNAPSHOTS {
            let _ = std::fs::remove_file(self.snapshot_path(self.saves - KEEP_SNAPSHOTS));
        }
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(json!({"snapshot": file, "saves": self.saves, "rows": rows_written, "crc32": crc}))
    }
}

/// The rows of a snapshot, checked against the row count and checksum its
/// checkpoint position recorded (positions written before they were recorded
/// are not checked).
fn parse_snapshot(
    bytes: &[u8],
    position: Option<&Value>,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, String> {
    let expected = |field: &str| position.and_then(|p| p.get(field)).and_then(Value::as_u64);
    if let Some(want) = expected("crc32") {
        let got = u64::from(crc32fast::hash(bytes));
        if got != want {
            return Err("its checksum does not match".into());
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut rows = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let row: (String, String) =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        rows.insert(row.0.into_bytes(), row.1.into_bytes());
    }
    if let Some(want) = expected("rows") {
        if rows.len() as u64 != want {
            return Err(format!(
                "{} rows, the checkpoint recorded {want}",
                rows.len()
            ));
        }
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
        };
        let sink = TableSink::new("users_t", config, table.clone(), dir.join("tables"));
        (sink, table)
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
}
