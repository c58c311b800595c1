//! Native micro-benchmark (no Wasm): `mask` over generated order events.
//!
//! `cargo run --release -p sluice-plugin-mask --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use std::time::Instant;

use sluice_plugin_mask::Mask;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::{run_transform, Params, Transform};

const BATCH: usize = 1024;

/// Deterministic orders shaped like issue 13's workload (~147 bytes each).
fn orders(n: usize) -> Vec<RawBatch> {
    const CURRENCIES: [&str; 6] = ["usd", "eur", "gbp", "aud", "jpy", "cad"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut batches = Vec::new();
    let mut batch = RawBatch::default();
    for i in 0..n {
        let (a, b) = (next(), next());
        let value = format!(
            r#"{{"order_id":"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}","customer_id":{},"price":{}.{:02},"currency":"{}","ts":"2024-03-{:02}T{:02}:{:02}:{:02}.{:03}Z"}}"#,
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff,
            b % 10_000,
            a % 1000,
            b % 100,
            CURRENCIES[(a % 6) as usize],
            1 + i % 28,
            i % 24,
            i % 60,
            (i / 60) % 60,
            i % 1000
        );
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

/// Runs `t` over every batch `rounds` times; µs per input event and output bytes.
fn time<T: Transform>(t: &mut T, batches: &[RawBatch], rounds: usize) -> (f64, usize) {
    let events: usize = batches.iter().map(RawBatch::len).sum();
    let mut out_bytes = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        for b in batches {
            match run_transform(t, b) {
                Ok(out) => out_bytes += out.events.data.len(),
                Err(e) => panic!("call failed: {e:?}"),
            }
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / (events * rounds) as f64;
    (us, out_bytes / rounds)
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
        let _ = time(&mut t, &batches, 1);
        let (us, bytes) = time(&mut t, &batches, rounds);
        println!("{name:<40} {us:>8.3}   (output bytes {bytes})");
    }
}
