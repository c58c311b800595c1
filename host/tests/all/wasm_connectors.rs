//! Custom connectors (`type: wasm`): the http-poll and webhook-sink examples
//! against HTTP servers these tests start on 127.0.0.1 (port 0), and test
//! guests that hang, trap or report malformed inputs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// One request the test server received.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// Path and query, e.g. `/items?cursor=4&limit=20`.
    pub(crate) target: String,
    pub(crate) body: Vec<u8>,
}

/// What the test server answers.
pub(crate) enum Reply {
    /// Status and body.
    Status(u16, Vec<u8>),
    /// Never answers (the connection stays open for a minute).
    Hang,
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0, one thread per connection, that
/// records every request and answers with `handler` (given the request and
/// how many came before it).
pub(crate) struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub(crate) fn start(handler: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<Req>>> = Arc::default();
        let seen = requests.clone();
        let handler = Arc::new(handler);
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                let handler = handler.clone();
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &seen, &*handler, &count);
                });
            }
        });
        Self { addr, requests }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn requests(&self) -> Vec<Req> {
        self.requests.lock().expect("lock").clone()
    }
}

fn serve_one(
    stream: TcpStream,
    seen: &Mutex<Vec<Req>>,
    handler: &(dyn Fn(&Req, usize) -> Reply + Send + Sync),
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let req = Req { target, body };
        let n = count.fetch_add(1, Ordering::SeqCst);
        seen.lock().expect("lock").push(req.clone());
        match handler(&req, n) {
            Reply::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return Ok(());
            }
            Reply::Status(code, body) => {
                write!(
                    writer,
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )?;
                writer.write_all(&body)?;
                writer.flush()?;
            }
        }
    }
}

/// The value of `name` in a request target's query.
pub(crate) fn query<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    target
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// A paginated API over items 0..n: `?cursor=C&limit=L` answers the items
/// from index C and `next` = the index after them. Each page takes `delay`.
pub(crate) fn paginated_api(n: usize, delay: Duration) -> Server {
    Server::start(move |req, _| {
        std::thread::sleep(delay);
        let from: usize = query(&req.target, "cursor")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit: usize = query(&req.target, "limit")
            .and_then(|c| c.parse().ok())
            .unwrap_or(10);
        let to = (from + limit).min(n).max(from);
        let items: Vec<serde_json::Value> = (from..to)
            .map(|i| serde_json::json!({"id": i, "name": format!("item {i}")}))
            .collect();
        let page = serde_json::json!({"items": items, "next": to.to_string()});
        Reply::Status(200, page.to_string().into_bytes())
    })
}

fn http_poll_pipeline(
    dir: &std::path::Path,
    url: &str,
    grant: &str,
    extra: &str,
) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: poll\ncheckpoint_interval_ms: 50\nbatch_size: 20\nsources:\n  api:\n    type: wasm\n    plugin: {}\n    params: {{url: {url:?}, page_size: 20, key_field: id, stop_when_caught_up: true}}\n    grants: {{http: [{grant:?}]}}\n{extra}sinks:\n  out: {{type: file, path: out.jsonl, inputs: [api]}}\n",
            q(&guest("http-poll")),
        ),
    )
}

#[test]
fn http_poll_resumes_from_the_checkpointed_cursor_after_kill_9() {
    const N: usize = 3000;
    let dir = tempfile::tempdir().expect("tempdir");
    // 150 pages of 20 at 10 ms each: the run lasts seconds, so the kill
    // lands mid-way.
    let api = paginated_api(N, Duration::from_millis(10));
    let pipeline = http_poll_pipeline(dir.path(), &api.url("/items"), &api.host_port(), "");
    let out = dir.path().join("out.jsonl");
    let checkpoint = dir.path().join(".sluice/poll/checkpoint.json");
    let mut child = sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !(checkpoint.exists() && lines_or_none(&out) >= 200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(
        !status.success(),
        "the first run must have been killed, not finished"
    );
    let partial = lines(&out).len();
    assert!(partial < N, "killed before the end ({partial} lines)");
    let before = api.requests().len();

    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    // The rerun asked for the page after the checkpointed cursor, not the first.
    let rerun = &api.requests()[before..];
    let first = query(&rerun[0].target, "cursor").unwrap_or("");
    assert!(
        !first.is_empty() && first != "0",
        "the rerun started at cursor `{first}`"
    );
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for v in json_lines(&out) {
        *seen.entry(v["id"].as_i64().expect("id")).or_default() += 1;
    }
    assert_eq!(
        seen.values().filter(|c| **c > 1).count(),
        0,
        "no item twice"
    );
    assert_eq!(
        seen.len(),
        N,
        "every item (killed at {partial} lines, resumed at cursor {first})"
    );
}

fn lines_or_none(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_request_outside_the_grant_fails_naming_the_host_and_the_grant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = paginated_api(10, Duration::ZERO);
    let pipeline = http_poll_pipeline(dir.path(), &api.url("/items"), "127.0.0.1:1", "");
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert!(
        stderr.contains(&format!(
            "{} is not in this connector's grant",
            api.host_port()
        )) && stderr.contains("grants.http: [127.0.0.1:1]"),
        "{stderr}"
    );
    assert!(
        api.requests().is_empty(),
        "nothing may reach an ungranted host"
    );
}

#[test]
fn validate_names_a_missing_or_unknown_grant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  api:\n    type: wasm\n    plugin: {}\n    params: {{url: \"http://127.0.0.1:9/x\"}}\nsinks:\n  out: {{type: stdout, inputs: [api]}}\n",
            q(&guest("http-poll"))
        ),
    );
    let stderr = run_failing(sluice().arg("validate").arg(&missing));
    assert!(
        stderr.contains("imports sluice:plugin/http but this connector is granted no hosts")
            && stderr.contains("sources.api.plugin"),
        "{stderr}"
    );
    let unknown = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  api:\n    type: wasm\n    plugin: {}\n    grants: {{tcp: [\"127.0.0.1:9\"]}}\nsinks:\n  out: {{type: stdout, inputs: [api]}}\n",
            q(&guest("http-poll"))
        ),
    );
    let stderr = run_failing(sluice().arg("validate").arg(&unknown));
    assert!(stderr.contains("unknown field `tcp`"), "{stderr}");
}

#[test]
fn plugin_inspect_shows_the_world_and_the_grants_asked_for() {
    let out = run_ok(
        sluice()
            .arg("plugin")
            .arg("inspect")
            .arg(guest("http-poll")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("world:     sluice:plugin:source"), "{text}");
    assert!(text.contains("grants:    asks for http"), "{text}");
    assert!(
        text.contains("sluice:plugin/http@0.2.0  (linked only when the pipeline grants `http`"),
        "{text}"
    );
    let out = run_ok(
        sluice()
            .arg("plugin")
            .arg("inspect")
            .arg(guest("conn-misbehave")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("grants:    none asked for"), "{text}");
}

fn misbehave_pipeline(dir: &std::path::Path, params: &str, extra: &str) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: mis\ncheckpoint_interval_ms: 50\nsources:\n  gen:\n    type: wasm\n    plugin: {}\n    params: {{{params}}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 20\n{extra}sinks:\n  out: {{type: file, path: out.jsonl, inputs: [gen]}}\n",
            q(&guest("conn-misbehave")),
        ),
    )
}

#[test]
fn a_connector_that_traps_is_reported_and_restarted_from_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = misbehave_pipeline(dir.path(), "count: 300, mode: panic_once_at, at: 95", "");
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("boom on purpose at n = 95")
            && stderr.contains("restarting the connector from its last position"),
        "{stderr}"
    );
    let ns: Vec<i64> = json_lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|v| v["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(
        ns,
        (0..300).collect::<Vec<_>>(),
        "each event once, in order"
    );
}

#[test]
fn a_connector_that_keeps_trapping_fails_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = misbehave_pipeline(dir.path(), "count: 300, mode: panic_always_at, at: 95", "");
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert!(
        stderr.contains(&format!("failed {} times in a row", 6))
            && stderr.contains("boom on purpose"),
        "{stderr}"
    );
}

#[test]
fn a_connector_that_hangs_is_cut_by_its_cpu_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = misbehave_pipeline(
        dir.path(),
        "mode: loop",
        "    limits: {cpu_ms_per_call: 200}\n",
    );
    let started = Instant::now();
    let stderr = run_failing(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    // Six calls of 200 ms and short backoffs; far from a hang.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("exceeded its CPU budget of 200 ms per call")
            && stderr.contains("conn-misbehave"),
        "{stderr}"
    );
}

#[test]
fn malformed_inputs_are_dead_lettered_with_the_connectors_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = misbehave_pipeline(dir.path(), "count: 50, malformed_every: 10", "");
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 45);
    let dead = json_lines(&dir.path().join(".sluice/mis/dead-letters.jsonl"));
    assert!(
        dead.iter()
            .all(|d| d["headers"]["sluice.error.kind"] == "malformed"),
        "{dead:#?}"
    );
    let reasons: Vec<&str> = dead
        .iter()
        .map(|d| {
            d["headers"]["sluice.error.message"]
                .as_str()
                .expect("message")
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            "item 9 is not JSON",
            "item 19 is not JSON",
            "item 29 is not JSON",
            "item 39 is not JSON",
            "item 49 is not JSON"
        ]
    );
}

#[test]
fn webhook_sink_retries_5xx_and_timeouts_and_dead_letters_4xx_with_the_response_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..40 {
        if i % 13 == 5 {
            text.push_str(&format!("{{\"n\":{i},\"bad\":true}}\n"));
        } else {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
    }
    std::fs::write(&input, text).expect("write input");
    let delivered: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = delivered.clone();
    let hook = Server::start(move |req, n| {
        match n {
            0 => return Reply::Status(503, b"busy, try later".to_vec()),
            1 => return Reply::Hang,
            _ => {}
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON array");
        let items = body.as_array().expect("array");
        if items.iter().any(|v| v["bad"] == true) {
            let text = format!("refused: {}", String::from_utf8_lossy(&req.body));
            return Reply::Status(422, text.into_bytes());
        }
        got.lock()
            .expect("lock")
            .extend(items.iter().map(|v| v["n"].as_i64().expect("n")));
        Reply::Status(200, b"{}".to_vec())
    });
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: hook\nbatch_size: 16\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  hook:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [{:?}]}}\n    http_limits: {{first_byte_ms: 300}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 50\n",
            q(&guest("webhook-sink")),
            hook.url("/in"),
            hook.host_port()
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 503: busy, try later"), "{stderr}");
    assert!(
        stderr.contains("did not answer within http_limits.first_byte_ms of 300 ms"),
        "{stderr}"
    );
    let bad: Vec<i64> = (0..40).filter(|i| i % 13 == 5).collect();
    let mut got = delivered.lock().expect("lock").clone();
    got.sort_unstable();
    got.dedup();
    let good: Vec<i64> = (0..40).filter(|i| i % 13 != 5).collect();
    assert_eq!(got, good, "every good event delivered");
    let dead = json_lines(&dir.path().join(".sluice/hook/dead-letters.jsonl"));
    let mut dead_ns: Vec<i64> = dead
        .iter()
        .map(|d| d["value"]["n"].as_i64().expect("n"))
        .collect();
    dead_ns.sort_unstable();
    assert_eq!(dead_ns, bad, "one dead letter per refused event");
    for d in &dead {
        let msg = d["headers"]["sluice.error.message"]
            .as_str()
            .expect("message");
        assert!(msg.starts_with("HTTP 422: refused: [{\"n\":"), "{msg}");
        assert_eq!(d["headers"]["sluice.error.kind"], "sink");
        // Named like a stage's: the host's label of the build, and its version.
        let plugin = d["headers"]["sluice.error.plugin"]
            .as_str()
            .unwrap_or_default();
        assert!(plugin.starts_with("webhook-sink (claims \""), "{plugin}");
        assert!(!d["headers"]["sluice.error.plugin_version"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
}

#[test]
fn scaffolded_source_and_sink_build_into_connectors_that_ask_for_http() {
    let root = tempfile::tempdir().expect("tempdir");
    for (kind, world) in [("source", "source"), ("sink", "sink")] {
        let name = format!("scaffolded-{kind}");
        run_ok(
            sluice()
                .current_dir(root.path())
                .args(["plugin", "new", "--kind", kind, "--lang", "rust", &name]),
        );
        let built = run_ok(
            sluice()
                .args(["plugin", "build"])
                .arg(root.path().join(&name)),
        );
        let wasm = String::from_utf8_lossy(&built.stdout)
            .lines()
            .last()
            .expect("the component's path")
            .to_string();
        let out = run_ok(sluice().args(["plugin", "inspect", &wasm]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("world:     sluice:plugin:{world}")),
            "{text}"
        );
        assert!(text.contains("grants:    asks for http"), "{text}");
    }
    // C scaffolds: c_connectors.rs.
}

#[test]
fn a_sink_connector_that_traps_is_reopened_at_its_last_flush_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    numbered_events(&input, 400);
    let received: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = received.clone();
    let crashed = Arc::new(AtomicUsize::new(0));
    let server = Server::start(move |req, _| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON array");
        let ns: Vec<i64> = body
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v["n"].as_i64().expect("n"))
            .collect();
        // The batch holding 250 crashes the sink, once.
        if ns.contains(&250) && crashed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Status(418, b"crash now".to_vec());
        }
        got.lock().expect("lock").extend(ns);
        Reply::Status(200, b"{}".to_vec())
    });
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: sinkcrash\nbatch_size: 25\ncheckpoint_interval_ms: 50\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [{:?}]}}\n    initial_backoff_ms: 10\n",
            q(&guest("conn-sink-misbehave")),
            server.url("/in"),
            server.host_port()
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the server told this sink to crash")
            && stderr.contains("reopening the connector at its last flush"),
        "{stderr}"
    );
    let mut got = received.lock().expect("lock").clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        (0..400).collect::<Vec<_>>(),
        "every event delivered at least once"
    );
}
