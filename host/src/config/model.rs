//! The validated pipeline model that the runner builds from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Location;
use crate::connector::{SinkConfig, SourceConfig};

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file it came from.
    pub file: PathBuf,
    /// Its name (`name:` or the file stem); checkpoints live under it.
    pub name: String,
    /// Where checkpoints and default dead letters go.
    pub data_dir: PathBuf,
    /// Most events per batch.
    pub batch_size: usize,
    /// How often a checkpoint is taken.
    pub checkpoint_interval: Duration,
    /// Batches buffered between two stages before the upstream waits.
    pub channel_capacity: usize,
    /// Sources, in file order.
    pub sources: Vec<SourceDef>,
    /// Stages, in file order.
    pub stages: Vec<StageDef>,
    /// Sinks, in file order.
    pub sinks: Vec<SinkDef>,
    /// Tables materialized from streams, for processors to look up.
    pub tables: Vec<TableDef>,
    /// Where dead letters go; `None` means the default file under `data_dir`.
    pub dead_letter: Option<Box<dyn SinkConfig>>,
}

impl Pipeline {
    /// The directory holding this pipeline's checkpoint and default dead letters.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join(&self.name)
    }
}

/// Top-level settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub name: Option<String>,
    pub data_dir: Option<String>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
}

fn default_batch_size() -> usize {
    1024
}
fn default_checkpoint_ms() -> u64 {
    1000
}
fn default_channel_capacity() -> usize {
    4
}

/// A named source.
#[derive(Debug, Clone)]
pub struct SourceDef {
    /// Its name; stages and sinks list it in `inputs`.
    pub name: String,
    /// Connector configuration.
    pub config: Box<dyn SourceConfig>,
    /// Where it is defined.
    pub at: Location,
}

/// A named table: the latest value per key of a stream.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Its name; stages list it in `tables` to read it.
    pub name: String,
    /// What it is built from and how it is keyed.
    pub config: crate::state::TableConfig,
    /// Where it is defined.
    pub at: Location,
}

/// Where a stage's events take their event time from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    /// Top-level field holding the time: an ISO 8601 string
    /// (`yyyy-MM-dd'T'HH:mm:ss`, no zone = UTC) or epoch milliseconds. The
    /// event's own timestamp when absent.
    pub field: Option<String>,
    /// How far behind the newest event time an event may arrive and still
    /// count; later ones are dead-lettered as `late`. The watermark trails
    /// the newest event time by this much.
    #[serde(default)]
    pub lateness_ms: u64,
}

/// A named sink.
#[derive(Debug, Clone)]
pub struct SinkDef {
    /// Its name.
    pub name: String,
    /// Connector configuration.
    pub config: Box<dyn SinkConfig>,
    /// Names of the sources or stages it reads.
    pub inputs: Vec<String>,
    /// Where it is defined.
    pub at: Location,
}

/// A named plugin stage.
#[derive(Debug, Clone)]
pub struct StageDef {
    /// Its name.
    pub name: String,
    /// The resolved component file.
    pub plugin: PathBuf,
    /// Where `plugin:` is written.
    pub plugin_at: Location,
    /// Where `params:` is written (plugin errors about parameters point here).
    pub params_at: Location,
    /// Names of the sources or stages it reads.
    pub inputs: Vec<String>,
    /// Parameters as text (non-string YAML values as JSON).
    pub params: Vec<(String, String)>,
    /// What to do with an event the plugin refuses or that makes it fail.
    pub on_error: OnError,
    /// Sandbox limits.
    pub limits: Limits,
    /// Tables the stage may look up (processors only).
    pub tables: Vec<String>,
    /// Event time and lateness (processors only).
    pub event_time: Option<EventTime>,
    /// Where it is defined.
    pub at: Location,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageConfig {
    pub plugin: String,
    pub inputs: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub tables: Vec<String>,
    pub event_time: Option<EventTime>,
}

/// Error policy of a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Send the event to the dead-letter destination with the reason (default).
    #[default]
    DeadLetter,
    /// Count and log it, then go on without it.
    Skip,
    /// Stop the pipeline.
    Fail,
}

/// Per-stage sandbox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap of one plugin instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock CPU budget of one call (one batch): milliseconds, or
    /// `unlimited` for trusted plugins (no epoch checks compiled in: faster,
    /// but a runaway plugin is no longer stopped).
    #[serde(default)]
    pub cpu_ms_per_call: CpuBudget,
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

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms_per_call: CpuBudget::default(),
        }
    }
}
