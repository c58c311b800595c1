//! Host bindings for the `sluice:plugin` contract, generated from `wit/`.
// Generated items carry the WIT doc comments where WIT has them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transform",
    // Batches are the event layer's frames: no conversion at the boundary.
    with: {
        "sluice:plugin/types": crate::event::abi::sluice::plugin::types,
    },
});

pub use self::exports::sluice::plugin::transformer::CallError;
pub use self::sluice::plugin::log::Level;
pub use crate::event::abi::{
    Event, Frame as Batch, Header, Output, Param, PluginInfo, Rejection, Span,
};

/// The `processor` world: stateful processors with state, tables and timers.
/// Shares the `types` and `log` bindings above, so batches need no conversion.
pub mod processor {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "processor",
        with: {
            "sluice:plugin/types": crate::event::abi::sluice::plugin::types,
            "sluice:plugin/log": super::sluice::plugin::log,
        },
    });

    pub use self::exports::sluice::plugin::stateful::{CallError, FiredTimer};
}
