//! The byte quotas (`max_state_bytes`, `max_dead_letter_bytes`,
//! `max_file_bytes`): what a tenant's pipelines keep under
//! `tenants/T/pipelines` (checkpoints, keyed state, table snapshots; and the
//! default dead-letter files, `dead-letters*`, counted apart), and its file
//! area `tenants/T/files` (uploads, and what its `file` sinks write).
//!
//! Checked before a pipeline is created, updated or started (403 naming the
//! quota; nothing changes), and every second while pipelines run: a tenant
//! over either quota has its running pipelines stopped (with a last
//! checkpoint), marked `failed` with the quota in `error`, and left
//! stopped until it frees space (deleting a pipeline deletes its state).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::error::ApiError;
use super::store::{key, now_ms, Desired};
use super::Server;

/// How often running tenants' usage is measured.
const EVERY: Duration = Duration::from_secs(1);
/// Deepest directory level walked (state nests a few levels at most).
const MAX_DEPTH: usize = 8;

/// Bytes a tenant's pipelines keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Checkpoints, keyed state, table snapshots.
    pub state_bytes: u64,
    /// Default dead-letter files.
    pub dead_letter_bytes: u64,
    /// The file area.
    pub file_bytes: u64,
}

fn walk(dir: &Path, depth: usize, u: &mut Usage) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // Not following links: a tenant cannot make a link here, and a
        // loop must not hang the server.
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(&e.path(), depth + 1, u);
        } else if meta.is_file() {
            if e.file_name().to_string_lossy().starts_with("dead-letters") {
                u.dead_letter_bytes += meta.len();
            } else {
                u.state_bytes += meta.len();
            }
        }
    }
}

/// What `tenant`'s pipelines keep right now.
pub fn of(s: &Server, tenant: &str) -> Usage {
    let mut u = Usage::default();
    walk(&s.tenant_dir(tenant).join("pipelines"), 0, &mut u);
    u.file_bytes = super::files::used_bytes(s, tenant);
    u
}

/// The quota `tenant` is over, if any.
pub fn check(s: &Server, tenant: &str) -> Result<(), ApiError> {
    let p = s.config.policy(tenant);
    let u = of(s, tenant);
    for (quota, used, limit) in [
        ("max_state_bytes", u.state_bytes, p.max_state_bytes),
        (
            "max_dead_letter_bytes",
            u.dead_letter_bytes,
            p.max_dead_letter_bytes,
        ),
        ("max_file_bytes", u.file_bytes, p.max_file_bytes),
    ] {
        if used > limit {
            return Err(ApiError::Quota {
                quota,
                limit,
                requested: used,
            });
        }
    }
    Ok(())
}

/// Measures every tenant with a live run each second, and stops the runs
/// of a tenant over a byte quota. Runs until the process ends.
pub fn spawn_watch(s: Arc<Server>) {
    let spawned = std::thread::Builder::new()
        .name("serve-usage".into())
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            let mut tenants: Vec<String> = s
                .supervisor
                .live_keys()
                .iter()
                .filter_map(|k| k.split_once('/').map(|(t, _)| t.to_string()))
                .collect();
            tenants.dedup();
            for t in tenants {
                if let Err(ApiError::Quota {
                    quota,
                    limit,
                    requested,
                }) = check(&s, &t)
                {
                    let free = if quota == "max_file_bytes" {
                        "delete files (DELETE /v1/files/NAME) to free space"
                    } else {
                        "delete pipelines to free space"
                    };
                    halt(&s, &t, &format!("stopped: over quota `{quota}`: {requested} bytes used, the limit is {limit}; {free}"));
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the usage watch; byte quotas are checked only on deploy and start");
    }
}

fn halt(s: &Server, tenant: &str, why: &str) {
    let _guard = s.lock_tenant(tenant);
    let Ok(recs) = s.store.pipelines(tenant) else {
        return;
    };
    for mut rec in recs {
        let k = key(tenant, &rec.name);
        if !s.supervisor.is_live(&k) {
            continue;
        }
        tracing::warn!(pipeline = %k, "{why}");
        rec.desired = Desired::Stopped;
        rec.updated_ms = now_ms();
        if let Err(e) = s.store.put_pipeline(&rec) {
            tracing::error!(error = %format!("{e:#}"), "cannot record a stop");
        }
        s.supervisor.halt(&k, why);
    }
}
