//! Custom connectors written in Python: the `webhook-sink-py` example, built
//! with `sluice plugin build` (componentize-py, installed by
//! `scripts/toolchains/python.sh`; a missing toolchain fails the test), runs
//! as a `type: wasm` sink against an HTTP server the test starts on
//! 127.0.0.1, and `plugin new --kind source|sink --lang python` scaffolds
//! connectors that build.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::support::*;
use crate::wasm_connectors::{paginated_api, Reply, Server};

/// `sluice plugin build DIR`; returns the component path (the last stdout line).
fn build(dir: &Path) -> PathBuf {
    let out = run_ok(sluice().args(["plugin", "build"]).arg(dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().expect("the component's path").trim());
    assert!(path.is_file(), "not a file: {}", path.display());
    path
}

/// The example, built once for every test here.
fn webhook_sink_py() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors/webhook-sink-py"))
    })
}

/// `n` events `{"n":i}`, with `{"n":i,"bad":true}` where `bad(i)`.
fn input(dir: &Path, n: i64, bad: impl Fn(i64) -> bool) {
    let mut text = String::new();
    for i in 0..n {
        if bad(i) {
            text.push_str(&format!("{{\"n\":{i},\"bad\":true}}\n"));
        } else {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
    }
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
}

/// A file source into the Python webhook sink posting to `url`, granted `grant`.
fn pipeline(dir: &Path, url: &str, grant: &str) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: pyhook\nbatch_size: 16\ncheckpoint_interval_ms: 50\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  hook:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {url:?}}}\n    grants: {{http: [{grant:?}]}}\n    http_limits: {{first_byte_ms: 300}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 50\n",
            q(webhook_sink_py()),
        ),
    )
}

/// The `n` of every event in a JSON array request body, in order.
fn ns(body: &[u8]) -> Vec<i64> {
    let body: serde_json::Value = serde_json::from_slice(body).expect("a JSON array");
    body.as_array()
        .expect("an array")
        .iter()
        .map(|v| v["n"].as_i64().expect("n"))
        .collect()
}

#[test]
fn python_webhook_sink_delivers_every_event_once_through_a_500_and_a_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    input(dir.path(), 100, |_| false);
    let delivered: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = delivered.clone();
    let hook = Server::start(move |req, n| match n {
        0 => Reply::Status(500, b"overloaded, try later".to_vec()),
        3 => Reply::Hang,
        _ => {
            got.lock().expect("lock").extend(ns(&req.body));
            Reply::Status(200, b"{}".to_vec())
        }
    });
    let out = run_ok(
        sluice()
            .arg("run")
            .arg(pipeline(dir.path(), &hook.url("/in"), &hook.host_port()))
            .arg("--no-progress"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 500: overloaded, try later"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did not answer within http_limits.first_byte_ms of 300 ms"),
        "{stderr}"
    );
    assert_eq!(
        *delivered.lock().expect("lock"),
        (0..100).collect::<Vec<_>>(),
        "every event delivered once, in order: nothing lost, nothing twice"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".sluice/pyhook/dead-letters.jsonl"))
            .unwrap_or_default(),
        "",
        "no dead letters"
    );
}

#[test]
fn python_webhook_sink_dead_letters_each_event_a_400_refuses_with_the_response_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = |i: i64| i % 11 == 4;
    input(dir.path(), 50, bad);
    let delivered: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = delivered.clone();
    let hook = Server::start(move |req, _| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("a JSON array");
        if body
            .as_array()
            .expect("an array")
            .iter()
            .any(|v| v["bad"] == true)
        {
            let text = format!("refused: {}", String::from_utf8_lossy(&req.body));
            return Reply::Status(400, text.into_bytes());
        }
        got.lock().expect("lock").extend(ns(&req.body));
        Reply::Status(200, b"{}".to_vec())
    });
    run_ok(
        sluice()
            .arg("run")
            .arg(pipeline(dir.path(), &hook.url("/in"), &hook.host_port()))
            .arg("--no-progress"),
    );
    let good: Vec<i64> = (0..50).filter(|i| !bad(*i)).collect();
    assert_eq!(
        *delivered.lock().expect("lock"),
        good,
        "every good event delivered once, in order"
    );
    let dead = json_lines(&dir.path().join(".sluice/pyhook/dead-letters.jsonl"));
    let dead_ns: Vec<i64> = dead
        .iter()
        .map(|d| d["value"]["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(
        dead_ns,
        (0..50).filter(|i| bad(*i)).collect::<Vec<_>>(),
        "one dead letter per refused event"
    );
    for (d, n) in dead.iter().zip(&dead_ns) {
        assert_eq!(
            d["headers"]["sluice.error.message"],
            format!("HTTP 400: refused: [{{\"n\":{n},\"bad\":true}}]"),
            "{d}"
        );
        assert_eq!(d["headers"]["sluice.error.kind"], "sink", "{d}");
    }
}

#[test]
fn python_webhook_sink_refuses_a_host_outside_the_grant_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    input(dir.path(), 5, |_| false);
    let hook = Server::start(|_, _| Reply::Status(200, b"{}".to_vec()));
    let stderr = run_failing(
        sluice()
            .arg("run")
            .arg(pipeline(dir.path(), &hook.url("/in"), "127.0.0.1:1"))
            .arg("--no-progress"),
    );
    assert!(
        stderr.contains(&format!(
            "denied: {} is not in this connector's grant (grants.http: [127.0.0.1:1])",
            hook.host_port()
        )),
        "{stderr}"
    );
    assert!(
        hook.requests().is_empty(),
        "nothing may reach an ungranted host"
    );
}

#[test]
fn python_scaffolded_source_and_sink_build_into_connectors_that_ask_for_http() {
    let root = tempfile::tempdir().expect("tempdir");
    for kind in ["source", "sink"] {
        let name = format!("py-{kind}");
        run_ok(
            sluice()
                .current_dir(root.path())
                .args(["plugin", "new", "--kind", kind, "--lang", "python", &name]),
        );
        let project = root.path().join(&name);
        for file in ["app.py", "test_app.py", "pyproject.toml", "README.md"] {
            assert!(
                project.join(file).is_file(),
                "{kind}: the scaffold has {file}"
            );
        }
        // The scaffold's own native tests pass as generated.
        let unit = run_ok(
            std::process::Command::new("python3")
                .args(["-m", "unittest", "-v"])
                .current_dir(&project)
                .env(
                    "PYTHONPATH",
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python"),
                ),
        );
        let report = String::from_utf8_lossy(&unit.stderr);
        assert!(report.trim_end().ends_with("OK"), "{kind}: {report}");
        let wasm = build(&project);
        let out = run_ok(sluice().arg("plugin").arg("inspect").arg(&wasm));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("world:     sluice:plugin:{kind}")),
            "{text}"
        );
        assert!(text.contains("contract:  0.2.0"), "{text}");
        assert!(text.contains("grants:    asks for http"), "{text}");
        if kind == "source" {
            scaffolded_source_reads_a_paginated_api(root.path(), &wasm);
        }
    }
}

/// The scaffolded source pages through the API the tests share with http-poll
/// until it is caught up, then ends (`stop_when_caught_up`).
fn scaffolded_source_reads_a_paginated_api(dir: &Path, wasm: &Path) {
    let api = paginated_api(45, std::time::Duration::ZERO);
    let pipeline = write_pipeline(
        dir,
        &format!(
            "name: pysource
batch_size: 20
sources:
  api:
    type: wasm
    plugin: {}
    params: {{url: {:?}, stop_when_caught_up: true}}
    grants: {{http: [{:?}]}}
sinks:
  out: {{type: file, path: out.jsonl, inputs: [api]}}
",
            q(wasm),
            api.url("/items"),
            api.host_port()
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let ids: Vec<i64> = json_lines(&dir.join("out.jsonl"))
        .iter()
        .map(|v| v["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        ids,
        (0..45).collect::<Vec<_>>(),
        "every item, once, in order"
    );
}

/// A Python sink whose `write` raises (a bug, not `Retry`): the SDK logs the
/// exception with its line, the instance crashes, and the host reopens the
/// sink at its last flush and writes the batches since again: nothing is lost.
#[test]
fn a_python_sink_that_raises_is_logged_and_reopened_at_its_last_flush() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("crashy");
    std::fs::create_dir(&project).expect("mkdir");
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"crashy\"\nversion = \"0.1.0\"\n\n[tool.sluice]\nworld = \"sink\"\n",
    )
    .expect("write pyproject");
    std::fs::write(
        project.join("app.py"),
        r#"import sluice
from sluice import http


class Crashy(sluice.Sink):
    def __init__(self, params, position):
        self.url = params.required("url")

    def write(self, events, rejected):
        resp = http.post(self.url, b"[" + b",".join(e.value for e in events) + b"]")
        if resp.status == 418:
            raise RuntimeError(resp.text())
        if resp.status != 200:
            raise sluice.Retry(f"HTTP {resp.status}")

    def flush(self):
        return b""
"#,
    )
    .expect("write app.py");
    let wasm = build(&project);

    let dir = tempfile::tempdir().expect("tempdir");
    input(dir.path(), 200, |_| false);
    let received: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = received.clone();
    let crashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = Server::start(move |req, _| {
        let batch = ns(&req.body);
        // The batch holding 120 crashes the sink, once.
        if batch.contains(&120) && !crashed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Reply::Status(418, b"the server told this sink to crash".to_vec());
        }
        got.lock().expect("lock").extend(batch);
        Reply::Status(200, b"{}".to_vec())
    });
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: pycrash\nbatch_size: 25\ncheckpoint_interval_ms: 50\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [{:?}]}}\n    initial_backoff_ms: 10\n",
            q(&wasm),
            server.url("/in"),
            server.host_port()
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "plugin raised RuntimeError: the server told this sink to crash (app.py line 12, in write)"
        ) && stderr.contains("reopening the connector at its last flush"),
        "{stderr}"
    );
    let mut got = received.lock().expect("lock").clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "every event delivered at least once"
    );
}
