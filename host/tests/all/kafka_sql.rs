//! `sluice sql --kafka`: the topics between statements are real Kafka topics.
//! A two-statement file gives the same records with and without Kafka, and
//! the intermediate topic holds the first statement's rows.

use super::*;

/// A FileStream source of `orders.jsonl`, a first stream written to
/// `mid_topic`, a second one reading it, and a FileStream sink of the second.
fn two_statements(mid_topic: &str, out_topic: &str) -> String {
    format!(
        "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE STREAM orders WITH (kafka_topic = 'orders', value_format = 'JSON');
CREATE STREAM priced WITH (kafka_topic = '{mid_topic}', value_format = 'JSON') AS
  SELECT id, region, amount * 2 AS doubled FROM orders WHERE region != 'x' EMIT CHANGES;
CREATE STREAM big WITH (kafka_topic = '{out_topic}') AS
  SELECT id, doubled FROM priced WHERE doubled > 20 EMIT CHANGES;
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'out.jsonl', 'topics' = '{out_topic}');
"
    )
}

/// Rows in the order of their numeric `field`.
fn sorted_by(field: &str, mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|r| r[field].as_u64().unwrap_or(u64::MAX));
    v
}

/// `sluice sql FILE` in `dir` with `args` (Kafka's), its log in `log`.
fn spawn_sql(
    dir: &std::path::Path,
    sql: &std::path::Path,
    args: &[&str],
    log: &std::path::Path,
) -> Run {
    Run(sluice()
        .args(["sql", "--no-progress"])
        .arg(sql)
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("state"))
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn sluice"))
}

#[test]
fn sql_with_kafka_sends_the_stream_between_statements_through_a_real_topic() {
    let bs = brokers();
    let (mid, out_topic) = (unique("sql-mid"), unique("sql-big"));
    let regions = ["eu", "us", "x"];
    let orders: Vec<Value> = (0..60u64)
        .map(|i| json!({"id": i, "region": regions[(i % 3) as usize], "amount": i}))
        .collect();
    let text: String = orders.iter().map(|o| format!("{o}\n")).collect();
    // The rows each statement must give, computed here.
    let mid_rows: Vec<Value> = orders
        .iter()
        .filter(|o| o["region"] != "x")
        .map(|o| json!({"id": o["id"], "region": o["region"], "doubled": o["amount"].as_u64().unwrap_or(0) * 2}))
        .collect();
    let big_rows: Vec<Value> = mid_rows
        .iter()
        .filter(|r| r["doubled"].as_u64().unwrap_or(0) > 20)
        .map(|r| json!({"id": r["id"], "doubled": r["doubled"]}))
        .collect();
    assert_eq!((mid_rows.len(), big_rows.len()), (40, 32));

    // Without Kafka: a bounded run that ends with the file.
    let local = tempfile::tempdir().expect("tmp");
    std::fs::write(local.path().join("orders.jsonl"), &text).expect("write");
    let sql = local.path().join("two.sql");
    std::fs::write(&sql, two_statements(&mid, &out_topic)).expect("write");
    run_ok(
        sluice()
            .args(["sql", "--no-progress"])
            .arg(&sql)
            .arg("--data-dir")
            .arg(local.path().join("state"))
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .current_dir(local.path()),
    );
    let without = sorted_by("id", json_lines(&local.path().join("out.jsonl")));
    assert_eq!(without, big_rows);

    // With Kafka: the same file; the pipeline reads topics, so it runs
    // until stopped.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("orders.jsonl"), &text).expect("write");
    let sql = dir.path().join("two.sql");
    std::fs::write(&sql, two_statements(&mid, &out_topic)).expect("write");
    let log = dir.path().join("sluice.log");
    let mut child = spawn_sql(dir.path(), &sql, &["--kafka", &bs], &log);
    let out = dir.path().join("out.jsonl");
    wait_for(
        "the second statement's rows in out.jsonl",
        Duration::from_secs(90),
        || {
            alive(&mut child, &log);
            (out.exists() && lines(&out).len() >= big_rows.len()).then_some(())
        },
    );
    // The intermediate topic holds the first statement's rows, as JSON.
    let got: Vec<Value> = Reader::new(&bs, &mid)
        .read(mid_rows.len(), 60)
        .iter()
        .map(Got::json)
        .collect();
    // The final statement's topic, which the sink connector read.
    let final_topic: Vec<Value> = Reader::new(&bs, &out_topic)
        .read(big_rows.len(), 60)
        .iter()
        .map(Got::json)
        .collect();
    terminate(child, &log);
    assert_eq!(sorted_by("id", got), mid_rows);
    assert_eq!(sorted_by("id", final_topic), big_rows);
    let with = sorted_by("id", json_lines(&out));
    assert_eq!(with, without, "the same records with and without Kafka");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        stderr.contains(&format!("topics=[\"{mid}\"] group=sluice-two")),
        "{stderr}"
    );
}

#[test]
fn sql_with_kafka_joins_a_table_over_a_statements_topic_as_without_kafka() {
    let bs = brokers();
    let (people_topic, named_topic) = (unique("sql-people"), unique("sql-named"));
    let text = format!(
        "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE SOURCE CONNECTOR people_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'people.jsonl', 'topic' = 'people_raw');
CREATE STREAM orders WITH (kafka_topic = 'orders');
CREATE STREAM people_raw WITH (kafka_topic = 'people_raw');
CREATE STREAM people WITH (kafka_topic = '{people_topic}') AS
  SELECT id, UCASE(name) AS name FROM people_raw WHERE id IS NOT NULL;
CREATE TABLE people_by_id WITH (kafka_topic = '{people_topic}', key = 'id');
CREATE STREAM named WITH (kafka_topic = '{named_topic}') AS
  SELECT o.n, o.id, p.name FROM orders o INNER JOIN people_by_id p ON o.id = p.id;
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'out.jsonl', 'topics' = '{named_topic}');
"
    );
    let people: String = (0..10u64)
        .map(|i| format!("{}\n", json!({"id": i, "name": format!("p{i}")})))
        .collect();
    let orders: String = (0..50u64)
        .map(|n| format!("{}\n", json!({"n": n, "id": n % 13})))
        .collect();
    let run = |kafka: bool| -> Vec<Value> {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("people.jsonl"), &people).expect("write");
        std::fs::write(dir.path().join("orders.jsonl"), &orders).expect("write");
        let sql = dir.path().join("join.sql");
        std::fs::write(&sql, &text).expect("write");
        let mut cmd = sluice();
        cmd.args(["sql", "--no-progress"])
            .arg(&sql)
            .arg("--data-dir")
            .arg(dir.path().join("state"))
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .current_dir(dir.path());
        let out = dir.path().join("out.jsonl");
        if !kafka {
            run_ok(&mut cmd);
            return sorted_by("n", json_lines(&out));
        }
        let log = dir.path().join("sluice.log");
        let mut child = Run(cmd
            .args(["--kafka", &bs])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn sluice"));
        // Orders with id 10, 11 or 12 (ten of them) have no person.
        wait_for(
            "the joined rows in out.jsonl",
            Duration::from_secs(90),
            || {
                alive(&mut child, &log);
                (out.exists() && lines(&out).len() >= 40).then_some(())
            },
        );
        terminate(child, &log);
        sorted_by("n", json_lines(&out))
    };
    let without = run(false);
    assert_eq!(without.len(), 40);
    assert_eq!(without[0], json!({"n": 0, "id": 0, "name": "P0"}));
    assert_eq!(run(true), without);
    // The people stream went through its topic.
    let got = Reader::new(&bs, &people_topic).read(10, 60);
    assert_eq!(got.len(), 10);
}

/// With `value_format = 'AVRO'` and a Schema Registry, the topic between
/// the statements holds Confluent-framed Avro whose schema is registered
/// under `<topic>-value`, and the statement reading it decodes the same rows.
#[test]
fn sql_with_kafka_and_a_registry_sends_an_avro_stream_between_statements() {
    let bs = brokers();
    let (mid, out_topic) = (unique("sql-avro-mid"), unique("sql-avro-big"));
    let orders: String = (0..30u64)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": i, "region": if i % 2 == 0 { "eu" } else { "x" }, "amount": i})
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let reg = registry(&dir.path().join("registry"));
    std::fs::write(dir.path().join("orders.jsonl"), &orders).expect("write");
    let sql = dir.path().join("avro.sql");
    std::fs::write(
        &sql,
        two_statements(&mid, &out_topic).replace(
            &format!("kafka_topic = '{mid}', value_format = 'JSON'"),
            &format!("kafka_topic = '{mid}', value_format = 'AVRO'"),
        ),
    )
    .expect("write");
    let log = dir.path().join("sluice.log");
    let args = ["--kafka", &bs, "--schema-registry", &reg.url];
    let mut child = spawn_sql(dir.path(), &sql, &args, &log);
    // eu rows (even ids) doubled past 20: ids 12, 14, ..., 28.
    let want: Vec<Value> = (12..30u64)
        .step_by(2)
        .map(|i| json!({"id": i, "doubled": i * 2}))
        .collect();
    let out = dir.path().join("out.jsonl");
    wait_for(
        "the Avro-fed rows in out.jsonl",
        Duration::from_secs(90),
        || {
            alive(&mut child, &log);
            (out.exists() && lines(&out).len() >= want.len()).then_some(())
        },
    );
    let mid_records = Reader::new(&bs, &mid).read(15, 60);
    terminate(child, &log);
    assert_eq!(sorted_by("id", json_lines(&out)), want);
    assert_eq!(mid_records.len(), 15);
    for r in &mid_records {
        let v = r.value.as_deref().unwrap_or_default();
        // Confluent framing: magic byte 0, then the schema id.
        assert!(v.len() > 5 && v[0] == 0, "not Avro: {v:?}");
    }
    let (status, subjects) = http("GET", &format!("{}/subjects", reg.url), None);
    assert_eq!(status, 200);
    assert!(
        subjects
            .as_array()
            .is_some_and(|s| s.contains(&json!(format!("{mid}-value")))),
        "{subjects}"
    );
}
