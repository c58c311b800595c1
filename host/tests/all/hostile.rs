//! Hostile plugins built with the SDK attack the host through their outputs,
//! CPU, state and timers (issue 14). Each attack must fail only the calls it
//! is made in: the host exits normally with its peak memory bounded, the
//! culprit events are dead-lettered with a `limit` (or `invalid-output`)
//! reason naming the limit and the stage, and their neighbours go through.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Runs `cmd` to completion, sampling the child's peak resident set
/// (`VmHWM`, which only grows) from /proc while it runs.
fn run_measured(cmd: &mut Command) -> (Output, u64, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "sluice still running after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    };
    assert!(peak_kb > 0, "no VmHWM sample was taken");
    let took = started.elapsed();
    eprintln!(
        "sluice exited {status:?}: peak RSS {} MiB, {took:?}",
        peak_kb / 1024
    );
    (output, peak_kb, took)
}

/// Kills the child if the test fails before it exits (an unbounded source
/// would otherwise outlive the test).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "sluice failed ({:?}; a signal means an abort):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn header<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v["headers"][name].as_str().unwrap_or_default()
}

/// The dead letter of the event with `"n": n`.
fn dead_letter_of(dead: &[serde_json::Value], n: i64) -> &serde_json::Value {
    dead.iter()
        .find(|d| d["value"]["n"] == n)
        .unwrap_or_else(|| panic!("event {n} not dead-lettered: {dead:?}"))
}

fn write_events(path: &Path, events: &[String]) {
    let mut text = events.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write input");
}

#[test]
fn output_floods_bad_parents_and_forged_headers_fail_only_their_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let attacks = [
        (2, "fanout"),
        (3, "table-cut"),
        (5, "reject-many"),
        (6, "table-huge"),
        (8, "reject-twice"),
        (11, "bad-parent"),
        (13, "forge"),
        (14, "bad-flags"),
        (15, "refs-whole-fanout"),
        (16, "refs-fanout"),
        (17, "refs-clash"),
        (18, "echo-refs"),
        (19, "refs-bad-parent"),
    ];
    // A 64 KiB value: 20,000 references to it are 1.3 GB of output, and as
    // much host memory if each were copied (the RSS bound below).
    let pad = "x".repeat(64 << 10);
    let events: Vec<String> = (0..20)
        .map(|i| match attacks.iter().find(|(n, _)| *n == i) {
            Some((_, what @ ("refs-fanout" | "refs-whole-fanout"))) => {
                format!(r#"{{"n":{i},"do":"{what}","pad":"{pad}"}}"#)
            }
            Some((_, what)) => format!(r#"{{"n":{i},"do":"{what}"}}"#),
            None => format!(r#"{{"n":{i}}}"#),
        })
        .collect();
    write_events(&input, &events);
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 20\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  hostile: {{plugin: {}, inputs: [in]}}\nsinks:\n  out: {{type: file, path: {}, format: envelope, inputs: [hostile]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("hostile")),
            q(&out),
            q(&dead)
        ),
    );
    let (run, peak_kb, _) = run_measured(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_ok(&run);
    // Before: 20,000 × 1 MiB spans made the file sink allocate 8 GiB and abort.
    assert!(peak_kb < 512 * 1024, "peak RSS {peak_kb} kB");

    let got = json_lines(&out);
    let ns: BTreeSet<i64> = got
        .iter()
        .filter_map(|v| v["value"]["n"].as_i64())
        .collect();
    let expected: BTreeSet<i64> = (0..20)
        .filter(|i| ![2, 3, 5, 6, 8, 11, 14, 15, 16, 17, 18, 19].contains(i))
        .collect();
    assert_eq!(ns, expected, "every other event goes through");

    let forged = got
        .iter()
        .find(|v| v["value"]["n"] == 13)
        .expect("forge event out");
    let headers = forged["headers"].as_object().expect("headers");
    let names: BTreeSet<&str> = headers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["sluice.topic", "colour"]),
        "host-owned headers are stripped, routing and ordinary ones kept"
    );

    let dead_text = std::fs::read_to_string(&dead).expect("dead letters");
    for line in dead_text.lines() {
        assert_eq!(
            line.matches("\"sluice.error.kind\"").count(),
            1,
            "one value per dead-letter header: {line}"
        );
    }
    let dead = json_lines(&dead);
    assert_eq!(dead.len(), 12, "{dead:?}");
    for (n, kind, says) in [
        (2, "limit", "output ceiling of 128 MiB per call"),
        (5, "limit", "rejection ceiling"),
        // Alone in its call, a second rejection of one event is one more
        // than the call had events.
        (8, "limit", "2 rejections for 1 input events"),
        (11, "invalid-output", "parent 1000000"),
        // Contract 0.2.0's byte tables, malformed.
        (3, "invalid-output", "not a whole number of 48-byte records"),
        (6, "limit", "output ceiling of 262144 events per call"),
        (14, "invalid-output", "unknown flags 0x22"),
        // Parent references (flags 2-4), abused.
        (16, "limit", "output ceiling of 128 MiB per call"),
        // The same, each output the parent whole: copied in one piece.
        (15, "limit", "output ceiling of 128 MiB per call"),
        (
            17,
            "invalid-output",
            "takes its key from its parent and gives one too",
        ),
        (19, "invalid-output", "takes parts of parent 1000000"),
    ] {
        let d = dead_letter_of(&dead, n);
        assert_eq!(header(d, "sluice.error.kind"), kind, "{d}");
        let msg = header(d, "sluice.error.message");
        assert!(msg.contains(says), "event {n}: {msg}");
        assert!(msg.contains("stage `hostile`"), "names the stage: {msg}");
        assert_eq!(header(d, "sluice.error.stage"), "hostile");
    }
    // It declares parent references, so the host marks its inputs open to
    // them (and resolves the ones above).
    let d = dead_letter_of(&dead, 18);
    assert_eq!(header(d, "sluice.error.kind"), "rejected", "{d}");
    let msg = header(d, "sluice.error.message");
    assert!(msg.contains("open to parent references: true"), "{msg}");
}

#[test]
fn eight_spinning_events_in_a_batch_of_1024_cost_nine_call_budgets_not_2n_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let spinners = [3, 100, 101, 377, 512, 640, 900, 1023];
    let events: Vec<String> = (0..1024)
        .map(|i| {
            if spinners.contains(&i) {
                format!(r#"{{"n":{i},"do":"loop"}}"#)
            } else {
                format!(r#"{{"n":{i}}}"#)
            }
        })
        .collect();
    write_events(&input, &events);
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 1024\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  spin:\n    plugin: {}\n    inputs: [in]\n    limits: {{cpu_ms_per_call: 200}}\nsinks:\n  out: {{type: file, path: {}, inputs: [spin]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("misbehave")),
            q(&out),
            q(&dead)
        ),
    );
    let (run, peak_kb, took) =
        run_measured(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_ok(&run);
    assert!(peak_kb < 512 * 1024, "peak RSS {peak_kb} kB");
    // One whole-batch call and one per spinner, 200 ms each: about 1.8 s.
    // Splitting in halves took 2N-1 calls per spinner path (31 s for 8).
    assert!(took < Duration::from_secs(12), "took {took:?}");
    let got: BTreeSet<i64> = json_lines(&out)
        .iter()
        .filter_map(|v| v["n"].as_i64())
        .collect();
    assert_eq!(got.len(), 1016);
    assert!(spinners.iter().all(|s| !got.contains(s)));
    let dead = json_lines(&dead);
    assert_eq!(dead.len(), 8);
    for s in spinners {
        let d = dead_letter_of(&dead, s);
        assert_eq!(header(d, "sluice.error.kind"), "limit");
        assert!(header(d, "sluice.error.message").contains("CPU budget of 200 ms per call"));
    }
}

#[test]
fn a_batch_of_spinners_is_bounded_by_the_per_batch_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let events: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"n":{i},"do":"loop"}}"#))
        .collect();
    write_events(&input, &events);
    let dead = dir.path().join("dead.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 40\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  spin:\n    plugin: {}\n    inputs: [in]\n    limits: {{cpu_ms_per_call: 100, cpu_ms_per_batch: 600}}\nsinks:\n  out: {{type: file, path: {}, inputs: [spin]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("misbehave")),
            q(&dir.path().join("out.jsonl")),
            q(&dead)
        ),
    );
    let (run, _, took) = run_measured(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_ok(&run);
    // 40 spinners at 100 ms would take 4.1 s one by one; the batch may
    // spend 100 ms + 600 ms.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let dead = json_lines(&dead);
    assert_eq!(dead.len(), 40, "every event is accounted for");
    let per_batch = dead
        .iter()
        .filter(|d| header(d, "sluice.error.message").contains("600 ms per batch"))
        .count();
    assert!(per_batch >= 30, "most were never retried: {per_batch}");
    assert!(dead
        .iter()
        .all(|d| header(d, "sluice.error.kind") == "limit"));
}

#[test]
fn state_and_timer_floods_fail_their_calls_not_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let events: Vec<String> = (0..24)
        .map(|i| match i {
            5 => r#"{"n":5,"do":"hog"}"#.to_string(),
            12 => r#"{"n":12,"do":"timers"}"#.to_string(),
            _ => format!(r#"{{"n":{i}}}"#),
        })
        .collect();
    write_events(&input, &events);
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 8\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  greedy:\n    plugin: {}\n    inputs: [in]\n    limits: {{state_mb: 16, timers: 1000}}\nsinks:\n  out: {{type: file, path: {}, inputs: [greedy]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("hostile-state")),
            q(&out),
            q(&dead)
        ),
    );
    let (run, peak_kb, _) = run_measured(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_ok(&run);
    // Before: 1000 × 1 MiB per event, copied per checkpoint, aborted the host.
    assert!(peak_kb < 400 * 1024, "peak RSS {peak_kb} kB");
    let got: BTreeSet<i64> = json_lines(&out)
        .iter()
        .filter_map(|v| v["n"].as_i64())
        .collect();
    let expected: BTreeSet<i64> = (0..24).filter(|i| *i != 5 && *i != 12).collect();
    assert_eq!(got, expected);
    let dead = json_lines(&dead);
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (n, says) in [
        (5, "state ceiling of 16 MiB"),
        (12, "timer ceiling of 1000"),
    ] {
        let d = dead_letter_of(&dead, n);
        assert_eq!(header(d, "sluice.error.kind"), "limit");
        let msg = header(d, "sluice.error.message");
        assert!(
            msg.contains(says) && msg.contains("stage `greedy`"),
            "{msg}"
        );
    }
    // State files hold the neighbours' counts only.
    let state_bytes: u64 = std::fs::read_dir(dir.path().join(".sluice/p/stages/greedy"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    assert!(state_bytes < 1 << 20, "state on disk: {state_bytes} bytes");
}

#[test]
fn a_timer_that_rearms_at_the_watermark_fires_once_per_advance_and_the_run_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let mut events = vec![r#"{"n":0,"do":"rearm"}"#.to_string()];
    events.extend((1..40).map(|i| format!(r#"{{"n":{i}}}"#)));
    write_events(&input, &events);
    let out = dir.path().join("out.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 4\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  rearm: {{plugin: {}, inputs: [in]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [rearm]}}\n",
            q(&input),
            q(&guest("hostile-state")),
            q(&out),
        ),
    );
    // Before: on_timer ran 184.8 million times in 10 minutes and SIGTERM
    // did not stop it.
    let (run, _, took) = run_measured(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_ok(&run);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let got = json_lines(&out);
    let fired = got.iter().filter(|v| v.get("fired").is_some()).count();
    let forwarded = got.iter().filter(|v| v.get("n").is_some()).count();
    assert_eq!(forwarded, 39);
    // 10 batches: at most two firings per watermark advance (once at the
    // time it was armed for, once re-armed at the new watermark, then held
    // for the next advance), so at most 2 × (10 + the end).
    assert!((1..=22).contains(&fired), "fired {fired} times");
}

#[test]
fn sigterm_stops_a_timer_storm_and_a_spinning_timer_is_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    write_events(
        &input,
        &[
            r#"{"n":0,"do":"rearm"}"#.to_string(),
            r#"{"n":1,"do":"spin-timer"}"#.to_string(),
        ],
    );
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: storm\nsources:\n  arm: {{type: file, path: {}}}\n  gen: {{type: datagen, kind: orders, rate: 2000}}\nstages:\n  storm:\n    plugin: {}\n    inputs: [arm, gen]\n    limits: {{cpu_ms_per_call: 200}}\n    event_time: {{lateness_ms: 3000000000000}}\nsinks:\n  out: {{type: file, path: {}, inputs: [storm]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("hostile-state")),
            q(&out),
            q(&dead)
        ),
    );
    let mut child = KillOnDrop(
        sluice()
            .arg("run")
            .arg(&pipeline)
            .arg("--no-progress")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let child = &mut child.0;
    let stderr = Stderr::drain(child);
    // The re-armed timer fires at every watermark advance while the
    // datagen source keeps the watermark moving.
    let started = Instant::now();
    loop {
        let fired = std::fs::read_to_string(&out)
            .map(|t| t.lines().filter(|l| l.contains("\"fired\"")).count())
            .unwrap_or(0);
        if fired >= 3 {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "stopped on its own"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the timer never fired 3 times"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        // Before: on_timer ran 184.8 million times and SIGTERM was ignored.
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "SIGTERM did not stop the run"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr.finish();
    assert!(
        status.success(),
        "graceful stop exits 0: {status:?}\n{stderr}"
    );
    let dead = json_lines(&dead);
    let spun = dead
        .iter()
        .find(|d| d["key"] == "spin")
        .unwrap_or_else(|| panic!("the spinning timer is dead-lettered: {dead:?}"));
    assert_eq!(header(spun, "sluice.error.kind"), "limit");
    assert!(header(spun, "sluice.error.message").contains("CPU budget of 200 ms per call"));
}

/// A plugin whose `describe` spins (it runs at every load, before any
/// stage, parameter or event) is stopped by the CPU budget loading gets:
/// `validate` and `run` exit 1 within seconds, naming the stage's plugin
/// field, the file, `describe()` and the budget, and nothing runs.
#[test]
fn a_describe_that_spins_is_stopped_at_load_naming_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let wasm = guest("spin-describe");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 5}}\nstages:\n  bad:\n    plugin: {}\n    inputs: [gen]\n    limits: {{cpu_ms_per_call: 200}}\nsinks:\n  out: {{type: file, path: {}, inputs: [bad]}}\n",
            q(&wasm),
            q(&out)
        ),
    );
    for (cmd, stderr, _) in validate_and_run_refuse(&pipeline, &out) {
        assert!(
            stderr.contains("p.yaml:5:")
                && stderr.contains("stages.bad.plugin")
                && stderr.contains(&wasm.display().to_string())
                && stderr.contains("describe()")
                && stderr.contains("exceeded the CPU budget of 2000 ms per call"),
            "{cmd}:\n{stderr}"
        );
    }
}

/// Runs `validate`, then `run`, on `pipeline`: each must fail normally (exit
/// 1, not a signal) within 30 s without writing `out`. Returns each
/// command's name, stderr and peak RSS in kB.
fn validate_and_run_refuse(pipeline: &Path, out: &Path) -> Vec<(&'static str, String, u64)> {
    let mut seen = Vec::new();
    for cmd in ["validate", "run"] {
        let mut c = sluice();
        c.arg(cmd).arg(pipeline);
        if cmd == "run" {
            c.arg("--no-progress");
        }
        let (run, peak_kb, took) = run_measured(&mut c);
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(
            run.status.code(),
            Some(1),
            "{cmd}: an error exit, not a signal:\n{stderr}"
        );
        assert!(took < Duration::from_secs(30), "{cmd} took {took:?}");
        assert!(!out.exists(), "{cmd}: nothing ran");
        seen.push((cmd, stderr, peak_kb));
    }
    seen
}

/// `create` (where a plugin validates its parameters) runs under the
/// stage's own limits, in `validate` and `run` alike: a plugin that spins
/// or hoards memory there is stopped, reported against the stage's
/// `params` with the limit named, and the host exits normally and small.

#[test]
fn a_create_that_spins_or_hoards_is_stopped_by_the_stages_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, limits, named) in [
        (
            "loop",
            "cpu_ms_per_call: 200",
            "CPU budget of 200 ms per call",
        ),
        ("alloc", "memory_mb: 32", "memory limit of 32 MiB"),
    ] {
        let out = dir.path().join(format!("{what}.jsonl"));
        let pipeline = write_pipeline(
            dir.path(),
            &format!(
                "sources:\n  gen: {{type: datagen, kind: orders, count: 5}}\nstages:\n  bad:\n    plugin: {}\n    inputs: [gen]\n    params: {{on_create: {what}}}\n    limits: {{{limits}}}\nsinks:\n  out: {{type: file, path: {}, inputs: [bad]}}\n",
                q(&guest("misbehave")),
                q(&out)
            ),
        );
        for (cmd, stderr, peak_kb) in validate_and_run_refuse(&pipeline, &out) {
            assert!(
                stderr.contains("p.yaml:7:")
                    && stderr.contains("stages.bad.params")
                    && stderr.contains("stage `bad`")
                    && stderr.contains(named),
                "{cmd} {what}:\n{stderr}"
            );
            assert!(peak_kb < 512 * 1024, "{cmd} {what}: peak RSS {peak_kb} kB");
        }
    }
}
