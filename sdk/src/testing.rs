//! A stub host for native unit tests: runs a [`Transform`] over JSON values
//! with the same batch loop the Wasm build uses, no runtime needed.

use crate::abi::{CallError, RawBatch, RawOutput};
use crate::{run_transform, Params, Transform};

/// What a transform produced in a test run.
#[derive(Debug, Clone)]
pub struct TestOutput {
    /// The raw output batch.
    pub raw: RawOutput,
}

impl TestOutput {
    /// Output values exactly as emitted, byte for byte, as UTF-8 strings
    /// (`"null"` stands for a tombstone).
    pub fn raw_values(&self) -> Vec<String> {
        self.raw
            .events
            .events
            .iter()
            .map(
                |e| match e.value.and_then(|s| s.slice(&self.raw.events.data)) {
                    Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    None => "null".to_string(),
                },
            )
            .collect()
    }

    /// Output values as UTF-8 strings (`"null"` stands for a tombstone).
    /// JSON values are written canonically (compact, object keys sorted), so
    /// a test does not depend on whether serde_json keeps insertion order
    /// (its `preserve_order` feature, which any crate in a build can turn on).
    pub fn values(&self) -> Vec<String> {
        self.raw
            .events
            .events
            .iter()
            .map(
                |e| match e.value.and_then(|s| s.slice(&self.raw.events.data)) {
                    Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
                        Ok(v) => canonical(&v),
                        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                    },
                    None => "null".to_string(),
                },
            )
            .collect()
    }

    /// Output values parsed as JSON (tombstones as `Value::Null`).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.values()
            .iter()
            .map(|v| serde_json::from_str(v).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// Output keys as UTF-8 strings.
    pub fn keys(&self) -> Vec<Option<String>> {
        self.raw
            .events
            .events
            .iter()
            .map(|e| {
                e.key
                    .and_then(|s| s.slice(&self.raw.events.data))
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect()
    }

    /// (input index, reason) of every rejected input event.
    pub fn rejected(&self) -> Vec<(u32, String)> {
        self.raw
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.clone()))
            .collect()
    }
}

/// Why a test run failed before producing output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// `Transform::new` refused the parameters.
    Init(String),
    /// The call failed as a whole.
    Call(CallError),
}

/// Builds a transform from `params` and runs it over `values` (JSON text;
/// `"null"`... is a JSON null value, use [`run_batch`] for tombstones).
pub fn run<T: Transform>(
    params: &[(&str, &str)],
    values: &[&str],
) -> Result<TestOutput, TestError> {
    let mut batch = RawBatch {
        streams: vec!["test".to_string()],
        ..RawBatch::default()
    };
    for v in values {
        batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
    }
    run_batch::<T>(params, &batch)
}

/// A batch of `values` on the stream `test`, each JSON object with the field
/// table the host sends a plugin that reads them
/// ([`crate::declare_field_tables`]), as [`crate::json::table::encode`]
/// makes it. [`run`] sends none, so a plugin scans; run both to test both.
pub fn batch_with_tables(values: &[&str]) -> RawBatch {
    let mut batch = RawBatch {
        streams: vec!["test".to_string()],
        ..RawBatch::default()
    };
    let mut table = Vec::new();
    for v in values {
        batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
        table.clear();
        if crate::json::table::encode(v.as_bytes(), &mut table) == Ok(true) {
            let at = u32::try_from(batch.data.len()).unwrap_or(0);
            batch.data.extend_from_slice(&table);
            if let Some(e) = batch.events.last_mut() {
                e.field_table = at;
            }
        }
    }
    batch
}

/// Builds a transform from `params` and runs it over a hand-built batch,
/// then calls [`Transform::finish`] as the end of a run would (what it logs
/// is in [`crate::log::take_captured`]).
pub fn run_batch<T: Transform>(
    params: &[(&str, &str)],
    batch: &RawBatch,
) -> Result<TestOutput, TestError> {
    let params = Params::new(params.iter().copied());
    let mut transform = T::new(&params).map_err(TestError::Init)?;
    let raw = run_transform(&mut transform, batch).map_err(TestError::Call)?;
    // The end of the stream, as the host's end of a run.
    transform.finish();
    Ok(TestOutput { raw })
}

/// An in-memory [`Host`](crate::Host) for native processor tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryHost {
    /// Keyed state.
    pub state: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// Tables by name.
    pub tables: std::collections::HashMap<String, std::collections::HashMap<Vec<u8>, Vec<u8>>>,
    /// Pending timers.
    pub timers: std::collections::BTreeSet<(i64, Vec<u8>)>,
    /// The watermark.
    pub watermark: i64,
    /// Table calls made: one per `lookup`, one per `lookup_many` whatever
    /// its number of keys (what crossing the boundary would cost).
    pub table_calls: u64,
}

impl crate::Host for MemoryHost {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }
    fn put(&mut self, key: &[u8], value: &[u8], _ttl_ms: Option<u64>) {
        self.state.insert(key.to_vec(), value.to_vec());
    }
    fn delete(&mut self, key: &[u8]) {
        self.state.remove(key);
    }
    fn scan(&mut self, prefix: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit as usize)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn lookup(&mut self, table: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.table_calls += 1;
        self.tables.get(table)?.get(key).cloned()
    }
    fn lookup_many(&mut self, table: &str, keys: &[&[u8]]) -> crate::abi::Rows {
        self.table_calls += 1;
        let mut rows = crate::abi::Rows::default();
        let table = self.tables.get(table);
        for k in keys {
            rows.push(table.and_then(|t| t.get(*k)).map(Vec::as_slice));
        }
        rows
    }
    fn register_timer(&mut self, key: &[u8], at_ms: i64) {
        self.timers.insert((at_ms, key.to_vec()));
    }
    fn cancel_timer(&mut self, key: &[u8], at_ms: i64) {
        self.timers.remove(&(at_ms, key.to_vec()));
    }
    fn watermark(&mut self) -> i64 {
        self.watermark
    }
}

/// Drives a [`Processor`](crate::Processor) natively the way the host does:
/// events one at a time, the watermark following the newest event time, and
/// timers fired once it passes them.
pub struct Harness<P> {
    /// The processor under test.
    pub processor: P,
    /// Its state, tables and timers.
    pub host: MemoryHost,
}

/// One output event: key and value as text (`None` value = tombstone).
pub type Out = (Option<String>, Option<String>);

/// An output value parsed as JSON (`Null` for a tombstone or non-JSON), for
/// comparisons that must not depend on field order.
pub fn json_of(value: &Option<String>) -> serde_json::Value {
    value
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn outs(raw: &RawOutput) -> Vec<Out> {
    let data = &raw.events.data;
    raw.events
        .events
        .iter()
        .map(|e| {
            let text = |s: Option<crate::abi::Span>| {
                s.and_then(|s| s.slice(data))
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            (text(e.key), text(e.value))
        })
        .collect()
}

impl<P: crate::Processor> Harness<P> {
    /// Builds the processor from `params`.
    pub fn new(params: &[(&str, &str)]) -> Result<Self, String> {
        let params = Params::new(params.iter().copied());
        Ok(Self {
            processor: P::new(&params)?,
            host: MemoryHost {
                watermark: i64::MIN,
                ..MemoryHost::default()
            },
        })
    }

    /// Puts a row into table `table`.
    pub fn table_row(&mut self, table: &str, key: &str, value: &str) {
        self.host
            .tables
            .entry(table.to_string())
            .or_default()
            .insert(key.as_bytes().to_vec(), value.as_bytes().to_vec());
    }

    /// Sends one event on input `stream` at event time `ts`, then moves the
    /// watermark to `ts` (if later) and fires due timers. Returns everything
    /// emitted, or the rejection reason.
    pub fn send(
        &mut self,
        stream: &str,
        key: Option<&str>,
        value: Option<&str>,
        ts: i64,
    ) -> Result<Vec<Out>, String> {
        let mut batch = RawBatch {
            streams: vec![stream.to_string()],
            ..RawBatch::default()
        };
        batch.push_event(key.map(str::as_bytes), value.map(str::as_bytes), &[], ts, 0);
        let raw = crate::processor::run_processor(&mut self.processor, &mut self.host, &batch)
            .map_err(|e| format!("{e:?}"))?;
        if let Some(r) = raw.rejected.first() {
            return Err(r.reason.clone());
        }
        let mut out = outs(&raw);
        out.extend(self.advance(ts)?);
        Ok(out)
    }

    /// Moves the watermark to `to` and fires the timers it passed.
    pub fn advance(&mut self, to: i64) -> Result<Vec<Out>, String> {
        if to > self.host.watermark {
            self.host.watermark = to;
        }
        let mut out = Vec::new();
        loop {
            let due: Vec<(Vec<u8>, i64)> = self
                .host
                .timers
                .iter()
                .take_while(|(at, _)| *at <= self.host.watermark)
                .map(|(at, k)| (k.clone(), *at))
                .collect();
            if due.is_empty() {
                return Ok(out);
            }
            for (k, at) in &due {
                self.host.timers.remove(&(*at, k.clone()));
            }
            let raw = crate::processor::run_timers(&mut self.processor, &mut self.host, &due)
                .map_err(|e| format!("{e:?}"))?;
            out.extend(outs(&raw));
        }
    }
}

/// Runs a processor over `(key, value)` events at event time `ts` with a
/// fresh in-memory host; returns the outputs of the batch.
pub fn run_processor<P: crate::Processor>(
    params: &[(&str, &str)],
    events: &[(Option<&str>, &str)],
    ts: i64,
) -> Result<TestOutput, TestError> {
    let params = Params::new(params.iter().copied());
    let mut p = P::new(&params).map_err(TestError::Init)?;
    let mut batch = RawBatch {
        streams: vec!["test".to_string()],
        ..RawBatch::default()
    };
    for (k, v) in events {
        batch.push_event(k.map(str::as_bytes), Some(v.as_bytes()), &[], ts, 0);
    }
    let mut host = MemoryHost::default();
    let raw =
        crate::processor::run_processor(&mut p, &mut host, &batch).map_err(TestError::Call)?;
    Ok(TestOutput { raw })
}

/// Compact JSON with object keys sorted.
pub fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        canonical(&m[k])
                    )
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

/// Deterministic sample orders shaped like the project's benchmark workload
/// (`order_id` a UUID, `customer_id`, `price` with two decimals, `currency`
/// one of six, `ts` ISO-8601; about 147 bytes each), for measuring a plugin
/// natively. The same `n` always gives the same strings.
pub fn sample_orders(n: usize) -> impl Iterator<Item = String> {
    const CURRENCIES: [&str; 6] = ["usd", "eur", "gbp", "aud", "jpy", "cad"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n).map(move |i| {
        let (a, b) = (next(), next());
        format!(
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
        )
    })
}

/// Runs transform `t` over every batch `rounds` times: wall-clock µs per input
/// event (one thread, so about its CPU time) and output bytes per round. A
/// measurement for native micro-benchmarks, not a test: it asserts nothing.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_transform<T: Transform>(
    t: &mut T,
    batches: &[RawBatch],
    rounds: usize,
) -> (f64, usize) {
    let events: usize = batches.iter().map(RawBatch::len).sum();
    let mut out_bytes = 0;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for b in batches {
            match run_transform(t, b) {
                Ok(out) => out_bytes += out.events.data.len(),
                Err(e) => panic!("call failed: {e:?}"),
            }
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / (events * rounds).max(1) as f64;
    (us, out_bytes / rounds.max(1))
}

/// Runs processor `P` over every batch `rounds` times, each round on a fresh
/// [`MemoryHost`] (timers are not fired: this measures `process`): wall-clock
/// µs per input event and output bytes per round. A measurement for native
/// micro-benchmarks, not a test: it asserts nothing.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_processor<P: crate::Processor>(
    params: &Params,
    batches: &[RawBatch],
    rounds: usize,
) -> (f64, usize) {
    let events: usize = batches.iter().map(RawBatch::len).sum();
    let mut out_bytes = 0;
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..rounds {
        let mut p = P::new(params).unwrap_or_else(|e| panic!("{e}"));
        let mut host = MemoryHost::default();
        let start = std::time::Instant::now();
        for b in batches {
            match crate::processor::run_processor(&mut p, &mut host, b) {
                Ok(out) => out_bytes += out.events.data.len(),
                Err(e) => panic!("call failed: {e:?}"),
            }
        }
        spent += start.elapsed();
    }
    let us = spent.as_secs_f64() * 1e6 / (events * rounds).max(1) as f64;
    (us, out_bytes / rounds.max(1))
}

#[cfg(feature = "connector")]
#[path = "testing_connector.rs"]
mod connector_harness;
#[cfg(all(feature = "connector", not(target_arch = "wasm32")))]
pub(crate) use connector_harness::{clock_monotonic_ns, clock_now_ms, http_stub};
#[cfg(feature = "connector")]
pub use connector_harness::{
    with_clock, with_http, ClockGuard, HttpGuard, SinkHarness, SourceHarness,
};
