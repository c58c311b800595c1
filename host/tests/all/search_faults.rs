//! Network faults between the `elasticsearch` sink and the search server
//! (`scripts/services/search.sh`): every connection goes through [`Proxy`],
//! which the test cuts (all connections closed, new ones refused) and slows
//! down while the pipeline runs. The index is read directly, not through the
//! proxy, and must hold every document exactly once.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::Proxy;
use crate::support::*;

fn es_url() -> String {
    service("SLUICE_ES_URL", "search")
}

/// The server's address, from `http://host:port`.
fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/').parse().expect("host:port")
}

fn get(path: &str) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("{}{path}", es_url());
    let mut resp = agent
        .get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Documents in `index` (0 before it exists).
fn count(index: &str) -> u64 {
    match get(&format!("/{index}/_count")) {
        (200, body) => body["count"].as_u64().expect("count"),
        _ => 0,
    }
}

/// Every document id in `index`, sorted.
fn ids(index: &str) -> Vec<i64> {
    let (status, body) = get(&format!("/{index}/_search?size=5000&_source=false"));
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<i64> = body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            h["_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("numeric id: {h}"))
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits until `done` holds, failing with `what` and the log after 60 s or
/// when `sluice` exits.
fn wait(child: &mut Child, log: &Path, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "sluice exited while waiting for {what}:\n{}",
            log_text(log)
        );
        assert!(
            Instant::now() < deadline,
            "never {what}:\n{}",
            log_text(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 500 documents are about 25 KB, under a pipe's 64 KiB: writing them never
/// blocks the test while the sink holds the pipeline back.
fn send(stdin: &mut ChildStdin, from: i64, to: i64) {
    let text: String = (from..=to)
        .map(|i| format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "z".repeat(16)))
        .collect();
    stdin.write_all(text.as_bytes()).expect("write documents");
    stdin.flush().expect("flush documents");
}

#[test]
fn the_elasticsearch_sink_rides_out_a_cut_and_a_slow_link_with_every_document_once() {
    let proxy = Proxy::start(upstream(&es_url()));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("sluice.log");
    let index = format!(
        "net-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    // Documents come on stdin, so the run stays alive while the network
    // misbehaves and ends when the input does.
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: net_es\ncheckpoint_interval_ms: 200\nsources:\n  in: {{type: stdin}}\nsinks:\n  es:\n    type: elasticsearch\n    inputs: [in]\n    url: http://127.0.0.1:{}\n    index: {index}\n    id: field\n    id_field: id\n    max_ms: 100\n    initial_backoff_ms: 100\n    max_backoff_ms: 1000\n",
            proxy.port()
        ),
    );
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .args(["--no-progress", "-v"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn sluice");
    let mut stdin = child.stdin.take().expect("stdin");
    send(&mut stdin, 1, 500);
    wait(&mut child, &log, "the first 500 documents", || {
        count(&index) >= 500
    });

    proxy.cut();
    send(&mut stdin, 501, 1000);
    wait(&mut child, &log, "a reported retry", || {
        log_text(&log).contains("search server unavailable")
    });
    let accepted = proxy.accepted();
    // Nothing got through while the link was down.
    assert_eq!(count(&index), 500, "{}", log_text(&log));
    proxy.restore();
    wait(
        &mut child,
        &log,
        "the documents written during the cut",
        || count(&index) >= 1000,
    );
    assert!(
        proxy.accepted() > accepted,
        "it reconnected through the proxy"
    );

    // A slow link: 20 ms on every chunk each way.
    proxy.slow(Duration::from_millis(20));
    send(&mut stdin, 1001, 1500);
    wait(&mut child, &log, "the documents over the slow link", || {
        count(&index) >= 1500
    });
    proxy.slow(Duration::ZERO);
    drop(stdin);
    let status = child.wait().expect("wait");
    let text = log_text(&log);
    assert!(status.success(), "{text}");
    assert!(
        text.contains("retrying in"),
        "the log says it retries: {text}"
    );
    assert_eq!(count(&index), 1500, "{text}");
    assert_eq!(
        ids(&index),
        (1..=1500).collect::<Vec<i64>>(),
        "every id once"
    );
}
