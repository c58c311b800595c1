//! Runs a validated pipeline: loads and checks every plugin, restores the
//! last checkpoint, wires the graph, spawns one task per source, stage and
//! sink, and lets the coordinator commit checkpoints until the sources drain
//! or a stop is requested. Each job lives in its own module; this one only
//! puts them together.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::changelog::{Changelog, Writers};
use super::coordinator::{Coordinator, Report};
use super::fingerprint::{self, Fingerprint};
use super::fuse;
use super::graph::{upstream_sources, Graph, DEAD_LETTER_SINK};
use super::handoff::Handoffs;
use super::metrics::{stats_line, ComponentCounts, Role, SourceProgress};
use super::partitioned::Partitioned;
use super::restore;
use super::sink_task::SinkTask;
use super::source_task::SourceTask;
use super::stage::{StageLogic, StageTask};
use super::swap::StageSwaps;
use super::tap::TapHub;
use super::watch::{self, Watched};
use super::Metrics;
use crate::config::Pipeline;
use crate::connector::{ChangelogSpec, Progress, Sink, SinkConfig, SourceContext};
use crate::plugin::{
    ComponentCache, ProcessorInstance, StagePlugin, TransformInstance, WasmEngine,
};
use crate::sinks::file::FileSinkConfig;
use crate::sinks::OutputFormat;
use crate::state::keyed::StateLimits;
use crate::state::{Checkpoint, CheckpointStore, Table, TableSink};

/// What a running pipeline looks like right now, for progress displays.
#[derive(Debug, Clone, Default)]
pub struct RunStatus {
    /// Events read by sources.
    pub events_in: u64,
    /// Events written by sinks.
    pub events_out: u64,
    /// Events dead-lettered.
    pub dead_letters: u64,
    /// Bounded sources: how much is read, summed.
    pub progress_done: u64,
    /// Bounded sources: how much there is, summed (0 = unknown).
    pub progress_total: u64,
    /// Each source's, stage's, sink's and table's counts.
    pub components: Vec<ComponentCounts>,
    /// Each source's progress and lag.
    pub sources: Vec<SourceProgress>,
}

/// Called by the coordinator a few times a second with the run's status.
pub type StatusCallback = Arc<dyn Fn(&RunStatus) + Send + Sync>;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Hot-reload plugins whose files change.
    pub watch: bool,
    /// Set to stop: sources end, in-flight work drains, a checkpoint is taken.
    pub stop: Arc<AtomicBool>,
    /// Progress display (the CLI's bar); the runner draws nothing itself.
    pub on_status: Option<StatusCallback>,
    /// Log a `stats` line of `key=value` counts this often (`None`: never).
    pub stats_every: Option<Duration>,
    /// Counters to count into, so that the caller can read them while the
    /// run goes on (`sluice serve`'s `/metrics`); `None`: the run's own.
    pub metrics: Option<Arc<Metrics>>,
    /// While set, sources read nothing; barriers and checkpoints go on
    /// (`sluice serve`'s pause). `None`: never paused.
    pub pause: Option<Arc<AtomicBool>>,
    /// Where the running stages are published, so that the caller can swap
    /// their plugins (`sluice serve`'s update). `None`: nobody swaps.
    pub swaps: Option<Arc<StageSwaps>>,
    /// Where the run's sources and stages offer their batches to `sluice
    /// tap` subscribers (`sluice run --tap`, the server's tap route).
    /// `None`: a hub of its own that nobody can subscribe to.
    pub tap: Option<Arc<TapHub>>,
}

impl RunOptions {
    /// Runs to completion, or until `stop` is set, with no progress display.
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        Self {
            watch: false,
            stop,
            on_status: None,
            stats_every: None,
            metrics: None,
            pause: None,
            swaps: None,
            tap: None,
        }
    }
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
    /// Each source's, stage's, table's and sink's counts: sources first,
    /// then stages, then sinks and tables, each in file order.
    pub components: Vec<ComponentCounts>,
    /// Stages that ran as part of another ([`super::fuse`]): their events
    /// are counted in that stage's.
    pub fusions: Vec<fuse::Fusion>,
}

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
/// loaded from their plugin files (benchmarks' native references and the
/// runner's own tests use this).
pub fn run_with(
    pipeline: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    options: RunOptions,
    overrides: HashMap<String, Box<dyn StageLogic>>,
) -> Result<RunSummary> {
    run_hooked(
        pipeline,
        engine,
        cache,
        options,
        overrides,
        Hooks::default(),
    )
}

/// A sink wrapper: gets each sink's name and the sink as built.
pub(crate) type WrapSink = Arc<dyn Fn(&str, Box<dyn Sink>) -> Box<dyn Sink> + Send + Sync>;

/// What a run of part of a pipeline (a dead-letter replay, `crate::dlq`)
/// changes in how it is run; the default changes nothing.
#[derive(Default)]
pub(crate) struct Hooks {
    /// The fingerprint to record and check, from the plugins loaded (in
    /// stage order), instead of `pipeline`'s own: a replay runs a pruned
    /// copy but must leave the whole pipeline's fingerprint behind.
    #[allow(clippy::type_complexity)]
    pub fingerprint: Option<Box<dyn FnOnce(&[String]) -> Fingerprint>>,
    /// Positions of the components this run leaves out, copied into every
    /// checkpoint it commits so the next full run finds them unchanged.
    pub carried: Checkpoint,
    /// Wraps every sink but the dead-letter destination as it is built.
    pub wrap_sink: Option<WrapSink>,
    /// Refuse to run processor stages (their state would end with the run).
    pub stateless_only: bool,
}

/// [`run_with`], with [`Hooks`].
pub(crate) fn run_hooked(
    pipeline: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    options: RunOptions,
    overrides: HashMap<String, Box<dyn StageLogic>>,
    hooks: Hooks,
) -> Result<RunSummary> {
    crate::failpoint::init()?;
    let started = Instant::now();
    // Built-in stages fused (`super::fuse`). A replay (it has its own
    // fingerprint) fused the file itself before choosing the part it runs,
    // and a caller's overrides name the stages as written.
    let fused;
    let mut fusions = Vec::new();
    let pipeline = if hooks.fingerprint.is_none() && overrides.is_empty() {
        let p;
        (p, fusions) = fuse::as_run(pipeline);
        for f in &fusions {
            tracing::info!(
                "{}: built-in stages fused, so their events cross into Wasm once (`fuse_stages: false` runs them apart)",
                f.describe()
            );
        }
        if let Some(swaps) = &options.swaps {
            for f in &fusions {
                swaps.add_fused(&f.into, &f.absorbed);
            }
        }
        fused = p;
        &fused
    } else {
        pipeline
    };
    let store = CheckpointStore::new(&pipeline.state_dir());
    let restored = store.load()?;
    if let Some(cp) = &restored {
        tracing::info!(checkpoint = cp.id, path = %store.path().display(), "resuming from checkpoint (`sluice run --reset` starts over)");
    }
    let restored_id = restored.as_ref().map(|c| c.id);
    let metrics = options.metrics.clone().unwrap_or_default();
    let tap = options.tap.clone().unwrap_or_default();
    let (report_tx, report_rx) = channel::<Report>();
    let requested = Arc::new(AtomicU64::new(restored_id.unwrap_or(0)));

    // Tables, shared by the stages that may read them and the table sinks
    // that keep them up to date.
    let tables: HashMap<String, Table> = pipeline
        .tables
        .iter()
        .map(|t| (t.name.clone(), Table::default()))
        .collect();

    // Every plugin is loaded and validated before anything starts.
    let mut instances = load_stages(
        pipeline,
        engine,
        cache,
        &tables,
        restored.as_ref(),
        overrides,
    )?;
    if hooks.stateless_only {
        for (stage, i) in pipeline.stages.iter().zip(instances.iter_mut()) {
            if i.as_processor().is_some() {
                anyhow::bail!(
                    "stage `{}` is a processor (it keeps state): replaying through it is not supported, since ending the replay would close its windows",
                    stage.name
                );
            }
        }
    }
    let plugins: Vec<String> = instances.iter().map(|i| i.identity().0).collect();
    let fingerprint = match hooks.fingerprint {
        Some(f) => f(&plugins),
        None => Fingerprint::of(pipeline, &plugins),
    };
    if let Some(cp) = &restored {
        let dir = pipeline.state_dir();
        fingerprint::check(
            cp.pipeline.as_ref(),
            cp.id,
            &fingerprint,
            &dir.display().to_string(),
        )?;
    }
    let processors: Vec<String> = pipeline
        .stages
        .iter()
        .zip(instances.iter_mut())
        .filter_map(|(s, i)| i.as_processor().is_some().then(|| s.name.clone()))
        .collect();
    let table_readers: Vec<String> = pipeline
        .stages
        .iter()
        .zip(instances.iter())
        .filter(|(_, i)| i.reads_field_tables())
        .map(|(s, _)| s.name.clone())
        .collect();
    let (changelogs, writers) = changelog_stages(pipeline, &processors)?;
    let mut graph = Graph::build(pipeline);

    // Sinks first, then stages, then sources, so everything downstream is
    // ready before events flow.
    let mut threads = Vec::new();
    // Exactly-once sinks, and the sources whose progress each commits.
    let board = Arc::new(Handoffs::default());
    let mut committed_by: HashMap<String, String> = HashMap::new();
    let mut watched = Vec::new();
    let (summary_outputs, dead_letter_path) = spawn_sinks(
        pipeline,
        &mut graph,
        &tables,
        restored.as_ref(),
        &report_tx,
        &metrics,
        &mut threads,
        (&board, &mut committed_by),
        hooks.wrap_sink.as_ref(),
        &mut watched,
    )?;
    if let Some(source) = writers.keys().find(|s| committed_by.contains_key(*s)) {
        // The sink would commit the group's offsets in its own transaction,
        // at its flush, before the changelog's commit: a member killed in
        // between would come back with state behind its offsets.
        anyhow::bail!(
            "source `{source}` keeps its processors' state in a changelog (`state: changelog`) and feeds an exactly-once sink (`delivery: exactly_once`); the two cannot be combined yet: use `delivery: at_least_once`, or `state: local`"
        );
    }
    // From here threads run: whichever way the start fails, they must end.
    let mut start = EndOnFailure {
        stop: &options.stop,
        tables: &tables,
        armed: true,
    };
    watched.extend(spawn_stages(
        pipeline,
        &mut graph,
        instances,
        &tables,
        &report_tx,
        (&metrics, &tap),
        &mut threads,
        (engine, cache),
        options
            .swaps
            .as_deref()
            .map(|sw| (sw, processors.as_slice())),
        &changelogs,
    )?);
    if options.watch {
        watch::spawn(watched, options.stop.clone());
    }

    let mut commit_txs = HashMap::new();
    for def in &pipeline.sources {
        let p = Arc::new(Progress::default());
        metrics.source_progress(&def.name, p.clone());
        let mut source = def.config.build(SourceContext {
            name: &def.name,
            progress: p,
            reaches_processor: processors
                .iter()
                .any(|stage| upstream_sources(pipeline, stage).contains(&def.name)),
            held: writers.get(&def.name).map(|w| w.held()),
            index_json: table_readers
                .iter()
                .any(|stage| upstream_sources(pipeline, stage).contains(&def.name)),
        })?;
        let handoffs = match committed_by.get(&def.name) {
            Some(_) if source.hand_off_progress() => Some(board.clone()),
            Some(sink) => anyhow::bail!(
                "sink `{sink}` delivers exactly once, but source `{}` cannot hand its progress to it (only `kafka` sources in a consumer group can); use `delivery: at_least_once`",
                def.name
            ),
            None => None,
        };
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
            outputs: graph.take_outputs(&def.name),
            dead: graph.take_dead_outputs(&def.name),
            batch_size: pipeline.batch_size.max(1),
            requested: requested.clone(),
            last: requested.load(Ordering::SeqCst),
            caught_up: false,
            stop: options.stop.clone(),
            pause: options.pause.clone(),
            reports: report_tx.clone(),
            counts: metrics.component(Role::Source, &def.name),
            metrics: metrics.clone(),
            tap: tap.clone(),
            handoffs,
        };
        threads.push(spawn(&def.name, report_tx.clone(), move || task.run())?);
    }
    drop(report_tx);
    drop(graph);

    let coordinator = Coordinator {
        changelog: writers.values().cloned().collect(),
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
        processors,
        done_stages: BTreeMap::new(),
        last_id: restored_id.unwrap_or(0),
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
        fingerprint: Some(fingerprint.to_value()),
        carried: hooks.carried,
    };
    let on_status = options.on_status.clone();
    let mut stats = options.stats_every.map(|every| Stats::new(every, started));
    let result = coordinator.run(
        &report_rx,
        requested,
        pipeline.checkpoint_interval,
        &options.stop,
        |m| {
            if let Some(s) = stats.as_mut() {
                s.tick(m);
            }
            if let Some(f) = &on_status {
                let sources = m.progress();
                let (done, total) = sources
                    .iter()
                    .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
                f(&RunStatus {
                    events_in: Metrics::get(&m.events_in),
                    events_out: Metrics::get(&m.events_out),
                    dead_letters: Metrics::get(&m.dead_letters),
                    progress_done: done,
                    progress_total: total,
                    components: m.components(),
                    sources,
                });
            }
        },
    );
    if result.is_err() {
        start.fail();
    }
    start.armed = false;
    // Sources acknowledge the final checkpoint upstream (replication slots,
    // consumer groups) on their own threads; after a failure, the other
    // threads drain and stop, and must not write to a target after the
    // caller has reopened it for a rerun. Give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    result?;
    // A source that failed to acknowledge the final checkpoint upstream (a
    // Kafka offset commit, a replication slot's confirmed position) fails the
    // run: the checkpoint is durable, but exit 0 would hide that upstream
    // still holds what it covers.
    if let Some((component, error)) = report_rx.try_iter().find_map(|r| match r {
        Report::Failed { component, error } => Some((component, error)),
        _ => None,
    }) {
        anyhow::bail!("`{component}` failed after the final checkpoint: {error}");
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
        components: metrics.components(),
        fusions,
    })
}

/// A run that fails once its threads have started tells them to stop, and
/// gives up on every table not loaded yet: a stage waiting for one (which a
/// closed input no longer ends) would otherwise wait for ever, in `sluice
/// serve` past the end of its run. Armed until the run is past the point of
/// failing early; an early return (`?`) fires it on drop.
struct EndOnFailure<'a> {
    stop: &'a AtomicBool,
    tables: &'a HashMap<String, Table>,
    armed: bool,
}

impl EndOnFailure<'_> {
    fn fail(&mut self) {
        self.armed = false;
        self.stop.store(true, Ordering::SeqCst);
        for table in self.tables.values() {
            table.abandon();
        }
    }
}

impl Drop for EndOnFailure<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.fail();
        }
    }
}

/// The periodic `stats` log line, with the rate since the previous one.
struct Stats {
    every: Duration,
    started: Instant,
    last: Instant,
    last_in: u64,
}

impl Stats {
    fn new(every: Duration, started: Instant) -> Self {
        Self {
            every,
            started,
            last: started,
            last_in: 0,
        }
    }

    fn tick(&mut self, m: &Metrics) {
        let now = Instant::now();
        if now < self.last + self.every {
            return;
        }
        let events_in = Metrics::get(&m.events_in);
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-9);
        let rate = events_in.saturating_sub(self.last_in) as f64 / secs;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        tracing::info!("stats {}", stats_line(m, elapsed, rate));
        self.last = now;
        self.last_in = events_in;
    }
}

/// Loads each stage's plugin (or takes its override), creates its instance
/// with its parameters, and restores a processor's keyed state from the
/// checkpoint being resumed (missing or damaged state is an error).
fn load_stages(
    pipeline: &Pipeline,
    engine: &WasmEngine,
    cache: &ComponentCache,
    tables: &HashMap<String, Table>,
    restored: Option<&Checkpoint>,
    mut overrides: HashMap<String, Box<dyn StageLogic>>,
) -> Result<Vec<Box<dyn StageLogic>>> {
    let mut instances: Vec<Box<dyn StageLogic>> = Vec::new();
    let udfs = super::check::load_udfs(pipeline, engine, cache).map_err(|(_, errors)| {
        let text: Vec<String> = errors
            .iter()
            .map(|(i, e)| match e {
                Some(e) => format!("udfs.{}: {e}", pipeline.udfs[*i].name),
                None => format!("udfs.{}: the plugin was not found", pipeline.udfs[*i].name),
            })
            .collect();
        anyhow::anyhow!("{}", text.join("; "))
    })?;
    for stage in &pipeline.stages {
        if let Some(logic) = overrides.remove(&stage.name) {
            instances.push(logic);
            continue;
        }
        let plugin = StagePlugin::load(engine, cache, &stage.plugin, stage.limits.cpu_ms_per_call)
            .with_context(|| format!("stage `{}`", stage.name))?;
        tracing::debug!(stage = %stage.name, plugin = %plugin.label(), "plugin loaded");
        // The log budget reaches the instance (and `create`) this way: the
        // constructors do not take it.
        let log_budget = stage.limits.log_bytes_per_call();
        match plugin {
            StagePlugin::Transform(plugin) => {
                let instance = crate::plugin::with_log_budget(log_budget, || {
                    TransformInstance::with_udfs(
                        Arc::new(plugin),
                        &stage.name,
                        &stage.params,
                        stage.limits,
                        Some(udfs.clone()),
                    )
                })?;
                instances.push(Box::new(instance));
            }
            StagePlugin::Processor(plugin) => {
                let granted = stage
                    .tables
                    .iter()
                    .filter_map(|t| tables.get(t).map(|table| (t.clone(), table.clone())))
                    .collect();
                let instance = crate::plugin::with_log_budget(log_budget, || {
                    ProcessorInstance::new(
                        Arc::new(plugin),
                        &stage.name,
                        &stage.params,
                        stage.limits,
                        granted,
                    )
                })?;
                if let Some(cp) = restored {
                    if let Some(state) =
                        restore::stage_state(&pipeline.state_dir(), cp, &stage.name)?
                    {
                        let (entries, bytes) = state.size();
                        tracing::info!(stage = %stage.name, checkpoint = cp.id, entries, bytes, "state restored");
                        if let Ok(mut s) = instance.state().lock() {
                            *s = state;
                        }
                    }
                }
                instances.push(Box::new(instance));
            }
        }
    }
    Ok(instances)
}

/// What the summary names: (sink, file it wrote), and where dead letters
/// went when that is a file.
type SinkOutputs = (Vec<(String, String)>, Option<PathBuf>);

/// Opens and spawns every sink, table and the dead-letter destination.
/// Returns what the summary names: (sink, file it wrote) and where dead
/// letters went when that is a file. Fills `committed_by` (source → the
/// exactly-once sink that commits its progress, through `board`).
#[allow(clippy::too_many_arguments)]
fn spawn_sinks(
    pipeline: &Pipeline,
    graph: &mut Graph,
    tables: &HashMap<String, Table>,
    restored: Option<&Checkpoint>,
    report_tx: &Sender<Report>,
    metrics: &Arc<Metrics>,
    threads: &mut Vec<std::thread::JoinHandle<()>>,
    (board, committed_by): (&Arc<Handoffs>, &mut HashMap<String, String>),
    wrap: Option<&WrapSink>,
    watched: &mut Vec<Watched>,
) -> Result<SinkOutputs> {
    let dead_config: Box<dyn SinkConfig> = pipeline.dead_letter.clone().unwrap_or_else(|| {
        Box::new(FileSinkConfig {
            path: pipeline.state_dir().join("dead-letters.jsonl"),
            format: OutputFormat::Envelope,
        })
    });
    let dead_letter_path = dead_config.output_path().map(PathBuf::from);
    if let Some(path) = &dead_letter_path {
        super::dead_letter::make_private(path)?;
    }
    let mut specs: Vec<(String, Box<dyn SinkConfig>, usize)> = pipeline
        .sinks
        .iter()
        .map(|s| (s.name.clone(), s.config.clone(), s.inputs.len()))
        .collect();
    specs.push((DEAD_LETTER_SINK.to_string(), dead_config, graph.dead_inputs));
    let mut summary_outputs = Vec::new();
    let mut built: Vec<(String, Box<dyn Sink>, usize)> = Vec::new();
    for (name, config, inputs) in specs {
        if let Some(path) = config.output_path() {
            summary_outputs.push((name.clone(), path.display().to_string()));
        }
        let sink = config.build(&name)?;
        let sink = match wrap {
            Some(w) if name != DEAD_LETTER_SINK => w(&name, sink),
            _ => sink,
        };
        built.push((name.clone(), sink, inputs));
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
        let Some(rx) = graph.take_receiver(&name) else {
            continue;
        };
        let handoffs = match pipeline.sinks.iter().find(|s| s.name == name) {
            Some(def) if sink.exactly_once(&pipeline.name) => {
                let mut sources: Vec<String> = def
                    .inputs
                    .iter()
                    .flat_map(|i| upstream_sources(pipeline, i))
                    .collect();
                sources.sort();
                sources.dedup();
                for s in &sources {
                    if let Some(other) = committed_by.insert(s.clone(), name.clone()) {
                        anyhow::bail!("source `{s}` feeds two exactly-once sinks, `{other}` and `{name}`; its progress can be committed in one transaction only");
                    }
                }
                Some((board.clone(), sources))
            }
            _ => None,
        };
        if let Some(reload) = sink.hot_reload() {
            watched.push(Watched::sink(&name, reload));
        }
        let position = restored.and_then(|c| c.sinks.get(&name));
        sink.open(position)
            .with_context(|| format!("sink `{name}`"))?;
        let role = if pipeline.tables.iter().any(|t| t.name == name) {
            Role::Table
        } else {
            Role::Sink
        };
        let task = SinkTask {
            counts: (name != DEAD_LETTER_SINK).then(|| metrics.component(role, &name)),
            dead: graph.take_dead_outputs(&name),
            counted: name != DEAD_LETTER_SINK,
            name: name.clone(),
            sink,
            reports: report_tx.clone(),
            metrics: metrics.clone(),
            handoffs,
        };
        threads.push(spawn(&name, report_tx.clone(), move || {
            task.run(rx, inputs)
        })?);
    }
    Ok((summary_outputs, dead_letter_path))
}

/// The processors whose state lives in changelog topics: those fed by a
/// `kafka` source with `state: changelog`. Such a processor may read from
/// that one source only, since its state is split by that source's
/// partitions.
fn changelog_stages(
    pipeline: &Pipeline,
    processors: &[String],
) -> Result<(StageChangelogs, BTreeMap<String, Arc<Writers>>)> {
    let mut specs = HashMap::new();
    // One set of producers per source: its partitions' transactions span
    // every stage it feeds.
    let mut writers: BTreeMap<String, Arc<Writers>> = BTreeMap::new();
    for stage in processors {
        let sources = upstream_sources(pipeline, stage);
        let logged: Vec<(&String, ChangelogSpec)> = pipeline
            .sources
            .iter()
            .filter(|s| sources.contains(&s.name))
            .filter_map(|s| s.config.changelog().map(|c| (&s.name, c)))
            .collect();
        match logged.as_slice() {
            [] => {}
            [(source, spec)] if sources.len() == 1 => {
                tracing::info!(stage = %stage, source = %source, topic = %super::changelog::topic_name(&spec.group_id, stage), "state per partition of the source, kept in a changelog topic");
                let w = writers
                    .entry((*source).clone())
                    .or_insert_with(|| Arc::new(Writers::new(spec, Arc::default())))
                    .clone();
                specs.insert(stage.clone(), (spec.clone(), w));
            }
            _ => anyhow::bail!(
                "stage `{stage}` reads from sources {sources:?}, and {} of them keep state in a changelog (`state: changelog`): a processor's state is split by the partitions of one source, so it may read from that one source only (tables it looks up may come from others)",
                logged.len()
            ),
        }
    }
    Ok((specs, writers))
}

/// Per processor stage with its state in a changelog: the source's spec
/// and the producers shared with the other stages it feeds.
type StageChangelogs = HashMap<String, (ChangelogSpec, Arc<Writers>)>;

/// Spawns every stage on its instance. Returns what `--watch` reloads.
#[allow(clippy::too_many_arguments)]
fn spawn_stages(
    pipeline: &Pipeline,
    graph: &mut Graph,
    instances: Vec<Box<dyn StageLogic>>,
    tables: &HashMap<String, Table>,
    report_tx: &Sender<Report>,
    (metrics, tap): (&Arc<Metrics>, &Arc<TapHub>),
    threads: &mut Vec<std::thread::JoinHandle<()>>,
    (engine, cache): (&WasmEngine, &ComponentCache),
    swaps: Option<(&StageSwaps, &[String])>,
    changelogs: &HashMap<String, (ChangelogSpec, Arc<Writers>)>,
) -> Result<Vec<Watched>> {
    let mut watched = Vec::new();
    for (stage, instance) in pipeline.stages.iter().zip(instances) {
        let Some(rx) = graph.take_receiver(&stage.name) else {
            continue;
        };
        let (reload_tx, reload_rx) = std::sync::mpsc::sync_channel(1);
        if let Some((swaps, processors)) = swaps {
            swaps.add(
                &stage.name,
                stage.limits.cpu_ms_per_call,
                processors.contains(&stage.name),
                reload_tx.clone(),
            );
        }
        watched.push(Watched::stage(
            &stage.name,
            stage.plugin.clone(),
            stage.limits.cpu_ms_per_call,
            reload_tx,
            (engine.clone(), cache.clone()),
        ));
        let task = StageTask {
            name: stage.name.clone(),
            instance,
            policy: stage.on_error,
            inputs: stage.inputs.len(),
            rx,
            outputs: graph.take_outputs(&stage.name),
            dead: graph.take_dead_outputs(&stage.name),
            reload: reload_rx,
            reports: report_tx.clone(),
            metrics: metrics.clone(),
            tap: tap.clone(),
            counts: metrics.component(Role::Stage, &stage.name),
            event_time: stage.event_time.clone(),
            state_dir: pipeline.state_dir(),
            tables: stage
                .tables
                .iter()
                .filter_map(|t| tables.get(t).map(|table| (t.clone(), table.clone())))
                .collect(),
            partitioned: changelogs.get(&stage.name).map(|(spec, writers)| {
                Partitioned::new(
                    Changelog::new(spec, &stage.name, writers.clone()),
                    StateLimits::from(&stage.limits),
                )
            }),
            dropped: 0,
        };
        // Instances this thread recreates after a failure get the stage's
        // log budget too.
        let log_budget = stage.limits.log_bytes_per_call();
        threads.push(spawn(&stage.name, report_tx.clone(), move || {
            crate::plugin::set_thread_log_budget(log_budget);
            task.run()
        })?);
    }
    Ok(watched)
}

/// Runs `f` on a named thread; an error or panic becomes a `Failed` report.
fn spawn(
    name: &str,
    reports: Sender<Report>,
    f: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let component = name.to_string();
    // The caller's span (a served pipeline's run) follows onto the thread,
    // so its lines stay attributed to the run.
    let span = tracing::Span::current();
    // So does its tenant's CPU account (see `fair`).
    let account = super::fair::current();
    std::thread::Builder::new()
        .name(format!("sluice-{name}"))
        .spawn(move || {
            let _in_run = span.enter();
            super::fair::enter(account);
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
