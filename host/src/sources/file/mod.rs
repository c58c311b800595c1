//! `file` source: JSON lines from a file, resuming from the checkpointed byte
//! offset so a rerun continues where the last run stopped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::connector::Progress;
use crate::connector::{parse_source, SourceConfig, SourceContext, SourceKind};
use crate::connector::{Malformed, Polled, Source};
use crate::event::BatchBuilder;

/// Configuration of a `file` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The JSON-lines file to read (relative to the pipeline file).
    pub path: PathBuf,
    /// Use this top-level field of each line (a string or number) as the
    /// event key, like Kafka Connect's ValueToKey.
    pub key_field: Option<String>,
}

/// A running `file` source.
pub struct FileSource {
    config: FileSourceConfig,
    origin: Arc<str>,
    progress: Arc<Progress>,
    reader: Option<BufReader<File>>,
    offset: u64,
    line: u64,
    buf: Vec<u8>,
    index_json: bool,
}

impl FileSource {
    /// Builds the values' field tables as it checks them (for a pipeline
    /// whose plugins read them).
    pub fn with_field_tables(mut self) -> Self {
        self.index_json = true;
        self
    }

    /// A source over `config.path`.
    pub fn new(config: FileSourceConfig, origin: Arc<str>, progress: Arc<Progress>) -> Self {
        Self {
            config,
            origin,
            progress,
            reader: None,
            offset: 0,
            line: 0,
            buf: Vec::with_capacity(1024),
            index_json: false,
        }
    }
}

/// Validates the line and extracts `field` as the key (absent or null: no key).
fn key_of(line: &[u8], field: &str) -> Result<Option<String>, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ Value::Number(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(format!("key field `{field}` is not a string or number")),
    }
}

impl Source for FileSource {
    fn caught_up(&self) -> bool {
        // Only the end of the file (reported as done) catches it up.
        false
    }

    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let path = &self.config.path;
        let mut file = File::open(path)
            .with_context(|| format!("cannot open source file {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if let Some(pos) = position {
            self.offset = pos.get("offset").and_then(Value::as_u64).unwrap_or(0);
            self.line = pos.get("line").and_then(Value::as_u64).unwrap_or(0);
            if self.offset > len {
                anyhow::bail!(
                    "{} is shorter ({len} bytes) than the checkpointed offset {}; it was truncated or replaced. Remove the checkpoint under the data dir to read it from the start",
                    path.display(),
                    self.offset
                );
            }
            file.seek(SeekFrom::Start(self.offset))?;
        }
        self.progress.set_total(len);
        self.progress.set_done(self.offset);
        self.reader = Some(BufReader::with_capacity(1 << 16, file));
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let Some(reader) = self.reader.as_mut() else {
            anyhow::bail!("file source polled before open");
        };
        let mut out = BatchBuilder::new(&self.origin, self.origin.clone(), max);
        if self.index_json {
            out = out.index_json();
        }
        let mut malformed = Vec::new();
        let mut done = false;
        // Dead-lettered lines count too: a file of nothing but bad lines
        // would otherwise be read whole into one poll.
        while out.len() + malformed.len() < max {
            self.buf.clear();
            let mut n = (&mut *reader)
                // Room for the line and a CRLF ending.
                .take(MAX_LINE_BYTES as u64 + 2)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                done = true;
                break;
            }
            if self.buf.len() > MAX_LINE_BYTES + 1 && self.buf.last() != Some(&b'\n') {
                // Past the bound: the rest of the line is skipped, not read.
                n += reader.skip_until(b'\n')?;
                self.offset += n as u64;
                self.line += 1;
                malformed.push(Malformed {
                    // A copy: the buffer keeps its 16 MiB for the next line.
                    bytes: self.buf[..1024].to_vec(),
                    reason: format!(
                        "line {} of {} is {n} bytes, longer than the {} MiB a line may be; its first KiB is kept here",
                        self.line,
                        self.config.path.display(),
                        MAX_LINE_BYTES >> 20
                    ),
                    position: self.line,
                });
                continue;
            }
            if self.buf.last() != Some(&b'\n') {
                // A partial last line may still be being written; in a bounded
                // read it is the end of the file, so take it as a line.
            }
            self.offset += n as u64;
            self.line += 1;
            let mut line: &[u8] = &self.buf;
            while let Some((last, rest)) = line.split_last() {
                if *last == b'\n' || *last == b'\r' {
                    line = rest;
                } else {
                    break;
                }
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let pushed = match &self.config.key_field {
                None => out.push_json(None, line, 0, self.line),
                Some(field) => key_of(line, field).map(|key| {
                    out.push(
                        key.as_deref().map(str::as_bytes),
                        Some(line),
                        &[],
                        0,
                        self.line,
                    )
                }),
            };
            match pushed {
                Ok(()) => {}
                Err(e) => malformed.push(Malformed {
                    bytes: line.to_vec(),
                    reason: format!(
                        "malformed JSON at {} line {}: {e}",
                        self.config.path.display(),
                        self.line
                    ),
                    position: self.line,
                }),
            }
        }
        self.progress.set_done(self.offset);
        Ok(Polled {
            batch: (!out.is_empty()).then(|| out.finish()),
            malformed,
            done,
        })
    }

    fn position(&self) -> Value {
        json!({ "offset": self.offset, "line": self.line })
    }
}

/// The longest line the source reads: an event is at most this large, and
/// a longer line is dead-lettered (its first KiB) without being held whole.
const MAX_LINE_BYTES: usize = 16 << 20;

/// The `file` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "file",
    summary: "JSON lines from a file, resuming at the checkpointed byte offset",
    parse: parse_source::<FileSourceConfig>,
};

impl SourceConfig for FileSourceConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.path = base.join(&self.path);
    }

    fn check_files(&self) -> Result<(), crate::connector::ConfigIssue> {
        if self.path.is_file() {
            return Ok(());
        }
        let why = if self.path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        Err(crate::connector::ConfigIssue::at(
            "path",
            format!(
                "input file {} {why} (a relative path is read from the pipeline file's directory)",
                self.path.display()
            ),
        ))
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let source = FileSource::new(self.clone(), std::sync::Arc::from(cx.name), cx.progress);
        Ok(Box::new(if cx.index_json {
            source.with_field_tables()
        } else {
            source
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &[u8]) -> (tempfile::TempDir, FileSource) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).expect("write");
        let config = FileSourceConfig {
            path,
            key_field: None,
        };
        let mut s = FileSource::new(config, Arc::from("in"), Arc::new(Progress::default()));
        s.open(None).expect("open");
        (dir, s)
    }

    #[test]
    fn a_poll_holds_at_most_max_lines_even_when_all_are_bad() {
        let (_dir, mut s) = source(&b"x\n".repeat(10_000));
        let polled = s.poll(100).expect("poll");
        assert!(polled.batch.is_none());
        assert_eq!(
            polled.malformed.len(),
            100,
            "the rest wait for the next poll"
        );
        assert!(!polled.done);
    }

    #[test]
    fn a_line_past_the_bound_is_dead_lettered_by_its_first_kib_and_the_next_one_is_read() {
        let mut text = vec![b'{'; MAX_LINE_BYTES + 10];
        text.extend_from_slice(b"\n{\"n\":1}\n");
        // A line of exactly the bound, CRLF-terminated, is a line like any.
        let mut exact = vec![b' '; MAX_LINE_BYTES - 7];
        exact.extend_from_slice(b"{\"n\":2}\r\n");
        text.extend_from_slice(&exact);
        let (_dir, mut s) = source(&text);
        let polled = s.poll(10).expect("poll");
        assert_eq!(polled.malformed.len(), 1);
        let bad = &polled.malformed[0];
        assert_eq!(bad.bytes.len(), 1024);
        assert!(
            bad.bytes.capacity() < 4096,
            "the dead letter holds a copy, not the buffer"
        );
        assert!(
            bad.reason.contains("line 1 of")
                && bad
                    .reason
                    .contains(&format!("is {} bytes", MAX_LINE_BYTES + 11))
                && bad.reason.contains("longer than the 16 MiB"),
            "{}",
            bad.reason
        );
        let batch = polled.batch.expect("the next lines");
        assert_eq!(batch.len(), 2);
        assert_eq!(s.position()["line"], 3);
        assert_eq!(s.position()["offset"], text.len() as u64);
    }
}
