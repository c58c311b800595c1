//! Tables the pipeline materializes from a stream: the latest value per key,
//! a tombstone deletes. Processors read them (granted by name) through the
//! `tables` import; the table itself is fed like a sink, so its contents are
//! saved at every checkpoint and restored with the positions that built them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
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
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("table `{}`: reading {}", self.name, path.display()))?;
        let mut rows = self.table.rows.write().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            let row: (String, String) = serde_json::from_str(line)
                .with_context(|| format!("table `{}`: bad snapshot line", self.name))?;
            rows.insert(row.0.into_bytes(), row.1.into_bytes());
        }
        self.saves = position
            .and_then(|p| p.get("saves"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        tracing::info!(table = %self.name, rows = rows.len(), "table restored");
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
            std::fs::write(&tmp, out).with_context(|| format!("writing {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, &path)?;
        // Keep a few older snapshots: the last committed checkpoint may
        // point at one of them while later barriers are still in flight.
        if self.saves > KEEP_SNAPSHOTS {
            let _ = std::fs::remove_file(self.snapshot_path(self.saves - KEEP_SNAPSHOTS));
        }
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(json!({"snapshot": file, "saves": self.saves}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
