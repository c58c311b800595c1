//! `run --watch` swaps a plugin whose file changes at a batch boundary, with
//! no lost or duplicated events.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

#[test]
fn watch_swaps_a_changed_plugin_without_losing_or_duplicating_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("stage.wasm");
    std::fs::copy(guest("misbehave"), &wasm).expect("copy build a");
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "batch_size: 50\nsources:\n  gen: {{type: datagen, kind: customers, count: 6000, rate: 2000}}\nstages:\n  tag: {{plugin: {}, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [tag]}}\n",
            q(&wasm),
            q(&out)
        ),
    )
    .expect("write pipeline");
    let child = sluice()
        .arg("run")
        .arg("--watch")
        .arg(&pipeline)
        .arg("--no-progress")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1200));
    // Replace atomically, as a build tool would.
    let tmp = dir.path().join("stage.wasm.new");
    std::fs::copy(guest("misbehave-b"), &tmp).expect("copy build b");
    std::fs::rename(&tmp, &wasm).expect("swap file");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The two builds claim the same name and version; their hashes differ.
    let swap = stderr
        .lines()
        .find(|l| l.contains("hot-swapped"))
        .unwrap_or_else(|| panic!("no swap logged: {stderr}"));
    let hashes: Vec<&str> = swap
        .split("sha256 ")
        .skip(1)
        .filter_map(|s| s.get(..8))
        .collect();
    assert!(hashes.len() >= 2, "{swap}");
    assert_ne!(hashes[0], hashes[1], "the builds are told apart: {swap}");

    let events = json_lines(&out);
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut tags = Vec::new();
    for e in &events {
        *count
            .entry(e["id"].as_str().expect("id").to_string())
            .or_default() += 1;
        tags.push(e["tag"].as_str().expect("tag").to_string());
    }
    assert_eq!(events.len(), 6000, "no event lost or duplicated");
    assert_eq!(count.len(), 6000, "ids are unique");
    let first_b = tags
        .iter()
        .position(|t| t == "b")
        .expect("build b served some events");
    assert!(first_b > 0, "build a served the first events");
    assert!(
        tags[first_b..].iter().all(|t| t == "b"),
        "after the swap only build b runs"
    );
}
