//! The `postgres-poll` source against a real PostgreSQL 15, and the
//! `examples/users-to-lake-and-mail` pipeline end to end into a real MariaDB 10.11
//! (see `sqldb.rs`) and the S3 emulation (see `s3.rs`). Every test polls its own
//! uniquely named tables.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::sqldb::{unique, Kind};
use crate::support::*;

const PG: Kind = Kind::Postgres;

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/users-to-lake-and-mail")
}

/// `events in` of a run's summary line.
fn events_in(out: &Output) -> u64 {
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split("done: ")
        .nth(1)
        .and_then(|s| s.split(" events in").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary in: {stdout}"))
}

fn run_example(pipeline: &Path) -> Output {
    run_ok(
        sluice()
            .arg("run")
            .arg(pipeline)
            .arg("--no-progress")
            .env("SLUICE_STOP_WHEN_IDLE", "true")
            .env("SLUICE_POLL_INTERVAL_MS", "200")
            .env("SLUICE_PG_URL", PG.url())
            .env("SLUICE_MYSQL_URL", Kind::Mysql.url())
            .env("SLUICE_S3_URL", crate::s3::s3_url())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE"),
    )
}

/// The users in the lake's objects, `index|name|email|created_at` in object order,
/// and how many each object holds, by key.
fn lake_users(bucket: &str) -> (Vec<String>, Vec<(String, usize)>) {
    let mut users = Vec::new();
    let mut objects = Vec::new();
    for key in crate::s3::list(bucket) {
        let body = String::from_utf8(crate::s3::get(bucket, &key)).expect("utf-8");
        let mut n = 0;
        for line in body.lines() {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            let field = |f: &str| match &v[f] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            users.push(format!(
                "{}|{}|{}|{}",
                field("index"),
                field("name"),
                field("email"),
                field("created_at")
            ));
            n += 1;
        }
        objects.push((key, n));
    }
    (users, objects)
}

#[test]
fn users_to_lake_and_mail_example_copies_the_table_and_a_rerun_adds_only_new_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = unique("users");
    let bucket = crate::s3::new_bucket("lake");
    let seed = std::fs::read_to_string(example_dir().join("users.sql")).expect("seed sql");
    PG.exec(
        &seed
            .replace("CREATE TABLE users", &format!("CREATE TABLE {users}"))
            .replace("INSERT INTO users", &format!("INSERT INTO {users}")),
    );
    let text = std::fs::read_to_string(example_dir().join("pipeline.yaml")).expect("pipeline");
    for part in [
        "tables: [users]",
        "data_dir: ../../target/users-to-lake-and-mail/state",
        "bucket: lake ",
    ] {
        assert!(text.contains(part), "the example has `{part}`");
    }
    let text = text
        .replace("tables: [users]", &format!("tables: [{users}]"))
        .replace("bucket: lake ", &format!("bucket: {bucket} "))
        .replace(
            "data_dir: ../../target/users-to-lake-and-mail/state",
            &format!("data_dir: {}", q(&dir.path().join("state"))),
        );
    let p = write_pipeline(dir.path(), &text);
    let out = run_example(&p);
    assert_eq!(events_in(&out), 12);

    // The MySQL table is named after the stream (P_ + upper-cased table) and
    // holds exactly the seed rows.
    let my = Kind::Mysql;
    let table = format!("P_{}", users.to_uppercase());
    let t = my.q(&table);
    let expected: Vec<String> = PG.flat(&format!(
        "SELECT index, name, email, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM {users} ORDER BY index"
    ));
    assert_eq!(expected.len(), 12);
    assert_eq!(
        my.flat(&format!(
            "SELECT `index`, name, email, created_at FROM {t} ORDER BY `index`"
        )),
        expected
    );
    assert_eq!(
        my.columns(&table),
        vec!["index", "name", "email", "created_at"],
        "created on first write from the event's fields, in their order"
    );

    // The lake holds the same rows, five to an object, each object named after the
    // source and its first row's index (the source position), as Kafka Connect names
    // them.
    let object = |first: u64| format!("topics/P_USERS/partition=0/P_USERS+0+{first:010}.json");
    let (in_lake, objects) = lake_users(&bucket);
    assert_eq!(in_lake, expected);
    assert_eq!(
        objects,
        vec![(object(1), 5), (object(6), 5), (object(11), 2)]
    );

    // New rows: a rerun reads only them.
    PG.exec(&format!(
        "INSERT INTO {users} (name, email, created_at) VALUES ('Mara', 'mara@example.com', '2020-05-01 09:00:00'), ('Nuno', 'nuno@example.com', '2020-05-02 09:00:00'), ('Olga', 'olga@example.com', '2020-05-03 09:00:00')"
    ));
    let out = run_example(&p);
    assert_eq!(events_in(&out), 3, "only the new rows are read");
    let rows = my.flat(&format!("SELECT `index`, name FROM {t} ORDER BY `index`"));
    assert_eq!(rows.len(), 15, "{rows:?}");
    assert_eq!(rows[12..], ["13|Mara", "14|Nuno", "15|Olga"]);
    let (in_lake, objects) = lake_users(&bucket);
    assert_eq!(in_lake.len(), 15, "{in_lake:?}");
    assert_eq!(objects.last(), Some(&(object(13), 3)), "{objects:?}");

    // Nothing new: nothing read.
    let out = run_example(&p);
    assert_eq!(events_in(&out), 0);
    assert_eq!(lake_users(&bucket).1.len(), 4, "no new object");
    PG.exec(&format!("DROP TABLE {users}"));
    my.exec(&format!("DROP TABLE {t}"));
}

/// A pipeline polling `table` into a JSON-lines file.
fn poll_pipeline(dir: &Path, source: &str, out: &Path) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "batch_size: 2\ncheckpoint_interval_ms: 50\nsources:\n  db:\n    type: postgres-poll\n    url: {}\n    poll_interval_ms: 100\n    stop_when_idle: true\n{source}sinks:\n  out: {{type: file, inputs: [db], path: {}}}\n",
            PG.url(),
            q(out)
        ),
    )
}

fn ids(path: &Path, field: &str) -> Vec<i64> {
    json_lines(path)
        .iter()
        .map(|v| v[field].as_i64().unwrap_or(-1))
        .collect()
}

#[test]
fn incrementing_mode_resumes_after_a_restart_without_duplicates_and_maps_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = unique("poll_inc");
    PG.exec(&format!(
        "CREATE TABLE {t} (id bigserial PRIMARY KEY, name text, ok boolean, price numeric(10,2), born date, at timestamptz, tags text[], doc jsonb, raw bytea, uid uuid);
         INSERT INTO {t} (name, ok, price, born, at, tags, doc, raw, uid) VALUES
           ('a', true, 10.50, '2001-02-03', '2024-01-02 03:04:05.678+00', ARRAY['x','y'], '{{\"k\": [1, 2]}}', '\\x0102', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
         INSERT INTO {t} (name) SELECT 'n' || g FROM generate_series(2, 5) g;"
    ));
    let out = dir.path().join("out.jsonl");
    let p = poll_pipeline(
        dir.path(),
        &format!("    tables: [{t}]\n    mode: incrementing\n    incrementing_column: id\n    stream_prefix: \"postgres-\"\n"),
        &out,
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(ids(&out, "id"), vec![1, 2, 3, 4, 5]);
    let first = &json_lines(&out)[0];
    assert_eq!(
        first,
        &serde_json::json!({
            "id": 1, "name": "a", "ok": true, "price": 10.50, "born": "2001-02-03",
            "at": "2024-01-02T03:04:05.678+00:00", "tags": ["x", "y"], "doc": {"k": [1, 2]},
            "raw": "\\x0102", "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        })
    );

    // The checkpoint holds the last id; a restart reads only newer rows.
    let cp: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".sluice/p/checkpoint.json")).expect("checkpoint"),
    )
    .expect("json");
    assert_eq!(cp["sources"]["db"]["tables"][&t]["incrementing"], 5);
    PG.exec(&format!(
        "INSERT INTO {t} (name) SELECT 'm' || g FROM generate_series(6, 8) g"
    ));
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(ids(&out, "id"), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    PG.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn events_carry_the_primary_key_and_the_prefixed_stream_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = unique("poll_key");
    PG.exec(&format!(
        "CREATE TABLE {t} (seq serial, code text PRIMARY KEY, v int); INSERT INTO {t} (code, v) VALUES ('x1', 1), ('y2', 2);"
    ));
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    // The MySQL-free way to see keys and stream names: the dead letter
    // envelope of a sink that refuses everything is not needed; a file sink
    // in envelope format shows key and value.
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  db:\n    type: postgres-poll\n    url: {}\n    tables: [{t}]\n    mode: incrementing\n    incrementing_column: seq\n    stream_prefix: P_\n    stream_case: upper\n    poll_interval_ms: 100\n    stop_when_idle: true\nsinks:\n  out: {{type: file, inputs: [db], path: {}, format: envelope}}\n  pg: {{type: postgres, inputs: [db], url: {}, key_fields: [code], mode: upsert}}\ndead_letter: {{type: file, path: {}}}\n",
            PG.url(),
            q(&out),
            PG.url(),
            q(&dead)
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let events = json_lines(&out);
    let keys: Vec<&str> = events
        .iter()
        .map(|e| e["key"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(keys, vec!["x1", "y2"], "{events:?}");
    // The postgres sink's default table is the stream name: P_ + upper-cased table.
    let stream = format!("P_{}", t.to_uppercase());
    assert_eq!(
        PG.flat(&format!("SELECT code, v FROM \"{stream}\" ORDER BY code")),
        vec!["x1|1", "y2|2"]
    );
    PG.exec(&format!("DROP TABLE {t}; DROP TABLE \"{stream}\""));
}

#[test]
fn timestamp_modes_read_updated_rows_once_even_when_timestamps_tie() {
    for (mode, extra) in [
        ("timestamp", ""),
        ("timestamp+incrementing", "    incrementing_column: id\n"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = unique("poll_ts");
        // Five rows share one timestamp: more than a page (batch_size 2).
        PG.exec(&format!(
            "CREATE TABLE {t} (id serial PRIMARY KEY, v text, updated_at timestamp NOT NULL);
             INSERT INTO {t} (v, updated_at) SELECT 'same' || g, '2024-01-01 00:00:00' FROM generate_series(1, 5) g;
             INSERT INTO {t} (v, updated_at) VALUES ('later', '2024-01-02 00:00:00');"
        ));
        let out = dir.path().join("out.jsonl");
        let p = poll_pipeline(
            dir.path(),
            &format!(
                "    tables: [{t}]\n    mode: {mode}\n    timestamp_column: updated_at\n{extra}"
            ),
            &out,
        );
        run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
        let mut got = ids(&out, "id");
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6], "{mode}");

        // An update moves a row's timestamp forward: it is read again, alone.
        PG.exec(&format!(
            "UPDATE {t} SET v = 'changed', updated_at = '2024-01-03 00:00:00' WHERE id = 2"
        ));
        run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 7, "{mode}: {lines:?}");
        assert_eq!(lines[6]["id"], 2);
        assert_eq!(lines[6]["v"], "changed");
        assert_eq!(lines[6]["updated_at"], "2024-01-03T00:00:00");
        PG.exec(&format!("DROP TABLE {t}"));
    }
}

/// `mode: timestamp` reads the rows of one timestamp together (the next read
/// starts after it). A table can hold any number of them, so they are read
/// up to 100,000; past that the run stops naming the fix, where it once
/// read them all into one batch.
#[test]
fn timestamp_mode_refuses_more_tied_rows_than_it_may_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = unique("poll_tied");
    PG.exec(&format!(
        "CREATE TABLE {t} (id serial PRIMARY KEY, updated_at timestamp NOT NULL);
         INSERT INTO {t} (updated_at) SELECT '2024-01-01 00:00:00' FROM generate_series(1, 100001);"
    ));
    let out = dir.path().join("out.jsonl");
    let p = poll_pipeline(
        dir.path(),
        &format!("    tables: [{t}]\n    mode: timestamp\n    timestamp_column: updated_at\n"),
        &out,
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains(&format!(
            "table `{t}` has more than 100000 rows whose `updated_at` is 2024-01-01 00:00:00"
        )) && err.contains("use `mode: timestamp+incrementing`"),
        "{err}"
    );
    assert!(
        json_lines(&out).is_empty(),
        "nothing of the tie was written"
    );
    PG.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn missing_table_or_column_or_bad_credentials_fail_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = unique("poll_bad");
    PG.exec(&format!("CREATE TABLE {t} (id serial PRIMARY KEY)"));
    let out = dir.path().join("out.jsonl");
    let run = |url: &str, source: &str| {
        let p = write_pipeline(
            dir.path(),
            &format!(
                "sources:\n  db:\n    type: postgres-poll\n    url: \"{url}\"\n{source}sinks:\n  out: {{type: file, inputs: [db], path: {}}}\n",
                q(&out)
            ),
        );
        run_failing(sluice().arg("run").arg(&p).arg("--no-progress"))
    };
    let url = PG.url();
    let err = run(
        &url,
        "    tables: [no_such_table_here]\n    mode: incrementing\n    incrementing_column: id\n",
    );
    assert!(
        err.contains("table `no_such_table_here` does not exist"),
        "{err}"
    );
    let err = run(
        &url,
        &format!("    tables: [{t}]\n    mode: incrementing\n    incrementing_column: nope\n"),
    );
    assert!(
        err.contains(&format!("`{t}` has no column `nope`")),
        "{err}"
    );
    let wrong = url.replacen(":postgres@", ":wrong-password@", 1);
    assert_ne!(wrong, url, "the test URL has the expected password");
    let err = run(
        &wrong,
        &format!("    tables: [{t}]\n    mode: incrementing\n    incrementing_column: id\n"),
    );
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!out.exists() || std::fs::read_to_string(&out).unwrap_or_default().is_empty());
    PG.exec(&format!("DROP TABLE {t}"));
}

#[test]
fn sigkill_mid_poll_then_rerun_yields_each_row_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = unique("poll_kill");
    // Many rows in small batches through a plugin, so the kill lands mid-way.
    const N: i64 = 300_000;
    PG.exec(&format!(
        "CREATE TABLE {t} (id bigserial PRIMARY KEY, pad text);
         INSERT INTO {t} (pad) SELECT 'the quick brown fox jumps over the lazy dog' FROM generate_series(1, {N});"
    ));
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: kill\ncheckpoint_interval_ms: 50\nbatch_size: 32\nsources:\n  db:\n    type: postgres-poll\n    url: {}\n    tables: [{t}]\n    mode: incrementing\n    incrementing_column: id\n    poll_interval_ms: 100\n    stop_when_idle: ${{STOP:-false}}\nstages:\n  copy: {{plugin: {}, inputs: [db]}}\nsinks:\n  out: {{type: file, path: {}, inputs: [copy]}}\n",
            PG.url(),
            q(&plugin("passthrough")),
            q(&out)
        ),
    );
    let checkpoint = dir.path().join(".sluice/kill/checkpoint.json");
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .spawn()
        .expect("spawn");
    // Kill once a checkpoint exists and output is being written. SIGSTOP
    // first, the moment that is seen: the run is frozen where the fact held.
    wait_for(
        "a checkpoint and output",
        std::time::Duration::from_secs(60),
        || {
            let written = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            (checkpoint.exists() && written > 0).then_some(())
        },
    );
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &child.id().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success(), "kill -STOP");
    child.kill().expect("SIGKILL");
    assert!(
        !child.wait().expect("wait").success(),
        "killed, not finished"
    );
    let partial = lines(&out).len() as i64;
    assert!(partial < N, "killed before the end ({partial} lines)");

    run_ok(
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .env("STOP", "true"),
    );
    let mut seen = std::collections::HashMap::<i64, usize>::new();
    for id in ids(&out, "id") {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.values().filter(|c| **c > 1).count(), 0, "no row twice");
    assert_eq!(
        seen.len() as i64,
        N,
        "every row (killed at {partial} lines)"
    );
    PG.exec(&format!("DROP TABLE {t}"));
}

/// A backlog is read page after page without waiting for the next pass
/// (timestamp mode holds back the rows of a page's last timestamp, which
/// once made the page look short and the source wait `poll_interval_ms`),
/// and the lag counts the rows still to read: counted once, then reduced
/// by what is read until the next count, and 0 once a page comes back short.
#[test]
fn a_backlog_is_read_page_after_page_and_the_lag_counts_the_rows_left() {
    use sluice::connector::{LagUnit, Progress, Source};
    use sluice::sources::postgres_poll::{PostgresPollConfig, PostgresPollSource};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let t = unique("poll_lag");
    PG.exec(&format!(
        "CREATE TABLE {t} (id int PRIMARY KEY, at timestamptz);
         INSERT INTO {t} SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
           FROM generate_series(1, 25) g"
    ));
    let config: PostgresPollConfig = serde_json::from_value(serde_json::json!({
        "url": PG.url(), "tables": [t], "mode": "timestamp", "timestamp_column": "at",
        "poll_interval_ms": 60_000
    }))
    .expect("config");
    let progress = Arc::new(Progress::default());
    let mut source =
        PostgresPollSource::new(config, Arc::from("db"), progress.clone()).expect("source");
    source.open(None).expect("open");
    assert_eq!(
        progress.lag(),
        None,
        "nothing measured before the first read"
    );
    let started = Instant::now();
    let mut read = Vec::new();
    let mut lags = Vec::new();
    while read.iter().sum::<usize>() < 25 {
        let polled = source.poll(10).expect("poll");
        if let Some(batch) = polled.batch {
            read.push(batch.len());
            lags.push(progress.lag());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the backlog waited for the next pass: pages {read:?}"
        );
    }
    // Each full page keeps its rows before the page's last timestamp.
    assert_eq!(read, [9, 9, 7]);
    assert_eq!(
        lags,
        [
            Some((16, LagUnit::Rows)),
            Some((7, LagUnit::Rows)),
            Some((0, LagUnit::Rows))
        ]
    );
    PG.exec(&format!("DROP TABLE {t}"));
}
