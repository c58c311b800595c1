//! The progress bar `sluice run` draws in a terminal, fed by the runner's
//! status callback (the runner itself draws nothing), and the log writer
//! that keeps log lines off it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::pipeline::{RunStatus, StatusCallback};

/// The bar on screen, if any: log lines are written around it.
static ACTIVE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Bounded phase: a bar with a percentage.
const BAR: &str = "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}";
/// Streaming phase (after a snapshot, or no known total): no percentage,
/// which would sit at 100% for as long as the stream runs.
const STREAMING: &str = "{spinner} [{elapsed_precise}] streaming: {msg}";

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

/// A bar for bounded sources, with live counts and rate.
pub struct RunBar {
    bar: indicatif::ProgressBar,
}

impl RunBar {
    /// A bar with no known length yet.
    pub fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(style(BAR));
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(bar.clone());
        }
        Self { bar }
    }

    /// What the runner calls with each status.
    pub fn callback(&self) -> StatusCallback {
        let bar = self.bar.clone();
        let rate = Mutex::new(Rate::new());
        let streaming = Mutex::new(false);
        Arc::new(move |s: &RunStatus| {
            let per_s = rate
                .lock()
                .map(|mut r| r.update(s.events_in))
                .unwrap_or(0.0);
            let bounded = s.progress_total > 0 && s.progress_done < s.progress_total;
            if let Ok(mut streaming) = streaming.lock() {
                if bounded {
                    bar.set_length(s.progress_total);
                    bar.set_position(s.progress_done);
                } else if !*streaming && (s.progress_total > 0 || s.events_in > 0) {
                    // Snapshot done (or nothing bounded): say what flows.
                    *streaming = true;
                    bar.set_style(style(STREAMING));
                }
            }
            bar.set_message(format!(
                "{} in ({per_s:.0}/s), {} dead-lettered",
                s.events_in, s.dead_letters
            ));
        })
    }

    /// Clears the bar before the summary is printed.
    pub fn finish(self) {
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        self.bar.finish_and_clear();
    }
}

/// Events per second over the last few seconds.
struct Rate {
    since: Instant,
    at: u64,
    per_s: f64,
}

impl Rate {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            at: 0,
            per_s: 0.0,
        }
    }

    fn update(&mut self, events: u64) -> f64 {
        let secs = self.since.elapsed().as_secs_f64();
        if self.at == 0 && secs > 0.0 {
            // The first second: the rate so far rather than a zero.
            self.per_s = events as f64 / secs;
        }
        if secs >= 1.0 {
            self.per_s = events.saturating_sub(self.at) as f64 / secs;
            self.since = Instant::now();
            self.at = events;
        }
        self.per_s
    }
}

/// Stderr for log lines: while a bar is drawn, each line is written with
/// the bar lifted, so a line never ends up glued to it.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE.lock().ok().and_then(|a| a.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
