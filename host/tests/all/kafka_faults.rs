//! Faults between `sluice` and a real Kafka broker (`scripts/services/kafka.sh`):
//! a network cut and a slow link through the tests' TCP proxy, and a consumer
//! group member joining and leaving while records flow. Each case counts every
//! record: none lost, and duplicates only where at-least-once is the contract
//! (they are counted and printed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka::{
    alive, brokers, create_topics, json_records, kafka_pipeline, produce, start, terminate, unique,
    PrivateBroker, Reader, Run,
};
use crate::proxy::Proxy;
use crate::support::*;

/// How many times each `n` appears in a JSON-lines file (`value.n` in the
/// envelope format, `n` otherwise).
fn counts(path: &Path) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(n) = v["n"].as_u64().or_else(|| v["value"]["n"].as_u64()) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// Waits until `done` holds, failing with `what` and the log after 90 s or
/// when `sluice` exits.
fn wait(run: &mut Run, log: &Path, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        alive(run, log);
        assert!(
            Instant::now() < deadline,
            "never {what}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of the log that report a Kafka client problem.
fn kafka_warnings(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("kafka:"))
        .count()
}

/// Each `n` in `from..to` exactly once in `seen`, or which are missing and
/// which are repeated.
fn exactly_once(seen: &BTreeMap<u64, usize>, from: u64, to: u64, what: &str) {
    let missing: Vec<u64> = (from..to).filter(|n| !seen.contains_key(n)).collect();
    let repeated: Vec<(&u64, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && seen.len() as u64 == to - from,
        "{what}: {} missing (first {:?}), {} repeated (first {:?}), {} distinct",
        missing.len(),
        missing.first(),
        repeated.len(),
        repeated.first(),
        seen.len()
    );
}

/// A private broker whose `PROXIED` listener is advertised at the proxy, so
/// every connection `sluice` makes, bootstrap and partition leaders alike,
/// goes through the proxy. The test's own producer and reader use the broker's
/// direct listener, so they keep working through a cut.
#[test]
fn kafka_source_and_sink_ride_out_a_network_cut_and_a_slow_link_with_every_record_delivered() {
    let proxied_port = free_port();
    let proxy = Proxy::start(
        format!("127.0.0.1:{proxied_port}")
            .parse()
            .expect("address"),
    );
    let broker = PrivateBroker::start_with(vec![
        ("SLUICE_KAFKA_PROXIED_PORT", proxied_port.to_string()),
        (
            "SLUICE_KAFKA_PROXIED_ADDRESS",
            format!("127.0.0.1:{}", proxy.port()),
        ),
    ]);
    let direct = broker.brokers();
    let via = format!("127.0.0.1:{}", proxy.port());
    let (input, output, group) = (unique("cut-in"), unique("cut-out"), unique("cut-g"));
    create_topics(&direct, &[(&input, 2), (&output, 2)]);

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &kafka_pipeline(
            "cut",
            &format!("    type: kafka\n    brokers: {via}\n    topics: [{input}]\n    group_id: {group}\n"),
            &format!(
                "  out:\n    type: file\n    path: {}\n    inputs: [in]\n  kafka:\n    type: kafka\n    brokers: {via}\n    topic: {output}\n    inputs: [in]\n",
                q(&out)
            ),
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut run = start(&p, &log);

    produce(&direct, &input, &json_records(500, 0));
    wait(&mut run, &log, "read the first 500 records", || {
        counts(&out).len() >= 500
    });
    let through_before = proxy.accepted();
    assert!(
        through_before > 0,
        "sluice reached the broker through the proxy"
    );

    // The cut: every live connection closed, new ones refused. Records
    // produced meanwhile wait in the broker.
    let warned = kafka_warnings(&log);
    proxy.cut();
    produce(&direct, &input, &json_records(500, 500));
    wait(&mut run, &log, "log the lost connection", || {
        kafka_warnings(&log) > warned
    });
    assert_eq!(
        counts(&out).len(),
        500,
        "nothing can arrive while the link is cut"
    );
    proxy.restore();
    wait(
        &mut run,
        &log,
        "deliver the records produced during the cut",
        || counts(&out).len() >= 1000,
    );
    assert!(
        proxy.accepted() > through_before,
        "sluice reconnected through the proxy ({} connections before the cut, {} after)",
        through_before,
        proxy.accepted()
    );

    // A slow link: each chunk held 20 ms in each direction.
    proxy.slow(Duration::from_millis(20));
    produce(&direct, &input, &json_records(500, 1000));
    wait(&mut run, &log, "deliver over the slow link", || {
        counts(&out).len() >= 1500
    });
    terminate(run, &log);

    // The file sink is exactly-once: each record once.
    exactly_once(&counts(&out), 0, 1500, "file sink");
    // The Kafka sink is at-least-once: every record, duplicates counted.
    let mut reader = Reader::new(&direct, &output);
    let got = reader.read_until(Duration::from_secs(60), |g| {
        g.iter()
            .filter_map(|r| r.json()["n"].as_u64())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= 1500
    });
    let mut in_topic: BTreeMap<u64, usize> = BTreeMap::new();
    for r in got {
        if let Some(n) = r.json()["n"].as_u64() {
            *in_topic.entry(n).or_insert(0) += 1;
        }
    }
    let missing: Vec<u64> = (0..1500).filter(|n| !in_topic.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "kafka sink lost {} records (first {:?})",
        missing.len(),
        missing.first()
    );
    let duplicates: usize = in_topic.values().map(|c| c - 1).sum();
    eprintln!(
        "kafka network faults: {} connections through the proxy, {duplicates} duplicates in the output topic (at-least-once)",
        proxy.accepted()
    );
}

/// A second member joins a group while records flow, then leaves (SIGTERM)
/// while they still flow. The partitions move both ways under load; every
/// record reaches one of the two outputs. A partition's new owner starts at
/// the group's last committed offset, so records read after the previous
/// owner's last checkpoint are read again: the `kafka` source is
/// at-least-once across a rebalance, and those duplicates are counted.
#[test]
fn kafka_a_member_joining_and_leaving_under_load_loses_no_record() {
    let bs = brokers();
    let (input, group) = (unique("churn-in"), unique("churn-g"));
    create_topics(&bs, &[(&input, 4)]);
    let dir = tempfile::tempdir().expect("tmp");
    let member = |i: usize| {
        let sub = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let out = sub.join("out.jsonl");
        let p = write_pipeline(
            &sub,
            &kafka_pipeline(
                &format!("m{i}"),
                &format!("    type: kafka\n    brokers: {bs}\n    topics: [{input}]\n    group_id: {group}\n    session_timeout_ms: 6000\n"),
                &format!("  out:\n    type: file\n    path: {}\n    format: envelope\n    inputs: [in]\n", q(&out)),
            ),
        );
        (p, sub.join("sluice.log"), out)
    };
    let (pa, log_a, out_a) = member(0);
    let (pb, log_b, out_b) = member(1);

    // A producer thread: 20,000 records in batches of 250, paced so that the
    // flow lasts through both rebalances. It stops early if the test fails.
    let total: usize = 20_000;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bs, input, stop) = (bs.clone(), input.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0;
            while sent < total && !stop.load(Ordering::SeqCst) {
                produce(&bs, &input, &json_records(250, sent));
                sent += 250;
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        })
    };
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _guard = StopOnDrop(stop.clone());

    let mut a = start(&pa, &log_a);
    wait(&mut a, &log_a, "member 1 read records", || {
        counts(&out_a).len() >= 1000
    });
    let mut b = start(&pb, &log_b);
    wait(
        &mut b,
        &log_b,
        "member 2 (joined under load) read records",
        || counts(&out_b).len() >= 1000,
    );
    let a_before_leave = counts(&out_a).len();
    terminate(b, &log_b);
    let b_total = counts(&out_b).len();
    // Member 1 gets the partitions back and reads on past where it was.
    wait(
        &mut a,
        &log_a,
        "member 1 read on after member 2 left",
        || counts(&out_a).len() >= a_before_leave + 2000,
    );
    let sent = producer.join().expect("producer thread");
    assert_eq!(sent, total, "the producer sent every batch");
    let union = |a: &BTreeMap<u64, usize>, b: &BTreeMap<u64, usize>| {
        let mut u = a.clone();
        for (n, c) in b {
            *u.entry(*n).or_insert(0) += c;
        }
        u
    };
    wait(&mut a, &log_a, "every record in one of the outputs", || {
        union(&counts(&out_a), &counts(&out_b)).len() >= total
    });
    terminate(a, &log_a);

    let (ca, cb) = (counts(&out_a), counts(&out_b));
    let all = union(&ca, &cb);
    let missing: Vec<usize> = (0..total)
        .filter(|n| !all.contains_key(&(*n as u64)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records lost (first {:?})",
        missing.len(),
        missing.first()
    );
    let duplicates: usize = all.values().map(|c| c - 1).sum();
    eprintln!(
        "kafka group churn: member 1 wrote {} distinct records, member 2 {b_total}; {duplicates} duplicates (re-read from the last committed offset after a partition moved: at-least-once)",
        ca.len()
    );
}
