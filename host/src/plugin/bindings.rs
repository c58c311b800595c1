//! Host bindings for the `sluice:plugin` contract: 0.1.0 (from `wit/0.1.0/`,
//! whose batch record is the event layer's frame) at the top, and 0.2.0
//! (from `wit/`, batches as byte tables) in [`v2`]. The host calls either;
//! `wire.rs` converts frames to and from 0.2.0's byte tables.
// Generated items carry the WIT doc comments where WIT has them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
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
        path: "../wit/0.1.0",
        world: "processor",
        with: {
            "sluice:plugin/types": crate::event::abi::sluice::plugin::types,
            "sluice:plugin/log": super::sluice::plugin::log,
        },
    });

    pub use self::exports::sluice::plugin::stateful::{CallError, FiredTimer};
}

/// Contract 0.2.0: the event and header tables cross as byte buffers
/// (layout in `wit/sluice.wit`), and `tables` has `lookup-many`.
pub mod v2 {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
    });

    pub use self::exports::sluice::plugin::transformer::CallError;
    pub use self::sluice::plugin::types::{Batch, Output};

    /// The `processor` world of 0.2.0, sharing `types` and `log` above.
    pub mod processor {
        #![allow(missing_docs)]
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "processor",
            with: {
                "sluice:plugin/types": super::sluice::plugin::types,
                "sluice:plugin/log": super::sluice::plugin::log,
            },
        });

        pub use self::exports::sluice::plugin::stateful::{CallError, FiredTimer};
    }

    /// The `source` world of 0.2.0 (custom source connectors), sharing
    /// `types` and `log` above; it defines the `http` import.
    pub mod source {
        #![allow(missing_docs)]
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "source",
            with: {
                "sluice:plugin/types": super::sluice::plugin::types,
                "sluice:plugin/log": super::sluice::plugin::log,
            },
        });

        pub use self::exports::sluice::plugin::reader::{CallError, Malformed, Polled};
    }

    /// The `udf` world of 0.2.0 (user-defined scalar functions), sharing
    /// `types` and `log` above.
    pub mod udf {
        #![allow(missing_docs)]
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "udf",
            with: {
                "sluice:plugin/types": super::sluice::plugin::types,
                "sluice:plugin/log": super::sluice::plugin::log,
            },
        });
    }

    /// The `sink` world of 0.2.0 (custom sink connectors).
    pub mod sink {
        #![allow(missing_docs)]
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "sink",
            with: {
                "sluice:plugin/types": super::sluice::plugin::types,
                "sluice:plugin/log": super::sluice::plugin::log,
                "sluice:plugin/http": super::source::sluice::plugin::http,
            },
        });

        pub use self::exports::sluice::plugin::writer::CallError;
    }
}
