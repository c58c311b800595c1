//! Counters shared between component threads and the coordinator: the
//! pipeline-wide totals, and one set per source, stage and sink so that no
//! event disappears without a trace (a filter that drops everything shows up
//! as `filtered out`, not as a silently empty sink).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::connector::{LagUnit, Progress};

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
    /// When the last checkpoint was committed, Unix milliseconds (0: none yet).
    pub last_checkpoint_ms: AtomicU64,
    components: Mutex<Vec<(Role, String, Arc<Counts>)>>,
    progress: Mutex<Vec<(String, Arc<Progress>)>>,
}

/// What a component is, for the summary and the stats line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A source: `out` is what it read, `dead` what was malformed.
    Source,
    /// A plugin stage.
    Stage,
    /// A sink: `in` is what it was handed, `out` what the target accepted,
    /// `dead` what the target refused.
    Sink,
    /// A table kept up to date from a stream (counted like a sink).
    Table,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Stage => "stage",
            Role::Sink => "sink",
            Role::Table => "table",
        }
    }
}

/// One source's progress at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    /// The source's name in the pipeline file.
    pub name: String,
    /// Bounded sources: how much is read (records or bytes).
    pub done: u64,
    /// Bounded sources: how much there is (0: unknown or unbounded).
    pub total: u64,
    /// Unbounded sources: how far behind the upstream's end it reads, once
    /// measured.
    pub lag: Option<(u64, LagUnit)>,
}

impl SourceProgress {
    /// `lag 120 messages`, `lag 4.00 MiB of WAL`, or nothing.
    pub fn describe_lag(&self) -> Option<String> {
        self.lag.map(|(n, unit)| match unit {
            LagUnit::Messages => format!("lag {n} message{}", if n == 1 { "" } else { "s" }),
            LagUnit::WalBytes => format!("lag {} of WAL", indicatif::HumanBytes(n)),
            LagUnit::Rows => format!("lag {n} row{}", if n == 1 { "" } else { "s" }),
            LagUnit::Millis if n < 1000 => format!("lag {n} ms"),
            LagUnit::Millis => format!("lag {:.1} s", n as f64 / 1000.0),
        })
    }
}

/// One component's counters.
#[derive(Debug, Default)]
pub struct Counts {
    /// Events received.
    pub events_in: AtomicU64,
    /// Events passed on (sources: read; sinks: written).
    pub events_out: AtomicU64,
    /// Input events that produced no output and no error (a filter's drops).
    pub filtered: AtomicU64,
    /// Events dead-lettered here.
    pub dead: AtomicU64,
    /// Events skipped here under `on_error: skip`.
    pub skipped: AtomicU64,
    /// Stages: plugin instances replaced after a failure.
    pub restarts: AtomicU64,
    /// Stages: CPU time of the stage thread inside plugin calls, in
    /// nanoseconds (measured per batch, not per event).
    pub cpu_ns: AtomicU64,
    /// Stages: the plugin instance's memories and tables, in bytes, after
    /// its last batch.
    pub memory_bytes: AtomicU64,
}

/// A copy of one component's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCounts {
    /// Source, stage or sink.
    pub role: Role,
    /// Its name in the pipeline file.
    pub name: String,
    /// Events received (0 for sources).
    pub events_in: u64,
    /// Events passed on (sources: read; sinks: written).
    pub events_out: u64,
    /// Input events that produced nothing (stages).
    pub filtered: u64,
    /// Events dead-lettered here.
    pub dead_lettered: u64,
    /// Events skipped here.
    pub skipped: u64,
    /// Stages: plugin instances replaced after a failure.
    pub restarts: u64,
    /// Stages: CPU time inside plugin calls, nanoseconds.
    pub cpu_ns: u64,
    /// Stages: the instance's memory, bytes.
    pub memory_bytes: u64,
}

impl ComponentCounts {
    /// `read 10`, `in 10, out 4, filtered out 6`, `in 4, wrote 4`: the
    /// counts that say something, for the run summary.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.role {
            Role::Source => parts.push(format!("read {}", self.events_out)),
            Role::Stage => {
                parts.push(format!("in {}", self.events_in));
                parts.push(format!("out {}", self.events_out));
                if self.filtered > 0 {
                    parts.push(format!("filtered out {}", self.filtered));
                }
            }
            Role::Sink | Role::Table => {
                parts.push(format!("in {}", self.events_in));
                parts.push(format!("wrote {}", self.events_out));
            }
        }
        if self.dead_lettered > 0 {
            let why = if self.role == Role::Source {
                " (malformed)"
            } else {
                ""
            };
            parts.push(format!("dead-lettered {}{why}", self.dead_lettered));
        }
        if self.skipped > 0 {
            parts.push(format!("skipped {}", self.skipped));
        }
        parts.join(", ")
    }

    /// `source`, `stage` or `sink`.
    pub fn role_word(&self) -> &'static str {
        self.role.word()
    }
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

    /// Counts a committed checkpoint and notes when it was.
    pub fn checkpoint_committed(&self) {
        Self::add(&self.checkpoints, 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_checkpoint_ms.store(now, Ordering::Relaxed);
    }

    /// Registers a component and returns its counters (in registration
    /// order in every listing).
    pub fn component(&self, role: Role, name: &str) -> Arc<Counts> {
        let counts = Arc::new(Counts::default());
        if let Ok(mut all) = self.components.lock() {
            all.push((role, name.to_string(), counts.clone()));
        }
        counts
    }

    /// Keeps a source's progress (bounded sources: done out of total), for
    /// [`Metrics::progress`].
    pub fn source_progress(&self, name: &str, progress: Arc<Progress>) {
        if let Ok(mut all) = self.progress.lock() {
            all.push((name.to_string(), progress));
        }
    }

    /// Each source's progress right now.
    pub fn progress(&self) -> Vec<SourceProgress> {
        let Ok(all) = self.progress.lock() else {
            return Vec::new();
        };
        all.iter()
            .map(|(name, p)| {
                let (done, total) = p.get();
                SourceProgress {
                    name: name.clone(),
                    done,
                    total,
                    lag: p.lag(),
                }
            })
            .collect()
    }

    /// Every component's counts right now: sources, then stages, then sinks.
    pub fn components(&self) -> Vec<ComponentCounts> {
        let Ok(all) = self.components.lock() else {
            return Vec::new();
        };
        let mut out: Vec<ComponentCounts> = all
            .iter()
            .map(|(role, name, c)| ComponentCounts {
                role: *role,
                name: name.clone(),
                events_in: Self::get(&c.events_in),
                events_out: Self::get(&c.events_out),
                filtered: Self::get(&c.filtered),
                dead_lettered: Self::get(&c.dead),
                skipped: Self::get(&c.skipped),
                restarts: Self::get(&c.restarts),
                cpu_ns: Self::get(&c.cpu_ns),
                memory_bytes: Self::get(&c.memory_bytes),
            })
            .collect();
        out.sort_by_key(|c| match c.role {
            Role::Source => 0,
            Role::Stage => 1,
            Role::Sink | Role::Table => 2,
        });
        out
    }
}

/// CPU time of the calling thread, in nanoseconds. A system call (the vDSO
/// serves only wall clocks), a few hundred nanoseconds: cheap around a
/// batch, too dear around an event.
pub fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
}

/// The periodic stats line: `key=value` pairs (logfmt), so that log
/// collectors can turn it into metrics. Per-component keys are
/// `<role>.<name>.<count>`; names are letters, digits, `_`, `-` and `.`.
pub fn stats_line(metrics: &Metrics, elapsed_s: f64, rate_per_s: f64) -> String {
    let mut line = format!(
        "elapsed_s={elapsed_s:.0} events_in={} rate_per_s={rate_per_s:.0} dead_lettered={} skipped={} checkpoints={} restarts={}",
        Metrics::get(&metrics.events_in),
        Metrics::get(&metrics.dead_letters),
        Metrics::get(&metrics.skipped),
        Metrics::get(&metrics.checkpoints),
        Metrics::get(&metrics.instance_restarts),
    );
    let lags = metrics.progress();
    for c in metrics.components() {
        let key = format!("{}.{}", c.role.word(), c.name);
        let fields: &[(&str, u64)] = match c.role {
            Role::Source => &[("read", c.events_out), ("dead_lettered", c.dead_lettered)],
            Role::Stage => &[
                ("in", c.events_in),
                ("out", c.events_out),
                ("filtered", c.filtered),
                ("dead_lettered", c.dead_lettered),
                ("skipped", c.skipped),
            ],
            Role::Sink | Role::Table => &[
                ("in", c.events_in),
                ("written", c.events_out),
                ("dead_lettered", c.dead_lettered),
            ],
        };
        for (k, v) in fields {
            let _ = write!(line, " {key}.{k}={v}");
        }
        if c.role == Role::Source {
            if let Some((n, unit)) = lags.iter().find(|p| p.name == c.name).and_then(|p| p.lag) {
                let _ = write!(line, " {key}.lag_{}={n}", unit.word());
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_line_is_logfmt_with_a_key_per_component_count() {
        let m = Metrics::default();
        let sink = m.component(Role::Sink, "all");
        let stage = m.component(Role::Stage, "big");
        Metrics::add(&m.events_in, 10);
        Metrics::add(&stage.events_in, 10);
        Metrics::add(&stage.events_out, 4);
        Metrics::add(&stage.filtered, 6);
        Metrics::add(&sink.events_in, 4);
        Metrics::add(&sink.events_out, 4);
        let line = stats_line(&m, 10.2, 1.0);
        assert!(line.starts_with("elapsed_s=10 events_in=10 "), "{line}");
        // Stages come before sinks whatever the registration order.
        let stage_at = line.find("stage.big.in=10").expect(&line);
        let sink_at = line.find("sink.all.written=4").expect(&line);
        assert!(stage_at < sink_at, "{line}");
        assert!(line.contains("stage.big.filtered=6"), "{line}");
        assert!(
            line.split(' ').all(|kv| kv.split('=').count() == 2),
            "{line}"
        );
        let described: Vec<String> = m.components().iter().map(|c| c.describe()).collect();
        assert_eq!(described, ["in 10, out 4, filtered out 6", "in 4, wrote 4"]);
    }

    #[test]
    fn a_measured_lag_is_in_the_stats_line_and_the_progress_with_its_unit() {
        let m = Metrics::default();
        m.component(Role::Source, "orders");
        m.component(Role::Source, "files");
        let kafka = Arc::new(Progress::default());
        m.source_progress("orders", kafka.clone());
        m.source_progress("files", Arc::new(Progress::default()));
        // Not measured yet: no key, rather than a zero that would read as
        // "caught up".
        assert!(!stats_line(&m, 1.0, 0.0).contains("lag"));
        kafka.set_lag(340, LagUnit::Messages);
        let line = stats_line(&m, 1.0, 0.0);
        assert!(line.contains(" source.orders.lag_messages=340"), "{line}");
        assert!(!line.contains("source.files.lag"), "{line}");
        let p = m.progress();
        assert_eq!(p[0].describe_lag().as_deref(), Some("lag 340 messages"));
        assert_eq!(p[1].describe_lag(), None);
        kafka.set_lag(3 << 20, LagUnit::WalBytes);
        assert_eq!(
            m.progress()[0].describe_lag().as_deref(),
            Some("lag 3.00 MiB of WAL")
        );
        kafka.set_lag(1, LagUnit::Rows);
        assert_eq!(m.progress()[0].describe_lag().as_deref(), Some("lag 1 row"));
        assert!(stats_line(&m, 1.0, 0.0).contains(" source.orders.lag_rows=1"));
        kafka.set_lag(999, LagUnit::Millis);
        assert_eq!(
            m.progress()[0].describe_lag().as_deref(),
            Some("lag 999 ms")
        );
        kafka.set_lag(12_345, LagUnit::Millis);
        assert_eq!(
            m.progress()[0].describe_lag().as_deref(),
            Some("lag 12.3 s")
        );
        assert!(stats_line(&m, 1.0, 0.0).contains(" source.orders.lag_ms=12345"));
    }
}
