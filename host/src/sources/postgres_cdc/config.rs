//! What users write for a `postgres-cdc` source.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::types::DecimalHandling;
use crate::clients::postgres::PgTarget;
use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;

/// Configuration of a `postgres-cdc` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresCdcConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Logical server name: the first part of the Debezium-style topic
    /// `<name>.<schema>.<table>` and of `source.name` (default: the source's name).
    pub name: Option<String>,
    /// Tables to capture, `schema.table` or `table` (schema `public`). All
    /// tables of non-system schemas when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Tables to leave out (same forms).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Publication to use; created for the selected tables if absent
    /// (default `sluice_<source>`).
    pub publication: Option<String>,
    /// Replication slot to use; created if absent (default `sluice_<source>`).
    pub slot: Option<String>,
    /// `initial` (default): snapshot existing rows, then stream; `never`:
    /// stream only; `initial_only`: snapshot, then stop.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Rows per snapshot fetch.
    #[serde(default = "default_fetch")]
    pub snapshot_fetch_size: usize,
    /// How often to report progress to the server and ask for a keepalive,
    /// so an idle or filtered-out source still lets the slot advance.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    /// SQL run at every heartbeat (e.g. an UPDATE of a heartbeat table in
    /// the publication), for databases whose captured tables are idle while
    /// other databases on the server write WAL.
    pub heartbeat_query: Option<String>,
    /// `numeric` as a JSON number (`double`, default) or exact string (`string`).
    #[serde(default)]
    pub decimal_handling: DecimalHandling,
    /// Emit a tombstone (null value, same key) after each delete, as Debezium does
    /// with `tombstones.on.delete` (default false).
    #[serde(default)]
    pub tombstones_on_delete: bool,
    /// TLS for both connections (queries and replication):
    /// `{mode, ca_file, cert_file, key_file, server_name}` (see docs/tls.md);
    /// libpq's `sslmode`/`sslrootcert`/`sslcert`/`sslkey` in `url` work too.
    pub tls: Option<TlsOptions>,
    /// File holding the password (its first line), instead of one in `url`.
    pub password_file: Option<PathBuf>,
}

/// When to read existing rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot, then stream.
    #[default]
    Initial,
    /// Stream changes only.
    Never,
    /// Snapshot, then stop.
    InitialOnly,
}

fn default_fetch() -> usize {
    10_000
}

fn default_heartbeat() -> u64 {
    10_000
}

impl PostgresCdcConfig {
    /// Checks what serde cannot: (anchor field, field, message).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let err = |f: &str, m: String| Err(ConfigIssue::at(f, m));
        self.target()?;
        for (field, v) in [("slot", &self.slot), ("publication", &self.publication)] {
            if let Some(n) = v {
                if !valid_identifier(n) {
                    return err(
                        field,
                        format!("invalid name `{n}`; expected lower-case letters, digits and `_` (at most 63)"),
                    );
                }
            }
        }
        if self.snapshot_fetch_size == 0 {
            return err("snapshot_fetch_size", "expected a number above 0".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return err(
                "heartbeat_interval_ms",
                "expected milliseconds above 0".into(),
            );
        }
        for (field, list) in [("tables", &self.tables), ("exclude", &self.exclude)] {
            for t in list {
                if t.is_empty() || t.split('.').count() > 2 {
                    return err(
                        field,
                        format!("invalid table `{t}`; expected `table` or `schema.table`"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The server, TLS and password resolved (files read).
    pub fn target(&self) -> Result<PgTarget, ConfigIssue> {
        PgTarget::new(&self.url, self.tls.as_ref(), self.password_file.as_deref())
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

    /// The slot name for source `source`.
    pub fn slot_name(&self, source: &str) -> String {
        self.slot
            .clone()
            .unwrap_or_else(|| format!("sluice_{}", sanitize(source)))
    }

    /// The publication name for source `source`.
    pub fn publication_name(&self, source: &str) -> String {
        self.publication
            .clone()
            .unwrap_or_else(|| format!("sluice_{}", sanitize(source)))
    }
}

/// Slot names allow `[a-z0-9_]` only.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .take(56)
        .collect()
}

fn valid_identifier(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> PostgresCdcConfig {
        let mut v = serde_json::json!({"url": "postgres://u:p@127.0.0.1:5432/db"});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_derive_names_from_the_source() {
        let c = config(serde_json::json!({}));
        assert_eq!(c.slot_name("pg-customers"), "sluice_pg_customers");
        assert_eq!(c.snapshot, SnapshotMode::Initial);
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let c = config(serde_json::json!({"slot": "Bad-Slot"}));
        assert_eq!(c.check().err().map(|e| e.field), Some("slot".to_string()));
        let c = config(serde_json::json!({"tables": ["a.b.c"]}));
        assert_eq!(c.check().err().map(|e| e.field), Some("tables".to_string()));
        let c = config(serde_json::json!({"url": "mysql://x"}));
        assert_eq!(c.check().err().map(|e| e.field), Some("url".to_string()));
    }
}
