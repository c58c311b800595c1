//! Sinks: where events leave a pipeline. One folder per connector.

pub mod elasticsearch;
pub mod file;
pub mod kafka;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod s3;
pub mod sql;
pub mod stdout;

mod encode;

pub use encode::{write_event, OutputFormat};

use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use crate::pipeline::Batch;

/// Connector types a pipeline file may name.
pub const TYPES: &[&str] = &[
    "file",
    "stdout",
    "elasticsearch",
    "s3",
    "mongodb",
    "postgres",
    "mysql",
    "kafka",
];

/// A sink's configuration, by `type`.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// JSON lines to a file.
    File(file::FileSinkConfig),
    /// JSON lines to standard output.
    Stdout(stdout::StdoutSinkConfig),
    /// Documents into an Elasticsearch/OpenSearch index (boxed: it is large).
    Elasticsearch(Box<elasticsearch::ElasticsearchSinkConfig>),
    /// Objects in S3 or an S3-compatible store (boxed: it is large).
    S3(Box<s3::S3SinkConfig>),
    /// Documents into a MongoDB collection (boxed: it is large).
    Mongodb(Box<mongodb::MongoSinkConfig>),
    /// Rows in a PostgreSQL table (boxed: it is large).
    Postgres(Box<sql::SqlSinkConfig>),
    /// Rows in a MySQL or MariaDB table (boxed: it is large).
    Mysql(Box<sql::SqlSinkConfig>),
    /// Records to Kafka topics (boxed: it is large).
    Kafka(Box<kafka::KafkaSinkConfig>),
}

/// Events a sink's target refused for good (a bad document, a constraint),
/// with the target's reason. The runner dead-letters them before the next
/// checkpoint barrier, so a checkpoint never covers an unrouted rejection.
#[derive(Default)]
pub struct Rejected {
    items: Vec<(Arc<Batch>, usize, String)>,
}

impl Rejected {
    /// Refuses event `index` of `batch` with `reason`.
    pub fn push(&mut self, batch: &Arc<Batch>, index: usize, reason: impl Into<String>) {
        self.items.push((batch.clone(), index, reason.into()));
    }

    /// True when nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Takes the refused events.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (Arc<Batch>, usize, String)> {
        self.items.drain(..)
    }
}

/// A running sink. Runs on its own thread.
pub trait Sink: Send {
    /// Restores the state of the last checkpoint (a file sink truncates what
    /// was written after it), or starts afresh when `position` is `None`.
    fn open(&mut self, position: Option<&Value>) -> Result<()>;
    /// Writes a batch (possibly buffered; not yet durable). Events the target
    /// refuses for good go to `rejected`; an `Err` is fatal for the pipeline,
    /// so transient failures are retried inside the sink.
    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()>;
    /// Makes everything written durable and returns the position to record in
    /// the checkpoint. Source positions are committed only after this.
    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value>;
}

impl SinkConfig {
    /// Makes relative paths relative to the pipeline file's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if let SinkConfig::File(c) = self {
            c.path = base.join(&c.path);
        }
    }

    /// Checks that serde cannot express: (field to point at, field the
    /// message is about, what was expected).
    pub fn check(&self) -> Result<(), (String, String, String)> {
        match self {
            SinkConfig::Elasticsearch(c) => c.check(),
            SinkConfig::S3(c) => c.check(),
            SinkConfig::Mongodb(c) => c.check(),
            SinkConfig::Postgres(c) => c.check(postgres::SCHEMES),
            SinkConfig::Mysql(c) => c.check(mysql::SCHEMES),
            SinkConfig::Kafka(c) => c.check(),
            _ => Ok(()),
        }
    }

    /// Builds the running sink named `name`.
    pub fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::File(c) => Box::new(file::FileSink::new(c.clone())),
            SinkConfig::Stdout(c) => Box::new(stdout::StdoutSink::new(c.clone())),
            SinkConfig::Elasticsearch(c) => {
                Box::new(elasticsearch::ElasticsearchSink::new((**c).clone(), name)?)
            }
            SinkConfig::S3(c) => Box::new(s3::S3Sink::new((**c).clone(), name)?),
            SinkConfig::Mongodb(c) => Box::new(mongodb::MongoSink::new((**c).clone(), name)?),
            SinkConfig::Postgres(c) => Box::new(postgres::PostgresSink::new((**c).clone(), name)?),
            SinkConfig::Mysql(c) => Box::new(mysql::MysqlSink::new((**c).clone(), name)?),
            SinkConfig::Kafka(c) => Box::new(kafka::KafkaSink::new((**c).clone(), name)?),
        })
    }
}
