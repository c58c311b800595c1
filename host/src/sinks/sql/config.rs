//! What users write for a `postgres` or `mysql` sink (one shape for both).

use std::path::{Path, PathBuf};

use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;
use serde::Deserialize;

/// Configuration of a SQL table sink (`type: postgres` or `type: mysql`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSinkConfig {
    /// Connection URL: `postgres://user:pass@host:port/db` or
    /// `mysql://user:pass@host:port/db`.
    pub url: String,
    /// Target table. `{stream}` is replaced by the name of the stream the
    /// event arrived on (the source or stage that produced it); the default
    /// is `{stream}` itself.
    #[serde(default = "default_table")]
    pub table: String,
    /// Schema (PostgreSQL) or database (MySQL) of the table; default: the
    /// connection's (`search_path` / the URL's database).
    pub schema: Option<String>,
    /// `insert` (plain INSERT) or `upsert` (insert or update on the key).
    #[serde(default)]
    pub mode: WriteMode,
    /// The key columns (primary key when the sink creates the table). Values
    /// come from the event's value, else from the event key: a JSON object
    /// with these fields, or the key itself (string or number) when there is
    /// one key column. Required for `upsert`, and for deletes.
    #[serde(default)]
    pub key_fields: Vec<String>,
    /// A tombstone (null value) deletes the row with its key. When false,
    /// tombstones are ignored.
    #[serde(default = "yes")]
    pub delete_on_tombstone: bool,
    /// Create a missing table from the first events' fields.
    #[serde(default = "yes")]
    pub auto_create: bool,
    /// Add a column for a field the table does not have yet.
    #[serde(default = "yes")]
    pub auto_evolve: bool,
    /// Rows per transaction; buffered rows are also written at every checkpoint.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Attempts after a lost connection or a transient error (deadlock,
    /// serialization failure) before the pipeline fails.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay, in ms (doubles up to `max_backoff_ms`).
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Largest retry delay, in ms.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// Connect timeout, in ms.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// TLS: `{mode, ca_file, cert_file, key_file, server_name}` (see
    /// docs/tls.md). PostgreSQL also reads libpq's `sslmode`, `sslrootcert`,
    /// `sslcert` and `sslkey` from `url`.
    pub tls: Option<TlsOptions>,
    /// File holding the password (its first line), instead of one in `url`.
    pub password_file: Option<PathBuf>,
}

/// How rows are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// `INSERT`; a duplicate key is a rejected row.
    #[default]
    Insert,
    /// Insert, or update the row with the same key.
    Upsert,
}

fn default_table() -> String {
    "{stream}".into()
}
fn yes() -> bool {
    true
}
/// The largest `batch_size`.
const MAX_BATCH_ROWS: usize = 100_000;

fn default_batch_size() -> usize {
    1000
}
fn default_max_retries() -> u32 {
    10
}
fn default_initial_backoff() -> u64 {
    100
}
fn default_max_backoff() -> u64 {
    10_000
}
fn default_connect_timeout() -> u64 {
    10_000
}

impl SqlSinkConfig {
    /// Cross-field checks serde cannot express: (field to point at, field the
    /// message is about, what was expected). `schemes` are the URL schemes
    /// this sink type accepts.
    pub fn check(&self, schemes: &[&str]) -> Result<(), ConfigIssue> {
        let err = |f: &str, m: String| Err(ConfigIssue::at(f, m));
        if !schemes
            .iter()
            .any(|s| self.url.starts_with(&format!("{s}://")))
        {
            // Never echo a password: show only what follows the credentials.
            let shown = match self.url.rsplit_once('@') {
                Some((_, host)) => format!("…@{host}"),
                None => self.url.clone(),
            };
            let wanted: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
            return err(
                "url",
                format!(
                    "`{shown}` is not a {} URL; expected e.g. `{}user:password@host:port/database`",
                    wanted.join(" or "),
                    wanted[0]
                ),
            );
        }
        if self.table.trim().is_empty() {
            return err(
                "table",
                "expected a table name (`{stream}` stands for the stream name)".into(),
            );
        }
        if self.mode == WriteMode::Upsert && self.key_fields.is_empty() {
            return Err(ConfigIssue::anchored(
                "mode",
                "key_fields",
                "required with `mode: upsert`; expected the list of key columns, e.g. [id]",
            ));
        }
        if self.key_fields.iter().any(|k| k.is_empty()) {
            return err("key_fields", "expected non-empty column names".into());
        }
        if self.batch_size == 0 {
            return err("batch_size", "expected a positive number of rows".into());
        }
        // The rows wait in the host's memory until a batch or a checkpoint.
        if self.batch_size > MAX_BATCH_ROWS {
            return err(
                "batch_size",
                format!("{} is above {MAX_BATCH_ROWS} rows", self.batch_size),
            );
        }
        if self.initial_backoff_ms == 0 || self.max_backoff_ms < self.initial_backoff_ms {
            return err(
                "max_backoff_ms",
                "expected 0 < initial_backoff_ms <= max_backoff_ms".into(),
            );
        }
        Ok(())
    }

    /// Makes the TLS and password file paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(tls) = &mut self.tls {
            tls.resolve_paths(base);
        }
        if let Some(p) = &mut self.password_file {
            *p = base.join(&*p);
        }
    }

    /// The table for events of `stream`.
    pub fn table_for(&self, stream: &str) -> String {
        self.table.replace("{stream}", stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_rows_waiting_in_memory_is_bounded() {
        let config = |rows: u64| -> SqlSinkConfig {
            serde_json::from_value(
                serde_json::json!({"url": "postgres://db/x", "table": "t", "batch_size": rows}),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(config(100_000).check(&["postgres"]).is_ok());
        let e = config(100_001)
            .check(&["postgres"])
            .expect_err("past the bound");
        assert_eq!(e.field, "batch_size");
        assert!(
            e.message.contains("100001 is above 100000 rows"),
            "{}",
            e.message
        );
    }
}
