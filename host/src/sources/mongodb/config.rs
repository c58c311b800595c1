//! What users write for a `mongodb` source.

use std::path::{Path, PathBuf};

use crate::clients::mongodb::tls::Access;
use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;
use serde::Deserialize;

/// Configuration of a `mongodb` source: a snapshot of a database's
/// collections, then their change streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoSourceConfig {
    /// Connection string, e.g. `mongodb://user:pass@host:27017/?replicaSet=rs0`
    /// or `mongodb+srv://…`.
    pub uri: String,
    /// The database to capture.
    pub database: String,
    /// Which collections: `include` (names or `*` globs; all when absent)
    /// minus `exclude`. `system.*` collections are never captured.
    #[serde(default)]
    pub collections: CollectionFilter,
    /// `update_lookup` (default): update events carry the whole document as it
    /// is after the update. `default`: only the `updateDescription` delta.
    #[serde(default)]
    pub full_document: FullDocument,
    /// Logical server name: streams are `<name>.<database>.<collection>` and
    /// `source.name` in events. Defaults to the source's name.
    pub name: Option<String>,
    /// `initial` (default): snapshot existing documents on the first run, then
    /// stream. `never`: stream changes from now on. `initial_only`: snapshot
    /// and stop. `when_needed`: like `initial`, and also take a fresh snapshot
    /// of a collection whose checkpointed resume token is no longer in the
    /// oplog (instead of stopping).
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Emit a tombstone (null value, same key) after each delete event, as
    /// Debezium does by default, so compacted topics and tables drop the key.
    #[serde(default = "default_true")]
    pub tombstones_on_delete: bool,
    /// Longest wait for new changes in one poll, in ms (split across the
    /// collections' streams).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How long to look for a reachable server before failing, in ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// TLS: `{mode, ca_file, cert_file, key_file}` (see docs/tls.md);
    /// `tls=true&tlsCAFile=…` in `uri` works too.
    pub tls: Option<TlsOptions>,
    /// File holding the password (its first line) for the user in `uri`.
    pub password_file: Option<PathBuf>,
}

/// Collection include/exclude lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionFilter {
    /// Collections to capture (names or globs with `*`); all when absent.
    pub include: Option<Vec<String>>,
    /// Collections to leave out (names or globs with `*`).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// The change stream's `fullDocument` option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullDocument {
    /// `updateLookup`: updates carry the current document.
    #[default]
    UpdateLookup,
    /// `default`: updates carry only `updateDescription`.
    Default,
}

/// When to snapshot existing documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot on the first run, then stream.
    #[default]
    Initial,
    /// Never snapshot; stream from now.
    Never,
    /// Snapshot, then stop (a bounded run).
    InitialOnly,
    /// Like `initial`, and re-snapshot a collection whose resume token expired.
    WhenNeeded,
}

fn default_true() -> bool {
    true
}
fn default_poll_ms() -> u64 {
    500
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl MongoSourceConfig {
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
        if let Some(name) = &self.name {
            if name.is_empty() {
                return Err(ConfigIssue::at(
                    "name",
                    "expected a non-empty logical server name",
                ));
            }
        }
        if self.collections.include.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigIssue::anchored(
                "collections",
                "collections.include",
                "is empty; expected at least one collection name, or leave it out to capture all",
            ));
        }
        if self.poll_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(ConfigIssue::at(
                "poll_ms",
                "poll_ms and connect_timeout_ms must be positive",
            ));
        }
        Ok(())
    }

    /// True when `collection` is captured.
    pub fn wants(&self, collection: &str) -> bool {
        if collection.starts_with("system.") {
            return false;
        }
        let included = match &self.collections.include {
            None => true,
            Some(list) => list.iter().any(|p| glob(p, collection)),
        };
        included && !self.collections.exclude.iter().any(|p| glob(p, collection))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        assert!(glob("orders", "orders"));
        assert!(!glob("orders", "orders2"));
        assert!(glob("ord*", "orders"));
        assert!(glob("*s", "orders"));
        assert!(glob("o*d*s", "orders"));
        assert!(!glob("o*x*s", "orders"));
        assert!(glob("*", "anything"));
    }
}
