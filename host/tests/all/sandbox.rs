//! A plugin that loops forever, one that asks for 4 GiB and one that panics
//! are each stopped and reported, and the pipeline goes on: their neighbours
//! in the same batch and every later batch come through.

use std::collections::BTreeSet;

use crate::support::*;

#[test]
fn infinite_loop_memory_bomb_and_panic_are_each_stopped_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..40 {
        let line = match i {
            5 => r#"{"n":5,"do":"loop"}"#.to_string(),
            17 => r#"{"n":17,"do":"alloc"}"#.to_string(),
            29 => r#"{"n":29,"do":"panic"}"#.to_string(),
            _ => format!(r#"{{"n":{i}}}"#),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("{not json\n");
    std::fs::write(&input, text).expect("write input");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "batch_size: 8\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  bad:\n    plugin: {}\n    inputs: [in]\n    limits: {{memory_mb: 32, cpu_ms_per_call: 200}}\nsinks:\n  out: {{type: file, path: {}, inputs: [bad]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            q(&guest("misbehave")),
            q(&out),
            q(&dead)
        ),
    )
    .expect("write pipeline");
    let run = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&run.stderr);

    let got: BTreeSet<i64> = json_lines(&out)
        .iter()
        .filter_map(|v| v["n"].as_i64())
        .collect();
    let expected: BTreeSet<i64> = (0..40).filter(|i| ![5, 17, 29].contains(i)).collect();
    assert_eq!(got, expected, "every well-behaved event must come through");

    let dead_letters = json_lines(&dead);
    let reason_of = |n: i64| -> (String, String) {
        let d = dead_letters
            .iter()
            .find(|d| d["value"]["n"] == n)
            .unwrap_or_else(|| panic!("event {n} not dead-lettered: {dead_letters:?}"));
        (
            d["headers"]["sluice.error.kind"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            d["headers"]["sluice.error.message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let (kind, msg) = reason_of(5);
    assert_eq!(kind, "limit");
    assert!(msg.contains("CPU budget of 200 ms"), "{msg}");
    assert!(
        msg.contains("sluice-test-misbehave@0.1.0"),
        "names plugin and version: {msg}"
    );
    let (kind, msg) = reason_of(17);
    assert_eq!(kind, "limit");
    assert!(msg.contains("memory limit of 32 MiB"), "{msg}");
    let (kind, msg) = reason_of(29);
    assert_eq!(kind, "trap");
    assert!(
        msg.contains("boom on purpose"),
        "the panic message is reported: {msg}"
    );

    let malformed = dead_letters
        .iter()
        .find(|d| d["headers"]["sluice.error.kind"] == "malformed")
        .expect("malformed line dead-lettered");
    let m = malformed["headers"]["sluice.error.message"]
        .as_str()
        .unwrap_or_default();
    assert!(m.contains("in.jsonl line 41"), "names file and line: {m}");
    assert_eq!(
        dead_letters.len(),
        4,
        "exactly the four bad inputs: {dead_letters:?}"
    );
    assert!(stderr.contains("4 dead-lettered"), "{stderr}");
}

#[test]
fn on_error_fail_stops_the_pipeline_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\":1}\n{\"n\":2,\"do\":\"panic\"}\n").expect("write");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  in: {{type: file, path: {}}}\nstages:\n  bad: {{plugin: {}, inputs: [in], on_error: fail}}\nsinks:\n  out: {{type: file, path: {}, inputs: [bad]}}\n",
            q(&input),
            q(&guest("misbehave")),
            q(&dir.path().join("out.jsonl"))
        ),
    )
    .expect("write");
    let out = sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("boom on purpose"), "{stderr}");
    assert!(
        !dir.path().join(".sluice/p/checkpoint.json").exists(),
        "no checkpoint may cover the failed batch"
    );
}

#[test]
fn each_isolated_crash_is_one_log_line_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..100 {
        if i == 13 || i == 71 {
            text.push_str(&format!("{{\"n\":{i},\"do\":\"panic\"}}\n"));
        } else {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
    }
    std::fs::write(&input, text).expect("write input");
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  in: {{type: file, path: {}}}\nstages:\n  bad: {{plugin: {}, inputs: [in]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [bad]}}\n",
            q(&input),
            q(&guest("misbehave")),
            q(&out),
        ),
    )
    .expect("write pipeline");
    let run = run_ok(
        sluice()
            .arg("run")
            .arg(&pipeline)
            .arg("--no-progress")
            .env("NO_COLOR", "1"),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    // One batch of 100 holds both culprits: the failed batch call and the
    // per-event retries say nothing more than a line per culprit.
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("boom")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for (line, n) in lines.iter().zip([13, 71]) {
        assert!(line.contains("dead-lettered"), "{line}");
        assert!(
            line.contains(&format!("boom on purpose at event {n}")),
            "{line}"
        );
        assert!(line.contains("sha256 "), "names the build: {line}");
    }
    assert!(!stderr.contains("wasm trap: wasm trap"), "{stderr}");
    assert!(
        stderr.contains("stage  `bad` in 100, out 98, dead-lettered 2"),
        "{stderr}"
    );
    assert_eq!(json_lines(&out).len(), 98);
}
