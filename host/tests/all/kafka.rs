//! The `kafka` source and sink against Apache Kafka 4.4 (KRaft, one node),
//! started by `scripts/services/kafka.sh` (the test script does it and
//! exports `SLUICE_KAFKA_BROKERS`). The client side is real too: librdkafka
//! through the `rdkafka` crate, and Python `confluent-kafka` for the Avro
//! cross-check and the `read_committed` reads of exactly-once output.
//!
//! Every test has its own random topic and group names. The broker-restart
//! test runs a private broker (the same script, its own run dir and ports),
//! so restarting it disturbs no other test; its storage survives the
//! restart, and so must topics and committed offsets.

#[path = "kafka_changelog.rs"]
mod changelog;
#[path = "kafka_exactly_once.rs"]
mod exactly_once;
#[path = "kafka_sql.rs"]
mod sql;
#[path = "kafka_tls.rs"]
mod tls;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::support::*;

pub(crate) fn brokers() -> String {
    service("SLUICE_KAFKA_BROKERS", "kafka")
}

/// The services venv's Python (with confluent-kafka); fails loudly when missing.
fn python() -> PathBuf {
    service_python("kafka", "SLUICE_KAFKA_PYTHON")
}

pub(crate) fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{}", std::process::id(), n % 1_000_000_000)
}

pub(crate) fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt
        .block_on(admin.create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(15))),
        ))
        .expect("create topics");
    for r in results {
        match r {
            Ok(_) => {}
            // A producer may have created it first (auto-creation).
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("creating topic {t}: {e}"),
        }
    }
}

/// A record to produce: key, value, headers, timestamp.
pub(crate) type Rec = (
    Option<Vec<u8>>,
    Vec<u8>,
    Vec<(String, Vec<u8>)>,
    Option<i64>,
);

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `(key, value, headers, timestamp)` records and waits for them.
pub(crate) fn produce(brokers: &str, topic: &str, records: &[Rec]) {
    let p = producer(brokers);
    for (k, v, hs, ts) in records {
        let mut headers = OwnedHeaders::new();
        for (n, hv) in hs {
            headers = headers.insert(Header {
                key: n,
                value: Some(hv),
            });
        }
        let mut r: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(v.as_slice()).headers(headers);
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        if let Some(t) = ts {
            r = r.timestamp(*t);
        }
        let mut r = r;
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(20));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

pub(crate) fn json_records(n: usize, from: usize) -> Vec<Rec> {
    (from..from + n)
        .map(|i| {
            (
                Some(format!("k{}", i % 7).into_bytes()),
                json!({"n": i, "amount": i as f64 * 1.5})
                    .to_string()
                    .into_bytes(),
                vec![("origin".to_string(), b"test".to_vec())],
                Some(1_700_000_000_000 + i as i64),
            )
        })
        .collect()
}

/// One record read back.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: BTreeMap<String, Vec<u8>>,
    timestamp: Option<i64>,
}

impl Got {
    pub(crate) fn header(&self, n: &str) -> String {
        String::from_utf8_lossy(self.headers.get(n).map_or(&[][..], |v| v)).into_owned()
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(self.value.as_deref().unwrap_or(b"null")).unwrap_or(Value::Null)
    }
}

/// Reads every partition of `topic` from the beginning (no group).
pub(crate) struct Reader {
    consumer: BaseConsumer,
    got: Vec<Got>,
}

impl Reader {
    pub(crate) fn new(brokers: &str, topic: &str) -> Reader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .expect("tpl");
            }
        }
        assert!(tpl.count() > 0, "topic {topic} has no partitions");
        consumer.assign(&tpl).expect("assign");
        Reader {
            consumer,
            got: Vec::new(),
        }
    }

    /// Reads for up to `wait`, returning as soon as `until(all so far)` holds.
    pub(crate) fn read_until(&mut self, wait: Duration, until: impl Fn(&[Got]) -> bool) -> &[Got] {
        let deadline = Instant::now() + wait;
        let mut last_check = 0;
        loop {
            // The condition may be costly: check it when idle or every 1000 records.
            let msg = self.consumer.poll(Duration::from_millis(100));
            if msg.is_none() || self.got.len() >= last_check + 1000 {
                last_check = self.got.len();
                if until(&self.got) || Instant::now() >= deadline {
                    break;
                }
            }
            if let Some(Err(e)) = &msg {
                eprintln!("reader: {e}");
            }
            if let Some(Ok(m)) = msg {
                let mut headers = BTreeMap::new();
                if let Some(hs) = m.headers() {
                    for h in hs.iter() {
                        headers.insert(h.key.to_string(), h.value.unwrap_or(&[]).to_vec());
                    }
                }
                self.got.push(Got {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                    timestamp: m.timestamp().to_millis(),
                });
            }
        }
        &self.got
    }

    pub(crate) fn read(&mut self, n: usize, secs: u64) -> Vec<Got> {
        let got = self
            .read_until(Duration::from_secs(secs), |g| g.len() >= n)
            .to_vec();
        assert!(
            got.len() >= n,
            "only {} of {n} records after {secs}s",
            got.len()
        );
        got
    }
}

/// A `sluice run` child, killed if a test fails before stopping it.
pub(crate) struct Run(pub(crate) Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start(p: &Path, log: &Path) -> Run {
    Run(sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn sluice"))
}

pub(crate) fn terminate(mut run: Run, log: &Path) {
    let child = &mut run.0;
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(
                status.success(),
                "graceful stop exits 0: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice did not stop within 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn alive(run: &mut Run, log: &Path) {
    if let Ok(Some(status)) = run.0.try_wait() {
        panic!(
            "sluice exited early ({status}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    // read_uncommitted: the offsets committed so far, without waiting for a
    // transaction still open (one a killed exactly-once run left behind).
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    // A restarted broker's group coordinator needs a moment to load.
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(got) => break got,
            Err(e) if Instant::now() < deadline => {
                eprintln!("committed offsets of {group}: {e}; asking again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("committed offsets of {group}: {e}"),
        }
    };
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// The group's lag on `topic`: high watermark minus committed offset, summed
/// over partitions (a partition without a commit counts from 0).
fn lag(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let high: i64 = (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .sum();
    high - committed(brokers, group, topic, partitions)
}

pub(crate) fn kafka_pipeline(name: &str, source: &str, sinks: &str) -> String {
    format!(
        "name: {name}\ncheckpoint_interval_ms: 200\nbatch_size: 256\nsources:\n  in:\n{source}\nsinks:\n{sinks}"
    )
}

#[test]
fn kafka_round_trip_keeps_keys_headers_timestamps_and_commits_offsets_after_checkpoints() {
    let bs = brokers();
    let (input, output, group) = (unique("rt-in"), unique("rt-out"), unique("rt-g"));
    create_topics(&bs, &[(&input, 3), (&output, 3)]);
    produce(&bs, &input, &json_records(300, 0));
    let dir = tempfile::tempdir().expect("tmp");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "rt",
            &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n"),
            &format!("  out:\n    type: kafka\n    brokers: {bs}\n    topic: {output}\n    inputs: [in]\n"),
        ),
    );
    // Where each input record is (partition, offset), read independently, for
    // the exact origin headers the sink must write.
    let origin_of: HashMap<u64, (i32, i64)> = Reader::new(&bs, &input)
        .read(300, 60)
        .iter()
        .map(|g| (g.json()["n"].as_u64().expect("n"), (g.partition, g.offset)))
        .collect();
    assert_eq!(origin_of.len(), 300, "the input holds each record once");
    let log = dir.path().join("sluice.log");
    let mut child = start(&p, &log);
    let mut reader = Reader::new(&bs, &output);
    let got = reader.read(300, 60);
    alive(&mut child, &log);
    // Offsets reach the group once checkpoints cover them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while committed(&bs, &group, &input, 3) < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(child, &log);
    assert_eq!(
        committed(&bs, &group, &input, 3),
        300,
        "every offset committed"
    );
    assert_eq!(lag(&bs, &group, &input, 3), 0, "no lag left");
    let mut seen = BTreeSet::new();
    let mut partition_of_key: HashMap<Vec<u8>, BTreeSet<i32>> = HashMap::new();
    for g in &got {
        let n = g.json()["n"].as_u64().expect("n") as usize;
        assert_eq!(g.key.as_deref(), Some(format!("k{}", n % 7).as_bytes()));
        assert_eq!(g.timestamp, Some(1_700_000_000_000 + n as i64));
        assert_eq!(g.header("origin"), "test");
        assert_eq!(g.header("sluice.topic"), input);
        let (partition, offset) = origin_of[&(n as u64)];
        assert_eq!(g.header("sluice.partition"), partition.to_string());
        assert_eq!(g.header("sluice.offset"), offset.to_string());
        partition_of_key
            .entry(g.key.clone().unwrap_or_default())
            .or_default()
            .insert(g.partition);
        seen.insert(n);
    }
    assert_eq!(seen.len(), 300, "every record arrived");
    assert_eq!(got.len(), 300, "and none twice");
    assert!(
        partition_of_key.values().all(|ps| ps.len() == 1),
        "one key, one partition: {partition_of_key:?}"
    );
}

/// The embedded registry as a child process; its URL.
struct RegistryProc {
    child: Child,
    url: String,
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry(dir: &Path) -> RegistryProc {
    let mut child = sluice()
        .args(["registry", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn registry");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("registry prints its URL");
    let url = line
        .trim()
        .strip_prefix("SLUICE_SCHEMA_REGISTRY_URL=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    RegistryProc { child, url }
}

fn run_python(script: &str, args: &[&str]) -> String {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let _ = child.stdin.take().map(|mut s| s.flush());
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PY_PRODUCE_AVRO: &str = r#"
import sys
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import SerializationContext, MessageField
bs, reg, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
schema = '{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"},{"name":"price","type":"double"},{"name":"note","type":["null","string"],"default":null},{"name":"tags","type":{"type":"array","items":"string"}}]}'
ser = AvroSerializer(SchemaRegistryClient({"url": reg}), schema)
p = Producer({"bootstrap.servers": bs})
for i in range(n):
    v = {"id": i, "item": "widget-%d" % i, "price": i * 0.5, "note": None if i % 2 else "even", "tags": ["a", "b"][: i % 3]}
    p.produce(topic, key=str(i).encode(), value=ser(v, SerializationContext(topic, MessageField.VALUE)))
p.flush(30)
print("produced", n)
"#;

/// One record `{"id": 7, "name": "a fine name"}` serialized by confluent-kafka's
/// AvroSerializer for `<topic>-value`; prints the framed bytes as hex.
const PY_SERIALIZE_ONE: &str = r#"
import sys
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import SerializationContext, MessageField
reg, topic = sys.argv[1], sys.argv[2]
schema = '{"type":"record","name":"r","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}'
ser = AvroSerializer(SchemaRegistryClient({"url": reg}), schema)
print(ser({"id": 7, "name": "a fine name"}, SerializationContext(topic, MessageField.VALUE)).hex())
"#;

const PY_CONSUME_AVRO: &str = r#"
import sys, json, time, uuid
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField
bs, reg, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
de = AvroDeserializer(SchemaRegistryClient({"url": reg}))
c = Consumer({"bootstrap.servers": bs, "group.id": "py-" + uuid.uuid4().hex[:8], "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe([topic]); out = []; t0 = time.time()
while len(out) < n and time.time() - t0 < 60:
    m = c.poll(0.5)
    if m is None or m.error(): continue
    out.append(de(m.value(), SerializationContext(topic, MessageField.VALUE)))
c.close()
print(json.dumps(out))
"#;

#[test]
fn kafka_avro_with_the_embedded_registry_is_read_and_written_by_confluent_kafka_python() {
    let bs = brokers();
    let dir = tempfile::tempdir().expect("tmp");
    let reg = registry(&dir.path().join("registry"));
    let (input, output, group) = (unique("avro-in"), unique("avro-out"), unique("avro-g"));
    create_topics(&bs, &[(&input, 2), (&output, 2)]);
    // Python writes Avro with its serializer, registering through our registry.
    run_python(PY_PRODUCE_AVRO, &[&bs, &reg.url, &input, "50"]);
    let json_out = dir.path().join("decoded.jsonl");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "avro",
            &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n    format: avro\n    schema_registry: {}\n", reg.url),
            &format!(
                "  json:\n    type: file\n    path: {}\n    inputs: [in]\n  avro:\n    type: kafka\n    brokers: {bs}\n    topic: {output}\n    format: avro\n    schema_registry: {}\n    subject_naming: topic_record\n    schema:\n      type: record\n      name: Order\n      namespace: shop.out\n      fields:\n        - {{name: id, type: long}}\n        - {{name: item, type: string}}\n        - {{name: price, type: double}}\n        - {{name: note, type: [\"null\", \"string\"], default: null}}\n        - {{name: tags, type: {{type: array, items: string}}}}\n    inputs: [in]\n",
                q(&json_out),
                reg.url
            ),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start(&p, &log);
    // Python reads what Sluice wrote, with its deserializer and our registry.
    let read = run_python(PY_CONSUME_AVRO, &[&bs, &reg.url, &output, "50"]);
    alive(&mut child, &log);
    terminate(child, &log);
    let mut from_python: Vec<Value> = serde_json::from_str(read.trim()).expect("JSON from python");
    from_python.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        from_python.len(),
        50,
        "python read every record Sluice wrote"
    );
    for (i, v) in from_python.iter().enumerate() {
        let tags: Vec<&str> = ["a", "b"][..i % 3].to_vec();
        assert_eq!(
            *v,
            json!({"id": i, "item": format!("widget-{i}"), "price": i as f64 * 0.5,
                   "note": if i % 2 == 1 { Value::Null } else { json!("even") }, "tags": tags})
        );
    }
    // Sluice decoded Python's records into the same JSON.
    let mut decoded = json_lines(&json_out);
    decoded.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(decoded, from_python);
    // Subjects: Python's (topic strategy) and Sluice's (topic_record strategy).
    let subjects: Value = serde_json::from_str(
        &ureq::get(format!("{}/subjects", reg.url))
            .call()
            .expect("GET /subjects")
            .body_mut()
            .read_to_string()
            .expect("body"),
    )
    .expect("JSON");
    let subjects: BTreeSet<String> = subjects
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    assert!(subjects.contains(&format!("{input}-value")), "{subjects:?}");
    assert!(
        subjects.contains(&format!("{output}-shop.out.Order")),
        "{subjects:?}"
    );
}

fn http(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
        .expect("request");
    let mut resp = agent.run(req).expect("registry answers");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn registry_rest_api_versions_lookup_compatibility_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("registry");
    let v1 = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"}]}"#;
    let v2 = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"},{"name":"n","type":"string"}]}"#;
    let v2d = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"},{"name":"n","type":"string","default":"x"}]}"#;
    {
        let reg = registry(&data);
        let u = &reg.url;
        let (s, r) = http(
            "POST",
            &format!("{u}/subjects/users-value/versions"),
            Some(json!({"schema": v1})),
        );
        assert_eq!((s, r["id"].as_u64()), (200, Some(1)));
        let (s, r) = http(
            "POST",
            &format!("{u}/subjects/users-value/versions"),
            Some(json!({"schema": v2})),
        );
        assert_eq!(
            (s, r["error_code"].as_u64()),
            (409, Some(409)),
            "BACKWARD refuses a field without default: {r}"
        );
        let (s, r) = http(
            "POST",
            &format!("{u}/compatibility/subjects/users-value/versions/latest"),
            Some(json!({"schema": v2d})),
        );
        assert_eq!((s, r["is_compatible"].as_bool()), (200, Some(true)));
        let (s, r) = http(
            "POST",
            &format!("{u}/subjects/users-value/versions"),
            Some(json!({"schema": v2d})),
        );
        assert_eq!((s, r["id"].as_u64()), (200, Some(2)));
        let (s, r) = http(
            "PUT",
            &format!("{u}/config/orders-value"),
            Some(json!({"compatibility": "FORWARD"})),
        );
        assert_eq!((s, r["compatibility"].as_str()), (200, Some("FORWARD")));
        http(
            "POST",
            &format!("{u}/subjects/orders-value/versions"),
            Some(json!({"schema": v1})),
        );
        let (s, _) = http(
            "POST",
            &format!("{u}/subjects/orders-value/versions"),
            Some(json!({"schema": v2})),
        );
        assert_eq!(s, 200, "FORWARD accepts a new field without default");
        let (s, r) = http(
            "PUT",
            &format!("{u}/config"),
            Some(json!({"compatibility": "NONE"})),
        );
        assert_eq!((s, r["compatibility"].as_str()), (200, Some("NONE")));
        let (s, r) = http(
            "POST",
            &format!("{u}/subjects/users-value/versions"),
            Some(json!({"schema": "{"})),
        );
        assert_eq!((s, r["error_code"].as_u64()), (422, Some(42201)));
    }
    // A restart serves the same state from the data directory.
    let reg = registry(&data);
    let u = &reg.url;
    let (s, r) = http("GET", &format!("{u}/subjects/users-value/versions"), None);
    assert_eq!((s, r), (200, json!([1, 2])));
    let (s, r) = http(
        "GET",
        &format!("{u}/subjects/users-value/versions/latest"),
        None,
    );
    assert_eq!(
        (s, r["id"].as_u64(), r["version"].as_u64()),
        (200, Some(2), Some(2))
    );
    let (s, r) = http("GET", &format!("{u}/schemas/ids/1"), None);
    assert_eq!(s, 200);
    assert!(r["schema"].as_str().is_some_and(|t| t.contains("\"u\"")));
    let (s, r) = http(
        "POST",
        &format!("{u}/subjects/users-value"),
        Some(json!({"schema": v1})),
    );
    assert_eq!(
        (s, r["version"].as_u64(), r["id"].as_u64()),
        (200, Some(1), Some(1))
    );
    let (s, r) = http("GET", &format!("{u}/schemas/ids/99"), None);
    assert_eq!((s, r["error_code"].as_u64()), (404, Some(40403)));
    let (s, r) = http("GET", &format!("{u}/config/orders-value"), None);
    assert_eq!(
        (s, r["compatibilityLevel"].as_str()),
        (200, Some("FORWARD"))
    );
    let (s, r) = http("GET", &format!("{u}/config"), None);
    assert_eq!((s, r["compatibilityLevel"].as_str()), (200, Some("NONE")));
}

#[test]
fn kafka_undecodable_avro_goes_to_a_kafka_dead_letter_topic_with_the_reason() {
    let bs = brokers();
    let dir = tempfile::tempdir().expect("tmp");
    let reg = registry(&dir.path().join("registry"));
    let (input, dlq, group) = (unique("bad-in"), unique("bad-dlq"), unique("bad-g"));
    create_topics(&bs, &[(&input, 1), (&dlq, 1)]);
    // The good record in Confluent's wire format, as confluent-kafka's
    // serializer writes it (registering the schema through our registry), not
    // as Sluice's own encoder would; the bad ones are cut from its bytes.
    let good = hex::decode(run_python(PY_SERIALIZE_ONE, &[&reg.url, &input]).trim())
        .expect("hex from python");
    let (_, r) = http(
        "GET",
        &format!("{}/subjects/{input}-value/versions/latest", reg.url),
        None,
    );
    let id = u32::try_from(r["id"].as_u64().expect("registered id")).expect("id");
    assert_eq!(good.len(), 5 + 1 + 1 + 11, "magic, id, long 7, string");
    assert_eq!(good[..5], [&[0u8][..], &id.to_be_bytes()].concat());
    let unknown = [&[0u8][..], &9999u32.to_be_bytes(), &good[5..]].concat();
    let truncated = good[..good.len() - 4].to_vec();
    let wrong_magic = br#"{"id": 1}"#.to_vec();
    let records: Vec<_> = [good, unknown, truncated, wrong_magic]
        .into_iter()
        .map(|v| (None, v, vec![], None))
        .collect();
    produce(&bs, &input, &records);
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "{}dead_letter:\n  type: kafka\n  brokers: {bs}\n  topic: {dlq}\n",
            kafka_pipeline(
                "bad",
                &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n    format: avro\n    schema_registry: {}\n", reg.url),
                &format!("  out:\n    type: file\n    path: {}\n    inputs: [in]\n", q(&out)),
            )
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start(&p, &log);
    let mut reader = Reader::new(&bs, &dlq);
    let dead = reader
        .read_until(Duration::from_secs(60), |g| g.len() >= 3)
        .to_vec();
    assert_eq!(
        dead.len(),
        3,
        "dead letters: {dead:?}\nlog:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    alive(&mut child, &log);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (!out.exists() || lines(&out).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    terminate(child, &log);
    assert_eq!(
        json_lines(&out),
        vec![json!({"id": 7, "name": "a fine name"})]
    );
    let reasons: Vec<String> = dead
        .iter()
        .map(|g| g.header("sluice.error.message"))
        .collect();
    // Each reason names the record's exact place: offsets 1, 2, 3 of the one
    // partition (offset 0 is the good record).
    for (i, (r, why)) in reasons
        .iter()
        .zip([
            "unknown schema id 9999",
            "undecodable Avro body",
            "wrong magic byte 0x7b",
        ])
        .enumerate()
    {
        assert!(
            r.contains(&format!("value at {input}[0]@{}: ", i + 1)) && r.contains(why),
            "{reasons:?}"
        );
    }
    assert!(dead
        .iter()
        .all(|g| g.header("sluice.error.kind") == "malformed"));
    assert_eq!(
        dead[2].value.as_deref(),
        Some(&br#"{"id": 1}"#[..]),
        "the original bytes"
    );
}

#[test]
fn kafka_unreachable_broker_fails_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write_pipeline(
        dir.path(),
        "name: nobroker\nsources:\n  in:\n    type: kafka\n    brokers: 127.0.0.1:1\n    topics: [t]\n    group_id: g\n    connect_timeout_ms: 1500\nsinks:\n  out: {type: stdout, inputs: [in]}\n",
    );
    let t0 = Instant::now();
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        t0.elapsed()
    );
    assert!(
        err.contains("cannot reach the Kafka brokers `127.0.0.1:1`"),
        "{err}"
    );
    // Configuration mistakes are caught before anything runs, with the field.
    let p = write_pipeline(
        dir.path(),
        "name: bad\nsources:\n  in:\n    type: kafka\n    brokers: x:1\n    group_id: g\n    format: avro\nsinks:\n  out: {type: stdout, inputs: [in]}\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(err.contains("sources.in.topics"), "{err}");
}

/// Keys of every input record in `got` by its origin header (partition, offset).
fn origins(got: &[Got]) -> Vec<(i32, i64)> {
    got.iter()
        .map(|g| {
            (
                g.header("sluice.partition").parse().unwrap_or(-1),
                g.header("sluice.offset").parse().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn kafka_sigkill_mid_stream_then_restart_delivers_every_offset_at_least_once() {
    let bs = brokers();
    let (input, output, group) = (unique("kill-in"), unique("kill-out"), unique("kill-g"));
    create_topics(&bs, &[(&input, 3), (&output, 3)]);
    let total = 30_000;
    // Records keep arriving while the pipeline runs, so the kill lands mid-stream.
    let producing = {
        let (bs, input) = (bs.clone(), input.clone());
        std::thread::spawn(move || {
            for chunk in 0..60 {
                produce(&bs, &input, &json_records(500, chunk * 500));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let dir = tempfile::tempdir().expect("tmp");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "kill",
            &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n"),
            &format!("  out:\n    type: kafka\n    brokers: {bs}\n    topic: {output}\n    inputs: [in]\n"),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start(&p, &log);
    let mut reader = Reader::new(&bs, &output);
    let before = reader
        .read_until(Duration::from_secs(60), |g| g.len() >= 5_000)
        .len();
    alive(&mut child, &log);
    child.0.kill().expect("SIGKILL");
    let _ = child.0.wait();
    assert!(
        before >= 5_000 && before < total,
        "killed mid-stream at {before}"
    );
    producing.join().expect("producer thread");
    let log2 = dir.path().join("sluice2.log");
    let child = start(&p, &log2);
    let got = reader
        .read_until(Duration::from_secs(120), |g| {
            origins(g).into_iter().collect::<BTreeSet<_>>().len() >= total
        })
        .to_vec();
    terminate(child, &log2);
    let unique_origins: BTreeSet<(i32, i64)> = origins(&got).into_iter().collect();
    assert_eq!(
        unique_origins.len(),
        total,
        "every input offset delivered; log of the second run:\n{}",
        std::fs::read_to_string(&log2).unwrap_or_default()
    );
    let values: BTreeSet<u64> = got.iter().filter_map(|g| g.json()["n"].as_u64()).collect();
    assert_eq!(values.len(), total);
    let duplicates = got.len() - total;
    eprintln!(
        "kafka SIGKILL test: {total} records, killed after {before} were written, all delivered; {duplicates} duplicates (at-least-once)"
    );
}

#[test]
fn kafka_two_processes_in_one_group_split_the_partitions() {
    let bs = brokers();
    let (input, group) = (unique("grp-in"), unique("grp-g"));
    create_topics(&bs, &[(&input, 4)]);
    let dir = tempfile::tempdir().expect("tmp");
    let mut children = Vec::new();
    let mut outs = Vec::new();
    for i in 0..2 {
        let sub = dir.path().join(format!("w{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let out = sub.join("out.jsonl");
        let p = write_pipeline(
            &sub,
            &kafka_pipeline(
                &format!("w{i}"),
                &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n"),
                &format!("  out:\n    type: file\n    path: {}\n    format: envelope\n    inputs: [in]\n", q(&out)),
            ),
        );
        let log = sub.join("sluice.log");
        children.push((start(&p, &log), log.clone()));
        outs.push(out);
        // The first settles into the group (it holds partitions) before the
        // second joins.
        if i == 0 {
            wait_for(
                "the first member's assignment",
                Duration::from_secs(60),
                || {
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.contains("partitions assigned") && l.contains(&input))
                        .then_some(())
                },
            );
        }
    }
    // Wait until both members hold partitions, then produce.
    let deadline = Instant::now() + Duration::from_secs(60);
    let last_rebalance = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rfind(|l| l.contains("kafka: partitions"))
            .map(str::to_string)
    };
    loop {
        if children.iter().all(|(_, log)| holds(log, &input)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both members never held partitions: {:?}",
            children
                .iter()
                .map(|(_, l)| last_rebalance(l))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let total = 2_000;
    produce(&bs, &input, &json_records(total, 0));
    let read = |out: &Path| -> Vec<Value> {
        if out.exists() {
            std::fs::read_to_string(out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        } else {
            Vec::new()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = loop {
        let (a, b) = (read(&outs[0]), read(&outs[1]));
        let union: BTreeSet<u64> = a
            .iter()
            .chain(b.iter())
            .filter_map(|e| e["value"]["n"].as_u64())
            .collect();
        if union.len() >= total || Instant::now() > deadline {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (child, log) in children {
        terminate(child, &log);
    }
    let union: BTreeSet<u64> = a
        .iter()
        .chain(b.iter())
        .filter_map(|e| e["value"]["n"].as_u64())
        .collect();
    assert_eq!(union.len(), total, "together they produce every event");
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members took a share: {} and {}",
        a.len(),
        b.len()
    );
    let parts = |v: &[Value]| -> BTreeSet<String> {
        v.iter()
            .filter_map(|e| {
                e["headers"]["sluice.partition"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let (pa, pb) = (parts(&a), parts(&b));
    assert!(
        pa.is_disjoint(&pb),
        "each partition read by one member: {pa:?} / {pb:?}"
    );
    eprintln!("kafka group test: member 1 read partitions {pa:?} ({} events), member 2 {pb:?} ({} events)", a.len(), b.len());
}

/// A private broker (`scripts/services/kafka.sh` with its own run dir and
/// ports), so restarting it disturbs no other test.
pub(crate) struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    controller_port: u16,
    /// More `kafka.sh` settings, e.g. the proxied listener.
    env: Vec<(&'static str, String)>,
}

impl PrivateBroker {
    fn script(&self, command: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services/kafka.sh");
        let out = Command::new(script)
            .arg(command)
            // A plain broker: the secured listeners belong to the shared one.
            .env_remove("SLUICE_KAFKA_TLS_DIR")
            .env("SLUICE_SERVICES_DIR", self.dir.path())
            .env("SLUICE_KAFKA_PORT", self.port.to_string())
            .env(
                "SLUICE_KAFKA_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("kafka.sh runs");
        assert!(
            out.status.success(),
            "kafka.sh {command} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn start() -> PrivateBroker {
        PrivateBroker::start_with(Vec::new())
    }

    pub(crate) fn start_with(env: Vec<(&'static str, String)>) -> PrivateBroker {
        let b = PrivateBroker {
            dir: tempfile::tempdir().expect("tmp"),
            port: free_port(),
            controller_port: free_port(),
            env,
        };
        b.script("start");
        b
    }

    /// Stops the broker and starts it again on the same data directory.
    fn restart(&self) {
        self.script("restart");
    }

    pub(crate) fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.script("stop");
    }
}

#[test]
fn kafka_broker_restart_mid_stream_keeps_topics_and_offsets_and_the_pipeline_recovers() {
    let broker = PrivateBroker::start();
    let bs = broker.brokers();
    let (input, group, sunk) = (unique("rs-in"), unique("rs-g"), unique("rs-out"));
    create_topics(&bs, &[(&input, 2), (&sunk, 2)]);
    produce(&bs, &input, &json_records(500, 0));
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "restart",
            &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n"),
            &format!("  out:\n    type: file\n    path: {}\n    inputs: [in]\n  kafka:\n    type: kafka\n    brokers: {bs}\n    topic: {sunk}\n    inputs: [in]\n    properties: {{message.timeout.ms: \"10000\"}}\n", q(&out)),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = start(&p, &log);
    let numbers = |out: &Path| -> Vec<u64> {
        std::fs::read_to_string(out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["n"].as_u64())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(&bs, &group, &input, 2) < 500 {
        alive(&mut child, &log);
        assert!(
            Instant::now() < deadline,
            "the first 500 were not committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The broker goes away mid-stream and comes back with its data.
    broker.restart();
    assert_eq!(
        committed(&bs, &group, &input, 2),
        500,
        "committed offsets survive the restart"
    );
    assert_eq!(lag(&bs, &group, &input, 2), 0, "and so do the records");
    alive(&mut child, &log);
    produce(&bs, &input, &json_records(500, 500));
    let deadline = Instant::now() + Duration::from_secs(90);
    while lag(&bs, &group, &input, 2) > 0 {
        alive(&mut child, &log);
        assert!(
            Instant::now() < deadline,
            "lag still {} after the restart:\n{}",
            lag(&bs, &group, &input, 2),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut reader = Reader::new(&bs, &sunk);
    let got = reader
        .read_until(Duration::from_secs(60), |g| {
            g.iter()
                .filter_map(|r| r.json()["n"].as_u64())
                .collect::<BTreeSet<_>>()
                .len()
                >= 1000
        })
        .to_vec();
    alive(&mut child, &log);
    terminate(child, &log);
    let written = numbers(&out);
    let distinct: BTreeSet<u64> = written.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        1000,
        "nothing lost across the broker restart"
    );
    // A rebalance after the restart may repeat records read since (at least
    // once), but never the first 500: their committed offsets were kept.
    assert_eq!(
        written.iter().filter(|n| **n < 500).count(),
        500,
        "records committed before the restart are not read again"
    );
    let in_kafka: BTreeSet<u64> = got.iter().filter_map(|r| r.json()["n"].as_u64()).collect();
    assert_eq!(
        in_kafka.len(),
        1000,
        "the sink's topic kept what was written before the restart and got the rest; read {} records; log:\n{}",
        got.len(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(committed(&bs, &group, &input, 2), 1000);
}

/// A table fed by a `kafka` source holds what the topic held when the run
/// started before the stage reading it runs: the source is caught up only
/// once each partition it was first assigned is read to the end it had
/// then. (It used to count as caught up at once, so orders read from a file
/// met a table holding at most the first poll's batch and went on unjoined;
/// batches of 100 make that most of them.)
/// Customers `0..n` keyed by id: `{"id": i, "name": "c<i>"}`, with `note`
/// when given (to make the rows bigger).
fn customer_records(n: u64, note: Option<&str>) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let mut row = json!({"id": i, "name": format!("c{i}")});
            if let Some(note) = note {
                row["note"] = json!(note);
            }
            (
                Some(i.to_string().into_bytes()),
                row.to_string().into_bytes(),
                Vec::new(),
                None,
            )
        })
        .collect()
}

#[test]
fn a_table_fed_by_kafka_loads_the_topic_before_the_join_reads_it() {
    let bs = brokers();
    let topic = unique("customers");
    create_topics(&bs, &[(&topic, 3)]);
    produce(&bs, &topic, &customer_records(3000, None));
    let dir = tempfile::tempdir().expect("tmp");
    let orders = dir.path().join("orders.jsonl");
    let text: String = (0..500u64)
        .map(|n| format!("{}\n", json!({"order": n, "id": (n * 7) % 3000})))
        .collect();
    std::fs::write(&orders, text).expect("write");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: bootstrap\nbatch_size: 100\nsources:\n  customers: {{type: kafka, brokers: \"{bs}\", topics: [{topic}], group_id: {group}}}\n  orders: {{type: file, path: {orders}}}\ntables:\n  people: {{input: customers, key_field: id}}\nstages:\n  j:\n    plugin: {plugin}\n    inputs: [orders]\n    tables: [people]\n    params: {{table: people, on: id}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [j]}}\n",
            group = unique("bootstrap"),
            orders = q(&orders),
            plugin = q(&plugin("lookup-join")),
            out = q(&out),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut child = Run(sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn sluice"));
    wait_for("500 joined orders", Duration::from_secs(90), || {
        alive(&mut child, &log);
        (out.exists() && lines(&out).len() >= 500).then_some(())
    });
    terminate(child, &log);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 500);
    let unjoined: Vec<&Value> = rows
        .iter()
        .filter(|r| r["people"]["name"] != json!(format!("c{}", r["id"])))
        .collect();
    assert!(
        unjoined.is_empty(),
        "{} of 500 orders met a table still loading, e.g. {:?}",
        unjoined.len(),
        unjoined.first()
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("table loaded"), "{text}");
}

/// Whether the member logging to `log` holds a partition of `topic` after
/// its last rebalance that involved it: each assignment or revoke line ends
/// with `holding=`, the source's whole set (a cooperative rebalance names
/// only what changes hands). Lines of the member's other sources never name
/// `topic`.
fn holds(log: &Path, topic: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.contains("kafka: partitions") && l.contains(topic))
        .and_then(|l| l.split_once("holding="))
        .is_some_and(|(_, held)| held.contains(topic))
}

/// Two `sluice run` processes in one consumer group for `orders` (4
/// partitions), each joining against a table fed by `customers_source`
/// (3 partitions). Returns each process's joined rows.
fn two_members_join(label: &str, customers_source: &str) -> [Vec<Value>; 2] {
    let bs = brokers();
    let orders = unique(&format!("{label}-orders"));
    create_topics(&bs, &[(&orders, 4)]);
    let group = unique(&format!("{label}-g"));
    let dir = tempfile::tempdir().expect("tmp");
    // No `lateness_ms`: a member reads its partitions' backlogs interleaved,
    // so event time goes back and forth, which a lookup join (it keeps no
    // time) takes as it comes.
    let mut members = Vec::new();
    let mut outs = Vec::new();
    for i in 0..2 {
        let sub = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let out = sub.join("out.jsonl");
        let p = write_pipeline(
            &sub,
            &format!(
                "name: m{i}\nbatch_size: 100\ncheckpoint_interval_ms: 500\nsources:\n  orders: {{type: kafka, brokers: \"{bs}\", topics: [{orders}], group_id: {group}, start: earliest, session_timeout_ms: 6000}}\n  customers: {customers_source}\ntables:\n  people: {{input: customers, key_field: id}}\nstages:\n  j:\n    plugin: {plugin}\n    inputs: [orders]\n    tables: [people]\n    params: {{table: people, on: id}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [j]}}\n",
                customers_source = customers_source.replace("GROUP", &format!("{group}-c")),
                plugin = q(&plugin("lookup-join")),
                out = q(&out),
            ),
        );
        let log = sub.join("sluice.log");
        members.push((start(&p, &log), log.clone()));
        outs.push(out);
        // The first holds the stream's partitions before the second joins.
        wait_for("the member's assignment", Duration::from_secs(60), || {
            holds(&log, &orders).then_some(())
        });
    }
    // Both hold a share of the orders (the first was revoked and assigned
    // again when the second joined) and both tables loaded: produce.
    wait_for("both members' shares", Duration::from_secs(60), || {
        members
            .iter()
            .all(|(_, log)| {
                holds(log, &orders)
                    && std::fs::read_to_string(log)
                        .unwrap_or_default()
                        .contains("table loaded")
            })
            .then_some(())
    });
    let total = 600u64;
    let records: Vec<Rec> = (0..total)
        .map(|n| {
            (
                Some(n.to_string().into_bytes()),
                json!({"order": n, "id": (n * 7) % 900})
                    .to_string()
                    .into_bytes(),
                Vec::new(),
                None,
            )
        })
        .collect();
    produce(&bs, &orders, &records);
    wait_for("every order joined or not", Duration::from_secs(90), || {
        for (child, log) in members.iter_mut() {
            alive(child, log);
        }
        let n: usize = outs
            .iter()
            .map(|o| if o.exists() { lines(o).len() } else { 0 })
            .sum();
        (n >= total as usize).then_some(())
    });
    for (child, log) in members {
        terminate(child, &log);
    }
    let rows = |o: &Path| {
        if o.exists() {
            json_lines(o)
        } else {
            Vec::new()
        }
    };
    let got = [rows(&outs[0]), rows(&outs[1])];
    let union: BTreeSet<u64> = got
        .iter()
        .flatten()
        .filter_map(|r| r["order"].as_u64())
        .collect();
    assert_eq!(union.len() as u64, total, "every order came out once");
    got
}

fn unjoined(rows: &[Value]) -> usize {
    rows.iter()
        .filter(|r| r["people"]["name"] != json!(format!("c{}", r["id"])))
        .count()
}

/// GlobalKTable-style: every member of a scaled-out pipeline holds the
/// whole table when its source reads every partition (`assign: all`), so
/// each member joins every order it is assigned. The same pipeline with the
/// table's source in a group leaves a member with part of the table, which
/// is what the first half proves the second half against.
#[test]
fn members_of_a_group_each_hold_the_whole_table_read_with_assign_all() {
    let bs = brokers();
    let customers = unique("whole-customers");
    create_topics(&bs, &[(&customers, 3)]);
    produce(&bs, &customers, &customer_records(900, None));

    let whole = format!("{{type: kafka, brokers: \"{bs}\", topics: [{customers}], assign: all}}");
    let [a, b] = two_members_join("whole", &whole);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members took a share of the orders: {} and {}",
        a.len(),
        b.len()
    );
    assert_eq!(
        (unjoined(&a), unjoined(&b)),
        (0, 0),
        "every order met the whole table"
    );

    let split = format!("{{type: kafka, brokers: \"{bs}\", topics: [{customers}], group_id: GROUP, start: earliest, session_timeout_ms: 6000}}");
    let [c, d] = two_members_join("split", &split);
    let missed = unjoined(&c) + unjoined(&d);
    assert!(
        missed > 0,
        "with the table's source in a group, the second member holds part of the table and misses some customers ({} and {} rows)",
        c.len(),
        d.len()
    );
    eprintln!(
        "assign: all: {} + {} orders, 0 unjoined; in a group: {missed} of {} unjoined",
        a.len(),
        b.len(),
        c.len() + d.len()
    );
}

/// `assign: all` keeps its offsets in the checkpoint alone: a rerun resumes
/// from them (nothing read twice, nothing skipped), and a partition added
/// while it runs is found and read from its beginning.
#[test]
fn a_source_reading_every_partition_resumes_from_its_checkpoint_and_finds_new_partitions() {
    let bs = brokers();
    let topic = unique("whole-resume");
    create_topics(&bs, &[(&topic, 2)]);
    produce(&bs, &topic, &json_records(100, 0));
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "whole",
            &format!(
                "    type: kafka\n    brokers: {bs}\n    topics: [{topic}]\n    assign: all\n"
            ),
            &format!(
                "  out:\n    type: file\n    path: {}\n    format: envelope\n    inputs: [in]\n",
                q(&out)
            ),
        ),
    );
    let log = dir.path().join("sluice.log");
    let ns = |out: &Path| -> Vec<u64> {
        json_lines(out)
            .iter()
            .filter_map(|e| e["value"]["n"].as_u64())
            .collect()
    };
    let mut run = start(&p, &log);
    wait_for("the first 100", Duration::from_secs(60), || {
        alive(&mut run, &log);
        (out.exists() && lines(&out).len() >= 100).then_some(())
    });
    terminate(run, &log);
    produce(&bs, &topic, &json_records(50, 100));
    let mut run = start(&p, &log);
    wait_for("the next 50", Duration::from_secs(60), || {
        alive(&mut run, &log);
        (lines(&out).len() >= 150).then_some(())
    });
    // A third partition, and records only in it.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .expect("admin");
    let grown = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(admin.create_partitions(
            &[rdkafka::admin::NewPartitions::new(&topic, 3)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(15))),
        ))
        .expect("create partitions");
    assert!(
        grown.iter().all(|r| r.is_ok()),
        "adding a partition: {grown:?}"
    );
    let p2 = producer(&bs);
    for i in 150..170u64 {
        let v = json!({"n": i}).to_string();
        p2.send(
            BaseRecord::<[u8], [u8]>::to(&topic)
                .payload(v.as_bytes())
                .partition(2),
        )
        .expect("send to the new partition");
    }
    p2.flush(Duration::from_secs(10)).expect("flush");
    wait_for("the new partition's 20", Duration::from_secs(60), || {
        alive(&mut run, &log);
        (lines(&out).len() >= 170).then_some(())
    });
    terminate(run, &log);
    let mut got = ns(&out);
    got.sort_unstable();
    assert_eq!(
        got,
        (0..170).collect::<Vec<u64>>(),
        "each record exactly once across the rerun and the new partition"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("reading every partition (assign: all)") && text.contains(", 2)]"),
        "{text}"
    );
}

/// Seconds since midnight of a log line's RFC 3339 timestamp
/// (`2026-12-05T02:27:44.932133Z ...`).
fn log_seconds(line: &str) -> Option<f64> {
    let time = line.get(11..26)?;
    let (h, rest) = time.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// Scale-out of a lookup join: three `sluice run` processes in one group
/// split 6 order partitions, each holding the whole customers table
/// (`assign: all`). One is killed with SIGKILL mid-stream; later a fourth
/// joins and loads the table before it joins anything. Every order comes out
/// joined to its customer exactly as one process would join it; the killed
/// member's unacknowledged orders come out again (at least once). Prints
/// how long the fourth took to load the table, per MB.
#[test]
fn a_scaled_out_lookup_join_loses_nothing_when_a_member_dies_and_another_joins() {
    let bs = brokers();
    let (orders, customers) = (unique("scale-orders"), unique("scale-customers"));
    create_topics(&bs, &[(&orders, 6), (&customers, 3)]);
    let rows = customer_records(20_000, Some(&"x".repeat(160)));
    let table_bytes: usize = rows
        .iter()
        .map(|(k, v, _, _)| k.as_ref().map_or(0, Vec::len) + v.len())
        .sum();
    produce(&bs, &customers, &rows);
    let group = unique("scale-g");
    let dir = tempfile::tempdir().expect("tmp");
    let member = |i: usize| -> (Run, PathBuf, PathBuf) {
        let sub = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let out = sub.join("out.jsonl");
        let p = write_pipeline(
            &sub,
            &format!(
                "name: m{i}\nbatch_size: 100\ncheckpoint_interval_ms: 500\nsources:\n  orders: {{type: kafka, brokers: \"{bs}\", topics: [{orders}], group_id: {group}, start: earliest, session_timeout_ms: 6000}}\n  customers: {{type: kafka, brokers: \"{bs}\", topics: [{customers}], assign: all}}\ntables:\n  people: {{input: customers, key_field: id}}\nstages:\n  j:\n    plugin: {plugin}\n    inputs: [orders]\n    tables: [people]\n    params: {{table: people, on: id, fields: \"order, id, table.name as name\"}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [j]}}\n",
                plugin = q(&plugin("lookup-join")),
                out = q(&out),
            ),
        );
        let log = sub.join("sluice.log");
        (start(&p, &log), log, out)
    };
    let loaded = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("table loaded")
    };
    let mut members: Vec<(Run, PathBuf, PathBuf)> = (0..3).map(member).collect();
    wait_for(
        "three members holding orders with their tables loaded",
        Duration::from_secs(90),
        || {
            members
                .iter()
                .all(|(_, log, _)| holds(log, &orders) && loaded(log))
                .then_some(())
        },
    );
    let wave = |from: u64| -> Vec<Rec> {
        (from..from + 3_000)
            .map(|n| {
                (
                    Some(n.to_string().into_bytes()),
                    json!({"order": n, "id": (n * 7) % 20_000})
                        .to_string()
                        .into_bytes(),
                    Vec::new(),
                    None,
                )
            })
            .collect()
    };
    let outs: Vec<PathBuf> = members.iter().map(|(_, _, o)| o.clone()).collect();
    let written = |outs: &[PathBuf]| -> Vec<Value> {
        outs.iter()
            .filter(|o| o.exists())
            .flat_map(|o| {
                std::fs::read_to_string(o)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    produce(&bs, &orders, &wave(0));
    wait_for("the first wave under way", Duration::from_secs(60), || {
        (written(&outs).len() >= 1_000).then_some(())
    });
    // The first member dies without a word.
    let (mut dead, dead_log, _) = members.remove(0);
    alive(&mut dead, &dead_log);
    dead.0.kill().expect("SIGKILL");
    let _ = dead.0.wait();
    produce(&bs, &orders, &wave(3_000));
    let (fourth, fourth_log, fourth_out) = member(3);
    members.push((fourth, fourth_log.clone(), fourth_out.clone()));
    let mut outs = outs;
    outs.push(fourth_out.clone());
    wait_for("the fourth member's table", Duration::from_secs(90), || {
        loaded(&fourth_log).then_some(())
    });
    produce(&bs, &orders, &wave(6_000));
    let total = 9_000usize;
    wait_for("every order", Duration::from_secs(120), || {
        for (run, log, _) in members.iter_mut() {
            alive(run, log);
        }
        let seen: BTreeSet<u64> = written(&outs)
            .iter()
            .filter_map(|r| r["order"].as_u64())
            .collect();
        (seen.len() >= total).then_some(())
    });
    for (run, log, _) in members {
        terminate(run, &log);
    }
    let rows = written(&outs);
    let mut by_order: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        if let Some(n) = r["order"].as_u64() {
            by_order.entry(n).or_default().insert(r.to_string());
        }
    }
    // What one process gives: each order once, with its customer's name.
    let expected: BTreeMap<u64, BTreeSet<String>> = (0..total as u64)
        .map(|n| {
            let id = (n * 7) % 20_000;
            let row = json!({"order": n, "id": id, "name": format!("c{id}")});
            (n, BTreeSet::from([row.to_string()]))
        })
        .collect();
    assert_eq!(by_order.len(), total, "every order came out");
    let wrong: Vec<(&u64, &BTreeSet<String>)> = by_order
        .iter()
        .filter(|(n, got)| expected.get(n) != Some(got))
        .take(3)
        .collect();
    assert!(
        wrong.is_empty(),
        "orders joined unlike one process would: {wrong:?}"
    );
    assert!(
        fourth_out.exists() && !json_lines(&fourth_out).is_empty(),
        "the fourth member took a share"
    );
    let text = std::fs::read_to_string(&fourth_log).unwrap_or_default();
    let first = text.lines().next().and_then(log_seconds);
    let loaded_at = text
        .lines()
        .find(|l| l.contains("table loaded"))
        .and_then(log_seconds);
    let (Some(first), Some(loaded_at)) = (first, loaded_at) else {
        panic!("the fourth member's log has no times:\n{text}");
    };
    let mb = table_bytes as f64 / (1 << 20) as f64;
    eprintln!(
        "scale-out lookup join: 3 members, one SIGKILLed, a fourth joined; {total} orders all joined, {} copies in all ({} duplicates from the kill and the two rebalances, at least once); the fourth loaded its {mb:.1} MB table in {:.2} s ({:.2} s/MB)",
        rows.len(),
        rows.len() - total,
        loaded_at - first,
        (loaded_at - first) / mb
    );
}

/// A window over a topic's backlog: 4 partitions holding 2,400 records one
/// second apart (spread over the partitions by key). Read from the start,
/// librdkafka hands them over a partition's chunk at a time, so event time
/// would jump back at every chunk; the source hands them on in time order
/// across its partitions, so with the default lateness of 0 no record is
/// late and every closed one-minute window counts its 60 records.
#[test]
fn a_window_over_a_partitioned_backlog_counts_every_record() {
    let bs = brokers();
    let topic = unique("backlog");
    create_topics(&bs, &[(&topic, 4)]);
    // On a minute boundary, so the windows hold 60 records each.
    let base = 1_700_000_040_000i64;
    let total = 2_400i64;
    let records: Vec<Rec> = (0..total)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                json!({"g": "all", "i": i}).to_string().into_bytes(),
                Vec::new(),
                Some(base + i * 1_000),
            )
        })
        .collect();
    produce(&bs, &topic, &records);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: backlog\nbatch_size: 100\nsources:\n  in: {{type: kafka, brokers: \"{bs}\", topics: [{topic}], group_id: {group}, start: earliest}}\nstages:\n  w:\n    plugin: {plugin}\n    inputs: [in]\n    params: {{size_ms: 60000, group_by: g}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [w]}}\n",
            group = unique("backlog-g"),
            plugin = q(&plugin("window-aggregate")),
            out = q(&out),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut run = start(&p, &log);
    // The last minute stays open (nothing comes after it): 39 close.
    wait_for("39 closed windows", Duration::from_secs(90), || {
        alive(&mut run, &log);
        (out.exists() && lines(&out).len() >= 39).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    terminate(run, &log);
    let dead = dir.path().join(".sluice/backlog/dead-letters.jsonl");
    let late = if dead.exists() { lines(&dead).len() } else { 0 };
    let counts: Vec<u64> = json_lines(&out)
        .iter()
        .take(39)
        .map(|w| w["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(late, 0, "records dead-lettered as late");
    assert_eq!(
        counts,
        vec![60; 39],
        "each closed minute counts its 60 records"
    );
}
