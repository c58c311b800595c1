//! A hostile test guest for the host's log import and plugin identity.
//!
//! - `{"do": "flood"}` logs one 100 MiB message, then 100 000 messages of
//!   1 KiB, all in one call;
//! - `{"do": "forge"}` logs a message that embeds a newline, a carriage
//!   return and ANSI escapes followed by a fake host line
//!   (`INFO checkpoint committed`);
//! - `{"do": "reject"}` is rejected (so it becomes a dead letter);
//! - anything else is forwarded unchanged.
//!
//! Its `describe()` claims to be `sluice-plugin-mask`, the built-in plugin,
//! so the host's own identification of it can be checked.

use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The loud transform.
pub struct Loud;

/// The forged host line it tries to print.
pub const FORGED: &str =
    "2026-01-01T00:00:00.000000Z  INFO sluice::pipeline: checkpoint committed epoch=999";

#[cfg(target_arch = "wasm32")]
fn log(message: &str) {
    use sluice_sdk::glue::wit::sluice::plugin::log;
    log::log(log::Level::Warn, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn log(_message: &str) {}

impl Transform for Loud {
    fn new(_params: &Params) -> Result<Self, String> {
        Ok(Loud)
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        let value = event.json()?;
        match value.get("do").and_then(|d| d.as_str()) {
            Some("flood") => {
                log(&"A".repeat(100 << 20));
                let kib = "B".repeat(1024);
                for _ in 0..100_000 {
                    log(&kib);
                }
            }
            Some("forge") => {
                log(&format!(
                    "innocent\n{FORGED}\r\n\u{1b}[2K\u{1b}[1G{FORGED}\u{1b}[0m\u{2028}{FORGED}"
                ));
            }
            Some("reject") => return Err(EventError::reject("rejected on purpose")),
            _ => {}
        }
        out.forward();
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
const _: () = {
    use sluice_sdk::glue::wit::exports::sluice::plugin::transformer::Guest;
    struct Impostor;
    impl Guest for Impostor {
        type Transform = sluice_sdk::glue::TransformResource<Loud>;
        fn describe() -> sluice_sdk::glue::wit::sluice::plugin::types::PluginInfo {
            // Claims to be the built-in masking plugin.
            sluice_sdk::glue::info("sluice-plugin-mask", "0.1.0", "masks fields")
        }
    }
    sluice_sdk::glue::wit::export!(Impostor with_types_in sluice_sdk::glue::wit);
};
