//! Checking a loaded pipeline's stages before anything runs: the operator's
//! ceilings, then each plugin loaded and instantiated with its parameters (a
//! plugin validates its own). `sluice validate`, `sluice run` and `sluice
//! serve` share it, so a server reports exactly what the CLI does.

use std::sync::Arc;

use crate::config::{Diagnostic, Diagnostics, HostConfig, Pipeline};
use crate::plugin::{
    with_log_budget, ComponentCache, LoadError, ProcessorInstance, StagePlugin, TransformInstance,
    UdfPlugin, UdfSet, WasmEngine,
};

/// Loads the pipeline's user-defined functions (each checked to be a `udf`
/// component). The error names the function whose plugin failed.
///
/// Also returns, on failure, the set with the failed functions named
/// without a plugin, so validation goes on with the stages that call them.
#[allow(clippy::type_complexity)]
pub fn load_udfs(
    p: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
) -> Result<Arc<UdfSet>, (Arc<UdfSet>, Vec<(usize, Option<LoadError>)>)> {
    let mut set = UdfSet::new();
    let mut errors = Vec::new();
    for (i, udf) in p.udfs.iter().enumerate() {
        let Some(path) = &udf.plugin else {
            // Reported when the file was loaded.
            set.add_unloaded(&udf.name);
            errors.push((i, None));
            continue;
        };
        match with_log_budget(64 * 1024, || UdfPlugin::load(engine, cache, path)) {
            Ok(plugin) => set.add(&udf.name, Arc::new(plugin), udf.limits),
            Err(e) => {
                set.add_unloaded(&udf.name);
                errors.push((i, Some(e)));
            }
        }
    }
    if errors.is_empty() {
        Ok(Arc::new(set))
    } else {
        Err((Arc::new(set), errors))
    }
}

/// Loads every stage's plugin and lets it validate its parameters.
pub fn check_plugins(p: &Pipeline, engine: &WasmEngine, cache: &ComponentCache) -> Diagnostics {
    let mut diags = Diagnostics::default();
    // The operator's ceilings bound what a pipeline file may ask for.
    let ceilings = match HostConfig::current() {
        Ok(c) => c.ceilings,
        Err(e) => {
            diags.push(Diagnostic::new(&p.file, Default::default(), "host", e));
            return diags;
        }
    };
    for t in &p.tables {
        if t.config.max_mb == 0 {
            diags.push(Diagnostic::new(
                &p.file,
                t.at,
                &format!("tables.{}.max_mb", t.name),
                "0 is out of range: expected at least 1 (MiB)".into(),
            ));
        } else if let Some(message) = ceilings.check_table(t.config.max_mb) {
            diags.push(Diagnostic::new(
                &p.file,
                t.at,
                &format!("tables.{}.max_mb", t.name),
                message,
            ));
        }
    }
    for udf in &p.udfs {
        for (limit, message) in ceilings.check_udf(&udf.limits) {
            diags.push(Diagnostic::new(
                &p.file,
                udf.at,
                &format!("udfs.{}.limits.{limit}", udf.name),
                message,
            ));
        }
    }
    // A custom connector's plugin is held to the same ceilings as a stage's;
    // a native one's client buffers to `client_buffer_mb`.
    for c in super::footprint::connector_bounds(p) {
        if let Some(b) = c.buffers {
            if let Some(message) = ceilings.check_client(&b) {
                diags.push(Diagnostic::new(
                    &p.file,
                    c.at,
                    &format!("{}.{}", c.field, b.field),
                    message,
                ));
            }
        }
        for (limit, message) in c.limits.map(|l| ceilings.check(&l)).unwrap_or_default() {
            diags.push(Diagnostic::new(
                &p.file,
                c.at,
                &format!("{}.limits.{limit}", c.field),
                message,
            ));
        }
    }
    let udfs = match load_udfs(p, engine, cache) {
        Ok(set) => Some(set),
        Err((set, errors)) => {
            for (i, e) in errors {
                let Some(e) = e else { continue };
                let udf = &p.udfs[i];
                diags.push(Diagnostic::new(
                    &p.file,
                    udf.plugin_at,
                    &format!("udfs.{}.plugin", udf.name),
                    e.to_string(),
                ));
            }
            // Stages are still checked; their calls of every function
            // still parse.
            Some(set)
        }
    };
    for stage in &p.stages {
        let field = format!("stages.{}", stage.name);
        let over = ceilings.check(&stage.limits);
        if !over.is_empty() {
            for (limit, message) in over {
                diags.push(Diagnostic::new(
                    &p.file,
                    stage.at,
                    &format!("{field}.limits.{limit}"),
                    message,
                ));
            }
            continue;
        }
        match StagePlugin::load(engine, cache, &stage.plugin, stage.limits.cpu_ms_per_call) {
            Err(e) => diags.push(Diagnostic::new(
                &p.file,
                stage.plugin_at,
                &format!("{field}.plugin"),
                e.to_string(),
            )),
            Ok(plugin) => {
                let created = with_log_budget(stage.limits.log_bytes_per_call(), || match plugin {
                    StagePlugin::Transform(plugin) => TransformInstance::with_udfs(
                        Arc::new(plugin),
                        &stage.name,
                        &stage.params,
                        stage.limits,
                        udfs.clone(),
                    )
                    .map(drop),
                    StagePlugin::Processor(plugin) => ProcessorInstance::new(
                        Arc::new(plugin),
                        &stage.name,
                        &stage.params,
                        stage.limits,
                        Default::default(),
                    )
                    .map(drop),
                });
                if let Err(e) = created {
                    diags.push(Diagnostic::new(
                        &p.file,
                        stage.params_at,
                        &format!("{field}.params"),
                        e.to_string(),
                    ));
                }
            }
        }
    }
    diags
}
