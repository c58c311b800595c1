//! `postgres-cdc` source: change data capture from PostgreSQL by logical
//! replication (`pgoutput` over the streaming replication protocol), with a
//! consistent initial snapshot, emitting Debezium-compatible change events.
//!
//! Life of a source:
//! 1. Checks before anything runs (credentials, `wal_level`, the REPLICATION
//!    privilege, the tables) fail with the problem and the fix.
//! 2. The publication and slot are created if absent. A fresh start creates
//!    the slot with an exported snapshot and reads every table inside it
//!    (`op: r`), so the stream that follows starts exactly where the
//!    snapshot ends.
//! 3. Streaming: each change becomes an event (`c`, `u`, `d`, `t`). The
//!    position is the end LSN of the last whole transaction handed on (or,
//!    when idle, the server's keepalive position); the slot's confirmed flush
//!    LSN moves there only in [`Source::committed`], after every sink has
//!    acknowledged it, so the server keeps the WAL a restart needs and no
//!    more.

mod catalog;
mod config;
mod events;
mod pgoutput;
mod snapshot;
mod types;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

pub use config::{PostgresCdcConfig, SnapshotMode};

use crate::clients::postgres::PgTarget;
use crate::connector::{parse_source, ConfigIssue, SourceConfig, SourceContext, SourceKind};
use crate::connector::{Backoff, Polled, Source};
use crate::connector::{LagUnit, Progress};
use crate::event::BatchBuilder;
use catalog::TableRef;
use pgoutput::{format_lsn, parse_lsn, Datum, Message, Relation};
use snapshot::Snapshot;
use types::TypeRegistry;
use wire::{ConnectParams, ReplicationConnection, WireError, PG_EPOCH_OFFSET_US};

/// Decodes one pgoutput message and describes it. Only the fuzzer calls
/// this: the decoder reads what the server sends, and a broken or hostile
/// server must cost an error, never the host.
#[doc(hidden)]
pub fn fuzz_decode_pgoutput(bytes: &[u8]) -> Result<String, String> {
    pgoutput::decode(bytes)
        .map(|m| format!("{m:?}"))
        .map_err(|e| e.to_string())
}

/// The slot is in use by another session: a second run on the same slot,
/// or the session of a run that died, which the server has not yet noticed.
#[derive(Debug, thiserror::Error)]
#[error("replication slot `{slot}` is in use by another session ({server}); if that is a run that just died, the server frees the slot once it notices (at most `wal_sender_timeout`); otherwise stop the other run or give this one its own `slot`")]
struct SlotBusy {
    slot: String,
    server: String,
}

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_WAIT: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Snapshot,
    Streaming,
    Done,
}

struct Txn {
    xid: u32,
    /// Commit time, µs since the Unix epoch.
    ts_us: i64,
}

/// A running `postgres-cdc` source.
pub struct PostgresCdcSource {
    config: PostgresCdcConfig,
    target: PgTarget,
    server: String,
    origin: Arc<str>,
    progress: Arc<Progress>,
    rt: tokio::runtime::Runtime,
    client: Option<tokio_postgres::Client>,
    params: ConnectParams,
    db: String,
    slot: String,
    publication: String,
    repl: Option<ReplicationConnection>,
    types: TypeRegistry,
    relations: HashMap<u32, Relation>,
    /// Primary key columns per table OID: the event key, whatever the
    /// replica identity (FULL marks every column as identity).
    primary_keys: HashMap<u32, Vec<String>>,
    phase: Phase,
    snapshot: Option<Snapshot>,
    snapshot_seq: u64,
    /// Where streaming starts: the slot's consistent point or the checkpoint.
    start_lsn: u64,
    /// End of the last whole transaction handed on (or the idle keepalive position).
    safe_lsn: u64,
    /// Last position confirmed to the server.
    confirmed: u64,
    txn: Option<Txn>,
    last_heartbeat: Instant,
    retry_at: Option<Instant>,
    reconnects: Backoff,
    /// Failed reconnections in a row.
    attempt: u32,
}

impl PostgresCdcSource {
    /// A source per `config` named `name`.
    pub fn new(
        config: PostgresCdcConfig,
        name: &str,
        origin: Arc<str>,
        progress: Arc<Progress>,
    ) -> Result<Self> {
        let target = config.target().context("`url` or `tls`")?;
        let pg = &target.config;
        let host = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let user = pg.get_user().unwrap_or("postgres").to_string();
        let params = ConnectParams {
            host,
            port: pg.get_ports().first().copied().unwrap_or(5432),
            dbname: pg.get_dbname().unwrap_or(&user).to_string(),
            user,
            password: pg.get_password().map(<[u8]>::to_vec),
            application_name: format!("sluice-{name}"),
            tls: target.tls.clone(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the PostgreSQL client runtime")?;
        Ok(Self {
            server: config.name.clone().unwrap_or_else(|| name.to_string()),
            slot: config.slot_name(name),
            publication: config.publication_name(name),
            types: TypeRegistry::new(config.decimal_handling),
            config,
            target,
            origin,
            progress,
            rt,
            client: None,
            db: params.dbname.clone(),
            params,
            repl: None,
            relations: HashMap::new(),
            primary_keys: HashMap::new(),
            phase: Phase::Snapshot,
            snapshot: None,
            snapshot_seq: 0,
            start_lsn: 0,
            safe_lsn: 0,
            confirmed: 0,
            txn: None,
            last_heartbeat: Instant::now(),
            retry_at: None,
            reconnects: Backoff::new(Duration::from_millis(250), MAX_BACKOFF),
            attempt: 0,
        })
    }

    fn client(&self) -> Result<&tokio_postgres::Client> {
        self.client
            .as_ref()
            .ok_or_else(|| anyhow!("not connected to PostgreSQL"))
    }

    /// Opens the replication connection, explaining the usual refusals.
    fn replication_connection(&self) -> Result<ReplicationConnection> {
        let conn = self.open_replication()?;
        tracing::debug!(
            source = %self.origin,
            tls = self.params.tls.is_some(),
            channel_binding = conn.channel_bound,
            "replication connection open"
        );
        Ok(conn)
    }

    fn open_replication(&self) -> Result<ReplicationConnection> {
        ReplicationConnection::connect(&self.params, IO_TIMEOUT).map_err(|e| {
            let target = format!("{}:{}", self.params.host, self.params.port);
            match &e {
                WireError::Tls(t) => anyhow!(
                    "replication connection: {}",
                    crate::clients::tls::explain(t, &format!("PostgreSQL at {target}"), &self.target.tls_name())
                ),
                WireError::NoTls => anyhow!(
                    "replication connection: {}",
                    crate::clients::postgres_tls::no_tls_on_server(&format!("PostgreSQL at {target}"))
                ),
                WireError::Server(s) if s.code == "28000" && s.message.contains("no encryption") => anyhow!(
                    "replication connection: {}",
                    crate::clients::postgres_tls::tls_required(&format!("PostgreSQL at {target}"), &s.message)
                ),
                WireError::Server(s) if s.code == "28000" && s.message.contains("client certificate") => anyhow!(
                    "replication connection: {}",
                    crate::clients::postgres_tls::client_cert_required(&format!("PostgreSQL at {target}"), &s.message)
                ),
                WireError::Server(s) if s.code == "28000" => anyhow!(
                    "PostgreSQL at {target} refused a replication connection for `{}` ({s}). Fix: allow it in pg_hba.conf (a `host replication {} <address> scram-sha-256` line) and reload",
                    self.params.user,
                    self.params.user
                ),
                WireError::Server(s) if s.code == "42501" => anyhow!(
                    "role `{}` may not start replication ({s}). Fix: ALTER ROLE \"{}\" WITH REPLICATION;",
                    self.params.user,
                    self.params.user
                ),
                _ => anyhow!("replication connection to {target}: {e}"),
            }
        })
    }

    /// Checks, tables, publication; returns the selected tables' shapes.
    fn prepare(&mut self) -> Result<Vec<(TableRef, Relation)>> {
        let client = self.rt.block_on(catalog::connect(&self.target))?;
        self.rt.block_on(catalog::check_replication(&client))?;
        let tables = self.rt.block_on(catalog::select_tables(
            &client,
            &self.config.tables,
            &self.config.exclude,
        ))?;
        let mut shapes = Vec::with_capacity(tables.len());
        for t in tables {
            let rel = self.rt.block_on(catalog::relation(&client, &t))?;
            catalog::check_identity(&rel)?;
            self.primary_keys.insert(
                rel.id,
                rel.columns
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name.clone())
                    .collect(),
            );
            let oids: Vec<u32> = rel.columns.iter().map(|c| c.type_oid).collect();
            self.rt
                .block_on(catalog::learn_types(&client, &mut self.types, &oids))?;
            shapes.push((t, rel));
        }
        let list: Vec<TableRef> = shapes.iter().map(|(t, _)| t.clone()).collect();
        self.rt.block_on(catalog::ensure_publication(
            &client,
            &self.publication,
            &list,
        ))?;
        self.client = Some(client);
        Ok(shapes)
    }

    /// A fresh start: a new slot with an exported snapshot, then the snapshot.
    fn start_fresh(&mut self, shapes: Vec<(TableRef, Relation)>) -> Result<()> {
        let exists = self
            .rt
            .block_on(catalog::slot_state(self.client()?, &self.slot))?
            .is_some();
        if self.config.snapshot == SnapshotMode::Never {
            if !exists {
                let mut repl = self.replication_connection()?;
                repl.simple_query(
                    &format!(
                        "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                        catalog::quote_ident(&self.slot)
                    ),
                    IO_TIMEOUT,
                )
                .map_err(|e| anyhow!("creating replication slot `{}`: {e}", self.slot))?;
                tracing::info!(slot = %self.slot, "created replication slot (no snapshot)");
            }
            return self.start_streaming(0);
        }
        if exists {
            tracing::warn!(slot = %self.slot, "no checkpoint for this source: re-creating the replication slot to take a consistent snapshot");
            self.rt
                .block_on(catalog::drop_slot(self.client()?, &self.slot))?;
        }
        let mut repl = self.replication_connection()?;
        let temporary = if self.config.snapshot == SnapshotMode::InitialOnly {
            "TEMPORARY "
        } else {
            ""
        };
        let rows = repl
            .simple_query(
                &format!(
                    "CREATE_REPLICATION_SLOT {} {temporary}LOGICAL pgoutput EXPORT_SNAPSHOT",
                    catalog::quote_ident(&self.slot)
                ),
                IO_TIMEOUT,
            )
            .map_err(|e| anyhow!("creating replication slot `{}`: {e}", self.slot))?;
        let row = rows
            .first()
            .ok_or_else(|| anyhow!("CREATE_REPLICATION_SLOT returned no row"))?;
        let lsn = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|s| parse_lsn(&s))
            .ok_or_else(|| anyhow!("CREATE_REPLICATION_SLOT returned no consistent point"))?;
        let name = row
            .get(2)
            .cloned()
            .flatten()
            .ok_or_else(|| anyhow!("CREATE_REPLICATION_SLOT exported no snapshot"))?;
        tracing::info!(slot = %self.slot, consistent_point = %format_lsn(lsn), "created replication slot; snapshot follows");
        let snap = self
            .rt
            .block_on(Snapshot::begin(self.client()?, &name, shapes))?;
        self.progress.set_total(snap.rows_total);
        self.progress.set_done(0);
        // The exported snapshot lives while this connection idles; keep it
        // (a temporary slot lives exactly as long).
        self.repl = Some(repl);
        self.snapshot = Some(snap);
        self.start_lsn = lsn;
        self.safe_lsn = lsn;
        self.phase = Phase::Snapshot;
        Ok(())
    }

    fn start_streaming(&mut self, lsn: u64) -> Result<()> {
        let mut repl = match self.repl.take() {
            Some(r) => r,
            None => self.replication_connection()?,
        };
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {})",
            catalog::quote_ident(&self.slot),
            format_lsn(lsn),
            catalog::quote_literal(&catalog::quote_ident(&self.publication))
        );
        repl.start_replication(&sql, IO_TIMEOUT)
            .map_err(|e| match e {
                // 55006 object_in_use: another session streams from the slot.
                WireError::Server(s) if s.code == "55006" => anyhow::Error::new(SlotBusy {
                    slot: self.slot.clone(),
                    server: s.to_string(),
                }),
                e => anyhow!("starting replication from slot `{}`: {e}", self.slot),
            })?;
        tracing::info!(slot = %self.slot, from = %format_lsn(lsn), "streaming changes");
        self.repl = Some(repl);
        self.phase = Phase::Streaming;
        self.safe_lsn = self.safe_lsn.max(lsn);
        self.confirmed = self.confirmed.max(lsn);
        self.txn = None;
        self.last_heartbeat = Instant::now();
        Ok(())
    }

    fn now_us() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    fn poll_snapshot(&mut self, max: usize) -> Result<Polled> {
        let Some(mut snap) = self.snapshot.take() else {
            bail!("snapshot state lost");
        };
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| anyhow!("not connected to PostgreSQL"))?;
        let next = self.rt.block_on(snap.next(client, max))?;
        let Some(rows) = next else {
            tracing::info!(rows = snap.rows_done, "snapshot complete");
            self.progress.set_total(snap.rows_done);
            self.progress.set_done(snap.rows_done);
            if self.config.snapshot == SnapshotMode::InitialOnly {
                self.phase = Phase::Done;
                self.repl = None;
                return Ok(Polled {
                    done: true,
                    ..Polled::default()
                });
            }
            self.start_streaming(self.start_lsn)?;
            return Ok(Polled::default());
        };
        self.progress.set_done(snap.rows_done);
        self.progress.set_total(snap.rows_total.max(snap.rows_done));
        let now = Self::now_us();
        let rel = &rows.relation;
        let topic = events::topic(&self.server, rel);
        let info = events::SourceInfo {
            server: &self.server,
            db: &self.db,
            snapshot: "true",
            ts_us: now,
            tx_id: None,
            // The slot's consistent point, as Debezium gives its own slot's.
            lsn: Some(self.start_lsn),
        };
        let mut b = BatchBuilder::new(&self.origin, self.origin.clone(), rows.rows.len());
        for datums in &rows.rows {
            let after = events::row(rel, &self.types, datums);
            let key = events::key(rel, &after);
            let value = events::envelope(rel, &info, "r", Value::Null, after, now);
            push(
                &mut b,
                key.as_ref(),
                Some(&value),
                &topic,
                now.div_euclid(1000),
                self.snapshot_seq,
            )?;
            self.snapshot_seq += 1;
        }
        self.snapshot = Some(snap);
        Ok(Polled {
            batch: Some(b.finish()),
            ..Polled::default()
        })
    }

    /// Confirms what sinks acknowledged and asks for a keepalive when due.
    fn heartbeat(&mut self) -> Result<()> {
        if self.last_heartbeat.elapsed() < Duration::from_millis(self.config.heartbeat_interval_ms)
        {
            return Ok(());
        }
        self.last_heartbeat = Instant::now();
        if let Some(q) = self.config.heartbeat_query.clone() {
            if let Some(client) = &self.client {
                if let Err(e) = self.rt.block_on(client.batch_execute(&q)) {
                    tracing::warn!(source = %self.origin, "heartbeat query failed: {}", catalog::db_message(&e));
                }
            }
        }
        if let Some(repl) = self.repl.as_mut() {
            repl.send_status(self.confirmed, true)?;
        }
        Ok(())
    }

    /// True when starting replication failed because the slot is gone:
    /// the server says so, or the slot is not in `pg_replication_slots`.
    fn slot_is_gone(&self, error: &anyhow::Error) -> bool {
        let text = format!("{error:#}");
        if text.contains("replication slot") && text.contains("does not exist") {
            return true;
        }
        let Some(client) = self.client.as_ref().filter(|c| !c.is_closed()) else {
            return false; // the server is unreachable: retry
        };
        matches!(
            self.rt.block_on(catalog::slot_state(client, &self.slot)),
            Ok(None)
        )
    }

    /// Replaces the ordinary session if the server dropped it (a restart).
    fn reconnect_client(&mut self) -> Result<()> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let client = self.rt.block_on(catalog::connect(&self.target))?;
        self.client = Some(client);
        Ok(())
    }

    fn poll_stream(&mut self, max: usize) -> Result<Polled> {
        if self.repl.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                std::thread::sleep(POLL_WAIT);
                return Ok(Polled::default());
            }
            let reconnected = self
                .reconnect_client()
                .and_then(|()| self.start_streaming(self.safe_lsn));
            match reconnected {
                Ok(()) => {
                    tracing::info!(source = %self.origin, "replication connection restored");
                    self.retry_at = None;
                    self.attempt = 0;
                }
                Err(e) => {
                    // Retrying cannot bring a dropped slot back: its changes
                    // are gone from the server. Stop with the way out.
                    if self.slot_is_gone(&e) {
                        return Err(slot_gone(&self.slot, self.safe_lsn));
                    }
                    self.attempt += 1;
                    let wait = self.reconnects.delay(self.attempt);
                    self.retry_at = Some(Instant::now() + wait);
                    tracing::warn!(source = %self.origin, retry_in = ?wait, "replication connection failed: {e:#}");
                    return Ok(Polled::default());
                }
            }
        }
        match self.read_changes(max) {
            Ok(p) => Ok(p),
            Err(ReadError::Lost(e, partial)) => {
                tracing::warn!(source = %self.origin, "replication connection lost ({e}); reconnecting from {}", format_lsn(self.safe_lsn));
                self.repl = None;
                self.attempt += 1;
                self.retry_at = Some(Instant::now() + self.reconnects.delay(self.attempt));
                Ok(Polled {
                    batch: partial.map(|b| *b),
                    ..Polled::default()
                })
            }
            Err(ReadError::Fatal(e)) => Err(e),
        }
    }

    fn read_changes(&mut self, max: usize) -> Result<Polled, ReadError> {
        self.heartbeat()
            .map_err(|e| ReadError::Lost(e.to_string(), None))?;
        let mut b = BatchBuilder::new(&self.origin, self.origin.clone(), max.min(4096));
        let deadline = Instant::now() + POLL_WAIT;
        while b.len() < max {
            let mut left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if !b.is_empty() {
                // Hand on what we have as soon as the socket runs dry:
                // waiting to fill the batch only adds latency.
                left = left.min(Duration::from_millis(1));
            }
            let Some(repl) = self.repl.as_mut() else {
                break;
            };
            let frame = match repl.next_frame(left) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(WireError::Server(s)) if is_shutdown(&s.code) => {
                    return Err(ReadError::Lost(s.to_string(), finish(b)))
                }
                Err(WireError::Server(s)) => {
                    return Err(ReadError::Fatal(anyhow!(
                        "replication from slot `{}` stopped: {s}",
                        self.slot
                    )))
                }
                Err(e) => return Err(ReadError::Lost(e.to_string(), finish(b))),
            };
            match frame.tag {
                b'd' => self
                    .copy_data(&frame.body, &mut b)
                    .map_err(ReadError::Fatal)?,
                b'E' => {
                    let e = wire::parse_error(&frame.body);
                    if is_shutdown(&e.code) {
                        return Err(ReadError::Lost(e.to_string(), finish(b)));
                    }
                    return Err(ReadError::Fatal(anyhow!(
                        "replication from slot `{}` stopped: {e}",
                        self.slot
                    )));
                }
                b'c' => {
                    return Err(ReadError::Lost(
                        "the server ended the stream".into(),
                        finish(b),
                    ))
                }
                _ => {}
            }
        }
        Ok(Polled {
            batch: finish(b).map(|b| *b),
            ..Polled::default()
        })
    }

    fn copy_data(&mut self, body: &[u8], b: &mut BatchBuilder) -> Result<()> {
        match body.first() {
            Some(b'w') => {
                let start = be_u64(body, 1)?;
                // The server's WAL end as it sent this change: how far
                // behind the stream is, in bytes of WAL.
                let server_end = be_u64(body, 9)?;
                self.progress
                    .set_lag(server_end.saturating_sub(start), LagUnit::WalBytes);
                let data = body.get(25..).unwrap_or_default();
                let msg = pgoutput::decode(data)?;
                self.apply(msg, start, b)
            }
            Some(b'k') => {
                let end = be_u64(body, 1)?;
                let reply = body.get(17).copied().unwrap_or(0) == 1;
                if self.txn.is_none() {
                    // Nothing half-delivered: everything before `end` that we
                    // subscribe to has been handed on.
                    self.safe_lsn = self.safe_lsn.max(end);
                    self.progress.set_lag(0, LagUnit::WalBytes);
                }
                if reply {
                    if let Some(repl) = self.repl.as_mut() {
                        repl.send_status(self.confirmed, false)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, msg: Message, lsn: u64, b: &mut BatchBuilder) -> Result<()> {
        let now = Self::now_us();
        match msg {
            Message::Begin { commit_ts, xid, .. } => {
                self.txn = Some(Txn {
                    xid,
                    ts_us: commit_ts.saturating_add(PG_EPOCH_OFFSET_US),
                });
            }
            Message::Commit { end_lsn, .. } => {
                self.txn = None;
                self.safe_lsn = self.safe_lsn.max(end_lsn);
            }
            Message::Relation(mut rel) => {
                self.mark_primary_key(&mut rel);
                let oids: Vec<u32> = rel.columns.iter().map(|c| c.type_oid).collect();
                if let Some(client) = &self.client {
                    if let Err(e) =
                        self.rt
                            .block_on(catalog::learn_types(client, &mut self.types, &oids))
                    {
                        tracing::warn!(
                            "looking up column types of {}.{}: {e:#}; unknown types become strings",
                            rel.schema,
                            rel.table
                        );
                    }
                }
                self.relations.insert(rel.id, rel);
            }
            Message::Insert { rel, new } => {
                self.change(rel, "c", None, Some(&new), lsn, now, b)?;
            }
            Message::Update { rel, old, new } => {
                let old = old.map(|(_, d)| d);
                self.change(rel, "u", old.as_deref(), Some(&new), lsn, now, b)?;
            }
            Message::Delete { rel, old } => {
                self.change(rel, "d", Some(&old.1), None, lsn, now, b)?;
            }
            Message::Truncate { rels } => {
                for id in rels {
                    let rel = self.relation(id)?;
                    let info = self.info(lsn);
                    let value = events::envelope(&rel, &info, "t", Value::Null, Value::Null, now);
                    let topic = events::topic(&self.server, &rel);
                    push(
                        b,
                        None,
                        Some(&value),
                        &topic,
                        info.ts_us.div_euclid(1000),
                        lsn,
                    )?;
                }
            }
            Message::Other(_) => {}
        }
        Ok(())
    }

    /// Keys events by the primary key, as Debezium does, rather than by the
    /// replica identity pgoutput flags. A Relation message comes again after
    /// DDL, so the key follows the table: with the default replica identity
    /// the flags are exactly the primary key as it was when the rows were
    /// written (a renamed key column included); otherwise (`FULL`, `USING
    /// INDEX`) the catalog names it, looked up again when a key column is no
    /// longer in the table's shape.
    fn mark_primary_key(&mut self, rel: &mut Relation) {
        let flagged: Vec<String> = rel
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name.clone())
            .collect();
        if rel.replica_identity == b'd' && !flagged.is_empty() {
            self.primary_keys.insert(rel.id, flagged);
            return;
        }
        let stale = self
            .primary_keys
            .get(&rel.id)
            .is_none_or(|pk| pk.iter().any(|k| !rel.columns.iter().any(|c| &c.name == k)));
        if stale {
            let table = TableRef {
                schema: rel.schema.clone(),
                table: rel.table.clone(),
            };
            let looked_up = self
                .client
                .as_ref()
                .map(|c| self.rt.block_on(catalog::relation(c, &table)));
            let pk = match looked_up {
                Some(Ok(r)) => r
                    .columns
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name.clone())
                    .collect(),
                _ => flagged,
            };
            self.primary_keys.insert(rel.id, pk);
        }
        if let Some(pk) = self.primary_keys.get(&rel.id) {
            for c in &mut rel.columns {
                c.key = pk.contains(&c.name);
            }
        }
    }

    fn relation(&self, id: u32) -> Result<Relation> {
        self.relations
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("change for relation {id} before its description"))
    }

    fn info(&self, lsn: u64) -> events::SourceInfo<'_> {
        events::SourceInfo {
            server: &self.server,
            db: &self.db,
            snapshot: "false",
            ts_us: self.txn.as_ref().map_or_else(Self::now_us, |t| t.ts_us),
            tx_id: self.txn.as_ref().map(|t| t.xid),
            lsn: Some(lsn),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        rel_id: u32,
        op: &str,
        old: Option<&[Datum]>,
        new: Option<&[Datum]>,
        lsn: u64,
        now: i64,
        b: &mut BatchBuilder,
    ) -> Result<()> {
        let rel = self
            .relations
            .get(&rel_id)
            .ok_or_else(|| anyhow!("change for relation {rel_id} before its description"))?;
        let before = old.map_or(Value::Null, |d| events::row(rel, &self.types, d));
        let after = new.map_or(Value::Null, |d| events::row(rel, &self.types, d));
        let key = events::key(rel, if after.is_null() { &before } else { &after });
        let info = self.info(lsn);
        let ts = info.ts_us.div_euclid(1000);
        let value = events::envelope(rel, &info, op, before, after, now);
        let topic = events::topic(&self.server, rel);
        push(b, key.as_ref(), Some(&value), &topic, ts, lsn)?;
        if op == "d" && self.config.tombstones_on_delete {
            push(b, key.as_ref(), None, &topic, ts, lsn)?;
        }
        Ok(())
    }
}

/// SQLSTATE class 57 (operator intervention): the server is shutting down
/// or an administrator ended the session. The connection is lost, not the
/// stream: reconnecting resumes it (or finds the slot gone).
fn is_shutdown(code: &str) -> bool {
    code.starts_with("57")
}

/// The error that stops a source whose slot was dropped, with the way out.
fn slot_gone(slot: &str, lsn: u64) -> anyhow::Error {
    anyhow!(
        "replication slot `{slot}` no longer exists (dropped, or invalidated by the server), so the changes after LSN {} are gone from the server and retrying cannot bring them back. \
         To recover, start over with a fresh snapshot: `sluice run --reset FILE` (or `sluice reset FILE`, then run); the slot is created again and rows already delivered are delivered again",
        format_lsn(lsn)
    )
}

enum ReadError {
    /// The connection broke: reconnect (events read so far still go on).
    Lost(String, Option<Box<crate::event::Batch>>),
    /// The server refused to go on: stop the pipeline.
    Fatal(anyhow::Error),
}

fn finish(b: BatchBuilder) -> Option<Box<crate::event::Batch>> {
    (!b.is_empty()).then(|| Box::new(b.finish()))
}

fn be_u64(b: &[u8], at: usize) -> Result<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| anyhow!("short replication message"))
}

fn push(
    b: &mut BatchBuilder,
    key: Option<&Value>,
    value: Option<&Value>,
    topic: &str,
    ts_ms: i64,
    position: u64,
) -> Result<()> {
    let key = key.map(serde_json::to_vec).transpose()?;
    let value = value.map(serde_json::to_vec).transpose()?;
    b.push(
        key.as_deref(),
        value.as_deref(),
        &[("sluice.topic", topic.as_bytes())],
        ts_ms,
        position,
    );
    Ok(())
}

impl Source for PostgresCdcSource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let shapes = self.prepare()?;
        let phase = position
            .and_then(|p| p.get("phase"))
            .and_then(Value::as_str);
        match phase {
            Some("done") => {
                self.phase = Phase::Done;
                Ok(())
            }
            Some("streaming") => {
                let lsn = position
                    .and_then(|p| p.get("lsn"))
                    .and_then(Value::as_str)
                    .and_then(parse_lsn)
                    .ok_or_else(|| anyhow!("checkpointed position has no valid `lsn`"))?;
                let slot = self
                    .rt
                    .block_on(catalog::slot_state(self.client()?, &self.slot))?;
                if slot.is_none() {
                    return Err(slot_gone(&self.slot, lsn));
                }
                self.safe_lsn = lsn;
                self.confirmed = lsn;
                match self.start_streaming(lsn) {
                    Err(e) if e.is::<SlotBusy>() => {
                        // After a crash the server may still hold the slot for
                        // the dead run's session until it notices the socket
                        // closed (at worst `wal_sender_timeout`). Streaming
                        // retries with backoff instead of failing the start.
                        self.phase = Phase::Streaming;
                        self.attempt = 1;
                        let wait = self.reconnects.delay(self.attempt);
                        self.retry_at = Some(Instant::now() + wait);
                        tracing::warn!(source = %self.origin, retry_in = ?wait, "{e:#}");
                        Ok(())
                    }
                    other => other,
                }
            }
            Some("snapshot") => {
                tracing::warn!(source = %self.origin, "the last run stopped during the snapshot; taking it again from the start");
                self.start_fresh(shapes)
            }
            _ => self.start_fresh(shapes),
        }
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        match self.phase {
            Phase::Snapshot => self.poll_snapshot(max),
            Phase::Streaming => self.poll_stream(max),
            Phase::Done => Ok(Polled {
                done: true,
                ..Polled::default()
            }),
        }
    }

    fn position(&self) -> Value {
        match self.phase {
            Phase::Snapshot => json!({"phase": "snapshot", "slot": self.slot}),
            Phase::Streaming => {
                json!({"phase": "streaming", "slot": self.slot, "lsn": format_lsn(self.safe_lsn)})
            }
            Phase::Done => json!({"phase": "done"}),
        }
    }

    fn caught_up(&self) -> bool {
        self.phase != Phase::Snapshot
    }

    fn committed(&mut self, position: &Value) -> Result<()> {
        let Some(lsn) = position
            .get("lsn")
            .and_then(Value::as_str)
            .and_then(parse_lsn)
        else {
            return Ok(());
        };
        if lsn <= self.confirmed {
            return Ok(());
        }
        self.confirmed = lsn;
        if let Some(repl) = self.repl.as_mut() {
            if let Err(e) = repl.send_status(lsn, false) {
                // The next connection confirms it at START_REPLICATION.
                tracing::warn!(source = %self.origin, "confirming LSN {}: {e}", format_lsn(lsn));
            }
        }
        tracing::debug!(source = %self.origin, lsn = %format_lsn(lsn), "confirmed flush position");
        Ok(())
    }
}

/// The `postgres-cdc` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "postgres-cdc",
    summary: "change data capture from PostgreSQL logical replication (pgoutput)",
    parse: parse_source::<PostgresCdcConfig>,
};

impl SourceConfig for PostgresCdcConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::postgres_tls::endpoints(&self.url)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        PostgresCdcConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        PostgresCdcConfig::resolve_paths(self, base);
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(PostgresCdcSource::new(
            self.clone(),
            cx.name,
            std::sync::Arc::from(cx.name),
            cx.progress,
        )?))
    }
}
