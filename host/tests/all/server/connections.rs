//! Named connections on a real server with a real PostgreSQL
//! (`scripts/services/postgres.sh`): the secret reaches the sink, and never
//! the API, the catalog file, the logs or the diagnostics.

use serde_json::json;

use super::{tenant, write_config, Server};
use crate::sqldb::{pg_url, unique, Kind};

fn body(v: serde_json::Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// A role of its own with a password no other text holds (the service's
/// `postgres:postgres` would match every `type: postgres`): (URL, password).
fn own_role() -> (String, String) {
    let role = unique("conn_role");
    let password = format!("pw-{}", unique("x"));
    Kind::Postgres.exec(&format!(
        "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"
    ));
    let url = pg_url();
    let host = url.rsplit_once('@').map_or("", |(_, h)| h).to_string();
    (format!("postgres://{role}:{password}@{host}"), password)
}

fn to_postgres(name: &str, table: &str, sink_extra: &str) -> Vec<u8> {
    format!(
        "name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  gen: {{type: datagen, kind: people, count: 40}}\nsinks:\n  db:\n    type: postgres\n    connection: warehouse\n    inputs: [gen]\n    table: {table}\n    auto_create: true\n{sink_extra}"
    )
    .into_bytes()
}

/// Waits for pipeline `name` to finish, then counts `table`'s rows.
fn rows_after(s: &Server, token: &str, name: &str, table: &str) -> usize {
    s.wait_for(token, name, "finished", |v| {
        v["status"]["state"] == "finished"
    });
    Kind::Postgres
        .flat(&format!("SELECT count(*) FROM {}", Kind::Postgres.q(table)))
        .first()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
}

#[test]
fn a_named_connection_lends_its_secret_to_a_pipeline_and_never_shows_it() {
    let (url, password) = own_role();
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"postgres\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let other = tenant(&s, "other", "deploy");

    // Created: the answer names the secret, never its value.
    let (code, created) = s.call(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "warehouse", "type": "postgres", "secrets": {"url": url}})),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["secrets"], json!(["url"]));
    assert_eq!(created["type"], "postgres");
    let (code, again) = s.call(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "warehouse", "secrets": {"url": "x"}})),
    );
    assert_eq!(code, 409, "{again}");

    // The sink connects with it.
    let table = unique("conn");
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(to_postgres("load", &table, "")),
    );
    assert_eq!(rows_after(&s, &acme, "load", &table), 40);
    let listed = s.ok("GET", "/v1/connections", Some(&acme), None);
    assert_eq!(listed["connections"][0]["used_by"], json!(["load"]));

    // Nothing the API answers, and nothing in the catalog file, holds it.
    for path in [
        "/v1/connections",
        "/v1/connections/warehouse",
        "/v1/pipelines/load",
        "/v1/pipelines/load/status",
        "/v1/pipelines/load/logs",
    ] {
        let v = s.ok("GET", path, Some(&acme), None).to_string();
        assert!(!v.contains(&password), "{path} shows the password: {v}");
    }
    let catalog = std::fs::read(dir.path().join("data/catalog.redb")).expect("catalog");
    assert!(
        !catalog
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the catalog holds the password in the clear"
    );

    // The pipeline may not keep the password and choose the host.
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&acme),
        Some(to_postgres(
            "steal",
            &table,
            "    url: \"postgres://postgres@203.0.113.9/x\"\n",
        )),
    );
    assert_eq!(code, 400, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("steal.yaml:12:10: sinks.db.url: `url` comes from connection `warehouse`"),
        "{text}"
    );
    // Another tenant cannot name it; a connection for postgres is not a file's.
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&other),
        Some(to_postgres("borrow", &table, "")),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v.to_string().contains("borrow.yaml:8:17: sinks.db.connection: unknown connection `warehouse`; this tenant has no connections"),
        "{v}"
    );
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&acme),
        Some(b"name: f\nsources:\n  gen: {type: datagen, kind: people, count: 1}\nsinks:\n  o: {type: file, path: o.jsonl, connection: warehouse, inputs: [gen]}\n".to_vec()),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v.to_string().contains("f.yaml:5:46: sinks.o.connection: connection `warehouse` is for `postgres` connectors, not `file`"),
        "{v}"
    );

    // A secret echoed by a type error is struck from the diagnostic.
    s.ok(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "typo", "secrets": {"url": url, "batch_size": "sekrit-batch-9"}})),
    );
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&acme),
        Some(
            to_postgres("typo", &table, "")
                .into_iter()
                .collect::<Vec<u8>>()
                .split(|b| *b == b'\n')
                .map(|l| {
                    String::from_utf8_lossy(l).replace("connection: warehouse", "connection: typo")
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        ),
    );
    assert_eq!(code, 400, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("[secret]") && !text.contains("sekrit-batch-9"),
        "{text}"
    );

    // Hostile settings are refused, naming the setting.
    for (bad, says) in [
        (
            json!({"name": "x", "fields": {"password_file": "/etc/shadow"}}),
            "`fields.password_file` names a path on the server",
        ),
        (
            json!({"name": "x", "fields": {"tls": {"ca_file": "/etc/ssl/private/k"}}}),
            "`fields.tls.ca_file` names a path on the server",
        ),
        (
            json!({"name": "x", "files": {"password": "p"}}),
            "`files.password`: a file's setting names a file",
        ),
        (
            json!({"name": "x", "secrets": {"inputs": "[a]"}}),
            "`inputs` belongs in the pipeline file",
        ),
        (
            json!({"name": "x", "type": "kafka"}),
            "connector type `kafka` is not granted",
        ),
        (
            json!({"name": "x", "secrets": {"big": "x".repeat(70_000)}}),
            "`secrets.big` is 70000 bytes; a value is at most 65536",
        ),
        (json!({"name": "../x"}), "invalid name `../x`"),
    ] {
        let (code, v) = s.call("POST", "/v1/connections", Some(&acme), body(bad.clone()));
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{bad}: {v}"
        );
    }
    let (code, v) = s.call("GET", "/v1/connections/warehouse", Some(&other), None);
    assert_eq!(code, 404, "{v}");

    // In use, it stays; the server restarted, the key still opens it.
    let (code, v) = s.call("DELETE", "/v1/connections/warehouse", Some(&acme), None);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("used by pipeline(s) load"),
        "{v}"
    );
    s.terminate();
    let s = Server::start(dir.path());
    let second = unique("conn");
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(to_postgres("again", &second, "")),
    );
    assert_eq!(rows_after(&s, &acme, "again", &second), 40);
    for name in ["load", "again"] {
        s.ok(
            "DELETE",
            &format!("/v1/pipelines/{name}"),
            Some(&acme),
            None,
        );
    }
    s.ok("DELETE", "/v1/connections/warehouse", Some(&acme), None);
    let (code, _) = s.call("GET", "/v1/connections/warehouse", Some(&acme), None);
    assert_eq!(code, 404);
}

#[test]
fn a_secret_in_a_diagnostic_status_or_log_line_is_struck() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"postgres\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    // A URL that does not parse is refused at validation by a message that
    // quotes it: the quote is struck.
    let secret = "pw-9f2c7e1d-not-a-url";
    s.ok(
        "POST",
        "/v1/connections",
        Some(&acme),
        body(json!({"name": "warehouse", "secrets": {"url": secret}})),
    );
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(to_postgres("broken", "t", "")),
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["diagnostics"],
        json!(["broken.yaml:8:17: sinks.db.url: `[secret]` is not a postgres:// or postgresql:// URL; expected e.g. `postgres://user:password@host:port/database`"])
    );
    // A sink that cannot connect fails after its retries; its status, its
    // log lines and the server's log hold no password.
    let password = "pw-77aa88bb99";
    s.ok(
        "PUT",
        "/v1/connections/warehouse",
        Some(&acme),
        body(json!({"secrets": {"url": format!("postgres://bob:{password}@127.0.0.1:1/db")}})),
    );
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(to_postgres(
            "broken",
            "t",
            "    max_retries: 1\n    initial_backoff_ms: 10\n",
        )),
    );
    let status = s.wait_for(&acme, "broken", "failed", |v| {
        v["status"]["state"] == "failed"
    });
    let error = status["status"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{status}"
    );
    let logs = s
        .ok("GET", "/v1/pipelines/broken/logs", Some(&acme), None)
        .to_string();
    assert!(logs.contains("127.0.0.1:1"), "{logs}");
    for text in [status.to_string(), logs, Server::log_of(dir.path())] {
        assert!(!text.contains(password), "{text}");
    }
}

#[test]
fn the_remote_cli_sets_lists_and_removes_a_connection_reading_secrets_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\", \"postgres\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let secret_file = dir.path().join("url.secret");
    std::fs::write(&secret_file, "postgres://u:cli-secret-123@db:5432/x\n").expect("secret");
    let cli = |args: &[&str]| {
        crate::support::sluice()
            .args(["--server", &s.url])
            .args(args)
            .env("SLUICE_TOKEN", &acme)
            .output()
            .expect("sluice runs")
    };
    let set = cli(&[
        "connection",
        "set",
        "warehouse",
        "--type",
        "postgres",
        "--field",
        "batch_size=50",
        "--secret",
        &format!("url=@{}", secret_file.display()),
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let ls = cli(&["connection", "ls"]);
    let out = String::from_utf8_lossy(&ls.stdout).to_string();
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("warehouse")
            && row.contains("postgres")
            && row.contains("batch_size, url (secret)"),
        "{out}"
    );
    let show = cli(&["connection", "show", "warehouse"]);
    let shown = String::from_utf8_lossy(&show.stdout).to_string();
    assert!(
        shown.contains("\"batch_size\": 50") && !shown.contains("cli-secret-123"),
        "{shown}"
    );
    let literal = cli(&[
        "connection",
        "set",
        "x",
        "--secret",
        "url=postgres://u:p@h/d",
    ]);
    assert!(!literal.status.success());
    let err = String::from_utf8_lossy(&literal.stderr).to_string();
    assert!(err.contains("give the secret as url=@FILE"), "{err}");
    let rm = cli(&["connection", "rm", "warehouse"]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let (code, _) = s.call("GET", "/v1/connections/warehouse", Some(&acme), None);
    assert_eq!(code, 404);
}
