//! Operator ceilings: the most any pipeline file may ask for in `limits:`.
//!
//! A pipeline author chooses limits per stage; the operator of the host
//! bounds those choices. The ceilings come from the host configuration
//! (`--host-config FILE`, else `$SLUICE_HOST_CONFIG`; see
//! `config::host_config`), under `ceilings:`, and default to the safe values
//! below. A stage asking for more fails validation with the field, its value
//! and the ceiling.

use serde::Deserialize;

use super::limits::{CpuBudget, Limits};

/// Where the operator sets the ceilings, for messages.
const WHERE: &str =
    "set by the operator in the host configuration, --host-config or $SLUICE_HOST_CONFIG";

/// The environment variable naming the host configuration file.
pub const HOST_CONFIG_ENV: &str = "SLUICE_HOST_CONFIG";

/// The most a stage may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ceilings {
    /// `memory_mb`.
    pub memory_mb: u64,
    /// `cpu_ms_per_call` in milliseconds.
    pub cpu_ms_per_call: u64,
    /// Whether `cpu_ms_per_call: unlimited` (no CPU budget at all) is allowed.
    pub allow_unlimited_cpu: bool,
    /// `cpu_ms_per_batch`.
    pub cpu_ms_per_batch: u64,
    /// `output_events_per_call`.
    pub output_events_per_call: u64,
    /// `output_mb_per_call`.
    pub output_mb_per_call: u64,
    /// `state_mb`.
    pub state_mb: u64,
    /// `state_entries`.
    pub state_entries: u64,
    /// `timers`.
    pub timers: u64,
    /// `log_kb_per_call`.
    pub log_kb_per_call: u64,
    /// A table's `max_mb` (tables live in the host's memory, not a plugin's).
    pub table_mb: u64,
    /// What one native connector's client may buffer, MiB, as its
    /// configuration sizes it (a Kafka consumer's prefetch queue, a
    /// producer's queue, an Elasticsearch bulk body).
    pub client_buffer_mb: u64,
    /// Core instances one plugin instance (store) may create. Not a stage
    /// limit: the pooling allocator is sized from these three when the
    /// engine is built, so they hold for every stage of the process.
    pub instances_per_component: u64,
    /// Linear memories one plugin instance may create.
    pub memories_per_component: u64,
    /// Tables one plugin instance may create.
    pub tables_per_component: u64,
}

/// The largest values the host configuration accepts for the per-component
/// counts: the pool reserves address space for `256 stores × count` of each.
pub const COUNT_CAPS: [(&str, u64); 3] = [
    ("instances_per_component", 1024),
    ("memories_per_component", 16),
    ("tables_per_component", 256),
];

impl Default for Ceilings {
    fn default() -> Self {
        Self {
            memory_mb: 1024,
            cpu_ms_per_call: 60_000,
            allow_unlimited_cpu: false,
            cpu_ms_per_batch: 300_000,
            output_events_per_call: 4 << 20,
            output_mb_per_call: 1024,
            state_mb: 4096,
            state_entries: 50_000_000,
            timers: 10_000_000,
            log_kb_per_call: 1024,
            table_mb: 4096,
            client_buffer_mb: 512,
            instances_per_component: super::limits::INSTANCES_PER_COMPONENT as u64,
            memories_per_component: super::limits::MEMORIES_PER_COMPONENT as u64,
            tables_per_component: super::limits::TABLES_PER_COMPONENT as u64,
        }
    }
}

impl Ceilings {
    /// The per-component counts, for the engine and the store limiter.
    pub fn component_counts(&self) -> super::limits::ComponentCounts {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        super::limits::ComponentCounts {
            instances: n(self.instances_per_component),
            memories: n(self.memories_per_component),
            tables: n(self.tables_per_component),
        }
    }

    /// The per-component counts out of range: (field, value, largest).
    pub fn bad_counts(&self) -> Option<(&'static str, u64, u64)> {
        let values = [
            self.instances_per_component,
            self.memories_per_component,
            self.tables_per_component,
        ];
        COUNT_CAPS
            .iter()
            .zip(values)
            .find(|((_, cap), v)| *v == 0 || v > cap)
            .map(|((field, cap), v)| (*field, v, *cap))
    }
}

impl Ceilings {
    /// A table's `max_mb` above the ceiling, as a message.
    pub fn check_table(&self, max_mb: u64) -> Option<String> {
        (max_mb > self.table_mb).then(|| {
            format!(
                "{max_mb} is above this host's ceiling of {} ({WHERE})",
                self.table_mb
            )
        })
    }

    /// A native connector's client buffers above the ceiling, as a message.
    pub fn check_client(&self, buffers: &crate::connector::ClientBuffers) -> Option<String> {
        (buffers.mb > self.client_buffer_mb).then(|| {
            format!(
                "as configured, its client may buffer {} MiB ({}), above this host's ceiling of {} MiB (client_buffer_mb, {WHERE})",
                buffers.mb, buffers.made_of, self.client_buffer_mb
            )
        })
    }

    /// The limits of a user-defined function above the ceilings: its memory
    /// and CPU budget are bounded as a stage's are, and its result as a
    /// stage's output (`output_mb_per_call`).
    pub fn check_udf(&self, limits: &super::UdfLimits) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if limits.memory_mb > self.memory_mb {
            out.push((
                "memory_mb",
                format!(
                    "{} is above this host's ceiling of {} ({WHERE})",
                    limits.memory_mb, self.memory_mb
                ),
            ));
        }
        if limits.cpu_ms_per_call > self.cpu_ms_per_call {
            out.push((
                "cpu_ms_per_call",
                format!(
                    "{} is above this host's ceiling of {} ({WHERE})",
                    limits.cpu_ms_per_call, self.cpu_ms_per_call
                ),
            ));
        }
        let ceiling_kb = self.output_mb_per_call.saturating_mul(1024);
        if limits.output_kb_per_call > ceiling_kb {
            out.push((
                "output_kb_per_call",
                format!(
                    "{} is above this host's ceiling of {ceiling_kb} (output_mb_per_call; {WHERE})",
                    limits.output_kb_per_call
                ),
            ));
        }
        out
    }

    /// Every field of `limits` above its ceiling: (field, message).
    pub fn check(&self, limits: &Limits) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut over = |field: &'static str, value: u64, ceiling: u64| {
            if value > ceiling {
                out.push((
                    field,
                    format!("{value} is above this host's ceiling of {ceiling} ({WHERE})"),
                ));
            }
        };
        over("memory_mb", limits.memory_mb, self.memory_mb);
        if let CpuBudget::Millis(ms) = limits.cpu_ms_per_call {
            over("cpu_ms_per_call", ms, self.cpu_ms_per_call);
        }
        over(
            "cpu_ms_per_batch",
            limits.cpu_ms_per_batch,
            self.cpu_ms_per_batch,
        );
        over(
            "output_events_per_call",
            limits.output_events_per_call,
            self.output_events_per_call,
        );
        if let Some(mb) = limits.output_mb_per_call {
            over("output_mb_per_call", mb, self.output_mb_per_call);
        }
        over("state_mb", limits.state_mb, self.state_mb);
        over("state_entries", limits.state_entries, self.state_entries);
        over("timers", limits.timers, self.timers);
        over(
            "log_kb_per_call",
            limits.log_kb_per_call,
            self.log_kb_per_call,
        );
        // Unset, the output ceiling follows `memory_mb`: reported only when
        // memory_mb itself is allowed, so one excess is reported once.
        if limits.output_mb_per_call.is_none()
            && limits.memory_mb <= self.memory_mb
            && limits.memory_mb > self.output_mb_per_call
        {
            out.push((
                "output_mb_per_call",
                format!(
                    "unset, it defaults to memory_mb ({}), above this host's ceiling of {}; set it to at most {}",
                    limits.memory_mb, self.output_mb_per_call, self.output_mb_per_call
                ),
            ));
        }
        if limits.cpu_ms_per_call == CpuBudget::Unlimited && !self.allow_unlimited_cpu {
            out.push((
                "cpu_ms_per_call",
                format!("`unlimited` is not allowed on this host: the operator must set `ceilings: {{allow_unlimited_cpu: true}}` in the host configuration (--host-config or ${HOST_CONFIG_ENV}); the ceiling is {} ms", self.cpu_ms_per_call),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_under_the_default_ceilings_and_unlimited_needs_the_operator() {
        assert!(Ceilings::default().check(&Limits::default()).is_empty());
        let greedy = Limits {
            memory_mb: 4096,
            cpu_ms_per_call: CpuBudget::Unlimited,
            ..Limits::default()
        };
        let found = Ceilings::default().check(&greedy);
        let fields: Vec<&str> = found.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, vec!["memory_mb", "cpu_ms_per_call"]);
        assert!(found[0]
            .1
            .contains("4096 is above this host's ceiling of 1024"));
        let trusting = Ceilings {
            allow_unlimited_cpu: true,
            ..Ceilings::default()
        };
        assert_eq!(trusting.check(&greedy).len(), 1);
    }
}
