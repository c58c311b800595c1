//! What users write for an `elasticsearch` sink.

use crate::connector::ConfigIssue;
use serde::Deserialize;

/// Configuration of an `elasticsearch` sink (Elasticsearch or OpenSearch `_bulk` API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchSinkConfig {
    /// Base URL, e.g. `http://127.0.0.1:9200`.
    pub url: String,
    /// Index name. `%Y`, `%m`, `%d` and `%H` are replaced from the event
    /// timestamp (UTC), e.g. `logs-%Y.%m.%d`.
    pub index: String,
    /// Take the index from this string field of the document when present.
    pub index_field: Option<String>,
    /// Document id: `auto` (the key if the event has one, else from the source
    /// position), `key`, `field` (see `id_field`) or `position`. Deterministic
    /// ids make a replay overwrite instead of duplicating.
    #[serde(default)]
    pub id: IdStrategy,
    /// The field holding the id when `id: field`.
    pub id_field: Option<String>,
    /// Send a bulk request after this many events...
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// ...or this many bytes...
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// ...or when the oldest buffered event is this old (and at every checkpoint).
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
    /// Credentials.
    pub auth: Option<Auth>,
    /// TLS options for `https://` URLs.
    #[serde(default)]
    pub tls: Tls,
    /// Create the index with this body (settings, mappings) if it does not exist.
    pub create_index: Option<serde_json::Value>,
    /// First retry delay after a 429/5xx or a connection failure, in ms.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Largest retry delay, in ms. Retries go on until the server accepts
    /// (backpressure), logging each one.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// Per-request timeout, in ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// How a document id is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdStrategy {
    /// The event key if present, else from the source position.
    #[default]
    Auto,
    /// The event key (events without one are dead-lettered).
    Key,
    /// A field of the document (`id_field`).
    Field,
    /// `<origin>-<position>-<n>`: deterministic across replays.
    Position,
}

/// Credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum Auth {
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password (use `${VAR}` interpolation).
        password: String,
    },
    /// An API key (sent as `Authorization: ApiKey <key>`).
    ApiKey {
        /// The encoded key.
        api_key: String,
    },
}

/// TLS options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the CA to trust instead of the built-in web roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The largest `max_bytes`: Elasticsearch's default `http.max_content_length`.
pub const MAX_BULK_BYTES: usize = 100 << 20;
/// The largest `max_events`.
pub const MAX_BULK_EVENTS: usize = 100_000;
/// The longest `timeout_ms`: ten minutes.
const MAX_TIMEOUT_MS: u64 = 600_000;

fn default_max_events() -> usize {
    1000
}
fn default_max_bytes() -> usize {
    5 << 20
}
fn default_max_ms() -> u64 {
    1000
}
fn default_initial_backoff() -> u64 {
    100
}
fn default_max_backoff() -> u64 {
    10_000
}
fn default_timeout() -> u64 {
    30_000
}

impl ElasticsearchSinkConfig {
    /// Cross-field checks serde cannot express: (field to point at, field the
    /// message is about, what was expected).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigIssue::at(
                "url",
                format!("`{}` is not an http:// or https:// URL", self.url),
            ));
        }
        if self.id == IdStrategy::Field && self.id_field.is_none() {
            return Err(ConfigIssue::anchored(
                "id",
                "id_field",
                "required when `id: field`; expected the name of the id field",
            ));
        }
        if self.id != IdStrategy::Field && self.id_field.is_some() {
            return Err(ConfigIssue::at("id_field", "only used with `id: field`"));
        }
        if self.index.is_empty() {
            return Err(ConfigIssue::at(
                "index",
                "expected an index name or template",
            ));
        }
        if self.max_events == 0 || self.max_bytes == 0 {
            return Err(ConfigIssue::at(
                "max_events",
                "expected a positive batch size",
            ));
        }
        // A bulk request is held, then copied once to send: bounded, as
        // Elasticsearch's own `http.max_content_length` (100 MiB) is.
        if self.max_bytes > MAX_BULK_BYTES {
            return Err(ConfigIssue::at(
                "max_bytes",
                format!(
                    "{} is above {MAX_BULK_BYTES} (100 MiB, Elasticsearch's own request limit)",
                    self.max_bytes
                ),
            ));
        }
        if self.max_events > MAX_BULK_EVENTS {
            return Err(ConfigIssue::at(
                "max_events",
                format!("{} is above {MAX_BULK_EVENTS}", self.max_events),
            ));
        }
        if self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigIssue::at(
                "timeout_ms",
                format!("{} is above {MAX_TIMEOUT_MS} (10 minutes)", self.timeout_ms),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: serde_json::Value) -> Result<(), ConfigIssue> {
        let mut v = serde_json::json!({"url": "http://es:9200", "index": "i"});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value::<ElasticsearchSinkConfig>(v)
            .unwrap_or_else(|e| panic!("{e}"))
            .check()
    }

    #[test]
    fn what_a_bulk_request_holds_is_bounded() {
        assert_eq!(check(serde_json::json!({"max_bytes": 100 << 20})), Ok(()));
        let e = check(serde_json::json!({"max_bytes": 1u64 << 40})).expect_err("1 TiB");
        assert_eq!(e.field, "max_bytes");
        assert!(e.message.contains("above 104857600"), "{}", e.message);
        let e = check(serde_json::json!({"max_events": 100_001})).expect_err("events");
        assert_eq!(e.field, "max_events");
        let e = check(serde_json::json!({"timeout_ms": u64::MAX})).expect_err("timeout");
        assert_eq!(e.field, "timeout_ms");
    }
}
