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
];

/// The connector named `type_name`.
pub fn kind(type_name: &str) -> Option<&'static SinkKind> {
    REGISTRY.iter().find(|k| k.name == type_name)
}

/// Every `type` value, for messages.
pub fn types() -> Vec<&'static str> {
    REGISTRY.iter().map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::REGISTRY;

    /// Every registered sink has its reference page, and every page names a
    /// registered sink: the docs cannot drift from the registry.
    #[test]
    fn every_registered_sink_has_a_docs_page_and_every_page_a_sink() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/connectors");
        let index =
            std::fs::read_to_string(docs.join("README.md")).expect("docs/connectors/README.md");
        for kind in REGISTRY {
            let page = docs.join("sinks").join(format!("{}.md", kind.name));
            let text = std::fs::read_to_string(&page).unwrap_or_else(|e| {
                panic!("{}: {e}; document the `{}` sink", page.display(), kind.name)
            });
            let heading = format!("# {} (sink)", kind.name);
            assert_eq!(
                text.lines().next(),
                Some(heading.as_str()),
                "{}",
                page.display()
            );
            assert!(
                index.contains(&format!("sinks/{}.md", kind.name)),
                "docs/connectors/README.md does not link sinks/{}.md",
                kind.name
            );
        }
        for entry in std::fs::read_dir(docs.join("sinks")).expect("docs/connectors/sinks") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let stem = name.trim_end_matches(".md");
            assert!(
                super::kind(stem).is_some(),
                "docs/connectors/sinks/{name} documents no registered sink"
            );
        }
    }

    #[test]
    fn type_names_are_unique() {
        let mut names = super::types();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
    }
}
