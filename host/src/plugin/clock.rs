//! Time for custom connectors (`sluice:plugin/clock`), granted per
//! connector with `grants: {clock: true}`.
//!
//! A sluice import rather than real `wasi:clocks`: componentize-py stubs
//! WASI out (`--stub-wasi`) and componentize-js disables its clocks, so a
//! WASI clock would reach Rust connectors only. A contract import is reached
//! the same way from every SDK (`clock::now_ms()` in Rust, Python, JS, Go).
//!
//! The import is always linked, so that Python and JavaScript connectors
//! (whose components import every interface of their world) load without
//! the grant. Without it, a call fails with [`ClockDenied`], which the
//! connector's caller turns into a fatal error naming the grant: reopening
//! the instance could not make the call succeed.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::Linker;

use super::limiter::StoreData;

/// The contract interface a connector reads the time through.
pub const CLOCK_IMPORT: &str = "sluice:plugin/clock";

/// The versioned instance name components import.
const INSTANCE: &str = "sluice:plugin/clock@0.2.0";

/// A connector without the clock grant called the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockDenied;

impl std::fmt::Display for ClockDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the connector read the time ({CLOCK_IMPORT}) but is not granted the clock; add `grants: {{clock: true}}` to it in the pipeline if it should"
        )
    }
}

impl std::error::Error for ClockDenied {}

/// Wall-clock milliseconds since the Unix epoch (negative before it).
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Nanoseconds since a point fixed the first time any connector asked, so
/// instances of one process share one monotonic scale.
pub fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Links `clock`: the host's time when `granted`, else functions that fail
/// the call with [`ClockDenied`].
pub fn add_to_linker(linker: &mut Linker<StoreData>, granted: bool) -> wasmtime::Result<()> {
    let mut instance = linker.instance(INSTANCE)?;
    if granted {
        instance.func_wrap("now-ms", |_, (): ()| Ok((now_ms(),)))?;
        instance.func_wrap("monotonic-ns", |_, (): ()| Ok((monotonic_ns(),)))?;
    } else {
        instance.func_wrap("now-ms", |_, (): ()| -> wasmtime::Result<(i64,)> {
            Err(ClockDenied.into())
        })?;
        instance.func_wrap("monotonic-ns", |_, (): ()| -> wasmtime::Result<(u64,)> {
            Err(ClockDenied.into())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_the_hosts_time_and_never_goes_back() {
        let host = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        assert!((now_ms() - host).abs() < 1_000);
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a);
    }

    #[test]
    fn the_refusal_names_the_grant() {
        let m = ClockDenied.to_string();
        assert!(m.contains("grants: {clock: true}"), "{m}");
        assert!(m.contains(CLOCK_IMPORT), "{m}");
    }
}
