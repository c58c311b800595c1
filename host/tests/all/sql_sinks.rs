//! The `postgres` and `mysql` sinks against real PostgreSQL 15 and MariaDB 10.11
//! (see `sqldb.rs`). Each behaviour is checked on both databases.

use std::time::Duration;

use crate::sqldb::{unique, Kind};
use crate::support::*;

/// Debezium-style change events (unwrapped by the `unwrap` plugin) with the
/// row id as the event key: creates, an update of key 1, a delete of key 2 and
/// a row with a field the table does not have yet.
const CHANGES: &str = r#"{"id":1,"op":"c","after":{"id":1,"name":"ann","score":1.5}}
{"id":2,"op":"c","after":{"id":2,"name":"bob","score":2}}
{"id":3,"op":"c","after":{"id":3,"name":"cy","score":3}}
{"id":1,"op":"u","after":{"id":1,"name":"ann2","score":4.5}}
{"id":2,"op":"d","before":{"id":2}}
{"id":4,"op":"c","after":{"id":4,"name":"dee","score":5,"city":"Lisbon"}}
"#;

fn upsert_delete_and_evolve(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("sink_users");
    let input = dir.path().join("changes.jsonl");
    std::fs::write(&input, CHANGES).expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 2\nsources:\n  cdc: {{type: file, path: {}, key_field: id}}\nstages:\n  rows: {{plugin: {}, inputs: [cdc]}}\nsinks:\n  db:\n    type: {}\n    inputs: [rows]\n    url: {}\n    table: {table}\n    mode: upsert\n    key_fields: [id]\n    batch_size: 3\n",
            q(&input),
            q(&plugin("unwrap")),
            kind.sink_type(),
            kind.url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let t = kind.q(&table);
    assert_eq!(
        kind.flat(&format!(
            "SELECT id, name, score, city FROM {t} ORDER BY id"
        )),
        vec!["1|ann2|4.5|∅", "3|cy|3|∅", "4|dee|5|Lisbon"],
        "upsert updated key 1, the tombstone deleted key 2, and `city` was added"
    );
    let cols = kind.columns(&table);
    assert!(cols.contains(&"city".to_string()), "{cols:?}");

    // A rerun from scratch (new state dir) replays the same changes: upserts
    // and deletes are idempotent, so the table ends up the same.
    std::fs::remove_dir_all(dir.path().join(".sluice")).expect("remove state");
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(
        kind.flat(&format!("SELECT id, name FROM {t} ORDER BY id")),
        vec!["1|ann2", "3|cy", "4|dee"]
    );
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn postgres_sink_upserts_deletes_on_tombstones_and_adds_columns() {
    upsert_delete_and_evolve(Kind::Postgres);
}

#[test]
fn mysql_sink_upserts_deletes_on_tombstones_and_adds_columns() {
    upsert_delete_and_evolve(Kind::Mysql);
}

fn insert_mode_creates_the_table_from_the_fields(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("sink_plain");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"n\":1,\"ok\":true,\"x\":0.25,\"s\":\"a\",\"tags\":[\"p\",\"q\"]}\n{\"n\":2,\"ok\":false,\"x\":1,\"s\":\"b\",\"tags\":{\"k\":1}}\n{\"n\":2,\"ok\":null,\"x\":null,\"s\":null,\"tags\":null}\n",
    )
    .expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  db: {{type: {}, inputs: [in], url: \"{}\", table: {table}}}\n",
            q(&input),
            kind.sink_type(),
            kind.url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let t = kind.q(&table);
    let rows = kind.flat(&format!("SELECT n, s FROM {t} ORDER BY n, s"));
    assert_eq!(rows.len(), 3, "insert mode keeps duplicates of n: {rows:?}");
    // Column types as documented: bigint, boolean, double, text, json.
    let types = match kind {
        Kind::Postgres => kind.flat(&format!(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}' ORDER BY column_name"
        )),
        Kind::Mysql => kind.flat(&format!(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY COLUMN_NAME"
        )),
    };
    let want: Vec<&str> = match kind {
        Kind::Postgres => vec![
            "n|bigint",
            "ok|boolean",
            "s|text",
            "tags|jsonb",
            "x|double precision",
        ],
        Kind::Mysql => vec![
            "n|bigint",
            "ok|tinyint",
            "s|longtext",
            "tags|longtext",
            "x|double",
        ],
    };
    assert_eq!(types, want);
    let json = kind.flat(&format!("SELECT tags FROM {t} WHERE n = 1"));
    let v: serde_json::Value = serde_json::from_str(&json[0]).expect("tags is JSON");
    assert_eq!(v, serde_json::json!(["p", "q"]));
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn postgres_sink_creates_the_table_with_inferred_types() {
    insert_mode_creates_the_table_from_the_fields(Kind::Postgres);
}

#[test]
fn mysql_sink_creates_the_table_with_inferred_types() {
    insert_mode_creates_the_table_from_the_fields(Kind::Mysql);
}

fn refused_rows_are_dead_lettered(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("sink_strict");
    let t = kind.q(&table);
    kind.exec(&format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL, qty INT CHECK (qty >= 0))"
    ));
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"id\":1,\"name\":\"a\",\"qty\":1}\n",
            "{\"id\":2,\"name\":\"b\",\"qty\":-5}\n",
            "{\"id\":1,\"name\":\"dup\",\"qty\":1}\n",
            "{\"id\":4,\"name\":\"d\",\"qty\":\"lots\"}\n",
            "{\"id\":5,\"name\":\"e\",\"qty\":2}\n",
            "{\"id\":6,\"name\":\"f\",\"qty\":1,\"extra\":1}\n",
            "{\"id\":7,\"name\":null,\"qty\":1}\n",
        ),
    )
    .expect("write");
    let dead = dir.path().join("dead.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  db:\n    type: {}\n    inputs: [in]\n    url: {}\n    table: {table}\n    auto_evolve: false\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            kind.sink_type(),
            kind.url(),
            q(&dead)
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        kind.flat(&format!("SELECT id, name, qty FROM {t} ORDER BY id")),
        vec!["1|a|1", "5|e|2"],
        "the rows the database accepts are written"
    );
    let letters = json_lines(&dead);
    let reason_of = |id: i64| -> String {
        let d = letters
            .iter()
            .find(|d| d["value"]["id"] == id && d["value"]["name"] != "a")
            .unwrap_or_else(|| panic!("row {id} is dead-lettered: {letters:?}\n{stdout}"));
        assert_eq!(d["headers"]["sluice.error.kind"], "sink");
        assert_eq!(d["headers"]["sluice.error.stage"], "db");
        d["headers"]["sluice.error.message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(letters.len(), 5, "{letters:#?}");
    let (check, dup, bad_int, not_null) = match kind {
        Kind::Postgres => (
            "violates check constraint",
            "duplicate key value",
            "invalid input syntax for type integer",
            "violates not-null constraint",
        ),
        Kind::Mysql => (
            "CONSTRAINT",
            "Duplicate entry",
            "Incorrect integer value",
            "cannot be null",
        ),
    };
    assert!(reason_of(2).contains(check), "{}", reason_of(2));
    let dup_reason = letters
        .iter()
        .find(|d| d["value"]["name"] == "dup")
        .and_then(|d| d["headers"]["sluice.error.message"].as_str())
        .unwrap_or_default();
    assert!(dup_reason.contains(dup), "{dup_reason}");
    assert!(reason_of(4).contains(bad_int), "{}", reason_of(4));
    assert!(
        reason_of(6).contains("has no column `extra`"),
        "{}",
        reason_of(6)
    );
    assert!(reason_of(7).contains(not_null), "{}", reason_of(7));
    assert!(reason_of(4).contains(&table), "the reason names the table");
    kind.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn postgres_sink_dead_letters_refused_rows_with_the_database_message() {
    refused_rows_are_dead_lettered(Kind::Postgres);
}

#[test]
fn mysql_sink_dead_letters_refused_rows_with_the_database_message() {
    refused_rows_are_dead_lettered(Kind::Mysql);
}

/// `url` with its password replaced.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("url has a scheme");
    let (creds, host) = rest.split_once('@').expect("url has credentials");
    let user = creds.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:{password}@{host}")
}

fn bad_connection_fails_before_anything_runs(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":1}\n").expect("write");
    let out_file = dir.path().join("out.jsonl");
    let run = |url: &str| {
        let p = write_pipeline(
            dir.path(),
            &format!(
                "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  db: {{type: {}, inputs: [in], url: \"{url}\", table: never_written, connect_timeout_ms: 2000}}\n  copy: {{type: file, inputs: [in], path: {}}}\n",
                q(&input),
                kind.sink_type(),
                q(&out_file)
            ),
        );
        run_failing(sluice().arg("run").arg(&p).arg("--no-progress"))
    };
    let err = run(&with_password(&kind.url(), "wrong-password"));
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains("wrong-password"),
        "never print the password: {err}"
    );
    let scheme = kind
        .url()
        .split("://")
        .next()
        .unwrap_or_default()
        .to_string();
    let err = run(&format!("{scheme}://etl:etl@127.0.0.1:1/etl"));
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let written = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(written.is_empty(), "nothing ran: {written}");
}

#[test]
fn postgres_sink_bad_credentials_or_unreachable_server_fail_at_start() {
    bad_connection_fails_before_anything_runs(Kind::Postgres);
}

#[test]
fn mysql_sink_bad_credentials_or_unreachable_server_fail_at_start() {
    bad_connection_fails_before_anything_runs(Kind::Mysql);
}

#[test]
fn sql_sink_config_mistakes_are_reported_by_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  in: {type: stdin}\nsinks:\n  a: {type: mysql, inputs: [in], url: \"postgres://u:secret@h/db\"}\n  b: {type: postgres, inputs: [in], url: \"postgres://h/db\", mode: upsert}\n  c: {type: postgres, inputs: [in], url: \"postgres://h/db\", mode: merge}\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("sinks.a.url") && err.contains("not a mysql:// or mariadb:// URL"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(
        err.contains("sinks.b.key_fields") && err.contains("required with `mode: upsert`"),
        "{err}"
    );
    assert!(
        err.contains("sinks.c.mode") && err.contains("unknown value `merge`"),
        "{err}"
    );
}

#[test]
fn postgres_sink_reconnects_after_losing_its_connection_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique("sink_reconnect");
    let app = unique("sluice_test_app");
    let kind = Kind::Postgres;
    let sep = if kind.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}application_name={app}", kind.url());
    const N: i64 = 400;
    let p = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 10\ncheckpoint_interval_ms: 100\nsources:\n  gen: {{type: datagen, kind: people, count: {N}, rate: 200}}\nsinks:\n  db:\n    type: postgres\n    inputs: [gen]\n    url: \"{url}\"\n    table: {table}\n    mode: upsert\n    key_fields: [id]\n    batch_size: 20\n    initial_backoff_ms: 50\n"
        ),
    );
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let stderr = Stderr::drain(&mut child);
    let t = kind.q(&table);
    let exists = || kind.flat(&format!("SELECT to_regclass('{t}') IS NOT NULL")) == ["t"];
    // Wait until the sink has written part of the data, then cut its connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if exists() {
            let n: i64 = kind.flat(&format!("SELECT count(*) FROM {t}"))[0]
                .parse()
                .unwrap_or(0);
            if n >= 60 {
                assert!(n < N, "the run must still be going ({n} rows)");
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the sink never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = kind.flat(&format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}') k"
    ));
    assert_eq!(killed, vec!["1"], "the sink's connection was terminated");
    let status = child.wait().expect("sluice ends");
    let stderr = stderr.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("reconnecting"),
        "the retry path ran: {stderr}"
    );
    assert_eq!(
        kind.flat(&format!("SELECT count(*), count(DISTINCT id) FROM {t}")),
        vec![format!("{N}|{N}")]
    );
    kind.exec(&format!("DROP TABLE {t}"));
}
