//! The memory cap of one plugin instance (one store).
//!
//! A component may hold several core instances, each with its own linear
//! memories and tables. Capping each memory alone lets a component with eight
//! 119 MiB memories run at 1 GB under a 128 MiB cap, so this limiter keeps a
//! running total per store across every memory and table, and caps how many
//! core instances, memories and tables a store may create at all.

use super::host::HostState;
use super::limits::{component_counts, ComponentCounts};

/// What a plugin instance's store holds: what the host gives the plugin, and
/// the limiter that caps the store as a whole.
pub struct StoreData {
    /// Logging, state, tables, timers.
    pub host: HostState,
    /// The memory cap of the whole store.
    pub limiter: StoreLimiter,
}

impl StoreData {
    /// `host` under a cap of `memory_mb` MiB.
    pub fn new(host: HostState, memory_mb: u64) -> Self {
        Self {
            host,
            limiter: StoreLimiter::new(memory_mb),
        }
    }

    /// A store on `engine` whose limiter is this data's.
    pub fn store(self, engine: &wasmtime::Engine) -> wasmtime::Store<StoreData> {
        let mut store = wasmtime::Store::new(engine, self);
        store.limiter(|s| &mut s.limiter);
        store
    }
}

/// Bytes charged per table element (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Caps the memory of one store and remembers a breach, so the failure names
/// the limit instead of surfacing as a bare trap.
pub struct StoreLimiter {
    max_bytes: usize,
    max_mb: u64,
    /// Bytes of every memory and table of the store so far.
    used: usize,
    breached: Option<String>,
    counts: ComponentCounts,
}

impl StoreLimiter {
    /// A limiter for `memory_mb` MiB in total.
    pub fn new(memory_mb: u64) -> Self {
        Self {
            max_bytes: usize::try_from(memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            max_mb: memory_mb,
            used: 0,
            breached: None,
            counts: component_counts(),
        }
    }

    /// Bytes of every memory and table of the store so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The breached limit, if any, as text for messages.
    pub fn breached(&self) -> Option<String> {
        self.breached.clone()
    }

    fn grow(&mut self, current: usize, desired: usize, what: &str) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
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

impl wasmtime::ResourceLimiter for StoreLimiter {
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
        self.counts.instances
    }

    fn memories(&self) -> usize {
        self.counts.memories
    }

    fn tables(&self) -> usize {
        self.counts.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::limits::MEMORIES_PER_COMPONENT;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memories_of_one_store_are_summed() {
        let mut l = StoreLimiter::new(1);
        assert!(l.memory_growing(0, 600 << 10, None).is_ok());
        assert!(
            l.memory_growing(0, 600 << 10, None).is_err(),
            "a second memory counts against the same cap"
        );
        assert_eq!(l.breached().as_deref(), Some("memory limit of 1 MiB"));
        let mut l = StoreLimiter::new(1);
        assert!(l.memory_growing(0, 512 << 10, None).is_ok());
        assert!(
            l.memory_growing(512 << 10, 1 << 20, None).is_ok(),
            "growth replaces the old size"
        );
        assert!(l.table_growing(0, 1, None).is_err(), "tables count too");
    }

    /// A component of `instances` core instances, each with one memory of
    /// `pages` 64 KiB pages.
    fn component_of_memories(instances: u32, pages: u64) -> Vec<u8> {
        use wasm_encoder::{
            Component, InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection,
        };
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: pages,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut module = Module::new();
        module.section(&memories);
        let mut component = Component::new();
        component.section(&ModuleSection(&module));
        let mut instances_section = InstanceSection::new();
        for _ in 0..instances {
            instances_section.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        }
        component.section(&instances_section);
        component.finish()
    }

    fn instantiate(
        engine: &wasmtime::Engine,
        bytes: &[u8],
        memory_mb: u64,
    ) -> Result<wasmtime::Store<StoreData>, String> {
        let component =
            wasmtime::component::Component::new(engine, bytes).map_err(|e| format!("{e:?}"))?;
        let mut store = StoreData::new(HostState::new("s", "p"), memory_mb).store(engine);
        wasmtime::component::Linker::new(engine)
            .instantiate(&mut store, &component)
            .map_err(|e| format!("{e:?}"))?;
        Ok(store)
    }

    #[test]
    fn a_component_of_many_memories_is_refused_and_never_starves_its_neighbours() {
        let wasm = crate::plugin::WasmEngine::new().expect("engine");
        let engine = wasm.engine();
        // Eight core instances of 119 MiB each under a 128 MiB cap (1 GB
        // before): refused, here already by the count of memories.
        assert!(instantiate(engine, &component_of_memories(8, 1904), 128).is_err());
        // Four of 40 MiB: each memory alone fits, their sum does not.
        let err = instantiate(engine, &component_of_memories(4, 640), 128)
            .err()
            .expect("refused");
        assert!(err.contains("memory limit of 128 MiB"), "{err}");
        // More memories than a store may hold, however small: refused.
        let many = instantiate(
            engine,
            &component_of_memories(MEMORIES_PER_COMPONENT as u32 + 1, 1),
            128,
        );
        assert!(
            many.is_err(),
            "{} memories accepted",
            MEMORIES_PER_COMPONENT + 1
        );
        // 64 stores holding the most memories each may hold (256 memories,
        // the whole pool before), and a neighbour still gets its memory.
        let hog = component_of_memories(MEMORIES_PER_COMPONENT as u32, 1);
        let held: Vec<_> = (0..64)
            .map(|i| instantiate(engine, &hog, 128).unwrap_or_else(|e| panic!("store {i}: {e}")))
            .collect();
        let neighbour = instantiate(engine, &component_of_memories(1, 1), 128);
        assert!(neighbour.is_ok(), "{:?}", neighbour.err());
        drop(held);
    }
}
