//! A test processor that attacks the host through state and timers. Per
//! input event, by its `"do"` field:
//!
//! - `hog`: puts 1000 values of 1 MiB;
//! - `timers`: registers 200,000 timers;
//! - `rearm`: registers a timer at the watermark (or just after the
//!   earliest time, before there is one); every time it fires, it emits
//!   `{"fired": at}` and registers itself again at the current watermark,
//!   so it is due again at once;
//! - `spin-timer`: the same, with an `on_timer` that spins forever;
//! - anything else: forwarded, with a count per key kept in state.

use sluice_sdk::{Emitter, Event, EventError, Host, Params, Processor};

/// The hostile processor.
pub struct HostileState;

const SPIN_KEY: &[u8] = b"spin";

impl Processor for HostileState {
    fn new(_params: &Params) -> Result<Self, String> {
        Ok(HostileState)
    }

    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        let value = event.json()?;
        match value.get("do").and_then(|d| d.as_str()) {
            Some("hog") => {
                let big = vec![7u8; 1 << 20];
                for i in 0..1000u32 {
                    host.put(&i.to_le_bytes(), &big, None);
                }
            }
            Some("timers") => {
                for i in 0..200_000u32 {
                    host.register_timer(&i.to_le_bytes(), event.timestamp_ms() + 1_000_000);
                }
            }
            Some("rearm") => {
                let at = now(host);
                host.register_timer(b"rearm", at)
            }
            Some("spin-timer") => {
                let at = now(host);
                host.register_timer(SPIN_KEY, at)
            }
            _ => {
                let key = b"count";
                let n = host
                    .get(key)
                    .and_then(|v| v.try_into().ok())
                    .map_or(0, u64::from_le_bytes)
                    + 1;
                host.put(key, &n.to_le_bytes(), None);
                out.forward();
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        if timer.key() == Some(SPIN_KEY) {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        if timer.key() == Some(b"rearm".as_slice()) {
            let at = timer.timestamp_ms();
            out.json(&serde_json::json!({ "fired": at }));
            let again = host.watermark();
            host.register_timer(b"rearm", again);
        }
        Ok(())
    }
}

/// The watermark, or just after the earliest time before there is one.
fn now(host: &mut dyn Host) -> i64 {
    host.watermark().max(i64::MIN + 1)
}

sluice_sdk::export_processor!(HostileState);
