//! `sluice tap`: a live sample of the events leaving a source or stage of a
//! running pipeline, for people looking at what flows.
//!
//! Each run has its own [`TapHub`] (handed in through
//! [`RunOptions::tap`](super::RunOptions)), so on `sluice serve`, where many
//! tenants' pipelines share one process and their component names collide,
//! a subscriber only ever sees the run it subscribed to. Sources and stages
//! call [`TapHub::offer`] with every batch they send on. While nobody taps,
//! that is one relaxed atomic load per batch and nothing else. A subscriber
//! (one HTTP connection of `sluice run --tap ADDR`, or one
//! `GET /v1/pipelines/NAME/tap` stream of the server) names a component, an
//! optional `filter` expression over the event's value and a rate cap;
//! matching events are formatted as JSON lines on the producing thread, up
//! to the cap, and handed over a small bounded queue: a slow reader loses
//! lines (counted in [`Subscription::lost`]), it never slows the pipeline.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_expr::Expr;

use crate::event::Batch;

/// Lines queued per subscriber before they are dropped.
const QUEUE: usize = 1024;
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;

struct Subscriber {
    component: String,
    filter: Option<Expr>,
    per_sec: u32,
    window: Instant,
    sent: u32,
    tx: SyncSender<String>,
    lost: Arc<AtomicU64>,
    gone: bool,
}

#[derive(Default)]
struct Subscribers {
    list: Vec<Subscriber>,
    /// The run ended: no more subscribers, the ones there were are let go.
    closed: bool,
}

/// One run's tap: who is tapping which of its components.
#[derive(Default)]
pub struct TapHub {
    active: AtomicBool,
    subscribers: Mutex<Subscribers>,
}

/// What a subscriber reads: JSON lines, one per tapped event. The queue
/// disconnects when the run ends ([`TapHub::close`]).
pub struct Subscription {
    rx: Receiver<String>,
    lost: Arc<AtomicU64>,
}

impl Subscription {
    /// The next line, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Lines dropped so far because this reader fell behind (its queue of
    /// 1024 was full); events past the rate cap are not counted.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl TapHub {
    fn lock(&self) -> MutexGuard<'_, Subscribers> {
        // Plain data: a panic while holding it leaves nothing half-done
        // that matters more than the tap going on.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called with every batch `component` sends downstream.
    #[inline]
    pub fn offer(&self, component: &str, batch: &Batch) {
        if self.active.load(Ordering::Relaxed) {
            self.deliver(component, batch);
        }
    }

    #[cold]
    fn deliver(&self, component: &str, batch: &Batch) {
        let mut subs = self.lock();
        let now = Instant::now();
        for s in subs.list.iter_mut().filter(|s| s.component == component) {
            if now.duration_since(s.window) >= Duration::from_secs(1) {
                s.window = now;
                s.sent = 0;
            }
            for event in batch.iter() {
                if s.sent >= s.per_sec {
                    break;
                }
                let value: Value = event
                    .value
                    .map(|v| {
                        serde_json::from_slice(v).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(v).into_owned())
                        })
                    })
                    .unwrap_or(Value::Null);
                if s.filter.as_ref().is_some_and(|f| !f.matches(&value)) {
                    continue;
                }
                let headers: serde_json::Map<String, Value> = event
                    .headers()
                    .map(|(n, v)| {
                        (
                            n.to_string(),
                            Value::String(String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect();
                let line = json!({
                    "component": component,
                    "stream": batch.stream(),
                    "key": event.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                    "value": value,
                    "headers": headers,
                    "timestamp_ms": event.timestamp_ms,
                })
                .to_string();
                s.sent += 1;
                match s.tx.try_send(line) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        s.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        s.gone = true;
                        break;
                    }
                }
            }
        }
        subs.list.retain(|s| !s.gone);
        self.active.store(!subs.list.is_empty(), Ordering::Relaxed);
    }

    /// Taps `component`: at most `per_sec` events a second whose value
    /// `filter` is true for. After [`TapHub::close`] the subscription is
    /// already disconnected.
    pub fn subscribe(&self, component: String, filter: Option<Expr>, per_sec: u32) -> Subscription {
        let (tx, rx) = sync_channel(QUEUE);
        let lost = Arc::new(AtomicU64::new(0));
        let mut subs = self.lock();
        if !subs.closed {
            subs.list.push(Subscriber {
                component,
                filter,
                per_sec: per_sec.max(1),
                window: Instant::now(),
                sent: 0,
                tx,
                lost: lost.clone(),
                gone: false,
            });
            self.active.store(true, Ordering::Relaxed);
        }
        Subscription { rx, lost }
    }

    /// The run ended: every subscription disconnects (once it has read what
    /// is queued), and later ones start disconnected.
    pub fn close(&self) {
        let mut subs = self.lock();
        subs.closed = true;
        subs.list.clear();
        self.active.store(false, Ordering::Relaxed);
    }
}

/// Serves `GET /tap?component=NAME[&filter=EXPR][&rate=N]` on `listener`
/// for `hub`, each connection on its own thread, until the process ends.
pub fn serve(listener: TcpListener, hub: Arc<TapHub>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sluice-tap".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let hub = hub.clone();
                let _ = std::thread::Builder::new()
                    .name("sluice-tap-conn".into())
                    .spawn(move || {
                        if let Err(e) = connection(conn, &hub) {
                            tracing::debug!(error = %e, "tap connection ended");
                        }
                    });
            }
        })?;
    Ok(())
}

fn connection(conn: TcpStream, hub: &TapHub) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(std::io::Read::take(conn.try_clone()?, MAX_HEAD as u64));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The rest of the head: read and ignored (bounded by MAX_HEAD).
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut out = conn;
    let reply = |out: &mut TcpStream, status: &str, body: &str| {
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}\n"
        )
    };
    let target = request.split_whitespace().nth(1).unwrap_or("");
    let Some(query) = target
        .strip_prefix("/tap?")
        .filter(|_| request.starts_with("GET "))
    else {
        return reply(&mut out, "404 Not Found", "only GET /tap?component=NAME");
    };
    let (mut component, mut filter, mut rate) = (None, None, 10u32);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "component" => component = Some(v),
            "filter" if !v.is_empty() => filter = Some(v),
            "rate" => rate = v.parse().unwrap_or(rate),
            _ => {}
        }
    }
    let Some(component) = component else {
        return reply(&mut out, "400 Bad Request", "component= is required");
    };
    let filter = match filter.map(|f| Expr::parse(&f)) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            let body = format!("filter: {} at column {}", e.message(), e.column());
            return reply(&mut out, "400 Bad Request", &body);
        }
    };
    let rx = hub.subscribe(component, filter, rate);
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )?;
    out.flush()?;
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Err(RecvTimeoutError::Timeout) => {
                // Finds a reader that went away while nothing flowed.
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// `%XX` and `+` decoded; anything malformed left as it is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` with everything but unreserved characters `%XX`-encoded.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(values: &[&str]) -> Batch {
        let mut b = crate::event::BatchBuilder::new("default", Arc::from("test"), values.len());
        for (i, v) in values.iter().enumerate() {
            b.push(Some(b"k"), Some(v.as_bytes()), &[], 0, i as u64);
        }
        b.finish()
    }

    fn drain(sub: &Subscription) -> Vec<Value> {
        std::iter::from_fn(|| sub.recv_timeout(Duration::ZERO).ok())
            .map(|l| serde_json::from_str(&l).expect("a JSON line"))
            .collect()
    }

    #[test]
    fn a_subscriber_sees_only_its_own_runs_component_of_the_same_name() {
        let (ours, theirs) = (TapHub::default(), TapHub::default());
        let sub = ours.subscribe("copy".into(), None, 100);
        assert!(!theirs.active.load(Ordering::Relaxed));
        theirs.offer("copy", &batch(&[r#"{"who":"theirs"}"#]));
        ours.offer("other", &batch(&[r#"{"who":"other"}"#]));
        ours.offer("copy", &batch(&[r#"{"who":"ours"}"#]));
        let got = drain(&sub);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["value"], json!({"who": "ours"}));
        assert_eq!(got[0]["key"], "k");
        assert_eq!(got[0]["component"], "copy");
    }

    #[test]
    fn the_rate_caps_a_second_and_a_full_queue_counts_what_it_loses() {
        let hub = TapHub::default();
        let capped = hub.subscribe("s".into(), None, 3);
        let values: Vec<String> = (0..QUEUE + 10).map(|n| format!("{{\"n\":{n}}}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        hub.offer("s", &batch(&refs));
        assert_eq!(drain(&capped).len(), 3);
        assert_eq!(capped.lost(), 0, "past the cap is sampling, not loss");
        drop(capped);
        let slow = hub.subscribe(
            "s".into(),
            Some(Expr::parse("n >= 5").expect("expr")),
            u32::MAX,
        );
        hub.offer("s", &batch(&refs));
        assert_eq!(slow.lost(), 5, "{} matched, {QUEUE} queued", QUEUE + 5);
        let got = drain(&slow);
        assert_eq!(got.len(), QUEUE);
        assert_eq!(got[0]["value"]["n"], 5);
    }

    #[test]
    fn closing_a_hub_ends_its_subscriptions_and_later_ones() {
        let hub = TapHub::default();
        let sub = hub.subscribe("s".into(), None, 10);
        hub.offer("s", &batch(&["1"]));
        hub.close();
        assert!(!hub.active.load(Ordering::Relaxed));
        assert_eq!(
            sub.recv_timeout(Duration::ZERO)
                .ok()
                .as_deref()
                .map(|l| l.contains("\"value\":1")),
            Some(true)
        );
        assert_eq!(
            sub.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        );
        let late = hub.subscribe("s".into(), None, 10);
        assert_eq!(
            late.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn query_text_round_trips() {
        let text = "value.n > 5 and name = 'a&b=c%'";
        assert_eq!(percent_decode(&percent_encode(text)), text);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
