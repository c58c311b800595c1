//! Loading a processor component (the `processor` world) and calling it with
//! its stage's keyed state, granted tables and event-time timers.
//!
//! State lives outside the instance ([`KeyedState`] behind the stage's
//! mutex), so replacing a trapped instance loses nothing. Writes of a call
//! are applied only when the call succeeds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasSelf, Linker, ResourceAny};
use wasmtime::Store;

use super::bindings::processor as pb;
use super::bindings::v2::processor as pb2;
use super::bindings::{Batch, Output, Param, PluginInfo};
use super::cache::{CacheOutcome, ComponentCache};
use super::component::{self, World};
use super::engine::WasmEngine;
use super::host::{HostState, ProcessorContext};
use super::limiter::StoreData;
use super::limits::{CpuBudget, Limits};
use super::output_check::{self, OutputFault};
use super::transform::{
    call_deadline, classify, compile, deadline, describe_err, file_stem, is_v1, link_err, CallCap,
    CallFailure, Compiled, LoadError,
};
use super::wire;

/// A linked processor of either contract version.
enum Pre {
    V1(pb::ProcessorPre<StoreData>),
    V2(pb2::ProcessorPre<StoreData>),
}

/// An instance of either version.
enum Guest {
    V1(pb::Processor),
    V2(pb2::Processor),
}

/// What a call returned: an output (or why its layout is invalid), or the
/// plugin's own error.
type Answer = wasmtime::Result<Result<Result<Output, OutputFault>, pb::CallError>>;

fn answer_v2(
    r: wasmtime::Result<Result<super::bindings::v2::Output, pb2::CallError>>,
    limits: &Limits,
    parents: Option<&Batch>,
) -> Answer {
    r.map(|r| match r {
        Ok(out) => Ok(wire::unpack_output(out, limits, parents)),
        Err(pb2::CallError::Retry(m)) => Err(pb::CallError::Retry(m)),
        Err(pb2::CallError::Fatal(m)) => Err(pb::CallError::Fatal(m)),
    })
}
use crate::event::FieldTables;
use crate::state::{KeyedState, Table};

/// A compiled, linked processor component.
pub struct ProcessorPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
    /// SHA-256 of the file, which (unlike `info`) the plugin cannot fake.
    pub sha256: [u8; 32],
    /// Whether it reads field tables (a 0.2.0 plugin that declares so).
    pub reads_field_tables: bool,
    /// Whether its outputs may take parts of their parents by reference (a
    /// 0.2.0 plugin that declares so).
    pub takes_parent_refs: bool,
    engine: wasmtime::Engine,
    pre: Pre,
}

impl ProcessorPlugin {
    /// Reads, checks, compiles and links `path` for `budget`.
    pub fn load(
        wasm_engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
        budget: CpuBudget,
    ) -> Result<Self, LoadError> {
        Self::from_compiled(path, compile(wasm_engine, cache, path, budget)?)
    }

    /// Links an already compiled component.
    pub(crate) fn from_compiled(path: &Path, compiled: Compiled) -> Result<Self, LoadError> {
        let Compiled {
            engine,
            component,
            shape,
            outcome,
            sha256,
            ..
        } = compiled;
        component::check_world(path, &shape, World::Processor)?;
        let v1 = is_v1(&shape);
        let mut linker: Linker<StoreData> = Linker::new(&engine);
        if v1 {
            pb::Processor::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| {
                &mut s.host
            })
        } else {
            pb2::Processor::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| {
                &mut s.host
            })
        }
        .map_err(|e| link_err(path, e))?;
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| link_err(path, e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| link_err(path, e))?;
        let pre = if v1 {
            Pre::V1(pb::ProcessorPre::new(pre).map_err(|e| link_err(path, e))?)
        } else {
            Pre::V2(pb2::ProcessorPre::new(pre).map_err(|e| link_err(path, e))?)
        };
        let mut plugin = Self {
            path: path.to_path_buf(),
            info: PluginInfo {
                name: file_stem(path),
                version: "?".into(),
                description: String::new(),
            },
            cache: outcome,
            sha256,
            reads_field_tables: shape.reads_field_tables && !v1,
            takes_parent_refs: shape.takes_parent_refs && !v1,
            engine,
            pre,
        };
        let memory_mb = Limits::default().memory_mb;
        let host = HostState::new("describe", &plugin.label());
        let mut store = StoreData::new(host, memory_mb).store(&plugin.engine);
        if let Some(t) = deadline(Limits::default().cpu_ms_per_call) {
            store.set_epoch_deadline(t);
        }
        plugin.info = match &plugin.pre {
            Pre::V1(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_stateful().call_describe(&mut store)),
            Pre::V2(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_stateful().call_describe(&mut store))
                .map(wire::info),
        }
        .map_err(|e| describe_err(path, e, Limits::default().cpu_ms_per_call))?;
        Ok(plugin)
    }

    /// The plugin as the host knows it (see [`super::identity::label`]).
    pub fn label(&self) -> String {
        super::identity::label(&self.path, &self.sha256, &self.info)
    }
}

struct Live {
    store: Store<StoreData>,
    bindings: Guest,
    handle: ResourceAny,
}

/// One stage's processor instance, with its state.
pub struct ProcessorInstance {
    plugin: Arc<ProcessorPlugin>,
    stage: String,
    params: Vec<Param>,
    limits: Limits,
    cap: Option<CallCap>,
    state: Arc<Mutex<KeyedState>>,
    tables: HashMap<String, Table>,
    live: Option<Live>,
    /// Instances created so far.
    pub instantiations: u64,
}

impl ProcessorInstance {
    /// Creates the instance (the plugin validates `params`).
    pub fn new(
        plugin: Arc<ProcessorPlugin>,
        stage: &str,
        params: &[(String, String)],
        limits: Limits,
        tables: HashMap<String, Table>,
    ) -> Result<Self, CallFailure> {
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
            state: Arc::new(Mutex::new(KeyedState::default())),
            tables,
            live: None,
            instantiations: 0,
        };
        inst.ensure_live()?;
        Ok(inst)
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Arc<ProcessorPlugin> {
        &self.plugin
    }

    /// Whether the plugin reads field tables.
    pub fn reads_field_tables(&self) -> bool {
        self.plugin().reads_field_tables
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

    /// The stage's state (for checkpoints and restores).
    pub fn state(&self) -> &Arc<Mutex<KeyedState>> {
        &self.state
    }

    fn ensure_live(&mut self) -> Result<(), CallFailure> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut state = HostState::new(&self.stage, &self.plugin.label());
        state.processor = Some(ProcessorContext {
            state: self.state.clone(),
            tables: self.tables.clone(),
        });
        let mut store = StoreData::new(state, self.limits.memory_mb).store(&self.plugin.engine);
        if let Some(t) = call_deadline(self.limits.cpu_ms_per_call, self.cap).0 {
            store.set_epoch_deadline(t);
        }
        let bindings = match &self.plugin.pre {
            Pre::V1(pre) => pre.instantiate(&mut store).map(Guest::V1),
            Pre::V2(pre) => pre.instantiate(&mut store).map(Guest::V2),
        }
        .map_err(|e| self.classify(&store, e))?;
        self.instantiations += 1;
        let created = match &bindings {
            Guest::V1(b) => b
                .sluice_plugin_stateful()
                .processor()
                .call_create(&mut store, &self.params),
            Guest::V2(b) => b
                .sluice_plugin_stateful()
                .processor()
                .call_create(&mut store, &wire::params(&self.params)),
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

    /// Runs another build from the next call on. The keyed state, timers
    /// and tables are the host's, so the new instance goes on from exactly
    /// where the old one was, as a restarted instance would from a
    /// checkpoint; anything the old build kept only in its own memory is
    /// gone, which the contract already allows (an instance is replaced
    /// after a trap too). On an error (the new build's `create` refuses
    /// the params, say) the old instance stays.
    pub fn swap(&mut self, plugin: Arc<ProcessorPlugin>) -> Result<(), CallFailure> {
        let old_plugin = std::mem::replace(&mut self.plugin, plugin);
        let old_live = self.live.take();
        match self.ensure_live() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.plugin = old_plugin;
                self.live = old_live;
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Processes one batch; state written by the call is kept only if it succeeds.
    pub fn process(&mut self, batch: &Batch) -> Result<Output, CallFailure> {
        self.process_with(batch, None)
    }

    /// [`ProcessorInstance::process`], sending `tables` (the values' field
    /// tables) to a plugin that reads them.
    pub fn process_with(
        &mut self,
        batch: &Batch,
        tables: Option<&FieldTables>,
    ) -> Result<Output, CallFailure> {
        let refs = self.plugin().takes_parent_refs;
        self.call(batch.events.len(), |live, limits| match &live.bindings {
            Guest::V1(b) => b
                .sluice_plugin_stateful()
                .processor()
                .call_process(&mut live.store, live.handle, batch)
                .map(|r| r.map(Ok)),
            Guest::V2(b) => answer_v2(
                b.sluice_plugin_stateful().processor().call_process(
                    &mut live.store,
                    live.handle,
                    &wire::pack_with(batch, tables, refs),
                ),
                limits,
                // Only a plugin that asked may refer to its input.
                refs.then_some(batch),
            ),
        })
    }

    /// Delivers timers the watermark has passed.
    pub fn on_timers(&mut self, fired: &[pb::FiredTimer]) -> Result<Output, CallFailure> {
        self.call(fired.len(), |live, limits| match &live.bindings {
            Guest::V1(b) => b
                .sluice_plugin_stateful()
                .processor()
                .call_on_timers(&mut live.store, live.handle, fired)
                .map(|r| r.map(Ok)),
            Guest::V2(b) => {
                let fired: Vec<pb2::FiredTimer> = fired
                    .iter()
                    .map(|f| pb2::FiredTimer {
                        key: f.key.clone(),
                        at_ms: f.at_ms,
                    })
                    .collect();
                answer_v2(
                    b.sluice_plugin_stateful().processor().call_on_timers(
                        &mut live.store,
                        live.handle,
                        &fired,
                    ),
                    limits,
                    // Timers have no input events to refer to.
                    None,
                )
            }
        })
    }

    fn call(
        &mut self,
        inputs: usize,
        f: impl FnOnce(&mut Live, &Limits) -> Answer,
    ) -> Result<Output, CallFailure> {
        // The runner may have swapped in a restored state: the ceilings are
        // the stage's, whatever state object is there.
        self.lock().set_limits(&self.limits);
        let outcome = self.call_unchecked(inputs, f);
        let state = self.state.clone();
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = match (outcome, state.breached()) {
            (Ok(_), Some(limit)) | (Err(CallFailure::Trap { .. }), Some(limit)) => {
                self.live = None;
                Err(CallFailure::Limit {
                    plugin: self.plugin.label(),
                    stage: self.stage.clone(),
                    limit,
                })
            }
            (outcome, _) => outcome,
        };
        if outcome.is_ok() {
            state.commit();
        } else {
            state.rollback();
        }
        drop(state);
        outcome
    }

    fn call_unchecked(
        &mut self,
        inputs: usize,
        f: impl FnOnce(&mut Live, &Limits) -> Answer,
    ) -> Result<Output, CallFailure> {
        self.ensure_live()?;
        let Some(live) = self.live.as_mut() else {
            return Err(self.trap("instance unavailable".into()));
        };
        if let Some(ticks) = call_deadline(self.limits.cpu_ms_per_call, self.cap).0 {
            live.store.set_epoch_deadline(ticks);
        }
        live.store.data_mut().host.begin_call();
        match f(live, &self.limits) {
            Ok(Ok(Err(fault))) => {
                self.live = None;
                Err(CallFailure::from_output(
                    fault,
                    self.plugin.label(),
                    self.stage.clone(),
                ))
            }
            Ok(Ok(Ok(mut output))) => {
                match output_check::check(&mut output, inputs, &self.limits) {
                    Ok(_) => Ok(output),
                    Err(fault) => {
                        self.live = None;
                        Err(CallFailure::from_output(
                            fault,
                            self.plugin.label(),
                            self.stage.clone(),
                        ))
                    }
                }
            }
            Ok(Err(pb::CallError::Retry(message))) => Err(CallFailure::Retry {
                plugin: self.plugin.label(),
                stage: self.stage.clone(),
                message,
            }),
            Ok(Err(pb::CallError::Fatal(message))) => Err(CallFailure::Fatal {
                plugin: self.plugin.label(),
                stage: self.stage.clone(),
                message,
            }),
            Err(e) => Err(match self.live.take() {
                Some(live) => self.classify(&live.store, e),
                None => self.trap(format!("{e:?}")),
            }),
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
