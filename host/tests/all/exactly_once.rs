//! A file -> file run killed with SIGKILL mid-way and rerun yields each input
//! event exactly once: the file sink truncates to the checkpointed length and
//! the source resumes from the checkpointed offset, committed together.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

#[test]
fn sigkill_mid_run_then_rerun_yields_each_event_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    // One event per batch, so the run lasts seconds (about 3 s for 100,000
    // events, against 0.1 s in batches of 32, which finished before its first
    // checkpoint was seen on a busy machine): the kill must land mid-way.
    const N: usize = 100_000;
    numbered_events(&input, N);
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: kill\ncheckpoint_interval_ms: 50\nbatch_size: 1\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  copy: {{plugin: {}, inputs: [in]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [copy]}}\n",
            q(&input),
            q(&plugin("passthrough")),
            q(&out)
        ),
    )
    .expect("write pipeline");
    let checkpoint = dir.path().join(".sluice/kill/checkpoint.json");

    let mut child = sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .spawn()
        .expect("spawn");
    // Kill once a checkpoint exists and output is being written. SIGSTOP
    // first, the moment that is seen: the run is frozen where the fact held
    // (a fast machine would otherwise go on, or finish, before the kill).
    wait_for("a checkpoint and output", Duration::from_secs(60), || {
        let written = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        (checkpoint.exists() && written > 0).then_some(())
    });
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &child.id().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success(), "kill -STOP");
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(
        !status.success(),
        "the first run must have been killed, not finished"
    );
    let partial = lines(&out).len();
    assert!(partial < N, "killed before the end ({partial} lines)");

    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for v in json_lines(&out) {
        *seen.entry(v["n"].as_i64().expect("n")).or_default() += 1;
    }
    let dups = seen.values().filter(|c| **c > 1).count();
    assert_eq!(dups, 0, "no event may appear twice");
    assert_eq!(
        seen.len(),
        N,
        "every event must appear (killed at {partial} lines)"
    );
}

#[test]
fn sigterm_drains_checkpoints_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: term\nsources:\n  gen: {{type: datagen, kind: orders, rate: 2000}}\nstages:\n  copy: {{plugin: {}, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [copy]}}\n",
            q(&plugin("passthrough")),
            q(&out)
        ),
    )
    .expect("write pipeline");
    let child = sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .spawn()
        .expect("spawn");
    // Stop once the run is under way: a checkpoint committed and events written.
    let checkpoint_file = dir.path().join(".sluice/term/checkpoint.json");
    wait_for("a checkpoint and output", Duration::from_secs(60), || {
        let written = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        (checkpoint_file.exists() && written > 0).then_some(())
    });
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "graceful stop exits 0: {output:?}");
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint_file).expect("checkpoint written"))
            .expect("checkpoint JSON");
    let seq = checkpoint["sources"]["gen"]["seq"].as_u64().expect("seq");
    let written = lines(&out).len() as u64;
    assert!(seq > 0);
    assert_eq!(
        seq, written,
        "the final checkpoint covers exactly what was written"
    );
}
