//! Custom connectors (feature `connector`): implement [`Source`] or
//! [`Sink`], export it with [`crate::export_source!`] or
//! [`crate::export_sink!`], and reach the outside world through [`http`]
//! (only the hosts the pipeline grants) and read the time through [`clock`]
//! (only when the pipeline grants `clock: true`).
//!
//! ```
//! use sluice_sdk::connector::{Poll, Source};
//! use sluice_sdk::{abi::CallError, Params};
//!
//! /// Counts to `to`, one event per number; the position is the next number.
//! pub struct Count { next: u64, to: u64 }
//!
//! impl Source for Count {
//!     fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String> {
//!         let to = params.required("to")?.parse().map_err(|_| "`to` is not a number")?;
//!         let next = match position {
//!             Some(p) => std::str::from_utf8(p).ok().and_then(|s| s.parse().ok())
//!                 .ok_or("damaged position")?,
//!             None => 0,
//!         };
//!         Ok(Count { next, to })
//!     }
//!
//!     fn poll(&mut self, max: usize, out: &mut Poll) -> Result<(), CallError> {
//!         while out.len() < max && self.next < self.to {
//!             out.json(None, &serde_json::json!({ "n": self.next }));
//!             self.next += 1;
//!         }
//!         out.position(self.next.to_string().as_bytes());
//!         if self.next == self.to {
//!             out.done();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! sluice_sdk::export_source!(Count);
//!
//! // Natively, the harness calls it as the host does.
//! let mut h = sluice_sdk::testing::SourceHarness::<Count>::open(&[("to", "3")], None).unwrap();
//! let polled = h.poll(2).unwrap();
//! assert_eq!(polled.values(), vec![r#"{"n":0}"#, r#"{"n":1}"#]);
//! assert_eq!(polled.position, b"2");
//! // A restart at that position goes on from there.
//! let mut h = sluice_sdk::testing::SourceHarness::<Count>::open(&[("to", "3")], Some(b"2")).unwrap();
//! assert!(h.poll(10).unwrap().done);
//! ```

use crate::abi::{CallError, RawBatch, RawEvent, Rejection};
use crate::{Event, Params};

/// A custom source: the host opens it at the checkpointed position, polls
/// it, and tells it when positions are durable.
pub trait Source: Sized {
    /// Validates `params` and resumes after `position` (`None`: start
    /// afresh). An error fails the deployment.
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String>;

    /// Adds up to `max` events to `out`, and the position after them. Return
    /// quickly with nothing when nothing is there: the host polls again
    /// later. [`CallError::Retry`] makes the host poll again with backoff;
    /// [`CallError::Fatal`] stops the pipeline.
    fn poll(&mut self, max: usize, out: &mut Poll) -> Result<(), CallError>;

    /// A checkpoint holding `position` is durable: acknowledge upstream
    /// here, never earlier. Default: nothing to do.
    fn commit(&mut self, _position: &[u8]) -> Result<(), CallError> {
        Ok(())
    }
}

/// What one poll returns.
#[derive(Debug, Default)]
pub struct Poll {
    pub(crate) events: RawBatch,
    /// Inputs that could not be decoded: (raw bytes, reason).
    pub malformed: Vec<(Vec<u8>, String)>,
    /// The position after everything this poll returned; empty: unchanged.
    pub position: Vec<u8>,
    /// The source has delivered its backlog.
    pub caught_up: bool,
    /// A bounded source is drained.
    pub done: bool,
}

impl Poll {
    /// Adds an event. `timestamp_ms` 0 lets the host stamp it.
    pub fn event(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp_ms: i64) {
        let key = key.map(|k| self.events.push_bytes(k));
        let value = value.map(|v| self.events.push_bytes(v));
        let index = u32::try_from(self.events.events.len()).unwrap_or(u32::MAX);
        self.events.events.push(RawEvent {
            key,
            value,
            timestamp_ms,
            parent: index,
            ..RawEvent::default()
        });
    }

    /// Adds an event whose value is `value` as JSON.
    pub fn json(&mut self, key: Option<&[u8]>, value: &serde_json::Value) {
        let text = serde_json::to_vec(value).unwrap_or_default();
        self.event(key, Some(&text), 0);
    }

    /// Reports an input that could not become an event: it is
    /// dead-lettered with `reason` and the raw bytes.
    pub fn malformed(&mut self, raw: &[u8], reason: impl Into<String>) {
        self.malformed.push((raw.to_vec(), reason.into()));
    }

    /// Sets the position after this poll.
    pub fn position(&mut self, position: &[u8]) {
        self.position = position.to_vec();
    }

    /// Marks the source caught up (its backlog delivered).
    pub fn caught_up(&mut self) {
        self.caught_up = true;
    }

    /// Marks a bounded source drained.
    pub fn done(&mut self) {
        self.done = true;
    }

    /// Events added so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event was added.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The values added, as text (for tests).
    pub fn values(&self) -> Vec<String> {
        self.events
            .events
            .iter()
            .map(|e| {
                e.value
                    .and_then(|s| s.slice(&self.events.data))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A custom sink: the host opens it at the last flushed position, writes
/// batches, and flushes at every checkpoint.
pub trait Sink: Sized {
    /// Validates `params` and restores the state at `position` (what
    /// `flush` returned for the checkpoint resumed from; `None`: afresh).
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String>;

    /// Writes a batch (it may buffer). Refuse events the target refuses for
    /// good with [`Rejections::reject`]; they are dead-lettered one by one.
    /// [`CallError::Retry`] (a 5xx, a timeout) makes the host write the same
    /// batch again after a backoff.
    fn write(&mut self, batch: &Written<'_>, rejected: &mut Rejections) -> Result<(), CallError>;

    /// Makes everything written durable; returns the position to checkpoint.
    fn flush(&mut self) -> Result<Vec<u8>, CallError>;
}

/// A batch handed to [`Sink::write`].
pub struct Written<'a> {
    pub(crate) batch: &'a RawBatch,
}

impl<'a> Written<'a> {
    /// Wraps a batch.
    pub fn new(batch: &'a RawBatch) -> Self {
        Self { batch }
    }

    /// The events, in order; [`Event::index`] is what [`Rejections::reject`] takes.
    pub fn events(&self) -> impl Iterator<Item = Event<'a>> + 'a {
        let batch = self.batch;
        batch.events.iter().enumerate().map(move |(i, raw)| Event {
            batch,
            raw,
            index: u32::try_from(i).unwrap_or(u32::MAX),
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// Events a sink refused, with the target's reasons.
#[derive(Debug, Default)]
pub struct Rejections {
    /// (index in the batch, reason).
    pub items: Vec<Rejection>,
}

impl Rejections {
    /// Refuses event `index` with `reason` (once per event).
    pub fn reject(&mut self, index: usize, reason: impl Into<String>) {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        if !self.items.iter().any(|r| r.index == index) {
            self.items.push(Rejection {
                index,
                reason: reason.into(),
            });
        }
    }
}

/// Outbound HTTP through the host: only to the `host:port`s the pipeline
/// grants (`grants: {http: [...]}`); the host applies the timeouts and the
/// response-size bound. Natively, [`crate::testing::with_http`] answers.
pub mod http {
    /// One request.
    #[derive(Debug, Clone, Default)]
    pub struct Request {
        /// `GET`, `POST`, ...
        pub method: String,
        /// Absolute `http://` or `https://` URL.
        pub url: String,
        /// Header (name, value) pairs.
        pub headers: Vec<(String, String)>,
        /// Body bytes.
        pub body: Vec<u8>,
    }

    impl Request {
        /// A `GET` of `url`.
        pub fn get(url: impl Into<String>) -> Self {
            Self {
                method: "GET".into(),
                url: url.into(),
                ..Self::default()
            }
        }

        /// A `POST` of `body` to `url`.
        pub fn post(url: impl Into<String>, body: Vec<u8>) -> Self {
            Self {
                method: "POST".into(),
                url: url.into(),
                body,
                ..Self::default()
            }
        }

        /// Adds a header.
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_string(), value.to_string()));
            self
        }
    }

    /// A response, whatever its status.
    #[derive(Debug, Clone, Default)]
    pub struct Response {
        /// HTTP status.
        pub status: u16,
        /// Header (name, value) pairs.
        pub headers: Vec<(String, String)>,
        /// Body bytes (at most the connector's `http_limits.max_response_kb`).
        pub body: Vec<u8>,
    }

    impl Response {
        /// The body as text (lossy).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Why no response came back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum HttpError {
        /// Not granted: the message names the host and the grant.
        Denied(String),
        /// Past a timeout of `http_limits`.
        Timeout(String),
        /// The response is larger than `http_limits.max_response_kb`.
        TooLarge(String),
        /// Anything else (DNS, connection, TLS, malformed request).
        Failed(String),
    }

    impl std::fmt::Display for HttpError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                HttpError::Denied(m) => write!(f, "denied: {m}"),
                HttpError::Timeout(m) => write!(f, "timeout: {m}"),
                HttpError::TooLarge(m) => write!(f, "too large: {m}"),
                HttpError::Failed(m) => write!(f, "failed: {m}"),
            }
        }
    }

    /// Sends `req` and waits for the response.
    pub fn send(req: Request) -> Result<Response, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::glue_connector::send(req)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::http_stub(req)
        }
    }
}

/// The time, through the host's `clock` import. A connector reads it only
/// when the pipeline grants `grants: {clock: true}`; without the grant the
/// call stops the pipeline with an error naming the grant. `std::time`
/// does not work inside the sandbox (its WASI clock is not linked).
///
/// Natively the functions read the machine's clock, or the time a test sets
/// with [`crate::testing::with_clock`].
pub mod clock {
    /// Wall-clock milliseconds since the Unix epoch (UTC).
    pub fn now_ms() -> i64 {
        #[cfg(target_arch = "wasm32")]
        {
            crate::glue_connector::now_ms()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::clock_now_ms()
        }
    }

    /// Monotonic nanoseconds since a fixed point; never decreases. Use it
    /// to measure intervals (a rate limit, a backoff).
    pub fn monotonic_ns() -> u64 {
        #[cfg(target_arch = "wasm32")]
        {
            crate::glue_connector::monotonic_ns()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::clock_monotonic_ns()
        }
    }
}
