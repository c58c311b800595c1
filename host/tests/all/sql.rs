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
    (
        "MONGO_URL",
        "mongodb://127.0.0.1:27017/?directConnection=true",
    ),
    ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
    ("ES_URL", "http://127.0.0.1:9200"),
    ("S3_BUCKET", "lake"),
    ("S3_URL", "http://127.0.0.1:9000"),
];

#[test]
fn explain_of_the_reference_files_is_a_pipeline_that_validate_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, summary) in [
        (
            "logistics",
            "ok (3 source(s), 5 stage(s), 1 sink(s), 1 table(s))",
        ),
        ("youth", "ok (1 source(s), 3 stage(s), 2 sink(s))"),
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

/// Runs `sluice sql FILE` in `dir` with the built plugins and its state
/// under `dir`, for the tests over files.
fn run_sql_over_files(dir: &Path, sql: &Path) {
    run_ok(
        sluice()
            .arg("sql")
            .arg(sql)
            .arg("--data-dir")
            .arg(dir.join("state"))
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .current_dir(dir),
    );
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
    assert!(
        stderr.contains("2 problem(s) found; nothing was run"),
        "{stderr}"
    );
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

/// `logistics.sql` as written, with only its `${…}` values filled in, against
/// the services of the YAML example's test: the index equals
/// `expected/shipped_orders.jsonl`.
#[test]
fn logistics_sql_end_to_end_gives_the_expected_index() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use crate::logistics::{by_pair, es_docs, expected};
    use crate::postgres_cdc::Pg;

    let es = service("SLUICE_ES_URL", "search");
    let mongo = service("SLUICE_MONGO_URL", "mongo");
    // The file names its slot (the default `sluice_<connector>`), database
    // and index: clear what an earlier run left.
    let slot = "sluice_customers_reader";
    let pg = Pg::fresh("logistics_sql");
    let drop_slot = format!(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'"
    );
    pg.exec(&drop_slot);
    pg.exec(&std::fs::read_to_string(fixture("seed-logistics/postgres.sql")).expect("sql"));
    let _ = ureq::delete(&format!("{es}/shipped_orders")).call();
    // pymongo from the service's venv, as the YAML example's test loads it.
    let python = std::env::var("SLUICE_MONGO_PYTHON").unwrap_or_else(|_| {
        let tools = std::env::var("SLUICE_TOOLS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/sluice-tools",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        format!("{tools}/services/mongo-venv/bin/python")
    });
    let load = Command::new(&python)
        .arg("-c")
        .arg(
            "import json,sys,pymongo\nc=pymongo.MongoClient(sys.argv[1])\nc.drop_database('logistics')\nd=c['logistics']\nfor coll,path in (('orders',sys.argv[2]),('shipments',sys.argv[3])):\n    d[coll].insert_many([json.loads(l) for l in open(path) if l.strip()])\n",
        )
        .arg(&mongo)
        .arg(fixture("seed-logistics/orders.jsonl"))
        .arg(fixture("seed-logistics/shipments.jsonl"))
        .output()
        .expect("python with pymongo");
    assert!(
        load.status.success(),
        "loading MongoDB: {}",
        String::from_utf8_lossy(&load.stderr)
    );

    // postgres://user:password@host:port/db
    let rest = pg.url.trim_start_matches("postgres://");
    let (auth, addr) = rest.split_once('@').expect("credentials");
    let (user, password) = auth.split_once(':').expect("password");
    let (hostport, db) = addr.split_once('/').expect("database");
    let (host, port) = hostport.split_once(':').expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut child = sluice()
        .arg("sql")
        .arg(fixture("seed-logistics/ksql/logistics.sql"))
        .arg("--no-progress")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"))
        .env("PG_HOST", host)
        .env("PG_PORT", port)
        .env("PG_USER", user)
        .env("PG_PASSWORD", password)
        .env("PG_DB", db)
        .env("MONGO_URL", &mongo)
        .env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")
        .env("ES_URL", &es)
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("spawn");
    let want = expected();
    let deadline = Instant::now() + Duration::from_secs(90);
    let docs = loop {
        let _ = ureq::post(&format!("{es}/shipped_orders/_refresh")).send_empty();
        let docs = es_docs(&es, "shipped_orders");
        if docs.len() >= want.len() {
            break docs;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!(
                "{} of {} documents after 90 s; log:\n{}",
                docs.len(),
                want.len(),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(exit.success(), "graceful stop: {logged}");
    // Read again after the graceful stop, which drains what was in flight: a
    // wrong extra document would be there now (no settling sleep needed).
    let _ = ureq::post(&format!("{es}/shipped_orders/_refresh")).send_empty();
    let after_stop = es_docs(&es, "shipped_orders");
    assert_eq!(
        after_stop.len(),
        docs.len(),
        "nothing more after the stop: log:\n{logged}"
    );
    let docs = after_stop;
    assert_eq!(by_pair(&docs), want, "log:\n{logged}");
    pg.exec(&drop_slot);
}

/// `youth.sql` as written against PostgreSQL (polled) and the S3 service:
/// the latest count per category and 30-second window equals what the YAML
/// example's test computes from the same rows, and `jovens` holds exactly the
/// people born since 2000.
#[test]
fn youth_sql_end_to_end_counts_like_the_yaml_example() {
    use std::collections::BTreeMap;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use crate::postgres_cdc::Pg;
    use crate::s3::{get, list, new_bucket, s3_url};
    use serde_json::Value;

    let s3 = s3_url();
    let bucket = new_bucket("youth-sql");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let customers = json_lines(&root.join("examples/youth/customers.jsonl"));
    let pg = Pg::fresh("youth_sql");
    pg.exec("CREATE TABLE customers (id int PRIMARY KEY, nome text, nascimento date, dt_update timestamp)");
    for c in &customers {
        pg.exec(&format!(
            "INSERT INTO customers VALUES ({}, '{}', '{}', '{}')",
            c["id"],
            c["nome"].as_str().expect("nome"),
            c["nascimento"].as_str().expect("nascimento"),
            c["dt_update"].as_str().expect("dt_update")
        ));
    }
    // What the YAML example's test expects: (30 s window of the day, category) -> count.
    let mut expected: BTreeMap<(i64, String), u64> = BTreeMap::new();
    let mut jovens = Vec::new();
    for c in &customers {
        let born = c["nascimento"].as_str().expect("nascimento");
        let cat = if born >= "2000-01-01" {
            "JOVEM"
        } else {
            "ADULTO"
        };
        if cat == "JOVEM" {
            jovens.push(c["nome"].clone());
        }
        let t = c["dt_update"].as_str().expect("dt_update");
        let secs: i64 = t[11..13].parse::<i64>().expect("h") * 3600
            + t[14..16].parse::<i64>().expect("m") * 60
            + t[17..19].parse::<i64>().expect("s");
        *expected.entry((secs / 30, cat.to_string())).or_default() += 1;
    }

    let rest = pg.url.trim_start_matches("postgres://");
    let (auth, addr) = rest.split_once('@').expect("credentials");
    let (user, password) = auth.split_once(':').expect("password");
    let (hostport, db) = addr.split_once('/').expect("database");
    let (host, port) = hostport.split_once(':').expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut child = sluice()
        .arg("sql")
        .arg(fixture("seed-logistics/ksql/youth.sql"))
        .arg("--no-progress")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"))
        .env("PG_HOST", host)
        .env("PG_PORT", port)
        .env("PG_USER", user)
        .env("PG_PASSWORD", password)
        .env("PG_DB", db)
        .env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")
        .env("S3_BUCKET", &bucket)
        .env("S3_URL", &s3)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("spawn");
    let rows = |prefix: &str| -> Vec<Value> {
        list(&bucket)
            .iter()
            .filter(|k| k.starts_with(prefix))
            .flat_map(|k| {
                String::from_utf8_lossy(&get(&bucket, k))
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // Objects close at flush.size (5) and at checkpoints (every second):
    // wait until every row is out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if rows("topics/jovens/").len() >= jovens.len()
            && rows("topics/idadecont/").len() >= customers.len()
        {
            break;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!(
                "rows did not arrive in 60 s: {:?}; log:\n{}",
                list(&bucket),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(exit.success(), "graceful stop: {logged}");

    // EMIT CHANGES: one result per event; the latest per window and
    // category is the table's value.
    let counts = rows("topics/idadecont/");
    assert_eq!(
        counts.len(),
        customers.len(),
        "one update per row: {counts:?}"
    );
    let first = counts
        .iter()
        .filter_map(|c| c["window_start"].as_i64())
        .min()
        .expect("windows");
    let day_start = first - first.rem_euclid(86_400_000);
    let mut got: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for c in &counts {
        let start = c["window_start"].as_i64().expect("start");
        assert_eq!(c["window_end"].as_i64(), Some(start + 30_000));
        let slot = got
            .entry((
                (start - day_start) / 30_000,
                c["key"].as_str().expect("key").to_string(),
            ))
            .or_default();
        *slot = (*slot).max(c["contagem"].as_u64().expect("contagem"));
    }
    assert_eq!(got, expected, "log:\n{logged}");
    let got_jovens: Vec<Value> = rows("topics/jovens/")
        .iter()
        .map(|j| j["nome"].clone())
        .collect();
    assert_eq!(got_jovens, jovens);
}

/// Casts, `LIKE`, `COUNT(col)` and a window grouped by two columns, run end to end
/// over files: the exact rows each statement writes.
#[test]
fn casts_like_count_of_a_column_and_several_group_columns_give_exact_rows() {
    use serde_json::{json, Value};

    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "readings.jsonl",
        r#"{"id":1,"n":"42","flag":"TRUE","region":"eu","tier":1,"email":"a@x","ts":1000}
{"id":2,"n":2.9,"flag":false,"region":"eu","tier":1,"email":null,"ts":2000}
{"id":3,"n":"abc","flag":"yes","region":"eu","tier":2,"ts":3000}
{"id":4,"n":"1000","flag":true,"region":"us","tier":1,"email":"d@x","ts":4000}
{"id":5,"n":"1","flag":true,"region":"us","tier":1,"email":"e@x","ts":5000}
"#,
    );
    let sql = write(
        dir.path(),
        "p.sql",
        "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'readings.jsonl', 'topic' = 'readings');
CREATE STREAM readings WITH (kafka_topic = 'readings', value_format = 'JSON', timestamp = 'ts');
CREATE STREAM typed AS
  SELECT id, CAST(n AS INT) AS n_int, CAST(n AS DOUBLE) AS n_dbl, CAST(flag AS BOOLEAN) AS ok,
         CAST(id AS STRING) AS id_text, region, tier, email, ts
  FROM readings
  WHERE (CAST(n AS DOUBLE) IS NULL OR CAST(n AS BIGINT) < 100) AND region NOT LIKE 'u_'
  EMIT CHANGES;
CREATE TABLE counts AS
  SELECT region, tier, COUNT(*) AS n, COUNT(email) AS emails
  FROM typed WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY region, tier EMIT FINAL;
CREATE SINK CONNECTOR typed_out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'typed.jsonl', 'topics' = 'typed');
CREATE SINK CONNECTOR counts_out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'counts.jsonl', 'topics' = 'counts');
",
    );
    run_sql_over_files(dir.path(), &sql);
    // A value that does not convert is null; a missing column stays missing.
    assert_eq!(
        json_lines(&dir.path().join("typed.jsonl")),
        vec![
            json!({"id":1,"n_int":42,"n_dbl":42.0,"ok":true,"id_text":"1","region":"eu","tier":1,"email":"a@x","ts":1000}),
            json!({"id":2,"n_int":2,"n_dbl":2.9,"ok":false,"id_text":"2","region":"eu","tier":1,"email":null,"ts":2000}),
            json!({"id":3,"n_int":null,"n_dbl":null,"ok":null,"id_text":"3","region":"eu","tier":2,"ts":3000}),
        ]
    );
    // Windows that close together come in no promised order.
    let by_group = |v: &Value| (v["region"].to_string(), v["tier"].as_i64());
    let mut counts = json_lines(&dir.path().join("counts.jsonl"));
    counts.sort_by_key(by_group);
    let row = |region: &str, tier: i64, n: i64, emails: i64| {
        json!({"key":{"region":region,"tier":tier},"region":region,"tier":tier,
               "window_start":0,"window_end":10000,"n":n,"emails":emails})
    };
    let mut want = vec![row("eu", 1, 2, 1), row("eu", 2, 1, 0)];
    want.sort_by_key(by_group);
    assert_eq!(counts, want);
}

/// Issue 19: names that need quoting reach the join and the window as the
/// fields they name, and HAVING filters the window's results (an aggregate
/// or group value only HAVING reads is computed, then dropped).
#[test]
fn having_and_a_group_column_with_a_space_give_exact_rows() {
    use serde_json::{json, Value};

    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "sales.jsonl",
        r#"{"id":1,"my region":"eu west","unit price":10,"ts":1000}
{"id":2,"my region":"eu west","unit price":5,"ts":2000}
{"id":3,"my region":"us","unit price":7,"ts":3000}
{"id":4,"my region":"ap","unit price":1,"ts":4000}
{"id":5,"my region":"ap","unit price":200,"ts":5000}
{"id":6,"my region":"eu west","unit price":1,"ts":12000}
{"id":7,"my region":"eu west","unit price":2,"ts":13000}
"#,
    );
    write(
        dir.path(),
        "regions.jsonl",
        r#"{"region id":"eu west","name":"Europe West"}
{"region id":"us","name":"United States"}
"#,
    );
    let sql = write(
        dir.path(),
        "p.sql",
        "CREATE SOURCE CONNECTOR sales_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'sales.jsonl', 'topic' = 'sales');
CREATE SOURCE CONNECTOR regions_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'regions.jsonl', 'topic' = 'regions');
CREATE STREAM sales WITH (kafka_topic = 'sales', value_format = 'JSON', timestamp = 'ts');
CREATE STREAM region_rows WITH (kafka_topic = 'regions', value_format = 'JSON');
CREATE TABLE region_names AS
  SELECT `region id`, LATEST_BY_OFFSET(name) AS name FROM region_rows GROUP BY `region id`;
CREATE STREAM named AS
  SELECT s.id, s.`my region`, s.`unit price`, s.ts, r.name AS `region name`
  FROM sales s LEFT JOIN region_names r ON s.`my region` = r.`region id`;
CREATE TABLE busy AS
  SELECT `my region`, WINDOWSTART AS ws, COUNT(*) AS n, SUM(`unit price`) AS `total, eur`
  FROM named WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY `my region`
  HAVING COUNT(*) > 1 AND MAX(`unit price`) < 100 OR `my region` = 'us' EMIT FINAL;
CREATE SINK CONNECTOR named_out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'named.jsonl', 'topics' = 'named');
CREATE SINK CONNECTOR busy_out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'busy.jsonl', 'topics' = 'busy');
",
    );
    run_sql_over_files(dir.path(), &sql);
    let row = |id: i64, region: &str, price: i64, ts: i64, name: Value| json!({"id":id,"my region":region,"unit price":price,"ts":ts,"region name":name});
    assert_eq!(
        json_lines(&dir.path().join("named.jsonl")),
        vec![
            row(1, "eu west", 10, 1000, json!("Europe West")),
            row(2, "eu west", 5, 2000, json!("Europe West")),
            row(3, "us", 7, 3000, json!("United States")),
            row(4, "ap", 1, 4000, Value::Null),
            row(5, "ap", 200, 5000, Value::Null),
            row(6, "eu west", 1, 12000, json!("Europe West")),
            row(7, "eu west", 2, 13000, json!("Europe West")),
        ]
    );
    // `ap` has a sale of 200, `us` one sale but its own clause.
    let mut busy = json_lines(&dir.path().join("busy.jsonl"));
    busy.sort_by_key(|v| (v["window_start"].as_i64(), v["key"].to_string()));
    assert_eq!(
        busy,
        vec![
            json!({"key":"eu west","window_start":0,"window_end":10000,"ws":0,"n":2,"total, eur":15.0}),
            json!({"key":"us","window_start":0,"window_end":10000,"ws":0,"n":1,"total, eur":7.0}),
            json!({"key":"eu west","window_start":10000,"window_end":20000,"ws":10000,"n":2,"total, eur":3.0}),
        ]
    );
}

/// PARTITION BY re-keys events: a table declared over the re-keyed topic,
/// keyed by the event key, finds rows by the new key.
#[test]
fn partition_by_re_keys_events_for_a_table_keyed_by_the_event_key() {
    use serde_json::json;

    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "sales.jsonl",
        r#"{"id":1,"region":"EU"}
{"id":2,"region":"US"}
{"id":3,"region":"us"}
{"id":4,"region":"AP"}
"#,
    );
    write(
        dir.path(),
        "regions.jsonl",
        r#"{"code":"eu","name":"Europe","size":-1}
{"code":"us","name":"United States","size":5}
{"code":"ap","name":"Asia Pacific","size":0}
"#,
    );
    let sql = write(
        dir.path(),
        "p.sql",
        "CREATE SOURCE CONNECTOR sales_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'sales.jsonl', 'topic' = 'sales');
CREATE SOURCE CONNECTOR regions_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'regions.jsonl', 'topic' = 'regions');
CREATE STREAM sales WITH (kafka_topic = 'sales', value_format = 'JSON');
CREATE STREAM region_rows WITH (kafka_topic = 'regions', value_format = 'JSON');
CREATE STREAM by_code AS
  SELECT name FROM region_rows WHERE size >= 0 PARTITION BY UCASE(code);
CREATE TABLE regions WITH (kafka_topic = 'by_code', value_format = 'JSON');
CREATE STREAM named AS
  SELECT s.id, r.name AS region_name FROM sales s LEFT JOIN regions r ON s.region = r.code;
CREATE SINK CONNECTOR named_out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'named.jsonl', 'topics' = 'named');
",
    );
    run_sql_over_files(dir.path(), &sql);
    // The table's keys are `US` and `AP`, which no field holds (`eu` is
    // filtered out first); the join looks the sale's `region` up as written.
    assert_eq!(
        json_lines(&dir.path().join("named.jsonl")),
        vec![
            json!({"id":1,"region_name":null}),
            json!({"id":2,"region_name":"United States"}),
            json!({"id":3,"region_name":null}),
            json!({"id":4,"region_name":"Asia Pacific"}),
        ]
    );
}

#[test]
fn explain_with_kafka_prints_kafka_edges_that_validate_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("orders.jsonl"), "{\"id\":1}\n").expect("write");
    let sql = write(
        dir.path(),
        "edges.sql",
        "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE STREAM orders WITH (kafka_topic = 'orders');
CREATE STREAM mid AS SELECT id, amount * 2 AS doubled FROM orders WHERE amount > 1;
CREATE STREAM big AS SELECT id FROM mid WHERE doubled > 20;
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'out.jsonl', 'topics' = 'big');
",
    );
    let out = run_ok(
        sluice()
            .arg("sql")
            .arg(&sql)
            .args(["--explain", "--kafka", "${BROKERS}"]),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "  mid_from_kafka:\n    type: kafka\n    brokers: \"${BROKERS}\"\n    topics: [mid]\n    group_id: sluice-edges\n",
        "  mid_to_kafka:\n    type: kafka\n    inputs: [mid]\n",
        "    inputs: [big_from_kafka]\n    path: out.jsonl\n",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let yaml = write(dir.path(), "edges.yaml", &text);
    // Validation reads no broker: an address nothing listens on will do.
    let out = run_ok(
        sluice()
            .arg("validate")
            .arg(&yaml)
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .env("BROKERS", "127.0.0.1:1"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (3 source(s), 2 stage(s), 3 sink(s))"),
        "{stdout}"
    );
    // The shell keeps its topics in the process.
    let stderr = run_failing(sluice().args(["sql", "--kafka", "127.0.0.1:1"]));
    assert!(
        stderr.contains("--kafka needs a statement file"),
        "{stderr}"
    );
}
