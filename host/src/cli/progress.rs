//! The progress bar `sluice run` draws in a terminal, fed by the runner's
//! status callback (the runner itself draws nothing), and the log writer
//! that keeps log lines off it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::pipeline::{ComponentCounts, Role, RunStatus, StatusCallback};

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
            // The totals, then a line per component with its counts (and a
            // source's lag), so a stage that filters out everything shows
            // while the run goes on, not only in the summary.
            let lines = component_lines(&s.components, |c| {
                if c.role != Role::Source {
                    return String::new();
                }
                s.sources
                    .iter()
                    .find(|p| p.name == c.name)
                    .and_then(|p| p.describe_lag())
                    .map(|lag| format!(", {lag}"))
                    .unwrap_or_default()
            });
            bar.set_message(format!(
                "{} in ({per_s:.0}/s), {} dead-lettered\n{}",
                s.events_in,
                s.dead_letters,
                first_lines(&lines, LIVE_LINES)
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

/// One line per source, stage, table and sink: its role, its name (names
/// aligned), its counts and what `suffix` adds.
pub fn component_lines(
    components: &[ComponentCounts],
    suffix: impl Fn(&ComponentCounts) -> String,
) -> String {
    let width = components.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in components {
        let name = format!("`{}`", c.name);
        out.push_str(&format!(
            "  {:<6} {name:<w$} {}{}\n",
            c.role_word(),
            c.describe(),
            suffix(c),
            w = width + 2
        ));
    }
    out
}

/// At most this many component lines under the bar: a pipeline with more
/// would push the bar off a small terminal.
const LIVE_LINES: usize = 12;

/// The first `n` lines of `text`, then `… and N more`.
fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return lines.join("\n");
    }
    let mut out = lines[..n].join("\n");
    out.push_str(&format!("\n  … and {} more", lines.len() - n));
    out
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
        // On a server, no tenant's connection secret reaches the log
        // either; elsewhere nothing is registered and this is one lock.
        let struck = crate::server::logs::store().strike_any(buf);
        let line = struck.as_deref().unwrap_or(buf);
        let bar = ACTIVE.lock().ok().and_then(|a| a.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(line))?,
            None => std::io::stderr().write_all(line)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(role: Role, name: &str, events: u64) -> ComponentCounts {
        ComponentCounts {
            role,
            name: name.into(),
            events_in: events,
            events_out: events,
            filtered: 0,
            dead_lettered: 0,
            skipped: 0,
            restarts: 0,
            cpu_ns: 0,
            memory_bytes: 0,
        }
    }

    #[test]
    fn component_lines_align_names_and_take_a_suffix() {
        let lines = component_lines(
            &[
                counts(Role::Source, "orders", 7),
                counts(Role::Stage, "f", 7),
            ],
            |c| {
                if c.role == Role::Source {
                    ", lag 3 messages".into()
                } else {
                    String::new()
                }
            },
        );
        assert_eq!(
            lines,
            "  source `orders` read 7, lag 3 messages\n  stage  `f`      in 7, out 7\n"
        );
    }

    #[test]
    fn the_live_view_keeps_a_bounded_number_of_lines() {
        let many: Vec<ComponentCounts> = (0..40)
            .map(|i| counts(Role::Stage, &format!("s{i}"), 1))
            .collect();
        let shown = first_lines(&component_lines(&many, |_| String::new()), LIVE_LINES);
        assert_eq!(shown.lines().count(), LIVE_LINES + 1, "{shown}");
        assert!(shown.ends_with("… and 28 more"), "{shown}");
        let few = first_lines("a\nb\n", LIVE_LINES);
        assert_eq!(few, "a\nb");
    }
}
