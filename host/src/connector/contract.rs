//! The small synchronous contract every source and sink implements, with the
//! checkpoint rules in the trait docs.

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use crate::event::Batch;

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
    /// Exactly-once delivery: a sink downstream will commit this source's
    /// progress inside its own transactions (Kafka's
    /// `send_offsets_to_transaction`). Returns true if the source can hand
    /// its progress off; it then acknowledges nothing upstream in
    /// [`Source::committed`], and [`Source::handoff`] is asked at every
    /// barrier and at the end. Called once, before `open`. Default: cannot.
    fn hand_off_progress(&mut self) -> bool {
        false
    }
    /// The progress the sink commits for the position just reported (called
    /// right after [`Source::position`] at each barrier, and at the end).
    fn handoff(&mut self) -> Option<Handoff> {
        None
    }
    /// Called instead of [`Source::poll`], every few milliseconds, while
    /// the pipeline is paused (`sluice serve`'s pause): a source that
    /// measures its lag keeps doing it here, so a paused pipeline shows its
    /// backlog grow. It must not read events.
    fn paused(&mut self) {}
}

/// A source's progress at a barrier, handed to the exactly-once sink that
/// commits it. The pipeline only carries it; the two connectors agree on
/// the concrete type (for Kafka, [`crate::clients::kafka::GroupProgress`]).
pub type Handoff = Arc<dyn Any + Send + Sync>;

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

    /// How many events were refused.
    pub fn len(&self) -> usize {
        self.items.len()
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
    /// Exactly-once delivery: returns true if this sink commits its upstream
    /// sources' progress inside its own transactions, together with what it
    /// wrote. Called once, before `open`, with the pipeline's name (stable
    /// across restarts, so it can name its transactions and fence an older
    /// instance of itself). Default: no.
    fn exactly_once(&mut self, _pipeline: &str) -> bool {
        false
    }
    /// For a sink that said yes to [`Sink::exactly_once`]: before each
    /// `flush`, what every upstream source handed off at that barrier (or at
    /// its end). The flush commits it with the events written since the last.
    fn source_progress(&mut self, _progress: Vec<Handoff>) -> Result<()> {
        Ok(())
    }
    /// `run --watch`: how to replace this sink's code while it runs, for a
    /// sink loaded from a file (a custom `wasm` sink). Called once, before
    /// `open`. Default: not replaceable.
    fn hot_reload(&mut self) -> Option<HotReload> {
        None
    }
    /// The plugin (the host's label) and version a custom sink runs now,
    /// named on its dead letters as a stage's are. Native sinks: none.
    fn plugin_identity(&self) -> Option<(String, String)> {
        None
    }
}

/// A sink whose code lives in a file that `run --watch` may replace.
pub struct HotReload {
    /// The file to watch.
    pub path: std::path::PathBuf,
    /// Loads the file as it is now (compile and checks) and hands the build
    /// to the running sink, which swaps it in at a checkpoint boundary.
    /// Runs on the watcher's thread, so a slow compile never stalls the
    /// sink. `Err`: the build is refused and the old one keeps running.
    pub load: Box<dyn Fn() -> Result<()> + Send>,
}

/// How far a source is: for bounded sources, done out of total (bytes or
/// records); for unbounded ones, how far behind the upstream's end it reads
/// (its lag). Sources update it; front ends (the terminal, the `stats` log
/// line, `sluice serve`'s status and `/metrics`) read it.
#[derive(Debug)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    /// `u64::MAX`: not known (yet).
    lag: AtomicU64,
    lag_unit: AtomicU8,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            lag: AtomicU64::new(u64::MAX),
            lag_unit: AtomicU8::new(0),
        }
    }
}

/// What a source's lag counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagUnit {
    /// Messages (Kafka: each partition's high watermark less the next
    /// offset to read, summed).
    Messages,
    /// Bytes of write-ahead log (PostgreSQL: the server's WAL end less the
    /// position of the change last received).
    WalBytes,
    /// Rows not yet read (`postgres-poll`: the rows its next queries would
    /// return, counted while it has a backlog).
    Rows,
    /// Milliseconds behind the upstream's clock (`mongodb`: now less the
    /// time of the change last read, 0 once the change stream is drained).
    Millis,
}

impl LagUnit {
    /// `messages`, `wal_bytes`: the word in `stats` keys and metric labels.
    pub fn word(self) -> &'static str {
        match self {
            LagUnit::Messages => "messages",
            LagUnit::WalBytes => "wal_bytes",
            LagUnit::Rows => "rows",
            LagUnit::Millis => "ms",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            LagUnit::Messages => 0,
            LagUnit::WalBytes => 1,
            LagUnit::Rows => 2,
            LagUnit::Millis => 3,
        }
    }

    fn from_u8(n: u8) -> Self {
        match n {
            1 => LagUnit::WalBytes,
            2 => LagUnit::Rows,
            3 => LagUnit::Millis,
            _ => LagUnit::Messages,
        }
    }
}

impl Progress {
    /// Sets the total (0 = unknown).
    pub fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }
    /// Sets how much is done.
    pub fn set_done(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }
    /// (done, total).
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
    /// Sets how far behind the upstream's end the source reads.
    pub fn set_lag(&self, n: u64, unit: LagUnit) {
        self.lag_unit.store(unit.to_u8(), Ordering::Relaxed);
        self.lag.store(n.min(u64::MAX - 1), Ordering::Relaxed);
    }
    /// The lag, once the source has measured one.
    pub fn lag(&self) -> Option<(u64, LagUnit)> {
        let n = self.lag.load(Ordering::Relaxed);
        (n != u64::MAX).then(|| (n, LagUnit::from_u8(self.lag_unit.load(Ordering::Relaxed))))
    }
}
