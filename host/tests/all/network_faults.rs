//! Network faults between `sluice` and a real PostgreSQL: every connection
//! goes through [`Proxy`], which the tests cut (all connections closed, new
//! ones refused) and slow down while the pipeline runs. Each case asserts an
//! exact result: every row, once.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::postgres_cdc::{unique, Pg};
use crate::proxy::Proxy;
use crate::support::*;

/// The host and port of a `postgres://` URL, and the URL through `proxy`.
fn through(url: &str, proxy: &Proxy) -> String {
    let (head, rest) = url.rsplit_once('@').expect("url has credentials");
    let (authority, db) = rest.split_once('/').expect("url has a database");
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    format!("{head}@{host}:{}/{db}", proxy.port())
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.rsplit_once('@').map_or(url, |(_, r)| r);
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    authority.parse().expect("host:port")
}

fn start(p: &Path, log: &Path) -> Child {
    sluice()
        .arg("run")
        .arg(p)
        .args(["--no-progress", "-v"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn sluice")
}

fn ids(path: &Path) -> Vec<i64> {
    if !path.exists() {
        return Vec::new();
    }
    lines(path)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_i64().or_else(|| v["after"]["id"].as_i64()))
        .collect()
}

/// Waits until `done` holds, failing with `what` and the log after 60 s or
/// when `sluice` exits.
fn wait(child: &mut Child, log: &Path, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "sluice exited while waiting for {what}:\n{text}"
        );
        assert!(Instant::now() < deadline, "never {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0");
}

fn insert(pg: &Pg, from: i64, to: i64) {
    pg.exec(&format!(
        "INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series({from}, {to}) g"
    ));
}

fn assert_each_once(got: &[i64], n: i64) {
    let mut sorted = got.to_vec();
    sorted.sort_unstable();
    let want: Vec<i64> = (1..=n).collect();
    assert_eq!(sorted.len(), got.len());
    assert_eq!(sorted, want, "every row once");
}

#[test]
fn cdc_survives_a_network_cut_and_a_slow_link_with_every_row_once() {
    let pg = Pg::fresh("net_cdc");
    pg.exec("CREATE TABLE items (id INT PRIMARY KEY, pad TEXT)");
    let proxy = Proxy::start(upstream(&pg.url));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let log = dir.path().join("sluice.log");
    let slot = unique("net_slot");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: net\ncheckpoint_interval_ms: 200\nsources:\n  pg:\n    type: postgres-cdc\n    url: {}\n    tables: [items]\n    slot: {slot}\n    heartbeat_interval_ms: 200\nsinks:\n  out: {{type: file, path: {}, inputs: [pg]}}\n",
            json_str(&through(&pg.url, &proxy)),
            q(&out)
        ),
    );
    let mut child = start(&p, &log);
    insert(&pg, 1, 500);
    wait(&mut child, &log, "the first 500 rows", || {
        ids(&out).len() >= 500
    });

    // Cut: the replication connection and the query connection die; rows
    // keep arriving in PostgreSQL meanwhile.
    proxy.cut();
    insert(&pg, 501, 1000);
    wait(&mut child, &log, "a reported connection loss", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("replication connection lost")
    });
    let accepted = proxy.accepted();
    proxy.restore();
    wait(&mut child, &log, "the rows written during the cut", || {
        ids(&out).len() >= 1000
    });
    assert!(
        proxy.accepted() > accepted,
        "it reconnected through the proxy"
    );

    // A slow link: 20 ms on every chunk each way.
    proxy.slow(Duration::from_millis(20));
    insert(&pg, 1001, 1500);
    wait(&mut child, &log, "the rows over the slow link", || {
        ids(&out).len() >= 1500
    });
    proxy.slow(Duration::ZERO);
    stop(child);
    assert_each_once(&ids(&out), 1500);
    pg.drop_slot(&slot);
}

#[test]
fn the_postgres_sink_rides_out_a_cut_and_a_slow_link_with_every_row_once() {
    let pg = Pg::fresh("net_sink");
    pg.exec("CREATE TABLE items (id INT PRIMARY KEY, pad TEXT)");
    let proxy = Proxy::start(upstream(&pg.url));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("sluice.log");
    // Rows come on stdin, so the run stays alive while the network
    // misbehaves and ends when the input does.
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: net_sink\ncheckpoint_interval_ms: 200\nsources:\n  in: {{type: stdin}}\nsinks:\n  db:\n    type: postgres\n    url: {}\n    table: items\n    key_fields: [id]\n    mode: upsert\n    initial_backoff_ms: 100\n    max_backoff_ms: 1000\n    inputs: [in]\n",
            json_str(&through(&pg.url, &proxy))
        ),
    );
    let count = || {
        pg.scalar("SELECT count(*) FROM items")
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0)
    };
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
    let send = |stdin: &mut std::process::ChildStdin, text: String| {
        use std::io::Write;
        stdin.write_all(text.as_bytes()).expect("write rows");
        stdin.flush().expect("flush rows");
    };
    send(&mut stdin, rows(1, 500));
    wait(&mut child, &log, "the first 500 rows", || count() >= 500);

    proxy.cut();
    send(&mut stdin, rows(501, 1000));
    // Written while the link is down: the sink retries with backoff and
    // says so.
    wait(&mut child, &log, "a reported reconnect", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("reconnect failed")
    });
    proxy.restore();
    wait(&mut child, &log, "the rows written during the cut", || {
        count() >= 1000
    });

    proxy.slow(Duration::from_millis(20));
    send(&mut stdin, rows(1001, 1500));
    wait(&mut child, &log, "the rows over the slow link", || {
        count() >= 1500
    });
    proxy.slow(Duration::ZERO);
    // End of input: the run drains and exits.
    drop(stdin);
    let status = child.wait().expect("wait");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    assert_eq!(count(), 1500, "{text}");
    let distinct = pg
        .scalar("SELECT count(DISTINCT id) FROM items WHERE id BETWEEN 1 AND 1500")
        .and_then(|c| c.parse::<i64>().ok());
    assert_eq!(distinct, Some(1500));
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

/// 500 rows are about 20 KB, under a pipe's 64 KiB: writing them never
/// blocks the test, even while the sink holds the pipeline back.
fn rows(from: i64, to: i64) -> String {
    (from..=to)
        .map(|i| format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "y".repeat(16)))
        .collect()
}
