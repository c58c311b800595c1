//! User-defined functions: components of the `udf` world that expressions
//! call by name through the `udfs` import.
//!
//! A transform that imports `udfs` (the built-in `filter` and `project`)
//! reaches the pipeline's functions through its own store's host state;
//! each function runs in a store of its own, created on its first call and
//! replaced after any failure, under the function's limits: a memory cap,
//! an epoch CPU budget per call and a bound on the result's size. The
//! result must be one JSON value. Every failure (a trap, a breached limit,
//! an oversized or malformed result, the function's own error) comes back
//! to the caller as the error of that one call, which the expression
//! plugins turn into a rejection of the event that made it: nothing fails
//! the host, the stage or the other events.
//!
//! A function gets `log` and nothing else: every other import (WASI
//! included) is linked to a trap, as for transforms.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap};

use super::bindings::{v2, PluginInfo};
use super::cache::ComponentCache;
use super::component::{self, Shape, World};
use super::engine::WasmEngine;
use super::host::HostState;
use super::limiter::StoreData;
use super::limits::CpuBudget;
use super::transform::{self, describe_err, link_err, LoadError};
use super::wire;

/// The import name of the `udfs` interface, without its version.
pub const UDFS_IMPORT: &str = "sluice:plugin/udfs@";

/// True when the component imports `udfs`: it evaluates expressions that
/// may call the pipeline's functions, and gets their names as the `udfs`
/// parameter.
pub fn imports_udfs(shape: &Shape) -> bool {
    shape.imports.iter().any(|i| i.starts_with(UDFS_IMPORT))
}

/// The sandbox of one user-defined function (`udfs.NAME.limits`). Every
/// one is enforced by the host; a breach fails the call, and so the event
/// that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdfLimits {
    /// Memory cap of the function's instance, in MiB (all its memories and
    /// tables together).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// CPU budget of one call in milliseconds (rounded up to the epoch tick
    /// of 5 ms). A UDF has no `unlimited`: it runs inside another stage's
    /// call.
    #[serde(default = "default_cpu_ms", deserialize_with = "positive_ms")]
    pub cpu_ms_per_call: u64,
    /// Most bytes of one result, in KiB.
    #[serde(default = "default_output_kb")]
    pub output_kb_per_call: u64,
}

fn default_memory_mb() -> u64 {
    32
}
fn default_cpu_ms() -> u64 {
    100
}
fn default_output_kb() -> u64 {
    64
}

fn positive_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom(
            "0 ms would stop every call; expected milliseconds > 0",
        ));
    }
    Ok(v)
}

impl Default for UdfLimits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms_per_call: default_cpu_ms(),
            output_kb_per_call: default_output_kb(),
        }
    }
}

/// A compiled, linked UDF component, ready to instantiate.
pub struct UdfPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// What the function says about itself.
    pub info: PluginInfo,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    engine: wasmtime::Engine,
    pre: v2::udf::UdfPre<StoreData>,
}

impl std::fmt::Debug for UdfPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdfPlugin")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl UdfPlugin {
    /// Reads, checks (the `udf` world at an accepted version), compiles (or
    /// loads from cache) and links `path`, then asks it to describe itself.
    pub fn load(
        engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
    ) -> Result<Self, LoadError> {
        // Any budget in milliseconds selects the engine with epoch checks.
        let budget = CpuBudget::Millis(default_cpu_ms());
        let compiled = transform::compile(engine, cache, path, budget)?;
        component::check_world(path, &compiled.shape, World::Udf)?;
        if transform::is_v1(&compiled.shape) {
            return Err(LoadError::Link {
                path: path.display().to_string(),
                message: "the `udf` world exists only in contract 0.2.0 and later".into(),
            });
        }
        let engine = compiled.engine;
        let mut linker: Linker<StoreData> = Linker::new(&engine);
        v2::udf::Udf::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| &mut s.host)
            .map_err(|e| link_err(path, e))?;
        // No WASI, no network, no state: anything else is a trap.
        linker
            .define_unknown_imports_as_traps(&compiled.component)
            .map_err(|e| link_err(path, e))?;
        let pre = linker
            .instantiate_pre(&compiled.component)
            .and_then(v2::udf::UdfPre::new)
            .map_err(|e| link_err(path, e))?;
        let mut plugin = Self {
            path: path.to_path_buf(),
            info: PluginInfo {
                name: transform::file_stem(path),
                version: "?".into(),
                description: String::new(),
            },
            sha256: compiled.sha256,
            engine,
            pre,
        };
        let limits = UdfLimits::default();
        let mut store = plugin.new_store("describe", &limits);
        plugin.info = plugin
            .pre
            .instantiate(&mut store)
            .and_then(|i| i.sluice_plugin_scalar().call_describe(&mut store))
            .map(wire::info)
            .map_err(|e| describe_err(path, e, CpuBudget::Millis(limits.cpu_ms_per_call)))?;
        Ok(plugin)
    }

    /// The function's component as errors name it (file, hash, description).
    pub fn label(&self) -> String {
        super::identity::label(&self.path, &self.sha256, &self.info)
    }

    fn new_store(&self, stage: &str, limits: &UdfLimits) -> Store<StoreData> {
        let host = HostState::new(stage, &self.label());
        let mut store = StoreData::new(host, limits.memory_mb).store(&self.engine);
        store.set_epoch_deadline(WasmEngine::ticks_for(std::time::Duration::from_millis(
            limits.cpu_ms_per_call,
        )));
        store
    }
}

/// A pipeline's functions, loaded once and shared by its stages.
#[derive(Debug, Default)]
pub struct UdfSet {
    /// Name, plugin (`None`: named for validation only, see
    /// [`UdfSet::add_unloaded`]), limits.
    funcs: Vec<(String, Option<Arc<UdfPlugin>>, UdfLimits)>,
}

impl UdfSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `plugin` as `name` (stored lowercase).
    pub fn add(&mut self, name: &str, plugin: Arc<UdfPlugin>, limits: UdfLimits) {
        self.funcs
            .push((name.to_ascii_lowercase(), Some(plugin), limits));
    }

    /// Adds `name` without a plugin: validation goes on checking the
    /// stages (their calls of it parse) after its plugin failed to load,
    /// which is reported on its own. A call of it fails.
    pub fn add_unloaded(&mut self, name: &str) {
        self.funcs
            .push((name.to_ascii_lowercase(), None, UdfLimits::default()));
    }

    /// True when no function is registered.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    /// The names, comma-separated: the `udfs` parameter of the stages
    /// whose plugin imports `udfs`.
    pub fn names_param(&self) -> String {
        let names: Vec<&str> = self.funcs.iter().map(|(n, _, _)| n.as_str()).collect();
        names.join(",")
    }
}

/// One function's live instance.
struct Live {
    store: Store<StoreData>,
    bindings: v2::udf::Udf,
}

/// The functions as one stage's instance calls them: instances are created
/// on first call and dropped after any failure.
pub struct UdfCalls {
    set: Arc<UdfSet>,
    stage: String,
    live: HashMap<usize, Live>,
}

impl UdfCalls {
    /// Calls of `set` from `stage`.
    pub fn new(set: Arc<UdfSet>, stage: &str) -> Self {
        Self {
            set,
            stage: stage.to_string(),
            live: HashMap::new(),
        }
    }

    /// Calls `name` with `args` (a JSON array). Every failure is this
    /// call's error, naming the function and the stage.
    pub fn call(&mut self, name: &str, args: &[u8]) -> Result<Vec<u8>, String> {
        let Some(index) = self
            .set
            .funcs
            .iter()
            .position(|(n, _, _)| n.eq_ignore_ascii_case(name))
        else {
            let known: Vec<&str> = self.set.funcs.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(format!(
                "no user-defined function `{name}` in this pipeline (registered: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        let (fname, plugin, limits) = &self.set.funcs[index];
        let Some(plugin) = plugin else {
            return Err(format!("function `{fname}` could not be loaded"));
        };
        // Named only on failure: building the label costs more than a call.
        let who = || format!("function `{fname}` ({})", plugin.label());
        let live = match self.live.entry(index) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut store = plugin.new_store(&self.stage, limits);
                let bindings = plugin
                    .pre
                    .instantiate(&mut store)
                    .map_err(|e| failure(&store, e, &who(), limits))?;
                v.insert(Live { store, bindings })
            }
        };
        live.store
            .set_epoch_deadline(WasmEngine::ticks_for(std::time::Duration::from_millis(
                limits.cpu_ms_per_call,
            )));
        live.store.data_mut().host.begin_call();
        let result = live
            .bindings
            .sluice_plugin_scalar()
            .call_call(&mut live.store, args);
        match result {
            Ok(Ok(out)) => {
                let max = limits.output_kb_per_call.saturating_mul(1024);
                if out.len() as u64 > max {
                    // A function that breaks a bound once is not trusted
                    // with the next call either.
                    self.live.remove(&index);
                    return Err(format!(
                        "{} returned {} bytes, more than its output limit of {} KiB",
                        who(),
                        out.len(),
                        limits.output_kb_per_call
                    ));
                }
                if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&out) {
                    self.live.remove(&index);
                    return Err(format!("{} returned a result that is not JSON: {e}", who()));
                }
                Ok(out)
            }
            Ok(Err(message)) => Err(format!("{} failed: {message}", who())),
            Err(e) => {
                let err = failure(&live.store, e, &who(), limits);
                self.live.remove(&index);
                Err(err)
            }
        }
    }
}

/// Names what stopped a call: its memory cap, its CPU budget, or a trap
/// (with the function's last error log line, e.g. its panic message).
fn failure(store: &Store<StoreData>, e: wasmtime::Error, who: &str, limits: &UdfLimits) -> String {
    if let Some(limit) = store.data().limiter.breached() {
        return format!("{who} exceeded its {limit}; the instance was discarded");
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return format!(
            "{who} exceeded its CPU budget of {} ms per call; the instance was discarded",
            limits.cpu_ms_per_call
        );
    }
    let mut message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e}"),
    };
    if let Some(last) = store.data().host.last_error() {
        message = format!("{last} ({message})");
    }
    format!("{who} crashed: {message}; the instance was discarded")
}
