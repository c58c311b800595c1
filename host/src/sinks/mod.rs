//! Sinks: where events leave a pipeline. One folder per connector, each
//! with its config, the running sink it builds, and the [`SinkKind`] that
//! names it; [`REGISTRY`] lists them all. `sql/` is shared by the two SQL
//! sinks.

pub mod elasticsearch;
pub mod file;
pub mod kafka;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod s3;
pub mod sql;
pub mod stdout;
pub mod wasm;

mod encode;

pub use encode::{write_event, OutputFormat};

use crate::connector::SinkKind;

/// Every sink connector a pipeline file may name, in the order listings
/// show them.
pub static REGISTRY: &[SinkKind] = &[
    file::KIND,
    stdout::KIND,
    elasticsearch::KIND,
    s3::KIND,
    mongodb::KIND,
    postgres::KIND,
    mysql::KIND,
    kafka::KIND,
    wasm::KIND,
];

/// The connector named `type_name`.
pub fn kind(type_name: &str) -> Option<&'static SinkKind> {
    crate::connector::find(REGISTRY, type_name)
}

/// Every `type` value, for messages.
pub fn types() -> Vec<&'static str> {
    crate::connector::names(REGISTRY)
}

#[cfg(test)]
mod tests {
    /// The docs cannot drift from the registry.
    #[test]
    fn every_registered_sink_has_a_docs_page_and_every_page_a_sink() {
        crate::connector::registry::assert_documented("sinks", "sink", &super::types());
    }
}
