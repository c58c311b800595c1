//! Native micro-benchmark (no Wasm): `filter` and `project` over generated
//! order events, the old tree path and the zero-copy view path in one run.
//!
//! `cargo run --release -p sluice-plugin-project --example view_bench [events]`
//!
//! Prints wall-clock µs per event for each path (single thread, so wall ≈ CPU).
//! It is a measurement, not a test: nothing is asserted about speed.

use sluice_plugin_filter::Filter;
use sluice_plugin_project::Project;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::time_transform;
use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

const BATCH: usize = 1024;

/// One measured path: returns (µs per event, output bytes per round).
type Timer<'a> = Box<dyn FnMut() -> (f64, usize) + 'a>;

/// The filter as it was before the view: serde partial parse of the fields
/// the condition reads.
struct TreeFilter(sluice_expr::Expr);

impl Transform for TreeFilter {
    fn new(params: &Params) -> Result<Self, String> {
        sluice_expr::Expr::parse(params.required("where")?)
            .map(TreeFilter)
            .map_err(|e| e.to_string())
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        let Some(bytes) = event.value() else {
            out.forward();
            return Ok(());
        };
        let value = self.0.parse_input(bytes).map_err(EventError::reject)?;
        if self.0.matches(&value) {
            out.forward();
        }
        Ok(())
    }
}

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

fn params(p: &[(&str, &str)]) -> Params {
    Params::new(p.iter().copied())
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let batches = orders(n);
    let rounds = 5;
    let where_ = params(&[("where", "currency != 'aud'")]);
    let project = params(&[
        ("select", "order_id, customer_id, currency"),
        ("set", r#"{"price_cents": "round(price * 100)"}"#),
    ]);
    let rename_drop = params(&[("rename", r#"{"order_id": "id"}"#), ("drop", "ts")]);

    let build = |p: &Params| Project::new(p).unwrap_or_else(|e| panic!("{e}"));
    let filter_tree = TreeFilter::new(&where_).unwrap_or_else(|e| panic!("{e}"));
    let filter_view = Filter::new(&where_).unwrap_or_else(|e| panic!("{e}"));
    let rows: [(&str, Timer<'_>, Timer<'_>); 3] = [
        (
            "filter currency != 'aud'",
            Box::new({
                let mut t = filter_tree;
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
            Box::new({
                let mut t = filter_view;
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
        ),
        (
            "project select 3 + set price_cents",
            Box::new({
                let mut t = build(&project).without_splicing();
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
            Box::new({
                let mut t = build(&project);
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
        ),
        (
            "project rename 1 + drop 1",
            Box::new({
                let mut t = build(&rename_drop).without_splicing();
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
            Box::new({
                let mut t = build(&rename_drop);
                let b = &batches;
                move || time_transform(&mut t, b, rounds)
            }),
        ),
    ];
    println!("{n} order events, {rounds} rounds, native, µs/event (lower is better)");
    println!(
        "{:<38} {:>10} {:>10} {:>8}",
        "job", "tree", "view", "speedup"
    );
    for (name, mut tree, mut view) in rows {
        // Warm up both, then measure.
        let _ = (tree(), view());
        let (t, t_bytes) = tree();
        let (v, v_bytes) = view();
        println!(
            "{name:<38} {t:>10.3} {v:>10.3} {:>7.1}x   (output bytes tree {t_bytes}, view {v_bytes})",
            t / v
        );
    }
}
