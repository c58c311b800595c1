//! One plugin stage: receives batches, calls the plugin once per batch,
//! routes refused events per the stage's error policy, forwards barriers.
//!
//! When a call crashes or breaks a limit, its events are retried one at a
//! time on fresh instances under a per-batch budget (see `isolate.rs`): the
//! culprits alone are dead-lettered with the reason, and their neighbours go
//! through.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use super::coordinator::Report;
use super::dead_letter::{Culprit, DeadLetters};
use super::isolate::{self, Budget, Call, Sink};
use super::metrics::Counts;
use super::{Aligner, Envelope, Message, Metrics, Outputs, Step};
use crate::config::{EventTime, OnError};
use crate::event::{Batch, BatchBuilder};
use crate::plugin::bindings::processor::FiredTimer;
use crate::plugin::{
    bindings, CallCap, CallFailure, ProcessorInstance, StagePlugin, TransformInstance,
};

/// What runs a stage's logic: a sandboxed plugin instance in production, or
/// the same logic compiled natively (the benchmark's reference).
pub trait StageLogic: Send {
    /// Plugin name and version, as dead letters and errors name them.
    fn identity(&self) -> (String, String);
    /// Processes one batch.
    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure>;
    /// Processes one batch, with the values' field tables for a plugin that
    /// reads them (built on first use and kept on the batch for the stages
    /// after).
    fn process_batch(&mut self, batch: &Batch) -> Result<bindings::Output, CallFailure> {
        self.process(&batch.events)
    }
    /// Whether its plugin reads field tables (so sources upstream build them).
    fn reads_field_tables(&self) -> bool {
        false
    }
    /// Instances created so far (grows when failures replace one).
    fn instantiations(&self) -> u64;
    /// Replaces the plugin with another build of the same kind (hot reload).
    fn swap(&mut self, plugin: StagePlugin) -> Result<(), String>;
    /// The processor behind this stage, if it is one (state, timers).
    fn as_processor(&mut self) -> Option<&mut ProcessorInstance> {
        None
    }
    /// The budget for isolating the culprits of one failed batch, in ms
    /// (`None`: unlimited).
    fn batch_ms(&self) -> Option<u64> {
        None
    }
    /// Caps the CPU time of the following calls (`None` lifts the cap).
    fn cap_calls(&mut self, _cap: Option<CallCap>) {}
    /// Bytes of the live instance's memories and tables, when it has one.
    fn memory_bytes(&self) -> Option<u64> {
        None
    }
    /// The waits between retries of a batch whose plugin asked to retry.
    fn retry_backoff(&self) -> crate::connector::Backoff {
        crate::connector::Backoff::from_millis(100, 6_400)
    }
}

impl StageLogic for ProcessorInstance {
    fn identity(&self) -> (String, String) {
        // The host's name for it (file and hash) leads: `info` is what the
        // plugin claims and can be faked.
        (self.plugin().label(), self.plugin().info.version.clone())
    }

    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure> {
        ProcessorInstance::process(self, batch)
    }

    fn process_batch(&mut self, batch: &Batch) -> Result<bindings::Output, CallFailure> {
        let tables = ProcessorInstance::reads_field_tables(self).then(|| batch.field_tables());
        ProcessorInstance::process_with(self, &batch.events, tables)
    }

    fn reads_field_tables(&self) -> bool {
        ProcessorInstance::reads_field_tables(self)
    }

    fn instantiations(&self) -> u64 {
        self.instantiations
    }

    fn swap(&mut self, plugin: StagePlugin) -> Result<(), String> {
        match plugin {
            StagePlugin::Processor(p) => {
                ProcessorInstance::swap(self, Arc::new(p)).map_err(|e| e.to_string())
            }
            StagePlugin::Transform(_) => Err(
                "the new build is a transform and this stage runs a processor; restart the pipeline to change the kind".into(),
            ),
        }
    }

    fn as_processor(&mut self) -> Option<&mut ProcessorInstance> {
        Some(self)
    }

    fn batch_ms(&self) -> Option<u64> {
        self.limits().batch_ms()
    }

    fn cap_calls(&mut self, cap: Option<CallCap>) {
        ProcessorInstance::cap_calls(self, cap)
    }

    fn memory_bytes(&self) -> Option<u64> {
        ProcessorInstance::memory_bytes(self)
    }
}

impl StageLogic for TransformInstance {
    fn identity(&self) -> (String, String) {
        // The host's name for it (file and hash) leads: `info` is what the
        // plugin claims and can be faked.
        (self.plugin().label(), self.plugin().info.version.clone())
    }

    fn process(&mut self, batch: &bindings::Batch) -> Result<bindings::Output, CallFailure> {
        TransformInstance::process(self, batch)
    }

    fn process_batch(&mut self, batch: &Batch) -> Result<bindings::Output, CallFailure> {
        let tables = TransformInstance::reads_field_tables(self).then(|| batch.field_tables());
        TransformInstance::process_with(self, &batch.events, tables)
    }

    fn reads_field_tables(&self) -> bool {
        TransformInstance::reads_field_tables(self)
    }

    fn instantiations(&self) -> u64 {
        self.instantiations
    }

    fn swap(&mut self, plugin: StagePlugin) -> Result<(), String> {
        match plugin {
            StagePlugin::Transform(p) => {
                TransformInstance::swap(self, Arc::new(p)).map_err(|e| e.to_string())
            }
            StagePlugin::Processor(_) => Err(
                "the new build is a processor and this stage runs a transform; restart the pipeline to change the kind".into(),
            ),
        }
    }

    fn batch_ms(&self) -> Option<u64> {
        self.limits().batch_ms()
    }

    fn cap_calls(&mut self, cap: Option<CallCap>) {
        TransformInstance::cap_calls(self, cap)
    }

    fn memory_bytes(&self) -> Option<u64> {
        TransformInstance::memory_bytes(self)
    }
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct StageOutcome {
    /// Output batches (more than one after a split).
    pub outputs: Vec<Batch>,
    /// Dead letters, if any.
    pub dead: Option<Batch>,
    /// Events skipped under `on_error: skip`.
    pub skipped: u64,
    /// Input events that produced no output and were not refused (a
    /// filter's drops).
    pub filtered: u64,
    /// Instances replaced after failures.
    pub restarts: u64,
}

/// Runs one batch through `instance` with culprit isolation and the error
/// policy. Shared by `sluice run` and `sluice plugin test`.
pub fn process_batch(
    instance: &mut dyn StageLogic,
    stage: &str,
    policy: OnError,
    batch: &Batch,
) -> Result<StageOutcome> {
    let mut budget = Budget::new(instance.batch_ms());
    let mut call = |i: &mut dyn StageLogic, b: &Batch| i.process_batch(b);
    run_call(instance, stage, policy, batch, &mut call, &mut budget)
}

/// Runs `batch` through `call` (process or on-timers) under `budget`.
fn run_call(
    instance: &mut dyn StageLogic,
    stage: &str,
    policy: OnError,
    batch: &Batch,
    call: &mut Call<'_>,
    budget: &mut Budget,
) -> Result<StageOutcome> {
    let (plugin, version) = instance.identity();
    let culprit = Culprit {
        stage: stage.to_string(),
        plugin,
        version,
    };
    let mut dead = DeadLetters::new(stage, batch.origin.clone());
    let mut outcome = StageOutcome::default();
    let before = instance.instantiations();
    isolate::run(
        instance,
        call,
        batch,
        budget,
        &mut Sink {
            stage,
            policy,
            culprit: &culprit,
            dead: &mut dead,
            outcome: &mut outcome,
            culprits: 0,
        },
    )?;
    outcome.restarts = instance.instantiations() - before;
    outcome.dead = dead.finish();
    Ok(outcome)
}

/// A stage thread's wiring.
pub(crate) struct StageTask {
    pub name: String,
    pub instance: Box<dyn StageLogic>,
    pub policy: OnError,
    pub inputs: usize,
    pub rx: Receiver<Envelope>,
    pub outputs: Outputs,
    pub dead: Outputs,
    pub reload: Receiver<StagePlugin>,
    pub reports: Sender<Report>,
    pub metrics: Arc<Metrics>,
    /// The run's tap: every batch sent on is offered to it.
    pub tap: Arc<super::tap::TapHub>,
    /// This stage's own counts.
    pub counts: Arc<Counts>,
    /// Processors: where event time comes from and how late it may be.
    pub event_time: Option<EventTime>,
    /// Processors: where state is saved at barriers.
    pub state_dir: std::path::PathBuf,
    /// Tables the stage reads: it starts once they are loaded.
    pub tables: Vec<(String, crate::state::Table)>,
    /// Processors fed by a `kafka` source with `state: changelog`: state
    /// per source partition, kept in a changelog topic.
    pub partitioned: Option<super::partitioned::Partitioned>,
    /// Events dropped since the last publish (see [`super::partitioned`]).
    pub dropped: u64,
}

/// Timers delivered per `on-timers` call.
const TIMERS_PER_CALL: usize = 1024;
/// `on-timers` calls per watermark advance beyond those needed to fire
/// every pending timer in full calls.
const EXTRA_TIMER_CALLS: usize = 1024;
/// Stage state files kept behind the newest (checkpoints commit in order,
/// and the last committed one may lag a few barriers).
const KEEP_STATE_FILES: u64 = 8;

impl StageTask {
    /// Processors: gives each event its event time, dead-letters events that
    /// have none or arrive behind the watermark, and returns what is left
    /// with the newest event time in it.
    fn event_time_pass(&mut self, batch: &Arc<Batch>) -> (Arc<Batch>, Option<i64>) {
        let field = self.event_time.as_ref().and_then(|e| e.field.clone());
        let Some(p) = self.instance.as_processor() else {
            return (batch.clone(), None);
        };
        // A stage whose plugin keeps no time (no timer, no expiring entry)
        // has nothing an old event could change: none is late for it.
        let watermark = p
            .state()
            .lock()
            .map(|s| {
                if s.keeps_time() {
                    s.watermark()
                } else {
                    i64::MIN
                }
            })
            .unwrap_or(i64::MIN);
        if field.is_none() {
            // Event time is the event's own timestamp: when nothing is late,
            // the batch goes on as it is, without a copy.
            let times = batch.events.events.iter().map(|e| e.timestamp_ms);
            if times.clone().all(|ts| ts >= watermark) {
                return (batch.clone(), times.max());
            }
        }
        let (plugin, version) = p.identity();
        let culprit = Culprit {
            stage: self.name.clone(),
            plugin,
            version,
        };
        let mut dead = DeadLetters::new(&self.name, batch.origin.clone());
        let mut kept = BatchBuilder::new(batch.stream(), batch.origin.clone(), batch.len());
        let mut newest = None;
        for e in batch.iter() {
            let ts = match &field {
                None => Ok(e.timestamp_ms),
                Some(f) => event_time_of(e.value, f),
            };
            match ts {
                Err(reason) => dead.add(&e, &batch.origin, &culprit, "event-time", &reason),
                Ok(ts) if ts < watermark => dead.add(
                    &e,
                    &batch.origin,
                    &culprit,
                    "late",
                    &format!(
                        "late event: event time {ts} ms is {} ms behind the watermark {watermark} ms (allowed lateness {} ms)",
                        watermark - ts,
                        self.event_time.as_ref().map_or(0, |e| e.lateness_ms)
                    ),
                ),
                Ok(ts) => {
                    let headers: Vec<(&str, &[u8])> = e.headers().collect();
                    kept.push(e.key, e.value, &headers, ts, e.position);
                    newest = Some(newest.map_or(ts, |n: i64| n.max(ts)));
                }
            }
        }
        self.send_dead(dead);
        (Arc::new(kept.finish()), newest)
    }

    /// Processors: moves the watermark and delivers the timers it passed.
    ///
    /// Bounded however the plugin behaves: at most `limits.timers` timers
    /// fire per advance in at most `timers / 1024 + 1024` calls (the rest
    /// wait for the next advance), timers registered while firing at or
    /// before the time being fired wait for the next advance, and failed
    /// timer calls share one isolation budget.
    fn advance(&mut self, to: i64) -> Result<()> {
        let name = self.name.clone();
        let policy = self.policy;
        let Some(p) = self.instance.as_processor() else {
            return Ok(());
        };
        let max_fired = usize::try_from(p.limits().timers).unwrap_or(usize::MAX);
        // Enough calls to fire every pending timer in full calls, plus room
        // for timers that re-arm a little later each time they fire.
        let max_calls = max_fired / TIMERS_PER_CALL + EXTRA_TIMER_CALLS;
        let mut calls = 0usize;
        let mut budget = Budget::new(p.limits().batch_ms());
        let state = p.state().clone();
        if let Ok(mut s) = state.lock() {
            s.advance(to);
        }
        let mut fired = 0usize;
        let result = loop {
            let want = TIMERS_PER_CALL.min(max_fired - fired);
            let due = match state.lock() {
                Ok(mut s) => s.due_timers(want),
                Err(_) => break Err(anyhow!("stage `{name}`: state lock poisoned")),
            };
            let Some(upto) = due.last().map(|(at, _)| *at) else {
                break Ok(());
            };
            fired += due.len();
            calls += 1;
            if let Ok(mut s) = state.lock() {
                s.firing(Some(upto));
            }
            // Timer outputs derive from the timers: a synthetic input whose
            // events are the timers gives them an origin and a position.
            let origin: Arc<str> = Arc::from(name.as_str());
            let mut input = BatchBuilder::new(&name, origin, due.len());
            for (at, key) in &due {
                input.push(Some(key), None, &[], *at, u64::try_from(*at).unwrap_or(0));
            }
            let input = input.finish();
            let mut call = |i: &mut dyn StageLogic, b: &Batch| {
                let fired: Vec<FiredTimer> = b
                    .iter()
                    .map(|e| FiredTimer {
                        key: e.key.unwrap_or_default().to_vec(),
                        at_ms: e.timestamp_ms,
                    })
                    .collect();
                match i.as_processor() {
                    Some(p) => p.on_timers(&fired),
                    None => Err(CallFailure::Fatal {
                        plugin: String::new(),
                        stage: String::new(),
                        message: "timers fired in a stage that is not a processor".into(),
                    }),
                }
            };
            let outcome = match run_call(
                self.instance.as_mut(),
                &name,
                policy,
                &input,
                &mut call,
                &mut budget,
            ) {
                Ok(o) => o,
                Err(e) => break Err(e.context(format!("stage `{name}`: on-timers"))),
            };
            // Timers are not input events: what they produce counts as
            // output, and a timer that produced nothing is not a drop.
            self.count(&outcome);
            self.emit(outcome);
            if fired >= max_fired || calls >= max_calls {
                let left = state.lock().map(|s| s.timer_count()).unwrap_or(0);
                if left > 0 {
                    tracing::warn!(stage = %name, fired, calls, left, "timer ceiling per watermark advance reached; the rest fire at the next advance");
                }
                break Ok(());
            }
        };
        if let Ok(mut s) = state.lock() {
            s.firing(None);
        }
        result
    }

    /// Processors: saves state for checkpoint `id` before the barrier goes
    /// on (what changed since the last save, on top of an occasional full
    /// copy), and tells the coordinator which file holds it.
    fn save_state(&mut self, id: u64) -> Result<()> {
        let name = self.name.clone();
        let Some(p) = self.instance.as_processor() else {
            return Ok(());
        };
        let mut s = p
            .state()
            .lock()
            .map_err(|_| anyhow!("stage `{name}`: state lock poisoned"))?;
        let started = std::time::Instant::now();
        let saved = s
            .save_checkpoint(&self.state_dir, &name, id, KEEP_STATE_FILES)
            .with_context(|| format!("stage `{name}`: saving state for checkpoint {id}"))?;
        let (entries, bytes) = s.size();
        tracing::debug!(stage = %name, checkpoint = id, entries, bytes, timers = s.timer_count(), file = %saved.file, written = saved.bytes, micros = started.elapsed().as_micros() as u64, "state saved");
        drop(s);
        let _ = self.reports.send(Report::StageSaved {
            stage: name,
            id,
            file: saved.file,
        });
        Ok(())
    }

    /// Runs a batch partition by partition, each against its own state
    /// (see [`super::partitioned`]).
    fn process_partitioned(&mut self, batch: &Arc<Batch>) -> Result<()> {
        let name = self.name.clone();
        let (groups, unroutable) = super::partitioned::Partitioned::split(batch);
        let Some(p) = self.instance.as_processor() else {
            anyhow::bail!("stage `{name}`: state: changelog applies to processors only");
        };
        let slot = p.state().clone();
        self.unroutable(batch, unroutable.iter().map(|(i, r)| (*i, r.as_str())));
        for ((partition, assignment), events) in groups {
            let entered = {
                let mut s = slot
                    .lock()
                    .map_err(|_| anyhow!("stage `{name}`: state lock poisoned"))?;
                match self.partitioned.as_mut() {
                    Some(parts) => parts.enter(&name, partition, assignment, &mut s)?,
                    None => return Ok(()),
                }
            };
            let floor = match entered {
                super::partitioned::Entered::Stale => {
                    self.dropped += events.len() as u64;
                    continue;
                }
                super::partitioned::Entered::Refused(reason) => {
                    self.unroutable(batch, events.iter().map(|(i, _)| (*i, reason.as_str())));
                    continue;
                }
                super::partitioned::Entered::Ready { floor } => floor,
            };
            let last = events.iter().map(|(_, o)| *o).max();
            let mut sub = BatchBuilder::new(batch.stream(), batch.origin.clone(), events.len());
            for (i, offset) in &events {
                if *offset < floor {
                    self.dropped += 1;
                    continue;
                }
                if let Some(e) = batch.get(*i) {
                    let headers: Vec<(&str, &[u8])> = e.headers().collect();
                    sub.push(e.key, e.value, &headers, e.timestamp_ms, e.position);
                }
            }
            let result = if sub.is_empty() {
                Ok(())
            } else {
                self.process_in_place(Arc::new(sub.finish()))
            };
            if let (Ok(mut s), Some(parts)) = (slot.lock(), self.partitioned.as_mut()) {
                parts.leave(partition, last.map(|o| o + 1), &mut s);
            }
            result?;
        }
        Ok(())
    }

    /// Counts and sends on what the stage itself dead-lettered.
    fn send_dead(&self, dead: DeadLetters) {
        if let Some(d) = dead.finish() {
            Metrics::add(&self.metrics.dead_letters, d.len() as u64);
            Metrics::add(&self.counts.dead, d.len() as u64);
            self.dead.send(Message::Batch(Arc::new(d)));
        }
    }

    /// Dead-letters the events of `batch` at these indices, each with its
    /// reason: they cannot be routed to a partition's state.
    fn unroutable<'r>(&mut self, batch: &Batch, events: impl Iterator<Item = (usize, &'r str)>) {
        let (plugin, version) = self.instance.identity();
        let culprit = Culprit {
            stage: self.name.clone(),
            plugin,
            version,
        };
        let mut dead = DeadLetters::new(&self.name, batch.origin.clone());
        for (i, reason) in events {
            if let Some(e) = batch.get(i) {
                dead.add(&e, &batch.origin, &culprit, "unroutable", reason);
            }
        }
        self.send_dead(dead);
    }

    /// Runs a batch against the state in place (a partition's, under
    /// `state: changelog`), then moves event time on.
    fn process_in_place(&mut self, batch: Arc<Batch>) -> Result<()> {
        let (batch, newest) = self.event_time_pass(&batch);
        let cpu = super::metrics::thread_cpu_ns();
        let outcome = process_batch(self.instance.as_mut(), &self.name, self.policy, &batch)?;
        Metrics::add(
            &self.counts.cpu_ns,
            super::metrics::thread_cpu_ns().saturating_sub(cpu),
        );
        if let Some(bytes) = self.instance.memory_bytes() {
            self.counts.memory_bytes.store(bytes, Ordering::Relaxed);
        }
        Metrics::add(&self.counts.filtered, outcome.filtered);
        self.count(&outcome);
        self.emit(outcome);
        if let Some(newest) = newest {
            let lateness = self.event_time.as_ref().map_or(0, |e| e.lateness_ms);
            self.advance(newest.saturating_sub(i64::try_from(lateness).unwrap_or(i64::MAX)))?;
        }
        Ok(())
    }

    /// Begins the changelog publish of every changed partition for
    /// checkpoint `id` (`u64::MAX`: the final one), and tells the
    /// coordinator the stage is saved.
    fn publish_partitions(&mut self, id: u64) -> Result<()> {
        let name = self.name.clone();
        let Some(parts) = self.partitioned.as_mut() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let published = parts
            .publish(&name, id)
            .with_context(|| format!("stage `{name}`: publishing state for checkpoint {id}"))?;
        if self.dropped > 0 {
            tracing::info!(stage = %name, events = self.dropped, "changelog: events dropped: already in the state read back, or read before their partition was revoked (the new owner reads them again)");
            self.dropped = 0;
        }
        tracing::debug!(stage = %name, checkpoint = id, partitions = published, micros = started.elapsed().as_micros() as u64, "state publish begun");
        if id != u64::MAX {
            let _ = self.reports.send(Report::StageInChangelog {
                stage: name,
                id,
                topic: parts.changelog.topic.clone(),
            });
        }
        Ok(())
    }

    /// Holds the stage's input (without blocking upstream, which may feed
    /// the very table) until every table it reads has been loaded.
    fn wait_for_tables(&mut self) -> Result<std::collections::VecDeque<Envelope>> {
        let mut backlog = std::collections::VecDeque::new();
        let mut announced = false;
        while let Some((name, table)) = self.tables.iter().find(|(_, t)| !t.is_ready()) {
            if table.is_abandoned() {
                // The held batches were never processed, so no checkpoint
                // covers them: a rerun reads them again.
                anyhow::bail!("table `{name}` will not load: the run failed before it did");
            }
            if !announced {
                tracing::info!(stage = %self.name, table = %name, "waiting for the table to load before processing");
                announced = true;
            }
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(env) => backlog.push_back(env),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                // Upstream sent everything and ended before the table was
                // loaded (a short input, fast stages): the held batches
                // still need the whole table. Leaving here joined them
                // against a partial one, and an inner join dropped the
                // events whose rows had not arrived yet.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        if announced {
            tracing::info!(stage = %self.name, held = backlog.len(), "tables loaded; processing");
        }
        Ok(backlog)
    }

    pub(crate) fn run(mut self) -> Result<()> {
        let mut aligner = Aligner::new(self.inputs);
        let backlog = self.wait_for_tables()?;
        let mut backlog = backlog.into_iter();
        while let Some(env) = backlog.next().or_else(|| self.rx.recv().ok()) {
            for step in aligner.push(env) {
                match step {
                    Step::Data(_, Message::Batch(batch)) => {
                        // Swaps happen only here, between batches: every batch
                        // runs wholly on one version.
                        while let Ok(plugin) = self.reload.try_recv() {
                            self.swap(plugin);
                        }
                        Metrics::add(&self.counts.events_in, batch.len() as u64);
                        if self.partitioned.is_some() {
                            self.process_partitioned(&batch)?;
                        } else {
                            self.process_in_place(batch)?;
                        }
                        // Also when the batch emitted nothing (a filter that
                        // keeps none still spent CPU).
                        super::fair::pace();
                    }
                    Step::Data(..) => {}
                    Step::Barrier(id) => {
                        if self.partitioned.is_some() {
                            self.publish_partitions(id)?;
                        } else {
                            self.save_state(id)?;
                        }
                        self.outputs.send(Message::Barrier(id));
                        self.dead.send(Message::Barrier(id));
                    }
                    Step::End => {
                        if self.partitioned.is_some() {
                            // The partitions go on elsewhere (another member,
                            // the next run): their windows stay open, and
                            // their state goes to the changelog with the
                            // final checkpoint.
                            self.publish_partitions(u64::MAX)?;
                        } else {
                            // Every input is drained: event time is over, so
                            // every window closes and every timer fires.
                            self.advance(i64::MAX)?;
                        }
                        if self.instance.as_processor().is_some() {
                            let _ = self.reports.send(Report::StageEnded {
                                stage: self.name.clone(),
                            });
                        }
                        self.outputs.send(Message::End);
                        self.dead.send(Message::End);
                        return Ok(());
                    }
                }
            }
        }
        // Upstream vanished without an end: a failure elsewhere, already reported.
        Ok(())
    }

    /// Adds what one call produced, skipped and dead-lettered to the
    /// pipeline's and the stage's counts.
    fn count(&self, outcome: &StageOutcome) {
        let out: usize = outcome.outputs.iter().map(Batch::len).sum();
        let dead = outcome.dead.as_ref().map_or(0, Batch::len) as u64;
        Metrics::add(&self.metrics.skipped, outcome.skipped);
        Metrics::add(&self.metrics.instance_restarts, outcome.restarts);
        Metrics::add(&self.metrics.dead_letters, dead);
        Metrics::add(&self.counts.skipped, outcome.skipped);
        Metrics::add(&self.counts.restarts, outcome.restarts);
        Metrics::add(&self.counts.dead, dead);
        Metrics::add(&self.counts.events_out, out as u64);
    }

    /// Sends a call's outputs downstream and its dead letters on.
    fn emit(&self, outcome: StageOutcome) {
        for out in outcome.outputs {
            self.tap.offer(&self.name, &out);
            self.outputs.send(Message::Batch(Arc::new(out)));
        }
        if let Some(d) = outcome.dead {
            self.dead.send(Message::Batch(Arc::new(d)));
        }
    }

    fn swap(&mut self, plugin: StagePlugin) {
        let (old, _) = self.instance.identity();
        let new = plugin.label();
        // Two builds of one plugin claim the same name and version; the
        // host's hash of each file tells them apart.
        let old_hash = old
            .rsplit("sha256 ")
            .next()
            .unwrap_or("")
            .trim_end_matches(')');
        let new_hash = hex::encode(&plugin.sha256()[..4]);
        // The batch in hand waits this long: the new build was compiled
        // off this thread, so what is left is instantiating it.
        let started = std::time::Instant::now();
        match self.instance.swap(plugin) {
            Ok(()) => {
                let paused = started.elapsed().as_secs_f64() * 1e3;
                tracing::info!(stage = %self.name, "hot-swapped plugin: build sha256 {old_hash} -> sha256 {new_hash}, now {new}; the stage paused {paused:.3} ms");
                let _ = self.reports.send(Report::Swapped {
                    stage: self.name.clone(),
                    plugin: new,
                });
            }
            Err(e) => {
                tracing::error!(stage = %self.name, "keeping {old}: the new build was refused: {e}")
            }
        }
    }
}

/// The event time in `field` of a JSON value: an ISO 8601 string or epoch
/// milliseconds.
fn event_time_of(value: Option<&[u8]>, field: &str) -> Result<i64, String> {
    let v: serde_json::Value = match value {
        None => return Err(format!("event time: a tombstone has no `{field}` field")),
        Some(b) => {
            serde_json::from_slice(b).map_err(|e| format!("event time: value is not JSON: {e}"))?
        }
    };
    match v.get(field) {
        Some(serde_json::Value::String(s)) => crate::format::time::parse_timestamp_ms(s).ok_or_else(|| {
            format!("event time: `{field}` = {s:?} is not a date-time like 2024-05-01T10:20:30 (ISO 8601)")
        }),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("event time: `{field}` = {n} is not whole epoch milliseconds")),
        Some(other) => Err(format!("event time: `{field}` = {other} is neither a date-time string nor epoch milliseconds")),
        None => Err(format!("event time: the value has no `{field}` field")),
    }
}
