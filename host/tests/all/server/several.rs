//! Several `sluice serve` processes on one PostgreSQL catalog (a fresh
//! database per test, on `scripts/services/postgres.sh`): a Kafka pipeline
//! runs on both as one consumer group and the survivor takes over a killed
//! server's partitions; any other pipeline runs on exactly one server and
//! moves when that one is killed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{tenant, write_config, Server};
use crate::sqldb::{pg_url, unique, Kind};

/// A fresh database for one test's catalog, dropped when the test ends
/// (servers still connected or not).
struct Catalog {
    db: String,
    url: String,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        Kind::Postgres.exec(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
    }
}

fn fresh_catalog() -> Catalog {
    let db = unique("catalog");
    Kind::Postgres.exec(&format!("CREATE DATABASE {db}"));
    let url = pg_url();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Catalog {
        url: format!("{base}/{db}"),
        db,
    }
}

/// Writes `dir/server.toml` for server `id` on the catalog in
/// `$SLUICE_TEST_CATALOG_URL` with the key `key`.
fn config(dir: &Path, id: &str, key: &Path) {
    write_config(
        dir,
        &format!(
            "secrets_key_file = \"{}\"\n[tenants.acme]\nconnectors = [\"datagen\", \"file\", \"kafka\"]\nhosts = [\"127.0.0.1\"]\n[catalog]\nurl_env = \"SLUICE_TEST_CATALOG_URL\"\nserver_id = \"{id}\"\nlease_seconds = 3\n",
            key.display()
        ),
    );
}

fn start(dir: &Path, url: &str) -> Server {
    Server::start_with(dir, &[], &[("SLUICE_TEST_CATALOG_URL", url)])
}

/// The `n` of every line of a file sink's output (none if it is missing).
fn ns(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["n"].as_u64())
        .collect()
}

fn runs_on(v: &Value) -> Vec<String> {
    v["runs_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn wait(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_servers_split_a_kafka_pipelines_partitions_and_the_survivor_takes_them_all() {
    use crate::kafka::{brokers, create_topics, json_records, produce};
    let brokers = brokers();
    let topic = crate::kafka::unique("several");
    create_topics(&brokers, &[(&topic, 4)]);
    let catalog = fresh_catalog();
    let url = catalog.url.clone();
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("secrets.key");
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    config(da.path(), "a", &key);
    config(db.path(), "b", &key);
    let a = start(da.path(), &url);
    let b = start(db.path(), &url);
    // The tenant and its token, made through A, work on B.
    let t = tenant(&a, "acme", "deploy");
    let yaml = format!(
        "name: orders\ncheckpoint_interval_ms: 200\nsources:\n  in: {{type: kafka, brokers: \"{brokers}\", topics: [{topic}], group_id: {topic}, session_timeout_ms: 6000}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [in]}}\n"
    );
    produce(&brokers, &topic, &json_records(400, 0));
    a.ok("POST", "/v1/pipelines", Some(&t), Some(yaml.into_bytes()));

    // Visible on B, and run by both.
    let both = vec!["a".to_string(), "b".to_string()];
    b.wait_for(&t, "orders", "running on both servers", |v| {
        runs_on(v) == both
    });
    let v = a.ok("GET", "/v1/pipelines/orders", Some(&t), None);
    assert_eq!(runs_on(&v), both, "{v}");
    assert_eq!(
        v["owner"],
        Value::Null,
        "a group pipeline has no lease: {v}"
    );

    let out_a = da.path().join("data/tenants/acme/files/out.jsonl");
    let out_b = db.path().join("data/tenants/acme/files/out.jsonl");
    // Each member gets some of the 4 partitions, so each writes output.
    let mut produced = 400;
    wait("output on both servers", 60, || {
        produce(&brokers, &topic, &json_records(100, produced));
        produced += 100;
        !ns(&out_a).is_empty() && !ns(&out_b).is_empty()
    });
    let on_a = ns(&out_a).len();
    assert!(on_a > 0 && !ns(&out_b).is_empty());

    // A dies mid-stream; B's group rebalances and B reads every partition.
    a.kill9();
    let from_a: Vec<u64> = ns(&out_a);
    for _ in 0..5 {
        produce(&brokers, &topic, &json_records(100, produced));
        produced += 100;
        std::thread::sleep(Duration::from_millis(300));
    }
    let total = produced as u64;
    wait("every record at B or in A's output", 90, || {
        let mut seen: Vec<u64> = ns(&out_b);
        seen.extend(&from_a);
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u64 == total
    });
    // Settled: B holds every partition now. Records produced from here on
    // arrive exactly once.
    let settled = total;
    produce(&brokers, &topic, &json_records(300, produced));
    let total = settled + 300;
    wait("the records produced after the takeover", 60, || {
        ns(&out_b).iter().filter(|&&n| n >= settled).count() >= 300
    });
    // A last checkpoint interval, so a late duplicate would show.
    std::thread::sleep(Duration::from_millis(600));
    let from_b = ns(&out_b);
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for n in from_a.iter().chain(&from_b) {
        *counts.entry(*n).or_default() += 1;
    }
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "every record produced arrives"
    );
    // Duplicates are what was read but not yet committed when a rebalance
    // moved partitions (B joining, A dying: two rebalances), so a record
    // arrives at most three times, and none after the takeover settled.
    let doubled: Vec<(u64, u32)> = counts
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&n, &c)| (n, c))
        .collect();
    assert!(
        doubled.iter().all(|&(_, c)| c <= 3),
        "a record arrived more than three times: {doubled:?}"
    );
    assert!(
        doubled.iter().all(|&(n, _)| n < settled),
        "a record produced after the takeover arrived twice: {doubled:?}"
    );
    let extra: u32 = doubled.iter().map(|&(_, c)| c - 1).sum();
    assert!(
        u64::from(extra) < settled / 2,
        "{extra} duplicates of {settled} records"
    );
    let v = b.wait_for(&t, "orders", "running on B only", |v| runs_on(v) == ["b"]);
    assert_eq!(v["desired"], "running", "{v}");
    eprintln!(
        "kafka takeover: {total} records, A wrote {} ({on_a} when both had output), B {}, {extra} duplicates of {} records",
        from_a.len(),
        from_b.len(),
        doubled.len()
    );
    b.terminate();
}

#[test]
fn a_pipeline_that_runs_once_moves_to_the_survivor_and_follows_changes_through_either_server() {
    let catalog = fresh_catalog();
    let url = catalog.url.clone();
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("secrets.key");
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    config(da.path(), "a", &key);
    config(db.path(), "b", &key);
    let a = start(da.path(), &url);
    let b = start(db.path(), &url);
    let t = tenant(&a, "acme", "deploy");
    // A plugin pushed to A is fetched by B from the catalog when it runs.
    a.ok(
        "POST",
        "/v1/plugins?name=pass",
        Some(&t),
        Some(super::wasm("passthrough")),
    );
    // A named connection sealed by A: B opens its secret with the shared
    // key whenever it validates the tenant's pipelines (and after taking
    // over, to start one), and shows it without the value.
    a.ok(
        "POST",
        "/v1/connections",
        Some(&t),
        Some(
            serde_json::json!({"name": "spare", "fields": {"host": "127.0.0.1"}, "secrets": {"password": "several-s3cret"}})
                .to_string()
                .into_bytes(),
        ),
    );
    let conn = b.ok("GET", "/v1/connections/spare", Some(&t), None);
    assert_eq!(conn["fields"]["host"], "127.0.0.1", "{conn}");
    assert!(!conn.to_string().contains("several-s3cret"), "{conn}");
    a.ok(
        "POST",
        "/v1/pipelines",
        Some(&t),
        Some(super::customers("gen", 1_000_000, 300, "pass")),
    );
    let only_a = vec!["a".to_string()];
    let v = b.wait_for(&t, "gen", "owned by A", |v| {
        v["owner"] == "a" && runs_on(v) == only_a
    });
    assert_eq!(v["desired"], "running", "{v}");
    let out_a = da.path().join("data/tenants/acme/files/gen.jsonl");
    let out_b = db.path().join("data/tenants/acme/files/gen.jsonl");
    wait("output on A", 30, || out_a.is_file());
    // B does not run it: for a few leases' renewals it writes nothing.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!out_b.exists(), "B ran a pipeline A holds");
    // An update through B restarts A's run on the new file; B still does
    // not run it.
    let updated = b.ok(
        "PUT",
        "/v1/pipelines/gen",
        Some(&t),
        Some(super::customers("gen", 1_000_000, 301, "pass")),
    );
    assert_eq!(updated["owner"], "a", "{updated}");
    a.wait_for(&t, "gen", "restarted on the new file", |v| {
        v["status"]["runs"] == 2 && v["status"]["state"] == "running"
    });
    assert!(!out_b.exists(), "B ran a pipeline A holds");

    a.kill9();
    let killed = Instant::now();
    let v = b.wait_for(&t, "gen", "taken over by B", |v| {
        v["owner"] == "b" && runs_on(v) == ["b"]
    });
    assert_eq!(v["status"]["state"], "running", "{v}");
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "taken over before A's lease could expire"
    );
    wait("output on B", 30, || {
        std::fs::read_to_string(&out_b).is_ok_and(|s| s.lines().count() > 50)
    });

    // Changes through B apply to B's run: stop, then delete.
    let stopped = b.ok("POST", "/v1/pipelines/gen/stop", Some(&t), None);
    assert_eq!(stopped["desired"], "stopped", "{stopped}");
    assert_eq!(stopped["status"]["state"], "stopped", "{stopped}");
    assert_eq!(runs_on(&stopped), Vec::<String>::new(), "{stopped}");
    b.ok("DELETE", "/v1/pipelines/gen", Some(&t), None);
    let (code, _) = b.call("GET", "/v1/pipelines/gen", Some(&t), None);
    assert_eq!(code, 404);
    // Unused now, the plugin goes, bytes and all, from the catalog.
    b.ok("DELETE", "/v1/plugins/pass", Some(&t), None);
    let (code, _) = b.call("GET", "/v1/plugins/pass", Some(&t), None);
    assert_eq!(code, 404);
    b.terminate();
}

#[test]
fn a_server_whose_secrets_key_differs_from_the_catalogs_refuses_to_start() {
    let catalog = fresh_catalog();
    let url = catalog.url.clone();
    let keys = tempfile::tempdir().expect("tempdir");
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    config(da.path(), "a", &keys.path().join("one.key"));
    config(db.path(), "b", &keys.path().join("other.key"));
    let a = start(da.path(), &url);
    // A tenant and its tokens go in one transaction: the token is refused
    // at once.
    let temp = tenant(&a, "temp", "read");
    a.ok("GET", "/v1/pipelines", Some(&temp), None);
    a.ok("DELETE", "/v1/tenants/temp", Some(super::ADMIN), None);
    let (code, _) = a.call("GET", "/v1/pipelines", Some(&temp), None);
    assert_eq!(code, 401);
    let out = crate::support::sluice()
        .args(["serve", "--config"])
        .arg(db.path().join("server.toml"))
        .env("SLUICE_ADMIN_TOKEN", super::ADMIN)
        .env("SLUICE_TEST_CATALOG_URL", &url)
        .output()
        .expect("sluice serve runs");
    assert!(!out.status.success(), "a server with another key started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other.key is not the key of the catalog")
            && err.contains("same secrets_key_file"),
        "{err}"
    );
    a.terminate();
}
