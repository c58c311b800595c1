//! Several servers on one PostgreSQL catalog.
//!
//! Each server polls the catalog every [`POLL`] and reconciles: a pipeline
//! created, changed, stopped or deleted through any server takes effect on
//! every server that should run it. Which servers run a pipeline:
//!
//! - one whose sources are all `kafka` sources runs on **every** server:
//!   they are members of its consumer group, which splits the partitions
//!   between them and moves a dead member's partitions to the others, who
//!   resume from the group's committed offsets;
//! - any other runs on **exactly one** server, the holder of its lease (a
//!   row in the catalog with an owner and an expiry, renewed on every
//!   poll). A server that dies stops renewing, and once the lease expires
//!   ([`super::config::SharedCatalog::lease`]) another server takes it and
//!   starts the pipeline, from its own local checkpoint (checkpoints and
//!   state are per server, not shared).
//!
//! Each server also records the pipelines it runs, so the status on any
//! server says where a pipeline runs (`runs_on`, `owner`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::store::{key, Desired, PipelineRec};
use super::Server;

/// How often each server reads the catalog and renews its leases.
pub const POLL: Duration = Duration::from_secs(1);

/// How long a drained stop may take before reconciling goes on.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// What this server did with one pipeline.
#[derive(Debug, Clone, Copy)]
struct Applied {
    /// The catalog record's `updated_ms` it acted on.
    version: u64,
    /// Whether it started a run of that version here (a run that then
    /// finished or failed is not started again until the record changes).
    started: bool,
}

/// This server's view of the shared catalog.
#[derive(Default)]
pub struct Cluster {
    applied: Mutex<HashMap<String, Applied>>,
    /// Pipelines whose lease this server holds.
    held: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// Records that this server acted on version `version` of `key` (an API
    /// call did), so reconciling does not do it again.
    pub fn note(&self, key: &str, version: u64, started: bool) {
        lock(&self.applied).insert(key.to_string(), Applied { version, started });
    }
}

/// True when every source of the pipeline file is a `kafka` source in a
/// consumer group, or one with `assign: all` that feeds tables only: such a
/// pipeline runs on every server. The group splits the stream's partitions,
/// and each server's tables read the whole of their topics. A source with
/// `assign: all` that reaches a stage or sink would be read whole by every
/// server, so that pipeline runs on one.
pub fn shared(yaml: &str) -> bool {
    let Ok(root) = crate::config::parse_yaml(yaml) else {
        return false;
    };
    let Some(sources) = root.get("sources").and_then(|n| n.as_map()) else {
        return false;
    };
    let mut grouped = false;
    let mut whole = Vec::new();
    for (name, body) in sources {
        if body.get("type").and_then(|t| t.as_str()) != Some("kafka") {
            return false;
        }
        if body.get("assign").and_then(|a| a.as_str()) == Some("all") {
            whole.push(name.as_str().unwrap_or_default());
        } else if body.get("group_id").is_some() {
            grouped = true;
        } else {
            return false;
        }
    }
    grouped && whole.iter().all(|w| feeds_tables_only(&root, w))
}

/// True when no stage or sink of the pipeline file lists `source` in its
/// `inputs` (a table's `input` is where it may go).
fn feeds_tables_only(root: &crate::config::Node, source: &str) -> bool {
    ["stages", "sinks"].iter().all(|section| {
        root.get(section)
            .and_then(|n| n.as_map())
            .unwrap_or_default()
            .iter()
            .all(|(_, body)| {
                let inputs = body.get("inputs");
                let listed = match inputs.map(|i| &i.kind) {
                    Some(crate::config::NodeKind::Seq(items)) => {
                        items.iter().any(|i| i.as_str() == Some(source))
                    }
                    Some(_) => inputs.and_then(|i| i.as_str()) == Some(source),
                    None => false,
                };
                !listed
            })
    })
}

/// Whether this server may run `key` now: always with the redb catalog, and
/// with a shared one when it is shared ([`shared`]) or this server holds (or
/// just took) its lease.
pub fn may_run_here(s: &Server, key: &str, yaml: &str) -> anyhow::Result<bool> {
    may_run_here_renewed(s, key, yaml, None)
}

/// Leases a pass took or renewed at once ([`PgStore::lease_all`]): the
/// pipelines asked for, and those this server holds.
struct Renewed {
    asked: HashSet<String>,
    held: HashSet<String>,
}

/// [`may_run_here`], with the lease of a pipeline in `renewed` taken from
/// it rather than asked for again.
fn may_run_here_renewed(
    s: &Server,
    key: &str,
    yaml: &str,
    renewed: Option<&Renewed>,
) -> anyhow::Result<bool> {
    let (Some(pg), Some(c)) = (s.store.pg(), &s.config.catalog) else {
        return Ok(true);
    };
    if shared(yaml) {
        return Ok(true);
    }
    let mine = match renewed {
        Some(r) if r.asked.contains(key) => r.held.contains(key),
        _ => pg.lease(key, &c.server_id, c.lease)?,
    };
    let mut held = lock(&s.cluster.held);
    if mine {
        held.insert(key.to_string());
    } else {
        held.remove(key);
    }
    Ok(mine)
}

/// Gives up this server's lease on `key`, if it holds one.
pub fn release(s: &Server, key: &str) {
    let (Some(pg), Some(c)) = (s.store.pg(), &s.config.catalog) else {
        return;
    };
    if lock(&s.cluster.held).remove(key) {
        if let Err(e) = pg.release(key, &c.server_id) {
            tracing::warn!(pipeline = %key, error = %format!("{e:#}"), "cannot release the lease; it expires by itself");
        }
    }
}

/// Where `rec` runs, for its status: the servers that reported a live run
/// of it, and the holder of its lease (`None` for a pipeline that runs on
/// every server). With the redb catalog: this server, if it runs it.
pub fn placement(s: &Server, k: &str, yaml: &str) -> (Vec<String>, Option<String>) {
    let (Some(pg), Some(c)) = (s.store.pg(), &s.config.catalog) else {
        let here = s.supervisor.is_live(k);
        return (if here { vec![local_id(s)] } else { Vec::new() }, None);
    };
    // A server reports every poll; three missed polls and it is not counted.
    let runs = pg.runs_on(k, POLL * 3).unwrap_or_default();
    let owner = if shared(yaml) {
        None
    } else {
        pg.lease_owner(k).unwrap_or_default()
    };
    // This server's own view is fresher than its last report.
    let mut runs: Vec<String> = runs.into_iter().filter(|r| r != &c.server_id).collect();
    if s.supervisor.is_live(k) {
        runs.push(c.server_id.clone());
        runs.sort();
    }
    (runs, owner)
}

/// This server's name: its `server_id` with a shared catalog, else its
/// listen address.
pub fn local_id(s: &Server) -> String {
    match &s.config.catalog {
        Some(c) => c.server_id.clone(),
        None => s.config.listen.to_string(),
    }
}

/// Starts the reconciling thread.
pub fn spawn(s: Arc<Server>) {
    let spawned = std::thread::Builder::new()
        .name("catalog-sync".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            reconcile(&s);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the catalog sync thread: {e}");
    }
}

/// One pass: makes this server's runs agree with the catalog.
pub fn reconcile(s: &Server) {
    if let Err(e) = reconcile_once(s) {
        // The catalog is unreachable: runs go on as they are; leases are
        // not renewed, so after `lease_seconds` another server may start
        // this server's single-run pipelines too (at least once, never
        // lost).
        tracing::warn!(error = %format!("{e:#}"), "cannot reconcile with the shared catalog; retrying");
    }
}

fn reconcile_once(s: &Server) -> anyhow::Result<()> {
    let Some(pg) = s.store.pg() else {
        return Ok(());
    };
    let recs = s.store.pipelines("")?;
    let mut tenants: Vec<&str> = recs.iter().map(|r| r.tenant.as_str()).collect();
    tenants.dedup();
    for t in tenants {
        // Uploads and deletes hold it too: links they are making are not
        // taken for stale ones.
        let _guard = s.lock_tenant(t);
        if let Err(e) = super::plugins::materialize(s, t, true) {
            tracing::warn!(tenant = %t, error = %format!("{e:#}"), "cannot fetch the tenant's plugins from the catalog");
        }
    }
    let present: HashSet<String> = recs.iter().map(|r| key(&r.tenant, &r.name)).collect();
    // Every lease this pass needs, taken or renewed in one statement.
    let renewed = match &s.config.catalog {
        Some(c) => {
            let asked: Vec<String> = recs
                .iter()
                .filter(|r| r.desired != Desired::Stopped && !shared(&r.yaml))
                .map(|r| key(&r.tenant, &r.name))
                .collect();
            let held = pg.lease_all(&asked, &c.server_id, c.lease)?;
            Some(Renewed {
                asked: asked.into_iter().collect(),
                held,
            })
        }
        None => None,
    };
    for rec in &recs {
        let _guard = s.lock_tenant(&rec.tenant);
        // Read again under the lock: an API call may have changed it.
        match s.store.pipeline(&rec.tenant, &rec.name)? {
            Some(fresh) => one(s, &fresh, renewed.as_ref())?,
            None => gone(s, &key(&rec.tenant, &rec.name)),
        }
    }
    // Deleted through another server.
    let known: Vec<String> = lock(&s.cluster.applied).keys().cloned().collect();
    for k in known.into_iter().filter(|k| !present.contains(k)) {
        let tenant = k.split_once('/').map_or("", |(t, _)| t).to_string();
        let _guard = s.lock_tenant(&tenant);
        gone(s, &k);
    }
    let server = local_id(s);
    pg.set_runs(&server, s.supervisor.live_keys())?;
    Ok(())
}

/// Reconciles one pipeline that is in the catalog.
fn one(s: &Server, rec: &PipelineRec, renewed: Option<&Renewed>) -> anyhow::Result<()> {
    let k = key(&rec.tenant, &rec.name);
    let here = rec.desired != Desired::Stopped && may_run_here_renewed(s, &k, &rec.yaml, renewed)?;
    if !here {
        release_unless_wanted(s, &k, rec);
    }
    let live = s.supervisor.is_live(&k);
    let applied = lock(&s.cluster.applied).get(&k).copied();
    let changed = applied.is_none_or(|a| a.version != rec.updated_ms);
    if !here {
        if live {
            tracing::info!(pipeline = %k, "stopping: stopped through another server, or another server holds its lease");
            s.supervisor.stop(&k, STOP_WAIT);
        }
        s.cluster.note(&k, rec.updated_ms, false);
        return Ok(());
    }
    if live && changed {
        tracing::info!(pipeline = %k, "changed through another server; restarting on the new file");
        if !s.supervisor.stop(&k, STOP_WAIT) {
            // Still draining: the next pass tries again.
            return Ok(());
        }
    } else if live || applied.is_some_and(|a| !changed && a.started) {
        // Running the current version, or it ran here and ended.
        return Ok(());
    }
    tracing::info!(pipeline = %k, "starting (shared catalog)");
    super::pipelines::start_here(s, rec);
    s.cluster.note(&k, rec.updated_ms, true);
    Ok(())
}

/// A stopped pipeline's lease goes back, so the next start may run anywhere.
fn release_unless_wanted(s: &Server, k: &str, rec: &PipelineRec) {
    if rec.desired == Desired::Stopped {
        release(s, k);
    }
}

/// `k` is no longer in the catalog: its run stops and its local data goes.
fn gone(s: &Server, k: &str) {
    if s.supervisor.is_live(k) {
        tracing::info!(pipeline = %k, "deleted through another server; stopping");
        if !s.supervisor.stop(k, STOP_WAIT) {
            return;
        }
    }
    release(s, k);
    s.supervisor.remove(k);
    super::logs::store().forget(k);
    if let Some((tenant, name)) = k.split_once('/') {
        let _ = std::fs::remove_dir_all(s.tenant_dir(tenant).join("pipelines").join(name));
    }
    lock(&s.cluster.applied).remove(k);
}

#[cfg(test)]
mod tests {
    use super::shared;

    #[test]
    fn only_a_pipeline_of_kafka_sources_with_groups_runs_on_every_server() {
        let kafka = "{type: kafka, brokers: \"b:1\", topics: [t], group_id: g}";
        assert!(shared(&format!(
            "name: p\nsources:\n  a: {kafka}\n  b: {kafka}\nsinks:\n  o: {{type: file, path: o, inputs: [a, b]}}\n"
        )));
        assert!(!shared(&format!(
            "name: p\nsources:\n  a: {kafka}\n  b: {{type: datagen, kind: customers}}\nsinks:\n  o: {{type: file, path: o, inputs: [a, b]}}\n"
        )));
        assert!(!shared(
            "name: p\nsources:\n  a: {type: datagen, kind: customers}\n"
        ));
        assert!(!shared("name: p\nsinks: {}\n"));
        assert!(!shared("a: [unclosed"));
    }

    #[test]
    fn a_source_read_whole_runs_everywhere_only_when_it_feeds_tables_alone() {
        let stream = "{type: kafka, brokers: \"b:1\", topics: [o], group_id: g}";
        let whole = "{type: kafka, brokers: \"b:1\", topics: [c], assign: all}";
        let tail = "stages:\n  j: {plugin: lookup-join, inputs: [orders], tables: [people], params: {table: people, on: id}}\nsinks:\n  out: {type: file, path: o, inputs: [j]}\n";
        assert!(shared(&format!(
            "name: p\nsources:\n  orders: {stream}\n  customers: {whole}\ntables:\n  people: {{input: customers, key_field: id}}\n{tail}"
        )));
        // Every server would write the whole topic: leased.
        assert!(!shared(&format!(
            "name: p\nsources:\n  orders: {stream}\n  customers: {whole}\nsinks:\n  out: {{type: file, path: o, inputs: [orders, customers]}}\n"
        )));
        assert!(!shared(&format!(
            "name: p\nsources:\n  customers: {whole}\nsinks:\n  out: {{type: file, path: o, inputs: customers}}\n"
        )));
        // Nothing split by a group: one server reads it all.
        assert!(!shared(&format!(
            "name: p\nsources:\n  customers: {whole}\ntables:\n  people: {{input: customers}}\n"
        )));
    }
}
