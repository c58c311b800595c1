//! `file` source: JSON lines from a file, resuming from the checkpointed byte
//! offset so a rerun continues where the last run stopped.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
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

/// What a poll does with each line it reads.
struct Lines<'a> {
    config: &'a FileSourceConfig,
    offset: &'a mut u64,
    line: &'a mut u64,
    out: &'a mut BatchBuilder,
    malformed: &'a mut Vec<Malformed>,
}

impl Lines<'_> {
    /// Lines taken by this poll, good or bad.
    fn taken(&self) -> usize {
        self.out.len() + self.malformed.len()
    }

    /// Takes one line as read (`text` with its line ending).
    fn accept(&mut self, text: &[u8]) {
        *self.offset += text.len() as u64;
        *self.line += 1;
        let mut line = text;
        while let Some((last, rest)) = line.split_last() {
            if *last == b'\n' || *last == b'\r' {
                line = rest;
            } else {
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let pushed = match &self.config.key_field {
            None => self.out.push_json(None, line, 0, *self.line),
            Some(field) => key_of(line, field).map(|key| {
                self.out.push(
                    key.as_deref().map(str::as_bytes),
                    Some(line),
                    &[],
                    0,
                    *self.line,
                )
            }),
        };
        if let Err(e) = pushed {
            self.malformed.push(Malformed {
                bytes: line.to_vec(),
                reason: format!(
                    "malformed JSON at {} line {}: {e}",
                    self.config.path.display(),
                    *self.line
                ),
                position: *self.line,
            });
        }
    }

    /// Dead-letters a line of `n` bytes past [`MAX_LINE_BYTES`] by `first`,
    /// its first KiB.
    fn too_long(&mut self, first: &[u8], n: usize) {
        *self.offset += n as u64;
        *self.line += 1;
        self.malformed.push(Malformed {
            bytes: first.to_vec(),
            reason: format!(
                "line {} of {} is {n} bytes, longer than the {} MiB a line may be; its first KiB is kept here",
                *self.line,
                self.config.path.display(),
                MAX_LINE_BYTES >> 20
            ),
            position: *self.line,
        });
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
        self.reader = Some(BufReader::with_capacity(READ_BUFFER, file));
        // Bytes gathered before a failed read belong to the old position.
        self.buf.clear();
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
        let mut lines = Lines {
            config: &self.config,
            offset: &mut self.offset,
            line: &mut self.line,
            out: &mut out,
            malformed: &mut malformed,
        };
        // Dead-lettered lines count too: a file of nothing but bad lines
        // would otherwise be read whole into one poll.
        while lines.taken() < max {
            // A line that lies whole in the reader's buffer is checked and
            // copied into the batch from there; only a line cut by the
            // buffer's end is gathered in `buf` first. (`read_until` copied
            // every line twice and searched for its end a byte at a time.)
            let avail = loop {
                match reader.fill_buf() {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if avail.is_empty() {
                if self.buf.len() > MAX_LINE_BYTES + 1 {
                    // With no line end, room for a CR only.
                    lines.too_long(&self.buf[..1024], self.buf.len());
                } else if !self.buf.is_empty() {
                    // A partial last line may still be being written; in a
                    // bounded read it is the end of the file, so take it.
                    lines.accept(&self.buf);
                }
                self.buf.clear();
                done = true;
                break;
            }
            match memchr::memchr(b'\n', avail) {
                // Whole in the buffer, so within the bound (`READ_BUFFER`).
                Some(i) if self.buf.is_empty() => {
                    lines.accept(&avail[..=i]);
                    reader.consume(i + 1);
                }
                Some(i) => {
                    self.buf.extend_from_slice(&avail[..=i]);
                    reader.consume(i + 1);
                    if self.buf.len() > MAX_LINE_BYTES + 2 {
                        lines.too_long(&self.buf[..1024], self.buf.len());
                    } else {
                        lines.accept(&self.buf);
                    }
                    self.buf.clear();
                }
                None => {
                    let n = avail.len();
                    self.buf.extend_from_slice(avail);
                    reader.consume(n);
                    // Room for the line and a CRLF ending.
                    if self.buf.len() > MAX_LINE_BYTES + 2 {
                        // Past the bound: the rest of the line is skipped,
                        // not read.
                        let n = self.buf.len() + reader.skip_until(b'\n')?;
                        lines.too_long(&self.buf[..1024], n);
                        self.buf.clear();
                    }
                }
            }
        }
        // The loop ends only between lines (a line being gathered keeps it
        // reading), so `buf` is empty here and `offset` is a line's end.
        debug_assert!(self.buf.is_empty());
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

/// The reader's buffer. A line found whole in it is taken without a length
/// check, so it must not exceed the line bound.
const READ_BUFFER: usize = 1 << 16;
const _: () = assert!(READ_BUFFER <= MAX_LINE_BYTES);

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
    fn lines_cut_by_the_read_buffer_come_whole_and_a_resume_starts_at_the_next_line() {
        // Lines from 1 byte to four read buffers long, so ends fall anywhere
        // in the 64 KiB buffer and some lines span several fills; CRLF and
        // blank lines, a bad line, and a last line with no line end.
        let mut text = Vec::new();
        let mut want = Vec::new();
        let mut len = 1usize;
        for i in 0..300 {
            len = (len * 7 + 13) % (1 << 18);
            let value = format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(len));
            text.extend_from_slice(value.as_bytes());
            text.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
            want.push(value);
            if i % 50 == 0 {
                text.extend_from_slice(b"  \n{bad\n");
            }
        }
        let last = r#"{"i":"last"}"#;
        text.extend_from_slice(last.as_bytes());
        want.push(last.to_string());
        let (dir, mut s) = source(&text);
        let mut got = Vec::new();
        let mut bad = 0;
        // Half the lines, then a fresh source from the checkpointed position.
        let mut position = None;
        loop {
            let polled = s.poll(7).expect("poll");
            bad += polled.malformed.len();
            for e in polled.batch.iter().flat_map(|b| b.iter()) {
                got.push(String::from_utf8(e.value.expect("value").to_vec()).expect("utf8"));
            }
            if position.is_none() && got.len() >= 150 {
                position = Some(s.position());
                break;
            }
        }
        let position = position.expect("position");
        let config = FileSourceConfig {
            path: dir.path().join("in.jsonl"),
            key_field: None,
        };
        let mut s = FileSource::new(config, Arc::from("in"), Arc::new(Progress::default()));
        s.open(Some(&position)).expect("resume");
        loop {
            let polled = s.poll(7).expect("poll");
            bad += polled.malformed.len();
            for e in polled.batch.iter().flat_map(|b| b.iter()) {
                got.push(String::from_utf8(e.value.expect("value").to_vec()).expect("utf8"));
            }
            if polled.done {
                break;
            }
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "lines differ");
        assert_eq!(bad, 6, "one `{{bad` line per 50");
        assert_eq!(s.position()["offset"], text.len() as u64);
        assert_eq!(s.position()["line"], 300 + 12 + 1);
    }

    #[test]
    fn a_line_longer_than_the_bound_by_more_than_a_read_is_skipped_and_an_unterminated_one_is_judged_as_before(
    ) {
        // Past the bound by more than the read buffer: the bound is crossed
        // before the line end is in the buffer, and the rest is skipped.
        let mut text = vec![b'x'; MAX_LINE_BYTES + 3 * READ_BUFFER];
        text.extend_from_slice(b"\n{\"n\":1}\n");
        // The last line has no line end: MAX + 1 bytes pass (room for a CR),
        // MAX + 2 do not, as when lines were read with a bounded `read_until`.
        let mut last = vec![b' '; MAX_LINE_BYTES + 1 - 7];
        last.extend_from_slice(b"{\"n\":2}");
        for (tail, taken) in [(last.clone(), 2), ([last, b" ".to_vec()].concat(), 1)] {
            let text = [text.clone(), tail].concat();
            let (_dir, mut s) = source(&text);
            let polled = s.poll(10).expect("poll");
            let reasons: Vec<&str> = polled.malformed.iter().map(|m| m.reason.as_str()).collect();
            assert_eq!(reasons.len(), 3 - taken, "{reasons:?}");
            assert!(
                reasons[0].contains("line 1 of")
                    && reasons[0].contains(&format!(
                        "is {} bytes",
                        MAX_LINE_BYTES + 3 * READ_BUFFER + 1
                    )),
                "{reasons:?}"
            );
            assert_eq!(polled.malformed[0].bytes.len(), 1024);
            assert_eq!(polled.batch.map_or(0, |b| b.len()), taken);
            assert!(polled.done);
            assert_eq!(s.position()["offset"], text.len() as u64);
            assert_eq!(s.position()["line"], 3);
        }
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
