//! Native micro-benchmark (no Wasm): `window-join` over generated orders and their shipments.
//!
//! `cargo run --release -p sluice-plugin-window-join --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use std::time::{Duration, Instant};

use sluice_plugin_window_join::WindowJoin;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::processor::run_processor;
use sluice_sdk::testing::MemoryHost;
use sluice_sdk::{Params, Processor};

const BATCH: usize = 1024;

fn stream_batch() -> RawBatch {
    RawBatch {
        streams: vec!["orders".to_string(), "shipments".to_string()],
        ..RawBatch::default()
    }
}

/// Deterministic orders (and one shipment per order) shaped like issue 13's workload (~147 bytes each).
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
    let mut batch = stream_batch();
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
        // Each order, then its shipment a second later on the other input.
        let ts = i as i64 * 1000;
        batch.push_event(None, Some(value.as_bytes()), &[], ts, 0);
        let shipment = format!(
            r#"{{"order_id":"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}","shipment_id":"s{i}","origin":"warehouse-{}","weight_g":{}}}"#,
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff,
            b % 7,
            a % 5000
        );
        batch.push_event(None, Some(shipment.as_bytes()), &[], ts + 1000, 1);
        if batch.len() >= BATCH {
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
            "window-join fields (4 of 2 sides)",
            &[
                ("left", "orders"),
                ("right", "shipments"),
                ("key", "order_id"),
                ("right_id", "shipment_id"),
                ("within_ms", "604800000"),
                ("fields", "order_id, right.shipment_id, price, right.origin"),
            ],
        ),
        (
            "window-join default output {left, right}",
            &[
                ("left", "orders"),
                ("right", "shipments"),
                ("key", "order_id"),
                ("within_ms", "604800000"),
            ],
        ),
    ];
    println!("{n} orders and {n} shipments, {rounds} rounds, native, µs/event (lower is better)");
    for (name, p) in jobs {
        let params = Params::new(p.iter().copied());
        let _ = time::<WindowJoin>(&params, &batches, 1);
        let (us, bytes) = time::<WindowJoin>(&params, &batches, rounds);
        println!("{name:<44} {us:>8.3}   (output bytes {bytes})");
    }
}
