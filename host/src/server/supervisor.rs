//! Running pipelines: each on its own thread with the same runner as
//! `sluice run`, stop and pause flags the API sets, and the run's counters,
//! which the status and `/metrics` read while it goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Pipeline;
use crate::pipeline::tap::TapHub;
use crate::pipeline::{
    self, ComponentCounts, Metrics, RunOptions, SourceProgress, StageSwaps, SwapError,
};
use crate::plugin::{ComponentCache, WasmEngine};

use super::store::now_ms;

/// Where a pipeline's run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not running (never started, or stopped on request).
    Stopped,
    /// Running.
    Running,
    /// Asked to stop; draining and taking a last checkpoint.
    Stopping,
    /// Running, but its sources read nothing (checkpoints go on).
    Paused,
    /// Its bounded sources drained and the run ended by itself.
    Finished,
    /// The run ended with an error, or could not start.
    Failed,
}

/// A pipeline's run as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Where the run is.
    pub state: State,
    /// When it got there, Unix milliseconds.
    pub since_ms: u64,
    /// Events read by sources in this run.
    pub events_in: u64,
    /// Events written by sinks in this run.
    pub events_out: u64,
    /// Events dead-lettered in this run.
    pub dead_letters: u64,
    /// Events skipped under `on_error: skip` in this run.
    pub skipped: u64,
    /// Plugin instances replaced after a failure in this run.
    pub plugin_restarts: u64,
    /// Bounded sources: read so far / in all (0 = unknown).
    pub progress_done: u64,
    /// See `progress_done`.
    pub progress_total: u64,
    /// Checkpoints committed in this run.
    pub checkpoints: u64,
    /// When this run last committed one, Unix milliseconds.
    pub last_checkpoint_ms: Option<u64>,
    /// Runs started since the server started (1 + restarts).
    pub runs: u64,
    /// Each source's, stage's, sink's and table's figures.
    pub components: Vec<Component>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One source's, stage's, sink's or table's figures in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// `source`, `stage`, `sink` or `table`.
    pub role: &'static str,
    /// Its name in the pipeline file.
    pub name: String,
    /// Events received (0 for sources).
    pub events_in: u64,
    /// Events passed on (sources: read; sinks: written).
    pub events_out: u64,
    /// Stages: input events that produced nothing.
    pub filtered: u64,
    /// Events dead-lettered here.
    pub dead_letters: u64,
    /// Events skipped here.
    pub skipped: u64,
    /// Stages: plugin instances replaced after a failure.
    pub restarts: u64,
    /// Stages: CPU time inside plugin calls, milliseconds.
    pub cpu_ms: u64,
    /// Stages: the plugin instance's memory after its last batch, bytes.
    pub memory_bytes: u64,
    /// Bounded sources: read so far / in all (0 = unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<(u64, u64)>,
    /// Unbounded sources: how far behind the upstream's end it reads, once
    /// measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<Lag>,
}

/// A source's lag in a status.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lag {
    /// How far behind.
    pub value: u64,
    /// `messages` or `wal_bytes`.
    pub unit: &'static str,
}

impl Component {
    fn of(c: &ComponentCounts, progress: &[SourceProgress]) -> Self {
        let source = (c.role_word() == "source")
            .then(|| progress.iter().find(|p| p.name == c.name))
            .flatten();
        Self {
            role: c.role_word(),
            name: c.name.clone(),
            events_in: c.events_in,
            events_out: c.events_out,
            filtered: c.filtered,
            dead_letters: c.dead_lettered,
            skipped: c.skipped,
            restarts: c.restarts,
            cpu_ms: c.cpu_ns / 1_000_000,
            memory_bytes: c.memory_bytes,
            progress: source.map(|p| (p.done, p.total)),
            lag: source.and_then(|p| p.lag).map(|(value, unit)| Lag {
                value,
                unit: unit.word(),
            }),
        }
    }
}

impl Status {
    /// A pipeline with no run since the server started.
    pub fn idle(state: State) -> Self {
        Self {
            state,
            since_ms: now_ms(),
            events_in: 0,
            events_out: 0,
            dead_letters: 0,
            skipped: 0,
            plugin_restarts: 0,
            progress_done: 0,
            progress_total: 0,
            checkpoints: 0,
            last_checkpoint_ms: None,
            runs: 0,
            components: Vec::new(),
            error: None,
        }
    }

    /// The figures of `m` right now.
    fn figures(&mut self, m: &Metrics) {
        self.events_in = Metrics::get(&m.events_in);
        self.events_out = Metrics::get(&m.events_out);
        self.dead_letters = Metrics::get(&m.dead_letters);
        self.skipped = Metrics::get(&m.skipped);
        self.plugin_restarts = Metrics::get(&m.instance_restarts);
        self.checkpoints = Metrics::get(&m.checkpoints);
        self.last_checkpoint_ms = Some(Metrics::get(&m.last_checkpoint_ms)).filter(|&t| t > 0);
        let progress = m.progress();
        (self.progress_done, self.progress_total) = progress
            .iter()
            .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
        self.components = m
            .components()
            .iter()
            .map(|c| Component::of(c, &progress))
            .collect();
    }
}

/// A run's status with its figures, for `/metrics`.
pub struct Snapshot {
    /// `tenant/name`.
    pub key: String,
    /// The status, figures included.
    pub status: Status,
}

struct Run {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<Status>>,
    metrics: Option<Arc<Metrics>>,
    /// The running stages, for swapping their plugins.
    swaps: Option<Arc<StageSwaps>>,
    /// Stage → SHA-256 of the plugin build it runs (or was last sent).
    builds: HashMap<String, String>,
    /// This run's own tap (closed when the run ends), and the sources and
    /// stages it can tap.
    tap: Option<(Arc<TapHub>, Vec<String>)>,
    /// What its bounds let it hold, MiB, counted against its tenant's
    /// `max_memory_mb` while it is live.
    memory_mb: u64,
}

/// Whose run it is and what it may use.
#[derive(Debug, Clone, Copy)]
pub struct Share<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Its CPU weight.
    pub cpu_weight: u32,
    /// Its `max_memory_mb`.
    pub max_memory_mb: u64,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its footprint with the tenant's other live runs' would pass
    /// `max_memory_mb`.
    #[error("over quota `max_memory_mb`: {requested} MiB requested, the limit is {limit}")]
    Memory {
        /// The quota.
        limit: u64,
        /// The tenant's live runs' footprints with this one's.
        requested: u64,
    },
    /// The run's thread could not be spawned.
    #[error("cannot start the run's thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Stage → SHA-256 of its plugin file, as the run will load it.
fn stage_builds(pipeline: &Pipeline) -> HashMap<String, String> {
    use sha2::{Digest, Sha256};
    pipeline
        .stages
        .iter()
        .map(|st| {
            let sha = std::fs::read(&st.plugin)
                .map(|b| hex::encode(Sha256::digest(&b)))
                .unwrap_or_default();
            (st.name.clone(), sha)
        })
        .collect()
}

impl Run {
    fn is_live(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn status(&self) -> Status {
        let mut st = lock(&self.status).clone();
        if let Some(m) = &self.metrics {
            st.figures(m);
        }
        if st.state == State::Running && self.pause.load(Ordering::SeqCst) {
            st.state = State::Paused;
        }
        st
    }
}

/// Every pipeline's run, by `tenant/name`.
pub struct Supervisor {
    engine: WasmEngine,
    cache: ComponentCache,
    runs: Mutex<HashMap<String, Run>>,
    /// The tenants' shares of the CPU.
    pub cpu: Arc<crate::pipeline::fair::Governor>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a status lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    /// A supervisor that runs pipelines on `engine` with `cache`.
    pub fn new(engine: WasmEngine, cache: ComponentCache) -> Self {
        Self {
            engine,
            cache,
            runs: Mutex::new(HashMap::new()),
            cpu: crate::pipeline::fair::Governor::for_this_host(),
        }
    }

    /// Starts `pipeline` under `key` unless it is already running; with its
    /// sources paused when `paused`. Its threads share the tenant's CPU
    /// account, of weight `cpu_weight`. Refused when its footprint and the
    /// tenant's other live runs' pass `max_memory_mb`: checked under the
    /// lock that registers the run, so two starts cannot both fit.
    pub fn start(
        &self,
        key: &str,
        pipeline: Pipeline,
        paused: bool,
        share: Share<'_>,
    ) -> Result<(), StartError> {
        let mut runs = lock(&self.runs);
        if runs.get(key).is_some_and(Run::is_live) {
            return Ok(());
        }
        let memory_mb = self.fits(&runs, key, &pipeline, share)?;
        let (tenant, cpu_weight) = (share.tenant, share.cpu_weight);
        let runs_so_far = runs.get(key).map_or(0, |r| lock(&r.status).runs);
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(paused));
        let mut fresh = Status::idle(State::Running);
        fresh.runs = runs_so_far + 1;
        let status = Arc::new(Mutex::new(fresh));
        let metrics = Arc::new(Metrics::default());
        let swaps = Arc::new(StageSwaps::default());
        let builds = stage_builds(&pipeline);
        let tap = Arc::new(TapHub::default());
        let tappable: Vec<String> = pipeline
            .sources
            .iter()
            .map(|s| s.name.clone())
            .chain(pipeline.stages.iter().map(|s| s.name.clone()))
            .collect();
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let options = RunOptions {
            watch: false,
            stop: stop.clone(),
            on_status: None,
            // The server's own log would interleave every tenant's lines.
            stats_every: None,
            metrics: Some(metrics.clone()),
            pause: Some(pause.clone()),
            swaps: Some(swaps.clone()),
            tap: Some(tap.clone()),
        };
        let thread_tap = tap.clone();
        let thread_status = status.clone();
        let thread_stop = stop.clone();
        let name = key.to_string();
        let account = self.cpu.account(tenant, cpu_weight);
        let thread = std::thread::Builder::new()
            .name(format!("serve-{key}"))
            .spawn(move || {
                crate::pipeline::fair::enter(Some(account));
                // Every line of the run, on this thread and the runner's,
                // is filed under the pipeline (see `super::logs`).
                let span = tracing::error_span!(super::logs::RUN_SPAN, key = %name);
                let _in_run = span.enter();
                tracing::info!(pipeline = %name, "pipeline starting");
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pipeline::run(&pipeline, &engine, &cache, options)
                }));
                // Its taps end with it (a restart makes a new hub).
                thread_tap.close();
                let mut st = lock(&thread_status);
                st.since_ms = now_ms();
                match outcome {
                    Ok(Ok(summary)) => {
                        st.state = if st.error.is_some() {
                            // Halted by the server (a byte quota): say so.
                            State::Failed
                        } else if thread_stop.load(Ordering::SeqCst) {
                            State::Stopped
                        } else {
                            State::Finished
                        };
                        tracing::info!(pipeline = %name, state = ?st.state, events_in = summary.events_in, "pipeline ended");
                    }
                    Ok(Err(e)) => {
                        st.state = State::Failed;
                        st.error = Some(format!("{e:#}"));
                        tracing::warn!(pipeline = %name, error = %format!("{e:#}"), "pipeline failed");
                    }
                    Err(_) => {
                        st.state = State::Failed;
                        st.error = Some("the run panicked (see the server log)".into());
                    }
                }
            })?;
        runs.insert(
            key.to_string(),
            Run {
                stop,
                pause,
                thread: Some(thread),
                status,
                metrics: Some(metrics),
                swaps: Some(swaps),
                builds,
                tap: Some((tap, tappable)),
                memory_mb,
            },
        );
        Ok(())
    }

    /// Swaps, in the live run `key`, the plugin of each stage whose file in
    /// `pipeline` is another build than the one it runs; each stage switches
    /// at its next batch. Returns the stages swapped (none: nothing changed).
    /// On an error nothing was sent, and the caller restarts the run instead.
    pub fn hot_swap(&self, key: &str, pipeline: &Pipeline) -> Result<Vec<String>, SwapError> {
        let wanted = stage_builds(pipeline);
        let (swaps, changes) = {
            let runs = lock(&self.runs);
            let run = runs
                .get(key)
                .filter(|r| r.thread.as_ref().is_some_and(|t| !t.is_finished()));
            let Some((run, swaps)) = run.and_then(|r| r.swaps.clone().map(|s| (r, s))) else {
                return Err(SwapError::NotRunning);
            };
            let changes: Vec<(String, std::path::PathBuf)> = pipeline
                .stages
                .iter()
                .filter(|st| run.builds.get(&st.name) != wanted.get(&st.name))
                .map(|st| (st.name.clone(), st.plugin.clone()))
                .collect();
            (swaps, changes)
        };
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<(String, &std::path::Path)> = changes
            .iter()
            .map(|(n, p)| (n.clone(), p.as_path()))
            .collect();
        swaps.swap(&self.engine, &self.cache, &refs)?;
        if let Some(run) = lock(&self.runs).get_mut(key) {
            for (stage, _) in &changes {
                if let Some(sha) = wanted.get(stage) {
                    run.builds.insert(stage.clone(), sha.clone());
                }
            }
        }
        Ok(changes.into_iter().map(|(n, _)| n).collect())
    }

    /// Records that `key` could not start, and why.
    pub fn failed(&self, key: &str, error: String) {
        let mut st = Status::idle(State::Failed);
        st.error = Some(error);
        lock(&self.runs).insert(
            key.to_string(),
            Run {
                stop: Arc::new(AtomicBool::new(true)),
                pause: Arc::new(AtomicBool::new(false)),
                thread: None,
                status: Arc::new(Mutex::new(st)),
                metrics: None,
                swaps: None,
                builds: HashMap::new(),
                tap: None,
                memory_mb: 0,
            },
        );
    }

    /// Asks `key` to stop and waits up to `wait` for it to drain and take
    /// its last checkpoint. True when it is no longer running.
    pub fn stop(&self, key: &str, wait: Duration) -> bool {
        let thread = {
            let mut runs = lock(&self.runs);
            let Some(run) = runs.get_mut(key) else {
                return true;
            };
            run.stop.store(true, Ordering::SeqCst);
            let mut st = lock(&run.status);
            if st.state == State::Running {
                st.state = State::Stopping;
                st.since_ms = now_ms();
            }
            drop(st);
            run.thread.take()
        };
        let Some(thread) = thread else {
            return true;
        };
        let deadline = Instant::now() + wait;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if thread.is_finished() {
            let _ = thread.join();
            true
        } else {
            // Still draining: keep the handle so a later start waits for it.
            if let Some(run) = lock(&self.runs).get_mut(key) {
                run.thread = Some(thread);
            }
            false
        }
    }

    /// Stops `key` because of `why` (a quota): it drains and checkpoints
    /// like a stop, then shows as failed with `why`.
    pub fn halt(&self, key: &str, why: &str) {
        if let Some(run) = lock(&self.runs).get(key) {
            lock(&run.status).error = Some(why.to_string());
        }
        self.stop(key, Duration::from_secs(20));
    }

    /// `pipeline`'s footprint, if it fits beside the tenant's live runs
    /// other than `key`'s own (which it would replace).
    fn fits(
        &self,
        runs: &HashMap<String, Run>,
        key: &str,
        pipeline: &Pipeline,
        share: Share<'_>,
    ) -> Result<u64, StartError> {
        let memory_mb = crate::pipeline::footprint(pipeline, &self.engine, &self.cache).total_mb();
        let prefix = format!("{}/", share.tenant);
        let others: u64 = runs
            .iter()
            .filter(|(k, r)| k.starts_with(&prefix) && k.as_str() != key && r.is_live())
            .map(|(_, r)| r.memory_mb)
            .sum();
        let requested = others.saturating_add(memory_mb);
        if requested > share.max_memory_mb {
            return Err(StartError::Memory {
                limit: share.max_memory_mb,
                requested,
            });
        }
        Ok(memory_mb)
    }

    /// Whether `pipeline` would start as `key` within its tenant's
    /// `max_memory_mb` now, for a request to refuse before it changes
    /// anything ([`Self::start`] checks again).
    pub fn check_memory(
        &self,
        key: &str,
        pipeline: &Pipeline,
        share: Share<'_>,
    ) -> Result<(), StartError> {
        self.fits(&lock(&self.runs), key, pipeline, share).map(drop)
    }

    /// What `tenant`'s live runs' bounds add up to, MiB.
    pub fn memory_mb(&self, tenant: &str) -> u64 {
        let prefix = format!("{tenant}/");
        lock(&self.runs)
            .iter()
            .filter(|(k, r)| k.starts_with(&prefix) && r.is_live())
            .map(|(_, r)| r.memory_mb)
            .sum()
    }

    /// The keys of runs with a live thread, sorted.
    pub fn live_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.runs)
            .iter()
            .filter(|(_, r)| r.thread.as_ref().is_some_and(|t| !t.is_finished()))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Forgets `key` (after it stopped).
    pub fn remove(&self, key: &str) {
        lock(&self.runs).remove(key);
    }

    /// `key`'s status, if it has run since the server started.
    pub fn status(&self, key: &str) -> Option<Status> {
        lock(&self.runs).get(key).map(Run::status)
    }

    /// Pauses (`true`) or resumes `key`'s live run; false when it has none.
    pub fn set_paused(&self, key: &str, paused: bool) -> bool {
        let runs = lock(&self.runs);
        match runs.get(key) {
            Some(run) if run.thread.as_ref().is_some_and(|t| !t.is_finished()) => {
                run.pause.store(paused, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Every run whose key starts with `prefix` (`""`: all), sorted by key.
    pub fn snapshots(&self, prefix: &str) -> Vec<Snapshot> {
        let runs = lock(&self.runs);
        let mut out: Vec<Snapshot> = runs
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, r)| Snapshot {
                key: k.clone(),
                status: r.status(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The tap of `key`'s live run and the components it can tap; `None`
    /// when it has no live run.
    pub fn tap(&self, key: &str) -> Option<(Arc<TapHub>, Vec<String>)> {
        lock(&self.runs)
            .get(key)
            .filter(|r| r.thread.as_ref().is_some_and(|t| !t.is_finished()))
            .and_then(|r| r.tap.clone())
    }

    /// Whether `key` has a live thread.
    pub fn is_live(&self, key: &str) -> bool {
        lock(&self.runs)
            .get(key)
            .and_then(|r| r.thread.as_ref())
            .is_some_and(|t| !t.is_finished())
    }

    /// Stops everything (the server is shutting down): each run drains and
    /// takes its last checkpoint; desired states are left as they are, so
    /// the next start resumes them.
    pub fn shutdown(&self, wait: Duration) {
        let keys: Vec<String> = lock(&self.runs).keys().cloned().collect();
        for key in &keys {
            if let Some(run) = lock(&self.runs).get(key) {
                run.stop.store(true, Ordering::SeqCst);
            }
        }
        let deadline = Instant::now() + wait;
        for key in &keys {
            self.stop(key, deadline.saturating_duration_since(Instant::now()));
        }
    }
}
