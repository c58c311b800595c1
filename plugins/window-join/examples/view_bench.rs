//! Native micro-benchmark (no Wasm): `window-join` over generated orders and their shipments.
//!
//! `cargo run --release -p sluice-plugin-window-join --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use sluice_plugin_window_join::WindowJoin;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::time_processor;
use sluice_sdk::Params;

const BATCH: usize = 1024;

fn stream_batch() -> RawBatch {
    RawBatch {
        streams: vec!["orders".to_string(), "shipments".to_string()],
        ..RawBatch::default()
    }
}

/// Deterministic orders (`sluice_sdk::testing::sample_orders`, ~147 bytes
/// each) and one shipment per order.
fn orders(n: usize) -> Vec<RawBatch> {
    let mut batches = Vec::new();
    let mut batch = stream_batch();
    for (i, value) in sluice_sdk::testing::sample_orders(n).enumerate() {
        // `{"order_id":"` then the 36-character UUID.
        let order_id = value.get(13..49).unwrap_or_default();
        // Each order, then its shipment a second later on the other input.
        let ts = i as i64 * 1000;
        batch.push_event(None, Some(value.as_bytes()), &[], ts, 0);
        let shipment = format!(
            r#"{{"order_id":"{order_id}","shipment_id":"s{i}","origin":"warehouse-{}","weight_g":{}}}"#,
            i % 7,
            (i * 37) % 5000
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
        let _ = time_processor::<WindowJoin>(&params, &batches, 1);
        let (us, bytes) = time_processor::<WindowJoin>(&params, &batches, rounds);
        println!("{name:<44} {us:>8.3}   (output bytes {bytes})");
    }
}
