//! Native harnesses for custom connectors: call a [`Source`] or [`Sink`]
//! the way the host does, with HTTP answered by a closure.

use std::cell::RefCell;

use crate::abi::{CallError, RawBatch};
use crate::connector::http::{HttpError, Request, Response};
use crate::connector::{Poll, Rejections, Sink, Source, Written};
use crate::Params;

type Handler = Box<dyn FnMut(Request) -> Result<Response, HttpError>>;

thread_local! {
    static HTTP: RefCell<Option<Handler>> = RefCell::new(None);
    static CLOCK: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// Sets the time [`crate::connector::clock::now_ms`] returns on this thread
/// to `now_ms` until the returned guard is dropped, so a test of
/// time-dependent code (a window, a token's expiry) is repeatable. Without
/// it the native clock is the machine's. [`ClockGuard::advance`] moves it.
pub fn with_clock(now_ms: i64) -> ClockGuard {
    CLOCK.with(|c| c.set(Some(now_ms)));
    ClockGuard(())
}

/// Restores the machine's clock when dropped.
pub struct ClockGuard(());

impl ClockGuard {
    /// Moves the fixed clock forward by `ms` (wall and monotonic alike).
    pub fn advance(&self, ms: i64) {
        CLOCK.with(|c| c.set(c.get().map(|t| t.saturating_add(ms))));
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        CLOCK.with(|c| c.set(None));
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn clock_now_ms() -> i64 {
    CLOCK.with(std::cell::Cell::get).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn clock_monotonic_ns() -> u64 {
    // A fixed clock moves the monotonic one with it (from the fixed wall
    // time, so `advance` shows up in both).
    if let Some(ms) = CLOCK.with(std::cell::Cell::get) {
        return u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Answers [`crate::connector::http::send`] on this thread with `handler`
/// until the returned guard is dropped (e.g. a closure over a stub, or
/// one that forwards to a test server).
pub fn with_http(
    handler: impl FnMut(Request) -> Result<Response, HttpError> + 'static,
) -> HttpGuard {
    HTTP.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
    HttpGuard(())
}

/// Removes the HTTP handler when dropped.
pub struct HttpGuard(());

impl Drop for HttpGuard {
    fn drop(&mut self) {
        HTTP.with(|h| *h.borrow_mut() = None);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn http_stub(req: Request) -> Result<Response, HttpError> {
    HTTP.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(req),
        None => Err(HttpError::Denied(format!(
            "{}: no HTTP in this native test; answer it with sluice_sdk::testing::with_http",
            req.url
        ))),
    })
}

/// Drives a [`Source`] natively: open at a position, poll, commit.
pub struct SourceHarness<S> {
    /// The source under test.
    pub source: S,
}

impl<S: Source> SourceHarness<S> {
    /// Opens the source with `params` at `position`.
    pub fn open(params: &[(&str, &str)], position: Option<&[u8]>) -> Result<Self, String> {
        let params = Params::new(params.iter().copied());
        Ok(Self {
            source: S::open(&params, position)?,
        })
    }

    /// One poll of up to `max` events.
    pub fn poll(&mut self, max: usize) -> Result<Poll, CallError> {
        let mut out = Poll::default();
        self.source.poll(max, &mut out)?;
        Ok(out)
    }

    /// Commits `position`.
    pub fn commit(&mut self, position: &[u8]) -> Result<(), CallError> {
        self.source.commit(position)
    }
}

/// Drives a [`Sink`] natively.
pub struct SinkHarness<K> {
    /// The sink under test.
    pub sink: K,
}

impl<K: Sink> SinkHarness<K> {
    /// Opens the sink with `params` at `position`.
    pub fn open(params: &[(&str, &str)], position: Option<&[u8]>) -> Result<Self, String> {
        let params = Params::new(params.iter().copied());
        Ok(Self {
            sink: K::open(&params, position)?,
        })
    }

    /// Writes events with these JSON values (keyless); returns the
    /// rejections as (index, reason).
    pub fn write(&mut self, values: &[&str]) -> Result<Vec<(u32, String)>, CallError> {
        let mut batch = RawBatch::default();
        for v in values {
            batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
        }
        self.write_batch(&batch)
    }

    /// Writes a batch; returns the rejections as (index, reason).
    pub fn write_batch(&mut self, batch: &RawBatch) -> Result<Vec<(u32, String)>, CallError> {
        let mut rejected = Rejections::default();
        self.sink.write(&Written::new(batch), &mut rejected)?;
        Ok(rejected
            .items
            .into_iter()
            .map(|r| (r.index, r.reason))
            .collect())
    }

    /// Flushes; returns the position.
    pub fn flush(&mut self) -> Result<Vec<u8>, CallError> {
        self.sink.flush()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::connector::clock;

    #[test]
    fn a_fixed_clock_moves_only_when_advanced_and_the_machines_is_back_after() {
        {
            let c = with_clock(1_700_000_000_000);
            assert_eq!(clock::now_ms(), 1_700_000_000_000);
            let before = clock::monotonic_ns();
            c.advance(250);
            assert_eq!(clock::now_ms(), 1_700_000_000_250);
            assert_eq!(clock::monotonic_ns() - before, 250_000_000);
        }
        let machine = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        assert!((clock::now_ms() - machine).abs() < 1_000);
    }
}
