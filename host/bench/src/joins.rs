//! `sluice-bench --joins`: the join processors, Wasm against the same crates
//! compiled natively, over identical batches and the same host state:
//! 1. `lookup-join`: `--events` orders against a 100,000-row table;
//! 2. `window-join`: `--events` orders buffered, then as many shipments
//!    joining them, with the bytes of state per buffered event.
//!
//! Both sides go through the same host-side state ([`KeyedState`]) and
//! tables ([`Table`]); the native side calls them directly where the Wasm
//! side crosses the component boundary, so the difference is the sandbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use sluice_sdk::{Params, Processor};

use sluice::config::{self, CpuBudget, Limits};
use sluice::event::{Batch, BatchBuilder};
use sluice::plugin::{bindings, ComponentCache, ProcessorInstance, ProcessorPlugin, WasmEngine};
use sluice::state::{KeyedState, Table, TableConfig, TableSink};

use crate::convert::{from_sdk, to_sdk};

const TABLE_ROWS: usize = 100_000;
const BASE_MS: i64 = 1_585_699_200_000; // 2020-04-01T00:00:00Z
const WEEK_MS: i64 = 7 * 86_400_000;

/// The SDK host over the host's own state and tables, without a boundary.
struct NativeHost<'a> {
    state: &'a mut KeyedState,
    tables: &'a HashMap<String, Table>,
}

impl sluice_sdk::Host for NativeHost<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) {
        self.state.put(key.to_vec(), value.to_vec(), ttl_ms)
    }
    fn delete(&mut self, key: &[u8]) {
        self.state.delete(key.to_vec())
    }
    fn scan(&mut self, prefix: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.scan(prefix, limit as usize)
    }
    fn lookup(&mut self, table: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.tables.get(table)?.get(key)
    }
    fn register_timer(&mut self, key: &[u8], at_ms: i64) {
        self.state.register(key.to_vec(), at_ms)
    }
    fn cancel_timer(&mut self, key: &[u8], at_ms: i64) {
        self.state.cancel(key.to_vec(), at_ms)
    }
    fn watermark(&mut self) -> i64 {
        self.state.watermark()
    }
}

fn batches(
    stream: &str,
    size: usize,
    n: usize,
    make: impl Fn(usize) -> (String, i64),
) -> Vec<Batch> {
    let origin: Arc<str> = Arc::from(stream);
    let mut out = Vec::new();
    let mut b = BatchBuilder::new(stream, origin.clone(), size);
    for i in 0..n {
        let (v, ts) = make(i);
        b.push(None, Some(v.as_bytes()), &[], ts, i as u64);
        if b.len() == size {
            out.push(
                std::mem::replace(&mut b, BatchBuilder::new(stream, origin.clone(), size)).finish(),
            );
        }
    }
    if !b.is_empty() {
        out.push(b.finish());
    }
    out
}

fn order(i: usize) -> (String, i64) {
    (
        format!(
            r#"{{"order_id":"o{i}","customer_id":"c{}","price":{}.{:02},"currency":"usd"}}"#,
            (i * 7919) % TABLE_ROWS,
            i % 100,
            i % 97
        ),
        BASE_MS + i as i64 * 1000,
    )
}

fn shipment(i: usize) -> (String, i64) {
    (
        format!(r#"{{"order_id":"o{i}","shipment_id":"s{i}","origin":"texas"}}"#),
        BASE_MS + i as i64 * 1000 + 3_600_000,
    )
}

fn customers_table() -> Result<Table> {
    let table = Table::default();
    let mut sink = TableSink::new(
        "customers",
        TableConfig {
            input: "customers".into(),
            key_field: Some("id".into()),
            max_mb: sluice::state::tables::DEFAULT_MAX_MB,
        },
        table.clone(),
        std::env::temp_dir(),
    );
    let rows = batches("customers", 4096, TABLE_ROWS, |i| {
        (
            format!(r#"{{"id":"c{i}","name":"name-{i}","age":{}}}"#, 20 + i % 60),
            0,
        )
    });
    let mut rejected = sluice::connector::Rejected::default();
    for b in rows {
        sluice::connector::Sink::write(&mut sink, &Arc::new(b), &mut rejected)?;
    }
    Ok(table)
}

/// Runs `batches` through the Wasm instance; returns (time, outputs).
fn run_wasm(inst: &mut ProcessorInstance, batches: &[Batch]) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let mut out = 0;
    for b in batches {
        out += inst
            .process(&b.events)
            .map_err(|e| anyhow!(e))?
            .events
            .events
            .len();
    }
    Ok((t.elapsed(), out))
}

/// Runs `batches` through the native processor; returns (time, outputs).
fn run_native<P: Processor>(
    p: &mut P,
    state: &mut KeyedState,
    tables: &HashMap<String, Table>,
    batches: &[Batch],
) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let mut out = 0;
    for b in batches {
        let raw = to_sdk(&b.events);
        let mut host = NativeHost { state, tables };
        let o: bindings::Output = from_sdk(
            sluice_sdk::processor::run_processor(p, &mut host, &raw)
                .map_err(|e| anyhow!("{e:?}"))?,
        );
        state.commit();
        out += o.events.events.len();
    }
    Ok((t.elapsed(), out))
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn instance(
    plugin_path: &[std::path::PathBuf],
    engine: &WasmEngine,
    cache: &ComponentCache,
    name: &str,
    params: &[(String, String)],
    tables: HashMap<String, Table>,
) -> Result<ProcessorInstance> {
    let base = std::env::current_dir()?;
    let path = config::resolve_plugin(name, &base, plugin_path).map_err(anyhow::Error::msg)?;
    let limits = Limits {
        memory_mb: 512,
        cpu_ms_per_call: CpuBudget::Millis(60_000),
        // The benchmark measures joins over large state, not the ceilings.
        state_mb: 1 << 20,
        state_entries: u64::MAX,
        timers: u64::MAX,
        ..Limits::default()
    };
    let plugin = ProcessorPlugin::load(engine, cache, &path, limits.cpu_ms_per_call)?;
    Ok(ProcessorInstance::new(
        Arc::new(plugin),
        "bench",
        params,
        limits,
        tables,
    )?)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs both measurements with `n` orders (and `n` shipments).
pub fn run(n: usize, batch_size: usize, plugin_path: &[std::path::PathBuf]) -> Result<()> {
    let engine = WasmEngine::new()?;
    let cache = ComponentCache::from_env();

    // 1. lookup-join.
    eprintln!("lookup-join: {n} orders against a {TABLE_ROWS}-row table ...");
    let table = customers_table()?;
    let tables: HashMap<String, Table> = [("customers".to_string(), table)].into();
    let lj = pairs(&[
        ("table", "customers"),
        ("on", "customer_id"),
        (
            "fields",
            "order_id, price, currency, table.id as customer_id, table.name as customer_name, table.age as customer_age",
        ),
    ]);
    let orders = batches("orders", batch_size, n, order);
    let mut wasm = instance(
        plugin_path,
        &engine,
        &cache,
        "lookup-join",
        &lj,
        tables.clone(),
    )?;
    let mut native = sluice_plugin_lookup_join::LookupJoin::new(&Params::new(lj.clone()))
        .map_err(anyhow::Error::msg)?;
    let mut scratch = KeyedState::default();
    // Alternate and keep the best of two, as the other benchmarks do.
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let (w, wo) = run_wasm(&mut wasm, &orders)?;
        let (nt, no) = run_native(&mut native, &mut scratch, &tables, &orders)?;
        anyhow::ensure!(
            wo == n && no == n,
            "every order is emitted once (wasm {wo}, native {no})"
        );
        best = (best.0.min(w), best.1.min(nt));
    }
    let (w_rate, n_rate) = (rate(n, best.0), rate(n, best.1));
    println!("lookup-join, {n} orders x {TABLE_ROWS}-row table, batches of {batch_size}:");
    println!(
        "  wasm {w_rate:.0} events/s, native {n_rate:.0} events/s: wasm = {:.1}% of native; sandbox cost {:.3} us per event (one table lookup each)",
        100.0 * w_rate / n_rate,
        (best.0.as_secs_f64() - best.1.as_secs_f64()) * 1e6 / n as f64
    );

    // 2. window-join.
    eprintln!("window-join: {n} orders buffered, then {n} shipments ...");
    let wj = pairs(&[
        ("left", "orders"),
        ("right", "shipments"),
        ("key", "order_id"),
        ("right_id", "shipment_id"),
        ("within_ms", &WEEK_MS.to_string()),
        (
            "fields",
            "order_id, right.shipment_id, price, currency, right.origin",
        ),
    ]);
    let shipments = batches("shipments", batch_size, n, shipment);
    let mut wasm = instance(
        plugin_path,
        &engine,
        &cache,
        "window-join",
        &wj,
        HashMap::new(),
    )?;
    let (w_orders, _) = run_wasm(&mut wasm, &orders)?;
    let (entries, bytes) = wasm
        .state()
        .lock()
        .map(|s| s.size())
        .map_err(|_| anyhow!("state lock"))?;
    let (w_ship, w_out) = run_wasm(&mut wasm, &shipments)?;
    drop(wasm);
    let mut native = sluice_plugin_window_join::WindowJoin::new(&Params::new(wj.clone()))
        .map_err(anyhow::Error::msg)?;
    let mut state = KeyedState::default();
    let empty = HashMap::new();
    let (n_orders, _) = run_native(&mut native, &mut state, &empty, &orders)?;
    let (n_ship, n_out) = run_native(&mut native, &mut state, &empty, &shipments)?;
    anyhow::ensure!(
        w_out == n && n_out == n,
        "every shipment joins once (wasm {w_out}, native {n_out})"
    );
    let (w_total, n_total) = (w_orders + w_ship, n_orders + n_ship);
    let (w_rate, n_rate) = (rate(2 * n, w_total), rate(2 * n, n_total));
    println!("window-join, {n} x {n} within 7 days, batches of {batch_size}:");
    println!(
        "  wasm {w_rate:.0} events/s, native {n_rate:.0} events/s: wasm = {:.1}% of native",
        100.0 * w_rate / n_rate
    );
    println!(
        "  state: {entries} buffered events, {bytes} bytes of keys and values = {:.0} bytes per buffered event (plus the host's index, about 60 bytes each)",
        bytes as f64 / entries.max(1) as f64
    );
    Ok(())
}
