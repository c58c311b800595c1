//! What every language's connector scaffolds and misbehaving test guests
//! are checked against (`c_connectors.rs`, `go_connectors.rs`): the
//! scaffolded source reads a paginated API the test starts and resumes from
//! its checkpointed cursor, the scaffolded sink retries a 500 and
//! dead-letters a 4xx, an ungranted host is refused by name; and the
//! pipelines the hostile guests run in. `lang` prefixes the pipeline names.

use std::path::{Path, PathBuf};

use crate::support::*;
use crate::wasm_connectors::{paginated_api, Reply, Server};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `sluice plugin build DIR`; returns the component path (the last stdout line).
pub fn build(dir: &Path) -> PathBuf {
    let out = run_ok(sluice().args(["plugin", "build"]).arg(dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().expect("the component's path").trim());
    assert!(path.is_file(), "not a file: {}", path.display());
    path
}

pub fn inspect(wasm: &Path) -> String {
    let out = run_ok(sluice().args(["plugin", "inspect"]).arg(wasm));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A misbehaving source guest `wasm` with `params` into `out.jsonl`.
pub fn source_pipeline(lang: &str, wasm: &Path, dir: &Path, params: &str, extra: &str) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: {lang}mis\ncheckpoint_interval_ms: 50\nbatch_size: 10\nsources:\n  gen:\n    type: wasm\n    plugin: {}\n    params: {{{params}}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 20\n{extra}sinks:\n  out: {{type: file, path: out.jsonl, inputs: [gen]}}\n",
            q(wasm),
        ),
    )
}

/// The `n`s a source pipeline wrote.
pub fn ns(dir: &Path) -> Vec<i64> {
    json_lines(&dir.join("out.jsonl"))
        .iter()
        .map(|v| v["n"].as_i64().expect("n"))
        .collect()
}

/// 20 events from a file into a misbehaving sink guest `wasm` with `params`.
pub fn sink_pipeline(lang: &str, wasm: &Path, dir: &Path, params: &str) -> PathBuf {
    let input: String = (0..20).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(dir.join("in.jsonl"), input).expect("write input");
    write_pipeline(
        dir,
        &format!(
            "name: {lang}sinkmis\nbatch_size: 5\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{{params}}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 20\n",
            q(wasm),
        ),
    )
}

pub fn source_reads_a_paginated_api_and_resumes_from_its_cursor(
    lang: &str,
    dir: &Path,
    wasm: &Path,
) {
    let api = paginated_api(45, std::time::Duration::ZERO);
    let pipeline = write_pipeline(
        dir,
        &format!(
            "name: {lang}source\nbatch_size: 20\nsources:\n  api:\n    type: wasm\n    plugin: {}\n    params: {{url: {:?}, stop_when_caught_up: true}}\n    grants: {{http: [{:?}]}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [api]}}\n",
            q(wasm),
            api.url("/items"),
            api.host_port()
        ),
    );
    let ids = || -> Vec<i64> {
        json_lines(&dir.join("out.jsonl"))
            .iter()
            .map(|v| v["id"].as_i64().expect("id"))
            .collect()
    };
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_eq!(
        ids(),
        (0..45).collect::<Vec<_>>(),
        "every item, once, in order"
    );
    // Items pass byte for byte (the scaffold emits each item's exact text).
    let first = std::fs::read_to_string(dir.join("out.jsonl")).expect("out.jsonl");
    assert_eq!(
        first.lines().next(),
        Some(r#"{"id":0,"name":"item 0"}"#),
        "{first}"
    );
    let before = api.requests().len();
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let rerun: Vec<String> = api.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        rerun,
        ["/items?cursor=45&limit=20"],
        "the rerun starts at the checkpointed cursor"
    );
    assert_eq!(ids(), (0..45).collect::<Vec<_>>(), "nothing read twice");

    // A host outside the grant stops the pipeline, naming host and grant.
    let denied = write_pipeline(
        dir,
        &format!(
            "name: {lang}denied\nsources:\n  api:\n    type: wasm\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [\"127.0.0.1:1\"]}}\nsinks:\n  out: {{type: stdout, inputs: [api]}}\n",
            q(wasm),
            api.url("/items"),
        ),
    );
    let before = api.requests().len();
    let stderr = run_failing(sluice().arg("run").arg(&denied).arg("--no-progress"));
    assert!(
        stderr.contains(&format!(
            "denied: {} is not in this connector's grant (grants.http: [127.0.0.1:1])",
            api.host_port()
        )),
        "{stderr}"
    );
    assert_eq!(
        api.requests().len(),
        before,
        "nothing reached the ungranted host"
    );
}

pub fn sink_posts_retries_5xx_and_dead_letters_4xx(lang: &str, dir: &Path, wasm: &Path) {
    // The first request fails with a 500 (retried); a batch holding a `bad`
    // event is refused with a 422 (its events dead-lettered).
    let server = Server::start(|req, n| {
        let body = String::from_utf8_lossy(&req.body);
        if n == 0 {
            Reply::Status(500, b"busy".to_vec())
        } else if body.contains("\"bad\":true") {
            Reply::Status(422, b"no bad ones".to_vec())
        } else {
            Reply::Status(200, b"{}".to_vec())
        }
    });
    let input: String = (0..30)
        .map(|i| {
            if (10..15).contains(&i) {
                format!("{{\"bad\":true,\"i\":{i}}}\n")
            } else {
                format!("{{\"i\":{i}}}\n")
            }
        })
        .collect();
    std::fs::write(dir.join("in.jsonl"), input).expect("write input");
    let pipeline = write_pipeline(
        dir,
        &format!(
            "name: {lang}sink\nbatch_size: 5\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  hook:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [{:?}]}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 20\n",
            q(wasm),
            server.url("/in"),
            server.host_port()
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let requests = server.requests();
    assert_eq!(
        requests.first().map(|r| r.body.clone()),
        requests.get(1).map(|r| r.body.clone()),
        "the batch refused with a 500 is written again as it was"
    );
    let mut delivered: Vec<i64> = requests
        .iter()
        .skip(1)
        .filter(|r| !String::from_utf8_lossy(&r.body).contains("\"bad\":true"))
        .flat_map(|r| {
            let batch: Vec<serde_json::Value> =
                serde_json::from_slice(&r.body).expect("a JSON array");
            batch
                .into_iter()
                .map(|v| v["i"].as_i64().expect("i"))
                .collect::<Vec<_>>()
        })
        .collect();
    delivered.sort_unstable();
    let good: Vec<i64> = (0..30).filter(|i| !(10..15).contains(i)).collect();
    assert_eq!(delivered, good, "every good event delivered once");
    let dead = json_lines(&dir.join(format!(".sluice/{lang}sink/dead-letters.jsonl")));
    assert_eq!(dead.len(), 5, "{dead:?}");
    for d in &dead {
        assert_eq!(
            d["headers"]["sluice.error.message"], "HTTP 422: no bad ones",
            "{d}"
        );
        assert_eq!(d["value"]["bad"], true, "{d}");
    }
}
