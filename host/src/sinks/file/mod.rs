//! `file` sink: JSON lines to a file. Its checkpointed position is the file's
//! durable length; on restart it truncates anything written after the last
//! checkpoint, which together with the source resuming from the same
//! checkpoint gives each input event exactly once in the file.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{write_event, OutputFormat};
use crate::connector::{parse_sink, Rejected, Sink, SinkConfig, SinkKind};
use std::sync::Arc;

use crate::event::Batch;

/// Configuration of a `file` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to write, relative to the pipeline file (parent directories are created).
    pub path: PathBuf,
    /// `value` (default) or `envelope`.
    #[serde(default)]
    pub format: OutputFormat,
}

/// A running `file` sink.
pub struct FileSink {
    config: FileSinkConfig,
    file: Option<File>,
    buf: Vec<u8>,
    written: u64,
}

impl FileSink {
    /// A sink writing `config.path`.
    pub fn new(config: FileSinkConfig) -> Self {
        Self {
            config,
            file: None,
            buf: Vec::with_capacity(1 << 20),
            written: 0,
        }
    }

    fn drain(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = &self.config.path;
        let file = self.file.as_mut().context("file sink used before open")?;
        file.write_all(&self.buf)
            .with_context(|| format!("writing {}", path.display()))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Sink for FileSink {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let path = &self.config.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening sink file {}", path.display()))?;
        // Without a checkpoint this is a fresh run: start an empty file.
        let keep = position
            .and_then(|p| p.get("bytes"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let len = file.metadata()?.len();
        if len < keep {
            anyhow::bail!(
                "{} is shorter ({len} bytes) than the checkpoint says it was ({keep} bytes); it was changed outside this pipeline",
                path.display()
            );
        }
        file.set_len(keep)?;
        file.seek(SeekFrom::Start(keep))?;
        self.written = keep;
        self.file = Some(file);
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, _rejected: &mut Rejected) -> Result<()> {
        for event in batch.iter() {
            write_event(&mut self.buf, &event, self.config.format);
        }
        if self.buf.len() >= 1 << 20 {
            self.drain()?;
        }
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        self.drain()?;
        if let Some(f) = self.file.as_mut() {
            f.sync_data()
                .with_context(|| format!("syncing {}", self.config.path.display()))?;
        }
        Ok(json!({ "bytes": self.written }))
    }
}

/// The `file` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "file",
    summary: "JSON lines to a file, truncated back to the last checkpoint on restart",
    parse: parse_sink::<FileSinkConfig>,
};

impl SinkConfig for FileSinkConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.path = base.join(&self.path);
    }

    fn output_path(&self) -> Option<&std::path::Path> {
        Some(&self.path)
    }

    fn build(&self, _name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(FileSink::new(self.clone())))
    }
}
