//! The `clock` grant of custom connectors: the `conn-clock` test guest
//! stamps each event with `sluice:plugin/clock`'s wall and monotonic time.
//! Granted, the times are the host's; not granted, the run stops with an
//! error naming the grant, whether the clock is read in `poll` or `open`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::*;

fn clock_pipeline(dir: &std::path::Path, params: &str, grants: &str) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: clock\nsources:\n  gen:\n    type: wasm\n    plugin: {}\n    params: {{{params}}}\n{grants}sinks:\n  out: {{type: file, path: out.jsonl, inputs: [gen]}}\n",
            q(&guest("conn-clock")),
        ),
    )
}

fn host_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[test]
fn a_connector_granted_the_clock_reads_the_hosts_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = clock_pipeline(dir.path(), "count: 5", "    grants: {clock: true}\n");
    let before = host_ms();
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let after = host_ms();
    let events = json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(events.len(), 5, "{events:?}");
    let mut last_mono = 0;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["n"].as_u64(), Some(i as u64), "{e}");
        let now = e["now_ms"].as_i64().expect("now_ms");
        assert!(
            (before..=after).contains(&now),
            "event {i} read {now}, outside the run [{before}, {after}]"
        );
        let mono = e["mono_ns"].as_u64().expect("mono_ns");
        assert!(
            mono >= last_mono,
            "monotonic time went back: {mono} < {last_mono}"
        );
        last_mono = mono;
    }
}

#[test]
fn a_connector_reading_the_clock_without_the_grant_stops_naming_the_grant() {
    let dir = tempfile::tempdir().expect("tempdir");
    // In poll: stopped at once (no restarts: reopening cannot grant it).
    let pipeline = clock_pipeline(dir.path(), "count: 5", "");
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert!(
        stderr.contains("is not granted the clock")
            && stderr.contains("add `grants: {clock: true}`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("restarting the connector"),
        "a missing grant is not retried: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap_or_default(),
        "",
        "no event without the time"
    );
    // In open, and with an http grant that does not include the clock.
    let pipeline = clock_pipeline(
        dir.path(),
        "count: 5, at: open",
        "    grants: {http: [\"127.0.0.1:9\"]}\n",
    );
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert!(stderr.contains("add `grants: {clock: true}`"), "{stderr}");
}

#[test]
fn validate_refuses_a_clock_grant_that_is_not_a_boolean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = clock_pipeline(dir.path(), "count: 5", "    grants: {clock: \"yes\"}\n");
    let stderr = run_failing(sluice().arg("validate").arg(&pipeline));
    assert!(
        stderr.contains("sources.gen.grants.clock: found the text \"yes\", expected true or false"),
        "{stderr}"
    );
    let pipeline = clock_pipeline(dir.path(), "count: 5", "    grants: {clock: true}\n");
    run_ok(sluice().arg("validate").arg(&pipeline));
}

#[test]
fn plugin_inspect_says_the_clock_needs_its_grant() {
    let out = run_ok(
        sluice()
            .arg("plugin")
            .arg("inspect")
            .arg(guest("conn-clock")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "grants:    may ask for clock: reading the time needs `grants: {clock: true}`"
        ),
        "{text}"
    );
    assert!(
        text.contains("sluice:plugin/clock@0.2.0  (the time only when the pipeline grants `clock`"),
        "{text}"
    );
    assert!(!text.contains("asks for http"), "{text}");
}
