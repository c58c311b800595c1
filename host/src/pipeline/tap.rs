//! `sluice tap`: a live sample of the events leaving a source or stage of a
//! running pipeline, for people looking at what flows.
//!
//! Sources and stages call [`offer`] with every batch they send on. While
//! nobody taps, that is one relaxed atomic load per batch and nothing else.
//! A subscriber (one HTTP connection of `sluice run --tap ADDR`) names a
//! component, an optional `filter` expression over the event's value and a
//! rate cap; matching events are formatted as JSON lines on the producing
//! thread, up to the cap, and handed over a small bounded queue: a slow
//! reader loses lines (counted), it never slows the pipeline.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_expr::Expr;

use crate::event::Batch;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static SUBSCRIBERS: Mutex<Vec<Subscriber>> = Mutex::new(Vec::new());

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
    gone: bool,
}

/// Called with every batch `component` sends downstream.
#[inline]
pub fn offer(component: &str, batch: &Batch) {
    if ACTIVE.load(Ordering::Relaxed) {
        deliver(component, batch);
    }
}

#[cold]
fn deliver(component: &str, batch: &Batch) {
    let Ok(mut subs) = SUBSCRIBERS.lock() else {
        return;
    };
    let now = Instant::now();
    for s in subs.iter_mut().filter(|s| s.component == component) {
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
                    serde_json::from_slice(v)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(v).into_owned()))
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
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => {
                    s.gone = true;
                    break;
                }
            }
        }
    }
    subs.retain(|s| !s.gone);
    ACTIVE.store(!subs.is_empty(), Ordering::Relaxed);
}

fn subscribe(component: String, filter: Option<Expr>, per_sec: u32) -> Receiver<String> {
    let (tx, rx) = sync_channel(QUEUE);
    if let Ok(mut subs) = SUBSCRIBERS.lock() {
        subs.push(Subscriber {
            component,
            filter,
            per_sec,
            window: Instant::now(),
            sent: 0,
            tx,
            gone: false,
        });
        ACTIVE.store(true, Ordering::Relaxed);
    }
    rx
}

/// Serves `GET /tap?component=NAME[&filter=EXPR][&rate=N]` on `listener`,
/// each connection on its own thread, until the process ends.
pub fn serve(listener: TcpListener) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sluice-tap".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = std::thread::Builder::new()
                    .name("sluice-tap-conn".into())
                    .spawn(move || {
                        if let Err(e) = connection(conn) {
                            tracing::debug!(error = %e, "tap connection ended");
                        }
                    });
            }
        })?;
    Ok(())
}

fn connection(conn: TcpStream) -> std::io::Result<()> {
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
    let rx = subscribe(component, filter, rate.max(1));
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

    #[test]
    fn query_text_round_trips() {
        let text = "value.n > 5 and name = 'a&b=c%'";
        assert_eq!(percent_decode(&percent_encode(text)), text);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
