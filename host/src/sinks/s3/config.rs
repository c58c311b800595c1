//! What users write for an `s3` sink.

use serde::Deserialize;
use serde_json::Value;

use crate::connector::ConfigIssue;
use crate::format::schema::Columns;

/// Configuration of an `s3` sink (Amazon S3 or any S3-compatible store:
/// MinIO, Ceph, Garage, R2, ...). Objects are laid out as the Kafka Connect S3
/// sink writes them: `<prefix>/<stream>/<partition>/<stream>+<p>+<first
/// position, 10 digits>.<ext>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SinkConfig {
    /// The bucket (it must exist).
    pub bucket: String,
    /// Key prefix, the Kafka Connect `topics.dir` (default `topics`; empty for none).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`.
    /// Amazon S3 when absent.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`, or `AWS_REGION` / `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted
    /// style (`bucket.endpoint/key`). Most self-hosted stores need `true`.
    /// Defaults to `true` when `endpoint` is set, else `false`.
    pub path_style: Option<bool>,
    /// Allow a plain `http://` endpoint (default: `true` exactly when
    /// `endpoint` starts with `http://`).
    pub allow_http: Option<bool>,
    /// Access key id. When absent, credentials come from `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, then from `profile` in
    /// `~/.aws/credentials`, then from the instance or container metadata
    /// service. Use `${VAR}` interpolation rather than literal secrets.
    pub access_key_id: Option<String>,
    /// Secret access key (with `access_key_id`).
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials (with `access_key_id`).
    pub session_token: Option<String>,
    /// Profile to read from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`
    /// or `~/.aws/credentials`) when neither the fields nor the environment
    /// give keys. Default: `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// Object format: `json` (JSON lines, `.json`), `avro` (object container
    /// file, `.avro`) or `parquet` (`.parquet`).
    #[serde(default)]
    pub format: S3Format,
    /// Avro record schema (JSON, as a mapping or a string) for `avro` and
    /// `parquet`. When absent the schema is derived from the events of each
    /// object: every top-level field is nullable `long`, `double`, `boolean`
    /// or `string`; nested values and mixed types are written as JSON text.
    pub schema: Option<Value>,
    /// Close an object after this many events (Kafka Connect `flush.size`).
    #[serde(default = "default_flush_size")]
    pub flush_size: usize,
    /// Also close an object this long after its first event arrived
    /// (wall clock; checked on every write and at every checkpoint). 0 = off.
    #[serde(default)]
    pub rotate_interval_ms: u64,
    /// How events are spread over directories: `default` (`partition=0`),
    /// `field` (`<field>=<value>`, see `partition_field`) or `time` (see
    /// `path_format`).
    #[serde(default)]
    pub partitioner: Partitioner,
    /// The top-level field whose value names the directory with `partitioner: field`.
    pub partition_field: Option<String>,
    /// Directory template with `partitioner: time`, from the event timestamp
    /// (UTC): `%Y`, `%m`, `%d`, `%H`, e.g. `year=%Y/month=%m/day=%d/hour=%H`.
    pub path_format: Option<String>,
    /// Objects larger than this are uploaded in parts (multipart upload) of
    /// this size; smaller ones with one PUT. At least 5 MiB (the S3 minimum).
    #[serde(default = "default_part_size")]
    pub part_size_bytes: usize,
    /// Retries of a failed request (with exponential backoff) before the
    /// pipeline fails.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    /// Per-request timeout, in ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// Object format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S3Format {
    /// One JSON value per line.
    #[default]
    Json,
    /// Avro object container file.
    Avro,
    /// Apache Parquet file (one row group, uncompressed).
    Parquet,
}

impl S3Format {
    /// File name extension.
    pub fn extension(self) -> &'static str {
        match self {
            S3Format::Json => "json",
            S3Format::Avro => "avro",
            S3Format::Parquet => "parquet",
        }
    }
}

/// How events are spread over directories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partitioner {
    /// `partition=0`.
    #[default]
    Default,
    /// `<field>=<value>` from `partition_field`.
    Field,
    /// A date template (`path_format`) on the event timestamp.
    Time,
}

/// The largest `flush_size`: events an object holds before it is written.
const MAX_FLUSH_SIZE: usize = 1_000_000;
/// The largest `part_size_bytes`.
const MAX_PART_BYTES: usize = 64 << 20;
/// The largest `max_retries`.
const MAX_RETRIES: usize = 100;
/// The longest `timeout_ms`: ten minutes.
const MAX_TIMEOUT_MS: u64 = 600_000;

fn default_prefix() -> String {
    "topics".into()
}
fn default_flush_size() -> usize {
    1000
}
fn default_part_size() -> usize {
    8 << 20
}
fn default_max_retries() -> usize {
    10
}
fn default_timeout() -> u64 {
    30_000
}

impl S3SinkConfig {
    /// Cross-field checks serde cannot express: (field to point at, field the
    /// message is about, what was expected).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let err = |at: &str, field: &str, msg: String| Err(ConfigIssue::anchored(at, field, msg));
        if self.bucket.is_empty() || self.bucket.contains('/') {
            return err("bucket", "bucket", "expected a bucket name".into());
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return err(
                    "endpoint",
                    "endpoint",
                    format!("`{e}` is not an http:// or https:// URL"),
                );
            }
        }
        if self.flush_size == 0 {
            return err(
                "flush_size",
                "flush_size",
                "expected a positive number of events".into(),
            );
        }
        if self.part_size_bytes < 5 << 20 {
            return err(
                "part_size_bytes",
                "part_size_bytes",
                "expected at least 5242880 (5 MiB, the smallest S3 part)".into(),
            );
        }
        // What an object holds until it is written, and each part sent, are
        // the host's memory.
        if self.flush_size > MAX_FLUSH_SIZE {
            return err(
                "flush_size",
                "flush_size",
                format!("{} is above {MAX_FLUSH_SIZE} events", self.flush_size),
            );
        }
        if self.part_size_bytes > MAX_PART_BYTES {
            return err(
                "part_size_bytes",
                "part_size_bytes",
                format!(
                    "{} is above {MAX_PART_BYTES} (64 MiB)",
                    self.part_size_bytes
                ),
            );
        }
        if self.max_retries > MAX_RETRIES {
            return err(
                "max_retries",
                "max_retries",
                format!("{} is above {MAX_RETRIES}", self.max_retries),
            );
        }
        if self.timeout_ms > MAX_TIMEOUT_MS {
            return err(
                "timeout_ms",
                "timeout_ms",
                format!("{} is above {MAX_TIMEOUT_MS} (10 minutes)", self.timeout_ms),
            );
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return err(
                "access_key_id",
                "secret_access_key",
                "access_key_id and secret_access_key go together".into(),
            );
        }
        match (self.partitioner, &self.partition_field, &self.path_format) {
            (Partitioner::Field, None, _) => {
                return err(
                    "partitioner",
                    "partition_field",
                    "required when `partitioner: field`; expected a field name".into(),
                )
            }
            (Partitioner::Time, _, None) => {
                return err(
                    "partitioner",
                    "path_format",
                    "required when `partitioner: time`; expected a template like `year=%Y/month=%m/day=%d/hour=%H`".into(),
                )
            }
            (p, Some(_), _) if p != Partitioner::Field => {
                return err(
                    "partition_field",
                    "partition_field",
                    "only used with `partitioner: field`".into(),
                )
            }
            (p, _, Some(_)) if p != Partitioner::Time => {
                return err(
                    "path_format",
                    "path_format",
                    "only used with `partitioner: time`".into(),
                )
            }
            _ => {}
        }
        if let Some(schema) = &self.schema {
            if self.format == S3Format::Json {
                return err(
                    "schema",
                    "schema",
                    "only used with `format: avro` or `format: parquet`".into(),
                );
            }
            let parsed = crate::format::schema::parse_avro(schema).map_err(|m| {
                ConfigIssue::at("schema", format!("not a usable Avro record schema: {m}"))
            })?;
            if self.format == S3Format::Parquet {
                Columns::from_avro(&parsed).map_err(|m| {
                    ConfigIssue::at("schema", format!("cannot be written as Parquet: {m}"))
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: serde_json::Value) -> Result<(), ConfigIssue> {
        let mut v = serde_json::json!({"bucket": "lake"});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value::<S3SinkConfig>(v)
            .unwrap_or_else(|e| panic!("{e}"))
            .check()
    }

    #[test]
    fn what_an_object_and_a_part_hold_is_bounded() {
        assert_eq!(
            check(serde_json::json!({"flush_size": 1_000_000, "part_size_bytes": 64 << 20})),
            Ok(())
        );
        for (field, value) in [
            ("flush_size", serde_json::json!(1_000_001)),
            ("part_size_bytes", serde_json::json!((64 << 20) + 1)),
            ("max_retries", serde_json::json!(u32::MAX)),
            ("timeout_ms", serde_json::json!(u64::MAX)),
        ] {
            let e = check(serde_json::json!({ field: value })).expect_err(field);
            assert_eq!(e.field, field);
            assert!(e.message.contains("is above"), "{}", e.message);
        }
    }
}
