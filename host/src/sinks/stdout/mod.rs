//! `stdout` sink: JSON lines to standard output.

use std::io::Write;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

use super::{write_event, OutputFormat};
use crate::connector::{parse_sink, Rejected, Sink, SinkConfig, SinkKind};
use std::sync::Arc;

use crate::event::Batch;

/// Configuration of a `stdout` sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// `value` (default) or `envelope`.
    #[serde(default)]
    pub format: OutputFormat,
}

/// A running `stdout` sink.
pub struct StdoutSink {
    config: StdoutSinkConfig,
    buf: Vec<u8>,
}

impl StdoutSink {
    /// A sink writing to this process's standard output.
    pub fn new(config: StdoutSinkConfig) -> Self {
        Self {
            config,
            buf: Vec::with_capacity(1 << 16),
        }
    }
}

impl Sink for StdoutSink {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, _rejected: &mut Rejected) -> Result<()> {
        self.buf.clear();
        for event in batch.iter() {
            write_event(&mut self.buf, &event, self.config.format);
        }
        std::io::stdout().lock().write_all(&self.buf)?;
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        std::io::stdout().lock().flush()?;
        Ok(Value::Null)
    }
}

/// The `stdout` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "stdout",
    summary: "JSON lines to standard output",
    parse: parse_sink::<StdoutSinkConfig>,
};

impl SinkConfig for StdoutSinkConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn build(&self, _name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink::new(self.clone())))
    }
}
