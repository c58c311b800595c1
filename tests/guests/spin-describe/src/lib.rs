//! A test guest whose `describe` never returns, to prove that loading a
//! plugin is bounded too: `describe` runs before any stage, parameters or
//! event, once per load. It is exported by hand (the SDK's macro answers
//! `describe` from Cargo metadata), with a transform that forwards events.

use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// Forwards every event; never reached, `describe` comes first.
pub struct SpinDescribe;

impl Transform for SpinDescribe {
    fn new(_params: &Params) -> Result<Self, String> {
        Ok(SpinDescribe)
    }

    fn process(&mut self, _event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        out.forward();
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
const _: () = {
    struct Component;
    impl sluice_sdk::glue::wit::exports::sluice::plugin::transformer::Guest for Component {
        type Transform = sluice_sdk::glue::TransformResource<SpinDescribe>;
        fn describe() -> sluice_sdk::glue::wit::sluice::plugin::types::PluginInfo {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
    }
    sluice_sdk::glue::wit::export!(Component with_types_in sluice_sdk::glue::wit);
};
