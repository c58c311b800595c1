//! Running pipelines: each on its own thread with the same runner as
//! `sluice run`, a stop flag the API sets, and a status the runner's
//! status callback keeps current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Pipeline;
use crate::pipeline::{self, RunOptions, RunStatus};
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
    /// Bounded sources: read so far / in all (0 = unknown).
    pub progress_done: u64,
    /// See `progress_done`.
    pub progress_total: u64,
    /// Checkpoints committed in this run (known when it ends).
    pub checkpoints: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Status {
    fn new(state: State) -> Self {
        Self {
            state,
            since_ms: now_ms(),
            events_in: 0,
            events_out: 0,
            dead_letters: 0,
            progress_done: 0,
            progress_total: 0,
            checkpoints: None,
            error: None,
        }
    }

    fn figures(&mut self, s: &RunStatus) {
        self.events_in = s.events_in;
        self.events_out = s.events_out;
        self.dead_letters = s.dead_letters;
        self.progress_done = s.progress_done;
        self.progress_total = s.progress_total;
    }
}

struct Run {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<Status>>,
}

/// Every pipeline's run, by `tenant/name`.
pub struct Supervisor {
    engine: WasmEngine,
    cache: ComponentCache,
    runs: Mutex<HashMap<String, Run>>,
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
        }
    }

    /// Starts `pipeline` under `key` unless it is already running.
    pub fn start(&self, key: &str, pipeline: Pipeline) -> std::io::Result<()> {
        let mut runs = lock(&self.runs);
        if let Some(run) = runs.get(key) {
            if run.thread.as_ref().is_some_and(|t| !t.is_finished()) {
                return Ok(());
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(Status::new(State::Running)));
        let on_status: pipeline::StatusCallback = {
            let status = status.clone();
            Arc::new(move |s: &RunStatus| lock(&status).figures(s))
        };
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let options = RunOptions {
            watch: false,
            stop: stop.clone(),
            on_status: Some(on_status),
            // The server's own log would interleave every tenant's lines.
            stats_every: None,
        };
        let thread_status = status.clone();
        let thread_stop = stop.clone();
        let name = key.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("serve-{key}"))
            .spawn(move || {
                tracing::info!(pipeline = %name, "pipeline starting");
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pipeline::run(&pipeline, &engine, &cache, options)
                }));
                let mut st = lock(&thread_status);
                st.since_ms = now_ms();
                match outcome {
                    Ok(Ok(summary)) => {
                        st.state = if thread_stop.load(Ordering::SeqCst) {
                            State::Stopped
                        } else {
                            State::Finished
                        };
                        st.events_in = summary.events_in;
                        st.events_out = summary.events_out;
                        st.dead_letters = summary.dead_letters;
                        st.checkpoints = Some(summary.checkpoints);
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
                thread: Some(thread),
                status,
            },
        );
        Ok(())
    }

    /// Records that `key` could not start, and why.
    pub fn failed(&self, key: &str, error: String) {
        let mut st = Status::new(State::Failed);
        st.error = Some(error);
        lock(&self.runs).insert(
            key.to_string(),
            Run {
                stop: Arc::new(AtomicBool::new(true)),
                thread: None,
                status: Arc::new(Mutex::new(st)),
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

    /// Forgets `key` (after it stopped).
    pub fn remove(&self, key: &str) {
        lock(&self.runs).remove(key);
    }

    /// `key`'s status, if it has run since the server started.
    pub fn status(&self, key: &str) -> Option<Status> {
        lock(&self.runs).get(key).map(|r| lock(&r.status).clone())
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
