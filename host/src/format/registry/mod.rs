//! Confluent Schema Registry: the client the Kafka source and sink use (look
//! up schemas by id when decoding, register or look up a subject's schema
//! when encoding), subject naming strategies, and an embedded server
//! ([`server`]) so a single-node setup needs nothing else.

pub mod server;
mod store;

pub use store::Compatibility;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::schema::Schema;
use serde::Deserialize;
use serde_json::Value;

/// How a subject name is made from a topic and a record (Confluent's
/// `TopicNameStrategy`, `RecordNameStrategy`, `TopicRecordNameStrategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectNaming {
    /// `<topic>-value` (or `-key`).
    #[default]
    Topic,
    /// The record's full name.
    Record,
    /// `<topic>-<record full name>`.
    TopicRecord,
}

impl SubjectNaming {
    /// The subject for `topic` and `schema` (a record schema's full name).
    pub fn subject(self, topic: &str, schema: &Schema, is_key: bool) -> String {
        let record = match schema {
            Schema::Record(r) => r.name.fullname(None),
            other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
        };
        match self {
            SubjectNaming::Topic => format!("{topic}-{}", if is_key { "key" } else { "value" }),
            SubjectNaming::Record => record,
            SubjectNaming::TopicRecord => format!("{topic}-{record}"),
        }
    }
}

/// Why a registry call failed.
#[derive(Debug)]
pub enum RegistryError {
    /// The registry answered that the schema, subject or id does not exist
    /// (or refused the schema): the input is bad, retrying will not help.
    Refused(String),
    /// The registry could not be reached or failed: retry later.
    Unavailable(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Refused(m) | RegistryError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RegistryError {}

/// A Schema Registry client with caches: a schema id never changes meaning,
/// so each is fetched once; registrations are remembered per subject.
pub struct RegistryClient {
    agent: ureq::Agent,
    base: String,
    by_id: HashMap<u32, Arc<Schema>>,
    ids: HashMap<(String, String), u32>,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl RegistryClient {
    /// A client of the registry at `url` (`http://host:port`).
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            agent,
            base: url.trim_end_matches('/').to_string(),
            by_id: HashMap::new(),
            ids: HashMap::new(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, RegistryError> {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Accept", CONTENT_TYPE)
            .body(body.map(Value::to_string).unwrap_or_default().into_bytes())
            .map_err(|e| RegistryError::Unavailable(format!("building {method} {url}: {e}")))?;
        let mut resp = self.agent.run(req).map_err(|e| {
            RegistryError::Unavailable(format!("schema registry {method} {url}: {e}"))
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| {
            RegistryError::Unavailable(format!("reading the registry's reply to {url}: {e}"))
        })?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        match status {
            200..=299 => Ok(json),
            400..=499 => Err(RegistryError::Refused(format!(
                "schema registry {method} {path}: HTTP {status}: {}",
                json.get("message").and_then(Value::as_str).unwrap_or("")
            ))),
            _ => Err(RegistryError::Unavailable(format!(
                "schema registry {method} {path}: HTTP {status}: {json}"
            ))),
        }
    }

    /// The schema with `id` (cached).
    pub fn schema(&mut self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.by_id.get(&id) {
            return Ok(s.clone());
        }
        let reply = self
            .call("GET", &format!("/schemas/ids/{id}"), None)
            .map_err(|e| match e {
                RegistryError::Refused(m) => {
                    RegistryError::Refused(format!("unknown schema id {id} ({m})"))
                }
                other => other,
            })?;
        let text = reply.get("schema").and_then(Value::as_str).ok_or_else(|| {
            RegistryError::Refused(format!("the registry's schema {id} has no `schema` text"))
        })?;
        let schema = Schema::parse_str(text).map_err(|e| {
            RegistryError::Refused(format!("schema id {id} is not a usable Avro schema: {e}"))
        })?;
        let schema = Arc::new(schema);
        self.by_id.insert(id, schema.clone());
        Ok(schema)
    }

    /// Registers `schema` under `subject` (or finds it registered) and returns its id.
    pub fn register(&mut self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let text = schema.canonical_form();
        if let Some(id) = self.ids.get(&(subject.to_string(), text.clone())) {
            return Ok(*id);
        }
        let reply = self.call(
            "POST",
            &format!("/subjects/{}/versions", encode_path(subject)),
            Some(&serde_json::json!({ "schema": text })),
        )?;
        let id = reply
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                RegistryError::Refused(format!("the registry returned no id: {reply}"))
            })?;
        self.ids.insert((subject.to_string(), text), id);
        self.by_id.insert(id, Arc::new(schema.clone()));
        Ok(id)
    }
}

/// Percent-encodes a path segment.
pub fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
