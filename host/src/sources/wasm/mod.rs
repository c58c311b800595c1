//! `wasm` source: a custom source connector, a component exporting the
//! `source` world of the plugin contract, run in the plugin sandbox.
//!
//! Its positions are opaque bytes, checkpointed like any source's and handed
//! back to `open` on a rerun. A trap, limit breach or invalid output fails
//! that call only: the instance is discarded and a fresh one is opened at
//! the position after the last event the pipeline received (what the next
//! checkpoint records, so nothing is lost or repeated), after a backoff.
//! More than [`MAX_RESTARTS`] failures in a row fail the pipeline, and a
//! rerun resumes from the last checkpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::connector::{
    parse_source, Backoff, ConfigIssue, Malformed, Polled, Source, SourceConfig, SourceContext,
    SourceKind,
};
use crate::event::Batch;
use crate::plugin::component::World;
use crate::plugin::connector::{self, ConnectorInstance};
use crate::plugin::net::{Grants, HttpLimits};
use crate::plugin::{CallFailure, Limits};

/// Failures in a row (traps, limit breaches, invalid outputs) after which
/// the connector stops the pipeline instead of restarting again.
pub const MAX_RESTARTS: u32 = 5;

/// Configuration of a `wasm` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSourceConfig {
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
    /// Sandbox limits, as for a stage (`limits:` in docs/plugins.md).
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Timeouts and the response-size bound of its HTTP requests.
    #[serde(default)]
    pub http_limits: HttpLimits,
    /// Pause after a poll that returned nothing, in milliseconds.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
    /// First delay before polling again after a failure, in milliseconds.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest delay between retries, in milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// The resolved plugin file.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

fn default_idle_ms() -> u64 {
    500
}
fn default_initial_backoff_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

impl WasmSourceConfig {
    fn limits(&self) -> Limits {
        self.limits.unwrap_or_default()
    }

    fn file(&self) -> Result<&PathBuf> {
        self.file
            .as_ref()
            .with_context(|| format!("plugin `{}` was not resolved", self.plugin))
    }
}

/// The `wasm` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "wasm",
    summary: "a custom source connector: a Wasm component exporting the `source` world",
    parse: parse_source::<WasmSourceConfig>,
};

impl SourceConfig for WasmSourceConfig {
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
        connector::load_connector(file, World::Source, &self.grants, &self.limits())
            .map(|_| ())
            .map_err(|e| ConfigIssue::at("plugin", format!("{e:#}")))
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        let plugin =
            connector::load_connector(self.file()?, World::Source, &self.grants, &self.limits())?;
        let instance = ConnectorInstance::new(
            plugin,
            cx.name,
            &connector::params_text(&self.params),
            self.limits(),
            self.grants.clone(),
            self.http_limits,
        );
        Ok(Box::new(WasmSource {
            origin: Arc::from(cx.name),
            backoff: Backoff::from_millis(self.initial_backoff_ms, self.max_backoff_ms),
            idle: Duration::from_millis(self.idle_ms),
            instance,
            position: None,
            caught_up: false,
            seq: 0,
            failures: 0,
        }))
    }

    fn fingerprint_text(&self) -> String {
        // What it reads: the plugin and its parameters. Parameters may hold
        // secrets, so only their hash is kept; limits and pauses are tuning.
        use sha2::Digest;
        let params = serde_json::to_vec(&self.params).unwrap_or_default();
        let hash = sha2::Sha256::digest(&params);
        format!(
            "wasm source {} params sha256 {}",
            self.plugin,
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

/// A running `wasm` source.
pub struct WasmSource {
    origin: Arc<str>,
    instance: ConnectorInstance,
    backoff: Backoff,
    idle: Duration,
    /// After the last event handed to the pipeline.
    position: Option<Vec<u8>>,
    caught_up: bool,
    /// Events and malformed inputs so far: their position within the origin.
    seq: u64,
    /// Failures in a row.
    failures: u32,
}

impl WasmSource {
    /// Counts a failed call; past [`MAX_RESTARTS`] it fails the pipeline.
    fn failed(&mut self, failure: CallFailure) -> Result<Polled> {
        match failure {
            CallFailure::Retry { .. } => {
                self.failures += 1;
                let wait = self.backoff.delay(self.failures);
                tracing::warn!(source = %self.origin, "{failure}; polling again in {wait:?}");
                std::thread::sleep(wait);
                Ok(Polled::default())
            }
            CallFailure::Fatal { .. } | CallFailure::Init { .. } => {
                Err(anyhow::Error::new(failure))
            }
            _ => {
                self.failures += 1;
                if self.failures > MAX_RESTARTS {
                    return Err(anyhow::Error::new(failure)).with_context(|| {
                        format!(
                            "source `{}` failed {} times in a row; a rerun resumes from the last checkpoint",
                            self.origin, self.failures
                        )
                    });
                }
                let wait = self.backoff.delay(self.failures);
                tracing::warn!(
                    source = %self.origin,
                    restart = self.failures,
                    "{failure}; restarting the connector from its last position in {wait:?} (restart {} of at most {MAX_RESTARTS} in a row)",
                    self.failures
                );
                std::thread::sleep(wait);
                Ok(Polled::default())
            }
        }
    }
}

impl Source for WasmSource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.position = position
            .filter(|v| !v.is_null())
            .map(connector::position_from_json)
            .transpose()
            .map_err(|e| anyhow::anyhow!("source `{}`: {e}", self.origin))?;
        self.instance
            .open(self.position.as_deref())
            .map_err(anyhow::Error::new)
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        if !self.instance.is_open() {
            if let Err(f) = self.instance.open(self.position.as_deref()) {
                return self.failed(f);
            }
        }
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        let polled = match self.instance.poll(max) {
            Ok(p) => p,
            Err(f) => return self.failed(f),
        };
        self.failures = 0;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut frame = polled.events;
        frame.streams = vec![self.origin.to_string()];
        let n = frame.events.len() as u64;
        for e in &mut frame.events {
            // A source without a clock leaves the time to the host.
            if e.timestamp_ms == 0 {
                e.timestamp_ms = now;
            }
        }
        let positions = (self.seq..self.seq + n).collect();
        self.seq += n;
        let malformed = polled
            .malformed
            .into_iter()
            .map(|(bytes, reason)| {
                self.seq += 1;
                Malformed {
                    bytes,
                    reason,
                    position: self.seq,
                }
            })
            .collect::<Vec<_>>();
        if let Some(p) = polled.position {
            self.position = Some(p);
        }
        self.caught_up |= polled.caught_up;
        if n == 0 && malformed.is_empty() && !polled.done {
            std::thread::sleep(self.idle);
        }
        Ok(Polled {
            batch: (n > 0).then(|| Batch {
                events: frame,
                origin: self.origin.clone(),
                positions,
                tables: Default::default(),
                inherited: None,
            }),
            malformed,
            done: polled.done,
        })
    }

    fn position(&self) -> Value {
        match &self.position {
            Some(p) => connector::position_to_json(p),
            None => Value::Null,
        }
    }

    fn committed(&mut self, position: &Value) -> Result<()> {
        if position.is_null() || !self.instance.is_open() {
            // Nothing read yet, or the instance is being replaced: the next
            // checkpoint's commit covers this one.
            return Ok(());
        }
        let bytes = connector::position_from_json(position)
            .map_err(|e| anyhow::anyhow!("source `{}`: {e}", self.origin))?;
        match self.instance.commit(&bytes) {
            Ok(()) => Ok(()),
            Err(f @ CallFailure::Fatal { .. }) => Err(anyhow::Error::new(f)),
            Err(f) => {
                tracing::warn!(source = %self.origin, "{f}; the next checkpoint commits a later position");
                Ok(())
            }
        }
    }

    fn caught_up(&self) -> bool {
        self.caught_up
    }
}
