//! The most memory a pipeline's bounds let it hold: what a server reserves
//! against a tenant's `max_memory_mb` before it starts a run.
//!
//! Each figure is a bound the host enforces, so the sum is one too: a
//! stage's or custom connector's plugin instance is capped at its
//! `limits.memory_mb`, a processor's keyed state at its `limits.state_mb`,
//! a table at its `max_mb`, and a user-defined function's instance at its
//! `limits.memory_mb` once per stage (each calling stage has its own). Not counted: events in flight between
//! threads (bounded by `channel_capacity` batches per edge, but the size of
//! one event is the source's) and the native connectors' client buffers.

use crate::config::Pipeline;
use crate::plugin::{ComponentCache, StagePlugin, WasmEngine};

/// What a pipeline may hold, in MiB, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Stages' plugin instances (`limits.memory_mb` each).
    pub plugins_mb: u64,
    /// Processors' keyed state (`limits.state_mb` each).
    pub state_mb: u64,
    /// Tables (`max_mb` each).
    pub tables_mb: u64,
    /// Custom (Wasm) sources' and sinks' plugin instances.
    pub connectors_mb: u64,
    /// User-defined functions' instances, one per function and stage.
    pub udfs_mb: u64,
}

impl Footprint {
    /// The whole bound.
    pub fn total_mb(&self) -> u64 {
        self.plugins_mb
            .saturating_add(self.state_mb)
            .saturating_add(self.tables_mb)
            .saturating_add(self.connectors_mb)
            .saturating_add(self.udfs_mb)
    }
}

/// `p`'s footprint. A stage counts keyed state only when its plugin is a
/// processor; one whose plugin does not load counts it anyway (the run
/// would fail, and the bound stays a bound).
pub fn footprint(p: &Pipeline, engine: &WasmEngine, cache: &ComponentCache) -> Footprint {
    let mut f = Footprint::default();
    for stage in &p.stages {
        f.plugins_mb = f.plugins_mb.saturating_add(stage.limits.memory_mb);
        let transform = matches!(
            StagePlugin::load(engine, cache, &stage.plugin, stage.limits.cpu_ms_per_call),
            Ok(StagePlugin::Transform(_))
        );
        if !transform {
            f.state_mb = f.state_mb.saturating_add(stage.limits.state_mb);
        }
    }
    for t in &p.tables {
        f.tables_mb = f.tables_mb.saturating_add(t.config.max_mb);
    }
    let connectors = p
        .sources
        .iter()
        .filter_map(|s| s.config.sandbox_limits())
        .chain(p.sinks.iter().filter_map(|s| s.config.sandbox_limits()))
        .chain(p.dead_letter.iter().filter_map(|d| d.sandbox_limits()));
    for l in connectors {
        f.connectors_mb = f.connectors_mb.saturating_add(l.memory_mb);
    }
    // Any stage may call any of the pipeline's functions.
    let stages = p.stages.len() as u64;
    for u in &p.udfs {
        f.udfs_mb = f
            .udfs_mb
            .saturating_add(u.limits.memory_mb.saturating_mul(stages));
    }
    f
}
