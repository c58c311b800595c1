//! `sluice tap` against a local `sluice run --tap`: a filtered, capped live
//! sample of the events leaving a stage, read-only.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

#[test]
fn tap_shows_a_filtered_sample_of_a_stages_output_while_the_pipeline_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: live\nsources:\n  in: {{type: stdin}}\nstages:\n  tag:\n    plugin: {}\n    inputs: [in]\n    params:\n      set: {{tag: \"'x'\"}}\n\
             sinks:\n  out: {{type: file, path: out.jsonl, inputs: [tag]}}\n",
            q(&plugin("project"))
        ),
    );
    let mut run = sluice()
        .current_dir(dir.path())
        .args(["run", "--no-progress", "-q", "--tap", "127.0.0.1:0"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    let run_stderr = Stderr::drain(&mut run);
    let addr = dir.path().join(".sluice/live/tap.addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !addr.is_file() {
        assert!(Instant::now() < deadline, "the run never opened its tap");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = run_failing(
        sluice()
            .current_dir(dir.path())
            .args(["tap"])
            .arg(&pipeline)
            .args(["tag", "--filter", "n >"]),
    );
    assert!(refused.contains("the tap refused: filter"), "{refused}");

    let tap = sluice()
        .current_dir(dir.path())
        .args(["tap"])
        .arg(&pipeline)
        .args(["tag", "--filter", "n % 2 = 0", "--limit", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tap");
    // Events flow until the tap has seen its three (it only sees what
    // leaves the stage after it connected).
    let mut stdin = run.stdin.take().expect("stdin");
    let mut n = 0;
    let tap = std::thread::scope(|s| {
        let waiter = s.spawn(|| tap.wait_with_output().expect("tap ends"));
        while !waiter.is_finished() {
            assert!(Instant::now() < deadline, "the tap saw nothing");
            writeln!(stdin, "{{\"n\":{n}}}").expect("feed");
            stdin.flush().expect("flush");
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        waiter.join().expect("joined")
    });
    assert!(
        tap.status.success(),
        "{}",
        String::from_utf8_lossy(&tap.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&tap.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first = lines[0]["value"]["n"].as_i64().expect("n");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["component"], "tag");
        assert_eq!(l["value"]["tag"], "x", "the stage's output, not its input");
        assert_eq!(
            l["value"]["n"].as_i64(),
            Some(first + 2 * i as i64),
            "{lines:?}"
        );
    }
    drop(stdin);
    let status = run.wait().expect("run ends");
    assert!(status.success(), "{}", run_stderr.finish());
    // Read-only: the pipeline wrote every event.
    assert_eq!(lines_of(&dir.path().join("out.jsonl")), n);
}

fn lines_of(path: &std::path::Path) -> usize {
    lines(path).len()
}
