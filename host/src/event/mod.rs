//! The bottom layer: what an event is, how a batch of them is framed, and
//! the JSON checks every edge shares. Everything else in the host builds on
//! this module; it imports nothing from the rest of the crate.

pub mod abi;
mod batch;
mod field_tables;
mod json;

pub(crate) use batch::slice as span_bytes;
pub use batch::{Batch, BatchBuilder, EventView};
pub use field_tables::FieldTables;
pub use json::check_json;
