//! Uploaded plugins. A component is stored once by its SHA-256
//! (`plugins/HEX.wasm`, read-only), after it was checked to be a component
//! of a plugin world and compiled through the compile cache. A tenant names
//! it: its `tenants/T/plugins/` holds `NAME.wasm` and `sha256:HEX.wasm`
//! links to the blob, which is where its pipelines' `plugin:` names are
//! looked up; no other tenant's directory links to it unless that tenant
//! uploaded the same bytes. A name, once taken, keeps its bytes.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::policy::is_name;
use super::store::{now_ms, PluginRec};
use super::Server;
use crate::plugin::connector::ConnectorPlugin;
use crate::plugin::net::Grants;
use crate::plugin::{CpuBudget, Limits, StagePlugin, World};

fn view(p: &PluginRec) -> serde_json::Value {
    json!({
        "name": p.name, "sha256": p.sha256, "size": p.size, "world": p.world,
        "label": p.label, "created_ms": p.created_ms,
    })
}

/// The tenant's plugins directory: what its pipelines' `plugin:` names resolve in.
pub fn links_dir(s: &Server, tenant: &str) -> PathBuf {
    s.tenant_dir(tenant).join("plugins")
}

/// Bytes of plugins `tenant` stores (each distinct component once).
pub fn stored_bytes(s: &Server, tenant: &str) -> anyhow::Result<u64> {
    let mut recs = s.store.plugins(tenant)?;
    recs.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    recs.dedup_by(|a, b| a.sha256 == b.sha256);
    Ok(recs.iter().map(|p| p.size).sum())
}

/// `NAME` or `sha256:HEX` → the tenant's record.
pub fn find(s: &Server, tenant: &str, spec: &str) -> anyhow::Result<Option<PluginRec>> {
    if let Some(hex) = spec.strip_prefix("sha256:") {
        return Ok(s
            .store
            .plugins(tenant)?
            .into_iter()
            .find(|p| p.sha256 == hex));
    }
    s.store.plugin(tenant, spec)
}

/// Checks and compiles `bytes`; (world, label) or why it is no plugin.
fn check(s: &Server, name: &str, bytes: &[u8]) -> Result<(String, String), ApiError> {
    // Checked under its tenant's name in a private temp dir, so messages and
    // the label name it as the tenant does, and nothing else can swap it.
    let dir = tempfile::Builder::new()
        .prefix(".incoming-")
        .tempdir_in(s.config.data_dir.join("plugins"))
        .map_err(anyhow::Error::from)?;
    let path = dir.path().join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).map_err(anyhow::Error::from)?;
    match StagePlugin::load(&s.engine, &s.cache, &path, CpuBudget::default()) {
        Ok(plugin) => {
            let world = match plugin {
                StagePlugin::Transform(_) => "transform",
                StagePlugin::Processor(_) => "processor",
            };
            Ok((world.to_string(), plugin.label()))
        }
        Err(e) => {
            // A custom connector (`type: wasm` source or sink) is a plugin too.
            for world in [World::Source, World::Sink] {
                if let Ok(c) = ConnectorPlugin::load(
                    &s.engine,
                    &s.cache,
                    &path,
                    world,
                    &Grants::default(),
                    &Limits::default(),
                ) {
                    return Ok((world.name().to_string(), c.label()));
                }
            }
            // And a user-defined function (`udfs:`).
            if let Ok(u) = crate::plugin::UdfPlugin::load(&s.engine, &s.cache, &path) {
                return Ok((World::Udf.name().to_string(), u.label()));
            }
            let prefix = format!("{}/", dir.path().display());
            Err(ApiError::BadRequest(format!(
                "not a usable plugin: {}",
                e.to_string().replace(&prefix, "")
            )))
        }
    }
}

/// Writes the local blob file of `bytes` (read-only) unless it is there.
fn write_blob(s: &Server, sha: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let blob = s.blob(sha);
    if !blob.is_file() {
        let mut tmp = tempfile::NamedTempFile::new_in(s.config.data_dir.join("plugins"))?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        tmp.as_file().sync_all()?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o444))?;
        tmp.persist(&blob).map_err(|e| e.error)?;
    }
    Ok(blob)
}

/// With a shared catalog: makes `tenant`'s directories and its plugins'
/// local files and links on this server, fetching from the catalog the
/// blobs another server uploaded. The local blob directory is a cache
/// keyed by SHA-256, and a fetched blob is checked against its hash, so a
/// file there is always the right bytes. Nothing to do with the redb
/// catalog, where every upload went through this server. With `prune`
/// (only under the tenant's lock, which uploads hold while they link),
/// links of plugins no longer in the catalog go too.
pub fn materialize(s: &Server, tenant: &str, prune: bool) -> anyhow::Result<()> {
    let Some(pg) = s.store.pg() else {
        return Ok(());
    };
    let dir = s.tenant_dir(tenant);
    for sub in ["plugins", "files", "pipelines"] {
        super::private_dir(&dir.join(sub))?;
    }
    let links = links_dir(s, tenant);
    let recs = s.store.plugins(tenant)?;
    // Links of plugins deleted through another server go, so their names
    // stop resolving here too.
    let wanted: std::collections::HashSet<String> = recs
        .iter()
        .flat_map(|p| {
            [
                format!("{}.wasm", p.name),
                format!("sha256:{}.wasm", p.sha256),
            ]
        })
        .collect();
    for entry in std::fs::read_dir(&links)?.flatten().filter(|_| prune) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wasm") && !wanted.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for p in recs {
        let at = links.join(format!("{}.wasm", p.name));
        let by_hash = links.join(format!("sha256:{}.wasm", p.sha256));
        if at.is_file() && by_hash.is_file() {
            continue;
        }
        let _blobs = s.blobs.lock().unwrap_or_else(|e| e.into_inner());
        let blob = if s.blob(&p.sha256).is_file() {
            s.blob(&p.sha256)
        } else {
            let bytes = pg.blob(&p.sha256)?.ok_or_else(|| {
                anyhow::anyhow!("plugin `{}`: the catalog has no bytes for it", p.name)
            })?;
            let got = hex::encode(Sha256::digest(&bytes));
            if got != p.sha256 {
                anyhow::bail!(
                    "plugin `{}`: the catalog's bytes hash to {got}, not {}",
                    p.name,
                    p.sha256
                );
            }
            write_blob(s, &p.sha256, &bytes)?
        };
        link(&blob, &at)?;
        link(&blob, &by_hash)?;
    }
    Ok(())
}

fn link(target: &std::path::Path, at: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(at) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(target, at)
}

/// Stores `bytes` as `tenant`'s plugin `name`.
pub fn upload(s: &Server, tenant: &str, name: &str, bytes: &[u8]) -> ApiResult {
    if !is_name(name) || name.ends_with(".wasm") {
        return Err(ApiError::BadRequest(format!(
            "invalid plugin name `{}`: 1-64 letters, digits, `_`, `-`, `.`, starting with a letter or digit, not ending in .wasm",
            name.escape_debug()
        )));
    }
    let sha = hex::encode(Sha256::digest(bytes));
    let size = bytes.len() as u64;
    if let Some(existing) = s.store.plugin(tenant, name)? {
        return if existing.sha256 == sha {
            Ok((StatusCode::OK, Json(view(&existing))))
        } else {
            Err(ApiError::Conflict(format!(
                "plugin `{name}` exists with sha256 {}; plugins are immutable: upload this one under a new name",
                existing.sha256
            )))
        };
    }
    let mine = s.store.plugins(tenant)?;
    if !mine.iter().any(|p| p.sha256 == sha) {
        let limit = s.config.policy(tenant).max_plugin_bytes;
        let requested = stored_bytes(s, tenant)?.saturating_add(size);
        if requested > limit {
            return Err(ApiError::Quota {
                quota: "max_plugin_bytes",
                limit,
                requested,
            });
        }
    }
    let (world, label) = check(s, name, bytes)?;
    let _blobs = s.blobs.lock().unwrap_or_else(|e| e.into_inner());
    // A shared catalog holds the bytes too, for the other servers.
    if let Some(pg) = s.store.pg() {
        pg.put_blob(&sha, bytes.to_vec())?;
    }
    let blob = write_blob(s, &sha, bytes)?;
    let links = links_dir(s, tenant);
    link(&blob, &links.join(format!("{name}.wasm"))).map_err(anyhow::Error::from)?;
    link(&blob, &links.join(format!("sha256:{sha}.wasm"))).map_err(anyhow::Error::from)?;
    let rec = PluginRec {
        tenant: tenant.to_string(),
        name: name.to_string(),
        sha256: sha,
        size,
        world,
        label,
        created_ms: now_ms(),
    };
    s.store.put_plugin(&rec)?;
    Ok((StatusCode::CREATED, Json(view(&rec))))
}

/// The tenant's plugins.
pub fn list(s: &Server, tenant: &str) -> ApiResult {
    let all: Vec<_> = s.store.plugins(tenant)?.iter().map(view).collect();
    Ok((StatusCode::OK, Json(json!({ "plugins": all }))))
}

fn missing(spec: &str) -> ApiError {
    ApiError::NotFound(format!("no plugin `{}`", spec.escape_debug()))
}

/// One plugin, with the pipelines that use it.
pub fn get(s: &Server, tenant: &str, spec: &str) -> ApiResult {
    let p = find(s, tenant, spec)?.ok_or_else(|| missing(spec))?;
    let users: Vec<String> = s
        .store
        .pipelines(tenant)?
        .into_iter()
        .filter(|q| q.plugins.contains(&p.sha256))
        .map(|q| q.name)
        .collect();
    let mut v = view(&p);
    v["used_by"] = json!(users);
    Ok((StatusCode::OK, Json(v)))
}

/// Deletes a plugin no pipeline of the tenant uses.
pub fn delete(s: &Server, tenant: &str, spec: &str) -> ApiResult {
    let p = find(s, tenant, spec)?.ok_or_else(|| missing(spec))?;
    let users: Vec<String> = s
        .store
        .pipelines(tenant)?
        .into_iter()
        .filter(|q| q.plugins.contains(&p.sha256))
        .map(|q| q.name)
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "plugin `{}` is used by pipeline(s) {}; delete or change them first",
            p.name,
            users.join(", ")
        )));
    }
    let _blobs = s.blobs.lock().unwrap_or_else(|e| e.into_inner());
    s.store.delete_plugin(tenant, &p.name)?;
    let links = links_dir(s, tenant);
    let _ = std::fs::remove_file(links.join(format!("{}.wasm", p.name)));
    let all = s.store.plugins("")?;
    if !all
        .iter()
        .any(|q| q.tenant == tenant && q.sha256 == p.sha256)
    {
        let _ = std::fs::remove_file(links.join(format!("sha256:{}.wasm", p.sha256)));
    }
    if !all.iter().any(|q| q.sha256 == p.sha256) {
        let _ = std::fs::remove_file(s.blob(&p.sha256));
        if let Some(pg) = s.store.pg() {
            pg.delete_blob(&p.sha256)?;
        }
    }
    Ok((
        StatusCode::OK,
        Json(json!({"deleted": p.name, "sha256": p.sha256})),
    ))
}
