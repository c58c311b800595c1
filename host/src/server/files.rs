//! A tenant's file area (`tenants/T/files`) through the API: what its
//! `file` sources read and its `file` sinks write, uploaded, listed,
//! downloaded and deleted by the tenant itself.
//!
//! Names are relative paths of plain components (letters, digits, `.`, `_`,
//! `-`, not starting with `.`, so never `.` or `..`; at most [`MAX_DEPTH`]
//! levels), so a request cannot leave the area, and an upload's temporary
//! file (`.upload-*`) is never a name a tenant can use. Nothing here
//! follows a symbolic link, and tenants have no way to make one. Uploads are bounded by `max_request_bytes` each and,
//! with everything the tenant's pipelines wrote there, by `max_file_bytes`
//! (see [`super::usage`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::Server;

/// Most directory levels of a name.
pub const MAX_DEPTH: usize = 8;
/// Longest name, in bytes.
const MAX_NAME_BYTES: usize = 1024;
/// Longest component, in bytes (as most file systems allow).
const MAX_COMPONENT_BYTES: usize = 255;
/// Most files one listing returns.
pub const MAX_LIST: usize = 10_000;

/// The tenant's area.
pub fn area(s: &Server, tenant: &str) -> PathBuf {
    s.tenant_dir(tenant).join("files")
}

/// `name` as a relative path inside the area, or 400 saying what is allowed.
pub fn checked(name: &str) -> Result<PathBuf, ApiError> {
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "invalid file name `{}`: {why}; a name is a relative path of components made of letters, digits, `.`, `_` and `-`, none starting with `.`, at most {MAX_DEPTH} levels",
            name.escape_debug()
        ))
    };
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(bad(&format!(
            "it is empty or longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(bad("too many levels"));
    }
    for part in &parts {
        if part.is_empty() || part.starts_with('.') {
            return Err(bad("it has an empty component or one starting with `.`"));
        }
        if part.len() > MAX_COMPONENT_BYTES {
            return Err(bad(&format!(
                "a component is longer than {MAX_COMPONENT_BYTES} bytes"
            )));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(bad("it has a character outside the allowed ones"));
        }
    }
    Ok(parts.iter().collect())
}

struct Entry {
    path: String,
    bytes: u64,
    modified_ms: u64,
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Entry>, total: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // Not following links: a loop must not hang the server.
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(root, &e.path(), depth + 1, out, total);
        } else if meta.is_file() {
            *total += meta.len();
            if out.len() < MAX_LIST {
                let rel = e.path();
                let rel = rel.strip_prefix(root).unwrap_or(&rel);
                out.push(Entry {
                    path: rel.to_string_lossy().into_owned(),
                    bytes: meta.len(),
                    modified_ms: meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                });
            }
        }
    }
}

/// Bytes of every file in `tenant`'s area.
pub fn used_bytes(s: &Server, tenant: &str) -> u64 {
    let root = area(s, tenant);
    let (mut none, mut total) = (Vec::new(), 0);
    walk(&root, &root, 0, &mut none, &mut total);
    total
}

/// `GET /v1/files`: every file, sorted, with the area's total.
pub fn list(s: &Server, tenant: &str) -> ApiResult {
    let root = area(s, tenant);
    let (mut files, mut total) = (Vec::new(), 0);
    walk(&root, &root, 0, &mut files, &mut total);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let truncated = files.len() >= MAX_LIST;
    let files: Vec<_> = files
        .into_iter()
        .map(|f| json!({"path": f.path, "bytes": f.bytes, "modified_ms": f.modified_ms}))
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({
            "files": files,
            "truncated": truncated,
            "bytes": total,
            "max_file_bytes": s.config.policy(tenant).max_file_bytes,
        })),
    ))
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("no file `{}`", name.escape_debug()))
}

/// The regular file `name` in the area, opened for reading, and its size.
pub fn open(s: &Server, tenant: &str, name: &str) -> Result<(std::fs::File, u64), ApiError> {
    let path = area(s, tenant).join(checked(name)?);
    match path.symlink_metadata() {
        Ok(m) if m.is_file() => {}
        _ => return Err(missing(name)),
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|_| missing(name))?;
    let len = file.metadata().map_err(anyhow::Error::from)?.len();
    Ok((file, len))
}

/// `PUT /v1/files/NAME`: stores `bytes` as `name`, replacing a file of that
/// name atomically (a pipeline reading the old one goes on reading it).
pub fn put(s: &Server, tenant: &str, name: &str, bytes: &[u8]) -> ApiResult {
    let rel = checked(name)?;
    let root = area(s, tenant);
    let path = root.join(&rel);
    let old = match path.symlink_metadata() {
        Ok(m) if m.is_file() => Some(m.len()),
        Ok(_) => {
            return Err(ApiError::Conflict(format!(
                "`{}` is a directory",
                name.escape_debug()
            )))
        }
        Err(_) => None,
    };
    let limit = s.config.policy(tenant).max_file_bytes;
    let requested = used_bytes(s, tenant).saturating_sub(old.unwrap_or(0)) + bytes.len() as u64;
    if requested > limit {
        return Err(ApiError::Quota {
            quota: "max_file_bytes",
            limit,
            requested,
        });
    }
    let parent = path.parent().unwrap_or(&root);
    std::fs::create_dir_all(parent).map_err(|e| {
        // A component that is a file already.
        ApiError::Conflict(format!(
            "cannot make the folders of `{}`: {e}",
            name.escape_debug()
        ))
    })?;
    // Short whatever the name's length (a 255-byte name is allowed), and a
    // name no tenant can give (see [`checked`]).
    let tmp = parent.join(format!(
        ".upload-{}.tmp",
        hex::encode(&Sha256::digest(name.as_bytes())[..8])
    ));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ApiError::Internal(anyhow::anyhow!("storing a file: {e}")));
    }
    let code = if old.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        code,
        Json(json!({
            "path": name,
            "bytes": bytes.len(),
            "sha256": hex::encode(Sha256::digest(bytes)),
        })),
    ))
}

/// `DELETE /v1/files/NAME`.
pub fn delete(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let path = area(s, tenant).join(checked(name)?);
    match path.symlink_metadata() {
        Ok(m) if m.is_file() => {}
        _ => return Err(missing(name)),
    }
    std::fs::remove_file(&path)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("deleting a file: {e}")))?;
    Ok((StatusCode::OK, Json(json!({ "deleted": name }))))
}

#[cfg(test)]
mod tests {
    use super::checked;
    use std::path::PathBuf;

    #[test]
    fn names_stay_inside_the_area() {
        assert_eq!(
            checked("in/orders-2024.jsonl").ok(),
            Some(PathBuf::from("in/orders-2024.jsonl"))
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            ".hidden",
            "a/.upload-b.tmp",
            "a\\b",
            "a b",
            "é",
            "a\0b",
            "a/b/c/d/e/f/g/h/i",
            &"x".repeat(256),
            &"a/".repeat(600),
        ] {
            assert!(checked(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
