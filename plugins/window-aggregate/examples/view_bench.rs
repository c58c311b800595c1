//! Native micro-benchmark (no Wasm): `window-aggregate` over generated order events
//! (ten milliseconds apart).
//!
//! `cargo run --release -p sluice-plugin-window-aggregate --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use std::time::{Duration, Instant};

use sluice_plugin_window_aggregate::WindowAggregate;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::processor::run_processor;
use sluice_sdk::testing::MemoryHost;
use sluice_sdk::{Params, Processor};

const BATCH: usize = 1024;

fn stream_batch() -> RawBatch {
    RawBatch {
        streams: vec!["orders".to_string()],
        ..RawBatch::default()
    }
}

/// Deterministic orders shaped like issue 13's workload (~147 bytes each).
fn orders(n: usize) -> Vec<RawBatch> {
    let mut batches = Vec::new();
    let mut batch = stream_batch();
    for (i, value) in sluice_sdk::testing::sample_orders(n).enumerate() {
        batch.push_event(None, Some(value.as_bytes()), &[], i as i64 * 10, 0);
        if batch.len() == BATCH {
            batches.push(std::mem::replace(&mut batch, stream_batch()));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Runs `p` over every batch `rounds` times, each round on a fresh
/// in-memory host (timers are not fired: this measures `process`); µs per
/// input event and output bytes per round.
fn time<P: Processor>(params: &Params, batches: &[RawBatch], rounds: usize) -> (f64, usize) {
    let events: usize = batches.iter().map(RawBatch::len).sum();
    let mut out_bytes = 0;
    let mut spent = Duration::ZERO;
    for _ in 0..rounds {
        let mut p = P::new(params).unwrap_or_else(|e| panic!("{e}"));
        let mut host = MemoryHost::default();
        let start = Instant::now();
        for b in batches {
            match run_processor(&mut p, &mut host, b) {
                Ok(out) => out_bytes += out.events.data.len(),
                Err(e) => panic!("call failed: {e:?}"),
            }
        }
        spent += start.elapsed();
    }
    let us = spent.as_secs_f64() * 1e6 / (events * rounds) as f64;
    (us, out_bytes / rounds)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let batches = orders(n);
    let rounds = 5;
    let jobs: [(&str, &[(&str, &str)]); 2] = [
        (
            "tumbling 1 min by currency, 5 aggregates",
            &[
                ("size_ms", "60000"),
                ("group_by", "currency"),
                (
                    "aggregates",
                    "count, sum(price), avg(price), max(price), latest(order_id)",
                ),
            ],
        ),
        (
            "tumbling 1 min by currency, count",
            &[("size_ms", "60000"), ("group_by", "currency")],
        ),
    ];
    println!("{n} order events, {rounds} rounds, native, µs/event (lower is better)");
    for (name, p) in jobs {
        let params = Params::new(p.iter().copied());
        let _ = time::<WindowAggregate>(&params, &batches, 1);
        let (us, bytes) = time::<WindowAggregate>(&params, &batches, rounds);
        println!("{name:<44} {us:>8.3}   (output bytes {bytes})");
    }
}
