//! The checkpoint coordinator: requests barriers on a timer, one at a time
//! and paced by how long the last one took (see [`Pacing`]), collects the
//! positions sources report at each barrier and the positions sinks report
//! once they have flushed it, and commits a checkpoint only when every
//! source and every sink has reported for it. Then, and only then, sources
//! may acknowledge upstream.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::Value;

use super::Metrics;
use crate::state::{Checkpoint, CheckpointStore, Table};

/// What components tell the coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    SourceAt {
        source: String,
        id: u64,
        position: Value,
    },
    SourceDone {
        source: String,
        position: Value,
    },
    /// The source has delivered its snapshot; barriers from `id` on follow it.
    CaughtUp {
        source: String,
        id: u64,
    },
    SinkFlushed {
        sink: String,
        id: u64,
        position: Value,
    },
    SinkDone {
        sink: String,
        position: Value,
    },
    /// A processor saved its state for barrier `id` in `file` under
    /// `stages/<stage>/`.
    StageSaved {
        stage: String,
        id: u64,
        file: String,
    },
    /// A processor keeps its state per partition in changelog `topic`: its
    /// publish for barrier `id` is begun, to commit with the checkpoint.
    StageInChangelog {
        stage: String,
        id: u64,
        topic: String,
    },
    /// A processor drained its inputs: event time is over, every window
    /// closed and every timer fired, so a run resuming from the final
    /// checkpoint starts it empty, by design.
    StageEnded {
        stage: String,
    },
    Swapped {
        stage: String,
        plugin: String,
    },
    Failed {
        component: String,
        error: String,
    },
}

/// After a checkpoint that took T from request to commit, the next barrier
/// waits at least this many times T: checkpointing (saving state, flushing
/// sinks, the barrier's trip through queued batches) takes at most a quarter
/// of the run however large the state grows.
const PAUSE_FACTOR: u32 = 3;

/// When to request the next barrier. One barrier is in flight at a time:
/// a barrier requested while the previous one is still being written would
/// queue right behind it and rewrite all state again for a handful of
/// events, starving processing.
struct Pacing {
    interval: Duration,
    /// When the barrier in flight was requested.
    requested_at: Option<Instant>,
    last_request: Instant,
    not_before: Instant,
}

impl Pacing {
    fn new(interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            interval,
            requested_at: None,
            last_request: now,
            not_before: now,
        }
    }

    fn due(&self, now: Instant) -> bool {
        now >= self.last_request + self.interval && now >= self.not_before
    }

    fn requested(&mut self, now: Instant) {
        self.requested_at = Some(now);
        self.last_request = now;
    }

    /// Nothing is in flight any more (called repeatedly; counts once).
    fn committed(&mut self, now: Instant) {
        if let Some(at) = self.requested_at.take() {
            self.not_before = now + (now - at) * PAUSE_FACTOR;
        }
    }

    /// How long to wait for reports before checking again.
    fn wait(&self, now: Instant) -> Duration {
        (self.last_request + self.interval)
            .max(self.not_before)
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), Duration::from_millis(50))
    }
}

#[derive(Default)]
pub(crate) struct Partial {
    sources: BTreeMap<String, Value>,
    sinks: BTreeMap<String, Value>,
    stages: BTreeMap<String, Value>,
}

pub(crate) struct Coordinator {
    pub store: CheckpointStore,
    pub sources: Vec<String>,
    pub sinks: Vec<String>,
    pub pending: BTreeMap<u64, Partial>,
    pub done_sources: BTreeMap<String, Value>,
    pub done_sinks: BTreeMap<String, Value>,
    /// Processor stages: a checkpoint records the state file of each.
    pub processors: Vec<String>,
    pub done_stages: BTreeMap<String, Value>,
    pub last_id: u64,
    pub metrics: Arc<Metrics>,
    pub commit_txs: HashMap<String, Sender<Value>>,
    /// Tables, and the sources upstream of each.
    pub tables: HashMap<String, (Table, Vec<String>)>,
    pub caught_up: HashMap<String, u64>,
    /// Recorded in every checkpoint (see `fingerprint.rs`).
    pub fingerprint: Option<Value>,
    /// Positions of components not in this run (a dead-letter replay runs
    /// part of a pipeline), copied into every checkpoint under this run's.
    pub carried: Checkpoint,
    /// Changelog publishes of processors' state, committed with each
    /// checkpoint before sources commit upstream (see `changelog.rs`).
    pub changelog: Vec<Arc<super::changelog::Writers>>,
}

impl Coordinator {
    pub fn run(
        mut self,
        reports: &Receiver<Report>,
        requested: Arc<AtomicU64>,
        interval: Duration,
        stop: &AtomicBool,
        mut tick: impl FnMut(&Metrics),
    ) -> Result<()> {
        let mut pacing = Pacing::new(interval);
        loop {
            let now = Instant::now();
            // Everything requested so far (including the barriers sources
            // add behind their snapshots) has committed.
            let idle = requested.load(Ordering::SeqCst) <= self.last_id;
            if idle {
                pacing.committed(now);
            }
            if idle && pacing.due(now) && !stop.load(Ordering::SeqCst) {
                requested.fetch_add(1, Ordering::SeqCst);
                pacing.requested(now);
            }
            tick(&self.metrics);
            // Wake for the next checkpoint on time, not up to a tick late.
            let wait = if stop.load(Ordering::SeqCst) || !idle {
                Duration::from_millis(50)
            } else {
                pacing.wait(Instant::now())
            };
            match reports.recv_timeout(wait) {
                Ok(report) => {
                    if self.handle(report)? {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!(
                        "pipeline threads ended without finishing; see errors above"
                    ));
                }
            }
        }
    }

    /// Returns true when the pipeline is finished.
    fn handle(&mut self, report: Report) -> Result<bool> {
        match report {
            Report::Failed { component, error } => {
                return Err(anyhow!("`{component}` failed: {error}"));
            }
            Report::Swapped { stage, plugin } => {
                tracing::debug!(stage, plugin, "swap acknowledged");
            }
            Report::SourceAt {
                source,
                id,
                position,
            } => {
                self.pending
                    .entry(id)
                    .or_default()
                    .sources
                    .insert(source, position);
            }
            Report::SourceDone { source, position } => {
                self.done_sources.insert(source, position);
            }
            Report::CaughtUp { source, id } => {
                self.caught_up.insert(source, id);
            }
            Report::SinkFlushed { sink, id, position } => {
                self.table_flushed(&sink, Some(id));
                self.pending
                    .entry(id)
                    .or_default()
                    .sinks
                    .insert(sink, position);
            }
            Report::SinkDone { sink, position } => {
                self.table_flushed(&sink, None);
                self.done_sinks.insert(sink, position);
            }
            Report::StageSaved { stage, id, file } => {
                self.pending
                    .entry(id)
                    .or_default()
                    .stages
                    .insert(stage, serde_json::json!({ "file": file }));
            }
            Report::StageInChangelog { stage, id, topic } => {
                self.pending
                    .entry(id)
                    .or_default()
                    .stages
                    .insert(stage, serde_json::json!({ "changelog": topic }));
            }
            Report::StageEnded { stage } => {
                self.done_stages
                    .insert(stage, serde_json::json!({ "ended": true }));
            }
        }
        self.try_commit()?;
        let stages_done = self
            .processors
            .iter()
            .all(|s| self.done_stages.contains_key(s));
        if self.done_sinks.len() == self.sinks.len() && stages_done {
            // Everything drained: the final checkpoint covers it all. Its id
            // follows every barrier sent, so it never shares an id (and the
            // state files of that id) with a barrier that did not commit.
            let newest = self.pending.keys().next_back().copied().unwrap_or(0);
            let mut checkpoint = self.base(self.last_id.max(newest) + 1);
            checkpoint.sources.extend(self.done_sources.clone());
            checkpoint.sinks.extend(self.done_sinks.clone());
            if let Some(stages) = checkpoint.stages.as_mut() {
                stages.extend(self.done_stages.clone());
            }
            self.store.save(&checkpoint)?;
            for c in &self.changelog {
                c.commit_upto(u64::MAX)?;
            }
            self.metrics.checkpoint_committed();
            self.acknowledge(&checkpoint);
            return Ok(true);
        }
        Ok(false)
    }

    /// Checkpoint `id` holding only the carried positions, to fill in.
    fn base(&self, id: u64) -> Checkpoint {
        Checkpoint {
            id,
            sources: self.carried.sources.clone(),
            sinks: self.carried.sinks.clone(),
            stages: Some(self.carried.stages.clone().unwrap_or_default()),
            pipeline: self.fingerprint.clone(),
        }
    }

    /// A table that has flushed a barrier behind every upstream source's
    /// snapshot (or has ended) is loaded: stages reading it may start.
    fn table_flushed(&self, sink: &str, id: Option<u64>) {
        let Some((table, sources)) = self.tables.get(sink) else {
            return;
        };
        if table.is_ready() {
            return;
        }
        let loaded = match id {
            None => true,
            Some(id) => sources
                .iter()
                .all(|s| self.caught_up.get(s).is_some_and(|at| *at <= id)),
        };
        if loaded {
            tracing::info!(table = sink, "table loaded");
            table.set_ready();
        }
    }

    /// Tells each source its position in a checkpoint that is now durable.
    fn acknowledge(&self, checkpoint: &Checkpoint) {
        for (source, position) in &checkpoint.sources {
            if let Some(tx) = self.commit_txs.get(source) {
                let _ = tx.send(position.clone());
            }
        }
    }

    fn try_commit(&mut self) -> Result<()> {
        let mut complete = None;
        for (id, partial) in &self.pending {
            let sources_ok = self
                .sources
                .iter()
                .all(|s| partial.sources.contains_key(s) || self.done_sources.contains_key(s));
            let sinks_ok = self
                .sinks
                .iter()
                .all(|s| partial.sinks.contains_key(s) || self.done_sinks.contains_key(s));
            let stages_ok = self
                .processors
                .iter()
                .all(|s| partial.stages.contains_key(s) || self.done_stages.contains_key(s));
            if sources_ok && sinks_ok && stages_ok {
                complete = Some(*id);
            }
        }
        let Some(id) = complete else { return Ok(()) };
        let Some(partial) = self.pending.remove(&id) else {
            return Ok(());
        };
        let mut checkpoint = self.base(id);
        for s in &self.processors {
            if let Some(record) = partial.stages.get(s).or_else(|| self.done_stages.get(s)) {
                if let Some(stages) = checkpoint.stages.as_mut() {
                    stages.insert(s.clone(), record.clone());
                }
            }
        }
        for s in &self.sources {
            if let Some(p) = partial.sources.get(s).or_else(|| self.done_sources.get(s)) {
                checkpoint.sources.insert(s.clone(), p.clone());
            }
        }
        for s in &self.sinks {
            if let Some(p) = partial.sinks.get(s).or_else(|| self.done_sinks.get(s)) {
                checkpoint.sinks.insert(s.clone(), p.clone());
            }
        }
        self.store.save(&checkpoint)?;
        // Before the sources commit: a changelog's marker is never behind
        // the group's offsets.
        for c in &self.changelog {
            c.commit_upto(id)?;
        }
        self.acknowledge(&checkpoint);
        self.last_id = id;
        self.metrics.checkpoint_committed();
        tracing::debug!(checkpoint = id, "checkpoint committed");
        self.pending.retain(|k, _| *k > id);
        Ok(())
    }
}
