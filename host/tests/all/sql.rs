//! `sluice sql`: the reference ksqlDB files compile to pipelines that
//! `sluice validate` accepts, and a file with errors runs nothing.

use std::path::Path;

use crate::support::*;

/// Values for every `${VAR}` of the reference files (nothing connects:
/// validation does not).
const ENV: &[(&str, &str)] = &[
    ("PG_HOST", "127.0.0.1"),
    ("PG_PORT", "5432"),
    ("PG_USER", "postgres"),
    ("PG_PASSWORD", "postgres"),
    ("PG_DB", "postgres"),
    ("MONGO_URL", "mongodb://127.0.0.1:27017/?directConnection=true"),
    ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
    ("ES_URL", "http://127.0.0.1:9200"),
    ("S3_BUCKET", "lake"),
    ("S3_URL", "http://127.0.0.1:9000"),
];

#[test]
fn explain_of_the_reference_files_is_a_pipeline_that_validate_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, summary) in [
        ("logistics", "ok (3 source(s), 5 stage(s), 1 sink(s), 1 table(s))"),
        ("youth", "ok (1 source(s), 4 stage(s), 1 sink(s))"),
    ] {
        let sql = fixture(&format!("seed-logistics/ksql/{file}.sql"));
        let out = run_ok(sluice().arg("sql").arg(&sql).arg("--explain"));
        let yaml = dir.path().join(format!("{file}.yaml"));
        std::fs::write(&yaml, &out.stdout).expect("write");
        let mut validate = sluice();
        validate
            .arg("validate")
            .arg(&yaml)
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"));
        for (k, v) in ENV {
            validate.env(k, v);
        }
        let out = run_ok(&mut validate);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(summary), "{file}: {stdout}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn a_file_with_any_error_runs_nothing_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "bad.sql",
        "CREATE SOURCE CONNECTOR src WITH (
    'connector.class' = 'io.confluent.connect.jdbc.JdbcSourceConnector',
    'connection.url' = 'jdbc:postgresql://127.0.0.1:1/db', 'mode' = 'incrementing',
    'incrementing.column.name' = 'id', 'table.whitelist' = 'events');
CREATE STREAM events WITH (kafka_topic = 'events');
CREATE STREAM big AS SELECT * FROM evnts WHERE amount > 10;
CREATE SINK CONNECTOR out WITH (
    'connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
    'connection.url' = 'http://127.0.0.1:1', 'topics' = 'big', 'key.ignor' = 'true');
",
    );
    let state = dir.path().join("state");
    let stderr = run_failing(sluice().arg("sql").arg(&bad).arg("--data-dir").arg(&state));
    assert!(
        stderr.contains("bad.sql:6:36: unknown stream or table `evnts` (did you mean `events`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.sql:9:64: unknown property `key.ignor`"),
        "{stderr}"
    );
    assert!(stderr.contains("(did you mean `key.ignore`?)"), "{stderr}");
    assert!(stderr.contains("2 problem(s) found; nothing was run"), "{stderr}");
    assert!(!state.exists(), "nothing ran, so no state was written");
}

#[test]
fn problems_of_the_compiled_pipeline_point_at_their_statement() {
    // Every ${VAR} but PG_USER: the loader's error is about the source the
    // first statement compiled to, and names that statement's line.
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = fixture("seed-logistics/ksql/logistics.sql");
    let mut cmd = sluice();
    cmd.arg("sql")
        .arg(&sql)
        .arg("--data-dir")
        .arg(dir.path().join("state"))
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"));
    for (k, v) in ENV {
        if *k != "PG_USER" {
            cmd.env(k, v);
        }
    }
    cmd.env_remove("PG_USER");
    let stderr = run_failing(&mut cmd);
    assert!(
        stderr.contains("logistics.sql:4:25: CREATE SOURCE CONNECTOR customers_reader"),
        "{stderr}"
    );
    assert!(stderr.contains("PG_USER"), "{stderr}");
    assert!(!dir.path().join("state").exists());
}
