//! Forwards every event unchanged. The smallest possible transform: copy it
//! to start a new plugin; `sluice bench` uses it to measure what crossing the
//! Wasm boundary costs on its own.

use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The pass-through transform.
pub struct Passthrough;

impl Transform for Passthrough {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&[])?;
        Ok(Passthrough)
    }

    fn process(&mut self, _event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        out.forward();
        Ok(())
    }
}

sluice_sdk::export_transform!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_values_and_refuses_parameters() {
        let out = sluice_sdk::testing::run::<Passthrough>(&[], &[r#"{"a":1}"#, "2"]).expect("runs");
        assert_eq!(out.values(), vec![r#"{"a":1}"#, "2"]);
        assert!(sluice_sdk::testing::run::<Passthrough>(&[("x", "1")], &[]).is_err());
    }
}
