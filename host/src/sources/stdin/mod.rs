//! `stdin` source: JSON lines from standard input, until it closes.

use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::connector::{parse_source, SourceConfig, SourceContext, SourceKind};
use crate::connector::{Malformed, Polled, Source};
use crate::event::BatchBuilder;

/// Configuration of a `stdin` source (no settings yet).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {}

/// A running `stdin` source. A reader thread feeds lines so `poll` can return
/// when idle (for barriers and shutdown) instead of blocking on a read.
pub struct StdinSource {
    origin: Arc<str>,
    lines: Option<Receiver<std::io::Result<Vec<u8>>>>,
    line: u64,
    /// Build field tables while checking (a stage downstream reads them).
    index_json: bool,
}

impl StdinSource {
    /// A source over this process's standard input.
    pub fn new(_config: StdinSourceConfig, origin: Arc<str>) -> Self {
        Self {
            origin,
            lines: None,
            line: 0,
            index_json: false,
        }
    }
}

impl Source for StdinSource {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        let (tx, rx) = sync_channel(4096);
        std::thread::Builder::new()
            .name("sluice-stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                let mut lock = stdin.lock();
                loop {
                    let mut buf = Vec::new();
                    match lock.read_until(b'\n', &mut buf) {
                        Ok(0) => break,
                        Ok(_) => {
                            if tx.send(Ok(buf)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            })?;
        self.lines = Some(rx);
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let Some(rx) = self.lines.as_ref() else {
            anyhow::bail!("stdin source polled before open");
        };
        let mut out = BatchBuilder::new(&self.origin, self.origin.clone(), max.min(256));
        if self.index_json {
            out = out.index_json();
        }
        let mut malformed = Vec::new();
        let mut done = false;
        let mut wait = Duration::from_millis(100);
        // Dead-lettered lines count too (see the `file` source).
        while out.len() + malformed.len() < max {
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    let line = line?;
                    self.line += 1;
                    let text = line.trim_ascii_end();
                    if text.is_empty() {
                        continue;
                    }
                    match out.push_json(None, text, 0, self.line) {
                        Ok(()) => {}
                        Err(e) => malformed.push(Malformed {
                            bytes: text.to_vec(),
                            reason: format!("malformed JSON at stdin line {}: {e}", self.line),
                            position: self.line,
                        }),
                    }
                    // Once data flows, hand over what is there without waiting.
                    wait = Duration::ZERO;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    done = true;
                    break;
                }
            }
        }
        Ok(Polled {
            batch: (!out.is_empty()).then(|| out.finish()),
            malformed,
            done,
        })
    }

    fn position(&self) -> Value {
        // Standard input cannot be replayed; the line count is informational.
        json!({ "line": self.line })
    }
}

/// The `stdin` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "stdin",
    summary: "JSON lines from standard input",
    parse: parse_source::<StdinSourceConfig>,
};

impl SourceConfig for StdinSourceConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let mut source = StdinSource::new(self.clone(), std::sync::Arc::from(cx.name));
        source.index_json = cx.index_json;
        Ok(Box::new(source))
    }
}
