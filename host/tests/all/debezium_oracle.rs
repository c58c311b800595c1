//! Real Debezium as the oracle for the `postgres-cdc` source: Debezium 3.6.1's
//! PostgreSQL connector (in the Debezium Engine, no Kafka; installed by
//! `scripts/toolchains/debezium-oracle.sh`) and `sluice run` read the same tables of
//! the real PostgreSQL through their own slots, the same changes happen, and the two
//! streams are diffed field by field. Every difference must be on [`INTENDED`], and
//! everything on it must show up: the list is the truth, and
//! docs/connectors/sources/postgres-cdc.md repeats it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres_cdc::{unique, Pg};
use crate::support::*;

/// How a field may differ between Debezium and Sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Both have it; the values differ.
    Value,
    /// Only Debezium has it.
    OnlyDebezium,
    /// Only Sluice has it.
    OnlySluice,
}

/// Whether an intended difference must show up in every run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// Always, so the list cannot go stale.
    Always,
    /// Each process's own clock or slot: equal only by chance.
    Own,
}

use Kind::{OnlyDebezium, Value as Differs};
use Seen::{Always, Own};

/// Every difference Sluice keeps on purpose: (phase, path, kind, seen, reason). The
/// phase is `snapshot` (op `r`), `stream` (everything after) or `any`; the path is the
/// field's place in the record with the row left out: `value.after.<column>`,
/// `value.source.<field>`, `key.<column>`, `topic`. docs/connectors/sources/postgres-cdc.md
/// ("Checked against Debezium 3.6.1") repeats this list.
#[rustfmt::skip]
const INTENDED: &[(&str, &str, Kind, Seen, &str)] = &[
    ("any", "value.source.version", Differs, Always, "Sluice's own version"),
    ("any", "value.ts_ms", Differs, Own, "when each process made the event"),
    ("any", "value.ts_us", Differs, Own, "when each process made the event"),
    ("any", "value.ts_ns", Differs, Own, "when each process made the event"),
    ("snapshot", "value.source.ts_ms", Differs, Own, "when each process read the snapshot"),
    ("snapshot", "value.source.ts_us", Differs, Own, "when each process read the snapshot"),
    ("snapshot", "value.source.ts_ns", Differs, Own, "when each process read the snapshot"),
    ("snapshot", "value.source.lsn", Differs, Own, "each process's own slot's consistent point"),
    ("snapshot", "value.source.txId", Differs, Always,
     "Sluice's snapshot transaction is READ ONLY, so it has no transaction id (null); Debezium's calls txid_current()"),
    ("snapshot", "value.source.snapshot", Differs, Always,
     "Sluice marks every snapshot row \"true\"; Debezium marks the first and last rows of each table and of the snapshot (first, first_in_data_collection, last_in_data_collection, last)"),
    ("any", "value.source.sequence", OnlyDebezium, Always,
     "Debezium's resume hint [last commit LSN, LSN] as a string; Sluice resumes from its checkpoint"),
    ("any", "value.after.at", Differs, Always, "timestamp: ISO-8601 string; Debezium gives epoch microseconds"),
    ("any", "value.after.day", Differs, Always, "date: ISO-8601 string; Debezium gives days since the epoch"),
    ("any", "value.after.tm", Differs, Always, "time: ISO-8601 string; Debezium gives microseconds since midnight"),
    ("any", "value.after.j", Differs, Always, "json: the JSON value itself; Debezium gives it as a string"),
    ("any", "value.after.jb", Differs, Always, "jsonb: the JSON value itself; Debezium gives it as a string"),
    ("any", "value.after.grid", Differs, Always,
     "multi-dimensional array: the literal string; Debezium 3.6.1 gives one null per row and loses the values"),
    ("stream", "value.after.nm", Differs, Always,
     "name: the value; Debezium 3.6.1 streams a `name` column as null (its snapshot has the value)"),
    ("any", "value.after.whole", Differs, Always,
     "numeric with decimal_handling double: an integral value is a JSON integer (0), Debezium writes a double (0.0)"),
];

/// One record as both write it: Debezium's topic, the key and the value (`null` for
/// a tombstone).
#[derive(Debug, Clone)]
struct Record {
    topic: String,
    key: Value,
    value: Value,
}

impl Record {
    fn as_json(&self) -> Value {
        serde_json::json!({"topic": self.topic, "key": self.key, "value": self.value})
    }

    /// Names the record in a report: op, topic, key.
    fn label(&self) -> String {
        let op = self.value["op"].as_str().unwrap_or("tombstone");
        format!("{op} {} {}", self.topic, self.key)
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

fn debezium_records(path: &Path) -> Vec<Record> {
    read_lines(path)
        .into_iter()
        .map(|l| Record {
            topic: l["topic"].as_str().unwrap_or_default().to_string(),
            key: l["key"].clone(),
            value: l["value"].clone(),
        })
        .collect()
}

fn sluice_records(path: &Path) -> Vec<Record> {
    read_lines(path)
        .into_iter()
        .map(|l| Record {
            topic: l["headers"]["sluice.topic"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            key: l["key"].clone(),
            value: l["value"].clone(),
        })
        .collect()
}

/// The oracle's install directory; installs it on first use. Fails (never skips) when
/// it cannot be installed, e.g. when Maven Central is out of reach.
fn oracle_dir() -> PathBuf {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/toolchains/debezium-oracle.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run scripts/toolchains/debezium-oracle.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "installing the Debezium oracle failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("the script prints its directory")
            .trim(),
    )
}

/// The host, port, user, password and database of `url` (`postgres://u:p@h:port/db`).
fn url_parts(url: &str) -> (String, String, String, String, String) {
    let rest = url.strip_prefix("postgres://").expect("postgres:// url");
    let (cred, addr) = rest.split_once('@').expect("url has credentials");
    let (user, password) = cred.split_once(':').expect("url has a password");
    let (hostport, db) = addr.split_once('/').expect("url has a database");
    let (host, port) = hostport.split_once(':').expect("url has a port");
    let db = db.split('?').next().unwrap_or(db);
    (
        host.into(),
        port.into(),
        user.into(),
        password.into(),
        db.into(),
    )
}

/// Starts Debezium on `tables` with its own slot and publication; records go to `out`.
/// It stops when its stdin closes.
fn start_debezium(home: &Path, dir: &Path, pg: &Pg, tables: &str, out: &Path) -> Child {
    let (host, port, user, password, db) = url_parts(&pg.url);
    let name = unique("dbz");
    let props = dir.join("debezium.properties");
    let config = format!(
        "connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         database.hostname={host}\ndatabase.port={port}\ndatabase.user={user}\n\
         database.password={password}\ndatabase.dbname={db}\n\
         topic.prefix=shop\nplugin.name=pgoutput\nslot.name={name}\npublication.name={name}\n\
         publication.autocreate.mode=filtered\ntable.include.list={tables}\n\
         slot.drop.on.stop=true\nskipped.operations=none\n\
         decimal.handling.mode=double\n\
         offset.storage=org.apache.kafka.connect.storage.FileOffsetBackingStore\n\
         offset.storage.file.filename={}\noffset.flush.interval.ms=0\n",
        dir.join("debezium.offsets").display()
    );
    std::fs::write(&props, config).expect("write debezium.properties");
    let log = std::fs::File::create(dir.join("debezium.log")).expect("debezium.log");
    let classpath = format!("{0}/classes:{0}/libs/*", home.display());
    Command::new("java")
        // A small heap: the default takes a quarter of the machine beside other tests.
        .arg("-Xmx512m")
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .arg("-cp")
        .arg(classpath)
        .arg("DebeziumOracle")
        .arg(&props)
        .arg(out)
        .args(["0", "300"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn java (a JDK 17+ must be installed)")
}

/// Starts `sluice run` on `tables` with its own slot (returned) and publication.
fn start_sluice(dir: &Path, pg: &Pg, tables: &str, out: &Path) -> (Child, String) {
    let slot = unique("sluice");
    let p = write_pipeline(
        dir,
        &format!(
            "name: oracle\ncheckpoint_interval_ms: 200\nsources:\n  pg:\n    type: postgres-cdc\n    url: {}\n    name: shop\n    slot: {slot}\n    publication: {slot}\n    tables: [{tables}]\n    tombstones_on_delete: true\n    heartbeat_interval_ms: 200\nsinks:\n  out: {{type: file, path: {}, format: envelope, inputs: [pg]}}\n",
            serde_json::to_string(&pg.url).expect("json"),
            q(out)
        ),
    );
    let log = std::fs::File::create(dir.join("sluice.log")).expect("sluice.log");
    let child = sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn sluice");
    (child, slot)
}

/// Both processes under test, with their outputs and logs.
struct Pair {
    dir: PathBuf,
    debezium: Child,
    sluice: Child,
}

impl Pair {
    fn debezium_out(&self) -> PathBuf {
        self.dir.join("debezium.jsonl")
    }

    fn sluice_out(&self) -> PathBuf {
        self.dir.join("sluice.jsonl")
    }

    fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "debezium.log:\n{}\nsluice.log:\n{}",
            tail("debezium.log"),
            tail("sluice.log")
        )
    }

    /// Waits until both outputs satisfy `done`, failing if either process exits.
    fn wait(&mut self, what: &str, secs: u64, done: impl Fn(&[Record]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let d = debezium_records(&self.debezium_out());
            let s = sluice_records(&self.sluice_out());
            if done(&d) && done(&s) {
                return;
            }
            let exited = [
                ("debezium", &mut self.debezium),
                ("sluice", &mut self.sluice),
            ]
            .into_iter()
            .find_map(|(name, child)| child.try_wait().ok().flatten().map(|st| (name, st)));
            if let Some((name, status)) = exited {
                panic!(
                    "{name} exited ({status}) waiting for {what}\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} after {secs}s: debezium has {} records, sluice {}\n{}",
                d.len(),
                s.len(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pair {
    /// Stops both gracefully (Debezium on stdin's end, Sluice on SIGTERM) so each
    /// drops or releases its slot, also when the test fails half-way.
    fn drop(&mut self) {
        drop(self.debezium.stdin.take());
        let pid = self.sluice.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        for child in [&mut self.debezium, &mut self.sluice] {
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One difference: where, how, and the first record it was seen in.
#[derive(Debug)]
struct Diff {
    phase: &'static str,
    path: String,
    kind: Kind,
    example: String,
}

/// Compares `d` (Debezium) and `s` (Sluice) at `path`: objects field by field down to
/// a column or `source` field, anything else whole.
fn diff_value(
    phase: &'static str,
    path: &str,
    d: &Value,
    s: &Value,
    label: &str,
    out: &mut Vec<Diff>,
) {
    let depth = path.matches('.').count();
    match (d, s) {
        (Value::Object(dm), Value::Object(sm)) if depth < 2 => {
            for (k, dv) in dm {
                let p = format!("{path}.{k}");
                match sm.get(k) {
                    Some(sv) => diff_value(phase, &p, dv, sv, label, out),
                    None => out.push(Diff {
                        phase,
                        path: p,
                        kind: Kind::OnlyDebezium,
                        example: format!("{label}: debezium {dv}"),
                    }),
                }
            }
            for (k, sv) in sm {
                if !dm.contains_key(k) {
                    out.push(Diff {
                        phase,
                        path: format!("{path}.{k}"),
                        kind: Kind::OnlySluice,
                        example: format!("{label}: sluice {sv}"),
                    });
                }
            }
        }
        _ if d == s => {}
        _ => out.push(Diff {
            phase,
            path: path.to_string(),
            kind: Kind::Value,
            example: format!("{label}: debezium {d} | sluice {s}"),
        }),
    }
}

/// Field paths as in [`INTENDED`]: the record's parts under `key`, `value`, `topic`.
fn diff_records(d: &Record, s: &Record, out: &mut Vec<Diff>) {
    let label = d.label();
    let phase = if d.value["op"] == "r" {
        "snapshot"
    } else {
        "stream"
    };
    if d.topic != s.topic {
        out.push(Diff {
            phase,
            path: "topic".into(),
            kind: Kind::Value,
            example: format!("{label}: debezium {} | sluice {}", d.topic, s.topic),
        });
    }
    diff_value(phase, "key", &d.key, &s.key, &label, out);
    diff_value(phase, "value", &d.value, &s.value, &label, out);
}

/// Orders a snapshot's records by table and key (both read tables in their own order).
fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|r| (r.topic.clone(), r.key.to_string()));
    records
}

fn table_of_types() -> &'static str {
    // The types of the CDC docs' type table, one column each, plus a large text that
    // PostgreSQL TOASTs (random hex, so it stays over 2 kB compressed).
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
     CREATE TABLE kinds (
       id INT PRIMARY KEY, i2 SMALLINT, i8 BIGINT, o OID, f4 REAL, f8 DOUBLE PRECISION,
       num NUMERIC(10,2), whole NUMERIC, ok BOOLEAN, t TEXT, vc VARCHAR(20), ch CHAR(3),
       nm NAME, u UUID, tm TIME, m mood, j JSON, jb JSONB, raw BYTEA, at TIMESTAMP,
       atz TIMESTAMPTZ, day DATE, tags INT[], grid INT[][], big TEXT);
     CREATE TABLE full_rows (id INT PRIMARY KEY, name TEXT, n INT);
     ALTER TABLE full_rows REPLICA IDENTITY FULL;"
}

const ROW_1: &str = "(1, 7, 9000000000, 42, 1.5, 2.25, 50.50, 12345678901234567890, true, 'text', \
    'varchar', 'ab', 'a_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10:20:30.5', 'happy', \
    '{\"a\": [1, 2]}', '{\"b\": {\"c\": null}}', '\\x6869', '2024-05-01 10:20:30.5', \
    '2024-05-01 12:00:00+02', '2024-05-01', '{1,NULL,3}', '{{1,2},{3,4}}', \
    (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i))";

const ROW_2: &str = "(2, -1, -2, 0, 'NaN', '-Infinity', -0.01, 0, false, '', 'v', 'x', 'n', \
    '00000000-0000-0000-0000-000000000000', '00:00:00', 'sad', '[]', 'null', '\\x', \
    '1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '1900-02-28', '{}', '{{5}}', 'small')";

#[test]
fn postgres_cdc_matches_real_debezium_field_by_field() {
    // First, so that a machine without Debezium fails here before making anything.
    let oracle = oracle_dir();
    let pg = Pg::fresh("dbz_oracle");
    pg.exec(table_of_types());
    pg.exec(&format!(
        "INSERT INTO kinds VALUES {ROW_1}, {ROW_2};
         INSERT INTO kinds (id) VALUES (3);
         INSERT INTO full_rows VALUES (1, 'one', 1), (2, 'two', 2);"
    ));
    let snapshot_rows = 5;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let debezium = start_debezium(
        &oracle,
        &dir,
        &pg,
        "public.kinds,public.full_rows",
        &dir.join("debezium.jsonl"),
    );
    let (sluice, slot) = start_sluice(&dir, &pg, "kinds, full_rows", &dir.join("sluice.jsonl"));
    let mut pair = Pair {
        dir: dir.clone(),
        debezium,
        sluice,
    };
    // Changes start only once both have read the snapshot, so each change is streamed
    // by both rather than read by one snapshot and streamed by the other.
    pair.wait("snapshot", 120, |r| r.len() >= snapshot_rows);

    // Insert, update (the TOASTed `big` unchanged), delete (default replica identity:
    // the key only), the same on a REPLICA IDENTITY FULL table, a multi-statement
    // transaction across both tables, and a last insert that marks the end.
    pg.exec("INSERT INTO kinds (id, t, tags) VALUES (10, 'new', '{7}')");
    pg.exec("UPDATE kinds SET t = 'changed', num = 1.25 WHERE id = 1");
    pg.exec("DELETE FROM kinds WHERE id = 2");
    pg.exec("UPDATE full_rows SET n = 20 WHERE id = 2");
    pg.exec("DELETE FROM full_rows WHERE id = 1");
    pg.exec(
        "BEGIN;
         INSERT INTO kinds (id, t) VALUES (11, 'tx');
         UPDATE kinds SET t = 'tx2' WHERE id = 11;
         INSERT INTO full_rows VALUES (3, 'three', 3);
         DELETE FROM kinds WHERE id = 3;
         COMMIT;",
    );
    pg.exec("TRUNCATE kinds");
    pg.exec("INSERT INTO full_rows VALUES (999, 'end', 0)");
    let is_end = |r: &Record| r.topic == "shop.public.full_rows" && r.value["after"]["id"] == 999;
    pair.wait("the end marker", 120, |rs| rs.iter().any(is_end));
    let debezium = debezium_records(&pair.debezium_out());
    let sluice = sluice_records(&pair.sluice_out());
    let logs = pair.logs();
    drop(pair);
    // Sluice keeps its slot across runs by design; this one is done with it.
    pg.drop_slot(&slot);

    // Same records: the snapshot in any order, the stream in commit order.
    let dump = |rs: &[Record]| {
        rs.iter()
            .map(|r| r.as_json().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        debezium.len(),
        sluice.len(),
        "record counts differ\ndebezium:\n{}\nsluice:\n{}\n{logs}",
        dump(&debezium),
        dump(&sluice)
    );
    let split = |rs: &[Record]| {
        let (snap, stream): (Vec<_>, Vec<_>) =
            rs.iter().cloned().partition(|r| r.value["op"] == "r");
        (sorted(snap), stream)
    };
    let (d_snap, d_stream) = split(&debezium);
    let (s_snap, s_stream) = split(&sluice);
    assert_eq!(
        d_snap.len(),
        snapshot_rows,
        "debezium's snapshot:\n{}",
        dump(&d_snap)
    );
    let mut diffs = Vec::new();
    for (d, s) in d_snap
        .iter()
        .chain(&d_stream)
        .zip(s_snap.iter().chain(&s_stream))
    {
        assert_eq!(
            (d.topic.as_str(), &d.key, d.value["op"].as_str()),
            (s.topic.as_str(), &s.key, s.value["op"].as_str()),
            "the streams are out of step\ndebezium:\n{}\nsluice:\n{}",
            dump(&debezium),
            dump(&sluice)
        );
        diff_records(d, s, &mut diffs);
    }

    // Every difference must be intended, and every intended one must occur.
    let mut found: BTreeMap<(&str, String, Kind), String> = BTreeMap::new();
    for d in diffs {
        found.entry((d.phase, d.path, d.kind)).or_insert(d.example);
    }
    let listed = |phase: &str, path: &str, kind: Kind| {
        INTENDED
            .iter()
            .any(|(ph, p, k, _, _)| (*ph == "any" || *ph == phase) && *p == path && *k == kind)
    };
    let mut report = String::new();
    for ((phase, path, kind), example) in &found {
        if !listed(phase, path, *kind) {
            let _ = writeln!(
                report,
                "unexpected: {phase} {path} {kind:?}  e.g. {example}"
            );
        }
    }
    for (phase, path, kind, seen, _) in INTENDED {
        let occurred = found
            .keys()
            .any(|(ph, p, k)| (*phase == "any" || phase == ph) && p == path && k == kind);
        if *seen == Always && !occurred {
            let _ = writeln!(
                report,
                "listed as intended but not seen: {phase} {path} {kind:?}"
            );
        }
    }
    assert!(
        report.is_empty(),
        "Sluice and Debezium 3.6.1 differ:\n{report}\ndebezium:\n{}\nsluice:\n{}",
        dump(&debezium),
        dump(&sluice)
    );
}
