//! The `log` import: what a plugin writes to the host's log, bounded and
//! defanged.
//!
//! A plugin is untrusted, and the host log is what an operator reads to learn
//! what happened. So a plugin's message
//! - has every control character (newline, carriage return, ANSI escape, the
//!   Unicode line separators and bidi overrides) written as a visible escape,
//!   so it can never start a line of its own that looks like the host's;
//! - is cut at [`MAX_LOG_MESSAGE_BYTES`];
//! - counts against the stage's `limits.log_kb_per_call` (default
//!   [`DEFAULT_LOG_BYTES_PER_CALL`], bounded by the operator's ceiling) and a
//!   per-instance rate ([`LOG_BYTES_PER_SECOND`], bursts up to
//!   [`LOG_BURST_BYTES`]).
//!
//! What does not fit is dropped and counted; the count is reported once, as
//! one host line, when the next call starts or the instance goes away.

use std::cell::Cell;
use std::time::Instant;

use super::bindings::sluice::plugin::log;

/// The longest plugin message printed; the rest is cut (and counted).
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 * 1024;
/// Log bytes one call (one batch, or `create`/`describe`) may print unless
/// the stage's `limits.log_kb_per_call` says otherwise.
pub const DEFAULT_LOG_BYTES_PER_CALL: usize = 64 * 1024;

thread_local! {
    /// The per-call log budget of instances created on this thread.
    static CALL_BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Gives instances created on this thread (until the next call) a log budget
/// of `bytes` per call. A stage's thread runs only that stage, so the runner
/// sets it once when the thread starts; instance constructors do not take
/// the budget as an argument (they belong to the plugin contract's glue).
pub fn set_thread_log_budget(bytes: usize) {
    CALL_BUDGET.with(|b| b.set(Some(bytes)));
}

/// Runs `f` with instances it creates on this thread given a log budget of
/// `bytes` per call; the previous budget is restored after.
pub fn with_log_budget<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(CALL_BUDGET.with(|b| b.replace(Some(bytes))));
    f()
}
/// Sustained log bytes per second per instance, across calls.
pub const LOG_BYTES_PER_SECOND: usize = 64 * 1024;
/// How far an instance may burst above its rate.
pub const LOG_BURST_BYTES: usize = 1024 * 1024;

/// One instance's log budget and its last error line.
#[derive(Debug)]
pub struct GuestLog {
    stage: String,
    plugin: String,
    per_call: usize,
    used_in_call: usize,
    /// Token bucket for the per-instance rate.
    tokens: f64,
    refilled: Instant,
    dropped_bytes: u64,
    dropped_messages: u64,
    last_error: Option<String>,
}

impl GuestLog {
    /// The log of one instance of `plugin` (its label) in `stage`, with the
    /// per-call budget set for this thread (else the default).
    pub fn new(stage: &str, plugin: &str) -> Self {
        let per_call = CALL_BUDGET
            .with(Cell::get)
            .unwrap_or(DEFAULT_LOG_BYTES_PER_CALL);
        Self::with_budget(stage, plugin, per_call)
    }

    /// The log of one instance with a per-call budget of `per_call` bytes.
    pub fn with_budget(stage: &str, plugin: &str, per_call: usize) -> Self {
        Self {
            stage: stage.to_string(),
            plugin: plugin.to_string(),
            per_call,
            used_in_call: 0,
            tokens: LOG_BURST_BYTES as f64,
            refilled: Instant::now(),
            dropped_bytes: 0,
            dropped_messages: 0,
            last_error: None,
        }
    }

    /// A new call starts: reports what the last one dropped, resets the
    /// per-call budget and forgets the last error.
    pub fn begin_call(&mut self) {
        self.report_dropped();
        self.used_in_call = 0;
        self.last_error = None;
    }

    /// The last error the plugin logged in this call (e.g. its panic
    /// message), escaped and cut like any log line.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Prints `message` at `level` if the budgets allow. A panic message
    /// (what the SDKs' panic hooks log) is only kept for the trap.
    pub fn log(&mut self, level: log::Level, message: &str) {
        let (line, cut) = escape_bounded(message, MAX_LOG_MESSAGE_BYTES);
        let cost = line.len().max(1);
        if matches!(level, log::Level::Error) {
            // Kept even when printing is over budget: it explains a trap.
            self.last_error = Some(line.clone());
            if message.starts_with(PANIC_PREFIX) {
                // A panic always ends in a trap, and the host's one line
                // about the crash carries this message: printing it here
                // too would say it twice (or once per retry).
                let (stage, plugin) = (self.stage.as_str(), self.plugin.as_str());
                tracing::debug!(stage, plugin, "{line}");
                return;
            }
        }
        self.refill();
        if self.used_in_call + cost > self.per_call || self.tokens < cost as f64 {
            self.dropped_bytes += message.len() as u64;
            self.dropped_messages += 1;
            return;
        }
        self.used_in_call += cost;
        self.tokens -= cost as f64;
        self.dropped_bytes += cut as u64;
        let (stage, plugin) = (self.stage.as_str(), self.plugin.as_str());
        match level {
            log::Level::Trace => tracing::trace!(stage, plugin, "{line}"),
            log::Level::Debug => tracing::debug!(stage, plugin, "{line}"),
            log::Level::Info => tracing::info!(stage, plugin, "{line}"),
            log::Level::Warn => tracing::warn!(stage, plugin, "{line}"),
            log::Level::Error => tracing::error!(stage, plugin, "{line}"),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens =
            (self.tokens + elapsed * LOG_BYTES_PER_SECOND as f64).min(LOG_BURST_BYTES as f64);
    }

    fn report_dropped(&mut self) {
        if self.dropped_bytes == 0 {
            return;
        }
        tracing::warn!(
            stage = self.stage.as_str(),
            plugin = self.plugin.as_str(),
            dropped_bytes = self.dropped_bytes,
            dropped_messages = self.dropped_messages,
            "{} log bytes dropped from plugin {} (limits: {MAX_LOG_MESSAGE_BYTES} bytes per message, log_kb_per_call {} KiB, {LOG_BYTES_PER_SECOND} bytes per second per instance)",
            self.dropped_bytes,
            self.plugin,
            self.per_call / 1024
        );
        self.dropped_bytes = 0;
        self.dropped_messages = 0;
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        self.report_dropped();
    }
}

/// How the SDKs (Rust, Go) announce a panic before the trap.
const PANIC_PREFIX: &str = "plugin panicked: ";

/// True for characters that could end, overwrite or reorder a terminal line.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

/// `message` with dangerous characters escaped (`\n`, `\r`, `\t`, `\u{1b}`),
/// cut to at most `max` bytes; also the number of input bytes cut.
pub fn escape_bounded(message: &str, max: usize) -> (String, usize) {
    let mut out = String::with_capacity(message.len().min(max));
    for (i, c) in message.char_indices() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
        if out.len() > max {
            out.truncate(before);
            let cut = message.len() - i;
            out.push_str(&format!("… ({cut} bytes cut)"));
            return (out, cut);
        }
    }
    (out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        let (s, cut) = escape_bounded("ok\nINFO fake\r\u{1b}[2K\u{2028}x\\n", 1000);
        assert_eq!(cut, 0);
        assert_eq!(s, "ok\\nINFO fake\\r\\u{1b}[2K\\u{2028}x\\\\n");
        assert!(!s.chars().any(is_dangerous));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let msg = "é".repeat(10_000);
        let (s, cut) = escape_bounded(&msg, 101);
        assert!(s.len() <= 101 + "… (00000 bytes cut)".len(), "{}", s.len());
        assert!(s.starts_with(&"é".repeat(50)));
        assert_eq!(cut, msg.len() - 100);
        assert!(s.ends_with(&format!("… ({cut} bytes cut)")));
    }

    #[test]
    fn a_call_prints_at_most_its_budget_and_counts_the_rest() {
        let mut log = GuestLog::new("s", "p");
        let kib = "x".repeat(1024);
        for _ in 0..1000 {
            log.log(log::Level::Info, &kib);
        }
        assert!(log.used_in_call <= DEFAULT_LOG_BYTES_PER_CALL);
        assert_eq!(log.used_in_call, DEFAULT_LOG_BYTES_PER_CALL);
        assert_eq!(log.dropped_bytes, (1000 - 64) * 1024);
        log.begin_call();
        assert_eq!(log.dropped_bytes, 0, "reported and reset");
        assert_eq!(log.used_in_call, 0);
    }

    #[test]
    fn the_thread_budget_applies_to_instances_created_under_it() {
        let kib = "x".repeat(1024);
        let mut log = with_log_budget(4 * 1024, || GuestLog::new("s", "p"));
        for _ in 0..10 {
            log.log(log::Level::Info, &kib);
        }
        assert_eq!(log.used_in_call, 4 * 1024);
        assert_eq!(log.dropped_bytes, 6 * 1024);
        // Restored after the scope.
        assert_eq!(GuestLog::new("s", "p").per_call, DEFAULT_LOG_BYTES_PER_CALL);
    }

    #[test]
    fn the_instance_rate_holds_across_calls() {
        let mut log = GuestLog::new("s", "p");
        let kib = "x".repeat(1024);
        let mut printed = 0usize;
        // Many short calls in a row, faster than the rate refills.
        for _ in 0..100 {
            log.begin_call();
            for _ in 0..64 {
                let before = log.used_in_call;
                log.log(log::Level::Info, &kib);
                printed += log.used_in_call - before;
            }
        }
        let elapsed_allowance = LOG_BYTES_PER_SECOND * 2;
        assert!(
            printed <= LOG_BURST_BYTES + elapsed_allowance,
            "printed {printed}"
        );
    }

    #[test]
    fn the_last_error_is_escaped_and_cut_too() {
        let mut log = GuestLog::new("s", "p");
        log.log(
            log::Level::Error,
            &format!("panic\n{}", "y".repeat(1 << 20)),
        );
        let e = log.last_error().expect("kept");
        assert!(e.len() < MAX_LOG_MESSAGE_BYTES + 64);
        assert!(e.starts_with("panic\\ny"));
    }
}
