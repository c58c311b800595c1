//! Native micro-benchmark (no Wasm): `mask` over generated order events.
//!
//! `cargo run --release -p sluice-plugin-mask --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use sluice_plugin_mask::Mask;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::time_transform;
use sluice_sdk::{Params, Transform};

const BATCH: usize = 1024;

/// Deterministic orders shaped like issue 13's workload (~147 bytes each).
fn orders(n: usize) -> Vec<RawBatch> {
    let mut batches = Vec::new();
    let mut batch = RawBatch::default();
    for value in sluice_sdk::testing::sample_orders(n) {
        batch.push_event(None, Some(value.as_bytes()), &[], 0, 0);
        if batch.len() == BATCH {
            batches.push(std::mem::take(&mut batch));
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
    let jobs: [(&str, &[(&str, &str)]); 3] = [
        ("mask drop ts", &[("drop", "ts")]),
        (
            "mask hash order_id + redact currency",
            &[
                ("hash", "order_id"),
                ("hash_key", "bench-key"),
                ("redact", "currency"),
            ],
        ),
        ("mask nothing matches (forward)", &[("drop", "phone")]),
    ];
    println!("{n} order events, {rounds} rounds, native, µs/event (lower is better)");
    for (name, p) in jobs {
        let params = Params::new(p.iter().copied());
        let mut t = Mask::new(&params).unwrap_or_else(|e| panic!("{e}"));
        let _ = time_transform(&mut t, &batches, 1);
        let (us, bytes) = time_transform(&mut t, &batches, rounds);
        println!("{name:<40} {us:>8.3}   (output bytes {bytes})");
    }
}
