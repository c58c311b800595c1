//! `elasticsearch` sink: the `_bulk` API of Elasticsearch or OpenSearch over
//! plain HTTP(S) with `application/x-ndjson`, so no vendor SDK or media type
//! ties it to one of them.
//!
//! Events are buffered and sent by count, bytes and age, and at every
//! checkpoint. Per-item results decide each event's fate: 2xx is done, 429 and
//! 5xx are retried with backoff (the pipeline slows down, it never fails), and
//! any other status is dead-lettered with the server's reason. Document ids are
//! deterministic, so a replay after a crash overwrites instead of duplicating,
//! and tombstones delete.

mod client;
mod config;
mod naming;

pub use config::{Auth, ElasticsearchSinkConfig, IdStrategy, Tls};

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::connector::{parse_sink, ConfigIssue, Rejected, Sink, SinkConfig, SinkKind};
use crate::event::Batch;
use client::{short, Client};

/// One buffered action and the event it came from.
struct Pending {
    batch: Arc<Batch>,
    index: usize,
    /// Byte range of its action (and document) lines in `body`.
    lines: std::ops::Range<usize>,
}

/// A running `elasticsearch` sink.
pub struct ElasticsearchSink {
    config: ElasticsearchSinkConfig,
    client: Client,
    body: Vec<u8>,
    pending: Vec<Pending>,
    oldest: Option<Instant>,
}

impl ElasticsearchSink {
    /// A sink per `config`, named `name` in logs.
    pub fn new(config: ElasticsearchSinkConfig, name: &str) -> Result<Self> {
        let client = Client::new(&config, name)?;
        Ok(Self {
            config,
            client,
            body: Vec::with_capacity(1 << 20),
            pending: Vec::new(),
            oldest: None,
        })
    }

    /// Appends the bulk lines for one event, or explains why it cannot be sent.
    fn encode(&mut self, batch: &Arc<Batch>, index: usize, ordinal: u32) -> Result<(), String> {
        let Some(event) = batch.get(index) else {
            return Err("event missing from its batch".into());
        };
        let doc: Option<serde_json::Map<String, Value>> = match event.value {
            None => None,
            Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => return Err("documents must be JSON objects".into()),
                Err(e) => return Err(format!("value is not valid JSON: {e}")),
            },
        };
        let key = event.key.map(|k| String::from_utf8_lossy(k).into_owned());
        let id = match self.config.id {
            IdStrategy::Key => key.ok_or("no event key to use as the document id (id: key)")?,
            IdStrategy::Auto => {
                key.unwrap_or_else(|| naming::position_id(&batch.origin, event.position, ordinal))
            }
            IdStrategy::Position => naming::position_id(&batch.origin, event.position, ordinal),
            IdStrategy::Field => {
                let field = self.config.id_field.as_deref().unwrap_or("id");
                match (doc.as_ref().and_then(|d| d.get(field)), key) {
                    (Some(Value::String(s)), _) => s.clone(),
                    (Some(v @ Value::Number(_)), _) => v.to_string(),
                    // A tombstone has no fields; its key names the document.
                    (None, Some(k)) if doc.is_none() => k,
                    _ => {
                        return Err(format!(
                        "field `{field}` (the document id) is missing or not a string or number"
                    ))
                    }
                }
            }
        };
        let index_name = match (&self.config.index_field, &doc) {
            (Some(f), Some(d)) => match d.get(f) {
                Some(Value::String(s)) => s.clone(),
                _ => naming::index_name(&self.config.index, event.timestamp_ms),
            },
            _ => naming::index_name(&self.config.index, event.timestamp_ms),
        };
        let start = self.body.len();
        let op = if doc.is_some() { "index" } else { "delete" };
        let action = serde_json::json!({ op: { "_index": index_name, "_id": id } });
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.body, &action);
        self.body.push(b'\n');
        if let Some(d) = doc {
            let _ = serde_json::to_writer(&mut self.body, &d);
            self.body.push(b'\n');
        }
        self.pending.push(Pending {
            batch: batch.clone(),
            index,
            lines: start..self.body.len(),
        });
        Ok(())
    }

    fn due(&self) -> bool {
        self.pending.len() >= self.config.max_events
            || self.body.len() >= self.config.max_bytes
            || self
                .oldest
                .is_some_and(|t| t.elapsed().as_millis() as u64 >= self.config.max_ms)
    }

    /// Sends everything buffered; returns once every item is indexed, deleted
    /// or refused (refusals go to `rejected`).
    fn send(&mut self, rejected: &mut Rejected) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut body = std::mem::take(&mut self.body);
        self.oldest = None;
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let reply =
                self.client
                    .send_retrying("POST", "/_bulk", "application/x-ndjson", Some(&body));
            if !(200..300).contains(&reply.status) {
                bail!(
                    "the search server refused the bulk request with HTTP {}: {} (check url, credentials and permissions)",
                    reply.status,
                    short(&reply.body)
                );
            }
            let parsed: Value = serde_json::from_str(&reply.body).map_err(|e| {
                anyhow::anyhow!("unreadable _bulk reply ({e}): {}", short(&reply.body))
            })?;
            let items = parsed
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.len() != pending.len() {
                bail!(
                    "the _bulk reply has {} items for {} actions: {}",
                    items.len(),
                    pending.len(),
                    short(&reply.body)
                );
            }
            let mut retry = Vec::new();
            for (p, item) in pending.into_iter().zip(items) {
                let (op, result) = match item.as_object().and_then(|o| o.iter().next()) {
                    Some((op, r)) => (op.clone(), r.clone()),
                    None => (String::new(), Value::Null),
                };
                let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
                match status {
                    200..=299 => {}
                    // Deleting what is not there is the state a delete wants.
                    404 if op == "delete" => {}
                    429 | 500..=599 => retry.push(p),
                    _ => {
                        let err = result.get("error");
                        let kind = err
                            .and_then(|e| e.get("type"))
                            .and_then(Value::as_str)
                            .unwrap_or("error");
                        let reason = err
                            .and_then(|e| e.get("reason"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| short(&result.to_string()));
                        rejected.push(&p.batch, p.index, format!("search server refused the document (HTTP {status} {kind}): {reason}"));
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            attempt += 1;
            let wait = self.client.backoff(attempt);
            tracing::warn!(
                items = retry.len(),
                attempt,
                "search server is throttling or failing some items; retrying them in {wait:?}"
            );
            std::thread::sleep(wait);
            let mut next = Vec::with_capacity(body.len());
            for p in &mut retry {
                let start = next.len();
                next.extend_from_slice(&body[p.lines.clone()]);
                p.lines = start..next.len();
            }
            body = next;
            pending = retry;
        }
        body.clear();
        self.body = body;
        Ok(())
    }
}

impl Sink for ElasticsearchSink {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        // Bounded retries at start: a wrong URL should fail the run quickly
        // and clearly, unlike a server that goes away later.
        let mut last = String::new();
        for attempt in 1..=5u32 {
            match self.client.send("GET", "/", "application/json", None) {
                Ok(r) if r.status == 401 || r.status == 403 => {
                    bail!(
                        "the search server at {} refused the credentials (HTTP {}): {}",
                        self.config.url,
                        r.status,
                        short(&r.body)
                    )
                }
                Ok(r) if r.status < 500 => {
                    last.clear();
                    break;
                }
                Ok(r) => last = format!("HTTP {}: {}", r.status, short(&r.body)),
                Err(e) => last = format!("{e:#}"),
            }
            std::thread::sleep(self.client.backoff(attempt));
        }
        if !last.is_empty() {
            bail!(
                "cannot reach the search server at {} after 5 attempts: {last}",
                self.config.url
            );
        }
        if let Some(body) = &self.config.create_index {
            let name = naming::index_name(&self.config.index, 0);
            let bytes = serde_json::to_vec(body)?;
            let r = self.client.send_retrying(
                "PUT",
                &format!("/{name}"),
                "application/json",
                Some(&bytes),
            );
            let exists = r.body.contains("resource_already_exists_exception");
            if !(200..300).contains(&r.status) && !exists {
                bail!(
                    "creating index `{name}` failed with HTTP {}: {}",
                    r.status,
                    short(&r.body)
                );
            }
        }
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        let mut ordinal = 0u32;
        let mut last_position = None;
        for i in 0..batch.len() {
            let position = batch.positions.get(i).copied();
            ordinal = if position == last_position {
                ordinal + 1
            } else {
                0
            };
            last_position = position;
            if let Err(reason) = self.encode(batch, i, ordinal) {
                rejected.push(batch, i, reason);
            }
        }
        if self.oldest.is_none() && !self.pending.is_empty() {
            self.oldest = Some(Instant::now());
        }
        if self.due() {
            self.send(rejected)?;
        }
        Ok(())
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        if !self.pending.is_empty() {
            self.send(rejected)?;
        }
        // Writes are idempotent by document id: nothing to resume from.
        Ok(Value::Null)
    }
}

/// The `elasticsearch` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "elasticsearch",
    summary: "documents into an Elasticsearch or OpenSearch index (`_bulk`)",
    parse: parse_sink::<ElasticsearchSinkConfig>,
};

impl SinkConfig for ElasticsearchSinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::connector::endpoint::from_http_url(&self.url)
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        ElasticsearchSinkConfig::check(self)
    }

    fn client_buffers(&self) -> Option<crate::connector::ClientBuffers> {
        // The bulk body grows to `max_bytes` (plus the batch that crossed
        // it, bounded by the batch) and is copied once to be sent.
        let bytes = (self.max_bytes as u64).saturating_mul(2);
        Some(crate::connector::ClientBuffers {
            mb: bytes.div_ceil(1 << 20),
            made_of: "2 × `max_bytes`: the bulk body and its copy on the wire",
            field: "max_bytes",
        })
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(ElasticsearchSink::new(self.clone(), name)?))
    }
}
