//! `sluice dlq`: browse a pipeline's dead letters, replay them after a fix
//! exactly once (counted line by line in the `file` sink, whose contract is
//! exactly-once), including after a replay killed mid-way, and purge them.
//!
//! The pipeline: numbered events through the built-in `project`, whose
//! "broken" version sets `meta.tag`, which cannot be written when `meta` is
//! a string (every fifth event), so those are rejected; the "fixed" version
//! sets `tag` instead, which every event takes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::*;

/// `failpoint::EXIT_STATUS`: the process ended at the armed point.
const FAILPOINT_EXIT: i32 = 86;

struct Case {
    dir: tempfile::TempDir,
    events: usize,
}

impl Case {
    /// `events` events, every fifth with `meta` a string.
    fn new(events: usize, settings: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(dir.path().join("in.jsonl")).expect("create"),
        );
        for i in 0..events {
            if i % 5 == 0 {
                writeln!(w, r#"{{"n":{i},"meta":"legacy"}}"#).expect("write");
            } else {
                writeln!(w, r#"{{"n":{i},"meta":{{"src":"web"}}}}"#).expect("write");
            }
        }
        drop(w);
        let project = q(&plugin("project"));
        for (name, field) in [("broken", "meta.tag"), ("fixed", "tag")] {
            std::fs::write(
                dir.path().join(format!("{name}.yaml")),
                format!(
                    "name: orders\n{settings}sources:\n  in: {{type: file, path: in.jsonl}}\n\
                     stages:\n  tag:\n    plugin: {project}\n    inputs: [in]\n    params:\n      set:\n        {field}: \"'x'\"\n\
                     sinks:\n  out: {{type: file, path: out.jsonl, inputs: [tag]}}\n"
                ),
            )
            .expect("write pipeline");
        }
        Case { dir, events }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.yaml"))
    }

    fn dead_letters(&self) -> PathBuf {
        self.dir.path().join(".sluice/orders/dead-letters.jsonl")
    }

    fn sluice(&self, args: &[&str], pipeline: &str) -> Command {
        let mut c = sluice();
        c.current_dir(self.dir.path())
            .args(args)
            .arg(self.file(pipeline));
        c
    }

    fn run(&self, pipeline: &str) -> Output {
        run_ok(self.sluice(&["run", "--no-progress"], pipeline).arg("-q"))
    }

    /// `sluice dlq COMMAND PIPELINE ARGS...`.
    fn dlq(&self, command: &str, pipeline: &str, args: &[&str]) -> Command {
        let mut c = sluice();
        c.current_dir(self.dir.path())
            .args(["-q", "dlq", command])
            .arg(self.file(pipeline))
            .args(args);
        c
    }

    /// The same with `--json`, parsed.
    fn dlq_json(&self, command: &str, pipeline: &str, args: &[&str]) -> Value {
        let out = run_ok(self.dlq(command, pipeline, args).arg("--json"));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// How many times each `n` is in the output file.
    fn output_counts(&self) -> BTreeMap<i64, usize> {
        let mut counts = BTreeMap::new();
        for v in json_lines(&self.dir.path().join("out.jsonl")) {
            let n = v["n"].as_i64().expect("n");
            *counts.entry(n).or_default() += 1;
        }
        counts
    }

    /// Every event exactly once in the output.
    fn assert_each_once(&self) {
        let counts = self.output_counts();
        let dup: Vec<_> = counts.iter().filter(|(_, c)| **c != 1).collect();
        assert!(dup.is_empty(), "events not exactly once: {dup:?}");
        assert_eq!(counts.len(), self.events, "every event delivered");
    }
}

fn count(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {path} in {v}"))
}

#[test]
fn a_replay_after_a_fix_delivers_each_dead_letter_once_and_purge_clears_them() {
    let case = Case::new(100, "");
    case.run("broken");
    assert_eq!(case.output_counts().len(), 80);

    let ls = case.dlq_json("ls", "broken", &[]);
    assert_eq!(count(&ls, "/total"), 20);
    let groups = ls["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{ls}");
    assert_eq!(groups[0]["kind"], "rejected");
    assert_eq!(groups[0]["stage"], "tag");
    assert_eq!(count(&groups[0], "/count"), 20);
    assert!(
        groups[0]["plugin"]
            .as_str()
            .is_some_and(|p| p.contains("sluice-plugin-project")),
        "{ls}"
    );
    let second = ls["letters"][1].clone();
    let id = second["id"].as_str().expect("id").to_string();
    let show = case.dlq_json("show", "broken", &[&id]);
    assert_eq!(show["value"], serde_json::json!({"n": 5, "meta": "legacy"}));
    assert_eq!(show["origin"], "in");
    assert!(
        show["reason"]
            .as_str()
            .is_some_and(|r| r.contains("meta.tag")),
        "{show}"
    );
    assert!(
        show["time_ms"].as_i64().is_some(),
        "refused-at time: {show}"
    );
    let text = String::from_utf8_lossy(&run_ok(&mut case.dlq("show", "broken", &[&id])).stdout)
        .into_owned();
    assert!(text.contains("refused by:  tag"), "{text}");

    // Replayed into the still-broken pipeline, the selected letters are
    // dead-lettered again, each as a new letter with its own ID.
    let again = case.dlq_json("replay", "broken", &["--filter", "value.n < 20"]);
    assert_eq!(count(&again, "/outcomes/dead-lettered"), 4, "{again}");
    let letters = again["letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 4);
    assert!(letters
        .iter()
        .all(|l| l["new_id"].is_string() && l["new_id"] != l["id"]));
    assert_eq!(case.output_counts().len(), 80, "nothing delivered");
    assert_eq!(json_lines(&case.dead_letters()).len(), 24);

    // After the fix: the 16 never replayed and the 4 new ones are
    // delivered; the 4 replayed before are not sent again.
    let fixed = case.dlq_json("replay", "fixed", &[]);
    assert_eq!(count(&fixed, "/outcomes/delivered"), 20, "{fixed}");
    assert_eq!(count(&fixed, "/already_replayed"), 4, "{fixed}");
    case.assert_each_once();
    let tagged = json_lines(&case.dir.path().join("out.jsonl"))
        .iter()
        .filter(|v| v["tag"] == "x")
        .count();
    assert_eq!(
        tagged, 20,
        "the replayed events went through the fixed stage"
    );

    // A second replay does nothing.
    let twice = case.dlq_json("replay", "fixed", &[]);
    assert_eq!(twice["run"], 0, "{twice}");
    assert_eq!(count(&twice, "/already_replayed"), 24);
    case.assert_each_once();
    let pending = case.dlq_json("ls", "fixed", &["--filter", "replayed is null"]);
    assert_eq!(count(&pending, "/total"), 0);

    // The pipeline itself resumes after the replay without cutting its
    // output back or reading its source again.
    case.run("fixed");
    case.assert_each_once();

    let dry = case.dlq_json("purge", "fixed", &["--replayed", "--dry-run"]);
    assert_eq!(count(&dry, "/removed"), 24);
    assert_eq!(json_lines(&case.dead_letters()).len(), 24, "dry run");
    let purged = case.dlq_json("purge", "fixed", &["--replayed"]);
    assert_eq!(count(&purged, "/removed"), 24);
    assert_eq!(
        std::fs::metadata(case.dead_letters()).expect("kept").len(),
        0
    );
    assert_eq!(count(&case.dlq_json("ls", "fixed", &[]), "/total"), 0);
    // The checkpoint learnt the file's new length: the next run accepts it.
    case.run("fixed");
    case.assert_each_once();
}

/// Reads the number out of "K of N letters had been committed".
fn committed_before_kill(stderr: &str) -> Option<(usize, usize)> {
    let at = stderr.find(" letters had been committed")?;
    let words: Vec<&str> = stderr[..at].rsplit(' ').take(3).collect();
    Some((words[2].parse().ok()?, words[0].parse().ok()?))
}

#[test]
fn a_replay_killed_mid_way_and_rerun_delivers_each_letter_exactly_once() {
    // Small batches and frequent checkpoints, so the replay commits several
    // times; it is killed (as by kill -9) right after its second commit.
    // When that lands after the whole replay (a fast machine), the kill
    // proved nothing about resuming mid-way: it is repeated on more data.
    for events in [20_000, 80_000, 320_000] {
        let case = Case::new(
            events,
            "batch_size: 16\ncheckpoint_interval_ms: 5\nchannel_capacity: 2\n",
        );
        case.run("broken");
        let rejected = events / 5;
        assert_eq!(json_lines(&case.dead_letters()).len(), rejected);

        let killed = case
            .dlq("replay", "fixed", &[])
            .env("SLUICE_FAILPOINTS", "checkpoint.rename.after=exit@2")
            .output()
            .expect("runs");
        assert_eq!(
            killed.status.code(),
            Some(FAILPOINT_EXIT),
            "{}",
            String::from_utf8_lossy(&killed.stderr)
        );
        let rerun = run_ok(&mut case.dlq("replay", "fixed", &["--json"]));
        let stderr = String::from_utf8_lossy(&rerun.stderr).into_owned();
        let (done, planned) = committed_before_kill(&stderr)
            .unwrap_or_else(|| panic!("no note of the interrupted run: {stderr}"));
        assert_eq!(planned, rejected);
        eprintln!("{events} events: the killed replay had committed {done} of {planned}");
        case.assert_each_once();
        let report: Value = serde_json::from_slice(&rerun.stdout).expect("json");
        let delivered = report
            .pointer("/outcomes/delivered")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        assert_eq!(
            delivered as usize,
            rejected - done,
            "the rerun sends only what the killed run had not committed"
        );
        // And nothing more, ever.
        let third = case.dlq_json("replay", "fixed", &[]);
        assert_eq!(count(&third, "/already_replayed") as usize, rejected);
        case.assert_each_once();
        if done < planned {
            return;
        }
    }
    panic!("the replay finished before the kill every time; nothing was proved");
}

#[test]
fn replay_and_purge_refuse_while_the_pipeline_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        "name: live\nsources:\n  in: {type: stdin}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [in]}\n",
    );
    let mut run = sluice()
        .current_dir(dir.path())
        .args(["run", "--no-progress", "-q"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = Stderr::drain(&mut run);
    let lock = dir.path().join(".sluice/live/run.lock");
    // The run has the lock once it has written its name into the file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("sluice run")) {
        assert!(std::time::Instant::now() < deadline, "no lock taken");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for args in [&["replay"][..], &["purge", "--all"][..]] {
        let err = run_failing(
            sluice()
                .current_dir(dir.path())
                .arg("dlq")
                .args(&args[..1])
                .arg(&pipeline)
                .args(&args[1..]),
        );
        assert!(
            err.contains(&format!("locked by pid {}: sluice run", run.id())),
            "{err}"
        );
    }
    // A second run of the same pipeline is refused the same way.
    let err = run_failing(sluice().current_dir(dir.path()).arg("run").arg(&pipeline));
    assert!(err.contains("locked by"), "{err}");
    drop(run.stdin.take());
    let status = run.wait().expect("wait");
    assert!(status.success(), "{}", stderr.finish());
    // The lock went with the run.
    let dry = run_ok(
        sluice()
            .current_dir(dir.path())
            .args(["dlq", "purge"])
            .arg(&pipeline)
            .args(["--all", "--dry-run"]),
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would remove 0"));
}

#[test]
fn a_damaged_dead_letter_file_is_reported_by_line_not_a_panic() {
    let case = Case::new(10, "");
    case.run("broken");
    let path = case.dead_letters();
    let mut text = std::fs::read_to_string(&path).expect("read");
    let good = text.lines().count();
    text.push_str("not json at all\n{\"headers\": 5}\n\u{0}\u{1}binary\n");
    text.push_str(&"[".repeat(100_000));
    text.push('\n');
    std::fs::write(&path, text).expect("damage");
    let out = run_ok(&mut case.dlq("ls", "broken", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [good + 1, good + 2, good + 3, good + 4] {
        assert!(
            stderr.contains(&format!("dead-letters.jsonl:{line}: ")),
            "line {line} reported: {stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{good} dead letter(s)")),
        "{stdout}"
    );
    let json = case.dlq_json("ls", "broken", &[]);
    assert_eq!(count(&json, "/bad_line_count"), 4);
    let err = run_failing(&mut case.dlq("show", "broken", &["3-abcdef"]));
    assert!(err.contains("no dead letter 3-abcdef"), "{err}");
}

#[test]
fn dlq_help_teaches_the_commands() {
    for (command, says) in [
        ("ls", "--filter takes an expression"),
        ("show", "OFFSET-HASH"),
        ("replay", "Exactly once"),
        ("purge", "--replayed"),
    ] {
        let out = run_ok(sluice().args(["dlq", command, "--help"]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(says), "dlq {command} --help: {text}");
        assert!(text.contains("Example"), "dlq {command} --help: {text}");
    }
}
