//! The `s3` sink against a local S3-compatible server: moto's standalone
//! server (PyPI `moto[server]`), an in-memory *emulation* of the S3 REST API,
//! started by `scripts/services/s3.sh` (the test script does it and exports
//! `SLUICE_S3_URL`). The HTTP on the wire is real; the server is not Amazon
//! S3 itself. Every test uses its own random bucket. Objects are read back by
//! readers independent of the crates that wrote them: Parquet with pyarrow from
//! the same service venv (its interpreter's path is in
//! `$SLUICE_SERVICES_DIR/s3.python`, or set `SLUICE_S3_PYTHON`), Avro with
//! fastavro from the Kafka service's venv (`$SLUICE_SERVICES_DIR/kafka.python`,
//! or set `SLUICE_KAFKA_PYTHON`), which has it for the Confluent serializers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

pub(crate) fn s3_url() -> String {
    service("SLUICE_S3_URL", "s3")
}

/// The services venv's Python (with pyarrow); fails loudly when missing.
fn python() -> PathBuf {
    service_python("s3", "SLUICE_S3_PYTHON")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// An unsigned request (moto accepts any credentials, and none).
fn http(method: &str, path: &str) -> (u16, Vec<u8>) {
    let url = format!("{}{path}", s3_url());
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .body(Vec::new())
        .expect("request");
    let mut resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().expect("body");
    (status, body)
}

pub(crate) fn new_bucket(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let bucket = format!("{prefix}-{}-{nanos}", std::process::id());
    let (status, body) = http("PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    bucket
}

/// Every key in `bucket`, sorted.
pub(crate) fn list(bucket: &str) -> Vec<String> {
    let (status, body) = http("GET", &format!("/{bucket}?list-type=2&max-keys=1000"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    let mut keys: Vec<String> = text
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(|k| k.replace("&amp;", "&"))
        .collect();
    keys.sort();
    keys
}

/// A signed GET (objects are private, so this goes through an S3 client).
pub(crate) fn get(bucket: &str, key: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    // As the sink does: reqwest's rustls needs a process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(s3_url())
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("client");
    let path = object_store::path::Path::parse(key).expect("key");
    rt.block_on(async { store.get(&path).await?.bytes().await })
        .unwrap_or_else(|e| panic!("GET {key}: {e}"))
        .to_vec()
}

/// Avro container files read by fastavro: per file, the writer's schema and
/// the records, as JSON.
fn fastavro_read(dir: &Path, bodies: &[Vec<u8>]) -> Vec<Value> {
    let files: Vec<PathBuf> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let f = dir.join(format!("{i}.avro"));
            std::fs::write(&f, body).expect("write object");
            f
        })
        .collect();
    let script = "import json, sys\nimport fastavro\nout = []\nfor f in sys.argv[1:]:\n    with open(f, 'rb') as fo:\n        r = fastavro.reader(fo)\n        out.append({'schema': r.writer_schema, 'records': list(r)})\nprint(json.dumps(out))\n";
    let py = service_python("kafka", "SLUICE_KAFKA_PYTHON");
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "fastavro failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("JSON from python") {
        Value::Array(files) => files,
        other => panic!("expected a list: {other}"),
    }
}

/// The sink block for `bucket` on the test server.
fn sink(bucket: &str, extra: &str) -> String {
    format!(
        "sinks:\n  lake:\n    type: s3\n    inputs: [P_USERS]\n    bucket: {bucket}\n    endpoint: {}\n    access_key_id: test\n    secret_access_key: '${{S3_TEST_SECRET:-test}}'\n    region: us-east-1\n{extra}",
        s3_url()
    )
}

/// Twelve user rows, as the polled `users` table gives them.
fn users(path: &Path) -> Vec<Value> {
    let rows: Vec<Value> = (1..=12)
        .map(|i| {
            json!({
                "index": i,
                "name": format!("user {i}"),
                "email": format!("u{i}@example.com"),
                "score": f64::from(i) * 1.5,
                "active": i % 3 != 0,
                "country": if i % 2 == 0 { "NZ" } else { "BR" },
                "nickname": if i % 4 == 0 { Value::Null } else { json!(format!("n{i}")) },
            })
        })
        .collect();
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).expect("write users");
    rows
}

fn run(p: &Path) -> std::process::Output {
    run_ok(
        sluice()
            .arg("run")
            .arg(p)
            .arg("--no-progress")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE"),
    )
}

#[test]
fn users_to_the_data_lake_as_json_objects_of_five_named_like_kafka_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("lake");
    let input = dir.path().join("users.jsonl");
    let rows = users(&input);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "checkpoint_interval_ms: 60000\nsources:\n  P_USERS: {{type: file, path: {}}}\n{}",
            q(&input),
            sink(&bucket, "    flush_size: 5\n    rotate_interval_ms: 6000\n")
        ),
    );
    run(&p);
    let expected: Vec<String> = [1, 6, 11]
        .iter()
        .map(|n| format!("topics/P_USERS/partition=0/P_USERS+0+{n:010}.json"))
        .collect();
    assert_eq!(list(&bucket), expected);
    let read_back =
        |bucket: &str| -> Vec<Vec<u8>> { expected.iter().map(|k| get(bucket, k)).collect() };
    let first = read_back(&bucket);
    let mut got = Vec::new();
    for (body, size) in first.iter().zip([5, 5, 2]) {
        let text = String::from_utf8(body.clone()).expect("utf-8");
        let objs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(objs.len(), size, "{text}");
        got.extend(objs);
    }
    assert_eq!(got, rows, "the objects hold the input rows, in order");

    // A replay from scratch rewrites the same objects with the same bytes.
    std::fs::remove_dir_all(dir.path().join(".sluice")).expect("forget checkpoint");
    run(&p);
    assert_eq!(list(&bucket), expected, "a replay must overwrite, not add");
    assert_eq!(read_back(&bucket), first);
}

#[test]
fn an_object_is_closed_by_the_rotation_interval_before_it_fills_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("rotate");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "checkpoint_interval_ms: 60000\nsources:\n  P_USERS: {{type: datagen, kind: people, count: 8, rate: 2}}\n{}",
            sink(&bucket, "    flush_size: 100\n    rotate_interval_ms: 1000\n")
        ),
    );
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = Stderr::drain(&mut child);
    let seen_while_running = wait_for("a first object", Duration::from_secs(20), || {
        (!list(&bucket).is_empty()).then(|| child.try_wait().expect("try_wait").is_none())
    });
    let status = child.wait().expect("wait");
    let stderr = stderr.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        seen_while_running,
        "an object appeared after the rotation interval, before the run ended"
    );
    // How many objects the interval cuts depends on the clock; what each holds
    // does not: the objects are named after their first event's offset, so
    // each must start where the one before ended, and together hold all 8.
    let keys = list(&bucket);
    assert!(keys.len() >= 2, "{keys:?}");
    let mut total = 0;
    for k in &keys {
        let name = k
            .strip_prefix("topics/P_USERS/partition=0/P_USERS+0+")
            .and_then(|n| n.strip_suffix(".json"))
            .unwrap_or_else(|| panic!("unexpected key {k}"));
        assert_eq!(
            name,
            format!("{:010}", total),
            "{k} starts where the objects before it ended: {keys:?}"
        );
        total += String::from_utf8(get(&bucket, k))
            .expect("utf-8")
            .lines()
            .count();
    }
    assert_eq!(total, 8, "every generated event is in exactly one object");
}

#[test]
fn avro_objects_read_back_and_non_objects_are_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("avro");
    let input = dir.path().join("users.jsonl");
    let mut rows = users(&input);
    // Line 7 is not a record: it is dead-lettered and the rest flows on.
    let mut text: Vec<String> = rows.iter().map(Value::to_string).collect();
    text.insert(6, "[1,2]".into());
    rows[0]["tags"] = json!(["a", "b"]);
    text[0] = rows[0].to_string();
    std::fs::write(&input, text.join("\n") + "\n").expect("write");
    let dead = dir.path().join("dead.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  P_USERS: {{type: file, path: {}}}\n{}dead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            sink(&bucket, "    format: avro\n    flush_size: 5\n"),
            q(&dead)
        ),
    );
    run(&p);
    let keys = list(&bucket);
    let expected: Vec<String> = [1, 6, 12]
        .iter()
        .map(|n| format!("topics/P_USERS/partition=0/P_USERS+0+{n:010}.avro"))
        .collect();
    assert_eq!(keys, expected);
    let bodies: Vec<Vec<u8>> = keys.iter().map(|k| get(&bucket, k)).collect();
    let files = fastavro_read(dir.path(), &bodies);
    // Without a schema in the pipeline file, the sink infers one: every field
    // nullable, nested values as text.
    let nullable =
        |name: &str, ty: &str| json!({"name": name, "type": ["null", ty], "default": null});
    assert_eq!(
        files[0]["schema"],
        json!({"type": "record", "name": "P_USERS", "fields": [
            nullable("index", "long"), nullable("name", "string"),
            nullable("email", "string"), nullable("score", "double"),
            nullable("active", "boolean"), nullable("country", "string"),
            nullable("nickname", "string"), nullable("tags", "string"),
        ]}),
        "the writer's schema, as fastavro reads it"
    );
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| f["records"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [5, 5, 2], "flush_size 5 over 12 records");
    let mut wanted = rows.into_iter();
    for f in &files {
        let fields: Vec<&str> = f["schema"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        for g in f["records"].as_array().expect("records") {
            let mut want = wanted.next().expect("a row for each record");
            // Nested values are written as JSON text; a field of the schema
            // the row lacks is null.
            if let Some(tags) = want.get("tags").cloned() {
                want["tags"] = Value::String(tags.to_string());
            }
            for name in &fields {
                if want.get(*name).is_none() {
                    want[*name] = Value::Null;
                }
            }
            assert_eq!(g, &want, "fastavro reads back the input row");
        }
    }
    assert_eq!(wanted.next(), None, "every row is in an object");
    let letters = json_lines(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    // Sync markers come from the key: a replay writes identical bytes.
    let before: Vec<Vec<u8>> = keys.iter().map(|k| get(&bucket, k)).collect();
    std::fs::remove_dir_all(dir.path().join(".sluice")).expect("forget checkpoint");
    run(&p);
    let after: Vec<Vec<u8>> = keys.iter().map(|k| get(&bucket, k)).collect();
    assert_eq!(list(&bucket), keys);
    assert!(before == after, "a replay rewrites the same Avro bytes");
    assert_eq!(letters[0]["headers"]["sluice.error.stage"], "lake");
    assert!(letters[0]["headers"]["sluice.error.message"]
        .as_str()
        .unwrap_or_default()
        .contains("Avro records must be JSON objects"));
}

#[test]
fn avro_with_a_schema_from_the_pipeline_file_partitioned_by_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("avro-field");
    let input = dir.path().join("users.jsonl");
    let rows = users(&input);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  P_USERS: {{type: file, path: {}}}\n{}",
            q(&input),
            sink(
                &bucket,
                "    format: avro\n    flush_size: 5\n    partitioner: field\n    partition_field: country\n    schema:\n      type: record\n      name: user\n      fields:\n        - {name: index, type: long}\n        - {name: name, type: string}\n        - {name: nickname, type: [\"null\", string], default: null}\n",
            )
        ),
    );
    run(&p);
    // BR: lines 1,3,5,7,9 then 11; NZ: 2,4,6,8,10 then 12.
    let expected = vec![
        "topics/P_USERS/country=BR/P_USERS+0+0000000001.avro".to_string(),
        "topics/P_USERS/country=BR/P_USERS+0+0000000011.avro".to_string(),
        "topics/P_USERS/country=NZ/P_USERS+0+0000000002.avro".to_string(),
        "topics/P_USERS/country=NZ/P_USERS+0+0000000012.avro".to_string(),
    ];
    assert_eq!(list(&bucket), expected);
    let file = &fastavro_read(dir.path(), &[get(&bucket, &expected[2])])[0];
    // fastavro names the record with its full name and spells out defaults.
    assert_eq!(
        file["schema"],
        json!({"type": "record", "name": "user", "fields": [
            {"name": "index", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "nickname", "type": ["null", "string"], "default": null},
        ]}),
        "the writer's schema is the one in the pipeline file"
    );
    let got = file["records"].as_array().cloned().unwrap_or_default();
    let want: Vec<Value> = rows
        .iter()
        .filter(|r| r["country"] == "NZ")
        .take(5)
        .map(|r| json!({"index": r["index"], "name": r["name"], "nickname": r["nickname"]}))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn parquet_objects_read_back_with_pyarrow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("parquet");
    let input = dir.path().join("users.jsonl");
    let rows = users(&input);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  P_USERS: {{type: file, path: {}}}\n{}",
            q(&input),
            sink(&bucket, "    format: parquet\n    flush_size: 5\n")
        ),
    );
    run(&p);
    let keys = list(&bucket);
    let expected: Vec<String> = [1, 6, 11]
        .iter()
        .map(|n| format!("topics/P_USERS/partition=0/P_USERS+0+{n:010}.parquet"))
        .collect();
    assert_eq!(keys, expected);
    let mut files = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let f = dir.path().join(format!("{i}.parquet"));
        std::fs::write(&f, get(&bucket, k)).expect("write");
        files.push(f);
    }
    let script = "import json, sys\nimport pyarrow.parquet as pq\nrows = []\nfor f in sys.argv[1:]:\n    t = pq.read_table(f)\n    rows.extend(t.to_pylist())\nprint(json.dumps({'rows': rows, 'types': {f.name: str(f.type) for f in t.schema}}))\n";
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    assert_eq!(
        read["types"],
        json!({"index": "int64", "name": "string", "email": "string", "score": "double", "active": "bool", "country": "string", "nickname": "string"})
    );
    assert_eq!(
        read["rows"],
        Value::Array(rows),
        "pyarrow reads back the input values"
    );
}

#[test]
fn an_unreachable_endpoint_or_a_missing_bucket_fails_the_start_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nsinks:\n  lake: {type: s3, inputs: [gen], bucket: x, endpoint: 'http://127.0.0.1:9', access_key_id: a, secret_access_key: b}\n",
    );
    let started = Instant::now();
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("cannot reach bucket `x` at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded retries"
    );

    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 1}}\nsinks:\n  lake: {{type: s3, inputs: [gen], bucket: no-such-bucket-here, endpoint: '{}', access_key_id: a, secret_access_key: b}}\n",
            s3_url()
        ),
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("cannot reach bucket `no-such-bucket-here`")
            && err.contains("does the bucket exist?"),
        "{err}"
    );
}

#[test]
fn validate_names_the_missing_partition_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nsinks:\n  lake:\n    type: s3\n    inputs: [gen]\n    bucket: b\n    partitioner: field\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("p.yaml:8:")
            && err.contains("sinks.lake.partition_field: required when `partitioner: field`"),
        "{err}"
    );
}

#[test]
fn a_large_object_goes_up_as_a_multipart_upload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("multipart");
    let input = dir.path().join("big.jsonl");
    let pad = "x".repeat(2000);
    let text: String = (0..3000)
        .map(|i| format!("{{\"n\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    std::fs::write(&input, &text).expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "checkpoint_interval_ms: 60000\nsources:\n  P_USERS: {{type: file, path: {}}}\n{}",
            q(&input),
            sink(
                &bucket,
                "    flush_size: 100000\n    part_size_bytes: 5242880\n"
            )
        ),
    );
    run(&p);
    let keys = list(&bucket);
    assert_eq!(
        keys,
        vec!["topics/P_USERS/partition=0/P_USERS+0+0000000001.json".to_string()]
    );
    let body = get(&bucket, &keys[0]);
    assert!(body.len() > 5 << 20, "{} bytes", body.len());
    assert_eq!(body, text.into_bytes(), "the parts join up to the input");
}

#[test]
fn the_time_partitioner_names_directories_from_the_event_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = new_bucket("time");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  P_USERS: {{type: datagen, kind: people, count: 7}}\n{}",
            sink(
                &bucket,
                "    flush_size: 3\n    partitioner: time\n    path_format: 'year=%Y/month=%m/day=%d'\n"
            )
        ),
    );
    let today = std::process::Command::new("date")
        .args(["-u", "+year=%Y/month=%m/day=%d"])
        .output()
        .expect("date");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_string();
    run(&p);
    // Generated events carry the wall-clock time; a run across midnight UTC
    // could split them over two days.
    let keys = list(&bucket);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("topics/P_USERS/{today}/P_USERS+0+"))),
        "{keys:?}"
    );
    let total: usize = keys
        .iter()
        .map(|k| {
            String::from_utf8(get(&bucket, k))
                .expect("utf-8")
                .lines()
                .count()
        })
        .sum();
    assert_eq!(total, 7);
}
