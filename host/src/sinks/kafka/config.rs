//! What users write for a `kafka` sink.

use serde::Deserialize;
use serde_json::Value;

use crate::clients::kafka_security::{self, KafkaProperties, KafkaSecurity, SaslOptions};
use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;
use crate::format::codec::Format;
use crate::format::registry::SubjectNaming;

/// Configuration of a `kafka` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic to write to (when `topic_header` is unset or absent on an event).
    pub topic: Option<String>,
    /// Route each event to the topic named by this header (e.g.
    /// `sluice.topic`, which the `kafka` and `postgres-cdc` sources set and a
    /// plugin may rewrite).
    pub topic_header: Option<String>,
    /// Value format: `json` (default), `json_schema`, `avro`, `raw`.
    #[serde(default)]
    pub format: Format,
    /// Key format: `raw` (default), `json`, `json_schema`, `avro`.
    #[serde(default = "raw")]
    pub key_format: Format,
    /// Schema Registry URL (needed by `avro`).
    pub schema_registry: Option<String>,
    /// Avro record schema for values (a mapping or JSON text); derived from
    /// each event (flat, every field nullable) when absent.
    pub schema: Option<Value>,
    /// Subject naming: `topic` (default, `<topic>-value`), `record`, `topic_record`.
    #[serde(default)]
    pub subject_naming: SubjectNaming,
    /// Name of derived record schemas (default: the topic).
    pub record_name: Option<String>,
    /// Idempotent producer (default true): retries never duplicate or reorder.
    #[serde(default = "yes")]
    pub idempotent: bool,
    /// `at_least_once` (default) or `exactly_once`: a transactional producer
    /// that commits the upstream `kafka` sources' offsets in the same
    /// transaction as the records, at each checkpoint.
    #[serde(default)]
    pub delivery: Delivery,
    /// The producer's `transactional.id` under `exactly_once` (default
    /// `sluice-<pipeline>-<sink>`): stable across restarts, so a restarted
    /// run fences the one it replaces; unique per running process.
    pub transactional_id: Option<String>,
    /// How long to try to reach the brokers at start before failing.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// TLS to the brokers (`mode`, `ca_file`, `cert_file`, `key_file`).
    pub tls: Option<TlsOptions>,
    /// SASL login (`mechanism`, `username`, `password` or `password_file`).
    pub sasl: Option<SaslOptions>,
    /// Extra librdkafka producer properties (`linger.ms`, `compression.type`, ...).
    #[serde(default)]
    pub properties: KafkaProperties,
}

/// What a `kafka` sink promises about duplicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Every event arrives; a crash or rebalance may repeat some.
    #[default]
    AtLeastOnce,
    /// Every event arrives once for `read_committed` consumers.
    ExactlyOnce,
}

fn raw() -> Format {
    Format::Raw
}

fn yes() -> bool {
    true
}

fn default_connect_timeout() -> u64 {
    30_000
}

impl KafkaSinkConfig {
    /// Checks what serde cannot: (anchor field, field, message).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let err = |f: &str, m: String| Err(ConfigIssue::at(f, m));
        if self.brokers.trim().is_empty() {
            return err("brokers", "expected `host:port[,host:port...]`".into());
        }
        if self.topic.is_none() && self.topic_header.is_none() {
            return err(
                "topic",
                "expected a topic (or `topic_header` naming the header that carries it)".into(),
            );
        }
        if (self.format == Format::Avro || self.key_format == Format::Avro)
            && self.schema_registry.is_none()
        {
            return err(
                "format",
                "format `avro` needs `schema_registry: http://host:port`".into(),
            );
        }
        if self.delivery == Delivery::ExactlyOnce && !self.idempotent {
            return err(
                "idempotent",
                "`delivery: exactly_once` needs the idempotent producer; remove `idempotent: false`"
                    .into(),
            );
        }
        if self
            .transactional_id
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return err("transactional_id", "expected a non-empty id".into());
        }
        if self.transactional_id.is_some() && self.delivery != Delivery::ExactlyOnce {
            return err(
                "transactional_id",
                "only used with `delivery: exactly_once`".into(),
            );
        }
        if let Some(s) = &self.schema {
            if let Err(e) = crate::format::schema::parse_avro(s) {
                return err("schema", format!("not an Avro record schema: {e}"));
            }
        }
        crate::clients::kafka_buffers::producer_bytes(&self.properties)?;
        self.security().map(drop)
    }

    /// TLS and SASL as librdkafka properties (reads the files).
    pub fn security(&self) -> Result<KafkaSecurity, ConfigIssue> {
        kafka_security::security(self.tls.as_ref(), self.sasl.as_ref(), &self.properties)
    }
}
