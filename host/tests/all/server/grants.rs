//! The operator's host grant on a real server: a tenant's connectors reach
//! only the hosts granted to it, whether the host is written in the file
//! or lent by a named connection, and settings that reach the server's own
//! files, programs or credentials are refused. A dead letter quoting a
//! connection's secret stays struck after the server restarts.

use serde_json::{json, Value};

use super::{tenant, write_config, Server};
use crate::support::guest;
use crate::wasm_connectors::{Reply, Server as Endpoint};

fn body(v: Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// The `field: message` parts of a 400's diagnostics.
fn problems(v: &Value) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|d| d.split_once(": ").map_or(d, |(_, rest)| rest).to_string())
        .collect()
}

#[test]
fn a_tenant_reaches_only_the_hosts_it_was_granted() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"postgres\", \"kafka\", \"s3\", \"elasticsearch\", \"wasm\"]\nhosts = [\"db.internal:5432\", \"*.kafka.internal\", \"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    // A custom connector is uploaded like any plugin.
    let up = s.ok(
        "POST",
        "/v1/plugins?name=hook",
        Some(&acme),
        Some(std::fs::read(guest("webhook-sink")).expect("webhook-sink.wasm")),
    );
    assert_eq!(up["world"], "sink", "{up}");
    let validate = |sink: &str| -> (u16, Value) {
        let file = format!(
            "name: p\nsources:\n  gen: {{type: datagen, kind: people, count: 1}}\nsinks:\n  out:\n    inputs: [gen]\n{sink}"
        );
        s.call("POST", "/v1/validate", Some(&acme), Some(file.into_bytes()))
    };
    // Granted: nothing to say.
    for sink in [
        "    type: postgres\n    url: postgres://u:p@DB.internal/app\n    table: t\n",
        "    type: kafka\n    brokers: b1.kafka.internal:9092,b2.kafka.internal:9093\n    topic: t\n    properties: {linger.ms: '5'}\n",
        "    type: elasticsearch\n    url: http://127.0.0.1:9200\n    index: i\n",
        "    type: wasm\n    plugin: hook\n    params: {url: 'http://127.0.0.1:9/in'}\n    grants: {http: ['127.0.0.1:9']}\n",
    ] {
        let (code, v) = validate(sink);
        assert_eq!(code, 200, "{sink}: {v}");
    }
    let refused = "not granted to this tenant (granted hosts: db.internal:5432, *.kafka.internal, 127.0.0.1); the operator grants hosts with `hosts` in server.toml";
    for (sink, says) in [
        (
            "    type: postgres\n    url: postgres://u:p@db.internal:5433/app\n    table: t\n",
            format!("sinks.out: reaches `db.internal:5433`, {refused}"),
        ),
        // libpq's `?host=` adds a host: it is read as the client reads it.
        (
            "    type: postgres\n    url: postgres://u:p@db.internal/app?host=10.9.9.9\n    table: t\n",
            format!("sinks.out: reaches `10.9.9.9:5432`, {refused}"),
        ),
        (
            "    type: kafka\n    brokers: kafka.internal.evil.example:9092\n    topic: t\n",
            format!("sinks.out: reaches `kafka.internal.evil.example:9092`, {refused}"),
        ),
        // A backslash ends an HTTP URL's host: this one is evil.example.
        (
            "    type: elasticsearch\n    url: 'http://evil.example\\@127.0.0.1:9200'\n    index: i\n",
            format!("sinks.out: reaches `evil.example:80`, {refused}"),
        ),
        (
            "    type: wasm\n    plugin: hook\n    params: {url: 'http://metadata.example/in'}\n    grants: {http: ['169.254.169.254:80']}\n",
            format!("sinks.out: reaches `169.254.169.254:80`, {refused}"),
        ),
        // Settings that reach the server itself.
        (
            "    type: wasm\n    plugin: /srv/other-tenant/hook.wasm\n    grants: {http: ['127.0.0.1:9']}\n",
            "sinks.out.plugin: `/srv/other-tenant/hook.wasm` is not allowed on a server: name an uploaded plugin (NAME or sha256:HEX) or a built-in one, not a path".into(),
        ),
        (
            "    type: kafka\n    brokers: b1.kafka.internal:9092\n    topic: t\n    properties: {sasl.kerberos.kinit.cmd: 'touch /tmp/owned'}\n",
            "sinks.out.properties.sasl.kerberos.kinit.cmd: not allowed on a server: it can reach the server's files, programs or other hosts; give brokers in `brokers` and TLS or SASL in the `tls:` and `sasl:` blocks (tuning properties such as `linger.ms` or `fetch.max.bytes` are allowed)".into(),
        ),
        (
            "    type: kafka\n    brokers: b1.kafka.internal:9092\n    topic: t\n    properties: {bootstrap.servers: 'evil.example:9092'}\n",
            "sinks.out.properties.bootstrap.servers: not allowed on a server: it can reach the server's files, programs or other hosts; give brokers in `brokers` and TLS or SASL in the `tls:` and `sasl:` blocks (tuning properties such as `linger.ms` or `fetch.max.bytes` are allowed)".into(),
        ),
        (
            "    type: s3\n    bucket: b\n    endpoint: http://127.0.0.1:9000\n",
            "sinks.out.access_key_id: required on a server, with `secret_access_key`: without them the S3 client would use the server's own AWS credentials".into(),
        ),
    ] {
        let (code, v) = validate(sink);
        assert_eq!(code, 400, "{sink}: {v}");
        assert_eq!(problems(&v), vec![says], "{sink}");
    }

    // A host lent by a named connection is checked too, and the problem
    // points at the `connection:` line.
    s.ok(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "elsewhere", "type": "postgres",
                    "secrets": {"url": "postgres://u:hunter2@10.0.0.99:5432/app"}})),
    );
    let (code, v) = validate("    type: postgres\n    connection: elsewhere\n    table: t\n");
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["diagnostics"],
        json!([format!(
            "p.yaml:8:17: sinks.out: reaches `10.0.0.99:5432`, {refused}"
        )])
    );
    assert!(!v.to_string().contains("hunter2"), "{v}");

    // A tenant granted no host keeps `datagen` and `file`.
    let dir2 = tempfile::tempdir().expect("tempdir");
    write_config(
        dir2.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"postgres\"]\n",
    );
    let s2 = Server::start(dir2.path());
    let t2 = tenant(&s2, "acme", "deploy");
    let file = "name: p\nsources:\n  gen: {type: datagen, kind: people, count: 1}\nsinks:\n  out: {type: file, path: o.jsonl, inputs: [gen]}\n";
    let (code, v) = s2.call("POST", "/v1/validate", Some(&t2), Some(file.into()));
    assert_eq!(code, 200, "{v}");
    let pg = "name: p\nsources:\n  gen: {type: datagen, kind: people, count: 1}\nsinks:\n  out: {type: postgres, url: 'postgres://u:p@127.0.0.1/app', table: t, inputs: [gen]}\n";
    let (code, v) = s2.call("POST", "/v1/validate", Some(&t2), Some(pg.into()));
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        problems(&v),
        vec!["sinks.out: reaches `127.0.0.1:5432`, not granted to this tenant (granted hosts: none); the operator grants hosts with `hosts` in server.toml".to_string()]
    );
}

#[test]
fn a_dead_letter_quoting_a_secret_stays_struck_after_a_restart() {
    // An endpoint that quotes the request it refuses, query string and all:
    // the API key in the connection's URL lands in the dead-letter reason.
    let hook = Endpoint::start(|req, _| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let bad = body
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v["bad"] == true));
        if bad {
            Reply::Status(422, format!("refused {}", req.target).into_bytes())
        } else {
            Reply::Status(200, b"{}".to_vec())
        }
    });
    let key = "key-5e8a1f0c-never-shown";
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"file\", \"wasm\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let files = dir.path().join("data/tenants/acme/files");
    std::fs::create_dir_all(&files).expect("files dir");
    let input: String = (0..12)
        .map(|i| format!("{{\"n\":{i},\"bad\":{}}}\n", i % 4 == 0))
        .collect();
    std::fs::write(files.join("in.jsonl"), input).expect("input");
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    s.ok(
        "POST",
        "/v1/plugins?name=hook",
        Some(&acme),
        Some(std::fs::read(guest("webhook-sink")).expect("webhook-sink.wasm")),
    );
    s.ok(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "hook", "type": "wasm",
                    "secrets": {"url": hook.url(&format!("/in?api_key={key}"))}})),
    );
    let file = format!(
        "name: hooked\nbatch_size: 1\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out:\n    type: wasm\n    connection: hook\n    plugin: hook\n    inputs: [in]\n    grants: {{http: [{:?}]}}\n",
        hook.host_port()
    );
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(file.into_bytes()),
    );
    s.wait_for(&acme, "hooked", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    let reasons = |s: &Server| -> Vec<String> {
        let page = s.ok(
            "GET",
            "/v1/pipelines/hooked/dead-letters",
            Some(&acme),
            None,
        );
        page["letters"]
            .as_array()
            .expect("letters")
            .iter()
            .map(|l| l["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let before = reasons(&s);
    assert_eq!(before.len(), 3, "{before:?}");
    for r in &before {
        assert_eq!(r, "HTTP 422: refused /in?api_key=[secret]");
    }
    // The server restarts; the pipeline has finished and does not run
    // again, yet its reasons are still struck.
    s.terminate();
    let s = Server::start(dir.path());
    assert_eq!(reasons(&s), before);
    let raw = std::fs::read_to_string(
        dir.path()
            .join("data/tenants/acme/pipelines/hooked/dead-letters.jsonl"),
    )
    .expect("dead letters on disk");
    assert!(raw.contains(key), "the file keeps what happened: {raw}");
    let log = Server::log_of(dir.path());
    assert!(!log.contains(key), "{log}");
}
