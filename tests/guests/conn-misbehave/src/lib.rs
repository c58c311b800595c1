//! A test source connector that misbehaves on request, to prove the host
//! contains it. It counts `{"n": i}` for i in 0..`count`; its position is the
//! next `n` as text.
//!
//! - `malformed_every: K`: every K-th number is reported as a malformed input
//!   instead of an event.
//! - `mode: loop`: `poll` spins forever (the CPU deadline must stop it).
//! - `mode: panic_once_at` with `at: N`: an instance opened afresh (no
//!   position) panics when it reaches N; one reopened at a position goes on,
//!   so a restart from the last position completes the count.
//! - `mode: panic_always_at` with `at: N`: every instance panics at N.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::{Poll, Source};
use sluice_sdk::Params;

/// The misbehaving source.
pub struct ConnMisbehave {
    next: u64,
    count: u64,
    malformed_every: u64,
    mode: String,
    at: u64,
    fresh: bool,
}

fn num(params: &Params, name: &str, default: u64) -> Result<u64, String> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("`{name}` is not a number: {v}")),
    }
}

impl Source for ConnMisbehave {
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String> {
        let next = match position {
            None => 0,
            Some(p) => std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("damaged position")?,
        };
        Ok(Self {
            next,
            count: num(params, "count", 100)?,
            malformed_every: num(params, "malformed_every", 0)?,
            mode: params.get("mode").unwrap_or("count").to_string(),
            at: num(params, "at", u64::MAX)?,
            fresh: position.is_none(),
        })
    }

    fn poll(&mut self, max: usize, out: &mut Poll) -> Result<(), CallError> {
        if self.mode == "loop" {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        while out.len() < max && self.next < self.count {
            let panics = match self.mode.as_str() {
                "panic_once_at" => self.fresh,
                "panic_always_at" => true,
                _ => false,
            };
            if panics && self.next == self.at {
                panic!("boom on purpose at n = {}", self.next);
            }
            let n = self.next;
            self.next += 1;
            if self.malformed_every > 0 && n % self.malformed_every == self.malformed_every - 1 {
                out.malformed(
                    format!("garbage {n}").as_bytes(),
                    format!("item {n} is not JSON"),
                );
            } else {
                out.json(None, &serde_json::json!({ "n": n }));
            }
            // Small polls, so the count spans several batches and barriers.
            if out.len() >= 10 {
                break;
            }
        }
        out.position(self.next.to_string().as_bytes());
        if self.next >= self.count {
            out.caught_up();
            out.done();
        }
        Ok(())
    }
}

sluice_sdk::export_source!(ConnMisbehave);
