//! Each pipeline's own log lines, kept for its tenant (`GET
//! /v1/pipelines/NAME/logs`, `sluice --server URL logs NAME`).
//!
//! The supervisor runs a pipeline inside a `pipeline_run` span naming its
//! key, and the runner enters that span on every thread it spawns, so a
//! [`tracing`] layer can tell whose run an event belongs to: the host's
//! lines about the run (starts, swaps, retries, failures) and its plugins'
//! own `log` calls alike. Lines outside any run (the server's own) are not
//! kept here. Each pipeline keeps its newest [`MAX_LINES`] lines, each cut
//! at [`MAX_LINE_BYTES`], so a noisy plugin costs a bounded amount of memory
//! and pushes out only its own pipeline's older lines.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The span a pipeline's run is inside; its `key` field is `tenant/name`.
pub const RUN_SPAN: &str = "pipeline_run";
/// Lines kept per pipeline.
pub const MAX_LINES: usize = 2_000;
/// Bytes kept of one line; the rest is cut and marked.
pub const MAX_LINE_BYTES: usize = 2_048;

/// One log line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Its number in the pipeline's log, from 1; `since` takes it.
    pub seq: u64,
    /// When, Unix milliseconds.
    pub time_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The message and its fields (`key=value`).
    pub message: String,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<Line>,
    next: u64,
}

/// Every pipeline's kept lines.
#[derive(Default)]
pub struct PipelineLogs {
    rings: Mutex<HashMap<String, Ring>>,
    /// Per pipeline, the secret values of its tenant's named connections,
    /// struck from every line kept (and from status and dead letters).
    secrets: Mutex<HashMap<String, Vec<String>>>,
}

/// What a struck secret is replaced with.
pub const STRUCK: &str = "[secret]";

/// `text` with each of `secrets` struck out.
pub fn strike<'a>(text: &str, secrets: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), STRUCK);
        }
    }
    out
}

/// What a read returns.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Lines after `since`, oldest first.
    pub lines: Vec<Line>,
    /// Pass as `since` to read on.
    pub next: u64,
    /// Lines after `since` that were pushed out before this read.
    pub dropped: u64,
}

impl PipelineLogs {
    fn rings(&self) -> MutexGuard<'_, HashMap<String, Ring>> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, strike `secrets` from what pipeline `key` reports.
    pub fn set_secrets(&self, key: &str, secrets: Vec<String>) {
        let mut all = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if secrets.is_empty() {
            all.remove(key);
        } else {
            all.insert(key.to_string(), secrets);
        }
    }

    /// `text` with pipeline `key`'s secrets struck out.
    pub fn scrub(&self, key: &str, text: &str) -> String {
        let all = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        strike(text, all.get(key).into_iter().flatten())
    }

    /// `line` with every served pipeline's secrets struck, or `None` when
    /// it holds none: for the operator's own log, which lines of every
    /// tenant pass through (and which is often shipped elsewhere).
    pub fn strike_any(&self, line: &[u8]) -> Option<Vec<u8>> {
        let all = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if all.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let struck = strike(&text, all.values().flatten());
        (struck != text).then(|| struck.into_bytes())
    }

    /// Keeps `message` at `level` for pipeline `key`.
    pub fn push(&self, key: &str, level: &str, message: String) {
        let mut message = self.scrub(key, &message);
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …[cut]");
        }
        let time_ms = super::store::now_ms();
        let mut rings = self.rings();
        let ring = rings.entry(key.to_string()).or_default();
        ring.next += 1;
        if ring.lines.len() == MAX_LINES {
            ring.lines.pop_front();
        }
        ring.lines.push_back(Line {
            seq: ring.next,
            time_ms,
            level: level.to_string(),
            message,
        });
    }

    /// Up to `limit` lines of `key` after line `since`.
    pub fn read(&self, key: &str, since: u64, limit: usize) -> Page {
        let rings = self.rings();
        let Some(ring) = rings.get(key) else {
            return Page {
                lines: Vec::new(),
                next: since,
                dropped: 0,
            };
        };
        let oldest = ring.lines.front().map_or(ring.next + 1, |l| l.seq);
        let dropped = oldest.saturating_sub(since.saturating_add(1));
        let lines: Vec<Line> = ring
            .lines
            .iter()
            .filter(|l| l.seq > since)
            .take(limit)
            .cloned()
            .collect();
        let next = lines
            .last()
            .map_or(since.max(oldest.saturating_sub(1)), |l| l.seq);
        Page {
            lines,
            next,
            dropped,
        }
    }

    /// Forgets `key`'s lines (its pipeline was deleted).
    pub fn forget(&self, key: &str) {
        self.rings().remove(key);
        self.set_secrets(key, Vec::new());
    }
}

/// The process's store, which the layer fills.
pub fn store() -> &'static PipelineLogs {
    static LOGS: OnceLock<PipelineLogs> = OnceLock::new();
    LOGS.get_or_init(PipelineLogs::default)
}

/// The key a `pipeline_run` span carries.
struct RunKey(String);

#[derive(Default)]
struct KeyVisitor(Option<String>);

impl Visit for KeyVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "key" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "key" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The message first, then the other fields as `name=value`.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The layer that files events under the run they happen in.
pub struct CaptureLayer;

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != RUN_SPAN {
            return;
        }
        let mut v = KeyVisitor::default();
        attrs.record(&mut v);
        if let (Some(key), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(RunKey(key));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let key = scope
            .from_root()
            .find_map(|span| span.extensions().get::<RunKey>().map(|k| k.0.clone()));
        let Some(key) = key else { return };
        let mut v = LineVisitor::default();
        event.record(&mut v);
        v.message.push_str(&v.fields);
        store().push(&key, event.metadata().level().as_str(), v.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_keeps_its_newest_lines_and_says_how_many_were_pushed_out() {
        let logs = PipelineLogs::default();
        for i in 0..MAX_LINES + 5 {
            logs.push("t/p", "INFO", format!("line {i}"));
        }
        logs.push("t/other", "WARN", "elsewhere".into());
        let page = logs.read("t/p", 0, 10);
        assert_eq!(page.dropped, 5, "the five oldest were pushed out");
        assert_eq!(page.lines[0].message, "line 5");
        assert_eq!(page.lines[0].seq, 6);
        assert_eq!(page.next, 15);
        let on = logs.read("t/p", page.next, usize::MAX);
        assert_eq!(on.dropped, 0);
        assert_eq!(on.lines.len(), MAX_LINES - 10);
        assert_eq!(
            on.lines.last().map(|l| l.message.as_str()),
            Some("line 2004")
        );
        // Nothing new: the same `next`, no lines.
        let idle = logs.read("t/p", on.next, 10);
        assert!(idle.lines.is_empty());
        assert_eq!(idle.next, on.next);
        // Another pipeline's lines stay its own.
        let other = logs.read("t/other", 0, 10);
        assert_eq!(other.lines.len(), 1);
        assert_eq!(other.lines[0].level, "WARN");
        logs.forget("t/p");
        assert!(logs.read("t/p", 0, 10).lines.is_empty());
    }

    #[test]
    fn a_pipelines_secrets_are_struck_from_its_lines_only_and_before_the_cut() {
        let logs = PipelineLogs::default();
        logs.set_secrets("t/p", vec!["hunter2-long".into(), "hunter2".into()]);
        logs.push(
            "t/p",
            "WARN",
            "auth hunter2-long failed; hunter2 again".into(),
        );
        logs.push("t/q", "WARN", "hunter2 is not p's".into());
        // A secret straddling the cut is struck before cutting.
        let at = MAX_LINE_BYTES - 3;
        logs.push("t/p", "INFO", format!("{}hunter2-long", "x".repeat(at)));
        let p = logs.read("t/p", 0, 10);
        assert_eq!(p.lines[0].message, "auth [secret] failed; [secret] again");
        assert!(
            !p.lines[1].message.contains("hun"),
            "{}",
            p.lines[1].message
        );
        assert_eq!(
            logs.read("t/q", 0, 10).lines[0].message,
            "hunter2 is not p's"
        );
        assert_eq!(logs.scrub("t/p", "x hunter2 y"), "x [secret] y");
        logs.forget("t/p");
        assert_eq!(logs.scrub("t/p", "x hunter2 y"), "x hunter2 y");
    }

    #[test]
    fn a_huge_line_is_cut_at_a_character_boundary() {
        let logs = PipelineLogs::default();
        logs.push("t/p", "INFO", "é".repeat(MAX_LINE_BYTES));
        let page = logs.read("t/p", 0, 1);
        let m = &page.lines[0].message;
        assert!(m.ends_with(" …[cut]"), "{m}");
        assert!(m.len() <= MAX_LINE_BYTES + " …[cut]".len());
    }

    #[test]
    fn events_are_filed_under_the_run_span_they_happen_in() {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!(RUN_SPAN, key = "unit/test-run");
            let _g = span.enter();
            let inner = tracing::info_span!("stage", name = "x");
            let _i = inner.enter();
            tracing::warn!(stage = "tag", "plugin said {}", "hello");
        });
        tracing::info!("outside any run");
        let page = store().read("unit/test-run", 0, 10);
        assert_eq!(page.lines.len(), 1);
        assert_eq!(page.lines[0].level, "WARN");
        assert_eq!(page.lines[0].message, "plugin said hello stage=tag");
    }
}
