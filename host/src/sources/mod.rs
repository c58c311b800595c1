//! Sources: where events enter a pipeline. One folder per connector, each
//! with its config (what users write) and the running source it builds.

pub mod datagen;
pub mod file;
pub mod kafka;
pub mod mongodb;
pub mod postgres_cdc;
pub mod postgres_poll;
pub mod stdin;

use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use crate::pipeline::{Batch, Progress};

/// Connector types a pipeline file may name.
pub const TYPES: &[&str] = &[
    "file",
    "stdin",
    "datagen",
    "postgres-cdc",
    "postgres-poll",
    "mongodb",
    "kafka",
];

/// A source's configuration, by `type`.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// JSON lines from a file.
    File(file::FileSourceConfig),
    /// JSON lines from standard input.
    Stdin(stdin::StdinSourceConfig),
    /// Generated records.
    Datagen(datagen::DatagenConfig),
    /// Change data capture from PostgreSQL.
    PostgresCdc(postgres_cdc::PostgresCdcConfig),
    /// MongoDB snapshot + change streams (boxed: it is large).
    Mongodb(Box<mongodb::MongoSourceConfig>),
    /// New rows of PostgreSQL tables, by polling (boxed: it is large).
    PostgresPoll(Box<postgres_poll::PostgresPollConfig>),
    /// Records from Kafka topics, in a consumer group.
    Kafka(kafka::KafkaSourceConfig),
}

/// A malformed input that never became an event, with why and where.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// The raw bytes.
    pub bytes: Vec<u8>,
    /// Why it was refused, naming file and line.
    pub reason: String,
    /// Its position within the source.
    pub position: u64,
}

/// What one poll returned.
#[derive(Debug, Default)]
pub struct Polled {
    /// Events (may be empty when the source is idle).
    pub batch: Option<Batch>,
    /// Inputs that could not be decoded; they go to the dead-letter destination.
    pub malformed: Vec<Malformed>,
    /// True when a bounded source has nothing more.
    pub done: bool,
}

/// A running source. Runs on its own thread; may block briefly in `poll`.
pub trait Source: Send {
    /// Resumes after `position` from the last checkpoint, or starts afresh.
    fn open(&mut self, position: Option<&Value>) -> Result<()>;
    /// Up to `max` events. Returns an empty poll when idle so the runner can
    /// inject checkpoint barriers and notice shutdown.
    fn poll(&mut self, max: usize) -> Result<Polled>;
    /// The position after the last event returned.
    fn position(&self) -> Value;
    /// Called on the source's thread once a checkpoint holding `position`
    /// is durable, i.e. every sink has acknowledged every event before it.
    /// Sources that acknowledge upstream (a replication slot's confirmed
    /// LSN, a consumer group's offsets) do it here and never earlier.
    fn committed(&mut self, _position: &Value) -> Result<()> {
        Ok(())
    }
    /// True once the source has delivered what existed when it started (a
    /// database snapshot, a file's end). Tables built from it count as
    /// loaded after that, and stages reading them wait for it. Sources with
    /// nothing to catch up on are caught up from the start.
    fn caught_up(&self) -> bool {
        true
    }
}

impl SourceConfig {
    /// Makes relative paths relative to the pipeline file's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if let SourceConfig::File(c) = self {
            c.path = base.join(&c.path);
        }
    }

    /// Checks that serde cannot express: (field to point at, field the
    /// message is about, what was expected).
    pub fn check(&self) -> Result<(), (String, String, String)> {
        match self {
            SourceConfig::Mongodb(c) => c.check(),
            SourceConfig::PostgresCdc(c) => c.check(),
            SourceConfig::PostgresPoll(c) => c.check(),
            SourceConfig::Kafka(c) => c.check(),
            _ => Ok(()),
        }
    }

    /// Builds the running source named `name`.
    pub fn build(&self, name: &str, progress: Arc<Progress>) -> Result<Box<dyn Source>> {
        let origin: Arc<str> = Arc::from(name);
        Ok(match self {
            SourceConfig::File(c) => Box::new(file::FileSource::new(c.clone(), origin, progress)),
            SourceConfig::Stdin(c) => Box::new(stdin::StdinSource::new(c.clone(), origin)),
            SourceConfig::Datagen(c) => {
                Box::new(datagen::DatagenSource::new(c.clone(), origin, progress))
            }
            SourceConfig::PostgresCdc(c) => Box::new(postgres_cdc::PostgresCdcSource::new(
                c.clone(),
                name,
                origin,
                progress,
            )?),
            SourceConfig::Mongodb(c) => {
                Box::new(mongodb::MongoSource::new((**c).clone(), name, progress))
            }
            SourceConfig::PostgresPoll(c) => Box::new(postgres_poll::PostgresPollSource::new(
                (**c).clone(),
                origin,
            )?),
            SourceConfig::Kafka(c) => Box::new(kafka::KafkaSource::new(c.clone(), name, origin)),
        })
    }
}

/// Checks that a line is one JSON value, without building it.
pub fn check_json(bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
