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
];

/// The connector named `type_name`.
pub fn kind(type_name: &str) -> Option<&'static SourceKind> {
    REGISTRY.iter().find(|k| k.name == type_name)
}

/// Every `type` value, for messages.
pub fn types() -> Vec<&'static str> {
    REGISTRY.iter().map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::REGISTRY;

    /// Every registered source has its reference page, and every page names
    /// a registered source: the docs cannot drift from the registry.
    #[test]
    fn every_registered_source_has_a_docs_page_and_every_page_a_source() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/connectors");
        let index =
            std::fs::read_to_string(docs.join("README.md")).expect("docs/connectors/README.md");
        for kind in REGISTRY {
            let page = docs.join("sources").join(format!("{}.md", kind.name));
            let text = std::fs::read_to_string(&page).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; document the `{}` source",
                    page.display(),
                    kind.name
                )
            });
            let heading = format!("# {} (source)", kind.name);
            assert_eq!(
                text.lines().next(),
                Some(heading.as_str()),
                "{}",
                page.display()
            );
            assert!(
                index.contains(&format!("sources/{}.md", kind.name)),
                "docs/connectors/README.md does not link sources/{}.md",
                kind.name
            );
        }
        for entry in std::fs::read_dir(docs.join("sources")).expect("docs/connectors/sources") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let stem = name.trim_end_matches(".md");
            assert!(
                super::kind(stem).is_some(),
                "docs/connectors/sources/{name} documents no registered source"
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
