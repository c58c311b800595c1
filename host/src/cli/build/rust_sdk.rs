//! Where a new Rust plugin gets `sluice-sdk` from, so the project never holds a path
//! that breaks when a checkout moves or is shared.
//!
//! - Created inside a Sluice checkout (an ancestor directory has `sdk/` and
//!   `wit/sluice.wit`): a relative path to that checkout's SDK. The two move together.
//! - Anywhere else: a copy of the SDK this binary was built with, written into the
//!   project (`sluice-sdk/`, with the contract in `wit/`, where the SDK's bindings look
//!   for it). `sluice-sdk` is not on crates.io (and cannot be published as it is: it
//!   reads the contract from `../wit`), so a versioned dependency would not resolve; a
//!   copy builds offline and matches the contract this `sluice` speaks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The SDK's sources, embedded so a project outside any checkout gets the same code.
const SOURCES: &[(&str, &str)] = &[
    ("src/abi.rs", include_str!("../../../../sdk/src/abi.rs")),
    (
        "src/abi_row_fields.rs",
        include_str!("../../../../sdk/src/abi_row_fields.rs"),
    ),
    (
        "src/connector.rs",
        include_str!("../../../../sdk/src/connector.rs"),
    ),
    ("src/event.rs", include_str!("../../../../sdk/src/event.rs")),
    ("src/glue.rs", include_str!("../../../../sdk/src/glue.rs")),
    (
        "src/glue_connector.rs",
        include_str!("../../../../sdk/src/glue_connector.rs"),
    ),
    (
        "src/glue_processor.rs",
        include_str!("../../../../sdk/src/glue_processor.rs"),
    ),
    ("src/json.rs", include_str!("../../../../sdk/src/json.rs")),
    (
        "src/json_batch.rs",
        include_str!("../../../../sdk/src/json_batch.rs"),
    ),
    (
        "src/json_fieldset.rs",
        include_str!("../../../../sdk/src/json_fieldset.rs"),
    ),
    (
        "src/json_table.rs",
        include_str!("../../../../sdk/src/json_table.rs"),
    ),
    (
        "src/json_tests.rs",
        include_str!("../../../../sdk/src/json_tests.rs"),
    ),
    ("src/lib.rs", include_str!("../../../../sdk/src/lib.rs")),
    ("src/log.rs", include_str!("../../../../sdk/src/log.rs")),
    ("src/names.rs", include_str!("../../../../sdk/src/names.rs")),
    (
        "src/params.rs",
        include_str!("../../../../sdk/src/params.rs"),
    ),
    (
        "src/processor.rs",
        include_str!("../../../../sdk/src/processor.rs"),
    ),
    (
        "src/select.rs",
        include_str!("../../../../sdk/src/select.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../../sdk/src/testing.rs"),
    ),
    (
        "src/testing_connector.rs",
        include_str!("../../../../sdk/src/testing_connector.rs"),
    ),
    ("src/udf.rs", include_str!("../../../../sdk/src/udf.rs")),
    (
        "src/glue_udf.rs",
        include_str!("../../../../sdk/src/glue_udf.rs"),
    ),
];

/// The SDK's manifest, which inherits from the workspace's.
const SDK_MANIFEST: &str = include_str!("../../../../sdk/Cargo.toml");
/// The workspace manifest, for the values the SDK inherits.
const WORKSPACE_MANIFEST: &str = include_str!("../../../../Cargo.toml");

/// How the new project depends on the SDK.
pub struct SdkDependency {
    /// The `path` of the `sluice-sdk` dependency, relative to the project.
    pub path: String,
    /// One comment line saying where that is.
    pub note: &'static str,
}

/// Chooses the SDK for a new project at `project` (absolute, not yet created), and
/// writes the copy when one is needed (after the project directory exists).
pub fn place(project: &Path) -> Result<SdkDependency> {
    if let Some(checkout) = enclosing_checkout(project) {
        return Ok(SdkDependency {
            path: relative_to_ancestor(project, &checkout.join("sdk"), &checkout)?,
            note: "the SDK of the Sluice checkout this project is in, by a relative path",
        });
    }
    write_copy(project)?;
    Ok(SdkDependency {
        path: "sluice-sdk".into(),
        note: "a copy of the SDK of the `sluice` that created this project (see \"Where the SDK comes from\" in Sluice's docs/plugins.md)",
    })
}

/// The nearest ancestor of `project` that is a Sluice checkout.
fn enclosing_checkout(project: &Path) -> Option<PathBuf> {
    project.ancestors().skip(1).find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("sdk/Cargo.toml")).ok()?;
        let is_sdk = manifest
            .lines()
            .any(|l| l.trim() == "name = \"sluice-sdk\"");
        (is_sdk && dir.join("wit/sluice.wit").is_file()).then(|| dir.to_path_buf())
    })
}

/// `target` (under `ancestor`) as seen from `project` (also under `ancestor`).
fn relative_to_ancestor(project: &Path, target: &Path, ancestor: &Path) -> Result<String> {
    let up = project
        .strip_prefix(ancestor)
        .context("the project is not inside the checkout")?
        .components()
        .count();
    let down = target
        .strip_prefix(ancestor)
        .context("the SDK is not inside the checkout")?;
    let mut path = "../".repeat(up);
    path.push_str(&down.to_string_lossy());
    Ok(path)
}

/// Writes `sluice-sdk/` and `wit/` into the project.
fn write_copy(project: &Path) -> Result<()> {
    let sdk = project.join("sluice-sdk");
    let files = SOURCES
        .iter()
        .map(|(rel, text)| (sdk.join(rel), (*text).to_string()))
        .chain([
            (sdk.join("Cargo.toml"), standalone_manifest()?),
            (
                project.join("wit").join("sluice.wit"),
                super::WIT.to_string(),
            ),
        ]);
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The SDK's manifest with every `workspace = true` replaced by the workspace's value,
/// so the copy builds on its own.
fn standalone_manifest() -> Result<String> {
    let mut out = String::new();
    let mut skipping_lints = false;
    for line in SDK_MANIFEST.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            // The workspace's lint levels are this repository's policy, not the author's.
            skipping_lints = trimmed == "[lints]";
        }
        if skipping_lints {
            continue;
        }
        match trimmed.strip_suffix(".workspace = true") {
            Some(key) => {
                let value = workspace_value(key)
                    .with_context(|| format!("the workspace does not define `{key}`"))?;
                out.push_str(&format!("{key} = {value}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if out.contains("workspace") {
        bail!("the SDK manifest still refers to the workspace:\n{out}");
    }
    Ok(out)
}

/// `key`'s value in `[workspace.package]` or `[workspace.dependencies]`.
fn workspace_value(key: &str) -> Option<String> {
    let mut section = "";
    for line in WORKSPACE_MANIFEST.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed;
            continue;
        }
        if section != "[workspace.package]" && section != "[workspace.dependencies]" {
            continue;
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            if k.trim() == key {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_source_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("sdk/src")
            .map(|e| format!("src/{}", e.expect("entry").file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SOURCES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add new SDK files to SOURCES");
    }

    #[test]
    fn the_standalone_manifest_inherits_nothing() {
        let m = standalone_manifest().expect("manifest");
        assert!(m.contains("name = \"sluice-sdk\""), "{m}");
        assert!(m.contains("version = \"0.1.0\""), "{m}");
        assert!(m.contains("serde_json = \"1\""), "{m}");
        assert!(m.contains("wit-bindgen = { version = "), "{m}");
        assert!(!m.contains("[lints]") && !m.contains("workspace"), "{m}");
    }

    #[test]
    fn a_project_inside_a_checkout_points_up_to_its_sdk() {
        let root = tempfile::tempdir().expect("tempdir");
        let checkout = root.path().join("sluice");
        std::fs::create_dir_all(checkout.join("sdk")).expect("mkdir");
        std::fs::create_dir_all(checkout.join("wit")).expect("mkdir");
        std::fs::write(checkout.join("sdk/Cargo.toml"), SDK_MANIFEST).expect("write");
        std::fs::write(checkout.join("wit/sluice.wit"), super::super::WIT).expect("write");
        let project = checkout.join("scratch/deep/my-plugin");
        let dep = place(&project).expect("place");
        assert_eq!(dep.path, "../../../sdk");
        assert!(
            !project.exists(),
            "nothing copied into a project inside a checkout"
        );
    }

    #[test]
    fn a_project_elsewhere_gets_a_copy() {
        let root = tempfile::tempdir().expect("tempdir");
        let project = root.path().join("my-plugin");
        let dep = place(&project).expect("place");
        assert_eq!(dep.path, "sluice-sdk");
        assert!(project.join("sluice-sdk/src/lib.rs").is_file());
        assert!(project.join("wit/sluice.wit").is_file());
    }
}
