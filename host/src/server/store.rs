//! The server's catalog: tenants, token hashes, plugins and pipeline specs
//! with their desired status, in one redb file in the data dir, or, for
//! several servers sharing one catalog, in PostgreSQL
//! ([`super::pgstore`], chosen by `[catalog]` in server.toml).
//!
//! redb is pure Rust (no C build, unlike SQLite through rusqlite), keeps one
//! file, and commits durably by default, so a record the API acknowledged
//! survives a kill -9. Records are JSON under string keys; tenant-owned
//! records are keyed `tenant/name`, so a tenant's records are one key range.

use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

type Table = TableDefinition<'static, &'static str, &'static str>;
const TENANTS: &str = "tenants";
const TOKENS: &str = "tokens";
const PLUGINS: &str = "plugins";
const PIPELINES: &str = "pipelines";
const CONNECTIONS: &str = "connections";

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantRec {
    /// Its name.
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
}

/// What a token may do. Each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// List and inspect the tenant's plugins and pipelines.
    Read,
    /// Also upload and delete plugins; create, change, start, stop and delete pipelines.
    Deploy,
    /// Also create, list and revoke the tenant's tokens.
    Admin,
}

/// A token: only the SHA-256 of its secret is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    /// The public part of the token, also its key.
    pub id: String,
    /// Whose it is.
    pub tenant: String,
    /// What it may do.
    pub scope: Scope,
    /// A note from whoever created it.
    #[serde(default)]
    pub label: String,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
}

/// An uploaded plugin, as one tenant named it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginRec {
    /// Owner.
    pub tenant: String,
    /// The name pipelines use in `plugin:`.
    pub name: String,
    /// SHA-256 of the component, hex; `plugin: sha256:HEX` works too.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// `transform` or `processor`.
    pub world: String,
    /// How the host labels it (file name, self-description, hash prefix).
    pub label: String,
    /// Upload time, Unix milliseconds.
    pub created_ms: u64,
}

/// Whether a pipeline should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Run it (and again after a server restart).
    Running,
    /// Leave it stopped.
    Stopped,
    /// Run it with its sources paused (and again after a server restart).
    Paused,
}

/// A deployed pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRec {
    /// Owner.
    pub tenant: String,
    /// Its name.
    pub name: String,
    /// The pipeline file as uploaded.
    pub yaml: String,
    /// The tenant's plugins (sha256) it uses, so they cannot be deleted under it.
    pub plugins: Vec<String>,
    /// Whether it should run.
    pub desired: Desired,
    /// Last change, Unix milliseconds.
    pub updated_ms: u64,
}

/// A named connection: what pipelines refer to with `connection: NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRec {
    /// Owner.
    pub tenant: String,
    /// The name pipelines use.
    pub name: String,
    /// The connector type it is for, if it is for one only.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Plain settings (host, port, user, ...), shown by the API.
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Secret settings, each sealed with the server key (never shown).
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// File contents (TLS certificates and keys), sealed like secrets; each
    /// reaches the connector as a private file whose path is the field.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// Last change, Unix milliseconds.
    pub updated_ms: u64,
}

/// The catalog: the redb file (one server) or PostgreSQL (several servers
/// sharing one catalog; see [`super::pgstore`]). Both hold the same records
/// with the same semantics.
pub enum Store {
    /// `catalog.redb` in the data dir.
    Redb(Database),
    /// A PostgreSQL database several servers share.
    Pg(super::pgstore::PgStore),
}

/// `tenant/name`.
pub fn key(tenant: &str, name: &str) -> String {
    format!("{tenant}/{name}")
}

fn table(name: &'static str) -> Table {
    TableDefinition::new(name)
}

impl Store {
    /// Opens (or creates) the catalog file. Another process holding it open
    /// is an error: two servers must not share a data dir.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("opening the catalog {}", path.display()))?;
        let tx = db.begin_write()?;
        for name in [TENANTS, TOKENS, PLUGINS, PIPELINES, CONNECTIONS] {
            tx.open_table(table(name))?;
        }
        tx.commit()?;
        Ok(Self::Redb(db))
    }

    /// Opens the PostgreSQL catalog at `url`, making its tables if missing.
    pub fn open_pg(url: &str) -> Result<Self> {
        Ok(Self::Pg(super::pgstore::PgStore::open(url)?))
    }

    /// The PostgreSQL catalog, when it is one.
    pub fn pg(&self) -> Option<&super::pgstore::PgStore> {
        match self {
            Self::Pg(p) => Some(p),
            Self::Redb(_) => None,
        }
    }

    fn get<T: DeserializeOwned>(&self, tbl: &'static str, k: &str) -> Result<Option<T>> {
        let text = match self {
            Self::Redb(db) => {
                let tx = db.begin_read()?;
                let t = tx.open_table(table(tbl))?;
                let text = t.get(k)?.map(|v| v.value().to_string());
                text
            }
            Self::Pg(pg) => pg.get(tbl, k)?,
        };
        let Some(text) = text else {
            return Ok(None);
        };
        Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("catalog record `{k}`"))?,
        ))
    }

    fn put<T: Serialize>(&self, tbl: &'static str, k: &str, v: &T) -> Result<()> {
        self.apply(
            tbl,
            vec![(k.to_string(), serde_json::to_string(v)?)],
            Vec::new(),
        )
        .map(drop)
    }

    fn delete(&self, tbl: &'static str, k: &str) -> Result<bool> {
        Ok(self.apply(tbl, Vec::new(), vec![(tbl, k.to_string())])? > 0)
    }

    /// Writes `puts` into `tbl` and removes `deletes` (table, key) in one
    /// transaction; how many of `deletes` were there.
    fn apply(
        &self,
        tbl: &'static str,
        puts: Vec<(String, String)>,
        deletes: Vec<(&'static str, String)>,
    ) -> Result<u64> {
        match self {
            Self::Redb(db) => {
                let tx = db.begin_write()?;
                let mut removed = 0;
                {
                    let mut t = tx.open_table(table(tbl))?;
                    for (k, v) in &puts {
                        t.insert(k.as_str(), v.as_str())?;
                    }
                }
                for (d, k) in &deletes {
                    if tx.open_table(table(d))?.remove(k.as_str())?.is_some() {
                        removed += 1;
                    }
                }
                tx.commit()?;
                Ok(removed)
            }
            Self::Pg(pg) => pg.apply(tbl, puts, deletes),
        }
    }

    /// Records whose key starts with `prefix` (all of them for "").
    fn scan<T: DeserializeOwned>(&self, tbl: &'static str, prefix: &str) -> Result<Vec<T>> {
        let rows: Vec<(String, String)> = match self {
            Self::Redb(db) => {
                let tx = db.begin_read()?;
                let t = tx.open_table(table(tbl))?;
                let mut out = Vec::new();
                for row in t.range(prefix..)? {
                    let (k, v) = row?;
                    if !k.value().starts_with(prefix) {
                        break;
                    }
                    out.push((k.value().to_string(), v.value().to_string()));
                }
                out
            }
            Self::Pg(pg) => pg.scan(tbl, prefix)?,
        };
        rows.into_iter()
            .map(|(k, v)| serde_json::from_str(&v).with_context(|| format!("catalog record `{k}`")))
            .collect()
    }

    /// A tenant.
    pub fn tenant(&self, name: &str) -> Result<Option<TenantRec>> {
        self.get(TENANTS, name)
    }
    /// Every tenant.
    pub fn tenants(&self) -> Result<Vec<TenantRec>> {
        self.scan(TENANTS, "")
    }
    /// Adds or replaces a tenant.
    pub fn put_tenant(&self, t: &TenantRec) -> Result<()> {
        self.put(TENANTS, &t.name, t)
    }
    /// Removes a tenant and its tokens, in one transaction (the caller
    /// checks it owns nothing else).
    pub fn delete_tenant(&self, name: &str) -> Result<bool> {
        let mut deletes: Vec<(&'static str, String)> = self
            .tokens(name)?
            .into_iter()
            .map(|t| (TOKENS, t.id))
            .collect();
        let tokens = deletes.len() as u64;
        deletes.push((TENANTS, name.to_string()));
        Ok(self.apply(TENANTS, Vec::new(), deletes)? > tokens)
    }

    /// A token by its public id.
    pub fn token(&self, id: &str) -> Result<Option<TokenRec>> {
        self.get(TOKENS, id)
    }
    /// A tenant's tokens.
    pub fn tokens(&self, tenant: &str) -> Result<Vec<TokenRec>> {
        Ok(self
            .scan::<TokenRec>(TOKENS, "")?
            .into_iter()
            .filter(|t| t.tenant == tenant)
            .collect())
    }
    /// Adds a token.
    pub fn put_token(&self, t: &TokenRec) -> Result<()> {
        self.put(TOKENS, &t.id, t)
    }
    /// Revokes a token.
    pub fn delete_token(&self, id: &str) -> Result<bool> {
        self.delete(TOKENS, id)
    }

    /// A tenant's plugin by name.
    pub fn plugin(&self, tenant: &str, name: &str) -> Result<Option<PluginRec>> {
        self.get(PLUGINS, &key(tenant, name))
    }
    /// A tenant's plugins (of every tenant for "").
    pub fn plugins(&self, tenant: &str) -> Result<Vec<PluginRec>> {
        let prefix = if tenant.is_empty() {
            String::new()
        } else {
            key(tenant, "")
        };
        self.scan(PLUGINS, &prefix)
    }
    /// Adds a plugin.
    pub fn put_plugin(&self, p: &PluginRec) -> Result<()> {
        self.put(PLUGINS, &key(&p.tenant, &p.name), p)
    }
    /// Removes a plugin record.
    pub fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool> {
        self.delete(PLUGINS, &key(tenant, name))
    }

    /// A tenant's pipeline.
    pub fn pipeline(&self, tenant: &str, name: &str) -> Result<Option<PipelineRec>> {
        self.get(PIPELINES, &key(tenant, name))
    }
    /// A tenant's pipelines (of every tenant for "").
    pub fn pipelines(&self, tenant: &str) -> Result<Vec<PipelineRec>> {
        let prefix = if tenant.is_empty() {
            String::new()
        } else {
            key(tenant, "")
        };
        self.scan(PIPELINES, &prefix)
    }
    /// Adds or replaces a pipeline.
    pub fn put_pipeline(&self, p: &PipelineRec) -> Result<()> {
        self.put(PIPELINES, &key(&p.tenant, &p.name), p)
    }
    /// Removes a pipeline record.
    pub fn delete_pipeline(&self, tenant: &str, name: &str) -> Result<bool> {
        self.delete(PIPELINES, &key(tenant, name))
    }

    /// A tenant's connection.
    pub fn connection(&self, tenant: &str, name: &str) -> Result<Option<ConnectionRec>> {
        self.get(CONNECTIONS, &key(tenant, name))
    }
    /// A tenant's connections.
    pub fn connections(&self, tenant: &str) -> Result<Vec<ConnectionRec>> {
        self.scan(CONNECTIONS, &key(tenant, ""))
    }
    /// Adds or replaces a connection.
    pub fn put_connection(&self, c: &ConnectionRec) -> Result<()> {
        self.put(CONNECTIONS, &key(&c.tenant, &c.name), c)
    }
    /// Removes a connection.
    pub fn delete_connection(&self, tenant: &str, name: &str) -> Result<bool> {
        self.delete(CONNECTIONS, &key(tenant, name))
    }
}

/// Now, Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_tenant_scan_sees_only_its_own() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("catalog.redb");
        {
            let store = Store::open(&path)?;
            for (tenant, name) in [("a", "p1"), ("a", "p2"), ("ab", "p1"), ("b", "p1")] {
                store.put_pipeline(&PipelineRec {
                    tenant: tenant.into(),
                    name: name.into(),
                    yaml: String::new(),
                    plugins: Vec::new(),
                    desired: Desired::Running,
                    updated_ms: 0,
                })?;
            }
        }
        let store = Store::open(&path)?;
        let names: Vec<String> = store
            .pipelines("a")?
            .into_iter()
            .map(|p| key(&p.tenant, &p.name))
            .collect();
        assert_eq!(names, ["a/p1", "a/p2"]);
        assert_eq!(store.pipelines("")?.len(), 4);
        assert!(store.delete_pipeline("a", "p1")?);
        assert!(!store.delete_pipeline("a", "p1")?);
        assert!(store.pipeline("a", "p1")?.is_none());
        Ok(())
    }
}
