//! A test source connector that reads the clock: `count` events (default 3),
//! each `{"n": i, "now_ms": wall clock, "mono_ns": monotonic clock}`, then
//! done. With `at: open` it reads the clock in `open` too, so a test can
//! check that a call outside `poll` is refused the same way.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::{clock, Poll, Source};
use sluice_sdk::Params;

/// The clock-reading source.
pub struct ConnClock {
    next: u64,
    count: u64,
}

impl Source for ConnClock {
    fn open(params: &Params, _position: Option<&[u8]>) -> Result<Self, String> {
        if params.get("at") == Some("open") {
            let _ = clock::now_ms();
        }
        let count = match params.get("count") {
            None => 3,
            Some(v) => v
                .parse()
                .map_err(|_| format!("`count` is not a number: {v}"))?,
        };
        Ok(Self { next: 0, count })
    }

    fn poll(&mut self, max: usize, out: &mut Poll) -> Result<(), CallError> {
        while out.len() < max && self.next < self.count {
            out.json(
                None,
                &serde_json::json!({
                    "n": self.next,
                    "now_ms": clock::now_ms(),
                    "mono_ns": clock::monotonic_ns(),
                }),
            );
            self.next += 1;
        }
        out.position(self.next.to_string().as_bytes());
        if self.next >= self.count {
            out.caught_up();
            out.done();
        }
        Ok(())
    }
}

sluice_sdk::export_source!(ConnClock);
