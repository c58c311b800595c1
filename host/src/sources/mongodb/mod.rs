//! `mongodb` source: an initial snapshot of a database's collections, then
//! their change streams, as Debezium-compatible change events.
//!
//! **No gap between snapshot and stream.** Before a collection is read, its
//! change stream is opened and the stream's resume token taken; once the
//! snapshot is done, streaming resumes after that token, so a change made
//! while the snapshot ran shows up as a change event (possibly after the
//! snapshot already saw its result: at-least-once, never lost).
//!
//! **Positions.** `position()` holds one resume token per collection (and,
//! during a snapshot, the collections still to read and the last `_id` read).
//! The runner checkpoints positions only after every sink flushed, so a
//! restart resumes after the last acknowledged change. An interrupted
//! snapshot continues after the last checkpointed `_id`.
//!
//! **Expired tokens.** When a token is no longer in the oplog
//! (`ChangeStreamHistoryLost`), the source stops with an error saying so and
//! how to recover, unless `snapshot: when_needed` asks it to take a fresh
//! snapshot of that collection. It never skips silently.
//!
//! One change stream per collection (not one per database): that is what the
//! include/exclude lists select, and it works on servers and emulations that
//! only support collection streams. Collections created after the start are
//! picked up at the next start.

pub mod config;
pub mod cursor;
pub mod event;

pub use config::{CollectionFilter, FullDocument, MongoSourceConfig, SnapshotMode};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Client, Database};
use serde_json::{json, Value};

use crate::clients::mongodb::errors::{self, connect_error, redact, stream_problem, StreamProblem};
use crate::clients::mongodb::{client, mapping};
use crate::connector::{parse_source, ConfigIssue, SourceConfig, SourceContext, SourceKind};
use crate::connector::{LagUnit, Progress};
use crate::connector::{Polled, Source};
use crate::event::BatchBuilder;
use cursor::RawCursor;
use event::{change_event, snapshot_event, Change, Emit, Origin};

/// Header naming the stream (`<name>.<db>.<collection>`) on every event.
pub const STREAM_HEADER: &str = "sluice.topic";

/// A running `mongodb` source.
pub struct MongoSource {
    config: MongoSourceConfig,
    progress: Arc<Progress>,
    origin: Origin,
    client: Option<Client>,
    collections: Vec<String>,
    /// Resume token per collection, as Extended JSON.
    tokens: BTreeMap<String, Value>,
    /// Collections still to snapshot; the first one is being read.
    pending: VecDeque<String>,
    /// `_id` (Extended JSON) of the last document read from `pending[0]`.
    after_id: Option<Value>,
    reader: Option<SnapshotReader>,
    streams: Vec<(String, RawCursor)>,
    next_stream: usize,
    stream_names: HashMap<String, Arc<str>>,
    seq: u64,
    snapshot_read: u64,
    done: bool,
    /// Milliseconds behind, per streamed collection.
    lag_ms: HashMap<String, u64>,
}

struct SnapshotReader {
    collection: String,
    cursor: RawCursor,
    peeked: Option<Document>,
    read: u64,
    started: Instant,
    last_log: Instant,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn token_to_json(token: Document) -> Value {
    Bson::Document(token).into_relaxed_extjson()
}

fn token_from_json(value: &Value) -> Result<Document> {
    mapping::json_to_doc(value.clone())
        .map_err(|e| anyhow!("the checkpointed resume token is unreadable: {e}"))
}

impl MongoSource {
    /// A source per `config`; `name` is the pipeline's name for it (the
    /// default logical server name).
    pub fn new(config: MongoSourceConfig, name: &str, progress: Arc<Progress>) -> Self {
        let origin = Origin {
            name: config.name.clone().unwrap_or_else(|| name.to_string()),
            db: config.database.clone(),
            rs: String::new(),
        };
        Self {
            config,
            progress,
            origin,
            client: None,
            collections: Vec::new(),
            tokens: BTreeMap::new(),
            pending: VecDeque::new(),
            after_id: None,
            reader: None,
            streams: Vec::new(),
            next_stream: 0,
            stream_names: HashMap::new(),
            seq: 0,
            snapshot_read: 0,
            done: false,
            lag_ms: HashMap::new(),
        }
    }

    fn where_(&self, collection: &str) -> String {
        format!("{}.{collection}", self.config.database)
    }

    fn db(&self) -> Result<Database> {
        self.client
            .as_ref()
            .map(|c| c.database(&self.config.database))
            .ok_or_else(|| anyhow!("mongodb source used before open"))
    }

    fn stream_name(&mut self, collection: &str) -> Arc<str> {
        if let Some(n) = self.stream_names.get(collection) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(format!(
            "{}.{}.{collection}",
            self.origin.name, self.config.database
        ));
        self.stream_names.insert(collection.to_string(), n.clone());
        n
    }

    fn connect(&mut self) -> Result<()> {
        let uri = &self.config.uri;
        let timeout = self.config.connect_timeout_ms;
        let (client, _) = client::connect(uri, self.config.access(), timeout)?;
        if let Ok(hello) = client
            .database("admin")
            .run_command(doc! {"hello": 1})
            .run()
        {
            if let Ok(rs) = hello.get_str("setName") {
                self.origin.rs = rs.to_string();
            }
        }
        let names = client
            .database(&self.config.database)
            .list_collection_names()
            .run()
            .map_err(|e| connect_error(&e, uri, timeout))?;
        let mut collections: Vec<String> =
            names.into_iter().filter(|c| self.config.wants(c)).collect();
        for name in self.config.collections.include.iter().flatten() {
            if !name.contains('*') && self.config.wants(name) && !collections.contains(name) {
                tracing::warn!(
                    "collection {}.{name} does not exist (yet); capturing it from when it appears",
                    self.config.database
                );
                collections.push(name.clone());
            }
        }
        collections.sort();
        if collections.is_empty() {
            bail!(
                "no collection of database `{}` at {} matches `collections` (found none to capture); check `database` and the include/exclude lists",
                self.config.database,
                redact(uri)
            );
        }
        self.client = Some(client);
        self.collections = collections;
        Ok(())
    }

    /// Opens `collection`'s change stream after `token` (or from now).
    fn watch(
        &self,
        collection: &str,
        token: Option<&Value>,
        start_after: bool,
    ) -> Result<RawCursor, mongodb::error::Error> {
        let Some(client) = self.client.as_ref() else {
            return Err(mongodb::error::Error::custom(
                "mongodb source used before open",
            ));
        };
        let mut spec = Document::new();
        if self.config.full_document == FullDocument::UpdateLookup {
            spec.insert("fullDocument", "updateLookup");
        }
        if let Some(t) = token {
            let t =
                token_from_json(t).map_err(|e| mongodb::error::Error::custom(format!("{e:#}")))?;
            spec.insert(
                if start_after {
                    "startAfter"
                } else {
                    "resumeAfter"
                },
                t,
            );
        }
        let n = self.collections.len().max(1) as u64;
        let wait = (self.config.poll_ms / n).max(10);
        let command = doc! {
            "aggregate": collection,
            "pipeline": [{"$changeStream": spec}],
            "cursor": {},
        };
        let session = client.start_session().run()?;
        RawCursor::open(
            client.database(&self.config.database),
            session,
            collection,
            command,
            Some(wait),
        )
    }

    /// The error for a change stream that cannot start or go on.
    fn stream_error(
        &self,
        collection: &str,
        e: &mongodb::error::Error,
        resuming: bool,
    ) -> anyhow::Error {
        let msg = errors::message(e);
        let uri = redact(&self.config.uri);
        match stream_problem(errors::code(e), &msg) {
            StreamProblem::HistoryLost => anyhow!(
                "cannot resume the change stream of {} after the checkpointed resume token: it is no longer in the oplog ({msg}). The changes since the last checkpoint are gone from the server, so resuming would skip them silently. To recover, take a fresh snapshot: set `snapshot: when_needed` on this source (it re-reads the collection, then streams), or delete the pipeline's checkpoint (data_dir/<pipeline>/checkpoint.json) to start over. To prevent it, keep the oplog longer than the pipeline's longest downtime (replSetResizeOplog)",
                self.where_(collection)
            ),
            StreamProblem::Unsupported => anyhow!(
                "change streams are not available on MongoDB at {uri} ({msg}): it is a standalone server. Change streams need a replica set or a sharded cluster; a single-node replica set is enough: start mongod with `--replSet rs0`, run `rs.initiate()` once, and connect with `?replicaSet=rs0` (or `directConnection=true`). `snapshot: initial_only` reads a standalone server without change streams"
            ),
            StreamProblem::Other if resuming => anyhow!(
                "cannot resume the change stream of {}: {}",
                self.where_(collection),
                connect_error(e, &self.config.uri, self.config.connect_timeout_ms)
            ),
            StreamProblem::Other => anyhow!(
                "cannot open the change stream of {}: {}",
                self.where_(collection),
                connect_error(e, &self.config.uri, self.config.connect_timeout_ms)
            ),
        }
    }

    /// Takes the current point of `collection`'s stream as its token.
    fn take_token(&mut self, collection: &str) -> Result<()> {
        let stream = self
            .watch(collection, None, false)
            .map_err(|e| self.stream_error(collection, &e, false))?;
        let token = stream.resume_token().ok_or_else(|| {
            anyhow!(
                "MongoDB did not return a resume token for {}'s change stream (MongoDB 4.0.7 or later is needed)",
                self.where_(collection)
            )
        })?;
        self.tokens
            .insert(collection.to_string(), token_to_json(token));
        Ok(())
    }

    /// Opens every collection's stream after its token. A token that has
    /// expired fails, or with `when_needed` queues a fresh snapshot.
    fn start_streams(&mut self) -> Result<()> {
        self.streams.clear();
        self.next_stream = 0;
        for collection in self.collections.clone() {
            let token = self.tokens.get(&collection).cloned();
            match self.watch(&collection, token.as_ref(), false) {
                Ok(s) => self.streams.push((collection, s)),
                Err(e) => self.stream_failed(&collection, &e, token.is_some())?,
            }
        }
        if !self.pending.is_empty() {
            // A re-snapshot was queued: streams restart once it is done.
            self.streams.clear();
        }
        Ok(())
    }

    /// Handles a stream that cannot (re)start: with `when_needed` and an
    /// expired token, queue a fresh snapshot; otherwise fail.
    fn stream_failed(
        &mut self,
        collection: &str,
        e: &mongodb::error::Error,
        resuming: bool,
    ) -> Result<()> {
        let lost =
            stream_problem(errors::code(e), &errors::message(e)) == StreamProblem::HistoryLost;
        if lost && self.config.snapshot == SnapshotMode::WhenNeeded {
            tracing::warn!(
                "the resume token of {} is no longer in the oplog ({}); taking a fresh snapshot of it (snapshot: when_needed)",
                self.where_(collection),
                errors::message(e)
            );
            self.take_token(collection)?;
            if !self.pending.iter().any(|c| c == collection) {
                self.pending.push_back(collection.to_string());
            }
            return Ok(());
        }
        Err(self.stream_error(collection, e, resuming))
    }

    fn start_snapshot_progress(&mut self) {
        let Ok(db) = self.db() else { return };
        let total: u64 = self
            .pending
            .iter()
            .filter_map(|c| {
                db.collection::<Document>(c)
                    .estimated_document_count()
                    .run()
                    .ok()
            })
            .sum();
        self.progress.set_total(self.snapshot_read + total);
        self.progress.set_done(self.snapshot_read);
    }

    fn open_reader(&mut self, collection: &str) -> Result<SnapshotReader> {
        let db = self.db()?;
        let filter = match &self.after_id {
            Some(id) => {
                let id = mapping::json_to_bson(id.clone())
                    .map_err(|e| anyhow!("checkpointed snapshot position: {e}"))?;
                doc! {"_id": {"$gt": id}}
            }
            None => doc! {},
        };
        let fail = |e: mongodb::error::Error| {
            anyhow!(
                "snapshot of {}: {}",
                self.where_(collection),
                connect_error(&e, &self.config.uri, self.config.connect_timeout_ms)
            )
        };
        let session = self
            .client
            .as_ref()
            .ok_or_else(|| anyhow!("mongodb source used before open"))?
            .start_session()
            .run()
            .map_err(fail)?;
        let command = doc! {
            "find": collection,
            "filter": filter,
            "sort": {"_id": 1},
            "batchSize": 1000,
        };
        let cursor = RawCursor::open(db, session, collection, command, None).map_err(fail)?;
        tracing::info!(
            collection = %self.where_(collection),
            resumed = self.after_id.is_some(),
            "snapshot started"
        );
        Ok(SnapshotReader {
            collection: collection.to_string(),
            cursor,
            peeked: None,
            read: 0,
            started: Instant::now(),
            last_log: Instant::now(),
        })
    }

    fn next_doc(&mut self) -> Result<Option<Document>> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(None);
        };
        if let Some(d) = r.peeked.take() {
            return Ok(Some(d));
        }
        match r.cursor.next_document() {
            Ok(d) => Ok(d),
            Err(e) => Err(anyhow!(
                "snapshot of {}.{} failed: {}",
                self.config.database,
                r.collection,
                errors::message(&e)
            )),
        }
    }

    fn peek_is_end(&mut self) -> Result<bool> {
        let next = self.next_doc()?;
        let end = next.is_none();
        if let Some(r) = self.reader.as_mut() {
            r.peeked = next;
        }
        Ok(end)
    }

    fn poll_snapshot(&mut self, max: usize) -> Result<Polled> {
        let Some(collection) = self.pending.front().cloned() else {
            return Ok(Polled::default());
        };
        if self.reader.is_none() {
            self.reader = Some(self.open_reader(&collection)?);
        }
        let stream = self.stream_name(&collection);
        let mut out = BatchBuilder::new(&stream, stream.clone(), max);
        let mut finished = false;
        while out.len() < max {
            let Some(doc) = self.next_doc()? else {
                finished = true;
                break;
            };
            let id = doc.get("_id").cloned();
            let last = self.pending.len() == 1 && self.peek_is_end()?;
            let emit = snapshot_event(&self.origin, &collection, doc, now_ms(), last);
            self.push(&mut out, &stream, emit);
            self.after_id = id.map(Bson::into_relaxed_extjson);
            self.snapshot_read += 1;
            if let Some(r) = self.reader.as_mut() {
                r.read += 1;
            }
        }
        if !finished {
            finished = self.peek_is_end()?;
        }
        self.progress.set_done(self.snapshot_read);
        if let Some(r) = self.reader.as_mut() {
            if r.last_log.elapsed() >= Duration::from_secs(10) {
                r.last_log = Instant::now();
                tracing::info!(collection = %format!("{}.{}", self.config.database, r.collection), documents = r.read, "snapshot in progress");
            }
        }
        if finished {
            if let Some(r) = self.reader.take() {
                let secs = r.started.elapsed().as_secs_f64();
                tracing::info!(
                    collection = %self.where_(&r.collection),
                    documents = r.read,
                    seconds = format!("{secs:.1}"),
                    "snapshot done"
                );
            }
            self.pending.pop_front();
            self.after_id = None;
            if self.pending.is_empty() {
                if self.config.snapshot == SnapshotMode::InitialOnly {
                    self.done = true;
                } else {
                    self.start_streams()?;
                    if !self.pending.is_empty() {
                        self.start_snapshot_progress();
                    }
                }
            }
        }
        Ok(Polled {
            batch: (!out.is_empty()).then(|| out.finish()),
            malformed: Vec::new(),
            done: self.done,
        })
    }

    fn push(&mut self, out: &mut BatchBuilder, stream: &Arc<str>, emit: Emit) {
        let headers: [(&str, &[u8]); 1] = [(STREAM_HEADER, stream.as_bytes())];
        out.push(
            emit.key.as_deref().map(str::as_bytes),
            emit.value.as_deref().map(str::as_bytes),
            &headers,
            emit.ts_ms,
            self.seq,
        );
        self.seq += 1;
    }

    /// How far behind the server's clock a change stream reads: 0 once a
    /// `getMore` came back empty, else now less the time of the change last
    /// read. The source's lag is its furthest-behind collection.
    fn measure_lag(&mut self, collection: &str, drained: bool, last_ts_ms: Option<i64>) {
        let behind = if drained {
            0
        } else if let Some(ts) = last_ts_ms {
            now_ms().saturating_sub(ts).max(0) as u64
        } else {
            // Nothing read and not drained (an interrupted batch): unchanged.
            return;
        };
        self.lag_ms.insert(collection.to_string(), behind);
        let lag = self.lag_ms.values().copied().max().unwrap_or(0);
        self.progress.set_lag(lag, LagUnit::Millis);
    }

    fn poll_stream(&mut self, max: usize) -> Result<Polled> {
        if self.streams.is_empty() {
            std::thread::sleep(Duration::from_millis(self.config.poll_ms));
            return Ok(Polled::default());
        }
        let i = self.next_stream % self.streams.len();
        self.next_stream = (i + 1) % self.streams.len();
        let collection = self.streams[i].0.clone();
        let stream_name = self.stream_name(&collection);
        let mut out = BatchBuilder::new(&stream_name, stream_name.clone(), max);
        let mut invalidated = false;
        let mut drained = false;
        let mut last_ts_ms = None;
        while out.len() + 1 < max.max(2) {
            let next = self.streams[i].1.next_document();
            let change = match next {
                Ok(Some(c)) => c,
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(e) if errors::is_transient(&e) && out.is_empty() => {
                    // The driver already retried once; back off and reopen
                    // from the last token on the next poll.
                    tracing::warn!(collection = %self.where_(&collection), "change stream interrupted ({}); reopening", errors::message(&e));
                    std::thread::sleep(Duration::from_millis(500));
                    let token = self.tokens.get(&collection).cloned();
                    match self.watch(&collection, token.as_ref(), false) {
                        Ok(s) => self.streams[i].1 = s,
                        Err(e) if errors::is_transient(&e) => {}
                        Err(e) => {
                            self.stream_failed(&collection, &e, true)?;
                            if !self.pending.is_empty() {
                                self.streams.clear();
                                self.start_snapshot_progress();
                            }
                        }
                    }
                    return Ok(Polled::default());
                }
                Err(e) if errors::is_transient(&e) => break,
                Err(e) => {
                    self.stream_failed(&collection, &e, true)?;
                    self.streams.clear();
                    self.start_snapshot_progress();
                    return Ok(Polled::default());
                }
            };
            match change_event(&self.origin, &collection, &change, now_ms()) {
                Change::Event { emit, op } => {
                    last_ts_ms = Some(emit.ts_ms);
                    let tombstone = (op == "d" && self.config.tombstones_on_delete).then(|| Emit {
                        value: None,
                        ..emit.clone()
                    });
                    self.push(&mut out, &stream_name, emit);
                    if let Some(t) = tombstone {
                        self.push(&mut out, &stream_name, t);
                    }
                }
                Change::Skip(what) => {
                    tracing::info!(collection = %self.where_(&collection), "skipping {what}");
                }
                Change::Invalidate => {
                    tracing::warn!(collection = %self.where_(&collection), "the change stream was invalidated (collection dropped or renamed); restarting it after the invalidation");
                    invalidated = true;
                    break;
                }
            }
        }
        if let Some(token) = self.streams[i].1.resume_token() {
            self.tokens.insert(collection.clone(), token_to_json(token));
        }
        self.measure_lag(&collection, drained, last_ts_ms);
        if invalidated {
            let token = self.tokens.get(&collection).cloned();
            match self.watch(&collection, token.as_ref(), true) {
                Ok(s) => self.streams[i].1 = s,
                Err(e) => return Err(self.stream_error(&collection, &e, true)),
            }
        }
        Ok(Polled {
            batch: (!out.is_empty()).then(|| out.finish()),
            malformed: Vec::new(),
            done: false,
        })
    }
}

impl Source for MongoSource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.connect()?;
        let mode = self.config.snapshot;
        if let Some(pos) = position {
            self.seq = pos.get("seq").and_then(Value::as_u64).unwrap_or(0);
            if let Some(Value::Object(t)) = pos.get("tokens") {
                for (k, v) in t {
                    if self.collections.contains(k) {
                        self.tokens.insert(k.clone(), v.clone());
                    }
                }
            }
            if let Some(Value::Array(p)) = pos.get("pending") {
                self.pending = p
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|c| self.collections.iter().any(|k| k == c))
                    .map(str::to_string)
                    .collect();
            }
            // `after_id` belongs to the collection that was being read; keep
            // it only if that one is still first in line.
            let was_reading = pos
                .get("pending")
                .and_then(|p| p.get(0))
                .and_then(Value::as_str);
            self.after_id = pos
                .get("after_id")
                .filter(|v| !v.is_null())
                .filter(|_| {
                    was_reading.is_some() && was_reading == self.pending.front().map(String::as_str)
                })
                .cloned();
            self.done = pos.get("done").and_then(Value::as_bool).unwrap_or(false);
        }
        // Collections with no token yet: new, or a first run.
        for collection in self.collections.clone() {
            if self.tokens.contains_key(&collection) {
                continue;
            }
            if mode == SnapshotMode::InitialOnly {
                if position.is_none() {
                    self.pending.push_back(collection);
                }
                continue;
            }
            self.take_token(&collection)?;
            if mode != SnapshotMode::Never {
                tracing::info!(collection = %self.where_(&collection), "new collection: snapshot first");
                self.pending.push_back(collection);
            }
        }
        if self.done || (mode == SnapshotMode::InitialOnly && self.pending.is_empty()) {
            self.done = true;
            return Ok(());
        }
        if self.pending.is_empty() {
            self.start_streams()?;
        }
        if !self.pending.is_empty() {
            self.start_snapshot_progress();
        }
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        if self.done {
            return Ok(Polled {
                done: true,
                ..Polled::default()
            });
        }
        if !self.pending.is_empty() {
            return self.poll_snapshot(max.max(1));
        }
        self.poll_stream(max.max(2))
    }

    fn caught_up(&self) -> bool {
        self.pending.is_empty()
    }

    fn position(&self) -> Value {
        json!({
            "tokens": self.tokens,
            "pending": self.pending,
            "after_id": self.after_id,
            "seq": self.seq,
            "done": self.done,
        })
    }
}

/// The `mongodb` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "mongodb",
    summary: "MongoDB collections: a snapshot, then change streams",
    parse: parse_source::<MongoSourceConfig>,
};

impl SourceConfig for MongoSourceConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::mongodb::endpoints(&self.uri)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        MongoSourceConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        MongoSourceConfig::resolve_paths(self, base);
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(MongoSource::new(
            self.clone(),
            cx.name,
            cx.progress,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_furthest_behind_collection_and_zero_once_all_are_drained() {
        let config: MongoSourceConfig =
            serde_json::from_value(json!({"uri": "mongodb://127.0.0.1:1", "database": "d"}))
                .expect("config");
        let progress = Arc::new(Progress::default());
        let mut source = MongoSource::new(config, "m", progress.clone());
        source.measure_lag("a", false, Some(now_ms() - 5_000));
        source.measure_lag("b", true, None);
        let Some((n, LagUnit::Millis)) = progress.lag() else {
            panic!("{:?}", progress.lag());
        };
        assert!((5_000..6_000).contains(&n), "{n}");
        // An interrupted read measures nothing: unchanged.
        source.measure_lag("a", false, None);
        assert!(progress.lag().is_some_and(|(m, _)| m >= 5_000));
        // A change stamped ahead of this clock is not behind.
        source.measure_lag("a", false, Some(now_ms() + 60_000));
        assert_eq!(progress.lag(), Some((0, LagUnit::Millis)));
        source.measure_lag("b", false, Some(now_ms() - 2_000));
        assert!(progress
            .lag()
            .is_some_and(|(m, _)| (2_000..3_000).contains(&m)));
        source.measure_lag("b", true, None);
        assert_eq!(progress.lag(), Some((0, LagUnit::Millis)));
    }
}
