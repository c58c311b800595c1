//! `sluice plugin new --lang rust` writes no path that breaks when a checkout moves:
//! inside a checkout the SDK is a relative path, elsewhere the project carries a copy.
//! Each case is built, moved, and built again.

use std::path::{Path, PathBuf};

use crate::languages::builds_and_runs;
use crate::support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

/// The parts of this checkout a Rust plugin builds against: `sdk/`, `wit/`, and the
/// workspace manifest the SDK inherits from, with the SDK its only member.
fn copy_checkout(to: &Path) {
    for dir in ["sdk/src", "wit"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect(dir) {
            let entry = entry.expect("entry");
            // `wit/0.1.0/` is the older contract, for the other languages' SDKs.
            if entry.path().is_file() {
                copy(&entry.path(), &to.join(dir).join(entry.file_name()));
            }
        }
    }
    copy(&repo().join("sdk/Cargo.toml"), &to.join("sdk/Cargo.toml"));
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let start = manifest.find("members = [").expect("a members list");
    let end = start + manifest[start..].find(']').expect("its end") + 1;
    let manifest = format!(
        "{}members = [\"sdk\"]{}",
        &manifest[..start],
        &manifest[end..]
    );
    std::fs::write(to.join("Cargo.toml"), manifest).expect("write Cargo.toml");
}

/// Scaffolds `name` in `cwd`. Every test names its plugin differently: the Rust
/// scaffolds share a target directory, where the component is named after the crate.
fn new_rust_plugin(cwd: &Path, name: &str) -> PathBuf {
    run_ok(
        sluice()
            .current_dir(cwd)
            .args(["plugin", "new", "--lang", "rust", name]),
    );
    cwd.join(name)
}

/// Fails when a file of the new project (not yet built) names `path`.
fn assert_never_named(project: &Path, path: &Path) {
    let needle = path.to_string_lossy().to_string();
    let mut dirs = vec![project.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a text file");
            assert!(
                !text.contains(&needle),
                "{} names {needle}:\n{text}",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files >= 4, "the scaffold has its files");
}

#[test]
fn rust_scaffold_inside_a_checkout_uses_a_relative_sdk_and_builds_after_the_checkout_moves() {
    let root = tempfile::tempdir().expect("tempdir");
    let checkout = root.path().join("checkout");
    copy_checkout(&checkout);
    let scratch = checkout.join("scratch");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    let project = new_rust_plugin(&scratch, "inside-checkout");

    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("sluice-sdk = { path = \"../../sdk\" }"),
        "{manifest}"
    );
    assert!(
        !project.join("sluice-sdk").exists(),
        "no copy of the SDK inside a checkout"
    );
    assert_never_named(&project, root.path());
    assert_never_named(&project, &repo().canonicalize().expect("repo"));

    builds_and_runs("rust", &project);
    let moved = root.path().join("moved");
    std::fs::rename(&checkout, &moved).expect("move the checkout");
    builds_and_runs("rust", &moved.join("scratch/inside-checkout"));
}

#[test]
fn rust_scaffold_outside_a_checkout_carries_its_sdk_and_builds_after_moving() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = new_rust_plugin(root.path(), "outside-checkout");

    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("sluice-sdk = { path = \"sluice-sdk\" }"),
        "{manifest}"
    );
    let contract = std::fs::read_to_string(project.join("wit/sluice.wit")).expect("wit");
    assert_eq!(
        contract,
        std::fs::read_to_string(repo().join("wit/sluice.wit")).expect("wit"),
        "the contract this sluice speaks"
    );
    let sdk = std::fs::read_to_string(project.join("sluice-sdk/Cargo.toml")).expect("sdk");
    assert!(!sdk.contains("workspace"), "a standalone manifest: {sdk}");
    assert_never_named(&project, root.path());
    assert_never_named(&project, &repo().canonicalize().expect("repo"));

    builds_and_runs("rust", &project);
    let moved = root.path().join("elsewhere").join("outside-checkout");
    std::fs::create_dir_all(moved.parent().expect("parent")).expect("mkdir");
    std::fs::rename(&project, &moved).expect("move the project");
    builds_and_runs("rust", &moved);
}
