//! `wasm` sink: a custom sink connector, a component exporting the `sink`
//! world of the plugin contract, run in the plugin sandbox.
//!
//! Events the target refuses come back from `write` as per-event
//! rejections and are dead-lettered with the connector's reason. `retry`
//! from `write` or `flush` is retried here with backoff (the pipeline
//! waits). A trap, limit breach or invalid output discards the instance: a
//! fresh one is opened at the last flushed position and the batches written
//! since that flush are written to it again (their rejections were routed
//! already), so nothing is lost. More than [`MAX_RESTARTS`] failures in a
//! row fail the pipeline, and a rerun resumes from the last checkpoint.
//!
//! Under `run --watch` a new build of the plugin file is swapped in at a
//! checkpoint boundary (see [`WasmSink::take_new_build`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::connector::{
    parse_sink, Backoff, ConfigIssue, HotReload, Rejected, Sink, SinkConfig, SinkKind,
};
use crate::event::Batch;
use crate::plugin::component::World;
use crate::plugin::connector::{self, ConnectorInstance, ConnectorPlugin};
use crate::plugin::net::{Grants, HttpLimits};
use crate::plugin::{CallFailure, Limits};

/// Failures in a row (traps, limit breaches, invalid outputs) after which
/// the connector stops the pipeline instead of restarting again.
pub const MAX_RESTARTS: u32 = 5;

/// Most bytes of written-but-unflushed batches kept to replay after a
/// crash. Past it a crash before the next flush fails the pipeline (and the
/// rerun replays from the checkpoint) instead.
const MAX_REPLAY_BYTES: usize = 256 << 20;

/// Configuration of a `wasm` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSinkConfig {
    /// The connector component: a name found in the plugin search path, or
    /// a path to its `.wasm` file (relative to the pipeline file).
    pub plugin: String,
    /// Parameters handed to the connector's `open`, as text.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// What the connector may reach: `http: ["host:port", ...]`. Nothing by
    /// default.
    #[serde(default)]
    pub grants: Grants,
    /// Sandbox limits, as for a stage.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Timeouts and the response-size bound of its HTTP requests.
    #[serde(default)]
    pub http_limits: HttpLimits,
    /// First delay before retrying a call, in milliseconds.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest delay between retries, in milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// The resolved plugin file.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

fn default_initial_backoff_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

impl WasmSinkConfig {
    fn limits(&self) -> Limits {
        self.limits.unwrap_or_default()
    }

    fn file(&self) -> Result<&PathBuf> {
        self.file
            .as_ref()
            .with_context(|| format!("plugin `{}` was not resolved", self.plugin))
    }
}

/// The `wasm` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "wasm",
    summary: "a custom sink connector: a Wasm component exporting the `sink` world",
    parse: parse_sink::<WasmSinkConfig>,
};

impl SinkConfig for WasmSinkConfig {
    fn sandbox_limits(&self) -> Option<Limits> {
        Some(self.limits())
    }

    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        self.grants.endpoints()
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        self.grants
            .check()
            .map_err(|m| ConfigIssue::at("grants", m))
    }

    fn resolve_plugin(
        &mut self,
        resolve: &dyn Fn(&str) -> Result<PathBuf, String>,
    ) -> Result<(), ConfigIssue> {
        self.file = Some(resolve(&self.plugin).map_err(|m| ConfigIssue::at("plugin", m))?);
        Ok(())
    }

    fn check_files(&self) -> Result<(), ConfigIssue> {
        let file = self
            .file()
            .map_err(|e| ConfigIssue::at("plugin", e.to_string()))?;
        connector::load_connector(file, World::Sink, &self.grants, &self.limits())
            .map(|_| ())
            .map_err(|e| ConfigIssue::at("plugin", format!("{e:#}")))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        let plugin =
            connector::load_connector(self.file()?, World::Sink, &self.grants, &self.limits())?;
        let instance = ConnectorInstance::new(
            plugin,
            name,
            &connector::params_text(&self.params),
            self.limits(),
            self.grants.clone(),
            self.http_limits,
        );
        Ok(Box::new(WasmSink {
            name: name.to_string(),
            instance,
            backoff: Backoff::from_millis(self.initial_backoff_ms, self.max_backoff_ms),
            flushed: None,
            pending: Vec::new(),
            pending_bytes: 0,
            replayable: true,
            at_boundary: true,
            new_build: Arc::default(),
            reload: Some((self.clone(), self.file()?.clone())),
        }))
    }

    fn fingerprint_text(&self) -> String {
        use sha2::Digest;
        let params = serde_json::to_vec(&self.params).unwrap_or_default();
        let hash = sha2::Sha256::digest(&params);
        format!(
            "wasm sink {} params sha256 {}",
            self.plugin,
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

/// A running `wasm` sink.
pub struct WasmSink {
    name: String,
    instance: ConnectorInstance,
    backoff: Backoff,
    /// What the last successful flush returned (or the checkpoint's).
    flushed: Option<Vec<u8>>,
    /// Batches written since that flush, to replay after a crash.
    pending: Vec<Arc<Batch>>,
    pending_bytes: usize,
    /// False once `pending` outgrew [`MAX_REPLAY_BYTES`].
    replayable: bool,
    /// True from a flush (or the open) to the next write: nothing is
    /// written since the position in `flushed`.
    at_boundary: bool,
    /// A new build of the plugin loaded by `run --watch`, waiting for a
    /// checkpoint boundary.
    new_build: Arc<Mutex<Option<Arc<ConnectorPlugin>>>>,
    /// What [`Sink::hot_reload`] needs to load new builds (taken by it).
    reload: Option<(WasmSinkConfig, PathBuf)>,
}

impl WasmSink {
    /// Waits before calling again, or fails the pipeline.
    fn failed(&mut self, failure: CallFailure, attempt: &mut u32) -> Result<()> {
        *attempt += 1;
        match failure {
            CallFailure::Fatal { .. } | CallFailure::Init { .. } => {
                Err(anyhow::Error::new(failure))
            }
            CallFailure::Retry { .. } => {
                let wait = self.backoff.delay(*attempt);
                tracing::warn!(sink = %self.name, attempt = *attempt, "{failure}; retrying in {wait:?}");
                std::thread::sleep(wait);
                Ok(())
            }
            _ => {
                if *attempt > MAX_RESTARTS {
                    return Err(anyhow::Error::new(failure)).with_context(|| {
                        format!(
                            "sink `{}` failed {} times in a row; a rerun resumes from the last checkpoint",
                            self.name, *attempt
                        )
                    });
                }
                if !self.replayable {
                    return Err(anyhow::Error::new(failure)).with_context(|| {
                        format!(
                            "sink `{}` crashed with more than {MAX_REPLAY_BYTES} bytes written since its last flush, too many to replay; a rerun resumes from the last checkpoint",
                            self.name
                        )
                    });
                }
                let wait = self.backoff.delay(*attempt);
                tracing::warn!(
                    sink = %self.name,
                    restart = *attempt,
                    "{failure}; reopening the connector at its last flush and writing the {} batches since again in {wait:?} (restart {} of at most {MAX_RESTARTS} in a row)",
                    self.pending.len(),
                    *attempt
                );
                std::thread::sleep(wait);
                Ok(())
            }
        }
    }

    /// Swaps in a new build waiting from `run --watch`, if any. Called only
    /// at a checkpoint boundary, before the first write after a flush: the
    /// old instance has flushed and its position gone to the checkpoint, so
    /// the new one opens at that position with nothing to replay, and every
    /// event after it goes to the new build. A build that fails to open
    /// (refuses its params, traps) is refused and the old instance goes on.
    fn take_new_build(&mut self) {
        let Some(plugin) = self.new_build.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let old = self.instance.label();
        let old_hash = hex::encode(&self.instance.plugin().sha256[..4]);
        let new_hash = hex::encode(&plugin.sha256[..4]);
        let mut fresh = self.instance.with_plugin(plugin);
        let new = fresh.label();
        match fresh.open(self.flushed.as_deref()) {
            Ok(()) => {
                let at = match &self.flushed {
                    Some(p) => position_summary(p),
                    None => "the start (no position yet)".into(),
                };
                tracing::info!(
                    sink = %self.name,
                    "hot-swapped connector at a checkpoint boundary: build sha256 {old_hash} -> sha256 {new_hash}, opened at {at}, now {new}"
                );
                self.instance = fresh;
            }
            Err(e) => tracing::error!(
                sink = %self.name,
                "keeping {old}: the new build sha256 {new_hash} was refused: {e}"
            ),
        }
    }

    /// Reopens a discarded instance at the last flush and writes again
    /// what it had been given since.
    fn ensure_open(&mut self) -> Result<(), CallFailure> {
        if self.instance.is_open() {
            return Ok(());
        }
        self.instance.open(self.flushed.as_deref())?;
        for batch in &self.pending {
            // Their rejections were dead-lettered the first time.
            let mut attempt = 0;
            loop {
                match self.instance.write(&batch.events) {
                    Ok(_) => break,
                    Err(f @ CallFailure::Retry { .. }) => {
                        attempt += 1;
                        let wait = self.backoff.delay(attempt);
                        tracing::warn!(sink = %self.name, "{f}; retrying in {wait:?}");
                        std::thread::sleep(wait);
                    }
                    Err(f) => return Err(f),
                }
            }
        }
        Ok(())
    }
}

impl Sink for WasmSink {
    fn plugin_identity(&self) -> Option<(String, String)> {
        // The host's label leads: the claimed name can be faked.
        let plugin = self.instance.plugin();
        Some((plugin.label(), plugin.info.version.clone()))
    }

    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.flushed = position
            .filter(|v| !v.is_null())
            .map(connector::position_from_json)
            .transpose()
            .map_err(|e| anyhow::anyhow!("sink `{}`: {e}", self.name))?;
        self.instance
            .open(self.flushed.as_deref())
            .map_err(anyhow::Error::new)
    }

    fn hot_reload(&mut self) -> Option<HotReload> {
        let (config, path) = self.reload.take()?;
        let watched = path.clone();
        let slot = self.new_build.clone();
        let load = move || -> Result<()> {
            let plugin =
                connector::load_connector(&path, World::Sink, &config.grants, &config.limits())?;
            // The newest build wins if two arrive between boundaries.
            *slot
                .lock()
                .map_err(|_| anyhow::anyhow!("the sink's reload slot is poisoned"))? = Some(plugin);
            Ok(())
        };
        Some(HotReload {
            path: watched,
            load: Box::new(load),
        })
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        if self.at_boundary {
            self.take_new_build();
            self.at_boundary = false;
        }
        let mut attempt = 0;
        loop {
            let result = self
                .ensure_open()
                .and_then(|()| self.instance.write(&batch.events));
            match result {
                Ok(refused) => {
                    for r in refused {
                        rejected.push(batch, r.index as usize, r.reason);
                    }
                    if self.replayable {
                        self.pending_bytes += batch.events.data.len();
                        self.pending.push(batch.clone());
                        if self.pending_bytes > MAX_REPLAY_BYTES {
                            self.replayable = false;
                            self.pending.clear();
                        }
                    }
                    return Ok(());
                }
                Err(f) => self.failed(f, &mut attempt)?,
            }
        }
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        let mut attempt = 0;
        loop {
            let result = self.ensure_open().and_then(|()| self.instance.flush());
            match result {
                Ok(position) => {
                    self.pending.clear();
                    self.pending_bytes = 0;
                    self.replayable = true;
                    self.at_boundary = true;
                    let value = connector::position_to_json(&position);
                    self.flushed = Some(position);
                    return Ok(value);
                }
                Err(f) => self.failed(f, &mut attempt)?,
            }
        }
    }
}

/// A position for a log line: its text when short and readable, else its
/// size (positions are opaque and may be up to 1 MiB).
fn position_summary(position: &[u8]) -> String {
    match std::str::from_utf8(position) {
        Ok(t) if t.len() <= 80 && !t.chars().any(char::is_control) => format!("position {t:?}"),
        _ => format!("a position of {} bytes", position.len()),
    }
}
