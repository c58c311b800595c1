//! The most memory a pipeline's bounds let it hold: what a server reserves
//! against a tenant's `max_memory_mb` before it starts a run.
//!
//! Each figure is a bound the host enforces, so the sum is one too: a
//! stage's or custom connector's plugin instance is capped at its
//! `limits.memory_mb`, a processor's keyed state at its `limits.state_mb`,
//! a table at its `max_mb`, and a user-defined function's instance at its
//! `limits.memory_mb` once per stage (each calling stage has its own); so are
//! a native connector's client buffers where its configuration sizes them
//! (Kafka's queues, an Elasticsearch bulk body; `client_buffer_mb`). Not
//! counted: events in flight between threads (bounded by
//! `channel_capacity` batches per edge, but the size of one event is the
//! source's) and the fixed buffers of the other native connectors' clients.

use crate::config::{Location, Pipeline};
use crate::connector::ClientBuffers;
use crate::plugin::{ComponentCache, Limits, StagePlugin, WasmEngine};

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
    /// Native connectors' client buffers (Kafka's queues, Elasticsearch's bulk body).
    pub clients_mb: u64,
}

impl Footprint {
    /// The whole bound.
    pub fn total_mb(&self) -> u64 {
        self.plugins_mb
            .saturating_add(self.state_mb)
            .saturating_add(self.tables_mb)
            .saturating_add(self.connectors_mb)
            .saturating_add(self.udfs_mb)
            .saturating_add(self.clients_mb)
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
    for c in connector_bounds(p) {
        if let Some(l) = c.limits {
            f.connectors_mb = f.connectors_mb.saturating_add(l.memory_mb);
        }
        if let Some(b) = c.buffers {
            f.clients_mb = f.clients_mb.saturating_add(b.mb);
        }
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

/// What bounds one source's, sink's or the dead-letter destination's memory.
pub(crate) struct ConnectorBounds {
    /// Its place in the file: `sources.<name>`, `sinks.<name>` or `dead_letter`.
    pub field: String,
    /// Where it is written.
    pub at: Location,
    /// A custom connector's sandbox limits.
    pub limits: Option<Limits>,
    /// A native connector's client buffers.
    pub buffers: Option<ClientBuffers>,
}

/// The bounds of every source, sink and the dead-letter destination of `p`.
pub(crate) fn connector_bounds(p: &Pipeline) -> impl Iterator<Item = ConnectorBounds> + '_ {
    let sources = p.sources.iter().map(|s| ConnectorBounds {
        field: format!("sources.{}", s.name),
        at: s.at,
        limits: s.config.sandbox_limits(),
        buffers: s.config.client_buffers(),
    });
    let sinks = p.sinks.iter().map(|s| ConnectorBounds {
        field: format!("sinks.{}", s.name),
        at: s.at,
        limits: s.config.sandbox_limits(),
        buffers: s.config.client_buffers(),
    });
    let dead_letter = p.dead_letter.iter().map(|d| ConnectorBounds {
        field: "dead_letter".to_string(),
        at: Location::default(),
        limits: d.sandbox_limits(),
        buffers: d.client_buffers(),
    });
    sources.chain(sinks).chain(dead_letter)
}
