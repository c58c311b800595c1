//! `sluice-bench --postgres URL`: the `postgres-cdc` source against a real
//! server. Runs `sluice run` (the `sluice` beside this binary) with PostgreSQL → file and
//! measures, in one run:
//! 1. throughput: `--events` rows inserted in 10,000-row transactions as fast
//!    as the server takes them, timed from the first commit until the last
//!    row is in the output file;
//! 2. commit-to-sink latency at a steady load below that rate: for every row,
//!    the time from its transaction's commit (`source.ts_ms`) until the line
//!    is visible in the output file (the file sink writes at each
//!    checkpoint, every 50 ms here), reported as p50 / p99.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

const TXN_ROWS: u64 = 10_000;

struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    fn connect(url: &str) -> Result<Db> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, conn) = rt
            .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
            .with_context(|| format!("connecting to {url}"))?;
        rt.spawn(conn);
        Ok(Db { rt, client })
    }

    fn exec(&self, sql: &str) -> Result<()> {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .with_context(|| sql.to_string())
    }

    fn active(&self, slot: &str) -> Result<bool> {
        let rows = self.rt.block_on(self.client.query(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        ))?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }
}

/// Follows the output file, counting lines and timing their arrival.
struct Tail {
    file: std::fs::File,
    partial: Vec<u8>,
    lines: u64,
}

impl Tail {
    fn open(path: &Path) -> Result<Tail> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(file) = std::fs::File::open(path) {
                return Ok(Tail {
                    file,
                    partial: Vec::new(),
                    lines: 0,
                });
            }
            if Instant::now() > deadline {
                bail!("{} never appeared", path.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// New complete lines since the last call.
    fn read(&mut self, mut each: impl FnMut(&[u8])) -> Result<()> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf)?;
        self.partial.extend_from_slice(&buf);
        let mut start = 0;
        while let Some(n) = self.partial[start..].iter().position(|b| *b == b'\n') {
            each(&self.partial[start..start + n]);
            self.lines += 1;
            start += n + 1;
        }
        self.partial.drain(..start);
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn commit_ms(line: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Source {
        ts_ms: i64,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        source: Source,
    }
    serde_json::from_slice::<Event>(line)
        .ok()
        .map(|e| e.source.ts_ms)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the benchmark against the server at `url` (a superuser URL).
pub fn run(sluice: &Path, url: &str, rows: u64) -> Result<()> {
    let admin = Db::connect(url)?;
    let db = format!("sluice_bench_{}", std::process::id());
    let slot = db.clone();
    admin.exec(&format!("DROP DATABASE IF EXISTS {db}"))?;
    admin.exec(&format!("CREATE DATABASE {db}"))?;
    let db_url = format!(
        "{}/{db}",
        url.rsplit_once('/')
            .map(|(base, _)| base)
            .ok_or_else(|| anyhow!("`--postgres` must end in /DATABASE"))?
    );
    let result = measure(sluice, &admin, &db_url, &slot, rows);
    // Leave nothing behind: the slot would pin WAL forever.
    let _ = admin.exec(&format!(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    let _ = admin.exec(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    result
}

fn measure(sluice: &Path, admin: &Db, db_url: &str, slot: &str, rows: u64) -> Result<()> {
    let target = Db::connect(db_url)?;
    target.exec(
        "CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(10,2), created_at TIMESTAMPTZ DEFAULT now())",
    )?;
    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-cdc")
        .tempdir()?;
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("cdc.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: bench-cdc\ncheckpoint_interval_ms: 50\nbatch_size: 1024\nsources:\n  pg:\n    type: postgres-cdc\n    url: {}\n    slot: {slot}\n    tables: [bench_rows]\n    snapshot: never\nsinks:\n  out: {{type: file, path: {}, inputs: [pg]}}\n",
            serde_json::to_string(db_url)?,
            serde_json::to_string(&out.display().to_string())?
        ),
    )?;
    let child = Command::new(sluice)
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .arg("-q")
        .stdout(Stdio::null())
        .spawn()
        .context("starting `sluice run`")?;
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !admin.active(slot)? {
        if let Some(status) = running.0.try_wait()? {
            bail!("`sluice run` exited early ({status})");
        }
        if Instant::now() > deadline {
            bail!("the replication slot never became active");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut tail = Tail::open(&out)?;

    // 1. Throughput.
    eprintln!("inserting {rows} rows in {TXN_ROWS}-row transactions ...");
    let started = Instant::now();
    let mut inserted = 0;
    while inserted < rows {
        let n = TXN_ROWS.min(rows - inserted);
        target.exec(&format!(
            "INSERT INTO bench_rows (id, name, amount) SELECT g, 'name-' || g, (g % 10000) / 100.0 FROM generate_series({}, {}) g",
            inserted,
            inserted + n - 1
        ))?;
        inserted += n;
        tail.read(|_| {})?;
    }
    let insert_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while tail.lines < rows {
        if let Some(status) = running.0.try_wait()? {
            bail!("`sluice run` exited ({status}) after {} rows", tail.lines);
        }
        if Instant::now() > deadline {
            bail!("only {} of {rows} rows arrived", tail.lines);
        }
        std::thread::sleep(Duration::from_millis(5));
        tail.read(|_| {})?;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = rows as f64 / secs;

    // 2. Latency at a steady load: a quarter of the measured rate (at most
    // 20,000 rows/s), 100 rows per transaction, for 10 seconds.
    let steady = (rate / 4.0).clamp(1_000.0, 20_000.0) as u64;
    let per_txn = 100u64;
    let txns = steady * 10 / per_txn;
    let interval = Duration::from_secs_f64(per_txn as f64 / steady as f64);
    eprintln!("steady load: {steady} rows/s for 10 s ...");
    let mut latencies = Vec::with_capacity((txns * per_txn) as usize);
    let base = tail.lines;
    let load_started = Instant::now();
    let mut next_id = rows;
    for t in 0..txns {
        let due = load_started + interval * t as u32;
        while Instant::now() < due {
            tail.read(|l| {
                if let Some(c) = commit_ms(l) {
                    latencies.push(now_ms() - c);
                }
            })?;
            std::thread::sleep(Duration::from_millis(1));
        }
        target.exec(&format!(
            "INSERT INTO bench_rows (id, name, amount) SELECT g, 'name-' || g, 1.5 FROM generate_series({next_id}, {}) g",
            next_id + per_txn - 1
        ))?;
        next_id += per_txn;
    }
    let want = base + txns * per_txn;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tail.lines < want && Instant::now() < deadline {
        tail.read(|l| {
            if let Some(c) = commit_ms(l) {
                latencies.push(now_ms() - c);
            }
        })?;
        std::thread::sleep(Duration::from_millis(1));
    }
    latencies.sort_unstable();

    println!("postgres-cdc → file, one slot, {rows} rows in {TXN_ROWS}-row transactions:");
    println!(
        "  throughput: {rate:.0} rows/s ({secs:.2} s from the first insert to the last row in the file; the inserts alone took {insert_secs:.2} s)"
    );
    println!(
        "  commit-to-sink latency at {steady} rows/s: p50 {} ms, p99 {} ms, max {} ms over {} rows (checkpoint interval 50 ms)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        latencies.len()
    );
    Ok(())
}
