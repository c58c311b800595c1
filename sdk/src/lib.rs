//! # sluice-sdk
//!
//! Write a [Sluice](https://example.invalid/sluice) transform in Rust in a few lines:
//! implement [`Transform`], export it with [`export_transform!`], build it with
//! `sluice plugin build DIR`. No `wit_bindgen::generate!` in your crate: the SDK
//! owns the bindings to the `sluice:plugin` contract.
//!
//! ```
//! use sluice_sdk::{Emitter, Event, EventError, Params, Transform};
//!
//! /// Drops events whose `currency` is the configured one.
//! pub struct DropCurrency { currency: String }
//!
//! impl Transform for DropCurrency {
//!     fn new(params: &Params) -> Result<Self, String> {
//!         Ok(Self { currency: params.required("currency")?.to_string() })
//!     }
//!
//!     fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
//!         let value = event.json()?;
//!         if value["currency"] != self.currency.as_str() {
//!             out.forward();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! sluice_sdk::export_transform!(DropCurrency);
//!
//! // Unit-test natively: a stub host stands in, no Wasm runtime needed.
//! let out = sluice_sdk::testing::run::<DropCurrency>(
//!     &[("currency", "aud")],
//!     &[r#"{"currency":"aud"}"#, r#"{"currency":"usd"}"#],
//! ).unwrap();
//! assert_eq!(out.values(), vec![r#"{"currency":"usd"}"#]);
//! ```
//!
//! ## Zero-copy JSON
//!
//! [`Event::json`] builds a whole `serde_json::Value` tree. A plugin that reads
//! or reshapes a few fields can use [`json`] instead: [`Event::view`] checks
//! the value in one pass without building a tree, fields are read as raw
//! slices, and [`Emitter::value_with`] with [`json::ObjectWriter`] writes the
//! output by copying those slices, so untouched values (a 64-bit id, `1.50`)
//! keep their exact text. Lookups of a duplicated key see its last occurrence.
//!
//! ```
//! use sluice_sdk::json::{JsonParser, ObjectWriter};
//! use sluice_sdk::{Emitter, Event, EventError, Params, Transform};
//!
//! /// Keeps `id` and `price` of non-test orders and adds `cents`.
//! #[derive(Default)]
//! pub struct Slim { parser: JsonParser }
//!
//! impl Transform for Slim {
//!     fn new(_: &Params) -> Result<Self, String> { Ok(Self::default()) }
//!
//!     fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
//!         let view = event.view(&mut self.parser)?; // rejects malformed JSON
//!         if view.get("test").and_then(|t| t.as_bool()) == Some(true) {
//!             return Ok(());
//!         }
//!         let price = view.get("price").ok_or("no price")?;
//!         let cents = price.as_f64().ok_or("price is not a number")? * 100.0;
//!         out.value_with(|buf| {
//!             let mut obj = ObjectWriter::new(buf);
//!             for (key, value) in view.fields() {
//!                 if key.is("id") || key.is("price") {
//!                     obj.raw_field(key, value); // copied byte for byte
//!                 }
//!             }
//!             obj.value("cents", &serde_json::json!(cents.round() as i64));
//!             obj.finish();
//!         });
//!         Ok(())
//!     }
//! }
//!
//! let out = sluice_sdk::testing::run::<Slim>(&[], &[
//!     r#"{"id":9007199254740993,"price":1.50,"note":"x"}"#,
//!     r#"{"id":2,"price":3,"test":true}"#,
//!     r#"{"id":3,"price":"#,
//! ]).unwrap();
//! assert_eq!(out.raw_values(), vec![r#"{"id":9007199254740993,"price":1.50,"cents":150}"#]);
//! assert_eq!(out.rejected()[0].0, 2);
//! assert!(out.rejected()[0].1.starts_with("value is not valid JSON"));
//! ```
//!
//! Errors: return [`EventError::Reject`] (or `?` on anything displayable via
//! [`EventError::reject`]) for *this event is bad*; the host dead-letters it with
//! your reason. [`EventError::Retry`] asks the host to retry the whole batch
//! later; [`EventError::Fatal`] stops the stage. Nothing is dropped silently.
#![deny(missing_docs)]

// Lets generated code name this crate by its public path from inside it too.
extern crate self as sluice_sdk;

pub mod abi;
#[cfg(feature = "connector")]
pub mod connector;
mod event;
pub mod json;
pub mod log;
pub mod names;
mod params;
pub mod processor;
pub mod select;
pub mod testing;
pub mod udf;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

#[cfg(all(target_arch = "wasm32", feature = "processor"))]
#[doc(hidden)]
pub mod glue_processor;

#[cfg(all(target_arch = "wasm32", feature = "connector"))]
#[doc(hidden)]
pub mod glue_connector;

#[cfg(all(target_arch = "wasm32", feature = "udf"))]
#[doc(hidden)]
pub mod glue_udf;

pub use event::{Emitter, Event, OutEvent};
pub use params::Params;
pub use processor::{Host, Processor};

use abi::{CallError, RawBatch, RawOutput, Rejection};

/// The contract version this SDK builds against.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Why processing one event failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// This event is bad: dead-letter it with this reason.
    Reject(String),
    /// Something outside is temporarily unavailable: retry the batch later.
    Retry(String),
    /// The plugin cannot go on: stop the stage.
    Fatal(String),
}

impl EventError {
    /// Shorthand for [`EventError::Reject`] from anything displayable.
    pub fn reject(reason: impl std::fmt::Display) -> Self {
        EventError::Reject(reason.to_string())
    }
}

impl From<String> for EventError {
    fn from(reason: String) -> Self {
        EventError::Reject(reason)
    }
}

impl From<&str> for EventError {
    fn from(reason: &str) -> Self {
        EventError::Reject(reason.to_string())
    }
}

/// A stateless transform: called once per input event, emits 0..n events.
pub trait Transform: Sized {
    /// Builds the transform from the stage's parameters. Return an error naming
    /// the parameter and what was expected: it fails the deployment.
    fn new(params: &Params) -> Result<Self, String>;

    /// Processes one event, emitting any number of output events to `out`.
    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError>;

    /// Called once when the host retires this instance cleanly: at the end
    /// of a run, or when a hot reload replaces it. Not after a crash, and not
    /// when the process is killed. It cannot emit events; it is the place to
    /// [`log`] a summary, such as what a short stream never showed.
    fn finish(&mut self) {}
}

/// Runs `transform` over one framed batch. This is the whole batch loop: the
/// Wasm export glue and the native stub host both call it, so what you test
/// natively is what runs in the sandbox.
pub fn run_transform<T: Transform>(
    transform: &mut T,
    input: &RawBatch,
) -> Result<RawOutput, CallError> {
    run_events(input, |event, out| transform.process(event, out))
}

/// The batch loop shared by transforms and processors: calls `f` once per
/// input event with an emitter whose outputs derive from that event, and
/// withdraws what was emitted for an event that is then rejected.
pub fn run_events(
    input: &RawBatch,
    mut f: impl FnMut(&Event<'_>, &mut Emitter<'_>) -> Result<(), EventError>,
) -> Result<RawOutput, CallError> {
    let mut output = RawOutput {
        events: RawBatch {
            // Outputs are usually about as large as inputs.
            data: Vec::with_capacity(input.data.len()),
            events: Vec::with_capacity(input.events.len()),
            headers: Vec::new(),
            streams: Vec::new(),
        },
        rejected: Vec::new(),
    };
    for (index, raw) in input.events.iter().enumerate() {
        let parent = u32::try_from(index).unwrap_or(u32::MAX);
        let mark = (
            output.events.data.len(),
            output.events.events.len(),
            output.events.headers.len(),
        );
        let event = Event {
            batch: input,
            raw,
            index: parent,
        };
        let mut emitter = Emitter {
            out: &mut output.events,
            input: event,
            parent,
        };
        match f(&event, &mut emitter) {
            Ok(()) => {}
            Err(EventError::Reject(reason)) => {
                // Withdraw whatever was emitted for the rejected event.
                output.events.data.truncate(mark.0);
                output.events.events.truncate(mark.1);
                output.events.headers.truncate(mark.2);
                output.rejected.push(Rejection {
                    index: parent,
                    reason,
                });
            }
            Err(EventError::Retry(reason)) => return Err(CallError::Retry(reason)),
            Err(EventError::Fatal(reason)) => return Err(CallError::Fatal(reason)),
        }
    }
    Ok(output)
}

/// Declares that this plugin reads event values through [`Event::view`] (or
/// [`json::BatchViews`]), so the host sends each value's field table with it
/// and the view skips its scan ([`json::table`]). Use it once per plugin
/// crate, beside `export_transform!` or `export_processor!`, in plugins that
/// read JSON; a plugin that only passes values on is better off without it,
/// since the host then builds no table for it.
///
/// It puts a custom section named `sluice:field-tables` in the module,
/// holding the table layout this SDK reads (1); the host looks for it when
/// it loads the component, and sends tables only for a layout it writes. Without it (and with
/// every other SDK for now) nothing changes: the plugin scans each value.
#[macro_export]
macro_rules! declare_field_tables {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[link_section = "sluice:field-tables"]
        #[used]
        static SLUICE_FIELD_TABLES: [u8; 1] = [1];
    };
}

/// Exports a [`Transform`] as the `sluice:plugin/transformer` interface.
///
/// Use it once per plugin crate (built as a `cdylib`). On non-Wasm targets it
/// expands to nothing, so the same crate unit-tests natively.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // Tells the host this plugin's outputs may name parts of their
            // parents (the SDK's `Emitter` does, where the host allows it).
            #[link_section = "sluice:parent-refs"]
            #[used]
            static SLUICE_PARENT_REFS: [u8; 1] = [1];
            struct SluiceTransformComponent;
            impl $crate::glue::wit::exports::sluice::plugin::transformer::Guest
                for SluiceTransformComponent
            {
                type Transform = $crate::glue::TransformResource<$ty>;
                fn describe() -> $crate::glue::wit::sluice::plugin::types::PluginInfo {
                    $crate::glue::info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }
    $crate::glue::wit::export!(SluiceTransformComponent with_types_in $crate::glue::wit);
        };
    };
}

/// Exports a [`Processor`] as the `sluice:plugin/stateful` interface (the
/// `processor` world). Needs the SDK's `processor` feature.
#[macro_export]
macro_rules! export_processor {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // Tells the host this plugin's outputs may name parts of their
            // parents (the SDK's `Emitter` does, where the host allows it).
            #[link_section = "sluice:parent-refs"]
            #[used]
            static SLUICE_PARENT_REFS: [u8; 1] = [1];
            struct SluiceProcessorComponent;
            impl $crate::glue_processor::pwit::exports::sluice::plugin::stateful::Guest
                for SluiceProcessorComponent
            {
                type Processor = $crate::glue_processor::ProcessorResource<$ty>;
                fn describe() -> $crate::glue::wit::sluice::plugin::types::PluginInfo {
                    $crate::glue::info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }
    $crate::glue_processor::pwit::export!(SluiceProcessorComponent with_types_in $crate::glue_processor::pwit);
        };
    };
}

/// Exports a [`connector::Source`] as the `sluice:plugin/reader` interface
/// (the `source` world). Needs the SDK's `connector` feature.
#[macro_export]
macro_rules! export_source {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SluiceSourceComponent;
            impl $crate::glue_connector::swit::exports::sluice::plugin::reader::Guest
                for SluiceSourceComponent
            {
                type Source = $crate::glue_connector::SourceResource<$ty>;
                fn describe() -> $crate::glue::wit::sluice::plugin::types::PluginInfo {
                    $crate::glue::info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }
    $crate::glue_connector::swit::export!(SluiceSourceComponent with_types_in $crate::glue_connector::swit);
        };
    };
}

/// Exports a [`connector::Sink`] as the `sluice:plugin/writer` interface
/// (the `sink` world). Needs the SDK's `connector` feature.
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SluiceSinkComponent;
            impl $crate::glue_connector::kwit::exports::sluice::plugin::writer::Guest
                for SluiceSinkComponent
            {
                type Sink = $crate::glue_connector::SinkResource<$ty>;
                fn describe() -> $crate::glue::wit::sluice::plugin::types::PluginInfo {
                    $crate::glue::info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }
    $crate::glue_connector::kwit::export!(SluiceSinkComponent with_types_in $crate::glue_connector::kwit);
        };
    };
}
