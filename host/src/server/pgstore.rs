//! The catalog in PostgreSQL, for several servers sharing one: the same
//! records as the redb catalog (JSON under string keys, one key space per
//! table), plus what only a shared catalog needs: plugin blobs (bytea, so
//! every server can load every plugin), pipeline leases (which server runs a
//! pipeline that must run once) and run placements (where each pipeline
//! runs, for the status of any server).
//!
//! tokio-postgres is async and the catalog is called from plain threads and
//! from inside the HTTP runtime's blocking tasks, so one thread of its own
//! owns the connection and a current-thread runtime, and runs the calls one
//! at a time; a caller waits for its answer on a channel. A lost connection
//! is reopened on the next call, and a call that failed because the
//! connection was gone is tried once more on the new one (every call is a
//! single statement or a transaction, so trying again is safe).

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio_postgres::Client;

use crate::clients::postgres_tls::PgTarget;

/// How long connecting may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A call run on the catalog's thread.
type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// The catalog thread's connection.
pub struct Conn {
    rt: tokio::runtime::Runtime,
    target: PgTarget,
    client: Option<Client>,
}

impl Conn {
    fn client(&mut self) -> Result<&Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let c = crate::clients::postgres::connect(&self.rt, &self.target, CONNECT_TIMEOUT)
                .map_err(|e| anyhow!("the catalog: {e}"))?;
            self.client = Some(c);
        }
        self.client
            .as_ref()
            .ok_or_else(|| anyhow!("the catalog: no connection"))
    }
}

/// The PostgreSQL catalog.
pub struct PgStore {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// `host:port/db`, for messages.
    pub describe: String,
}

/// The tables, made at first start (idempotently, under an advisory lock so
/// two servers starting at once do not race on them).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sluice_catalog (
    tbl text NOT NULL, k text NOT NULL, v text NOT NULL, PRIMARY KEY (tbl, k));
CREATE TABLE IF NOT EXISTS sluice_blobs (
    sha256 text PRIMARY KEY, bytes bytea NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_leases (
    pipeline text PRIMARY KEY, owner text NOT NULL, expires timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_runs (
    pipeline text NOT NULL, server text NOT NULL, seen timestamptz NOT NULL,
    PRIMARY KEY (pipeline, server));
CREATE TABLE IF NOT EXISTS sluice_meta (k text PRIMARY KEY, v text NOT NULL);
";

/// The advisory lock key the schema is made under ("sluice" in ASCII).
const SCHEMA_LOCK: i64 = 0x736c_7569_6365;

impl PgStore {
    /// Connects to `url` and makes the tables if they are missing.
    pub fn open(url: &str) -> Result<Self> {
        let target = PgTarget::new(url, None, None)
            .map_err(|i| anyhow!("the catalog url: {}: {}", i.field, i.message))?;
        let describe = format!(
            "{}/{}",
            target.describe(),
            target.config.get_dbname().unwrap_or("postgres")
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the catalog's runtime")?;
        let mut conn = Conn {
            rt,
            target,
            client: None,
        };
        conn.client()?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("catalog-pg".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .context("starting the catalog thread")?;
        let store = Self {
            jobs: Mutex::new(tx),
            describe,
        };
        store.call(|rt, c| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                    .await?;
                tx.batch_execute(SCHEMA).await?;
                tx.commit().await
            })
            .context("making the catalog's tables")
        })?;
        Ok(store)
    }

    /// Runs `f` on the catalog's thread with its connection; once more on a
    /// new connection if the first failed because the connection was lost.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl Fn(&tokio::runtime::Runtime, &mut Client) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            let mut outcome = Err(anyhow!("the catalog: not run"));
            for _ in 0..2 {
                outcome = match conn.client() {
                    Err(e) => Err(e),
                    Ok(_) => {
                        let Conn { rt, client, .. } = conn;
                        match client.as_mut() {
                            Some(c) => f(rt, c),
                            None => Err(anyhow!("the catalog: no connection")),
                        }
                    }
                };
                let lost = conn.client.as_ref().is_none_or(Client::is_closed);
                if outcome.is_ok() || !lost {
                    break;
                }
                conn.client = None;
            }
            let _ = reply.send(outcome);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| anyhow!("the catalog thread has ended"))?;
        answer
            .recv()
            .map_err(|_| anyhow!("the catalog thread has ended"))?
    }

    /// The record `k` of `tbl`.
    pub fn get(&self, tbl: &'static str, k: &str) -> Result<Option<String>> {
        let k = k.to_string();
        self.call(move |rt, c| {
            let row = rt.block_on(c.query_opt(
                "SELECT v FROM sluice_catalog WHERE tbl = $1 AND k = $2",
                &[&tbl, &k],
            ))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Records of `tbl` whose keys start with `prefix`, in key (byte) order.
    pub fn scan(&self, tbl: &'static str, prefix: &str) -> Result<Vec<(String, String)>> {
        let prefix = prefix.to_string();
        self.call(move |rt, c| {
            let rows = rt.block_on(c.query(
                "SELECT k, v FROM sluice_catalog WHERE tbl = $1 AND left(k, length($2)) = $2 ORDER BY k COLLATE \"C\"",
                &[&tbl, &prefix],
            ))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Applies `puts` (key, value) and `deletes` in one transaction; how
    /// many of `deletes` were there.
    pub fn apply(
        &self,
        tbl: &'static str,
        puts: Vec<(String, String)>,
        deletes: Vec<(&'static str, String)>,
    ) -> Result<u64> {
        self.call(move |rt, c| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                for (k, v) in &puts {
                    tx.execute(
                        "INSERT INTO sluice_catalog (tbl, k, v) VALUES ($1, $2, $3) ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v",
                        &[&tbl, k, v],
                    )
                    .await?;
                }
                let mut removed = 0;
                for (t, k) in &deletes {
                    removed += tx
                        .execute(
                            "DELETE FROM sluice_catalog WHERE tbl = $1 AND k = $2",
                            &[t, k],
                        )
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, tokio_postgres::Error>(removed)
            })
            .map_err(anyhow::Error::from)
        })
    }

    /// Stores a plugin's bytes under their SHA-256 (once).
    pub fn put_blob(&self, sha256: &str, bytes: Vec<u8>) -> Result<()> {
        let sha = sha256.to_string();
        self.call(move |rt, c| {
            rt.block_on(c.execute(
                "INSERT INTO sluice_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                &[&sha, &bytes],
            ))?;
            Ok(())
        })
    }

    /// A plugin's bytes.
    pub fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let sha = sha256.to_string();
        self.call(move |rt, c| {
            let row = rt.block_on(
                c.query_opt("SELECT bytes FROM sluice_blobs WHERE sha256 = $1", &[&sha]),
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Deletes a plugin's bytes unless a plugin record of any tenant still
    /// names them (checked in the same statement, so a concurrent upload of
    /// the same bytes through another server keeps them).
    pub fn delete_blob(&self, sha256: &str) -> Result<()> {
        let sha = sha256.to_string();
        self.call(move |rt, c| {
            rt.block_on(c.execute(
                "DELETE FROM sluice_blobs WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM sluice_catalog WHERE tbl = 'plugins' AND v::jsonb ->> 'sha256' = $1)",
                &[&sha],
            ))?;
            Ok(())
        })
    }

    /// Takes or renews the lease on `pipeline` for `owner` for `ttl`: true
    /// when `owner` holds it now. Another server's lease is taken only once
    /// it has expired. Times are the database's, so servers' clocks do not
    /// matter.
    pub fn lease(&self, pipeline: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let (p, o) = (pipeline.to_string(), owner.to_string());
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.call(move |rt, c| {
            let row = rt.block_on(c.query_opt(
                "INSERT INTO sluice_leases (pipeline, owner, expires)
                 VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond')
                 ON CONFLICT (pipeline) DO UPDATE
                   SET owner = EXCLUDED.owner, expires = EXCLUDED.expires
                   WHERE sluice_leases.owner = EXCLUDED.owner OR sluice_leases.expires < now()
                 RETURNING owner",
                &[&p, &o, &(ms as f64)],
            ))?;
            Ok(row.is_some())
        })
    }

    /// Takes or renews `owner`'s leases on every pipeline of `pipelines` in
    /// one statement (as [`PgStore::lease`] does one), so a server's pass
    /// over its pipelines costs one round trip, not one per pipeline.
    /// Returns the pipelines whose lease `owner` holds now.
    pub fn lease_all(
        &self,
        pipelines: &[String],
        owner: &str,
        ttl: Duration,
    ) -> Result<std::collections::HashSet<String>> {
        // One row each: ON CONFLICT cannot update a row twice in a statement.
        let mut ps = pipelines.to_vec();
        ps.sort();
        ps.dedup();
        if ps.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let o = owner.to_string();
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.call(move |rt, c| {
            let rows = rt.block_on(c.query(
                "INSERT INTO sluice_leases (pipeline, owner, expires)
                 SELECT p, $2, now() + $3::float8 * interval '1 millisecond' FROM unnest($1::text[]) AS p
                 ON CONFLICT (pipeline) DO UPDATE
                   SET owner = EXCLUDED.owner, expires = EXCLUDED.expires
                   WHERE sluice_leases.owner = EXCLUDED.owner OR sluice_leases.expires < now()
                 RETURNING pipeline",
                &[&ps, &o, &(ms as f64)],
            ))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Gives up `owner`'s lease on `pipeline` (if it holds it), so another
    /// server may take it at once.
    pub fn release(&self, pipeline: &str, owner: &str) -> Result<()> {
        let (p, o) = (pipeline.to_string(), owner.to_string());
        self.call(move |rt, c| {
            rt.block_on(c.execute(
                "DELETE FROM sluice_leases WHERE pipeline = $1 AND owner = $2",
                &[&p, &o],
            ))?;
            Ok(())
        })
    }

    /// Who holds an unexpired lease on `pipeline`.
    pub fn lease_owner(&self, pipeline: &str) -> Result<Option<String>> {
        let p = pipeline.to_string();
        self.call(move |rt, c| {
            let row = rt.block_on(c.query_opt(
                "SELECT owner FROM sluice_leases WHERE pipeline = $1 AND expires > now()",
                &[&p],
            ))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Records that `server` runs exactly the pipelines `keys` now.
    pub fn set_runs(&self, server: &str, keys: Vec<String>) -> Result<()> {
        let s = server.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                // A dead server's rows stop counting after a few seconds
                // (see `runs_on`); after an hour they go.
                tx.execute(
                    "DELETE FROM sluice_runs WHERE server = $1 OR seen < now() - interval '1 hour'",
                    &[&s],
                )
                .await?;
                // One statement for every run, however many there are.
                tx.execute(
                    "INSERT INTO sluice_runs (pipeline, server, seen) SELECT k, $2, now() FROM unnest($1::text[]) AS k",
                    &[&keys, &s],
                )
                .await?;
                tx.commit().await
            })?;
            Ok(())
        })
    }

    /// The servers that reported running `pipeline` within `fresh`, sorted.
    pub fn runs_on(&self, pipeline: &str, fresh: Duration) -> Result<Vec<String>> {
        let p = pipeline.to_string();
        let ms = fresh.as_millis() as f64;
        self.call(move |rt, c| {
            let rows = rt.block_on(c.query(
                "SELECT server FROM sluice_runs WHERE pipeline = $1 AND seen > now() - $2::float8 * interval '1 millisecond' ORDER BY server",
                &[&p, &ms],
            ))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// A server-wide setting.
    pub fn meta(&self, k: &str) -> Result<Option<String>> {
        let k = k.to_string();
        self.call(move |rt, c| {
            let row = rt.block_on(c.query_opt("SELECT v FROM sluice_meta WHERE k = $1", &[&k]))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Sets a server-wide setting unless it is set; the value it has after.
    pub fn meta_init(&self, k: &str, v: &str) -> Result<String> {
        let (k, v) = (k.to_string(), v.to_string());
        self.call(move |rt, c| {
            rt.block_on(c.execute(
                "INSERT INTO sluice_meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING",
                &[&k, &v],
            ))?;
            let row = rt.block_on(c.query_one("SELECT v FROM sluice_meta WHERE k = $1", &[&k]))?;
            Ok(row.get(0))
        })
    }
}
