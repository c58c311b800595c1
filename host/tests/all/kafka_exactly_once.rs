//! Exactly-once Kafka → Kafka (`delivery: exactly_once`): `sluice run` is
//! killed with SIGKILL at random points while records keep arriving, then
//! runs to the end; Python's confluent-kafka reads the output with
//! `isolation.level=read_committed` and finds every input record once.

use super::*;

/// Reads every partition of a topic from the start until each is at its end
/// and nothing new came for 2 s; prints counts per input number.
const PY_READ: &str = r#"
import sys, json, time, uuid
from confluent_kafka import Consumer, TopicPartition, KafkaError
bs, topic, parts, total, isolation = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = Consumer({"bootstrap.servers": bs, "group.id": "py-" + uuid.uuid4().hex[:8],
              "isolation.level": isolation, "enable.auto.commit": False,
              "enable.partition.eof": True, "auto.offset.reset": "error"})
c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
counts, at_end, t0, last = {}, set(), time.time(), time.time()
while time.time() - t0 < 120:
    m = c.poll(0.2)
    if m is None:
        if len(at_end) == parts and time.time() - last > 2:
            break
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(m.partition())
            continue
        raise SystemExit("consume error: %s" % m.error())
    last = time.time()
    at_end.discard(m.partition())
    n = json.loads(m.value())["n"]
    counts[n] = counts.get(n, 0) + 1
c.close()
print(json.dumps({"records": sum(counts.values()),
                  "missing": sum(1 for n in range(total) if n not in counts),
                  "duplicates": sum(v - 1 for v in counts.values() if v > 1),
                  "unexpected": sum(1 for n in counts if not 0 <= n < total)}))
"#;

fn read_output(bs: &str, topic: &str, total: usize, isolation: &str) -> Value {
    let out = run_python(PY_READ, &[bs, topic, "3", &total.to_string(), isolation]);
    serde_json::from_str(out.trim()).expect("JSON from python")
}

/// xorshift64: random kill points, reproducible from the printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn kafka_exactly_once_to_kafka_survives_sigkill_at_random_points_without_loss_or_duplicates() {
    let bs = brokers();
    let (input, output, group) = (unique("eos-in"), unique("eos-out"), unique("eos-g"));
    create_topics(&bs, &[(&input, 3), (&output, 3)]);
    // Records keep arriving until the last kill, however slow the machine, so
    // every kill lands mid-stream; the producer says how many it wrote.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (bs, input, stop) = (bs.clone(), input.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut chunk = 0;
            while chunk < 1_500 && (chunk < 20 || !stop.load(std::sync::atomic::Ordering::SeqCst)) {
                produce(&bs, &input, &json_records(500, chunk * 500));
                chunk += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            chunk * 500
        })
    };
    let dir = tempfile::tempdir().expect("tmp");
    // Static membership: a restarted process takes its partitions back at
    // once instead of waiting for the killed one's session to expire.
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            &unique("eos"),
            &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n    properties: {{group.instance.id: {group}-member}}\n"),
            &format!("  out:\n    type: kafka\n    brokers: {bs}\n    topic: {output}\n    delivery: exactly_once\n    inputs: [in]\n"),
        ),
    );
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(88_172_645_463_325_252, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kafka exactly-once test: seed {seed}");
    let mut at_kill = Vec::new();
    let mut last_commit = 0;
    for run in 0..12 {
        let log = dir.path().join(format!("run{run}.log"));
        let mut child = start(&p, &log);
        // Wait for a fact, not a time: this run has committed a transaction
        // (the group's offsets moved), so the kill can only land mid-stream
        // and with work in flight; then a random extra wait moves the kill
        // point around within the checkpoint cycle.
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed(&bs, &group, &input, 3) <= last_commit {
            alive(&mut child, &log);
            assert!(
                Instant::now() < deadline,
                "run {run} committed nothing past offset {last_commit} in 120 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let wait = Duration::from_millis(next(&mut seed) % 1_500);
        std::thread::sleep(wait);
        alive(&mut child, &log);
        child.0.kill().expect("SIGKILL");
        let _ = child.0.wait();
        last_commit = committed(&bs, &group, &input, 3);
        at_kill.push((wait.as_millis(), last_commit));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let total = producing.join().expect("producer thread");
    let log = dir.path().join("final.log");
    let mut child = start(&p, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    while lag(&bs, &group, &input, 3) > 0 {
        alive(&mut child, &log);
        assert!(
            Instant::now() < deadline,
            "lag still {} after 120 s:\n{}",
            lag(&bs, &group, &input, 3),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(child, &log);
    eprintln!(
        "kafka exactly-once test: {total} records; (ms after a commit, input offsets committed) at each kill: {at_kill:?}"
    );
    let mid_stream = at_kill
        .iter()
        .filter(|(_, c)| *c > 0 && *c < total as i64)
        .count();
    assert_eq!(
        mid_stream, 12,
        "every kill landed mid-stream: {at_kill:?} of {total}"
    );
    let committed_view = read_output(&bs, &output, total, "read_committed");
    let everything = read_output(&bs, &output, total, "read_uncommitted");
    eprintln!("kafka exactly-once test: read_committed {committed_view}; read_uncommitted {everything} (aborted transactions included)");
    assert_eq!(
        committed_view,
        json!({"records": total, "missing": 0, "duplicates": 0, "unexpected": 0}),
        "read_committed sees every input record exactly once"
    );
    assert_eq!(committed(&bs, &group, &input, 3), total as i64);
}

#[test]
fn kafka_exactly_once_refuses_a_source_that_cannot_hand_over_its_offsets() {
    let bs = brokers();
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\": 1}\n").expect("input");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: eosfile\nsources:\n  in:\n    type: file\n    path: {}\nsinks:\n  out:\n    type: kafka\n    brokers: {bs}\n    topic: {}\n    delivery: exactly_once\n    inputs: [in]\n",
            q(&input),
            unique("eos-file")
        ),
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains(
            "sink `out` delivers exactly once, but source `in` cannot hand its progress to it"
        ),
        "{err}"
    );
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: eosbad\nsources:\n  in:\n    type: file\n    path: {}\nsinks:\n  out:\n    type: kafka\n    brokers: {bs}\n    topic: t\n    delivery: exactly_once\n    idempotent: false\n    inputs: [in]\n",
            q(&input)
        ),
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(err.contains("sinks.out.idempotent"), "{err}");
}
