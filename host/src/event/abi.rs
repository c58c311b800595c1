//! The framed batch exactly as the plugin contract (`wit/`, interface
//! `sluice:plugin/types`) lays it out. Generated here, at the bottom, so a
//! batch is built once by a source and handed to a plugin without any
//! conversion; the plugin layer's bindings reuse these types (`with:`).
// Generated items carry the WIT doc comments where WIT has them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    inline: "
        package sluice:host;
        world event-frame {
            import sluice:plugin/types@0.1.0;
        }
    ",
    path: "../wit/0.1.0",
    world: "sluice:host/event-frame",
});

pub use self::sluice::plugin::types::{
    Batch as Frame, Event, Header, Output, Param, PluginInfo, Rejection, Span,
};
