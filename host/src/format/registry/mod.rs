//! Confluent Schema Registry: the client the Kafka source and sink use (look
//! up schemas by id when decoding, register or look up a subject's schema
//! when encoding), subject naming strategies, and an embedded server
//! ([`server`]) so a single-node setup needs nothing else.

pub mod http;
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
    /// `Authorization` header value, from credentials in the URL.
    auth: Option<String>,
    by_id: HashMap<u32, Arc<Schema>>,
    ids: HashMap<(String, String), u32>,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl RegistryClient {
    /// A client of the registry at `url` (`http://host:port`, or
    /// `http://user:token@host:port` to send basic auth, as Confluent
    /// clients do with `basic.auth.credentials.source=URL`).
    pub fn new(url: &str) -> Self {
        let (base, auth) = split_credentials(url);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
            auth,
            by_id: HashMap::new(),
            ids: HashMap::new(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Accept", CONTENT_TYPE);
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        let req = req
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

/// `url` without its `user:password@` part, and that part as a basic-auth
/// header value. Kept out of the base URL so error messages never show it.
fn split_credentials(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = percent_decode(&rest[..at]);
    let base = format!("{scheme}://{}", &rest[at + 1..]);
    use base64::Engine as _;
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(userinfo)
    );
    (base, Some(header))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::split_credentials;

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_base() {
        let (base, auth) = split_credentials("http://sluice:s%40cret@127.0.0.1:8081/");
        assert_eq!(base, "http://127.0.0.1:8081/");
        // base64("sluice:s@cret")
        assert_eq!(auth.as_deref(), Some("Basic c2x1aWNlOnNAY3JldA=="));
        let (base, auth) = split_credentials("http://127.0.0.1:8081");
        assert_eq!(base, "http://127.0.0.1:8081");
        assert!(auth.is_none());
    }
}
