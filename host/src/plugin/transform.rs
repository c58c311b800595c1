//! Loading a transform component and calling it under the stage's limits.
//!
//! A trap or a limit breach fails only that call: the store (and with it the
//! instance) is dropped and the next call gets a fresh instance from the
//! pre-linked `InstancePre`, which costs tens of microseconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceAny};
use wasmtime::{Store, Trap};

use super::bindings::{self, v2, Batch, Output, Param, PluginInfo};
use super::cache::{CacheOutcome, ComponentCache};
use super::component::{self, ComponentError, Shape, World};
use super::engine::WasmEngine;
use super::host::HostState;
use super::limiter::StoreData;
use super::limits::{CpuBudget, Limits};
use super::output_check::{self, OutputFault};
use super::wire;
use crate::event::FieldTables;

/// A linked component of either contract version this host runs.
enum Pre {
    /// 0.1.0: batches cross as lists of records.
    V1(bindings::TransformPre<StoreData>),
    /// 0.2.0: batches cross as byte tables.
    V2(v2::TransformPre<StoreData>),
}

/// An instance of either version.
enum Guest {
    V1(bindings::Transform),
    V2(v2::Transform),
}

/// True when `shape` exports contract 0.1.0 (whose batches are converted at
/// the boundary); anything else that passed the version check is 0.2.0.
pub(crate) fn is_v1(shape: &Shape) -> bool {
    shape.version.as_deref() == Some("0.1.0")
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not a usable component.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// Linking or instantiation failed.
    #[error("{path}: {message}")]
    Link {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// A compiled, linked transform component, ready to instantiate.
pub struct TransformPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Its exports and imports.
    pub shape: Shape,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the file, which (unlike `info`) the plugin cannot fake.
    pub sha256: [u8; 32],
    engine: wasmtime::Engine,
    budget: CpuBudget,
    pre: Pre,
}

impl std::fmt::Debug for TransformPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformPlugin")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

pub(crate) fn link_err(path: &Path, e: impl std::fmt::Debug) -> LoadError {
    let mut message = format!("{e:?}");
    if message.contains("count too high") {
        // wasmtime's words name neither the setting nor who sets it.
        let c = super::limits::component_counts();
        message.push_str(&format!(
            "; this host lets one plugin instance create at most {} core instances, {} memories and {} tables (the operator's host configuration: ceilings.instances_per_component, memories_per_component, tables_per_component)",
            c.instances, c.memories, c.tables
        ));
    }
    LoadError::Link {
        path: path.display().to_string(),
        message,
    }
}

/// Why instantiating a plugin and calling its `describe` (once per load,
/// under `budget`) failed: a spin names the budget, not a bare interrupt.
pub(crate) fn describe_err(path: &Path, e: wasmtime::Error, budget: CpuBudget) -> LoadError {
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return LoadError::Link {
            path: path.display().to_string(),
            message: format!(
                "loading the plugin (instantiating it and calling its describe()) exceeded the CPU budget of {budget} that loading gets; the plugin spins before any stage uses it"
            ),
        };
    }
    link_err(path, e)
}

impl TransformPlugin {
    /// Reads, checks, compiles (or loads from cache) and links `path` for the
    /// default CPU budget.
    pub fn load(
        engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
    ) -> Result<Self, LoadError> {
        Self::load_for(engine, cache, path, CpuBudget::default())
    }

    /// Like [`TransformPlugin::load`], compiled for `budget` (an unlimited
    /// budget uses the engine without epoch checks).
    pub fn load_for(
        wasm_engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
        budget: CpuBudget,
    ) -> Result<Self, LoadError> {
        Self::from_compiled(path, compile(wasm_engine, cache, path, budget)?, budget)
    }

    /// Links an already compiled component (see [`compile`]).
    pub(crate) fn from_compiled(
        path: &Path,
        compiled: Compiled,
        budget: CpuBudget,
    ) -> Result<Self, LoadError> {
        let Compiled {
            engine,
            component,
            shape,
            outcome,
            size,
            sha256,
        } = compiled;
        component::check_world(path, &shape, World::Transform)?;
        let engine = &engine;

        let v1 = is_v1(&shape);
        let mut linker: Linker<StoreData> = Linker::new(engine);
        if v1 {
            bindings::Transform::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| {
                &mut s.host
            })
        } else {
            v2::Transform::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| {
                &mut s.host
            })
        }
        .map_err(|e| link_err(path, e))?;
        // No ambient authority: any WASI import a toolchain drags in (std's
        // stderr, env, clock) links to a trap instead of a capability.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| link_err(path, e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| link_err(path, e))?;
        let pre = if v1 {
            Pre::V1(bindings::TransformPre::new(pre).map_err(|e| link_err(path, e))?)
        } else {
            Pre::V2(v2::TransformPre::new(pre).map_err(|e| link_err(path, e))?)
        };

        let mut plugin = Self {
            path: path.to_path_buf(),
            info: PluginInfo {
                name: file_stem(path),
                version: "?".into(),
                description: String::new(),
            },
            shape,
            cache: outcome,
            size,
            sha256,
            engine: engine.clone(),
            budget,
            pre,
        };
        let mut store = plugin.new_store("describe", Limits::default());
        plugin.info = match &plugin.pre {
            Pre::V1(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_transformer().call_describe(&mut store)),
            Pre::V2(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_transformer().call_describe(&mut store))
                .map(wire::info),
        }
        .map_err(|e| describe_err(path, e, Limits::default().cpu_ms_per_call))?;
        Ok(plugin)
    }

    /// The plugin as errors, logs and dead letters name it: its file and
    /// hash, then its self-description (see [`super::identity::label`]).
    pub fn label(&self) -> String {
        super::identity::label(&self.path, &self.sha256, &self.info)
    }

    fn new_store(&self, stage: &str, limits: Limits) -> Store<StoreData> {
        let host = HostState::new(stage, &self.label());
        let mut store = StoreData::new(host, limits.memory_mb).store(&self.engine);
        if let Some(ticks) = deadline(limits.cpu_ms_per_call) {
            store.set_epoch_deadline(ticks);
        }
        store
    }
}

/// A component read, checked and compiled (or loaded from the cache).
pub(crate) struct Compiled {
    pub engine: wasmtime::Engine,
    pub component: wasmtime::component::Component,
    pub shape: Shape,
    pub outcome: CacheOutcome,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Reads `path`, checks it is a component, and compiles it for `budget`.
pub(crate) fn compile(
    wasm_engine: &WasmEngine,
    cache: &ComponentCache,
    path: &Path,
    budget: CpuBudget,
) -> Result<Compiled, LoadError> {
    let engine = wasm_engine
        .engine_for(budget)
        .map_err(|e| link_err(path, e))?;
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ComponentError::Io {
        path: p.clone(),
        error,
    })?;
    component::check_header(path, &bytes)?;
    use sha2::Digest;
    let sha256: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let (component, outcome) = cache
        .load_hashed(engine, &bytes, sha256, &file_stem(path))
        .map_err(|e| ComponentError::Invalid {
            path: p,
            message: format!("{e:#}"),
        })?;
    let mut shape = component::shape(engine, &component);
    shape.reads_field_tables = component::declares_field_tables(&bytes);
    shape.takes_parent_refs = component::declares_parent_refs(&bytes);
    Ok(Compiled {
        engine: engine.clone(),
        component,
        shape,
        outcome,
        size: bytes.len() as u64,
        sha256,
    })
}

/// Epoch ticks for a budget; `None` when unlimited.
pub(crate) fn deadline(budget: CpuBudget) -> Option<u64> {
    match budget {
        CpuBudget::Millis(ms) => Some(WasmEngine::ticks_for(Duration::from_millis(ms))),
        CpuBudget::Unlimited => None,
    }
}

pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why one call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallFailure {
    /// The plugin refused its parameters.
    #[error("plugin {plugin} refused the parameters of stage `{stage}`: {message}")]
    Init {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// The plugin's reason.
        message: String,
    },
    /// A sandbox limit stopped the call.
    #[error("plugin {plugin} in stage `{stage}` exceeded its {limit}; the instance was discarded")]
    Limit {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// Which limit, with its value.
        limit: String,
    },
    /// The plugin trapped (panic, unreachable, out-of-bounds access...).
    #[error("plugin {plugin} in stage `{stage}` crashed: {message}; the instance was discarded")]
    Trap {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// What happened.
        message: String,
    },
    /// The plugin returned an output that contradicts the contract (a span
    /// outside its data, a parent or rejection naming no input event).
    #[error("plugin {plugin} in stage `{stage}` returned an invalid output: {message}; the instance was discarded")]
    InvalidOutput {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// What is wrong with it.
        message: String,
    },
    /// The plugin asked for the batch to be retried later.
    #[error("plugin {plugin} in stage `{stage}` asked to retry: {message}")]
    Retry {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// Its reason.
        message: String,
    },
    /// The plugin declared a fatal error.
    #[error("plugin {plugin} in stage `{stage}` failed: {message}")]
    Fatal {
        /// `name@version`.
        plugin: String,
        /// Stage name.
        stage: String,
        /// Its reason.
        message: String,
    },
}

impl CallFailure {
    /// A short machine-readable kind for dead-letter headers and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Init { .. } => "init",
            CallFailure::Limit { .. } => "limit",
            CallFailure::Trap { .. } => "trap",
            CallFailure::InvalidOutput { .. } => "invalid-output",
            CallFailure::Retry { .. } => "retry",
            CallFailure::Fatal { .. } => "fatal",
        }
    }

    /// True when isolating the culprit event (by splitting the batch) makes sense.
    pub fn is_event_specific(&self) -> bool {
        matches!(
            self,
            CallFailure::Limit { .. }
                | CallFailure::Trap { .. }
                | CallFailure::InvalidOutput { .. }
        )
    }

    /// The failure for an output [`output_check::check`] refused.
    pub(crate) fn from_output(fault: OutputFault, plugin: String, stage: String) -> Self {
        match fault {
            OutputFault::Limit(limit) => CallFailure::Limit {
                plugin,
                stage,
                limit,
            },
            OutputFault::Invalid(message) => CallFailure::InvalidOutput {
                plugin,
                stage,
                message,
            },
        }
    }
}

/// A cap on the next calls' CPU time: what is left of a batch's isolation
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCap {
    /// Milliseconds left.
    pub left_ms: u64,
    /// The whole per-batch budget, for messages.
    pub batch_ms: u64,
}

/// The epoch deadline of a call under `budget` and `cap`, and how to name it
/// when it runs out.
pub(crate) fn call_deadline(budget: CpuBudget, cap: Option<CallCap>) -> (Option<u64>, String) {
    match (budget, cap) {
        (CpuBudget::Millis(ms), Some(c)) if c.left_ms < ms => (
            deadline(CpuBudget::Millis(c.left_ms.max(1))),
            format!(
                "CPU budget of {} ms per batch (isolating the events of a failed batch; {} ms were left)",
                c.batch_ms, c.left_ms
            ),
        ),
        _ => (deadline(budget), format!("CPU budget of {budget}")),
    }
}

struct Live {
    store: Store<StoreData>,
    bindings: Guest,
    handle: ResourceAny,
}

/// One stage's instance of a transform, recreated after any failure.
pub struct TransformInstance {
    plugin: Arc<TransformPlugin>,
    stage: String,
    params: Vec<Param>,
    limits: Limits,
    cap: Option<CallCap>,
    live: Option<Live>,
    /// The pipeline's user-defined functions, for a plugin importing `udfs`.
    udfs: Option<Arc<super::udf::UdfSet>>,
    /// Instances created so far (1 + number of replacements).
    pub instantiations: u64,
}

impl TransformInstance {
    /// Creates the instance and validates `params` with the plugin.
    pub fn new(
        plugin: Arc<TransformPlugin>,
        stage: &str,
        params: &[(String, String)],
        limits: Limits,
    ) -> Result<Self, CallFailure> {
        Self::with_udfs(plugin, stage, params, limits, None)
    }

    /// Like [`TransformInstance::new`], with the pipeline's user-defined
    /// functions reachable through the `udfs` import. A plugin that imports
    /// it also gets their names as the `udfs` parameter.
    pub fn with_udfs(
        plugin: Arc<TransformPlugin>,
        stage: &str,
        params: &[(String, String)],
        limits: Limits,
        udfs: Option<Arc<super::udf::UdfSet>>,
    ) -> Result<Self, CallFailure> {
        let udfs = udfs.filter(|u| !u.is_empty());
        if (limits.cpu_ms_per_call == CpuBudget::Unlimited)
            != (plugin.budget == CpuBudget::Unlimited)
        {
            return Err(CallFailure::Init {
                plugin: plugin.label(),
                stage: stage.to_string(),
                message: format!(
                    "the plugin was compiled for CPU budget {} but the stage asks for {}",
                    plugin.budget, limits.cpu_ms_per_call
                ),
            });
        }
        let mut inst = Self {
            plugin,
            stage: stage.to_string(),
            params: params
                .iter()
                .map(|(name, value)| Param {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            limits,
            cap: None,
            live: None,
            udfs,
            instantiations: 0,
        };
        inst.ensure_live()?;
        Ok(inst)
    }

    /// The stage's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of the live instance's memories and tables (none between a
    /// failure and the next call).
    pub fn memory_bytes(&self) -> Option<u64> {
        self.live
            .as_ref()
            .map(|l| l.store.data().limiter.used() as u64)
    }

    /// Caps the CPU time of the following calls (`None` lifts the cap).
    pub fn cap_calls(&mut self, cap: Option<CallCap>) {
        self.cap = cap;
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Arc<TransformPlugin> {
        &self.plugin
    }

    /// Whether the plugin reads field tables (a 0.2.0 plugin that declares
    /// so; 0.1.0 batches have no room for them).
    pub fn reads_field_tables(&self) -> bool {
        self.plugin.shape.reads_field_tables && !is_v1(&self.plugin.shape)
    }

    /// Swaps in another build of the plugin (hot reload). The next call runs
    /// on a fresh instance of it; parameters are validated now, and on refusal
    /// the old plugin stays in place.
    pub fn swap(&mut self, plugin: Arc<TransformPlugin>) -> Result<(), CallFailure> {
        let old_plugin = std::mem::replace(&mut self.plugin, plugin);
        let old_live = self.live.take();
        match self.ensure_live() {
            Ok(()) => {
                if let Some(old) = old_live {
                    self.retire(old);
                }
                Ok(())
            }
            Err(e) => {
                self.plugin = old_plugin;
                self.live = old_live;
                Err(e)
            }
        }
    }

    /// The stage's parameters, plus the pipeline's UDF names as `udfs` for a
    /// plugin that imports the `udfs` interface (decided per plugin, so a
    /// hot-reloaded build that stops or starts importing it is right too).
    /// The host's list replaces one written by hand.
    fn create_params(&self) -> std::borrow::Cow<'_, [Param]> {
        match &self.udfs {
            Some(set) if super::udf::imports_udfs(&self.plugin.shape) => {
                let mut params: Vec<Param> = self
                    .params
                    .iter()
                    .filter(|p| p.name != "udfs")
                    .cloned()
                    .collect();
                params.push(Param {
                    name: "udfs".into(),
                    value: set.names_param(),
                });
                std::borrow::Cow::Owned(params)
            }
            _ => std::borrow::Cow::Borrowed(&self.params),
        }
    }

    fn ensure_live(&mut self) -> Result<(), CallFailure> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut store = self.plugin.new_store(&self.stage, self.limits);
        if let Some(set) = &self.udfs {
            store.data_mut().host.udfs = Some(super::udf::UdfCalls::new(set.clone(), &self.stage));
        }
        let (ticks, _) = call_deadline(self.limits.cpu_ms_per_call, self.cap);
        if let Some(ticks) = ticks {
            store.set_epoch_deadline(ticks);
        }
        let bindings = match &self.plugin.pre {
            Pre::V1(pre) => pre.instantiate(&mut store).map(Guest::V1),
            Pre::V2(pre) => pre.instantiate(&mut store).map(Guest::V2),
        }
        .map_err(|e| self.classify(&store, e))?;
        self.instantiations += 1;
        let params = self.create_params();
        let created = match &bindings {
            Guest::V1(b) => b
                .sluice_plugin_transformer()
                .transform()
                .call_create(&mut store, &params),
            Guest::V2(b) => b
                .sluice_plugin_transformer()
                .transform()
                .call_create(&mut store, &wire::params(&params)),
        }
        .map_err(|e| self.classify(&store, e))?;
        let handle = created.map_err(|message| CallFailure::Init {
            plugin: self.plugin.label(),
            stage: self.stage.clone(),
            message,
        })?;
        self.live = Some(Live {
            store,
            bindings,
            handle,
        });
        Ok(())
    }

    /// Processes one batch. On any failure the instance is discarded; the
    /// next call starts a fresh one.
    pub fn process(&mut self, batch: &Batch) -> Result<Output, CallFailure> {
        self.process_with(batch, None)
    }

    /// [`TransformInstance::process`], sending `tables` (the values' field
    /// tables) to a plugin that reads them.
    pub fn process_with(
        &mut self,
        batch: &Batch,
        tables: Option<&FieldTables>,
    ) -> Result<Output, CallFailure> {
        self.ensure_live()?;
        let Some(live) = self.live.as_mut() else {
            return Err(self.trap("instance unavailable".into()));
        };
        let (ticks, _) = call_deadline(self.limits.cpu_ms_per_call, self.cap);
        if let Some(ticks) = ticks {
            live.store.set_epoch_deadline(ticks);
        }
        live.store.data_mut().host.begin_call();
        let limits = &self.limits;
        let refs = self.plugin.shape.takes_parent_refs;
        let result = match &live.bindings {
            Guest::V1(b) => b
                .sluice_plugin_transformer()
                .transform()
                .call_process(&mut live.store, live.handle, batch)
                .map(|r| r.map(Ok)),
            Guest::V2(b) => b
                .sluice_plugin_transformer()
                .transform()
                .call_process(
                    &mut live.store,
                    live.handle,
                    &wire::pack_with(batch, tables, refs),
                )
                .map(|r| match r {
                    // Only a plugin that asked may refer to its input.
                    Ok(out) => Ok(wire::unpack_output(out, limits, refs.then_some(batch))),
                    Err(v2::CallError::Retry(m)) => Err(bindings::CallError::Retry(m)),
                    Err(v2::CallError::Fatal(m)) => Err(bindings::CallError::Fatal(m)),
                }),
        };
        match result {
            Ok(Ok(Err(fault))) => {
                self.live = None;
                Err(CallFailure::from_output(
                    fault,
                    self.plugin.label(),
                    self.stage.clone(),
                ))
            }
            Ok(Ok(Ok(mut output))) => {
                match output_check::check(&mut output, batch.events.len(), &self.limits) {
                    Ok(checked) => {
                        if checked.stripped_headers > 0 {
                            tracing::debug!(stage = %self.stage, stripped = checked.stripped_headers, "removed host-owned sluice.* headers from plugin output");
                        }
                        Ok(output)
                    }
                    Err(fault) => {
                        // A plugin that breaks the contract once is not trusted
                        // with the next batch either.
                        self.live = None;
                        Err(CallFailure::from_output(
                            fault,
                            self.plugin.label(),
                            self.stage.clone(),
                        ))
                    }
                }
            }
            Ok(Err(bindings::CallError::Retry(message))) => Err(CallFailure::Retry {
                plugin: self.plugin.label(),
                stage: self.stage.clone(),
                message,
            }),
            Ok(Err(bindings::CallError::Fatal(message))) => Err(CallFailure::Fatal {
                plugin: self.plugin.label(),
                stage: self.stage.clone(),
                message,
            }),
            Err(e) => {
                let failure = match self.live.take() {
                    Some(live) => self.classify(&live.store, e),
                    None => self.trap(format!("{e:?}")),
                };
                Err(failure)
            }
        }
    }

    /// Drops the guest's transform resource, which runs its destructor (the
    /// Rust SDK's `Transform::finish`: a filter reports there what a short
    /// stream never showed), under the stage's CPU budget. A failure there
    /// loses nothing, so it is only logged.
    fn retire(&self, mut live: Live) {
        if let Some(ticks) = deadline(self.limits.cpu_ms_per_call) {
            live.store.set_epoch_deadline(ticks);
        }
        live.store.data_mut().host.begin_call();
        if let Err(e) = live.handle.resource_drop(&mut live.store) {
            let failure = self.classify(&live.store, e);
            tracing::debug!(stage = %self.stage, "retiring the instance failed: {failure}");
        }
    }

    fn trap(&self, message: String) -> CallFailure {
        CallFailure::Trap {
            plugin: self.plugin.label(),
            stage: self.stage.clone(),
            message,
        }
    }

    fn classify(&self, store: &Store<StoreData>, e: wasmtime::Error) -> CallFailure {
        classify(
            store,
            e,
            self.plugin.label(),
            self.stage.clone(),
            call_deadline(self.limits.cpu_ms_per_call, self.cap).1,
        )
    }
}

impl Drop for TransformInstance {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.retire(live);
        }
    }
}

/// Names what stopped a call: a breached memory cap, the CPU budget, or a
/// trap (with the plugin's last error log line, e.g. its panic message).
pub(crate) fn classify(
    store: &Store<StoreData>,
    e: wasmtime::Error,
    plugin: String,
    stage: String,
    cpu_limit: String,
) -> CallFailure {
    // `HostState` still carries the old per-memory limiter, never installed
    // on a store (plugin/host.rs is being changed by another helper; drop
    // it at merge). It cannot breach; reading it keeps the build warning-free.
    let data = store.data();
    if let Some(limit) = data.limiter.breached() {
        return CallFailure::Limit {
            plugin,
            stage,
            limit: limit.to_string(),
        };
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return CallFailure::Limit {
            plugin,
            stage,
            limit: cpu_limit,
        };
    }
    let mut message = match e.downcast_ref::<Trap>() {
        // Its Display already starts with "wasm trap: ".
        Some(trap) => trap.to_string(),
        None => format!("{e}"),
    };
    if let Some(last) = store.data().host.last_error() {
        message = format!("{last} ({message})");
    }
    CallFailure::Trap {
        plugin,
        stage,
        message,
    }
}
