//! The memory cap of one plugin instance (one store).
//!
//! A component may hold several core instances, each with its own linear
//! memories and tables. Capping each memory alone lets a component with eight
//! 119 MiB memories run at 1 GB under a 128 MiB cap, so this limiter keeps a
//! running total per store across every memory and table, and caps how many
//! core instances, memories and tables a store may create at all.

use super::limits::{INSTANCES_PER_COMPONENT, MEMORIES_PER_COMPONENT, TABLES_PER_COMPONENT};

/// Bytes charged per table element (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Caps the memory of one store and remembers a breach, so the failure names
/// the limit instead of surfacing as a bare trap.
pub struct MemoryLimiter {
    max_bytes: usize,
    max_mb: u64,
    /// Bytes of every memory and table of the store so far.
    used: usize,
    breached: Option<String>,
}

impl MemoryLimiter {
    /// A limiter for `memory_mb` MiB in total.
    pub fn new(memory_mb: u64) -> Self {
        Self {
            max_bytes: usize::try_from(memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            max_mb: memory_mb,
            used: 0,
            breached: None,
        }
    }

    /// The breached limit, if any, as text for messages.
    pub fn breached(&self) -> Option<String> {
        self.breached.clone()
    }

    fn grow(&mut self, current: usize, desired: usize, what: &str) -> wasmtime::Result<bool> {
        let total = self
            .used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.max_bytes {
            let text = format!("memory limit of {} MiB", self.max_mb);
            self.breached = Some(text.clone());
            // Trapping (rather than returning false) stops a guest that would
            // otherwise loop on a failed allocation.
            return Err(wasmtime::format_err!(
                "{text} exceeded (a {what} would bring the instance to {total} bytes)"
            ));
        }
        self.used = total;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired, "memory")
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The charge stays: the total is an upper bound, never an undercount.
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
            "table",
        )
    }

    fn instances(&self) -> usize {
        INSTANCES_PER_COMPONENT
    }

    fn memories(&self) -> usize {
        MEMORIES_PER_COMPONENT
    }

    fn tables(&self) -> usize {
        TABLES_PER_COMPONENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memories_of_one_store_are_summed() {
        let mut l = MemoryLimiter::new(1);
        assert!(l.memory_growing(0, 600 << 10, None).is_ok());
        assert!(
            l.memory_growing(0, 600 << 10, None).is_err(),
            "a second memory counts against the same cap"
        );
        assert_eq!(l.breached().as_deref(), Some("memory limit of 1 MiB"));
        let mut l = MemoryLimiter::new(1);
        assert!(l.memory_growing(0, 512 << 10, None).is_ok());
        assert!(l.memory_growing(512 << 10, 1 << 20, None).is_ok(), "growth replaces the old size");
        assert!(l.table_growing(0, 1, None).is_err(), "tables count too");
    }
}
