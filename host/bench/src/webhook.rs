//! `sluice-bench --webhook`: the `webhook-sink` example connector (Wasm, run
//! by the host's `wasm` sink through the `http` grant) against the same sink
//! written natively in the host ([`NativeWebhook`]), both POSTing the same
//! batches of JSON events to one local HTTP endpoint in this process, in one
//! run, alternating. Prints events/s of each and the ratio.
//!
//! The endpoint only reads each request and counts requests and body bytes,
//! so that the time measured is the sink's; both sides send the same bodies,
//! and each pass is checked to have delivered one POST per batch with
//! exactly the bytes of the JSON arrays of all its events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use sluice::connector::{Backoff, Rejected, Sink, SinkConfig};
use sluice::event::{Batch, BatchBuilder};
use sluice::sinks::wasm::WasmSinkConfig;

/// Batches between two flushes (a checkpoint barrier in a pipeline).
const BATCHES_PER_FLUSH: usize = 16;

/// Finds `webhook-sink.wasm`: `explicit`, else in `search`, else in
/// `test-guests/` of the target directory this binary was built in (where
/// `scripts/build-plugins.sh --test-guests` puts it).
pub fn find_wasm(explicit: Option<&Path>, search: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut tried = Vec::new();
    let beside = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("test-guests"));
    for dir in search.iter().cloned().chain(beside) {
        let p = dir.join("webhook-sink.wasm");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    bail!(
        "webhook-sink.wasm not found (tried {}); build it with scripts/build-plugins.sh --test-guests or name it with --webhook-wasm",
        tried.join(", ")
    )
}

/// The native twin of `examples/connectors/webhook-sink`: each batch POSTed
/// as a JSON array of the events' values; 2xx delivered; 429, 5xx and
/// transport failures retried with backoff; any other status splits the
/// batch into one-event POSTs and rejects each event still refused, with
/// the status and response text. The HTTP client is configured as the
/// host's `http` grant configures its own (`plugin/net.rs`).
pub struct NativeWebhook {
    url: String,
    agent: ureq::Agent,
    backoff: Backoff,
}

impl NativeWebhook {
    /// A sink POSTing to `url`.
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build()
            .new_agent();
        Self {
            url: url.to_string(),
            agent,
            backoff: Backoff::from_millis(100, 10_000),
        }
    }

    /// POSTs `body`, retrying 429, 5xx and transport failures; returns the
    /// final status and response text.
    fn post(&mut self, body: &[u8]) -> Result<(u16, String)> {
        let mut attempt = 0;
        loop {
            let outcome = self
                .agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .send(body);
            let wait = match outcome {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status != 429 && !(500..=599).contains(&status) {
                        return Ok((status, text));
                    }
                    attempt += 1;
                    self.backoff.delay(attempt)
                }
                Err(e) => {
                    attempt += 1;
                    let wait = self.backoff.delay(attempt);
                    eprintln!("webhook: {e}; retrying in {wait:?}");
                    wait
                }
            };
            std::thread::sleep(wait);
        }
    }
}

/// A JSON array of the values of `values` (tombstones as `null`).
fn array<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<u8> {
    let mut body = vec![b'['];
    for (i, v) in values.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(v.unwrap_or(b"null"));
    }
    body.push(b']');
    body
}

impl Sink for NativeWebhook {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (status, _) = self.post(&array(batch.iter().map(|e| e.value)))?;
        if (200..=299).contains(&status) {
            return Ok(());
        }
        for (i, e) in batch.iter().enumerate() {
            let (status, text) = self.post(&array(std::iter::once(e.value)))?;
            if !(200..=299).contains(&status) {
                let text: String = text.chars().take(300).collect();
                rejected.push(batch, i, format!("HTTP {status}: {text}"));
            }
        }
        Ok(())
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        Ok(Value::Null)
    }
}

/// A local HTTP/1.1 endpoint (keep-alive, one thread per connection) that
/// answers 200 to every POST and counts requests and body bytes.
struct Endpoint {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Endpoint {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the endpoint")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let counted = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &counted) {
                        eprintln!("endpoint: {e}");
                    }
                });
            }
        });
        Ok(Self { addr, counts })
    }
}

fn serve(stream: TcpStream, counts: &Counts) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        counts.requests.fetch_add(1, Ordering::Relaxed);
        counts.bytes.fetch_add(length as u64, Ordering::Relaxed);
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
    }
}

/// `n` order events in batches of `size`.
fn batches(n: usize, size: usize) -> Vec<Arc<Batch>> {
    let origin: Arc<str> = Arc::from("orders");
    let mut out = Vec::new();
    let mut b = BatchBuilder::new("orders", origin.clone(), size);
    for i in 0..n {
        let v = format!(
            r#"{{"order_id":"o{i}","customer_id":"c{}","price":{}.{:02},"currency":"usd","status":"paid"}}"#,
            (i * 7919) % 100_000,
            i % 100,
            i % 97
        );
        b.push(None, Some(v.as_bytes()), &[], 0, i as u64);
        if b.len() == size {
            let full = std::mem::replace(&mut b, BatchBuilder::new("orders", origin.clone(), size));
            out.push(Arc::new(full.finish()));
        }
    }
    if !b.is_empty() {
        out.push(Arc::new(b.finish()));
    }
    out
}

/// Process CPU time (all threads, the endpoint's included).
fn cpu_now() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct,
    // and getrusage only writes to the live struct we pass.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One measured pass: wall time and process CPU time.
struct Pass {
    wall: Duration,
    cpu: Duration,
}

fn pass(sink: &mut dyn Sink, batches: &[Arc<Batch>], endpoint: &Endpoint) -> Result<Pass> {
    let requests = endpoint.counts.requests.load(Ordering::SeqCst);
    let bytes = endpoint.counts.bytes.load(Ordering::SeqCst);
    // `[`, `]`, the values and a comma between each two.
    let expected: u64 = batches
        .iter()
        .map(|b| {
            let values: usize = b.iter().map(|e| e.value.map_or(4, <[u8]>::len)).sum();
            (2 + values + b.len().saturating_sub(1)) as u64
        })
        .sum();
    let mut rejected = Rejected::default();
    let cpu = cpu_now();
    let started = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        sink.write(b, &mut rejected)?;
        if (i + 1) % BATCHES_PER_FLUSH == 0 {
            sink.flush(&mut rejected)?;
        }
    }
    sink.flush(&mut rejected)?;
    let wall = started.elapsed();
    let cpu = cpu_now().saturating_sub(cpu);
    if !rejected.is_empty() {
        bail!("the endpoint refused events; it accepts everything");
    }
    // Writes are synchronous: each POST was answered, so it was counted.
    let got_requests = endpoint.counts.requests.load(Ordering::SeqCst) - requests;
    let got_bytes = endpoint.counts.bytes.load(Ordering::SeqCst) - bytes;
    if got_requests != batches.len() as u64 || got_bytes != expected {
        bail!(
            "the endpoint got {got_requests} POSTs of {got_bytes} bytes in all; {} batches of {expected} bytes were written",
            batches.len()
        );
    }
    Ok(Pass { wall, cpu })
}

/// Runs the comparison.
pub fn run(wasm: &Path, events: usize, batch_size: usize, runs: u32) -> Result<()> {
    let endpoint = Endpoint::start()?;
    let url = format!("http://{}/in", endpoint.addr);
    let batches = batches(events, batch_size);
    let wasm = std::fs::canonicalize(wasm).with_context(|| format!("{}", wasm.display()))?;
    let mut config: WasmSinkConfig = serde_json::from_value(serde_json::json!({
        "plugin": wasm.display().to_string(),
        "params": {"url": url},
        "grants": {"http": [endpoint.addr.to_string()]},
    }))?;
    config.file = Some(wasm.clone());
    let mut guest = config.build("webhook")?;
    guest.open(None)?;
    let mut native = NativeWebhook::new(&url);
    native.open(None)?;
    // Warm-up: connections, the guest's first calls, allocator pools.
    let warm = &batches[..batches.len().min(8)];
    pass(guest.as_mut(), warm, &endpoint)?;
    pass(&mut native, warm, &endpoint)?;
    let mut best_native: Option<Pass> = None;
    let mut best_wasm: Option<Pass> = None;
    for _ in 0..runs {
        let n = pass(&mut native, &batches, &endpoint)?;
        let w = pass(guest.as_mut(), &batches, &endpoint)?;
        if best_native.as_ref().is_none_or(|b| n.wall < b.wall) {
            best_native = Some(n);
        }
        if best_wasm.as_ref().is_none_or(|b| w.wall < b.wall) {
            best_wasm = Some(w);
        }
    }
    let (Some(n), Some(w)) = (best_native, best_wasm) else {
        bail!("no runs");
    };
    let rate = |p: &Pass| events as f64 / p.wall.as_secs_f64().max(1e-9);
    let us = |p: &Pass| p.cpu.as_secs_f64() * 1e6 / events.max(1) as f64;
    println!(
        "webhook sink: {events} events in batches of {batch_size}, flush every {BATCHES_PER_FLUSH} batches, best of {runs} run(s) each, one local endpoint (keep-alive)"
    );
    println!("  plugin: {}", wasm.display());
    println!(
        "  native (host, ureq)  {:>10.0} events/s  {:>8.1} ms  {:>6.2} us CPU/event (process)",
        rate(&n),
        n.wall.as_secs_f64() * 1e3,
        us(&n)
    );
    println!(
        "  wasm (webhook-sink)  {:>10.0} events/s  {:>8.1} ms  {:>6.2} us CPU/event (process)",
        rate(&w),
        w.wall.as_secs_f64() * 1e3,
        us(&w)
    );
    let ratio = rate(&w) / rate(&n);
    println!(
        "  wasm / native: {:.0} % of the native throughput (target: at least 50 %): {}",
        ratio * 100.0,
        if ratio >= 0.5 { "hit" } else { "miss" }
    );
    Ok(())
}
