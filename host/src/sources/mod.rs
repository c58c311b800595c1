//! Sources: where events enter a pipeline. One folder per connector, each
//! with its config (what users write), the running source it builds, and
//! the [`SourceKind`] that names it; [`REGISTRY`] lists them all.

pub mod datagen;
pub mod file;
pub mod kafka;
pub mod mongodb;
pub mod postgres_cdc;
pub mod postgres_poll;
pub mod stdin;
pub mod wasm;

use crate::connector::SourceKind;

/// Every source connector a pipeline file may name, in the order listings
/// show them.
pub static REGISTRY: &[SourceKind] = &[
    file::KIND,
    stdin::KIND,
    datagen::KIND,
    postgres_cdc::KIND,
    postgres_poll::KIND,
    mongodb::KIND,
    kafka::KIND,
    wasm::KIND,
];

/// The connector named `type_name`.
pub fn kind(type_name: &str) -> Option<&'static SourceKind> {
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
    fn every_registered_source_has_a_docs_page_and_every_page_a_source() {
        crate::connector::registry::assert_documented("sources", "source", &super::types());
    }
}
