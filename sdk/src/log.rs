//! Logging to the host. The host tags every line with the stage, the plugin
//! and its version, escapes control characters and bounds how much one
//! plugin may log (see the host's `docs/security.md`), so a plugin can log
//! freely without flooding or forging the host's log.
//!
//! Built natively (unit tests, native benchmarks) there is no host: lines are
//! kept per thread, up to [`CAPTURE_LIMIT`], for [`take_captured`] to read.

/// How serious a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something probably wrong that does not stop the plugin.
    Warn,
    /// Something wrong.
    Error,
}

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::glue::wit::sluice::plugin::log as host;
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < CAPTURE_LIMIT {
            c.push((level, message.to_string()));
        }
    });
}

/// Logs `message` as a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs `message` as information.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Lines kept per thread in native builds; later ones are dropped.
pub const CAPTURE_LIMIT: usize = 10_000;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<(Level, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Native builds: the lines logged on this thread since the last call.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured() -> Vec<(Level, String)> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// [`take_captured`] as text, each line after its level: `Warn field ...`.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured_lines() -> Vec<String> {
    take_captured()
        .into_iter()
        .map(|(level, line)| format!("{level:?} {line}"))
        .collect()
}
