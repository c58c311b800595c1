//! Custom connectors written in C (`sdk/c/sluice_connector.h`): the `--lang c`
//! scaffolds pass their own native tests (`make test`), build with
//! `sluice plugin build` (zig and wasm-tools from `scripts/toolchains/c.sh`; a
//! missing toolchain fails the test) and run in pipelines against HTTP servers
//! the tests start on 127.0.0.1; the C test guests in `tests/guests/c-conn-*`
//! misbehave on request (a trap, too many events, an oversized position, a
//! retry, an out-of-range rejection, the clock with and without its grant), and
//! the host contains each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::scaffold_checks::{self, build, inspect, ns, repo};
use crate::support::*;

fn misbehaving_source() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build(&repo().join("tests/guests/c-conn-misbehave")))
}

fn misbehaving_sink() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build(&repo().join("tests/guests/c-conn-sink-misbehave")))
}

#[test]
fn c_scaffolded_source_and_sink_pass_their_tests_and_run_against_local_servers() {
    let root = tempfile::tempdir().expect("tempdir");
    for kind in ["source", "sink"] {
        let name = format!("c-{kind}");
        run_ok(
            sluice()
                .current_dir(root.path())
                .args(["plugin", "new", "--kind", kind, "--lang", "c", &name]),
        );
        let dir = root.path().join(&name);
        // The scaffold's own native tests pass as generated.
        let out = run_ok(Command::new("make").arg("test").current_dir(&dir));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
        let wasm = build(&dir);
        assert_eq!(
            wasm.file_name().and_then(|n| n.to_str()),
            Some(format!("{name}.wasm").as_str())
        );
        let text = inspect(&wasm);
        assert!(
            text.contains(&format!("world:     sluice:plugin:{kind}"))
                && text.contains("contract:  0.2.0")
                && text.contains("grants:    asks for http"),
            "{text}"
        );
        // Only what it uses: no clock import, no WASI.
        assert!(!text.contains("clock") && !text.contains("wasi:"), "{text}");
        if kind == "source" {
            scaffold_checks::source_reads_a_paginated_api_and_resumes_from_its_cursor(
                "c", &dir, &wasm,
            );
        } else {
            scaffold_checks::sink_posts_retries_5xx_and_dead_letters_4xx("c", &dir, &wasm);
        }
    }
}

#[test]
fn a_c_plugin_with_an_unknown_world_fails_the_build_naming_the_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("Makefile"),
        "SLUICE_WORLD := writer  # not a world\n",
    )
    .expect("write Makefile");
    std::fs::write(dir.path().join("x.c"), "int x;\n").expect("write x.c");
    let stderr = run_failing(sluice().args(["plugin", "build"]).arg(dir.path()));
    assert!(
        stderr.contains(&format!(
            "{}: `SLUICE_WORLD`: expected \"transform\", \"source\" or \"sink\", found \"writer\"",
            dir.path().join("Makefile").display()
        )),
        "{stderr}"
    );
}

fn source_pipeline(dir: &Path, params: &str, extra: &str) -> PathBuf {
    scaffold_checks::source_pipeline("c", misbehaving_source(), dir, params, extra)
}

#[test]
fn a_c_source_that_traps_or_retries_is_reported_and_reopened_at_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = source_pipeline(dir.path(), "count: 60, mode: trap_once_at, at: 25", "");
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("aborting on purpose at n = 25")
            && stderr.contains("restarting the connector from its last position"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked at"),
        "the host did not panic: {stderr}"
    );
    assert_eq!(
        ns(dir.path()),
        (0..60).collect::<Vec<_>>(),
        "each event once, in order"
    );

    // A retry is not a crash: the same instance is polled again.
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = source_pipeline(dir.path(), "count: 30, mode: retry_at, at: 12", "");
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not yet at n = 12"), "{stderr}");
    assert!(!stderr.contains("restarting the connector"), "{stderr}");
    assert_eq!(ns(dir.path()), (0..30).collect::<Vec<_>>());
}

#[test]
fn a_c_source_breaking_the_contract_fails_the_run_with_the_reason_not_the_host() {
    for (params, said) in [
        (
            "mode: too_many",
            "poll returned 11 events but was asked for at most 10",
        ),
        (
            "count: 5, mode: big_position",
            "position ceiling of 1048576 bytes",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = source_pipeline(dir.path(), params, "");
        let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
        assert!(
            stderr.contains(said) && stderr.contains("c-conn-misbehave"),
            "{params}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked at"),
            "the host did not panic: {stderr}"
        );
        assert_eq!(
            ns(dir.path()),
            Vec::<i64>::new(),
            "{params}: nothing delivered"
        );
    }
}

#[test]
fn a_c_source_reads_the_clock_only_when_granted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = source_pipeline(
        dir.path(),
        "count: 5, mode: clock",
        "    grants: {clock: true}\n",
    );
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64
    };
    let before = now();
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let after = now();
    let events = json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(events.len(), 5, "{events:?}");
    let mut last = 0;
    for e in &events {
        let t = e["now_ms"].as_i64().expect("now_ms");
        assert!(
            (before..=after).contains(&t),
            "{t} outside [{before}, {after}]"
        );
        let m = e["mono_ns"].as_u64().expect("mono_ns");
        assert!(m >= last, "monotonic time went back");
        last = m;
    }
    let text = inspect(misbehaving_source());
    assert!(
        text.contains("world:     sluice:plugin:source")
            && text.contains("may ask for clock")
            && !text.contains("asks for http"),
        "{text}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = source_pipeline(dir.path(), "count: 5, mode: clock", "");
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert!(stderr.contains("add `grants: {clock: true}`"), "{stderr}");
    assert!(!stderr.contains("restarting the connector"), "{stderr}");
}

fn sink_pipeline(dir: &Path, params: &str) -> PathBuf {
    scaffold_checks::sink_pipeline("c", misbehaving_sink(), dir, params)
}

#[test]
fn a_c_sink_that_refuses_retries_traps_or_rejects_out_of_range_is_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        sluice()
            .arg("run")
            .arg(sink_pipeline(dir.path(), "mode: reject_odd"))
            .arg("--no-progress"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in 20, wrote 10, dead-lettered 10"),
        "{stderr}"
    );
    let dead = json_lines(&dir.path().join(".sluice/csinkmis/dead-letters.jsonl"));
    let reasons: Vec<String> = dead
        .iter()
        .map(|d| {
            d["headers"]["sluice.error.message"]
                .as_str()
                .expect("reason")
                .to_string()
        })
        .collect();
    let odd: Vec<String> = (0..20)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("odd n {i}"))
        .collect();
    assert_eq!(reasons, odd);

    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        sluice()
            .arg("run")
            .arg(sink_pipeline(dir.path(), "mode: retry_first"))
            .arg("--no-progress"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in 20, wrote 20"), "{stderr}");
    assert!(
        !stderr.contains("restarting") && !stderr.contains("crashed"),
        "{stderr}"
    );

    // abort() in every write: each trap is reported and the connector reopened, until
    // the host gives up after 5 in a row and fails the run with the reason.
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = run_failing(
        sluice()
            .arg("run")
            .arg(sink_pipeline(dir.path(), "mode: trap"))
            .arg("--no-progress"),
    );
    assert!(
        stderr.contains("c-conn-sink-misbehave")
            && stderr.contains("crashed: wasm trap")
            && stderr.contains("(restart 5 of at most 5 in a row)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked at"),
        "the host did not panic: {stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = run_failing(
        sluice()
            .arg("run")
            .arg(sink_pipeline(dir.path(), "mode: bad_reject"))
            .arg("--no-progress"),
    );
    assert!(
        stderr.contains("returned an invalid output") && stderr.contains("99"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked at"),
        "the host did not panic: {stderr}"
    );
}
