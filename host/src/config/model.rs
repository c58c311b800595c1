//! The validated pipeline model that the runner builds from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Location;
use crate::connector::{SinkConfig, SourceConfig};

pub use crate::plugin::limits::{CpuBudget, Limits};

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
    /// Whether adjacent built-in stages may run as one
    /// ([`crate::pipeline::fuse`]).
    pub fuse_stages: bool,
    /// Sources, in file order.
    pub sources: Vec<SourceDef>,
    /// Stages, in file order.
    pub stages: Vec<StageDef>,
    /// Sinks, in file order.
    pub sinks: Vec<SinkDef>,
    /// Tables materialized from streams, for processors to look up.
    pub tables: Vec<TableDef>,
    /// User-defined functions that expressions may call, by (lowercase) name.
    pub udfs: Vec<UdfDef>,
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
    #[serde(default = "default_fuse_stages")]
    pub fuse_stages: bool,
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
fn default_fuse_stages() -> bool {
    true
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

/// A user-defined function: a component of the `udf` world, registered
/// under a name that the stages' expressions call.
#[derive(Debug, Clone)]
pub struct UdfDef {
    /// Its name, lowercase (calls are case-insensitive).
    pub name: String,
    /// The resolved component file; `None` only in a partially loaded
    /// pipeline whose `plugin:` did not resolve (reported already), so
    /// that calls of the function still parse while the rest is checked.
    pub plugin: Option<PathBuf>,
    /// Where `plugin:` is written.
    pub plugin_at: Location,
    /// Its sandbox limits.
    pub limits: crate::plugin::UdfLimits,
    /// Where it is defined.
    pub at: Location,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UdfConfig {
    pub plugin: String,
    #[serde(default)]
    pub limits: crate::plugin::UdfLimits,
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
