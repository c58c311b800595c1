//! Native micro-benchmark (no Wasm): `window-aggregate` over generated order events
//! (ten milliseconds apart).
//!
//! `cargo run --release -p sluice-plugin-window-aggregate --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use sluice_plugin_window_aggregate::WindowAggregate;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::time_processor;
use sluice_sdk::Params;

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
        let _ = time_processor::<WindowAggregate>(&params, &batches, 1);
        let (us, bytes) = time_processor::<WindowAggregate>(&params, &batches, rounds);
        println!("{name:<44} {us:>8.3}   (output bytes {bytes})");
    }
}
