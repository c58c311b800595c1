//! `GET /v1/pipelines/NAME/tap?component=C[&filter=EXPR][&rate=N]`: a live
//! sample of the events leaving one source or stage of a running pipeline,
//! as Server-Sent Events.
//!
//! Each run has its own tap hub ([`crate::pipeline::tap::TapHub`]), so a
//! tenant's tap never sees another pipeline's events, whatever its
//! components are called. The stream is
//!
//! ```text
//! event: open            the tap as granted: {"pipeline","component","rate","max_seconds"}
//! data: {...}            one per event: the JSON line of `sluice tap`
//! event: lost            {"lost": N}: events dropped so far because this reader fell behind
//! : keep-alive           every 15 s of quiet, so proxies keep the connection
//! event: end             {"reason": "stopped" | "time_limit", "lost": N}, then the stream ends
//! ```
//!
//! Bounds (`[tap]` in `server.toml`): `rate` is cut to `max_rate`; at most
//! `max_per_tenant` taps per tenant and `max_total` on the server are open
//! at once (429 naming the bound past them); a stream ends after
//! `max_seconds`. Reading the tap is one thread per open tap, not the
//! pipeline's: a reader slower than the events loses them, counted.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_expr::Expr;

use super::error::ApiError;
use super::store::key;
use super::Server;
use crate::pipeline::tap::Subscription;

/// The rate when the request names none.
const DEFAULT_RATE: u64 = 10;
/// Quiet this long, a comment goes out.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often the reader looks whether the client went away.
const POLL: Duration = Duration::from_millis(250);
/// SSE frames waiting for the connection before the reader waits.
const FRAMES: usize = 64;

/// Taps open now, per tenant.
#[derive(Default, Clone)]
pub struct Taps {
    open: Arc<Mutex<HashMap<String, u64>>>,
}

/// One open tap; counted until dropped.
struct Slot {
    taps: Taps,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.taps.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

impl Taps {
    /// A slot for `tenant`, or 429 naming the bound it is over.
    fn take(&self, tenant: &str, per_tenant: u64, total: u64) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(tenant).copied().unwrap_or(0) >= per_tenant {
            return Err(ApiError::Busy {
                bound: "tap.max_per_tenant",
                limit: per_tenant,
                what: "taps of this tenant",
            });
        }
        if open.values().sum::<u64>() >= total {
            return Err(ApiError::Busy {
                bound: "tap.max_total",
                limit: total,
                what: "taps on this server",
            });
        }
        *open.entry(tenant.to_string()).or_default() += 1;
        Ok(Slot {
            taps: self.clone(),
            tenant: tenant.to_string(),
        })
    }
}

/// A tap granted, not yet streaming.
pub struct Opened {
    sub: Subscription,
    slot: Slot,
    open: serde_json::Value,
    max: Duration,
}

/// Checks the request and subscribes. A pipeline that is not `tenant`'s is
/// a 404 whatever the query says.
pub fn open(
    s: &Server,
    tenant: &str,
    name: &str,
    q: Result<HashMap<String, String>, ApiError>,
) -> Result<Opened, ApiError> {
    super::pipelines::record(s, tenant, name)?;
    let q = q?;
    let limits = s.config.tap;
    let rate = super::api::whole_number(&q, "rate", DEFAULT_RATE)?;
    if rate == 0 {
        return Err(ApiError::BadRequest("`rate` is at least 1".into()));
    }
    let rate = rate.min(limits.max_rate);
    let filter = match q.get("filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => Some(Expr::parse(f).map_err(|e| {
            ApiError::BadRequest(format!("filter: {} at column {}", e.message(), e.column()))
        })?),
    };
    let Some((hub, components)) = s.supervisor.tap(&key(tenant, name)) else {
        return Err(ApiError::Conflict(format!(
            "pipeline `{}` is not running; start it to tap it",
            name.escape_debug()
        )));
    };
    let component = match q.get("component") {
        Some(c) if components.contains(c) => c.clone(),
        other => {
            let name = name.escape_debug();
            let what = match other {
                None => "`component` is required".to_string(),
                Some(c) => format!(
                    "`{}` is not a source or stage of pipeline `{name}`",
                    c.escape_debug()
                ),
            };
            return Err(ApiError::BadRequest(format!(
                "{what}; its sources and stages: {}",
                components.join(", ")
            )));
        }
    };
    let slot = s
        .taps
        .take(tenant, limits.max_per_tenant, limits.max_total)?;
    let open = json!({
        "pipeline": name,
        "component": component,
        "rate": rate,
        "max_seconds": limits.max_seconds,
    });
    let per_sec = u32::try_from(rate).unwrap_or(u32::MAX);
    Ok(Opened {
        sub: hub.subscribe(component, filter, per_sec),
        slot,
        open,
        max: Duration::from_secs(limits.max_seconds),
    })
}

/// The SSE response for a granted tap; a thread of its own moves the
/// events from the tap to the connection.
pub fn stream(opened: Opened) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(FRAMES);
    let spawned = std::thread::Builder::new()
        .name("sluice-tap-sse".into())
        .spawn(move || pump(opened, &tx));
    if let Err(e) = spawned {
        return ApiError::Internal(anyhow::anyhow!("starting a tap thread: {e}")).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
            // nginx buffers responses unless told not to.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(Frames(rx)),
    )
        .into_response()
}

fn event(kind: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// Until the run ends, the client goes away or the time is up.
fn pump(opened: Opened, tx: &tokio::sync::mpsc::Sender<Bytes>) {
    let Opened {
        sub,
        slot,
        open,
        max,
    } = opened;
    let send = |b: Bytes| tx.blocking_send(b).is_ok();
    if !send(event("open", &open)) {
        return;
    }
    let started = Instant::now();
    let (mut quiet_since, mut lost_told) = (started, 0);
    let reason = loop {
        if tx.is_closed() {
            break None;
        }
        if started.elapsed() >= max {
            break Some("time_limit");
        }
        let sent = match sub.recv_timeout(POLL) {
            Ok(line) => send(Bytes::from(format!("data: {line}\n\n"))),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if quiet_since.elapsed() < HEARTBEAT {
                    continue;
                }
                send(Bytes::from_static(b": keep-alive\n\n"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Some("stopped"),
        };
        if !sent {
            break None;
        }
        quiet_since = Instant::now();
        let lost = sub.lost();
        if lost > lost_told {
            lost_told = lost;
            if !send(event("lost", &json!({ "lost": lost }))) {
                break None;
            }
        }
    };
    // Free before the client reads the end, so that it may open another.
    drop(slot);
    if let Some(reason) = reason {
        let _ = send(event(
            "end",
            &json!({ "reason": reason, "lost": sub.lost() }),
        ));
    }
}

/// The frames as the body's stream.
pub(super) struct Frames(pub(super) tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for Frames {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}
