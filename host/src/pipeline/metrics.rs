//! Counters shared between component threads and the coordinator.

use std::sync::atomic::{AtomicU64, Ordering};

/// Progress of a bounded source: done out of total (bytes or records).
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// Sets the total (0 = unknown).
    pub fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }
    /// Sets how much is done.
    pub fn set_done(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }
    /// (done, total).
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

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
