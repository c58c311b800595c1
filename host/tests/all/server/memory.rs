//! A tenant's memory quota on a real server: each run reserves what its
//! bounds let it hold (plugin memory, keyed state, tables), and a start
//! that would take the tenant's live runs past `max_memory_mb` is refused
//! naming the quota, before anything changes. A table fed more distinct
//! keys than its `max_mb` holds dead-letters the rest, and the server goes on.

use serde_json::Value;

use super::{tenant, write_config, Server, ADMIN};
use crate::support::guest;

/// A pipeline that runs until stopped: people at 50 a second through one
/// plugin stage, and a table of them, with the given bounds in MiB.
fn reserving(name: &str, stage_mb: u64, table_mb: u64) -> Vec<u8> {
    format!(
        "name: {name}\nsources:\n  gen: {{type: datagen, kind: people, rate: 50}}\ntables:\n  t: {{input: gen, key_field: id, max_mb: {table_mb}}}\nstages:\n  copy:\n    plugin: passthrough\n    inputs: [gen]\n    limits: {{memory_mb: {stage_mb}}}\nsinks:\n  out: {{type: file, path: {name}.jsonl, inputs: [copy]}}\n"
    )
    .into_bytes()
}

fn memory_mb(s: &Server, tenant: &str) -> u64 {
    let v: Value = s.ok("GET", &format!("/v1/tenants/{tenant}"), Some(ADMIN), None);
    assert_eq!(v["policy"]["max_memory_mb"], 700, "{v}");
    v["memory_mb"].as_u64().expect("memory_mb")
}

#[test]
fn a_tenants_runs_reserve_their_bounds_against_its_memory_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "[defaults]\nmax_memory_mb = 700\n");
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let zeta = tenant(&s, "zeta", "deploy");

    // 128 MiB of plugin memory and a 256 MiB table: 384 of 700.
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(reserving("a", 128, 256)),
    );
    assert_eq!(memory_mb(&s, "acme"), 384);
    // Another such run would make 768: refused, and nothing is stored.
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(reserving("b", 128, 256)),
    );
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_memory_mb")),
        "{v}"
    );
    assert_eq!(
        (v["limit"].as_u64(), v["requested"].as_u64()),
        (Some(700), Some(768)),
        "{v}"
    );
    let (code, _) = s.call("GET", "/v1/pipelines/b", Some(&acme), None);
    assert_eq!(code, 404, "a refused deploy stores nothing");
    // Smaller bounds fit: 384 + 64 + 200 = 648.
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(reserving("b", 64, 200)),
    );
    assert_eq!(memory_mb(&s, "acme"), 648);
    // An update of a live run is measured without its own old reservation:
    // `b` growing to 64 + 300 would be 748.
    let (code, v) = s.call(
        "PUT",
        "/v1/pipelines/b",
        Some(&acme),
        Some(reserving("b", 64, 300)),
    );
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_memory_mb")),
        "{v}"
    );
    assert_eq!(v["requested"].as_u64(), Some(748), "{v}");
    s.wait_for(&acme, "b", "still running its old file", |v| {
        v["status"]["state"] == "running"
    });
    s.ok(
        "PUT",
        "/v1/pipelines/b",
        Some(&acme),
        Some(reserving("b", 64, 250)),
    );
    let v = s.ok("GET", "/v1/pipelines/b", Some(&acme), None);
    assert_eq!(memory_mb(&s, "acme"), 698, "{v}");

    // The quota is the tenant's own: another tenant is not charged.
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&zeta),
        Some(reserving("a", 128, 256)),
    );
    assert_eq!(memory_mb(&s, "zeta"), 384);

    // A stopped run frees its reservation; starting it again checks anew.
    s.ok("POST", "/v1/pipelines/b/stop", Some(&acme), None);
    assert_eq!(memory_mb(&s, "acme"), 384);
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(reserving("c", 64, 250)),
    );
    let (code, v) = s.call("POST", "/v1/pipelines/b/start", Some(&acme), None);
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_memory_mb")),
        "{v}"
    );
    let b = s.ok("GET", "/v1/pipelines/b", Some(&acme), None);
    assert_eq!(
        b["desired"], "stopped",
        "a refused start changes nothing: {b}"
    );
    s.ok("DELETE", "/v1/pipelines/c", Some(&acme), None);
    s.ok("POST", "/v1/pipelines/b/start", Some(&acme), None);
    s.wait_for(&acme, "b", "running again", |v| {
        v["status"]["state"] == "running"
    });
    assert_eq!(memory_mb(&s, "acme"), 698);
    for (t, name) in [(&acme, "a"), (&acme, "b"), (&zeta, "a")] {
        s.ok("POST", &format!("/v1/pipelines/{name}/stop"), Some(t), None);
    }
}

#[test]
fn a_table_over_its_bound_dead_letters_the_rest_and_bounds_above_the_ceilings_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"wasm\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    s.ok(
        "POST",
        "/v1/plugins?name=hook",
        Some(&acme),
        Some(std::fs::read(guest("webhook-sink")).expect("webhook-sink.wasm")),
    );
    // 20,000 distinct people of about 200 bytes: several MiB, into 1 MiB.
    let file = "name: big\nsources:\n  gen: {type: datagen, kind: people, count: 20000}\ntables:\n  t: {input: gen, key_field: id, max_mb: 1}\nsinks:\n  out: {type: file, path: big.jsonl, inputs: [gen]}\n";
    s.ok("POST", "/v1/pipelines", Some(&acme), Some(file.into()));
    let v = s.wait_for(&acme, "big", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    let dead = v["status"]["dead_letters"].as_u64().expect("dead_letters");
    assert!((10_000..20_000).contains(&dead), "{v}");
    let page = s.ok(
        "GET",
        "/v1/pipelines/big/dead-letters?limit=1",
        Some(&acme),
        None,
    );
    let reason = page["letters"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("table `t` is full") && reason.contains("max_mb: 1"),
        "{page}"
    );
    // The stream itself went on whole to the sink.
    let out = std::fs::read_to_string(dir.path().join("data/tenants/acme/files/big.jsonl"))
        .expect("output");
    assert_eq!(out.lines().count(), 20_000);

    // Above the operator's ceilings: a table's max_mb, and a custom
    // connector's limits like a stage's (no unlimited CPU, no huge memory).
    let file = "name: greedy\nsources:\n  gen: {type: datagen, kind: people, count: 1}\ntables:\n  t: {input: gen, key_field: id, max_mb: 5000}\nsinks:\n  out:\n    type: wasm\n    plugin: hook\n    inputs: [gen]\n    params: {url: 'http://127.0.0.1:9/in'}\n    grants: {http: ['127.0.0.1:9']}\n    limits: {memory_mb: 99999, cpu_ms_per_call: unlimited}\n";
    let (code, v) = s.call("POST", "/v1/validate", Some(&acme), Some(file.into()));
    assert_eq!(code, 400, "{v}");
    let text = v.to_string();
    for field in [
        "tables.t.max_mb: 5000 is above this host's ceiling of 4096",
        "sinks.out.limits.memory_mb: 99999 is above this host's ceiling",
        "sinks.out.limits.cpu_ms_per_call",
    ] {
        assert!(text.contains(field), "{field}: {v}");
    }
}

/// A Kafka client's queues live in the server's memory and `properties:`
/// sizes them: they count against the tenant's quota, and sizes above the
/// operator's `client_buffer_mb` (512 MiB by default) are refused. No
/// broker is needed: both refusals come before anything connects.
#[test]
fn kafka_client_buffers_count_against_the_quota_and_above_the_ceiling_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nmax_memory_mb = 700\nconnectors = [\"datagen\", \"file\", \"kafka\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let kafka = |name: &str, source_props: &str, sink_props: &str| -> Vec<u8> {
        format!(
            "name: {name}\nsources:\n  in:\n    type: kafka\n    brokers: 127.0.0.1:9\n    topics: [t]\n    group_id: g\n    properties: {{{source_props}}}\nsinks:\n  out:\n    type: kafka\n    brokers: 127.0.0.1:9\n    topic: u\n    inputs: [in]\n    properties: {{{sink_props}}}\n"
        )
        .into_bytes()
    };

    // A 128 MiB prefetch queue + a 50 MiB fetch + 64 MiB held in time
    // order, and a 512 MiB producer queue: 754 MiB of a 700 MiB quota.
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(kafka(
            "k",
            "queued.max.messages.kbytes: 131072",
            "queue.buffering.max.kbytes: 524288",
        )),
    );
    assert_eq!(
        (code, v["quota"].as_str(), v["requested"].as_u64()),
        (403, Some("max_memory_mb"), Some(754)),
        "{v}"
    );
    assert_eq!(memory_mb(&s, "acme"), 0);

    // librdkafka would take a 2 GiB producer queue; this host refuses it,
    // and a size that is not a number, naming the property.
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&acme),
        Some(kafka(
            "greedy",
            "queued.max.messages.kbytes: lots",
            "queue.buffering.max.kbytes: 2097152",
        )),
    );
    assert_eq!(code, 400, "{v}");
    let text = v.to_string();
    for expected in [
        "properties.queued.max.messages.kbytes",
        "`lots` is not a whole number from 1 to 2097151 (KiB)",
        "sinks.out.properties: as configured, its client may buffer 2048 MiB",
        "above this host's ceiling of 512 MiB (client_buffer_mb",
    ] {
        assert!(text.contains(expected), "{expected}: {v}");
    }
}
