//! `run --watch` swaps a plugin whose file changes at a batch boundary, with
//! no lost or duplicated events.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// The `tag` of every complete line written so far (a line being written is
/// skipped: the file is read while the run appends to it).
fn tags(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["tag"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn watch_swaps_a_changed_plugin_without_losing_or_duplicating_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("stage.wasm");
    std::fs::copy(guest("misbehave"), &wasm).expect("copy build a");
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("p.yaml");
    // An endless generator, stopped by SIGTERM once build b has served events:
    // a bounded one could end before a slow machine notices the swap.
    std::fs::write(
        &pipeline,
        format!(
            "name: swap\ncheckpoint_interval_ms: 200\nbatch_size: 50\nsources:\n  gen: {{type: datagen, kind: customers, rate: 2000}}\nstages:\n  tag: {{plugin: {}, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [tag]}}\n",
            q(&wasm),
            q(&out)
        ),
    )
    .expect("write pipeline");
    let mut child = sluice()
        .arg("run")
        .arg("--watch")
        .arg(&pipeline)
        .arg("--no-progress")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = Stderr::drain(&mut child);
    // The watcher is armed before the sources start, so once build a has
    // written events, a change of the file is a change it will see.
    wait_for("build a to serve events", Duration::from_secs(60), || {
        tags(&out).iter().any(|t| t == "a").then_some(())
    });
    // Replace atomically, as a build tool would.
    let tmp = dir.path().join("stage.wasm.new");
    std::fs::copy(guest("misbehave-b"), &tmp).expect("copy build b");
    std::fs::rename(&tmp, &wasm).expect("swap file");
    let swap = stderr.wait_for_line("hot-swapped", Duration::from_secs(60));
    wait_for("build b to serve events", Duration::from_secs(60), || {
        tags(&out).iter().any(|t| t == "b").then_some(())
    });
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    let stderr = stderr.finish();
    assert!(status.success(), "graceful stop exits 0: {stderr}");
    // The two builds claim the same name and version; their hashes differ.
    let hashes: Vec<&str> = swap
        .split("sha256 ")
        .skip(1)
        .filter_map(|s| s.get(..8))
        .collect();
    // "build sha256 <old> -> sha256 <new>, now stage (claims ..., sha256 <new>)".
    assert_eq!(hashes.len(), 3, "{swap}");
    assert_ne!(hashes[0], hashes[1], "the builds are told apart: {swap}");
    assert_eq!(
        hashes[1], hashes[2],
        "the new build is the one running: {swap}"
    );

    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(".sluice/swap/checkpoint.json"))
            .expect("checkpoint written"),
    )
    .expect("checkpoint JSON");
    let seq = checkpoint["sources"]["gen"]["seq"].as_u64().expect("seq") as usize;
    let events = json_lines(&out);
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut tags = Vec::new();
    for e in &events {
        *count
            .entry(e["id"].as_str().expect("id").to_string())
            .or_default() += 1;
        tags.push(e["tag"].as_str().expect("tag").to_string());
    }
    assert_eq!(
        events.len(),
        seq,
        "the final checkpoint covers exactly what was written"
    );
    assert_eq!(count.len(), seq, "ids are unique: none duplicated");
    assert!(
        (0..seq).all(|i| count.contains_key(&i.to_string())),
        "ids 0..{seq} are all there: none lost"
    );
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
