//! What users write for a `kafka` source.

use serde::Deserialize;

use crate::clients::kafka_security::{self, KafkaProperties, KafkaSecurity, SaslOptions};
use crate::clients::tls::TlsOptions;
use crate::connector::ConfigIssue;
use crate::format::codec::Format;

/// Configuration of a `kafka` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics by name.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Topics by regular expression (librdkafka syntax), instead of or besides `topics`.
    pub topic_pattern: Option<String>,
    /// Consumer group: partitions are spread over every process with the
    /// same group, and offsets are committed to it once sinks acknowledge.
    /// Required with `assign: group` (the default); refused with `assign: all`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// `group` (default): this process reads the partitions its consumer
    /// group assigns it. `all`: it reads every partition of the topics itself,
    /// without a group, keeping its offsets in the checkpoint only: what a
    /// table needs that every member of a scaled-out pipeline reads whole
    /// (Kafka Streams' GlobalKTable).
    #[serde(default)]
    pub assign: Assign,
    /// Where to begin: `committed` (default: the group's committed offsets;
    /// partitions without one start at the earliest offset), `earliest` or
    /// `latest` (on the pipeline's first run only, ignoring committed offsets;
    /// a restart resumes from the committed offsets).
    #[serde(default)]
    pub start: StartAt,
    /// Value format: `json` (default), `json_schema`, `avro`, `raw`.
    #[serde(default)]
    pub format: Format,
    /// Key format: `raw` (default: bytes as they are), `json`, `json_schema`, `avro`.
    #[serde(default = "raw")]
    pub key_format: Format,
    /// Schema Registry URL (needed by `avro`).
    pub schema_registry: Option<String>,
    /// How long to try to reach the brokers at start before failing.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Group session timeout (short, so a dead member's partitions move quickly).
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: u64,
    /// TLS to the brokers (`mode`, `ca_file`, `cert_file`, `key_file`).
    pub tls: Option<TlsOptions>,
    /// SASL login (`mechanism`, `username`, `password` or `password_file`).
    pub sasl: Option<SaslOptions>,
    /// Extra librdkafka consumer properties (`fetch.min.bytes`, ...).
    #[serde(default)]
    pub properties: KafkaProperties,
    /// Records go on in timestamp order across the partitions; this is how
    /// long they may wait for a partition that holds none but is behind
    /// (older records may be on their way). 0: never wait (faster, but a
    /// window downstream may find records late). At most 60000.
    #[serde(default = "default_time_order_wait")]
    pub time_order_wait_ms: u64,
    /// Where the processors this source feeds keep their keyed state:
    /// `local` (default: the checkpoint directory) or `changelog` (one state
    /// per partition, in a compacted topic `<group_id>-<stage>-changelog`,
    /// so it moves with its partition between the group's members).
    #[serde(default)]
    pub state: StateIn,
}

/// Where downstream processors keep their state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateIn {
    /// The pipeline's checkpoint directory.
    #[default]
    Local,
    /// A compacted changelog topic per stage, partitioned as the source.
    Changelog,
}

/// Which partitions this process reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assign {
    /// Those its consumer group assigns it.
    #[default]
    Group,
    /// Every partition of the topics, without a group.
    All,
}

/// Where a fresh pipeline starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The group's committed offsets (earliest where there is none).
    #[default]
    Committed,
    /// The beginning of each partition.
    Earliest,
    /// The end of each partition.
    Latest,
}

fn raw() -> Format {
    Format::Raw
}

fn default_connect_timeout() -> u64 {
    30_000
}

fn default_session_timeout() -> u64 {
    10_000
}

fn default_time_order_wait() -> u64 {
    500
}

impl KafkaSourceConfig {
    /// Checks what serde cannot: (anchor field, field, message).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let err = |f: &str, m: &str| Err(ConfigIssue::at(f, m));
        if self.brokers.trim().is_empty() {
            return err("brokers", "expected `host:port[,host:port...]`");
        }
        if self.topics.is_empty() && self.topic_pattern.is_none() {
            return err("topics", "expected a list of topics (or `topic_pattern`)");
        }
        match (self.assign, self.group_id.as_deref().map(str::trim)) {
            (Assign::Group, None | Some("")) => {
                return err(
                    "group_id",
                    "expected a consumer group name (or `assign: all` to read every partition in this process without a group)",
                )
            }
            (Assign::All, Some(_)) => {
                return err(
                    "group_id",
                    "not used with `assign: all`: every partition is read by this process and its offsets are kept in the checkpoint, not committed to a group; remove `group_id`",
                )
            }
            _ => {}
        }
        if self.state == StateIn::Changelog {
            if self.assign == Assign::All {
                return err(
                    "state",
                    "`changelog` splits state by the partitions a consumer group assigns; with `assign: all` this process reads every partition, so keep `state: local`",
                );
            }
            if self.topics.len() != 1 || self.topic_pattern.is_some() {
                return err(
                    "state",
                    "`changelog` needs exactly one topic in `topics` (no `topic_pattern`): the changelog topics are partitioned like it",
                );
            }
            let group = self.group_id.as_deref().unwrap_or("");
            if group.len() > 180
                || !group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return err(
                    "group_id",
                    "with `state: changelog` it names the changelog topics (`<group_id>-<stage>-changelog`): expected at most 180 letters, digits, `.`, `_` or `-`",
                );
            }
        }
        if self.time_order_wait_ms > 60_000 {
            return err(
                "time_order_wait_ms",
                "expected at most 60000 (a minute): records would wait that long for a partition that may never deliver",
            );
        }
        if self.assign == Assign::All {
            if let Some(p) = &self.topic_pattern {
                if let Err(e) = regex_lite::Regex::new(p) {
                    return err(
                        "topic_pattern",
                        &format!("expected a regular expression: {e}"),
                    );
                }
            }
        }
        if (self.format == Format::Avro || self.key_format == Format::Avro)
            && self.schema_registry.is_none()
        {
            return err(
                "format",
                "format `avro` needs `schema_registry: http://host:port`",
            );
        }
        self.buffer_bytes()?;
        self.security().map(drop)
    }

    /// The most its consumer and the records it holds in time order take
    /// of the host's memory, bytes.
    pub fn buffer_bytes(&self) -> Result<u64, ConfigIssue> {
        crate::clients::kafka_buffers::consumer_bytes(
            &self.properties,
            super::HELD_MAX_BYTES as u64,
        )
    }

    /// TLS and SASL as librdkafka properties (reads the files).
    pub fn security(&self) -> Result<KafkaSecurity, ConfigIssue> {
        kafka_security::security(self.tls.as_ref(), self.sasl.as_ref(), &self.properties)
    }

    /// The consumer group, under `assign: group`.
    pub fn group(&self) -> Option<&str> {
        match self.assign {
            Assign::Group => self.group_id.as_deref(),
            Assign::All => None,
        }
    }

    /// Whether `topic` is one of this source's topics (by name or pattern),
    /// for `assign: all`, which matches them against the broker's metadata
    /// itself. A pattern is anchored at the start as librdkafka's is.
    pub fn matches(&self, topic: &str) -> bool {
        self.matcher()(topic)
    }

    /// [`KafkaSourceConfig::matches`] with the pattern compiled once, for
    /// matching every topic of a listing.
    pub fn matcher(&self) -> impl Fn(&str) -> bool + '_ {
        let pattern = self.topic_pattern.as_ref().and_then(|p| {
            let anchored = if p.starts_with('^') {
                p.clone()
            } else {
                format!("^{p}")
            };
            regex_lite::Regex::new(&anchored).ok()
        });
        move |topic: &str| {
            self.topics.iter().any(|t| t == topic)
                || pattern.as_ref().is_some_and(|r| r.is_match(topic))
        }
    }

    /// Subscription strings for librdkafka (a pattern starts with `^`).
    pub fn subscription(&self) -> Vec<String> {
        let mut out = self.topics.clone();
        if let Some(p) = &self.topic_pattern {
            out.push(if p.starts_with('^') {
                p.clone()
            } else {
                format!("^{p}")
            });
        }
        out
    }
}
