//! Named connections: the hosts, credentials and TLS files a tenant's
//! pipelines refer to with `connection: NAME` instead of writing them in
//! every file.
//!
//! A connection has plain `fields` (shown by the API), `secrets` and
//! `files` (TLS certificates and keys, as text), both sealed at rest with
//! the server key ([`super::secrets`]) and never returned. When a pipeline
//! is prepared, its tenant's connections are opened: secrets become
//! settings, and each file is written to a private file under
//! `tenants/T/connections/NAME/` whose path becomes the setting. What a
//! connection gives may not be set again in the pipeline (see
//! `config::Loader::connect`), and `fields` may not name files at all, so a
//! connection never reads the server's files or sends its password to a
//! host the file chose. Secret values are struck from the pipeline's logs,
//! status and dead-letter reasons ([`super::logs::PipelineLogs::scrub`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::policy::is_name;
use super::secrets::Place;
use super::store::{now_ms, ConnectionRec};
use super::Server;
use crate::config;

/// Most settings (fields, secrets and files together) in one connection.
pub const MAX_SETTINGS: usize = 64;
/// Largest value of one setting, in bytes (as JSON for fields).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Shortest secret struck from logs: shorter ones would strike ordinary
/// words and numbers, and are too short to be worth hiding.
const MIN_SCRUB_CHARS: usize = 4;

/// `POST /v1/connections` and `PUT /v1/connections/NAME` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Its name (POST); must agree with the path (PUT) when given.
    #[serde(default)]
    pub name: Option<String>,
    /// The connector type it is for; any when left out.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Plain settings.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Secret settings (strings).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// File contents by setting (`ca_file`, `tls.key_file`, ...).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

fn view(s: &Server, c: &ConnectionRec) -> Value {
    json!({
        "name": c.name,
        "type": c.kind,
        "fields": c.fields,
        // Which secrets and files it holds, never what they are.
        "secrets": c.secrets.keys().collect::<Vec<_>>(),
        "files": c.files.keys().collect::<Vec<_>>(),
        "used_by": used_by(s, &c.tenant, &c.name).unwrap_or_default(),
        "created_ms": c.created_ms,
        "updated_ms": c.updated_ms,
    })
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("no connection `{name}`"))
}

/// `GET /v1/connections`.
pub fn list(s: &Server, tenant: &str) -> ApiResult {
    let all: Vec<Value> = s
        .store
        .connections(tenant)?
        .iter()
        .map(|c| view(s, c))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "connections": all }))))
}

/// `GET /v1/connections/NAME`.
pub fn get(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let c = s
        .store
        .connection(tenant, name)?
        .ok_or_else(|| missing(name))?;
    Ok((StatusCode::OK, Json(view(s, &c))))
}

/// `POST /v1/connections` (`path_name` None) or `PUT /v1/connections/NAME`.
pub fn put(s: &Server, tenant: &str, path_name: Option<&str>, body: Body) -> ApiResult {
    let name = match (path_name, body.name.as_deref()) {
        (Some(p), Some(b)) if p != b => {
            return Err(ApiError::BadRequest(format!(
                "`name` is `{b}` but the path names `{p}`"
            )))
        }
        (Some(p), _) => p.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => return Err(ApiError::BadRequest("missing field `name`".into())),
    };
    if !is_name(&name) {
        return Err(ApiError::BadRequest(format!(
            "invalid name `{}`: 1-64 letters, digits, `_`, `-`, `.`, starting with a letter or digit",
            name.escape_debug()
        )));
    }
    check_body(s, tenant, &body)?;
    let _held = s.lock_tenant(tenant);
    let old = s.store.connection(tenant, &name)?;
    match (&old, path_name) {
        (Some(_), None) => {
            return Err(ApiError::Conflict(format!(
                "connection `{name}` exists; change it with PUT /v1/connections/{name}"
            )))
        }
        (None, _) => {
            let limit = s.config.policy(tenant).max_named_connections;
            let have = s.store.connections(tenant)?.len() as u64;
            if have + 1 > limit {
                return Err(ApiError::Quota {
                    quota: "max_named_connections",
                    limit,
                    requested: have + 1,
                });
            }
        }
        _ => {}
    }
    let seal = |kind: &str, k: &str, v: &str| -> Result<String, ApiError> {
        let place = Place {
            tenant,
            connection: &name,
            field: &format!("{kind}.{k}"),
        };
        Ok(s.secret_key.seal(&place, v.as_bytes())?)
    };
    let now = now_ms();
    let rec = ConnectionRec {
        tenant: tenant.to_string(),
        name: name.clone(),
        kind: body.kind,
        fields: body.fields,
        secrets: body
            .secrets
            .iter()
            .map(|(k, v)| Ok((k.clone(), seal("secrets", k, v)?)))
            .collect::<Result<_, ApiError>>()?,
        files: body
            .files
            .iter()
            .map(|(k, v)| Ok((k.clone(), seal("files", k, v)?)))
            .collect::<Result<_, ApiError>>()?,
        created_ms: old.as_ref().map_or(now, |o| o.created_ms),
        updated_ms: now,
    };
    s.store.put_connection(&rec)?;
    let status = if old.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(s, &rec))))
}

/// `DELETE /v1/connections/NAME`: only when no pipeline names it.
pub fn delete(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let _held = s.lock_tenant(tenant);
    s.store
        .connection(tenant, name)?
        .ok_or_else(|| missing(name))?;
    let users = used_by(s, tenant, name)?;
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "connection `{name}` is used by pipeline(s) {}; change or delete them first",
            users.join(", ")
        )));
    }
    s.store.delete_connection(tenant, name)?;
    let _ = std::fs::remove_dir_all(files_dir(s, tenant).join(name));
    Ok((StatusCode::OK, Json(json!({ "deleted": name }))))
}

fn files_dir(s: &Server, tenant: &str) -> std::path::PathBuf {
    s.tenant_dir(tenant).join("connections")
}

/// The tenant's pipelines whose file names connection `name`.
fn used_by(s: &Server, tenant: &str, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(s.store
        .pipelines(tenant)?
        .into_iter()
        .filter(|p| named_connections(&p.yaml).iter().any(|c| c == name))
        .map(|p| p.name)
        .collect())
}

/// Every `connection:` a pipeline file's sources, sinks and dead-letter
/// destination name.
pub fn named_connections(yaml: &str) -> Vec<String> {
    let Ok(root) = config::parse_yaml(yaml) else {
        return Vec::new();
    };
    let mut bodies: Vec<&config::Node> = Vec::new();
    for section in ["sources", "sinks"] {
        if let Some(m) = root.get(section).and_then(|n| n.as_map()) {
            bodies.extend(m.iter().map(|(_, v)| v));
        }
    }
    bodies.extend(root.get("dead_letter"));
    let mut names: Vec<String> = bodies
        .into_iter()
        .filter_map(|b| b.get("connection")?.as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A setting's name: `a-z 0-9 _`, dotted for nesting (`tls.ca_file`).
fn is_setting(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// Settings that name a file or directory the connector would open.
fn names_a_path(k: &str) -> bool {
    k == "path" || k.ends_with("_file") || k.ends_with("_dir") || k.ends_with("_path")
}

/// Every key of `v`, at every depth, that names a path.
fn path_keys(prefix: &str, v: &Value, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let full = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if names_a_path(k) {
                out.push(full.clone());
            }
            path_keys(&full, v, out);
        }
    }
}

fn check_body(s: &Server, tenant: &str, body: &Body) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    if let Some(kind) = &body.kind {
        let granted = s.config.policy(tenant).connectors;
        if !granted.iter().any(|c| c == kind) {
            return bad(format!(
                "`type`: connector type `{kind}` is not granted to this tenant; granted: {}",
                granted.join(", ")
            ));
        }
    }
    let count = body.fields.len() + body.secrets.len() + body.files.len();
    if count > MAX_SETTINGS {
        return bad(format!(
            "{count} settings; a connection holds at most {MAX_SETTINGS}"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let keys = body
        .fields
        .keys()
        .map(|k| ("fields", k))
        .chain(body.secrets.keys().map(|k| ("secrets", k)))
        .chain(body.files.keys().map(|k| ("files", k)));
    for (section, k) in keys {
        if !is_setting(k) {
            return bad(format!(
                "`{section}.{}`: a setting's name is 1-64 of a-z, 0-9, `_`, dotted for nesting",
                k.escape_debug()
            ));
        }
        if section == "fields" && k.contains('.') {
            return bad(format!(
                "`fields.{k}`: write nested fields as JSON objects; dots are for `secrets` and `files`"
            ));
        }
        let top = k.split('.').next().unwrap_or(k);
        if matches!(top, "type" | "connection" | "inputs") {
            return bad(format!(
                "`{section}.{k}`: `{top}` belongs in the pipeline file, not in a connection"
            ));
        }
        if !seen.insert(k.as_str()) {
            return bad(format!("`{k}` is given twice (in `{section}` and before)"));
        }
        if section == "files" && !k.rsplit('.').next().is_some_and(names_a_path) {
            return bad(format!(
                "`files.{k}`: a file's setting names a file (`ca_file`, `tls.key_file`, ...)"
            ));
        }
    }
    let mut paths = Vec::new();
    path_keys("", &Value::Object(body.fields.clone()), &mut paths);
    if let Some(p) = paths.first() {
        return bad(format!(
            "`fields.{p}` names a path on the server, which a connection may not; put the file's contents under `files` instead"
        ));
    }
    for (k, v) in &body.fields {
        let size = serde_json::to_string(v).map_or(usize::MAX, |t| t.len());
        if size > MAX_VALUE_BYTES {
            return bad(format!(
                "`fields.{k}` is {size} bytes; a value is at most {MAX_VALUE_BYTES}"
            ));
        }
    }
    for (section, map) in [("secrets", &body.secrets), ("files", &body.files)] {
        for (k, v) in map {
            if v.len() > MAX_VALUE_BYTES {
                return bad(format!(
                    "`{section}.{k}` is {} bytes; a value is at most {MAX_VALUE_BYTES}",
                    v.len()
                ));
            }
        }
    }
    Ok(())
}

/// A tenant's connections, opened for its pipelines.
#[derive(Default)]
pub struct Opened {
    /// By name, as the pipeline loader takes them.
    pub connections: Arc<BTreeMap<String, config::Connection>>,
    /// Every secret value (and file content line) long enough to strike
    /// from what the tenant's pipelines report.
    pub secrets: Vec<String>,
}

/// The parts of a URL-shaped secret that are secret on their own: its
/// password and its query values of 8 characters or more (API keys,
/// tokens), raw and decoded. A
/// message quoting only the request's path and query, or only the
/// password, holds none of the whole URL and would escape striking.
fn url_secret_parts(value: &str) -> Vec<String> {
    let Some((_, rest)) = value.split_once("://") else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    // The userinfo by hand: multi-host URLs (`mongodb://u:p@a,b/`) are no
    // URLs to the `url` crate.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            parts.push(password.to_string());
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for pair in query.split('&') {
            // Short values are settings (`sslmode=require`), not keys;
            // striking them would garble every message that says them.
            if let Some((_, v)) = pair.split_once('=').filter(|(_, v)| v.len() >= 8) {
                parts.push(v.to_string());
            }
        }
    }
    let decoded: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            let d = percent_decode(p)?;
            (d != *p).then_some(d)
        })
        .collect();
    parts.extend(decoded);
    parts
}

/// `%XX` escapes undone; `None` when that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Opens every connection of `tenant`: secrets decrypted, files written.
pub fn open_all(s: &Server, tenant: &str) -> Result<Opened, ApiError> {
    let mut connections = BTreeMap::new();
    let mut secrets = Vec::new();
    for rec in s.store.connections(tenant)? {
        let mut fields = rec.fields.clone();
        for (k, sealed) in &rec.secrets {
            let place = Place {
                tenant,
                connection: &rec.name,
                field: &format!("secrets.{k}"),
            };
            let value = String::from_utf8_lossy(&s.secret_key.open(&place, sealed)?).into_owned();
            secrets.extend(
                std::iter::once(value.clone())
                    .chain(url_secret_parts(&value))
                    .filter(|v| v.chars().count() >= MIN_SCRUB_CHARS),
            );
            set_dotted(&mut fields, k, Value::String(value));
        }
        for (k, sealed) in &rec.files {
            let place = Place {
                tenant,
                connection: &rec.name,
                field: &format!("files.{k}"),
            };
            let content = s.secret_key.open(&place, sealed)?;
            let dir = files_dir(s, tenant).join(&rec.name);
            let path = write_private(&dir, k, &content)?;
            set_dotted(
                &mut fields,
                k,
                Value::String(path.to_string_lossy().into_owned()),
            );
        }
        connections.insert(
            rec.name.clone(),
            config::Connection {
                kind: rec.kind.clone(),
                fields,
            },
        );
    }
    // Longest first, so a secret containing another is struck whole.
    secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
    secrets.dedup();
    Ok(Opened {
        connections: Arc::new(connections),
        secrets,
    })
}

/// Sets `a.b.c` in `fields`, making the objects on the way.
fn set_dotted(fields: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = fields;
    for p in parts {
        let slot = at
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(m) = slot else { return };
        at = m;
    }
    at.insert(last.to_string(), value);
}

/// Writes `content` to `dir/KEY` (0600 in a 0700 dir), unless it is there
/// already, and returns the path.
fn write_private(dir: &Path, key: &str, content: &[u8]) -> Result<std::path::PathBuf, ApiError> {
    use std::os::unix::fs::OpenOptionsExt;
    super::private_dir(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let path = dir.join(key);
    if std::fs::read(&path).is_ok_and(|old| old == content) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{key}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_secret_gives_its_password_and_query_values_to_strike() {
        assert_eq!(
            url_secret_parts("postgres://bob:pa%40ss@db:5432/app?sslmode=require&key=k3y-long-1&x"),
            ["pa%40ss", "k3y-long-1", "pa@ss"]
        );
        assert_eq!(
            url_secret_parts("mongodb://u:hunter22@a:1,b:2/?authSource=admin"),
            ["hunter22"]
        );
        assert!(url_secret_parts("plain-token-value").is_empty());
    }

    #[test]
    fn dotted_settings_nest_and_paths_are_found_at_any_depth() {
        let mut m = Map::new();
        m.insert("tls".into(), json!({"mode": "require"}));
        set_dotted(&mut m, "tls.ca_file", json!("/x/ca.pem"));
        set_dotted(&mut m, "password", json!("p"));
        assert_eq!(
            Value::Object(m),
            json!({"tls": {"mode": "require", "ca_file": "/x/ca.pem"}, "password": "p"})
        );
        let mut found = Vec::new();
        path_keys(
            "",
            &json!({"host": "h", "tls": {"ca_file": "/etc/ssl", "x": {"data_dir": 1}}, "path": "p"}),
            &mut found,
        );
        found.sort();
        assert_eq!(found, ["path", "tls.ca_file", "tls.x.data_dir"]);
        assert!(is_setting("tls.ca_file") && is_setting("password"));
        for bad in ["", "A", "a..b", ".a", "a b", "ü", &"x".repeat(65)] {
            assert!(!is_setting(bad), "{bad}");
        }
    }

    #[test]
    fn the_connections_a_pipeline_names_are_found_in_sources_sinks_and_dead_letter() {
        let yaml = "name: p\nsources:\n  a: {type: datagen, connection: one}\nsinks:\n  b: {type: postgres, connection: two, inputs: [a]}\n  c: {type: file, path: x, inputs: [a]}\ndead_letter: {type: postgres, connection: one}\n";
        assert_eq!(named_connections(yaml), ["one", "two"]);
        assert!(named_connections("{{{").is_empty());
    }
}
