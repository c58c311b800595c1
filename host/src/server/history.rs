//! Each pipeline's last hour, for the console's charts: a sampler thread
//! reads every run's counters once per interval (10 s; the
//! `SLUICE_HISTORY_INTERVAL_MS` environment variable changes it, for tests)
//! and keeps the last [`SAMPLES`] of each pipeline in memory. Bounded by
//! construction: one ring of fixed length per pipeline the supervisor knows,
//! dropped when it forgets the pipeline; nothing is kept across restarts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::store::{key, now_ms};
use super::supervisor::Status;
use super::Server;

/// Samples kept per pipeline: an hour at the default interval.
pub const SAMPLES: usize = 360;
/// The default interval between samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// One reading of a run's counters.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Sample {
    /// When, Unix milliseconds.
    pub t_ms: u64,
    /// The run's totals at that time.
    pub events_in: u64,
    /// See `events_in`.
    pub events_out: u64,
    /// See `events_in`.
    pub dead_letters: u64,
    /// The sources' summed lag, when one measures it.
    pub lag: Option<u64>,
    /// Its unit (`messages` or `wal_bytes`).
    pub lag_unit: Option<&'static str>,
    /// Events per second read and written since the previous sample; none
    /// for the first, or when a new run started its counters again.
    pub in_per_s: Option<f64>,
    /// See `in_per_s`.
    pub out_per_s: Option<f64>,
}

/// Every pipeline's samples.
#[derive(Default)]
pub struct History {
    rings: Mutex<HashMap<String, VecDeque<Sample>>>,
}

/// The server's history.
pub fn store() -> &'static History {
    static STORE: OnceLock<History> = OnceLock::new();
    STORE.get_or_init(History::default)
}

fn per_s(now: u64, before: u64, dt_ms: u64) -> Option<f64> {
    (now >= before && dt_ms > 0).then(|| (now - before) as f64 * 1000.0 / dt_ms as f64)
}

impl History {
    fn rings(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Sample>>> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a reading of `key`'s status at `t_ms`, keeping at most [`SAMPLES`].
    pub fn record(&self, key: &str, t_ms: u64, status: &Status) {
        let mut lag: Option<u64> = None;
        let mut lag_unit = None;
        for c in &status.components {
            if let Some(l) = c.lag {
                lag = Some(lag.unwrap_or(0).saturating_add(l.value));
                lag_unit.get_or_insert(l.unit);
            }
        }
        let mut rings = self.rings();
        let ring = rings.entry(key.to_string()).or_default();
        let (in_per_s, out_per_s) = match ring.back() {
            Some(p) if t_ms > p.t_ms => (
                per_s(status.events_in, p.events_in, t_ms - p.t_ms),
                per_s(status.events_out, p.events_out, t_ms - p.t_ms),
            ),
            _ => (None, None),
        };
        if ring.len() == SAMPLES {
            ring.pop_front();
        }
        ring.push_back(Sample {
            t_ms,
            events_in: status.events_in,
            events_out: status.events_out,
            dead_letters: status.dead_letters,
            lag,
            lag_unit,
            in_per_s,
            out_per_s,
        });
    }

    /// Forgets pipelines not in `live`.
    pub fn retain(&self, live: &[String]) {
        self.rings().retain(|k, _| live.contains(k));
    }

    /// `key`'s samples, oldest first.
    pub fn samples(&self, key: &str) -> Vec<Sample> {
        self.rings()
            .get(key)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The sampling interval: [`DEFAULT_INTERVAL`], or
/// `SLUICE_HISTORY_INTERVAL_MS` (at least 100 ms).
pub fn interval() -> Duration {
    std::env::var("SLUICE_HISTORY_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_INTERVAL, |ms| Duration::from_millis(ms.max(100)))
}

/// Starts the sampler thread; it runs as long as the process.
pub fn spawn(server: Arc<Server>) {
    let every = interval();
    let spawned = std::thread::Builder::new()
        .name("history".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let snapshots = server.supervisor.snapshots("");
            let t = now_ms();
            let h = store();
            for s in &snapshots {
                h.record(&s.key, t, &s.status);
            }
            h.retain(&snapshots.into_iter().map(|s| s.key).collect::<Vec<_>>());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no history sampler: the console's charts stay empty");
    }
}

/// `GET /v1/pipelines/NAME/history`. A pipeline that is not the caller's is a 404.
pub fn get(s: &Server, tenant: &str, name: &str) -> ApiResult {
    if s.store.pipeline(tenant, name)?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no pipeline `{}`",
            name.escape_debug()
        )));
    }
    let samples = store().samples(&key(tenant, name));
    Ok((
        StatusCode::OK,
        Json(json!({
            "name": name,
            "interval_ms": interval().as_millis() as u64,
            "samples": samples,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::supervisor::State;

    fn status(events_in: u64, events_out: u64) -> Status {
        let mut s = Status::idle(State::Running);
        s.events_in = events_in;
        s.events_out = events_out;
        s
    }

    #[test]
    fn rates_come_from_consecutive_samples_and_the_ring_keeps_the_last_hour() {
        let h = History::default();
        h.record("t/p", 1_000, &status(0, 0));
        h.record("t/p", 11_000, &status(100, 50));
        // A new run: its counters start again, so no rate for that step.
        h.record("t/p", 21_000, &status(10, 10));
        let got = h.samples("t/p");
        assert_eq!(
            got.iter()
                .map(|s| (s.in_per_s, s.out_per_s))
                .collect::<Vec<_>>(),
            vec![(None, None), (Some(10.0), Some(5.0)), (None, None)]
        );
        for i in 0..(SAMPLES as u64 + 50) {
            h.record("t/p", 30_000 + i * 10_000, &status(i, i));
        }
        let got = h.samples("t/p");
        assert_eq!(got.len(), SAMPLES);
        assert_eq!(got[0].events_in, 50, "the oldest went first");
        assert_eq!(h.samples("other/p"), vec![]);
        h.retain(&["x/y".to_string()]);
        assert_eq!(h.samples("t/p"), vec![]);
    }
}
