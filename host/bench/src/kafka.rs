//! `sluice-bench --kafka BROKERS`: Kafka → `filter` → `project` → Kafka with
//! the Wasm plugins, through `sluice run` (the `sluice` beside this binary), against a real
//! broker. Measures, in one run:
//! 1. throughput: `--events` generated `people` events are produced to a
//!    3-partition input topic first; the pipeline then starts, and the rate is
//!    input events over the time from the first to the last output record
//!    (the consumer-group join before the first record is left out);
//! 2. end-to-end latency at a steady load below that rate: each input
//!    record's Kafka timestamp is its produce time; the sink keeps it, so an
//!    output record's age when this process reads it is the latency, from
//!    producer to the output topic's consumer (p50 / p99).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use sluice::sources::datagen::records::{self, Kind, Rng};
use sluice_sdk::{Params, Transform};

use crate::convert::{into_batches, to_sdk};

/// The filter expression (the `people` workload).
const WHERE: &str = "sex = 'F' or birth_date >= '1990-01-01'";
/// The project `set` parameter.
const SET: &str =
    r#"{"age_group": "case when birth_date >= '2000-01-01' then 'young' else 'adult' end"}"#;
/// The project `drop` parameter.
const DROP: &str = r#"["phone"]"#;

const PARTITIONS: i32 = 3;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn event(seq: u64) -> Result<String> {
    let mut rng = Rng::new(7 ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (_, v) = records::record(Kind::People, &mut rng, seq);
    Ok(serde_json::to_string(&v)?)
}

fn produce(p: &BaseProducer, topic: &str, key: &str, value: &str) {
    let mut record: BaseRecord<'_, str, str> = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                p.poll(Duration::from_millis(10));
            }
            Err((e, r)) => {
                eprintln!("produce: {e}; retrying");
                record = r;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Runs the benchmark against the broker(s) at `brokers`.
pub fn run(sluice: &Path, brokers: &str, events: u64, filter: &Path, project: &Path) -> Result<()> {
    let run_id = format!("{}-{}", std::process::id(), now_ms() % 1_000_000);
    let (input, output) = (format!("bench-in-{run_id}"), format!("bench-out-{run_id}"));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for r in rt.block_on(admin.create_topics(
        &[
            NewTopic::new(&input, PARTITIONS, TopicReplication::Fixed(1)),
            NewTopic::new(&output, PARTITIONS, TopicReplication::Fixed(1)),
        ],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(15))),
    ))? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }

    // What the filter keeps, computed natively, so we know when the output is complete.
    eprintln!("generating {events} events and producing them to {input} ...");
    let lines: Vec<String> = (0..events).map(event).collect::<Result<_>>()?;
    let expected = {
        let fp = Params::new([("where", WHERE)]);
        let mut f = sluice_plugin_filter::Filter::new(&fp).map_err(anyhow::Error::msg)?;
        let mut n = 0u64;
        for b in &into_batches("bench", 1024, lines.iter().cloned()) {
            let raw = to_sdk(&b.events);
            n += sluice_sdk::run_transform(&mut f, &raw)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .events
                .events
                .len() as u64;
        }
        n
    };
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()?;
    let t = Instant::now();
    for (i, line) in lines.iter().enumerate() {
        produce(&producer, &input, &(i % 10_000).to_string(), line);
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    drop(lines);
    eprintln!(
        "  produced in {:.1} s; the filter keeps {expected} of them",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-kafka")
        .tempdir()?;
    let pipeline = dir.path().join("kafka.yaml");
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let p = |p: &Path| q(&p.display().to_string());
    std::fs::write(
        &pipeline,
        format!(
            "name: bench-kafka\ndata_dir: {}\ncheckpoint_interval_ms: 200\nbatch_size: 1024\nsources:\n  in:\n    type: kafka\n    brokers: {}\n    topics: [{}]\n    group_id: {}\n    session_timeout_ms: 6000\nstages:\n  young:\n    plugin: {}\n    inputs: [in]\n    params: {{where: {}}}\n  shape:\n    plugin: {}\n    inputs: [young]\n    params:\n      set: {}\n      drop: {}\nsinks:\n  out:\n    type: kafka\n    brokers: {}\n    topic: {}\n    inputs: [shape]\n",
            p(&dir.path().join("state")),
            q(brokers),
            q(&input),
            q(&format!("bench-{run_id}")),
            p(filter),
            q(WHERE),
            p(project),
            q(SET),
            q(DROP),
            q(brokers),
            q(&output),
        ),
    )?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-reader-{run_id}"))
        .set("fetch.wait.max.ms", "10")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for part in 0..PARTITIONS {
        tpl.add_partition_offset(&output, part, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;

    let child = Command::new(sluice)
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .arg("-q")
        .stdout(Stdio::null())
        .spawn()
        .context("starting `sluice run`")?;
    let mut running = Running(child);

    // 1. Throughput.
    let mut seen = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(900);
    while seen < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                seen += 1;
                last = Instant::now();
                first.get_or_insert(last);
            }
            Some(Err(e)) => eprintln!("  reading the output: {e}"),
            None => {
                if let Some(status) = running.0.try_wait()? {
                    bail!("`sluice run` exited ({status}) after {seen} output records");
                }
                if Instant::now() > deadline {
                    bail!("only {seen} of {expected} output records arrived");
                }
            }
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64()).max(1e-3);
    let rate = events as f64 / secs;

    // 2. Latency at a steady load.
    let steady = (rate / 4.0).clamp(1_000.0, 50_000.0) as u64;
    eprintln!("steady load: {steady} events/s for 10 s ...");
    let load_events = steady * 10;
    let stop_at = now_ms();
    let producing = {
        let brokers = brokers.to_string();
        let input = input.clone();
        std::thread::spawn(move || -> Result<()> {
            let producer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("linger.ms", "1")
                .create()?;
            let started = Instant::now();
            let per_tick = (steady / 100).max(1);
            let mut sent = 0;
            let mut tick = 0u32;
            while sent < load_events {
                let due = started + Duration::from_millis(10) * tick;
                while Instant::now() < due {
                    producer.poll(Duration::from_millis(1));
                }
                for _ in 0..per_tick {
                    produce(
                        &producer,
                        &input,
                        &(sent % 10_000).to_string(),
                        &event(sent)?,
                    );
                    sent += 1;
                }
                producer.poll(Duration::ZERO);
                tick += 1;
            }
            producer.flush(Duration::from_secs(60))?;
            Ok(())
        })
    };
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut idle_since: Option<Instant> = None;
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                idle_since = None;
                if let Some(ts) = m.timestamp().to_millis() {
                    if ts >= stop_at {
                        latencies.push(now_ms() - ts);
                    }
                }
            }
            _ => {
                let idle = *idle_since.get_or_insert_with(Instant::now);
                if producing.is_finished() && idle.elapsed() > Duration::from_secs(3) {
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
            }
        }
    }
    match producing.join() {
        Ok(r) => r?,
        Err(_) => bail!("the load thread panicked"),
    }
    latencies.sort_unstable();

    println!(
        "kafka → filter → project → kafka (Wasm plugins), {events} events, {PARTITIONS} partitions, one broker at {brokers}:"
    );
    println!(
        "  throughput: {rate:.0} events/s ({secs:.2} s from the first to the last output record; {expected} passed the filter)"
    );
    println!(
        "  end-to-end latency (produce → output topic consumer) at {steady} events/s: p50 {} ms, p99 {} ms, max {} ms over {} records (checkpoint interval 200 ms)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        latencies.len()
    );
    Ok(())
}
