//! In-memory connectors for exercising the pipeline without services: a
//! source fed from a shared list and a sink whose writes can be inspected,
//! both with switches that inject the faults the checkpoint protocol must
//! survive (a failing poll, a held flush, refused events). They are built in
//! code, not named in pipeline files.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{Polled, Rejected, Sink, SinkConfig, Source, SourceConfig, SourceContext};
use crate::event::{Batch, BatchBuilder};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the assertions.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct FeedState {
    values: Vec<Vec<u8>>,
    /// No more values will come: the source ends once it has read them all.
    closed: bool,
    /// The source counts as caught up once it has read this many values.
    caught_up_at: usize,
    /// The next poll that would read value number `fail_at` fails instead
    /// (once), as a crashing source would.
    fail_at: Option<usize>,
    /// The source's `open` fails, as one whose service refuses it would.
    fail_open: bool,
    /// Positions the pipeline acknowledged as durable, in order.
    committed: Vec<u64>,
    /// Positions the source was opened at, one per run.
    opened_at: Vec<Option<u64>>,
    /// The furthest position read.
    read: usize,
    /// What the source's checkpoint fingerprint is made of (tests change it
    /// to stand for a reconfigured source).
    label: String,
}

/// The shared list a [`MemorySource`] reads: tests append to it and read
/// back what the pipeline acknowledged.
#[derive(Debug, Clone, Default)]
pub struct MemoryFeed {
    state: Arc<Mutex<FeedState>>,
}

impl MemoryFeed {
    /// A closed feed of JSON values: the source ends after the last one.
    pub fn of(values: impl IntoIterator<Item = Value>) -> Self {
        let feed = Self::default();
        feed.push(values);
        feed.close();
        feed
    }

    /// Appends values.
    pub fn push(&self, values: impl IntoIterator<Item = Value>) {
        let mut s = lock(&self.state);
        s.values
            .extend(values.into_iter().map(|v| v.to_string().into_bytes()));
    }

    /// Appends raw bytes (which need not be valid JSON).
    pub fn push_raw(&self, bytes: &[u8]) {
        lock(&self.state).values.push(bytes.to_vec());
    }

    /// No more values will come.
    pub fn close(&self) {
        lock(&self.state).closed = true;
    }

    /// The source counts as caught up only after reading `n` values.
    pub fn caught_up_after(&self, n: usize) {
        lock(&self.state).caught_up_at = n;
    }

    /// Opening the source fails.
    pub fn fail_open(&self) {
        lock(&self.state).fail_open = true;
    }

    /// The poll that would read value number `n` fails, once.
    pub fn fail_at(&self, n: usize) {
        lock(&self.state).fail_at = Some(n);
    }

    /// Names the feed in checkpoint fingerprints: a new label is a changed
    /// source.
    pub fn set_label(&self, label: &str) {
        lock(&self.state).label = label.to_string();
    }

    /// The feed's label (see [`MemoryFeed::set_label`]).
    pub fn label(&self) -> String {
        lock(&self.state).label.clone()
    }

    /// Positions acknowledged as durable so far.
    pub fn committed(&self) -> Vec<u64> {
        lock(&self.state).committed.clone()
    }

    /// How many values the source has read (the furthest position).
    pub fn read(&self) -> usize {
        lock(&self.state).read
    }

    /// The position each run opened the source at (`None`: afresh).
    pub fn opened_at(&self) -> Vec<Option<u64>> {
        lock(&self.state).opened_at.clone()
    }
}

/// Configuration of a [`MemorySource`]: the feed it reads.
#[derive(Debug, Clone, Default)]
pub struct MemorySourceConfig {
    /// The values to read.
    pub feed: MemoryFeed,
}

impl SourceConfig for MemorySourceConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    // The feed's contents change from run to run; the feed is the identity.
    fn fingerprint_text(&self) -> String {
        format!("memory source {}", self.feed.label())
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(MemorySource {
            feed: self.feed.clone(),
            origin: Arc::from(cx.name),
            next: 0,
        }))
    }
}

/// A source reading a [`MemoryFeed`]; its position is the number of values
/// read.
pub struct MemorySource {
    feed: MemoryFeed,
    origin: Arc<str>,
    next: usize,
}

impl Source for MemorySource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let at = position.and_then(Value::as_u64);
        let mut s = lock(&self.feed.state);
        if s.fail_open {
            bail!("injected failure to open");
        }
        s.opened_at.push(at);
        self.next = at.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let mut s = lock(&self.feed.state);
        let end = s.values.len().min(self.next.saturating_add(max));
        if let Some(at) = s.fail_at {
            if (self.next..end.max(self.next + 1)).contains(&at) {
                s.fail_at = None;
                bail!("injected failure before value {at}");
            }
        }
        let done = s.closed && self.next >= s.values.len();
        if self.next >= end {
            drop(s);
            if !done {
                // Idle: don't spin the source thread.
                std::thread::sleep(Duration::from_millis(1));
            }
            return Ok(Polled {
                done,
                ..Polled::default()
            });
        }
        let mut b = BatchBuilder::new(&self.origin, self.origin.clone(), end - self.next);
        let mut malformed = Vec::new();
        for i in self.next..end {
            let bytes = &s.values[i];
            match crate::event::check_json(bytes) {
                Ok(()) => b.push(None, Some(bytes), &[], 0, i as u64),
                Err(e) => malformed.push(super::Malformed {
                    bytes: bytes.clone(),
                    reason: format!("value {i} is not JSON: {e}"),
                    position: i as u64,
                }),
            }
        }
        self.next = end;
        s.read = s.read.max(end);
        let batch = b.finish();
        Ok(Polled {
            batch: (!batch.is_empty()).then_some(batch),
            malformed,
            done: false,
        })
    }

    fn position(&self) -> Value {
        json!(self.next)
    }

    fn committed(&mut self, position: &Value) -> Result<()> {
        if let Some(n) = position.as_u64() {
            lock(&self.feed.state).committed.push(n);
        }
        Ok(())
    }

    fn caught_up(&self) -> bool {
        self.next >= lock(&self.feed.state).caught_up_at
    }
}

#[derive(Debug, Default)]
struct StoreState {
    /// Values written, durable or not.
    written: Vec<Vec<u8>>,
    /// How many of `written` a flush made durable.
    durable: usize,
    /// Values containing this text are refused by the "target".
    refuse_containing: Option<String>,
    flushes: u64,
    /// The durable count after each flush, in order.
    flushed: Vec<usize>,
    /// Whether the next write fails (to inject a write error).
    fail_next_write: bool,
    /// How long each write and each flush takes (a slow target).
    write_delay: Duration,
    flush_delay: Duration,
}

/// What a [`MemorySink`] wrote: tests read it back.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<StoreState>>,
    hold_flush: Arc<AtomicBool>,
}

impl MemoryStore {
    /// Every value written (durable or not), as JSON.
    pub fn values(&self) -> Vec<Value> {
        lock(&self.state)
            .written
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }

    /// The values made durable by a flush.
    pub fn durable(&self) -> Vec<Value> {
        let s = lock(&self.state);
        s.written[..s.durable]
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }

    /// Flushes so far.
    pub fn flushes(&self) -> u64 {
        lock(&self.state).flushes
    }

    /// How many values were durable after each flush so far.
    pub fn flushed(&self) -> Vec<usize> {
        lock(&self.state).flushed.clone()
    }

    /// Every write takes `write` and every flush `flush`, as a slow target's
    /// would.
    pub fn slow(&self, write: Duration, flush: Duration) {
        let mut s = lock(&self.state);
        s.write_delay = write;
        s.flush_delay = flush;
    }

    /// The target refuses values whose JSON text contains `text`.
    pub fn refuse_containing(&self, text: &str) {
        lock(&self.state).refuse_containing = Some(text.to_string());
    }

    /// The next write fails as a lost connection would, after retries.
    pub fn fail_next_write(&self) {
        lock(&self.state).fail_next_write = true;
    }

    /// While held, a flush waits (as a slow target would), so no checkpoint
    /// can complete.
    pub fn hold_flushes(&self, hold: bool) {
        self.hold_flush.store(hold, Ordering::SeqCst);
    }
}

/// Configuration of a [`MemorySink`]: the store it writes to.
#[derive(Debug, Clone, Default)]
pub struct MemorySinkConfig {
    /// Where writes go.
    pub store: MemoryStore,
}

impl SinkConfig for MemorySinkConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn fingerprint_text(&self) -> String {
        "memory sink".into()
    }

    fn build(&self, _name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(MemorySink {
            store: self.store.clone(),
        }))
    }

    fn resolve_paths(&mut self, _base: &Path) {}
}

/// A sink appending values to a [`MemoryStore`]; its position is the number
/// of durable values, and reopening drops what was written after it (like
/// the file sink's truncation), so a rerun never duplicates.
pub struct MemorySink {
    store: MemoryStore,
}

impl Sink for MemorySink {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let mut s = lock(&self.store.state);
        let keep = position
            .and_then(Value::as_u64)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(s.written.len());
        s.written.truncate(keep);
        s.durable = keep;
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        let delay = lock(&self.store.state).write_delay;
        std::thread::sleep(delay);
        let mut s = lock(&self.store.state);
        if std::mem::take(&mut s.fail_next_write) {
            bail!("injected write failure");
        }
        for (i, e) in batch.iter().enumerate() {
            let Some(value) = e.value else { continue };
            let refused = s
                .refuse_containing
                .as_deref()
                .is_some_and(|t| String::from_utf8_lossy(value).contains(t));
            if refused {
                rejected.push(batch, i, "refused by the in-memory target");
            } else {
                s.written.push(value.to_vec());
            }
        }
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        while self.store.hold_flush.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let delay = lock(&self.store.state).flush_delay;
        std::thread::sleep(delay);
        let mut s = lock(&self.store.state);
        s.durable = s.written.len();
        s.flushes += 1;
        let durable = s.durable;
        s.flushed.push(durable);
        Ok(json!(s.durable))
    }
}
