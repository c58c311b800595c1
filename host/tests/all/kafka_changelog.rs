//! Keyed state over compacted changelog topics (`state: changelog` on the
//! `kafka` source), against the real broker: a window aggregate behind a
//! lookup join, scaled out over three `sluice run` processes, one killed with
//! SIGKILL mid-stream and a fourth joining later, gives the windows one
//! process gives.

use super::*;

/// Customers: orders are keyed (so partitioned) by customer, and the
/// window groups by the customer's name, so each group's state lives with
/// one partition.
const CUSTOMERS: u64 = 50;
/// One order every 200 ms of event time: 300 orders a minute, six per
/// customer.
const STEP_MS: i64 = 200;
/// On a minute boundary.
const BASE_MS: i64 = 1_700_000_040_000;

fn orders(from: u64, n: u64) -> Vec<Rec> {
    (from..from + n)
        .map(|n| {
            let id = n % CUSTOMERS;
            (
                Some(id.to_string().into_bytes()),
                json!({"order": n, "id": id}).to_string().into_bytes(),
                Vec::new(),
                Some(BASE_MS + n as i64 * STEP_MS),
            )
        })
        .collect()
}

fn pipeline(dir: &Path, name: &str, bs: &str, topics: (&str, &str), group: &str) -> PathBuf {
    let (orders, customers) = topics;
    write_pipeline(
        dir,
        &format!(
            "name: {name}\nbatch_size: 100\ncheckpoint_interval_ms: 500\nsources:\n  orders: {{type: kafka, brokers: \"{bs}\", topics: [{orders}], group_id: {group}, start: earliest, session_timeout_ms: 6000, state: changelog}}\n  customers: {{type: kafka, brokers: \"{bs}\", topics: [{customers}], assign: all}}\ntables:\n  people: {{input: customers, key_field: id}}\nstages:\n  j:\n    plugin: {join}\n    inputs: [orders]\n    tables: [people]\n    params: {{table: people, on: id, fields: \"order, id, table.name as name\"}}\n  w:\n    plugin: {window}\n    inputs: [j]\n    params: {{size_ms: 60000, group_by: name, aggregates: \"count, sum(order) as total\"}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [w]}}\n",
            join = q(&plugin("lookup-join")),
            window = q(&plugin("window-aggregate")),
            out = q(&dir.join("out.jsonl")),
        ),
    )
}

/// (customer name, window start) → every distinct (count, total) written.
type Windows = BTreeMap<(String, i64), BTreeSet<(u64, u64)>>;

fn windows(outs: &[PathBuf]) -> Windows {
    let mut w = Windows::new();
    for o in outs.iter().filter(|o| o.exists()) {
        // A line being written may be cut short: only whole ones count.
        let text = std::fs::read_to_string(o).unwrap_or_default();
        for r in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            let (Some(name), Some(start)) = (r["key"].as_str(), r["window_start"].as_i64()) else {
                continue;
            };
            w.entry((name.to_string(), start)).or_default().insert((
                r["count"].as_u64().unwrap_or(0),
                // A sum is a JSON float (`750.0`).
                r["total"].as_f64().map_or(0, |t| t as u64),
            ));
        }
    }
    w
}

/// What a window must hold, from the orders themselves.
fn expected(name: &str, start: i64, total: u64) -> (u64, u64) {
    let id: u64 = name.trim_start_matches('c').parse().unwrap_or(u64::MAX);
    let ns: Vec<u64> = (0..total)
        .filter(|n| n % CUSTOMERS == id)
        .filter(|n| {
            let t = BASE_MS + *n as i64 * STEP_MS;
            t >= start && t < start + 60_000
        })
        .collect();
    (ns.len() as u64, ns.iter().sum())
}

fn restores(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("state restored from the changelog"))
        .map(str::to_string)
        .collect()
}

/// A `key=value` field of a log line, as a number.
fn field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}

/// Three members in one group split 6 order partitions; each joins the
/// orders to the customers table and counts them per customer in one-minute
/// event-time windows, keeping the windows' state per partition in
/// changelog topics. The first member is SIGKILLed mid-stream, a fourth
/// joins later. Every window that closes holds exactly what one process
/// gives (run first, in a group of its own), and what the orders say:
/// state moved with its partitions, no order was counted twice or lost.
/// Prints the restore figures the fourth member logged.
#[test]
fn a_scaled_out_window_aggregate_moves_its_state_with_its_partitions() {
    let bs = brokers();
    let (orders_topic, customers) = (unique("cl-orders"), unique("cl-customers"));
    create_topics(&bs, &[(&orders_topic, 6), (&customers, 3)]);
    produce(&bs, &customers, &customer_records(CUSTOMERS, None));
    let total = 9_000u64;
    // Three waves, their ends inside a minute, so windows straddle them.
    let waves = [(0, 2_500), (2_500, 3_000), (5_500, 3_500)];
    produce(&bs, &orders_topic, &orders(0, total));
    let topics = (orders_topic.as_str(), customers.as_str());

    // One process, all partitions: the reference.
    let dir = tempfile::tempdir().expect("tmp");
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).expect("dir");
    let p = pipeline(&one, "one", &bs, topics, &unique("cl-one"));
    let one_log = one.join("sluice.log");
    let mut run = start(&p, &one_log);
    // Each partition's last minute stays open: its watermark never passes
    // it. The 30 minutes of orders close 29 windows per customer at least.
    let one_out = vec![one.join("out.jsonl")];
    wait_for("one process's windows", Duration::from_secs(120), || {
        alive(&mut run, &one_log);
        (windows(&one_out).len() >= 29 * CUSTOMERS as usize).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    terminate(run, &one_log);
    let reference = windows(&one_out);
    for ((name, start), got) in &reference {
        assert_eq!(
            got,
            &BTreeSet::from([expected(name, *start, total)]),
            "one process: window {name} at {start}"
        );
    }

    // The members read the same orders from a topic of their own, in
    // waves: the first before the kill, the second before the fourth
    // joins, the third after.
    let members_topic = unique("cl-orders-m");
    create_topics(&bs, &[(&members_topic, 6)]);
    let topics = (members_topic.as_str(), customers.as_str());
    // Three members, then one fewer, then a fourth.
    let group = unique("cl-g");
    let member = |i: usize| -> (Run, PathBuf, PathBuf) {
        let sub = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let p = pipeline(&sub, &format!("m{i}"), &bs, topics, &group);
        let log = sub.join("sluice.log");
        (start(&p, &log), log, sub.join("out.jsonl"))
    };
    let wave = |i: usize| {
        let (from, n) = waves[i];
        produce(&bs, &members_topic, &orders(from, n));
    };
    wave(0);
    let mut members: Vec<(Run, PathBuf, PathBuf)> = (0..3).map(member).collect();
    let mut outs: Vec<PathBuf> = members.iter().map(|(_, _, o)| o.clone()).collect();
    wait_for("the first windows", Duration::from_secs(120), || {
        for (run, log, _) in members.iter_mut() {
            alive(run, log);
        }
        (windows(&outs).len() >= 100).then_some(())
    });
    let (mut dead, dead_log, _) = members.remove(0);
    alive(&mut dead, &dead_log);
    dead.0.kill().expect("SIGKILL");
    let _ = dead.0.wait();
    wave(1);
    let (fourth, fourth_log, fourth_out) = member(3);
    wait_for(
        "the fourth member holding partitions",
        Duration::from_secs(90),
        || holds(&fourth_log, &members_topic).then_some(()),
    );
    wave(2);
    members.push((fourth, fourth_log.clone(), fourth_out.clone()));
    outs.push(fourth_out);
    wait_for(
        "every window one process closed",
        Duration::from_secs(180),
        || {
            for (run, log, _) in members.iter_mut() {
                alive(run, log);
            }
            let got = windows(&outs);
            reference.keys().all(|k| got.contains_key(k)).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    for (run, log, _) in members {
        terminate(run, &log);
    }
    let got = windows(&outs);
    let wrong: Vec<_> = got
        .iter()
        .filter(|(k, v)| reference.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "windows unlike one process's ({} of {}): {wrong:?}",
        got.iter()
            .filter(|(k, v)| reference.get(k) != Some(v))
            .count(),
        got.len()
    );
    // The survivors took the dead member's partitions over from the
    // changelog, and the fourth took some over from them.
    let fourth = restores(&fourth_log);
    assert!(
        !fourth.is_empty(),
        "the fourth member restored no partition"
    );
    let (mut bytes, mut ms) = (0.0, 0.0);
    for l in &fourth {
        bytes += field(l, "read_bytes").unwrap_or(0.0);
        ms += field(l, "ms").unwrap_or(0.0);
    }
    let mb = bytes / f64::from(1u32 << 20);
    eprintln!(
        "changelog scale-out: {} windows equal to one process's; the fourth member restored {} partition states ({bytes:.0} bytes read) in {ms:.0} ms{}",
        got.len(),
        fourth.len(),
        if mb > 0.0 {
            format!(" ({:.2} s/MB)", ms / 1e3 / mb)
        } else {
            String::new()
        }
    );
}

/// Restore at size: one member counts 120,000 orders in 60,000 groups
/// (two orders each) in a window that stays open, and is SIGKILLed once
/// the group's offsets cover every order. A new member, with a fresh state
/// directory, takes the six partitions over and reads their state back
/// from the changelog; records that close the window then give every
/// group's full count. Prints the restore time per MB read.
#[test]
fn a_new_member_reads_a_large_state_back_from_the_changelog() {
    let bs = brokers();
    let topic = unique("cl-big");
    create_topics(&bs, &[(&topic, 6)]);
    let (orders, groups) = (120_000u64, 60_000u64);
    let records: Vec<Rec> = (0..orders)
        .map(|n| {
            let g = n % groups;
            (
                Some(g.to_string().into_bytes()),
                json!({"order": n, "g": g}).to_string().into_bytes(),
                Vec::new(),
                // Rising with the offset, within the first minute: no
                // record is behind its partition's watermark.
                Some(BASE_MS + (n * 400 / 1_000) as i64),
            )
        })
        .collect();
    produce(&bs, &topic, &records);
    let group = unique("cl-big-g");
    let dir = tempfile::tempdir().expect("tmp");
    let member = |name: &str| -> (Run, PathBuf, PathBuf) {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).expect("dir");
        let out = sub.join("out.jsonl");
        let p = write_pipeline(
            &sub,
            &format!(
                "name: {name}\nbatch_size: 1000\ncheckpoint_interval_ms: 1000\nsources:\n  orders: {{type: kafka, brokers: \"{bs}\", topics: [{topic}], group_id: {group}, start: earliest, session_timeout_ms: 6000, state: changelog}}\nstages:\n  w:\n    plugin: {window}\n    inputs: [orders]\n    params: {{size_ms: 60000, group_by: g, aggregates: \"count, sum(order) as total\"}}\nsinks:\n  out: {{type: file, path: {out}, inputs: [w]}}\n",
                window = q(&plugin("window-aggregate")),
                out = q(&out),
            ),
        );
        let log = sub.join("sluice.log");
        (start(&p, &log), log, out)
    };
    let (mut first, first_log, _) = member("first");
    wait_for(
        "every order counted and committed",
        Duration::from_secs(180),
        || {
            alive(&mut first, &first_log);
            (lag(&bs, &group, &topic, 6) == 0).then_some(())
        },
    );
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();
    let (mut second, second_log, out) = member("second");
    wait_for(
        "the second member holding the partitions",
        Duration::from_secs(90),
        || {
            alive(&mut second, &second_log);
            holds(&second_log, &topic).then_some(())
        },
    );
    // Two minutes on, one record per key of 200: every partition's
    // watermark passes the window.
    let closing: Vec<Rec> = (0..200)
        .map(|i| {
            (
                Some(format!("close-{i}").into_bytes()),
                json!({"order": -1, "g": format!("close-{i}")})
                    .to_string()
                    .into_bytes(),
                Vec::new(),
                Some(BASE_MS + 120_000),
            )
        })
        .collect();
    produce(&bs, &topic, &closing);
    wait_for("every group's window", Duration::from_secs(60), || {
        alive(&mut second, &second_log);
        (out.exists() && lines(&out).len() >= groups as usize).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    terminate(second, &second_log);
    let mut seen = BTreeSet::new();
    for l in lines(&out) {
        let Ok(r) = serde_json::from_str::<Value>(&l) else {
            continue;
        };
        let g: u64 = r["key"]
            .as_str()
            .and_then(|k| k.parse().ok())
            .expect("group key");
        assert_eq!(r["count"], json!(2), "group {g}: {r}");
        assert_eq!(
            r["total"].as_f64().map(|t| t as u64),
            Some(2 * g + groups),
            "group {g}: {r}"
        );
        seen.insert(g);
    }
    assert_eq!(seen.len() as u64, groups, "every group's window came out");
    let restored = restores(&second_log);
    assert_eq!(restored.len(), 6, "six partitions read back: {restored:?}");
    let sum = |key: &str| {
        restored
            .iter()
            .map(|l| field(l, key).unwrap_or(0.0))
            .sum::<f64>()
    };
    assert_eq!(sum("entries") as u64, groups, "{restored:?}");
    let (read, state, ms, fence) = (sum("read_bytes"), sum("bytes"), sum("ms"), sum("fence_ms"));
    let mb = read / f64::from(1u32 << 20);
    eprintln!(
        "changelog restore: 6 partitions, {groups} entries and timers, {:.1} MB of state, {mb:.1} MB of records read in {:.2} s ({:.2} s of it taking the producers over): {:.2} s/MB, {:.2} s/MB without the take-over",
        state / f64::from(1u32 << 20),
        ms / 1e3,
        fence / 1e3,
        ms / 1e3 / mb,
        (ms - fence) / 1e3 / mb,
    );
}
