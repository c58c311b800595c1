//! Builds the running graph from a validated pipeline and coordinates
//! checkpoints until the sources drain or a shutdown signal arrives.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::dead_letter::{Culprit, DeadLetters};
use super::stage::{StageLogic, StageTask};
use super::watch::{self, Watched};
use super::{Aligner, Envelope, Message, Metrics, Outputs, Progress, Step};
use crate::config::Pipeline;
use crate::plugin::{
    ComponentCache, ProcessorInstance, StagePlugin, TransformInstance, WasmEngine,
};
use crate::sinks::{file::FileSinkConfig, OutputFormat, Rejected, SinkConfig};
use crate::sources::Source;
use crate::state::{keyed, KeyedState, Table, TableSink};
use crate::state::{Checkpoint, CheckpointStore};

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Hot-reload plugins whose files change.
    pub watch: bool,
    /// Draw a progress bar for bounded sources.
    pub progress: bool,
    /// Set to stop: sources end, in-flight work drains, a checkpoint is taken.
    pub stop: Arc<AtomicBool>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Events read by sources.
    pub events_in: u64,
    /// Events written by sinks.
    pub events_out: u64,
    /// Events dead-lettered.
    pub dead_letters: u64,
    /// Events skipped by policy.
    pub skipped: u64,
    /// Plugin instances replaced after failures.
    pub instance_restarts: u64,
    /// Checkpoints committed.
    pub checkpoints: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Where dead letters went.
    pub dead_letter_path: Option<PathBuf>,
    /// Sink name → what it wrote to (files).
    pub outputs: Vec<(String, String)>,
}

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
    Swapped {
        stage: String,
        plugin: String,
    },
    Failed {
        component: String,
        error: String,
    },
}

const DEAD_LETTER_SINK: &str = "dead-letter";

/// Runs `pipeline` to completion (bounded sources drained) or until `stop`.
pub fn run(
    pipeline: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    options: RunOptions,
) -> Result<RunSummary> {
    run_with(pipeline, engine, cache, options, HashMap::new())
}

/// Like [`run`], with some stages' logic supplied by the caller instead of
/// loaded from their plugin files (the benchmark's native reference uses this).
pub fn run_with(
    pipeline: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    options: RunOptions,
    mut overrides: HashMap<String, Box<dyn StageLogic>>,
) -> Result<RunSummary> {
    let started = Instant::now();
    let store = CheckpointStore::new(&pipeline.state_dir());
    let restored = store.load()?;
    if let Some(cp) = &restored {
        tracing::info!(checkpoint = cp.id, path = %store.path().display(), "resuming from checkpoint");
    }
    let metrics = Arc::new(Metrics::default());
    let (report_tx, report_rx) = channel::<Report>();
    let requested = Arc::new(AtomicU64::new(restored.as_ref().map_or(0, |c| c.id)));

    // Tables, shared by the stages that may read them and the table sinks
    // that keep them up to date.
    let tables: HashMap<String, Table> = pipeline
        .tables
        .iter()
        .map(|t| (t.name.clone(), Table::default()))
        .collect();

    // Load and validate every plugin before anything starts.
    let mut instances: Vec<Box<dyn StageLogic>> = Vec::new();
    for stage in &pipeline.stages {
        if let Some(logic) = overrides.remove(&stage.name) {
            instances.push(logic);
            continue;
        }
        let plugin = StagePlugin::load(engine, cache, &stage.plugin, stage.limits.cpu_ms_per_call)
            .with_context(|| format!("stage `{}`", stage.name))?;
        tracing::debug!(stage = %stage.name, plugin = %plugin.label(), "plugin loaded");
        match plugin {
            StagePlugin::Transform(plugin) => {
                let instance = TransformInstance::new(
                    Arc::new(plugin),
                    &stage.name,
                    &stage.params,
                    stage.limits,
                )?;
                instances.push(Box::new(instance));
            }
            StagePlugin::Processor(plugin) => {
                let granted = stage
                    .tables
                    .iter()
                    .filter_map(|t| tables.get(t).map(|table| (t.clone(), table.clone())))
                    .collect();
                let instance = ProcessorInstance::new(
                    Arc::new(plugin),
                    &stage.name,
                    &stage.params,
                    stage.limits,
                    granted,
                )?;
                if let Some(cp) = &restored {
                    let file = keyed::state_file(&pipeline.state_dir(), &stage.name, cp.id);
                    if file.exists() {
                        let state = KeyedState::load(&file)
                            .with_context(|| format!("stage `{}`", stage.name))?;
                        let (entries, bytes) = state.size();
                        tracing::info!(stage = %stage.name, checkpoint = cp.id, entries, bytes, "state restored");
                        if let Ok(mut s) = instance.state().lock() {
                            *s = state;
                        }
                    } else {
                        tracing::warn!(stage = %stage.name, checkpoint = cp.id, "no saved state for this checkpoint; the stage starts empty");
                    }
                }
                instances.push(Box::new(instance));
            }
        }
    }

    // Channels: one receiver per stage, sink and the dead-letter sink.
    let cap = pipeline.channel_capacity.max(1);
    let mut receivers: HashMap<String, (SyncSender<Envelope>, Receiver<Envelope>)> = HashMap::new();
    for name in pipeline
        .stages
        .iter()
        .map(|s| s.name.clone())
        .chain(pipeline.sinks.iter().map(|s| s.name.clone()))
        .chain(pipeline.tables.iter().map(|t| t.name.clone()))
        .chain(std::iter::once(DEAD_LETTER_SINK.to_string()))
    {
        receivers.insert(name, sync_channel(cap));
    }
    let producers: Vec<String> = pipeline
        .sources
        .iter()
        .map(|s| s.name.clone())
        .chain(pipeline.stages.iter().map(|s| s.name.clone()))
        .collect();
    let mut outputs: HashMap<String, Outputs> = producers
        .iter()
        .map(|p| (p.clone(), Outputs::default()))
        .collect();
    let mut dead_outputs: HashMap<String, Outputs> = HashMap::new();
    for (consumer, inputs) in pipeline
        .stages
        .iter()
        .map(|s| (&s.name, &s.inputs))
        .chain(pipeline.sinks.iter().map(|s| (&s.name, &s.inputs)))
    {
        let tx = &receivers[consumer].0;
        for (i, input) in inputs.iter().enumerate() {
            if let Some(o) = outputs.get_mut(input) {
                o.add(tx.clone(), i);
            }
        }
    }
    for t in &pipeline.tables {
        if let Some(o) = outputs.get_mut(&t.config.input) {
            o.add(receivers[&t.name].0.clone(), 0);
        }
    }
    // Everything but the dead-letter sink itself may refuse events: sources
    // (malformed input), stages (plugins) and sinks (their targets).
    let dead_tx = receivers[DEAD_LETTER_SINK].0.clone();
    let dead_producers: Vec<String> = producers
        .iter()
        .cloned()
        .chain(pipeline.sinks.iter().map(|s| s.name.clone()))
        .chain(pipeline.tables.iter().map(|t| t.name.clone()))
        .collect();
    for (i, p) in dead_producers.iter().enumerate() {
        let mut o = Outputs::default();
        o.add(dead_tx.clone(), i);
        dead_outputs.insert(p.clone(), o);
    }
    drop(dead_tx);

    // Sinks, including the dead-letter destination.
    let dead_config = pipeline.dead_letter.clone().unwrap_or_else(|| {
        SinkConfig::File(FileSinkConfig {
            path: pipeline.state_dir().join("dead-letters.jsonl"),
            format: OutputFormat::Envelope,
        })
    });
    let dead_letter_path = match &dead_config {
        SinkConfig::File(c) => Some(c.path.clone()),
        _ => None,
    };
    let mut sink_specs: Vec<(String, SinkConfig, usize)> = pipeline
        .sinks
        .iter()
        .map(|s| (s.name.clone(), s.config.clone(), s.inputs.len()))
        .collect();
    sink_specs.push((
        DEAD_LETTER_SINK.to_string(),
        dead_config,
        dead_producers.len(),
    ));
    let mut summary_outputs = Vec::new();
    let mut built: Vec<(String, Box<dyn crate::sinks::Sink>, usize)> = Vec::new();
    for (name, config, inputs) in sink_specs {
        if let SinkConfig::File(c) = &config {
            summary_outputs.push((name.clone(), c.path.display().to_string()));
        }
        built.push((name.clone(), config.build(&name)?, inputs));
    }
    for t in &pipeline.tables {
        let table = tables.get(&t.name).cloned().unwrap_or_default();
        let sink = TableSink::new(
            &t.name,
            t.config.clone(),
            table,
            pipeline.state_dir().join("tables"),
        );
        built.push((t.name.clone(), Box::new(sink), 1));
    }
    for (name, mut sink, inputs) in built {
        let Some((_, rx)) = receivers.remove(&name) else {
            continue;
        };
        let position = restored.as_ref().and_then(|c| c.sinks.get(&name));
        sink.open(position)
            .with_context(|| format!("sink `{name}`"))?;
        let reports = report_tx.clone();
        let counted = name != DEAD_LETTER_SINK;
        let metrics = metrics.clone();
        let thread_name = name.clone();
        let dead = dead_outputs.remove(&name).unwrap_or_default();
        spawn(&thread_name, report_tx.clone(), move || {
            let task = SinkTask {
                name,
                sink,
                dead,
                reports,
                counted,
                metrics,
            };
            task.run(rx, inputs)
        })?;
    }

    // Stages.
    let mut watched = Vec::new();
    for (stage, instance) in pipeline.stages.iter().zip(instances) {
        let Some((_, rx)) = receivers.remove(&stage.name) else {
            continue;
        };
        let (reload_tx, reload_rx) = sync_channel(1);
        watched.push(Watched {
            stage: stage.name.clone(),
            path: stage.plugin.clone(),
            budget: stage.limits.cpu_ms_per_call,
            tx: reload_tx,
        });
        let task = StageTask {
            name: stage.name.clone(),
            instance,
            policy: stage.on_error,
            inputs: stage.inputs.len(),
            rx,
            outputs: outputs.remove(&stage.name).unwrap_or_default(),
            dead: dead_outputs.remove(&stage.name).unwrap_or_default(),
            reload: reload_rx,
            reports: report_tx.clone(),
            metrics: metrics.clone(),
            event_time: stage.event_time.clone(),
            state_dir: pipeline.state_dir(),
            tables: stage
                .tables
                .iter()
                .filter_map(|t| tables.get(t).map(|table| (t.clone(), table.clone())))
                .collect(),
        };
        spawn(&stage.name, report_tx.clone(), move || task.run())?;
    }
    drop(receivers);
    if options.watch {
        watch::spawn(watched, engine.clone(), cache.clone(), options.stop.clone());
    } else {
        drop(watched);
    }

    // Sources last, so everything downstream is ready.
    let mut progress = Vec::new();
    let mut commit_txs = HashMap::new();
    let mut source_threads = Vec::new();
    for def in &pipeline.sources {
        let p = Arc::new(Progress::default());
        progress.push(p.clone());
        let mut source = def.config.build(&def.name, p)?;
        let position = restored.as_ref().and_then(|c| c.sources.get(&def.name));
        source
            .open(position)
            .with_context(|| format!("source `{}`", def.name))?;
        let (commit_tx, commits) = channel();
        commit_txs.insert(def.name.clone(), commit_tx);
        let task = SourceTask {
            name: def.name.clone(),
            source,
            commits,
            outputs: outputs.remove(&def.name).unwrap_or_default(),
            dead: dead_outputs.remove(&def.name).unwrap_or_default(),
            batch_size: pipeline.batch_size.max(1),
            requested: requested.clone(),
            last: requested.load(Ordering::SeqCst),
            caught_up: false,
            stop: options.stop.clone(),
            reports: report_tx.clone(),
            metrics: metrics.clone(),
        };
        source_threads.push(spawn(&def.name, report_tx.clone(), move || task.run())?);
    }
    drop(report_tx);

    let bar = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    let coordinator = Coordinator {
        store,
        sources: pipeline.sources.iter().map(|s| s.name.clone()).collect(),
        sinks: pipeline
            .sinks
            .iter()
            .map(|s| s.name.clone())
            .chain(pipeline.tables.iter().map(|t| t.name.clone()))
            .chain(std::iter::once(DEAD_LETTER_SINK.to_string()))
            .collect(),
        pending: BTreeMap::new(),
        done_sources: BTreeMap::new(),
        done_sinks: BTreeMap::new(),
        last_id: restored.as_ref().map_or(0, |c| c.id),
        metrics: metrics.clone(),
        commit_txs,
        tables: pipeline
            .tables
            .iter()
            .map(|t| {
                let table = tables.get(&t.name).cloned().unwrap_or_default();
                (
                    t.name.clone(),
                    (table, upstream_sources(pipeline, &t.config.input)),
                )
            })
            .collect(),
        caught_up: HashMap::new(),
    };
    let result = coordinator.run(
        report_rx,
        requested,
        pipeline.checkpoint_interval,
        &options,
        |m| {
            if let Some(bar) = &bar {
                let (done, total) = progress.iter().fold((0, 0), |(d, t), p| {
                    let (pd, pt) = p.get();
                    (d + pd, t + pt)
                });
                if total > 0 {
                    bar.set_length(total);
                    bar.set_position(done);
                }
                bar.set_message(format!(
                    "{} in, {} out, {} dead-lettered",
                    Metrics::get(&m.events_in),
                    Metrics::get(&m.events_out),
                    Metrics::get(&m.dead_letters)
                ));
            }
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if result.is_err() {
        options.stop.store(true, Ordering::SeqCst);
    }
    result?;
    // Sources acknowledge the final checkpoint upstream (replication slots,
    // consumer groups) on their own threads; give them a moment to.
    let deadline = Instant::now() + Duration::from_secs(5);
    while source_threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(RunSummary {
        events_in: Metrics::get(&metrics.events_in),
        events_out: Metrics::get(&metrics.events_out),
        dead_letters: Metrics::get(&metrics.dead_letters),
        skipped: Metrics::get(&metrics.skipped),
        instance_restarts: Metrics::get(&metrics.instance_restarts),
        checkpoints: Metrics::get(&metrics.checkpoints),
        elapsed: started.elapsed(),
        dead_letter_path,
        outputs: summary_outputs,
    })
}

/// Runs `f` on a named thread; an error or panic becomes a `Failed` report.
fn spawn(
    name: &str,
    reports: Sender<Report>,
    f: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let component = name.to_string();
    std::thread::Builder::new()
        .name(format!("sluice-{name}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let error = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => "panicked (see log above)".to_string(),
            };
            let _ = reports.send(Report::Failed { component, error });
        })
        .context("spawning a pipeline thread")
}

struct SourceTask {
    name: String,
    source: Box<dyn Source>,
    /// Positions of durable checkpoints, to acknowledge upstream.
    commits: Receiver<Value>,
    outputs: Outputs,
    dead: Outputs,
    batch_size: usize,
    requested: Arc<AtomicU64>,
    last: u64,
    caught_up: bool,
    stop: Arc<AtomicBool>,
    reports: Sender<Report>,
    metrics: Arc<Metrics>,
}

impl SourceTask {
    fn barriers(&mut self) {
        let want = self.requested.load(Ordering::SeqCst);
        while self.last < want {
            self.last += 1;
            let _ = self.reports.send(Report::SourceAt {
                source: self.name.clone(),
                id: self.last,
                position: self.source.position(),
            });
            self.outputs.send(Message::Barrier(self.last));
            self.dead.send(Message::Barrier(self.last));
        }
    }

    /// Hands the newest durable position to the source.
    fn acknowledge(&mut self) -> Result<()> {
        let mut latest = None;
        while let Ok(p) = self.commits.try_recv() {
            latest = Some(p);
        }
        match latest {
            Some(p) => self
                .source
                .committed(&p)
                .with_context(|| format!("source `{}` acknowledging a checkpoint", self.name)),
            None => Ok(()),
        }
    }

    fn run(mut self) -> Result<()> {
        loop {
            self.acknowledge()?;
            self.barriers();
            if self.stop.load(Ordering::SeqCst) {
                tracing::info!(source = %self.name, "stopping: draining in-flight events");
                break;
            }
            let polled = self.source.poll(self.batch_size)?;
            if !polled.malformed.is_empty() {
                let mut dead = DeadLetters::new(&self.name, Arc::from(self.name.as_str()));
                for m in &polled.malformed {
                    tracing::warn!(source = %self.name, "{}", m.reason);
                    dead.add_raw(&m.bytes, m.position, &self.name, "malformed", &m.reason);
                }
                Metrics::add(&self.metrics.dead_letters, dead.len() as u64);
                if let Some(b) = dead.finish() {
                    self.dead.send(Message::Batch(Arc::new(b)));
                }
            }
            if let Some(batch) = polled.batch {
                Metrics::add(&self.metrics.events_in, batch.len() as u64);
                if !self.outputs.send(Message::Batch(Arc::new(batch))) {
                    return Ok(()); // downstream failed; that failure is reported
                }
            }
            if polled.done {
                break;
            }
            if !self.caught_up && self.source.caught_up() {
                // A barrier right behind the snapshot: a table that has
                // flushed it holds everything the snapshot had.
                self.caught_up = true;
                self.requested.fetch_add(1, Ordering::SeqCst);
                self.barriers();
                tracing::info!(source = %self.name, barrier = self.last, "caught up");
                let _ = self.reports.send(Report::CaughtUp {
                    source: self.name.clone(),
                    id: self.last,
                });
            }
        }
        if !self.caught_up {
            let _ = self.reports.send(Report::CaughtUp {
                source: self.name.clone(),
                id: self.last + 1,
            });
        }
        let _ = self.reports.send(Report::SourceDone {
            source: self.name.clone(),
            position: self.source.position(),
        });
        self.outputs.send(Message::End);
        self.dead.send(Message::End);
        // The final checkpoint comes after the sinks drain; acknowledge it
        // too. The channel closes when the coordinator finishes.
        while let Ok(p) = self.commits.recv() {
            self.source.committed(&p)?;
        }
        Ok(())
    }
}

struct SinkTask {
    name: String,
    sink: Box<dyn crate::sinks::Sink>,
    dead: Outputs,
    reports: Sender<Report>,
    counted: bool,
    metrics: Arc<Metrics>,
}

impl SinkTask {
    /// Sends what the target refused to the dead-letter destination.
    fn route_rejected(&self, rejected: &mut Rejected) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        if !self.counted {
            // This is the dead-letter destination itself: there is nowhere
            // further to send a refusal, and dropping it would lose data.
            let reasons: Vec<String> = rejected.drain().map(|(_, _, r)| r).collect();
            anyhow::bail!(
                "the dead-letter destination refused {} event(s); stopping so nothing is lost: {}",
                reasons.len(),
                reasons.join("; ")
            );
        }
        let culprit = Culprit {
            stage: self.name.clone(),
            plugin: String::new(),
            version: String::new(),
        };
        let mut dead = DeadLetters::new(&self.name, Arc::from(self.name.as_str()));
        for (batch, index, reason) in rejected.drain() {
            if let Some(event) = batch.get(index) {
                tracing::warn!(sink = %self.name, origin = %batch.origin, position = event.position, "target refused an event: {reason}");
                dead.add(&event, &batch.origin, &culprit, "sink", &reason);
            }
        }
        Metrics::add(&self.metrics.dead_letters, dead.len() as u64);
        if self.counted {
            // Refused events were counted as written when they were handed over.
            self.metrics
                .events_out
                .fetch_sub(dead.len() as u64, Ordering::Relaxed);
        }
        if let Some(b) = dead.finish() {
            self.dead.send(Message::Batch(Arc::new(b)));
        }
        Ok(())
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        let position = self
            .sink
            .flush(rejected)
            .with_context(|| format!("sink `{}`", self.name))?;
        self.route_rejected(rejected)?;
        Ok(position)
    }

    fn run(mut self, rx: Receiver<Envelope>, inputs: usize) -> Result<()> {
        let name = self.name.clone();
        let mut rejected = Rejected::default();
        let mut aligner = Aligner::new(inputs);
        if inputs == 0 {
            let position = self.flush(&mut rejected)?;
            self.dead.send(Message::End);
            let _ = self.reports.send(Report::SinkDone {
                sink: name,
                position,
            });
            return Ok(());
        }
        while let Ok(env) = rx.recv() {
            for step in aligner.push(env) {
                match step {
                    Step::Data(_, Message::Batch(batch)) => {
                        if self.counted {
                            Metrics::add(&self.metrics.events_out, batch.len() as u64);
                        }
                        self.sink
                            .write(&batch, &mut rejected)
                            .with_context(|| format!("sink `{name}`"))?;
                        self.route_rejected(&mut rejected)?;
                    }
                    Step::Data(..) => {}
                    Step::Barrier(id) => {
                        let position = self.flush(&mut rejected)?;
                        self.dead.send(Message::Barrier(id));
                        let _ = self.reports.send(Report::SinkFlushed {
                            sink: name.clone(),
                            id,
                            position,
                        });
                    }
                    Step::End => {
                        let position = self.flush(&mut rejected)?;
                        self.dead.send(Message::End);
                        let _ = self.reports.send(Report::SinkDone {
                            sink: name.clone(),
                            position,
                        });
                        return Ok(());
                    }
                }
            }
        }
        // Inputs vanished without an end: a failure upstream; do not report done,
        // so no checkpoint can cover events that never arrived.
        Ok(())
    }
}

#[derive(Default)]
struct Partial {
    sources: BTreeMap<String, Value>,
    sinks: BTreeMap<String, Value>,
}

struct Coordinator {
    store: CheckpointStore,
    sources: Vec<String>,
    sinks: Vec<String>,
    pending: BTreeMap<u64, Partial>,
    done_sources: BTreeMap<String, Value>,
    done_sinks: BTreeMap<String, Value>,
    last_id: u64,
    metrics: Arc<Metrics>,
    commit_txs: HashMap<String, Sender<Value>>,
    /// Tables, and the sources upstream of each.
    tables: HashMap<String, (Table, Vec<String>)>,
    caught_up: HashMap<String, u64>,
}

impl Coordinator {
    fn run(
        mut self,
        reports: Receiver<Report>,
        requested: Arc<AtomicU64>,
        interval: Duration,
        options: &RunOptions,
        mut tick: impl FnMut(&Metrics),
    ) -> Result<()> {
        let mut last_trigger = Instant::now();
        loop {
            if last_trigger.elapsed() >= interval && !options.stop.load(Ordering::SeqCst) {
                requested.fetch_add(1, Ordering::SeqCst);
                last_trigger = Instant::now();
            }
            tick(&self.metrics);
            // Wake for the next checkpoint on time, not up to a tick late.
            let wait = if options.stop.load(Ordering::SeqCst) {
                Duration::from_millis(50)
            } else {
                interval
                    .saturating_sub(last_trigger.elapsed())
                    .clamp(Duration::from_millis(1), Duration::from_millis(50))
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
        }
        self.try_commit()?;
        if self.done_sinks.len() == self.sinks.len() {
            // Everything drained: the final checkpoint covers it all.
            let checkpoint = Checkpoint {
                id: self.last_id + 1,
                sources: self.done_sources.clone(),
                sinks: self.done_sinks.clone(),
            };
            self.store.save(&checkpoint)?;
            Metrics::add(&self.metrics.checkpoints, 1);
            self.acknowledge(&checkpoint);
            return Ok(true);
        }
        Ok(false)
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
            if sources_ok && sinks_ok {
                complete = Some(*id);
            }
        }
        let Some(id) = complete else { return Ok(()) };
        let Some(partial) = self.pending.remove(&id) else {
            return Ok(());
        };
        let mut checkpoint = Checkpoint {
            id,
            ..Default::default()
        };
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
        self.acknowledge(&checkpoint);
        self.last_id = id;
        Metrics::add(&self.metrics.checkpoints, 1);
        tracing::debug!(checkpoint = id, "checkpoint committed");
        self.pending.retain(|k, _| *k > id);
        Ok(())
    }
}

/// The sources whose events reach `producer` (a source or a stage).
fn upstream_sources(p: &Pipeline, producer: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![producer.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if p.sources.iter().any(|s| s.name == n) {
            out.push(n);
        } else if let Some(stage) = p.stages.iter().find(|s| s.name == n) {
            todo.extend(stage.inputs.iter().cloned());
        }
    }
    out.sort();
    out
}
