//! The `postgres-cdc` source against a real PostgreSQL 15 (Debian package,
//! `wal_level=logical`), started by `scripts/services/postgres.sh` (the test
//! script does it and exports `SLUICE_PG_URL`). Every test works in its own
//! database with its own replication slot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn admin_url() -> String {
    service("SLUICE_PG_URL", "postgres")
}

pub fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// A client for one test database.
pub struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    pub url: String,
}

impl Pg {
    /// Creates a fresh database and connects to it.
    pub fn fresh(prefix: &str) -> Pg {
        let db = unique(prefix);
        let admin = Pg::connect(&admin_url());
        admin.exec(&format!("CREATE DATABASE {db}"));
        let base = admin_url();
        let url = format!(
            "{}/{db}",
            &base[..base.rfind('/').expect("url has a database")]
        );
        Pg::connect(&url)
    }

    pub fn connect(url: &str) -> Pg {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (client, conn) = rt
            .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        rt.spawn(conn);
        Pg {
            rt,
            client,
            url: url.to_string(),
        }
    }

    pub fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Drops a replication slot once no session holds it: a run that just
    /// stopped (or was killed) can leave its walsender holding the slot
    /// until the server notices (SQLSTATE 55006), for up to 30 s here.
    pub fn drop_slot(&self, slot: &str) {
        let sql = format!("SELECT pg_drop_replication_slot('{slot}')");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match self.rt.block_on(self.client.batch_execute(&sql)) {
                Ok(()) => return,
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) => panic!("{sql}: {e:?}"),
            }
        }
    }

    /// The first column of the first row, as text.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        let msgs = self
            .rt
            .block_on(self.client.simple_query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        msgs.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
    }

    /// `url` with another user and password.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let rest = &self.url[self.url.find('@').expect("url has credentials")..];
        format!("postgres://{user}:{password}{rest}")
    }
}

fn lsn(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').expect("lsn");
    (u64::from_str_radix(hi, 16).expect("hex") << 32) | u64::from_str_radix(lo, 16).expect("hex")
}

fn pipeline(dir: &Path, name: &str, source: &str, out: &Path) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  pg:\n{source}\nsinks:\n  out: {{type: file, path: {}, format: envelope, inputs: [pg]}}\n",
            q(out)
        ),
    )
}

/// A running `sluice run` with its stderr drained as it comes (a child
/// blocked on a full pipe would stall the test); derefs to the child.
struct Run {
    child: Child,
    stderr: Stderr,
}

impl std::ops::Deref for Run {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

fn start(p: &Path) -> Run {
    let mut child = sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let stderr = Stderr::drain(&mut child);
    Run { child, stderr }
}

fn out_lines(path: &Path) -> Vec<Value> {
    if !path.exists() {
        return Vec::new();
    }
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the output has `n` lines or the child dies.
fn wait_lines(child: &mut Run, path: &Path, n: usize, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let lines = out_lines(path);
        if lines.len() >= n {
            return lines;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "sluice exited ({status}) with {} of {n} lines:\n{}",
                lines.len(),
                child.stderr.text_at_exit()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "only {} of {n} lines after {secs}s: {lines:#?}",
                lines.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(mut run: Run) -> String {
    let pid = run.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = run.child.wait().expect("wait");
    let err = run.stderr.finish();
    assert!(status.success(), "graceful stop exits 0: {err}");
    err
}

fn ops(lines: &[Value]) -> Vec<(String, Value, Value, Value)> {
    lines
        .iter()
        .map(|l| {
            let v = &l["value"];
            (
                v["op"].as_str().unwrap_or("?").to_string(),
                l["key"].clone(),
                v["before"].clone(),
                v["after"].clone(),
            )
        })
        .collect()
}

#[test]
fn snapshot_then_stream_gives_exact_debezium_events() {
    let pg = Pg::fresh("cdc_exact");
    pg.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT, age INT);
         CREATE TABLE kinds (id INT PRIMARY KEY, price NUMERIC(10,2), ok BOOL, at TIMESTAMP,
           atz TIMESTAMPTZ, day DATE, u UUID, doc JSONB, tags INT[], raw BYTEA, m mood);
         ALTER TABLE kinds REPLICA IDENTITY FULL;
         INSERT INTO customers VALUES ('5', 'fred', 34), ('7', 'sue', 25), ('2', 'bill', 51);
         INSERT INTO kinds VALUES (1, 50.50, true, '2024-05-01 10:20:30.5', '2024-05-01 12:00:00+02',
           '2024-05-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', '{1,NULL,3}', '\\x6869', 'happy');",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let slot = unique("slot");
    let p = pipeline(
        dir.path(),
        "exact",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    name: shop\n    slot: {slot}\n    tables: [customers, public.kinds]\n    heartbeat_interval_ms: 200\n",
            serde_json::to_string(&pg.url).expect("json")
        ),
        &out,
    );
    let mut child = start(&p);
    let snap = wait_lines(&mut child, &out, 4, 60);
    // Snapshot: every existing row once, op r, keyed by primary key.
    let mut snapshot: Vec<_> = ops(&snap);
    snapshot.sort_by_key(|(_, k, _, _)| k.to_string());
    assert_eq!(
        snapshot
            .iter()
            .map(|(op, k, b, _)| (op.as_str(), k.clone(), b.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("r", json!({"id": "2"}), Value::Null),
            ("r", json!({"id": "5"}), Value::Null),
            ("r", json!({"id": "7"}), Value::Null),
            ("r", json!({"id": 1}), Value::Null),
        ]
    );
    let kinds_row = json!({
        "id": 1, "price": 50.5, "ok": true, "at": "2024-05-01T10:20:30.5",
        "atz": "2024-05-01T10:00:00.000000Z", "day": "2024-05-01",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "doc": {"a": [1, 2]},
        "tags": [1, null, 3], "raw": "aGk=", "m": "happy"
    });
    let snap_kinds = snap
        .iter()
        .find(|l| l["value"]["source"]["table"] == "kinds")
        .expect("kinds row");
    assert_eq!(snap_kinds["value"]["after"], kinds_row);
    assert_eq!(snap_kinds["value"]["source"]["snapshot"], "true");
    assert_eq!(snap_kinds["headers"]["sluice.topic"], "shop.public.kinds");

    // Stream: insert, update, delete, a second-table update with the full old
    // row (REPLICA IDENTITY FULL), and a truncate.
    pg.exec("INSERT INTO customers VALUES ('9', 'ann', 40)");
    pg.exec("UPDATE customers SET age = 35 WHERE id = '5'");
    pg.exec("DELETE FROM customers WHERE id = '7'");
    pg.exec("UPDATE kinds SET ok = false, tags = '{}' WHERE id = 1");
    pg.exec("BEGIN; INSERT INTO customers VALUES ('10', 'tx', 1); UPDATE customers SET name = 'TX' WHERE id = '10'; COMMIT");
    pg.exec("TRUNCATE customers");
    let all = wait_lines(&mut child, &out, 11, 60);
    terminate(child);
    let streamed = ops(&all[4..]);
    let mut kinds_after = kinds_row.clone();
    kinds_after["ok"] = json!(false);
    kinds_after["tags"] = json!([]);
    assert_eq!(
        streamed,
        vec![
            (
                "c".into(),
                json!({"id": "9"}),
                Value::Null,
                json!({"id": "9", "name": "ann", "age": 40})
            ),
            (
                "u".into(),
                json!({"id": "5"}),
                Value::Null,
                json!({"id": "5", "name": "fred", "age": 35})
            ),
            (
                "d".into(),
                json!({"id": "7"}),
                json!({"id": "7", "name": null, "age": null}),
                Value::Null
            ),
            ("u".into(), json!({"id": 1}), kinds_row, kinds_after),
            (
                "c".into(),
                json!({"id": "10"}),
                Value::Null,
                json!({"id": "10", "name": "tx", "age": 1})
            ),
            (
                "u".into(),
                json!({"id": "10"}),
                Value::Null,
                json!({"id": "10", "name": "TX", "age": 1})
            ),
            ("t".into(), Value::Null, Value::Null, Value::Null),
        ]
    );
    // One transaction: same txId, increasing LSNs; streamed events are not snapshot reads.
    let tx: Vec<&Value> = all[8..10].iter().map(|l| &l["value"]["source"]).collect();
    assert_eq!(tx[0]["txId"], tx[1]["txId"]);
    assert!(tx[0]["lsn"].as_u64() < tx[1]["lsn"].as_u64());
    assert!(all[4..]
        .iter()
        .all(|l| l["value"]["source"]["snapshot"] == "false"));
    assert!(all
        .iter()
        .all(|l| l["value"]["source"]["connector"] == "postgresql"));
    assert_eq!(all[4]["headers"]["sluice.topic"], "shop.public.customers");

    // After a graceful stop the slot's confirmed position covers everything.
    let checkpoint: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(".sluice/exact/checkpoint.json")).expect("checkpoint"),
    )
    .expect("json");
    let at = checkpoint["sources"]["pg"]["lsn"]
        .as_str()
        .expect("lsn")
        .to_string();
    let confirmed = pg
        .scalar(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
        .expect("slot exists");
    assert_eq!(lsn(&confirmed), lsn(&at), "slot confirmed = checkpoint");
    pg.drop_slot(&slot);
}

#[test]
fn sigkill_mid_stream_then_restart_loses_nothing() {
    let pg = Pg::fresh("cdc_kill");
    pg.exec("CREATE TABLE items (n INT PRIMARY KEY, pad TEXT)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let slot = unique("slot");
    let p = pipeline(
        dir.path(),
        "kill",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    slot: {slot}\n    tables: [items]\n",
            serde_json::to_string(&pg.url).expect("json")
        ),
        &out,
    );
    const TXNS: i32 = 200;
    const PER_TXN: i32 = 50;
    // A writer committing small transactions for the whole test.
    let url = pg.url.clone();
    let writer = std::thread::spawn(move || {
        let w = Pg::connect(&url);
        for t in 0..TXNS {
            let from = t * PER_TXN;
            w.exec(&format!(
                "INSERT INTO items SELECT g, repeat('x', 100) FROM generate_series({from}, {}) g",
                from + PER_TXN - 1
            ));
            std::thread::sleep(Duration::from_millis(15));
        }
    });
    let mut child = start(&p);
    let checkpoint = dir.path().join(".sluice/kill/checkpoint.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cp: Option<Value> = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if cp.is_some_and(|c| c["sources"]["pg"]["phase"] == "streaming")
            && out_lines(&out).len() > 500
        {
            break;
        }
        assert!(Instant::now() < deadline, "no streaming checkpoint in 60 s");
        assert!(child.try_wait().ok().flatten().is_none(), "sluice died");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before_restart = out_lines(&out).len();
    writer.join().expect("writer");
    let total = (TXNS * PER_TXN) as usize;
    assert!(
        before_restart < total,
        "the kill landed mid-stream ({before_restart} of {total})"
    );

    let mut child = start(&p);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    loop {
        seen.clear();
        for l in out_lines(&out) {
            if let Some(n) = l["value"]["after"]["n"].as_i64() {
                *seen.entry(n).or_default() += 1;
            }
        }
        if seen.len() == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart only {} of {total} rows arrived",
            seen.len()
        );
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "sluice died after restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(child);
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "postgres-cdc SIGKILL test: {total} rows, all delivered; {duplicates} duplicates (redelivered after the kill: at-least-once)"
    );
    assert!((0..total as i64).all(|n| seen.contains_key(&n)));
    // The file sink cuts back to the checkpointed length, and the source
    // resumes at the last commit before the checkpoint: only the part of the
    // one transaction open at that checkpoint can come again.
    assert!(
        duplicates < PER_TXN as usize,
        "{duplicates} duplicates: more than one open transaction redelivered"
    );
    pg.drop_slot(&slot);
}

/// A PostgreSQL client program from the service script's installation.
fn pg_bin(name: &str) -> PathBuf {
    let run =
        std::env::var("SLUICE_SERVICES_DIR").unwrap_or_else(|_| "/tmp/sluice-services".into());
    let dir = std::fs::read_to_string(Path::new(&run).join("postgres.bin"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&dir).join(name)
}

/// After a crash the server can keep the dead run's session on the slot for a
/// while (until it notices the socket is gone, at worst
/// `wal_sender_timeout`). A restart meeting a busy slot must wait for it with
/// backoff, saying why, instead of failing the start. Here the slot is held
/// on purpose by `pg_recvlogical` until the test lets it go.
#[test]
fn a_restart_that_finds_its_slot_busy_waits_for_it_and_loses_nothing() {
    let pg = Pg::fresh("cdc_busy");
    pg.exec("CREATE TABLE t (id INT PRIMARY KEY)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let slot = unique("busy_slot");
    let p = pipeline(
        dir.path(),
        "busy",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    slot: {slot}\n    tables: [t]\n    heartbeat_interval_ms: 200\n",
            serde_json::to_string(&pg.url).expect("json")
        ),
        &out,
    );
    let mut child = start(&p);
    let checkpoint = dir.path().join(".sluice/busy/checkpoint.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read(&checkpoint)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|c| c["sources"]["pg"]["phase"] == "streaming")
    {
        assert!(Instant::now() < deadline, "no streaming checkpoint in 60 s");
        assert!(child.try_wait().ok().flatten().is_none(), "sluice died");
        std::thread::sleep(Duration::from_millis(20));
    }
    pg.exec("INSERT INTO t SELECT generate_series(1, 5)");
    let written = pg.scalar("SELECT pg_current_wal_lsn()::text").expect("lsn");
    wait_lines(&mut child, &out, 5, 60);
    // Wait until the run confirmed the rows to the slot, so the stand-in
    // holder below has nothing left to read (it would confirm what it read).
    let confirmed = format!(
        "SELECT confirmed_flush_lsn >= '{written}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.scalar(&confirmed).as_deref() != Some("t") {
        assert!(
            Instant::now() < deadline,
            "the slot never confirmed the rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let active = format!("SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.scalar(&active).as_deref() != Some("f") {
        assert!(
            Instant::now() < deadline,
            "the killed run's session never left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut holder = Command::new(pg_bin("pg_recvlogical"))
        .args([
            "--dbname",
            &pg.url,
            "--slot",
            &slot,
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
        ])
        .args(["-o", "proto_version=1", "-o"])
        .arg(format!("publication_names={slot}_unused"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pg_recvlogical");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.scalar(&active).as_deref() != Some("t") {
        assert!(
            Instant::now() < deadline,
            "pg_recvlogical never took the slot"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut child = start(&p);
    let warning = child
        .stderr
        .wait_for_line("is in use by another session", Duration::from_secs(30));
    assert!(warning.contains(&slot), "{warning}");
    // Still waiting, not failed, a few retries later.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().ok().flatten().is_none(),
        "sluice gave up on a busy slot:\n{}",
        child.stderr.text_at_exit()
    );
    let _ = holder.kill();
    let _ = holder.wait();
    pg.exec("INSERT INTO t SELECT generate_series(6, 10)");
    let lines = wait_lines(&mut child, &out, 10, 90);
    let err = terminate(child);
    let mut ids: Vec<i64> = lines
        .iter()
        .filter_map(|l| l["value"]["after"]["id"].as_i64())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>(), "{err}");
    assert!(err.contains("replication connection restored"), "{err}");
    pg.drop_slot(&slot);
}

#[test]
fn idle_source_with_heartbeats_lets_the_slot_advance() {
    let pg = Pg::fresh("cdc_idle");
    pg.exec("CREATE TABLE quiet (id INT PRIMARY KEY); CREATE TABLE busy (id INT, pad TEXT)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let slot = unique("slot");
    let p = pipeline(
        dir.path(),
        "idle",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    slot: {slot}\n    tables: [quiet]\n    heartbeat_interval_ms: 200\n",
            serde_json::to_string(&pg.url).expect("json")
        ),
        &out,
    );
    let log_file = dir.path().join("sluice.log");
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .args(["--no-progress", "--stats-every", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_file).expect("log file"))
        .spawn()
        .expect("spawn sluice");
    let slot_sql =
        format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.scalar(&slot_sql).is_none() {
        assert!(Instant::now() < deadline, "slot never created");
        assert!(child.try_wait().ok().flatten().is_none(), "sluice died");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ~20 MB of WAL from a table the source does not capture.
    pg.exec("INSERT INTO busy SELECT g, repeat('y', 150) FROM generate_series(1, 100000) g");
    let after_writes = lsn(&pg.scalar("SELECT pg_current_wal_lsn()").expect("lsn"));
    let start_at = Instant::now();
    let deadline = start_at + Duration::from_secs(30);
    let confirmed = loop {
        let c = lsn(&pg.scalar(&slot_sql).expect("slot"));
        if c >= after_writes {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the slot stayed at {c:X}, {} bytes behind the writes, for 30 s",
            after_writes - c
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Other tests write to the same cluster at the same time, so the WAL
    // behind the slot is measured until it is small once: a slot that
    // follows heartbeats gets there within seconds; a stuck one never does.
    let retained_sql = format!(
        "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    );
    let retained = loop {
        let retained = pg
            .scalar(&retained_sql)
            .and_then(|s| s.parse::<f64>().ok())
            .expect("retained") as i64;
        if retained < 1 << 20 {
            break retained;
        }
        assert!(
            Instant::now() < deadline,
            "the slot kept {retained} bytes of WAL behind it for 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "postgres-cdc idle test: slot confirmed {confirmed:X} >= {after_writes:X} after {:?}; {retained} bytes retained",
        start_at.elapsed()
    );
    // The stats line carries the stream's lag, measured from the server's
    // WAL end in each message; with no captured change ever sent, every
    // keepalive says the source is not behind.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lags = loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        let lags: Vec<String> = log
            .lines()
            .filter_map(|l| {
                l.split(' ')
                    .find(|kv| kv.starts_with("source.pg.lag_wal_bytes="))
            })
            .map(str::to_string)
            .collect();
        if !lags.is_empty() {
            break lags;
        }
        assert!(
            Instant::now() < deadline,
            "no lag in the stats lines:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        lags.iter().all(|l| l == "source.pg.lag_wal_bytes=0"),
        "{lags:?}"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    assert!(
        child.wait().expect("wait").success(),
        "graceful stop exits 0: {}",
        std::fs::read_to_string(&log_file).unwrap_or_default()
    );
    assert!(
        out_lines(&out).is_empty(),
        "nothing captured from the quiet table"
    );
    pg.drop_slot(&slot);
}

#[test]
fn bad_setups_fail_before_running_with_the_fix() {
    let pg = Pg::fresh("cdc_bad");
    // Roles are server-wide: a fresh name per run.
    let plain = unique("plain");
    pg.exec(&format!(
        "CREATE TABLE ok (id INT PRIMARY KEY); CREATE TABLE nokey (v INT);
         CREATE ROLE {plain} LOGIN PASSWORD 'plain'; GRANT ALL ON ALL TABLES IN SCHEMA public TO {plain}"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let run = |url: &str, tables: &str| {
        let p = pipeline(
            dir.path(),
            "bad",
            &format!(
                "    type: postgres-cdc\n    url: {}\n    slot: {}\n    tables: {tables}\n",
                serde_json::to_string(url).expect("json"),
                unique("slot")
            ),
            &out,
        );
        run_failing(sluice().arg("run").arg(&p).arg("--no-progress"))
    };
    let err = run(&pg.url_as("postgres", "wrong"), "[ok]");
    assert!(
        err.contains("refused the password for user `postgres`")
            && err.contains("fix the user or password in `url`"),
        "{err}"
    );
    let err = run(&pg.url_as(&plain, "plain"), "[ok]");
    assert!(
        err.contains(&format!("role `{plain}` may not use replication"))
            && err.contains(&format!("ALTER ROLE \"{plain}\" WITH REPLICATION")),
        "{err}"
    );
    let err = run(&pg.url, "[ok, missing]");
    assert!(
        err.contains("table `public.missing` (in `tables`) does not exist"),
        "{err}"
    );
    let err = run(&pg.url, "[nokey]");
    assert!(
        err.contains("`public.nokey` has no primary key") && err.contains("REPLICA IDENTITY FULL"),
        "{err}"
    );
    let err = run("postgres://postgres:postgres@127.0.0.1:1/postgres", "[ok]");
    assert!(
        err.contains("cannot reach PostgreSQL at 127.0.0.1:1 after 5 attempts"),
        "{err}"
    );
    assert!(!out.exists() || out_lines(&out).is_empty());

    // A validation error names the field and what is expected.
    let p = pipeline(
        dir.path(),
        "bad",
        "    type: postgres-cdc\n    url: \"postgres://x@h/db\"\n    slot: Not-Valid\n",
        &out,
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("sources.pg.slot") && err.contains("invalid name `Not-Valid`"),
        "{err}"
    );
}

/// A server of its own, started by the same script on another port (for
/// tests that restart or misconfigure it); stopped when dropped.
struct PrivateServer {
    run_dir: tempfile::TempDir,
    port: u16,
    wal_level: &'static str,
}

impl PrivateServer {
    fn start(port: u16, wal_level: &'static str) -> PrivateServer {
        let run_dir = tempfile::tempdir().expect("tempdir");
        // The server runs as the `postgres` user, which must reach its data dir.
        std::fs::set_permissions(
            run_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let s = PrivateServer {
            run_dir,
            port,
            wal_level,
        };
        s.script("start");
        s
    }

    fn script(&self, cmd: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services/postgres.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(cmd)
            .env("SLUICE_SERVICES_DIR", self.run_dir.path())
            .env("SLUICE_PG_PORT", self.port.to_string())
            .env("SLUICE_PG_WAL_LEVEL", self.wal_level)
            .output()
            .expect("postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.script("stop");
    }
}

#[test]
fn wal_level_replica_is_refused_with_the_fix() {
    let server = PrivateServer::start(free_port(), "replica");
    let url = server.url();
    Pg::connect(&url).exec("CREATE TABLE t (id INT PRIMARY KEY)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = pipeline(
        dir.path(),
        "replica",
        &format!(
            "    type: postgres-cdc\n    url: {}\n",
            serde_json::to_string(&url).expect("json")
        ),
        &out,
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("wal_level = replica") && err.contains("ALTER SYSTEM SET wal_level = logical"),
        "{err}"
    );
}

#[test]
fn server_restart_mid_stream_recovers_without_loss() {
    let server = PrivateServer::start(free_port(), "logical");
    let url = server.url();
    Pg::connect(&url).exec("CREATE TABLE items (n INT PRIMARY KEY)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = pipeline(
        dir.path(),
        "restart",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    tables: [items]\n",
            serde_json::to_string(&url).expect("json")
        ),
        &out,
    );
    let mut child = start(&p);
    let slot_active = "SELECT count(*) FROM pg_replication_slots WHERE active";
    let deadline = Instant::now() + Duration::from_secs(30);
    while Pg::connect(&url).scalar(slot_active).as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "slot never active");
        std::thread::sleep(Duration::from_millis(50));
    }
    Pg::connect(&url).exec("INSERT INTO items SELECT generate_series(0, 999)");
    wait_lines(&mut child, &out, 1000, 30);
    server.script("restart");
    // Written while the source is reconnecting: must arrive too.
    Pg::connect(&url).exec("INSERT INTO items SELECT generate_series(1000, 1999)");
    let lines = wait_lines(&mut child, &out, 2000, 60);
    let err = terminate(child);
    let mut seen: Vec<i64> = lines
        .iter()
        .filter_map(|l| l["value"]["after"]["n"].as_i64())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..2000).collect::<Vec<_>>());
    assert!(err.contains("replication connection lost"), "{err}");
    assert!(err.contains("replication connection restored"), "{err}");
}

#[test]
fn a_slot_dropped_at_run_time_stops_the_source_with_the_recovery_steps() {
    let pg = Pg::fresh("cdc_slot_drop");
    pg.exec("CREATE TABLE t (id INT PRIMARY KEY)");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let slot = unique("slot");
    let p = pipeline(
        dir.path(),
        "slotdrop",
        &format!(
            "    type: postgres-cdc\n    url: {}\n    slot: {slot}\n    tables: [t]\n",
            serde_json::to_string(&pg.url).expect("json")
        ),
        &out,
    );
    let mut child = start(&p);
    pg.exec("INSERT INTO t VALUES (1)");
    wait_lines(&mut child, &out, 1, 60);

    // An operator drops the slot under the running source: end its
    // walsender, then drop the slot before the source reconnects (it may
    // win the race; then try again).
    let admin = Pg::connect(&admin_url());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        admin.exec(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"
        ));
        let dropped = admin.rt.block_on(admin.client.batch_execute(&format!(
            "SELECT pg_sleep(0.05); SELECT pg_drop_replication_slot('{slot}')"
        )));
        match dropped {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline && format!("{e:?}").contains("is active"),
                "dropping the slot: {e:?}"
            ),
        }
    }

    // The source stops on its own, well before a second 30 s retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice kept running after its slot was dropped");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = child.stderr.text_at_exit();
    assert!(!status.success(), "a lost slot is a failure: {err}");
    assert!(
        err.contains(&format!("replication slot `{slot}` no longer exists")),
        "{err}"
    );
    assert!(err.contains("sluice run --reset"), "{err}");
    assert!(
        !err.contains("replication connection failed"),
        "no retry loop on a missing slot: {err}"
    );
}
