//! `mongodb` sink: events into one collection, with the official driver.
//!
//! Each event's value is a document (a JSON object; Extended JSON such as
//! `{"$oid": …}` or `{"$date": …}` becomes the BSON type, see
//! `clients::mongodb::mapping`). Its `_id` is the document's own `_id`, else
//! the event key. `upsert` mode replaces the document with that `_id` or
//! inserts it (idempotent, so a replay after a crash converges); `insert`
//! mode only inserts. A tombstone (null value) deletes the document its key
//! names.
//!
//! Writes go out as `insert` / `update` / `delete` commands of up to
//! `max_batch` operations each (consecutive events of one kind on distinct
//! `_id`s share a command, `ordered: false`, so event order per `_id` holds).
//! Plain write commands rather than the `bulkWrite` command: that one needs
//! MongoDB 8.0, and the per-item `writeErrors` of the classic commands give
//! every refused document its own dead letter with the server's message
//! (duplicate key, validation failure, invalid field names, too large).
//! Transient failures (connection lost, no primary) are retried with
//! exponential backoff up to `max_retries` times, then the pipeline stops
//! without checkpointing, so a rerun resumes without loss.

mod config;

pub use config::{MongoSinkConfig, WriteMode};

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Client, Database};
use serde_json::Value;

use crate::clients::mongodb::{client, errors, mapping};
use crate::connector::Backoff;
use crate::connector::{parse_sink, ConfigIssue, Rejected, Sink, SinkConfig, SinkKind};
use crate::event::Batch;

/// One write, for event `index` of the batch.
enum Op {
    Insert(Document),
    Upsert(Bson, Document),
    Delete(Vec<Bson>),
}

impl Op {
    fn kind(&self) -> u8 {
        match self {
            Op::Insert(_) => 0,
            Op::Upsert(..) => 1,
            Op::Delete(_) => 2,
        }
    }

    /// Identity for "same document" checks within one command.
    fn identity(&self) -> Option<String> {
        match self {
            Op::Insert(d) => d.get("_id").map(|id| format!("{id:?}")),
            Op::Upsert(id, _) => Some(format!("{id:?}")),
            Op::Delete(ids) => Some(format!("{:?}", ids.first())),
        }
    }
}

/// A running `mongodb` sink.
pub struct MongoSink {
    config: MongoSinkConfig,
    name: String,
    client: Option<Client>,
    write_concern: Option<Document>,
    backoff: Backoff,
}

impl MongoSink {
    /// A sink per `config`, named `name` in logs.
    pub fn new(config: MongoSinkConfig, name: &str) -> Result<Self> {
        let backoff = Backoff::from_millis(config.initial_backoff_ms, config.max_backoff_ms);
        Ok(Self {
            config,
            name: name.to_string(),
            client: None,
            write_concern: None,
            backoff,
        })
    }

    fn db(&self) -> Result<Database> {
        self.client
            .as_ref()
            .map(|c| c.database(&self.config.database))
            .ok_or_else(|| anyhow!("mongodb sink used before open"))
    }

    /// The write for one event, or why it cannot be written.
    fn op(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Op, String> {
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
        let Some(bytes) = value else {
            let key = key.ok_or("a tombstone without a key cannot name the document to delete")?;
            return Ok(Op::Delete(mapping::key_to_ids(&key)));
        };
        let json: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("value is not valid JSON: {e}"))?;
        let mut doc = mapping::json_to_doc(json)?;
        let key_id = key
            .as_deref()
            .and_then(|k| mapping::key_to_ids(k).into_iter().next());
        match self.config.mode {
            WriteMode::Insert => {
                if !doc.contains_key("_id") {
                    if let Some(id) = key_id {
                        doc.insert("_id", id);
                    }
                }
                Ok(Op::Insert(doc))
            }
            WriteMode::Upsert => {
                let id = match doc.get("_id") {
                    Some(id) => id.clone(),
                    None => {
                        let id = key_id.ok_or(
                            "upsert needs the document's `_id` or an event key to name the document",
                        )?;
                        doc.insert("_id", id.clone());
                        id
                    }
                };
                Ok(Op::Upsert(id, doc))
            }
        }
    }

    /// Sends one command for `ops` (all of one kind) and routes each refused
    /// item to `rejected`. Transient failures are retried.
    fn send(
        &mut self,
        batch: &Arc<Batch>,
        ops: Vec<(usize, Op)>,
        rejected: &mut Rejected,
    ) -> Result<()> {
        let coll = self.config.collection.clone();
        let (field, items, kind): (&str, Vec<Bson>, &str) = match ops.first().map(|(_, o)| o.kind())
        {
            None => return Ok(()),
            Some(0) => (
                "documents",
                ops.iter()
                    .filter_map(|(_, o)| match o {
                        Op::Insert(d) => Some(Bson::Document(d.clone())),
                        _ => None,
                    })
                    .collect(),
                "insert",
            ),
            Some(1) => (
                "updates",
                ops.iter()
                    .filter_map(|(_, o)| match o {
                        Op::Upsert(id, d) => Some(Bson::Document(
                            doc! {"q": {"_id": id.clone()}, "u": d.clone(), "upsert": true},
                        )),
                        _ => None,
                    })
                    .collect(),
                "update",
            ),
            Some(_) => (
                "deletes",
                ops.iter()
                    .filter_map(|(_, o)| match o {
                        Op::Delete(ids) => Some(Bson::Document(
                            doc! {"q": {"_id": {"$in": ids.clone()}}, "limit": 0},
                        )),
                        _ => None,
                    })
                    .collect(),
                "delete",
            ),
        };
        let mut command = doc! {kind: &coll};
        command.insert(field, items);
        command.insert("ordered", false);
        if let Some(wc) = &self.write_concern {
            command.insert("writeConcern", wc.clone());
        }
        let db = self.db()?;
        let mut attempt = 0u32;
        let reply = loop {
            let failure = match db.run_command(command.clone()).run() {
                Ok(reply) => match reply.get_document("writeConcernError") {
                    Ok(wce) => format!("write concern error: {wce}"),
                    Err(_) => break reply,
                },
                Err(e) if errors::is_transient(&e) => errors::message(&e),
                Err(e) => {
                    return Err(errors::connect_error(
                        &e,
                        &self.config.uri,
                        self.config.connect_timeout_ms,
                    )
                    .context(format!("writing to {}.{coll}", self.config.database)))
                }
            };
            attempt += 1;
            if attempt > self.config.max_retries {
                bail!(
                    "writing to {}.{coll} failed {attempt} times, last: {failure}; stopping without checkpointing (a rerun resumes from the last checkpoint)",
                    self.config.database
                );
            }
            let wait = self.backoff.delay(attempt);
            tracing::warn!(sink = %self.name, attempt, "MongoDB write failed ({failure}); retrying in {wait:?}");
            std::thread::sleep(wait);
        };
        if let Ok(write_errors) = reply.get_array("writeErrors") {
            for we in write_errors {
                let Bson::Document(we) = we else { continue };
                let index = match we.get("index") {
                    Some(Bson::Int32(i)) => *i as usize,
                    Some(Bson::Int64(i)) => *i as usize,
                    _ => continue,
                };
                let Some((event, _)) = ops.get(index) else {
                    continue;
                };
                let code = match we.get("code") {
                    Some(Bson::Int32(c)) => i64::from(*c),
                    Some(Bson::Int64(c)) => *c,
                    _ => 0,
                };
                let msg = we.get_str("errmsg").unwrap_or("no message");
                rejected.push(
                    batch,
                    *event,
                    format!(
                        "MongoDB refused the {kind} into {}.{coll} (code {code}): {msg}",
                        self.config.database
                    ),
                );
            }
        }
        Ok(())
    }
}

impl Sink for MongoSink {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        let (client, options) = client::connect(
            &self.config.uri,
            self.config.access(),
            self.config.connect_timeout_ms,
        )?;
        self.write_concern = options
            .write_concern
            .as_ref()
            .and_then(|wc| mongodb::bson::to_document(wc).ok())
            .filter(|d| !d.is_empty());
        self.client = Some(client);
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        let mut run: Vec<(usize, Op)> = Vec::new();
        let mut ids: HashSet<String> = HashSet::new();
        for i in 0..batch.len() {
            let Some(event) = batch.get(i) else { continue };
            let op = match self.op(event.key, event.value) {
                Ok(op) => op,
                Err(reason) => {
                    rejected.push(batch, i, reason);
                    continue;
                }
            };
            let same_kind = run.first().is_none_or(|(_, o)| o.kind() == op.kind());
            let identity = op.identity();
            let repeat = identity.as_ref().is_some_and(|id| ids.contains(id));
            if !same_kind || repeat || run.len() >= self.config.max_batch {
                self.send(batch, std::mem::take(&mut run), rejected)?;
                ids.clear();
            }
            if let Some(id) = identity {
                ids.insert(id);
            }
            run.push((i, op));
        }
        self.send(batch, run, rejected)
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        // Every write is acknowledged by the server inside `write`; upserts
        // and deletes are idempotent, so there is no position to resume from.
        Ok(Value::Null)
    }
}

/// The `mongodb` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "mongodb",
    summary: "documents into a MongoDB collection (insert, upsert, delete)",
    parse: parse_sink::<MongoSinkConfig>,
};

impl SinkConfig for MongoSinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::mongodb::endpoints(&self.uri)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        MongoSinkConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        MongoSinkConfig::resolve_paths(self, base);
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(MongoSink::new(self.clone(), name)?))
    }
}
