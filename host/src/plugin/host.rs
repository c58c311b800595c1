//! What the host gives a plugin instance: logging and a memory limiter.

use super::bindings::sluice::plugin::log;

/// Caps linear memory and remembers a breach, so the failure names the limit
/// instead of surfacing as a bare trap.
pub struct MemoryLimiter {
    max_bytes: usize,
    max_mb: u64,
    breached: bool,
}

impl MemoryLimiter {
    /// The breached limit, if any, as text for messages.
    pub fn breached(&self) -> Option<String> {
        self.breached
            .then(|| format!("memory limit of {} MiB", self.max_mb))
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.breached = true;
            // Trapping (rather than returning false) stops a guest that would
            // otherwise loop on a failed allocation.
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded (wanted {} bytes)",
                self.max_mb,
                desired
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Per-instance host state.
pub struct HostState {
    /// The memory cap.
    pub limiter: MemoryLimiter,
    stage: String,
    plugin: String,
    last_error: Option<String>,
}

impl HostState {
    /// State for an instance of `plugin` in `stage` with a memory cap.
    pub fn new(stage: &str, plugin: &str, memory_mb: u64) -> Self {
        Self {
            limiter: MemoryLimiter {
                max_bytes: usize::try_from(memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
                max_mb: memory_mb,
                breached: false,
            },
            stage: stage.to_string(),
            plugin: plugin.to_string(),
            last_error: None,
        }
    }

    /// Forgets the previous call's error log line.
    pub fn begin_call(&mut self) {
        self.last_error = None;
    }

    /// The last error the plugin logged in this call (e.g. its panic message).
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let (stage, plugin) = (&self.stage, &self.plugin);
        match level {
            log::Level::Trace => tracing::trace!(stage, plugin, "{message}"),
            log::Level::Debug => tracing::debug!(stage, plugin, "{message}"),
            log::Level::Info => tracing::info!(stage, plugin, "{message}"),
            log::Level::Warn => tracing::warn!(stage, plugin, "{message}"),
            log::Level::Error => {
                tracing::error!(stage, plugin, "{message}");
                self.last_error = Some(message);
            }
        }
    }
}

impl super::bindings::sluice::plugin::types::Host for HostState {}
