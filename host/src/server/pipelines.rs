//! Tenants' pipelines: validated like `sluice validate` plus the server's
//! rules ([`super::policy`]), stored with their desired status, and run by
//! the [`super::supervisor`] with their data under
//! `tenants/T/pipelines/NAME`. Relative `file` paths point into
//! `tenants/T/files`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::policy::{self, is_name, Rules};
use super::store::{key, now_ms, Desired, PipelineRec};
use super::supervisor::{Share, StartError, State, Status};
use super::{plugins, usage, Server};
use crate::config::{self, Diagnostic, Diagnostics, LoadOptions, Location, Pipeline};
use crate::pipeline::check_plugins;
use crate::state::CheckpointStore;

/// How long a stop request waits for the run to drain before answering.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// A pipeline ready to run, and the tenant plugins it uses.
pub struct Prepared {
    /// The pipeline, with the server's data dir.
    pub pipeline: Pipeline,
    /// SHA-256 of each tenant plugin it names.
    pub plugins: Vec<String>,
    /// Secret values of the tenant's named connections, to strike from what
    /// the run reports.
    pub secrets: Vec<String>,
}

impl Prepared {
    /// Strikes this file's secrets from what pipeline `key` reports, from now on.
    fn guard_secrets(&self, key: &str) {
        super::logs::store().set_secrets(key, self.secrets.clone());
    }
}

fn one(file: &Path, at: Location, field: &str, message: String) -> ApiError {
    ApiError::Invalid(Diagnostics::one(Diagnostic::new(file, at, field, message)))
}

/// Validates `yaml` as `tenant`'s pipeline. `name`: the pipeline being
/// updated (the file's `name:` must agree), or `None` to take it from the file.
pub fn prepare(
    s: &Server,
    tenant: &str,
    name: Option<&str>,
    yaml: &str,
) -> Result<Prepared, ApiError> {
    let shown = PathBuf::from(format!("{}.yaml", name.unwrap_or("pipeline")));
    let root = config::parse_yaml(yaml)
        .map_err(|e| one(&shown, e.at, "", format!("invalid YAML: {}", e.message)))?;
    let declared = root.get("name");
    let name = match (name, declared.and_then(|n| n.as_str())) {
        (Some(n), Some(d)) if n != d => {
            return Err(one(
                &shown,
                declared.map_or(root.at, |n| n.at),
                "name",
                format!("`{d}` does not match the pipeline being updated, `{n}`"),
            ))
        }
        (Some(n), _) => n.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(one(
                &shown,
                root.at,
                "name",
                "missing field `name`; a pipeline on a server needs one".into(),
            ))
        }
    };
    let shown = PathBuf::from(format!("{name}.yaml"));
    if !is_name(&name) {
        return Err(one(
            &shown,
            declared.map_or(root.at, |n| n.at),
            "name",
            format!(
                "invalid name `{}`: 1-64 letters, digits, `_`, `-`, `.`, starting with a letter or digit",
                name.escape_debug()
            ),
        ));
    }
    // With a shared catalog, plugins uploaded through other servers.
    plugins::materialize(s, tenant, false)?;
    let tenant_dir = s.tenant_dir(tenant);
    let files_dir = tenant_dir.join("files");
    let grant = s.config.policy(tenant);
    let mine = s.store.plugins(tenant)?;
    let links = plugins::links_dir(s, tenant);
    let known = |spec: &str| {
        mine.iter()
            .any(|p| p.name == spec || spec.strip_prefix("sha256:") == Some(p.sha256.as_str()))
            || (!spec.starts_with("sha256:")
                && config::resolve_plugin(spec, &files_dir, &[]).is_ok())
    };
    // The operator's grants: the same host configuration as the CLI's.
    let host = config::HostConfig::current().map_err(|e| one(&shown, root.at, "", e))?;
    let env = host.env.tenants.clone().unwrap_or_default();
    let rules = Rules {
        file: &shown,
        connectors: &grant.connectors,
        files_dir: &files_dir,
        known_plugin: &known,
        env: &env,
    };
    let opened = super::connections::open_all(s, tenant)?;
    let shown_diags = |mut d: Diagnostics| {
        let prefix = format!("{}/", tenant_dir.display());
        for x in &mut d.0 {
            x.file = shown.clone();
            x.message = x.message.replace(&prefix, "");
            // serde echoes a value of the wrong type, which may be a secret.
            for secret in &opened.secrets {
                x.message = x.message.replace(secret.as_str(), super::logs::STRUCK);
            }
        }
        ApiError::Invalid(d)
    };
    let diags = policy::check(&root, &rules);
    if !diags.is_empty() {
        return Err(shown_diags(diags));
    }
    // Anchored in the tenant's file area, plugins from its own links first
    // (then the built-ins), and only the environment the operator granted
    // tenants (none by default).
    let options = LoadOptions {
        plugin_path: vec![links],
        env_allow: Some(env.clone()),
        connections: Some(opened.connections.clone()),
        ..Default::default()
    };
    // As `sluice validate` does: the stages that loaded have their plugins
    // checked even when other sections have problems, so one answer lists
    // every problem.
    let (pipeline, mut diags) =
        config::load_str_partial(&files_dir.join(&shown), yaml, &options, &|n| {
            std::env::var(n).ok()
        });
    let Some(mut pipeline) = pipeline else {
        return Err(shown_diags(diags));
    };
    diags
        .0
        .extend(check_plugins(&pipeline, &s.engine, &s.cache).0);
    // After the load: hosts and settings named connections lent count too.
    diags
        .0
        .extend(super::reach::check(&pipeline, &root, &shown, &grant.hosts).0);
    if !diags.is_empty() {
        return Err(shown_diags(diags));
    }
    pipeline.name = name;
    pipeline.data_dir = tenant_dir.join("pipelines");
    let mut used: Vec<String> = root
        .get("stages")
        .and_then(|n| n.as_map())
        .into_iter()
        .flatten()
        .filter_map(|(_, body)| body.get("plugin").and_then(|p| p.as_str()))
        .filter_map(|spec| {
            mine.iter()
                .find(|p| p.name == spec || spec.strip_prefix("sha256:") == Some(p.sha256.as_str()))
                .map(|p| p.sha256.clone())
        })
        .collect();
    used.sort();
    used.dedup();
    Ok(Prepared {
        pipeline,
        plugins: used,
        secrets: opened.secrets.clone(),
    })
}

/// What `tenant`'s runs may use, from its policy.
fn share<'a>(s: &Server, tenant: &'a str) -> Share<'a> {
    let policy = s.config.policy(tenant);
    Share {
        tenant,
        cpu_weight: policy.cpu_weight,
        max_memory_mb: policy.max_memory_mb,
    }
}

fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::Memory { limit, requested } => ApiError::Quota {
            quota: "max_memory_mb",
            limit,
            requested,
        },
        StartError::Spawn(e) => anyhow::Error::from(e).into(),
    }
}

/// `POST /v1/validate`: checks without changing anything.
pub fn validate(s: &Server, tenant: &str, yaml: &str) -> ApiResult {
    let p = prepare(s, tenant, None, yaml)?.pipeline;
    Ok((
        StatusCode::OK,
        Json(json!({
            "ok": true, "name": p.name, "sources": p.sources.len(),
            "stages": p.stages.len(), "sinks": p.sinks.len(), "tables": p.tables.len(),
        })),
    ))
}

fn last_checkpoint(s: &Server, tenant: &str, name: &str) -> Option<u64> {
    let dir = s.tenant_dir(tenant).join("pipelines").join(name);
    CheckpointStore::new(&dir)
        .load()
        .ok()
        .flatten()
        .map(|c| c.id)
}

fn status_of(s: &Server, rec: &PipelineRec) -> serde_json::Value {
    let mut status = s
        .supervisor
        .status(&key(&rec.tenant, &rec.name))
        .unwrap_or_else(|| Status::idle(State::Stopped));
    // A run's error names files by their server path; the tenant knows them
    // relative to its own area.
    if let Some(e) = &mut status.error {
        *e = e.replace(&format!("{}/", s.tenant_dir(&rec.tenant).display()), "");
        *e = super::logs::store().scrub(&key(&rec.tenant, &rec.name), e);
    }
    let (runs_on, owner) = super::cluster::placement(s, &key(&rec.tenant, &rec.name), &rec.yaml);
    json!({
        "name": rec.name,
        "desired": rec.desired,
        "runs_on": runs_on,
        "owner": owner,
        "status": status,
        "last_checkpoint": last_checkpoint(s, &rec.tenant, &rec.name),
        "plugins": rec.plugins,
        "updated_ms": rec.updated_ms,
    })
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("no pipeline `{}`", name.escape_debug()))
}

pub(super) fn record(s: &Server, tenant: &str, name: &str) -> Result<PipelineRec, ApiError> {
    s.store.pipeline(tenant, name)?.ok_or_else(|| missing(name))
}

/// The document with every stage's `plugin` left out, to tell an update
/// that changes only plugin builds from any other; `None` if it does not
/// parse as one YAML document.
fn without_stage_plugins(yaml: &str) -> Option<yaml_rust2::Yaml> {
    use yaml_rust2::Yaml;
    let mut docs = yaml_rust2::YamlLoader::load_from_str(yaml).ok()?;
    if docs.len() != 1 {
        return None;
    }
    let mut doc = docs.pop()?;
    if let Yaml::Hash(root) = &mut doc {
        if let Some(Yaml::Hash(stages)) = root.get_mut(&Yaml::String("stages".into())) {
            for (_, body) in stages.iter_mut() {
                if let Yaml::Hash(body) = body {
                    body.remove(&Yaml::String("plugin".into()));
                }
            }
        }
    }
    Some(doc)
}

/// True when `old` and `new` differ at most in their stages' plugins.
fn only_plugins_differ(old: &str, new: &str) -> bool {
    match (without_stage_plugins(old), without_stage_plugins(new)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Creates or replaces a pipeline. New ones start. A running one whose
/// update changes only stages' plugin builds swaps them in place, each at
/// its stage's next batch (a processor's new build takes over its state;
/// a build of the other kind restarts the run instead); an update that
/// changes nothing leaves the run alone; any other restarts it on the new
/// file, resuming from its checkpoint. A stopped one
/// stays stopped. The answer's `update` says which happened.
pub fn deploy(s: &Server, tenant: &str, name: Option<&str>, yaml: &str) -> ApiResult {
    let prepared = prepare(s, tenant, name, yaml)?;
    let name = prepared.pipeline.name.clone();
    let existing = s.store.pipeline(tenant, &name)?;
    if existing.is_none() {
        let limit = s.config.policy(tenant).max_pipelines;
        let requested = s.store.pipelines(tenant)?.len() as u64 + 1;
        if requested > limit {
            return Err(ApiError::Quota {
                quota: "max_pipelines",
                limit,
                requested,
            });
        }
    }
    let desired = existing.as_ref().map_or(Desired::Running, |e| e.desired);
    if desired != Desired::Stopped {
        usage::check(s, tenant)?;
        s.supervisor
            .check_memory(&key(tenant, &name), &prepared.pipeline, share(s, tenant))
            .map_err(start_error)?;
    }
    let rec = PipelineRec {
        tenant: tenant.to_string(),
        name: name.clone(),
        yaml: yaml.to_string(),
        plugins: prepared.plugins.clone(),
        desired,
        updated_ms: now_ms(),
    };
    let k = key(tenant, &name);
    if let Some(old) = existing.as_ref().filter(|_| desired != Desired::Stopped) {
        if s.supervisor.is_live(&k) && only_plugins_differ(&old.yaml, yaml) {
            prepared.guard_secrets(&k);
            match s.supervisor.hot_swap(&k, &prepared.pipeline) {
                Ok(stages) => {
                    s.store.put_pipeline(&rec)?;
                    s.cluster.note(&k, rec.updated_ms, true);
                    let kind = if stages.is_empty() {
                        "unchanged"
                    } else {
                        tracing::info!(tenant, pipeline = %name, stages = ?stages, "hot swap sent; each stage switches at its next batch");
                        "hot-swapped"
                    };
                    let mut v = status_of(s, &rec);
                    v["update"] = json!({ "kind": kind, "stages": stages });
                    return Ok((StatusCode::OK, Json(v)));
                }
                Err(e) => {
                    tracing::info!(tenant, pipeline = %name, "no hot swap ({e}); restarting the run on the new file");
                }
            }
        }
    }
    s.store.put_pipeline(&rec)?;
    let mut started = false;
    if desired != Desired::Stopped {
        if existing.is_some() && !s.supervisor.stop(&k, STOP_WAIT) {
            return Err(ApiError::Conflict(format!(
                "pipeline `{name}` was updated but its previous run is still draining; start it again shortly"
            )));
        }
        // With a shared catalog, another server may hold its lease: that
        // one restarts it on the new file when it next reads the catalog.
        if super::cluster::may_run_here(s, &k, yaml)? {
            prepared.guard_secrets(&k);
            s.supervisor
                .start(
                    &k,
                    prepared.pipeline,
                    desired == Desired::Paused,
                    share(s, tenant),
                )
                .map_err(start_error)?;
            started = true;
        }
    }
    s.cluster.note(&k, rec.updated_ms, started);
    let (code, kind) = match (&existing, desired) {
        (None, _) => (StatusCode::CREATED, "created"),
        (Some(_), Desired::Stopped) => (StatusCode::OK, "stored"),
        (Some(_), _) => (StatusCode::OK, "restarted"),
    };
    let mut v = status_of(s, &rec);
    v["update"] = json!({ "kind": kind, "stages": [] });
    Ok((code, Json(v)))
}

/// The tenant's pipelines with their status.
pub fn list(s: &Server, tenant: &str) -> ApiResult {
    let all: Vec<_> = s
        .store
        .pipelines(tenant)?
        .iter()
        .map(|r| status_of(s, r))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "pipelines": all }))))
}

/// One pipeline: status, and its file when `spec`.
pub fn get(s: &Server, tenant: &str, name: &str, spec: bool) -> ApiResult {
    let rec = record(s, tenant, name)?;
    let mut v = status_of(s, &rec);
    if spec {
        v["yaml"] = json!(rec.yaml);
    }
    Ok((StatusCode::OK, Json(v)))
}

/// Most lines one logs request returns.
const MAX_LOG_PAGE: u64 = 1_000;

/// The pipeline's own log lines after line `since` (at most `limit`, capped
/// at [`MAX_LOG_PAGE`]), kept since the server started.
/// A pipeline that is not the caller's is a 404 whatever the query says.
pub fn logs(s: &Server, tenant: &str, name: &str, page: Result<(u64, u64), ApiError>) -> ApiResult {
    record(s, tenant, name)?;
    let (since, limit) = page?;
    let limit = usize::try_from(limit.min(MAX_LOG_PAGE)).unwrap_or(usize::MAX);
    let mut page = super::logs::store().read(&key(tenant, name), since, limit);
    // As in the status: paths relative to the tenant's own area.
    let area = format!("{}/", s.tenant_dir(tenant).display());
    for line in &mut page.lines {
        if line.message.contains(&area) {
            line.message = line.message.replace(&area, "");
        }
    }
    Ok((StatusCode::OK, Json(json!(page))))
}

/// Starts a pipeline (and keeps it running across server restarts).
pub fn start(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let mut rec = record(s, tenant, name)?;
    let prepared = prepare(s, tenant, Some(name), &rec.yaml)?;
    usage::check(s, tenant)?;
    let k = key(tenant, name);
    s.supervisor
        .check_memory(&k, &prepared.pipeline, share(s, tenant))
        .map_err(start_error)?;
    rec.desired = Desired::Running;
    rec.updated_ms = now_ms();
    s.store.put_pipeline(&rec)?;
    // A paused run resumes in place; anything else starts (here, unless
    // another server holds its lease).
    prepared.guard_secrets(&k);
    let mut started = s.supervisor.set_paused(&k, false);
    if !started && super::cluster::may_run_here(s, &k, &rec.yaml)? {
        s.supervisor
            .start(&k, prepared.pipeline, false, share(s, tenant))
            .map_err(start_error)?;
        started = true;
    }
    s.cluster.note(&k, rec.updated_ms, started);
    Ok((StatusCode::OK, Json(status_of(s, &rec))))
}

/// Pauses a running pipeline: its sources read nothing until it is
/// started (resumed) again; checkpoints go on, and the run keeps its
/// in-memory state. Kept across server restarts.
pub fn pause(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let mut rec = record(s, tenant, name)?;
    let k = key(tenant, name);
    // With a shared catalog it may run on another server only, which
    // pauses it when it next reads the catalog.
    let here = s.supervisor.set_paused(&k, true);
    if rec.desired == Desired::Stopped || (!here && s.store.pg().is_none()) {
        return Err(ApiError::Conflict(format!(
            "pipeline `{name}` is not running; start it first"
        )));
    }
    rec.desired = Desired::Paused;
    rec.updated_ms = now_ms();
    s.store.put_pipeline(&rec)?;
    s.cluster.note(&k, rec.updated_ms, here);
    Ok((StatusCode::OK, Json(status_of(s, &rec))))
}

/// Stops a pipeline: it drains and takes a last checkpoint.
pub fn stop(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let mut rec = record(s, tenant, name)?;
    rec.desired = Desired::Stopped;
    rec.updated_ms = now_ms();
    s.store.put_pipeline(&rec)?;
    let k = key(tenant, name);
    s.supervisor.stop(&k, STOP_WAIT);
    s.cluster.note(&k, rec.updated_ms, false);
    super::cluster::release(s, &k);
    Ok((StatusCode::OK, Json(status_of(s, &rec))))
}

/// Stops and deletes a pipeline with its checkpoints (not its output files).
pub fn delete(s: &Server, tenant: &str, name: &str) -> ApiResult {
    record(s, tenant, name)?;
    let k = key(tenant, name);
    if !s.supervisor.stop(&k, STOP_WAIT) {
        return Err(ApiError::Conflict(format!(
            "pipeline `{name}` is still draining; delete it again shortly"
        )));
    }
    s.store.delete_pipeline(tenant, name)?;
    super::cluster::release(s, &k);
    s.supervisor.remove(&k);
    super::logs::store().forget(&k);
    let _ = std::fs::remove_dir_all(s.tenant_dir(tenant).join("pipelines").join(name));
    Ok((StatusCode::OK, Json(json!({ "deleted": name }))))
}

/// At server start: every pipeline that should run starts again, resuming
/// from its checkpoint. One that no longer validates is marked failed.
pub fn resume_all(s: &Server) {
    let recs = match s.store.pipelines("") {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot read pipelines from the catalog");
            return;
        }
    };
    for rec in recs.into_iter().filter(|r| r.desired != Desired::Stopped) {
        tracing::info!(pipeline = %key(&rec.tenant, &rec.name), "resuming");
        start_here(s, &rec);
    }
}

/// Starts `rec` on this server (paused if it should be), resuming from its
/// checkpoint here; one that no longer validates, or cannot start, is
/// marked failed with the reason.
pub fn start_here(s: &Server, rec: &PipelineRec) {
    let k = key(&rec.tenant, &rec.name);
    match prepare(s, &rec.tenant, Some(&rec.name), &rec.yaml) {
        Ok(p) => {
            p.guard_secrets(&k);
            if let Err(e) = s.supervisor.start(
                &k,
                p.pipeline,
                rec.desired == Desired::Paused,
                share(s, &rec.tenant),
            ) {
                s.supervisor.failed(&k, format!("cannot start: {e}"));
            }
        }
        Err(ApiError::Invalid(d)) => {
            let lines: Vec<String> = d.0.iter().map(|x| x.to_string()).collect();
            s.supervisor
                .failed(&k, format!("no longer valid: {}", lines.join("; ")));
        }
        Err(e) => s.supervisor.failed(&k, format!("cannot start: {e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::only_plugins_differ;

    const BASE: &str = "name: p\nsources:\n  s: {type: datagen, kind: customers, count: 10}\nstages:\n  a: {plugin: one, inputs: [s]}\n  b:\n    plugin: two\n    inputs: [a]\n    params: {x: 1}\nsinks:\n  o: {type: file, path: o.jsonl, inputs: [b]}\n";

    #[test]
    fn only_a_change_of_stage_plugins_counts_as_a_plugin_only_update() {
        assert!(only_plugins_differ(BASE, BASE));
        assert!(only_plugins_differ(
            BASE,
            &BASE.replace("plugin: one", "plugin: sha256:abcd")
        ));
        assert!(only_plugins_differ(
            BASE,
            &BASE
                .replace("plugin: two", "plugin: three")
                .replace("plugin: one", "plugin: four")
        ));
        // Params, inputs, sources and sinks are other changes.
        assert!(!only_plugins_differ(BASE, &BASE.replace("x: 1", "x: 2")));
        assert!(!only_plugins_differ(
            BASE,
            &BASE.replace("count: 10", "count: 11")
        ));
        assert!(!only_plugins_differ(
            BASE,
            &BASE.replace("o.jsonl", "p.jsonl")
        ));
        assert!(!only_plugins_differ(
            BASE,
            &BASE.replace("inputs: [a]", "inputs: [s]")
        ));
        // A `plugin` key elsewhere (a source's, say) is not a stage's.
        let sourced = BASE.replace("count: 10}", "count: 10, plugin: x}");
        assert!(!only_plugins_differ(
            &sourced,
            &sourced.replace("plugin: x}", "plugin: y}")
        ));
        // Not one YAML document: never a plugin-only update.
        assert!(!only_plugins_differ(BASE, "a: [unclosed"));
        assert!(!only_plugins_differ(BASE, &format!("{BASE}---\n{BASE}")));
    }
}
