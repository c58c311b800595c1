//! Counters shared between component threads and the coordinator.

use std::sync::atomic::{AtomicU64, Ordering};

/// Pipeline-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events read by sources.
    pub events_in: AtomicU64,
    /// Events written by sinks (not counting dead letters).
    pub events_out: AtomicU64,
    /// Events sent to the dead-letter destination.
    pub dead_letters: AtomicU64,
    /// Events skipped under `on_error: skip`.
    pub skipped: AtomicU64,
    /// Plugin instances replaced after a failure.
    pub instance_restarts: AtomicU64,
    /// Checkpoints committed.
    pub checkpoints: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
