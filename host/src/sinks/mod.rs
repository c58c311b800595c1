//! Sinks: where events leave a pipeline. One folder per connector.

pub mod file;
pub mod stdout;

mod encode;

pub use encode::{write_event, OutputFormat};

use anyhow::Result;
use serde_json::Value;

use crate::pipeline::Batch;

/// Connector types a pipeline file may name.
pub const TYPES: &[&str] = &["file", "stdout"];

/// A sink's configuration, by `type`.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// JSON lines to a file.
    File(file::FileSinkConfig),
    /// JSON lines to standard output.
    Stdout(stdout::StdoutSinkConfig),
}

/// A running sink. Runs on its own thread.
pub trait Sink: Send {
    /// Restores the state of the last checkpoint (a file sink truncates what
    /// was written after it), or starts afresh when `position` is `None`.
    fn open(&mut self, position: Option<&Value>) -> Result<()>;
    /// Writes a batch (buffered; not yet durable).
    fn write(&mut self, batch: &Batch) -> Result<()>;
    /// Makes everything written durable and returns the position to record in
    /// the checkpoint. Source positions are committed only after this.
    fn flush(&mut self) -> Result<Value>;
}

impl SinkConfig {
    /// Makes relative paths relative to the pipeline file's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if let SinkConfig::File(c) = self {
            c.path = base.join(&c.path);
        }
    }

    /// Builds the running sink.
    pub fn build(&self) -> Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::File(c) => Box::new(file::FileSink::new(c.clone())),
            SinkConfig::Stdout(c) => Box::new(stdout::StdoutSink::new(c.clone())),
        })
    }
}
