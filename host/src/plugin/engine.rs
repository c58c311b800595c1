//! The shared Wasm engine: compilation settings, the pooling allocator, and
//! the epoch ticker that enforces per-call CPU budgets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::component_counts;

/// How often the epoch advances; CPU budgets are rounded up to this.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The largest memory any instance may ever have (the per-stage cap is lower).
const POOL_MAX_MEMORY: usize = 4 << 30;

/// Plugin instances (stores) alive at once in one process: one per stage,
/// plus short-lived ones that load and describe plugins.
const POOL_STORES: usize = 256;

/// The engines of a process, shared by every pipeline and stage: one compiled
/// with epoch checks (CPU budgets), and, only if a stage asks for
/// `cpu_ms_per_call: unlimited`, one without them.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    unbounded: Arc<std::sync::OnceLock<Engine>>,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl WasmEngine {
    /// Builds the engine. Epoch interruption (not fuel) bounds CPU: measured
    /// here it costs 16–24% per event against 27–37% for fuel.
    pub fn new() -> Result<Self> {
        let engine = Self::build(true)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        Ok(Self {
            engine,
            unbounded: Arc::new(std::sync::OnceLock::new()),
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    fn build(epochs: bool) -> Result<Engine> {
        match Engine::new(&Self::config(true, epochs)) {
            Ok(e) => Ok(e),
            Err(e) => {
                // Some sandboxes cap virtual memory below what the pool reserves.
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand instance allocation");
                Engine::new(&Self::config(false, epochs)).map_err(|e| anyhow::anyhow!("{e:?}"))
            }
        }
    }

    /// The engine for a stage's CPU budget.
    pub fn engine_for(&self, budget: super::limits::CpuBudget) -> Result<&Engine> {
        match budget {
            super::limits::CpuBudget::Millis(_) => Ok(&self.engine),
            super::limits::CpuBudget::Unlimited => {
                if let Some(e) = self.unbounded.get() {
                    return Ok(e);
                }
                let e = Self::build(false)?;
                Ok(self.unbounded.get_or_init(|| e))
            }
        }
    }

    fn config(pooling: bool, epochs: bool) -> Config {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(epochs);
        // Profiling only: `/tmp/perf-PID.map` lets `perf report` name guest
        // functions instead of `[JIT] tid N` addresses (docs/performance.md).
        if std::env::var_os("SLUICE_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if pooling {
            // Sized from the per-store caps the limiter enforces: every one
            // of POOL_STORES live plugin instances can hold its full share,
            // so no stage can take another's slots (255 one-page memories
            // in one component once starved every other stage).
            let counts = component_counts();
            let total =
                |per: usize| u32::try_from(POOL_STORES.saturating_mul(per)).unwrap_or(u32::MAX);
            let per = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(POOL_STORES as u32);
            pool.total_core_instances(total(counts.instances));
            pool.total_memories(total(counts.memories));
            pool.total_tables(total(counts.tables));
            pool.max_memories_per_component(per(counts.memories));
            pool.max_tables_per_component(per(counts.tables));
            pool.max_memory_size(POOL_MAX_MEMORY);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }

    /// The engine with CPU budgets (the default).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Epoch ticks for a CPU budget.
    pub fn ticks_for(budget: Duration) -> u64 {
        let tick = EPOCH_TICK.as_micros().max(1);
        (budget.as_micros().div_ceil(tick)).max(1) as u64
    }
}
