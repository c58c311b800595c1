//! The Wasm side of the host: engine, compile cache, contract checks, and
//! sandboxed transform instances.

pub mod bindings;
mod cache;
mod ceilings;
pub mod clock;
pub mod component;
pub mod connector;
mod engine;
mod guest_log;
mod host;
pub mod identity;
mod limiter;
pub mod limits;
pub mod lookup_many;
pub mod net;
mod output;
pub mod output_check;
mod processor;
mod transform;
mod udf;
// Public only so the fuzz targets (fuzz/) can reach the 0.2.0 unpacking.
#[doc(hidden)]
pub mod wire;

pub use cache::{CacheKey, CacheOutcome, ComponentCache, LOADED_MAX};
pub use ceilings::{Ceilings, HOST_CONFIG_ENV};
pub use component::{ComponentError, Shape, World};
pub use engine::WasmEngine;
pub use guest_log::{set_thread_log_budget, with_log_budget};
pub use limits::{CpuBudget, Limits};
pub use processor::{ProcessorInstance, ProcessorPlugin};
pub use transform::{CallCap, CallFailure, LoadError, TransformInstance, TransformPlugin};
pub use udf::{imports_udfs, UdfCalls, UdfLimits, UdfPlugin, UdfSet, UDFS_IMPORT};

use std::path::Path;

/// A stage's plugin: a stateless transform or a stateful processor, told
/// apart by the world the component implements.
pub enum StagePlugin {
    /// The `transform` world.
    Transform(TransformPlugin),
    /// The `processor` world.
    Processor(ProcessorPlugin),
}

impl StagePlugin {
    /// Compiles (or loads from cache) and links `path` for `budget`.
    pub fn load(
        engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
        budget: CpuBudget,
    ) -> Result<Self, LoadError> {
        let compiled = transform::compile(engine, cache, path, budget)?;
        if compiled.shape.world == Some(World::Processor) {
            return Ok(StagePlugin::Processor(ProcessorPlugin::from_compiled(
                path, compiled,
            )?));
        }
        Ok(StagePlugin::Transform(TransformPlugin::from_compiled(
            path, compiled, budget,
        )?))
    }

    /// The plugin as the host knows it (see [`identity::label`]).
    pub fn label(&self) -> String {
        match self {
            StagePlugin::Transform(p) => p.label(),
            StagePlugin::Processor(p) => p.label(),
        }
    }

    /// SHA-256 of its file.
    pub fn sha256(&self) -> &[u8; 32] {
        match self {
            StagePlugin::Transform(p) => &p.sha256,
            StagePlugin::Processor(p) => &p.sha256,
        }
    }

    /// True for a processor.
    pub fn is_processor(&self) -> bool {
        matches!(self, StagePlugin::Processor(_))
    }
}
