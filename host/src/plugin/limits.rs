//! A stage's sandbox limits: what one plugin instance may use per call.
//!
//! They belong to the runtime (the plugin module enforces them); the pipeline
//! configuration only reads them from `limits:`.

use serde::Deserialize;

/// Per-stage sandbox limits. Every one of them is enforced by the host, so a
/// plugin cannot opt out; a breach fails that call only (its events are
/// dead-lettered with kind `limit`, naming the limit and the stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory cap of one plugin instance, in MiB: the sum over all its linear
    /// memories and tables (a component may hold several).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock CPU budget of one call (one batch): milliseconds, or
    /// `unlimited` for trusted plugins (no epoch checks compiled in: faster,
    /// but a runaway plugin is no longer stopped).
    #[serde(default)]
    pub cpu_ms_per_call: CpuBudget,
    /// Wall-clock budget for isolating the culprits of one failed batch (the
    /// calls after its first failure, together). Never less than one call's
    /// budget. Events still unresolved when it runs out are dead-lettered.
    #[serde(default = "default_cpu_ms_per_batch")]
    pub cpu_ms_per_batch: u64,
    /// Most output events one call may return.
    #[serde(default = "default_output_events_per_call")]
    pub output_events_per_call: u64,
    /// Most output bytes one call may return, in MiB, counting every span
    /// each output event refers to (overlapping spans count every time).
    /// Default: `memory_mb`, as much as a plugin could hold without
    /// overlapping spans.
    #[serde(default)]
    pub output_mb_per_call: Option<u64>,
    /// Processors: most key + value bytes of keyed state, in MiB.
    #[serde(default = "default_state_mb")]
    pub state_mb: u64,
    /// Processors: most keyed-state entries.
    #[serde(default = "default_state_entries")]
    pub state_entries: u64,
    /// Processors: most pending timers.
    #[serde(default = "default_timers")]
    pub timers: u64,
    /// Most bytes of log lines one call (one batch, or `create`) may print,
    /// in KiB; the rest is dropped and counted.
    #[serde(default = "default_log_kb_per_call")]
    pub log_kb_per_call: u64,
}

impl Limits {
    /// The per-batch isolation budget in milliseconds (at least one call's).
    pub fn batch_ms(&self) -> Option<u64> {
        match self.cpu_ms_per_call {
            CpuBudget::Millis(call) => Some(self.cpu_ms_per_batch.max(call)),
            CpuBudget::Unlimited => None,
        }
    }

    /// The output ceiling per call in MiB.
    pub fn output_mb(&self) -> u64 {
        self.output_mb_per_call.unwrap_or(self.memory_mb)
    }

    /// The log budget per call in bytes.
    pub fn log_bytes_per_call(&self) -> usize {
        usize::try_from(self.log_kb_per_call.saturating_mul(1024)).unwrap_or(usize::MAX)
    }

    /// The output ceiling per call in bytes.
    pub fn output_bytes(&self) -> u64 {
        self.output_mb().saturating_mul(1 << 20)
    }
}

/// Most core instances, linear memories and tables one plugin instance (one
/// store) may create. Toolchains link a few core instances (an adapter,
/// shims, shared libraries for Python) around one memory; the counts leave
/// room for them, and memory and table *bytes* are capped by `memory_mb`.
pub const INSTANCES_PER_COMPONENT: usize = 64;
/// See [`INSTANCES_PER_COMPONENT`].
pub const MEMORIES_PER_COMPONENT: usize = 4;
/// See [`INSTANCES_PER_COMPONENT`].
pub const TABLES_PER_COMPONENT: usize = 16;

/// How many core instances, memories and tables one plugin instance may
/// create in this process: the defaults above, or the operator's
/// `ceilings.*_per_component`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentCounts {
    /// Core instances.
    pub instances: usize,
    /// Linear memories.
    pub memories: usize,
    /// Tables.
    pub tables: usize,
}

impl Default for ComponentCounts {
    fn default() -> Self {
        Self {
            instances: INSTANCES_PER_COMPONENT,
            memories: MEMORIES_PER_COMPONENT,
            tables: TABLES_PER_COMPONENT,
        }
    }
}

static COUNTS: std::sync::OnceLock<ComponentCounts> = std::sync::OnceLock::new();

/// Sets this process's counts (the host configuration does, once, before
/// any engine is built). A second call is ignored.
pub fn install_component_counts(counts: ComponentCounts) {
    let _ = COUNTS.set(counts);
}

/// This process's counts.
pub fn component_counts() -> ComponentCounts {
    COUNTS.get().copied().unwrap_or_default()
}

/// A per-call CPU budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuBudget {
    /// At most this many milliseconds per call.
    Millis(u64),
    /// No budget (trusted plugins only).
    Unlimited,
}

impl Default for CpuBudget {
    fn default() -> Self {
        CpuBudget::Millis(2000)
    }
}

impl std::fmt::Display for CpuBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuBudget::Millis(ms) => write!(f, "{ms} ms per call"),
            CpuBudget::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for CpuBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CpuBudget;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("milliseconds (a positive integer) or `unlimited`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CpuBudget, E> {
                if v == 0 {
                    return Err(E::custom(
                        "0 ms would stop every call; expected milliseconds > 0 or `unlimited`",
                    ));
                }
                Ok(CpuBudget::Millis(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CpuBudget, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("expected milliseconds > 0 or `unlimited`"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CpuBudget, E> {
                match v {
                    "unlimited" => Ok(CpuBudget::Unlimited),
                    other => Err(E::custom(format!(
                        "unknown value `{other}`; expected milliseconds or `unlimited`"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn default_memory_mb() -> u64 {
    128
}

fn default_cpu_ms_per_batch() -> u64 {
    10_000
}
fn default_output_events_per_call() -> u64 {
    262_144
}
fn default_state_mb() -> u64 {
    256
}
fn default_state_entries() -> u64 {
    1_000_000
}
fn default_timers() -> u64 {
    1_000_000
}
fn default_log_kb_per_call() -> u64 {
    64
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms_per_call: CpuBudget::default(),
            cpu_ms_per_batch: default_cpu_ms_per_batch(),
            output_events_per_call: default_output_events_per_call(),
            output_mb_per_call: None,
            state_mb: default_state_mb(),
            state_entries: default_state_entries(),
            timers: default_timers(),
            log_kb_per_call: default_log_kb_per_call(),
        }
    }
}
