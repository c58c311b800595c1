//! What users write for a `mongodb` sink.

use std::path::{Path, PathBuf};

use crate::clients::mongodb::tls::Access;
use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;
use serde::Deserialize;

/// Configuration of a `mongodb` sink: events written into one collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoSinkConfig {
    /// Connection string, e.g. `mongodb://user:pass@host:27017/?replicaSet=rs0`.
    pub uri: String,
    /// Target database.
    pub database: String,
    /// Target collection.
    pub collection: String,
    /// `upsert` (default): replace the document with the same `_id`, or
    /// insert it. `insert`: insert only; a document whose `_id` exists is
    /// dead-lettered with the server's duplicate-key message.
    #[serde(default)]
    pub mode: WriteMode,
    /// Most documents per write command.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Retries of a write that failed for a transient reason (connection
    /// lost, primary stepping down) before the pipeline stops.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay, in ms (doubling, with jitter).
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Largest retry delay, in ms.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// How long to look for a reachable server before failing, in ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// TLS: `{mode, ca_file, cert_file, key_file}` (see docs/tls.md);
    /// `tls=true&tlsCAFile=…` in `uri` works too.
    pub tls: Option<TlsOptions>,
    /// File holding the password (its first line) for the user in `uri`.
    pub password_file: Option<PathBuf>,
}

/// How documents are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace by `_id`, inserting when absent (idempotent on replay).
    #[default]
    Upsert,
    /// Insert only.
    Insert,
}

fn default_max_batch() -> usize {
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
fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl MongoSinkConfig {
    /// TLS and the password file, as the client takes them.
    pub fn access(&self) -> Access<'_> {
        Access {
            tls: self.tls.as_ref(),
            password_file: self.password_file.as_deref(),
        }
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

    /// Checks serde cannot express: (field to point at, field the message is
    /// about, what was expected).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        crate::clients::mongodb::check_uri(&self.uri)?;
        self.access().check()?;
        if self.database.is_empty() || self.database.contains(['/', '.', ' ', '$']) {
            return Err(ConfigIssue::at("database", format!(
                    "`{}` is not a database name; expected a non-empty name without `/ . $` or spaces",
                    self.database
                )));
        }
        if self.collection.is_empty()
            || self.collection.contains('$')
            || self.collection.starts_with("system.")
        {
            return Err(ConfigIssue::at("collection", format!(
                    "`{}` is not a collection you can write; expected a non-empty name without `$`, not under `system.`",
                    self.collection
                )));
        }
        if self.max_batch == 0 || self.max_batch > 100_000 {
            return Err(ConfigIssue::at(
                "max_batch",
                "expected 1 to 100000 documents per write",
            ));
        }
        Ok(())
    }
}
