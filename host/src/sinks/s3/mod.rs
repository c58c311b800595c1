//! `s3` sink: objects in Amazon S3 or any S3-compatible store (custom
//! endpoint, path-style requests), laid out as the Kafka Connect S3 sink
//! writes them:
//!
//! ```text
//! <prefix>/<stream>/partition=0/<stream>+0+<first position, 10 digits>.<ext>
//! ```
//!
//! `<stream>` is the source the events came from and the first position is
//! that of the object's first event (for a file source, its line number), so
//! the names are deterministic: a replay rewrites the same objects (a PUT
//! overwrites) instead of adding new ones.
//!
//! Events are buffered per (stream, partition directory). An object is closed
//! and uploaded when it holds `flush_size` events, when `rotate_interval_ms`
//! has passed since its first event, and at every checkpoint: the runner
//! commits source positions once the sinks have flushed, so an event still in
//! memory at a checkpoint would be lost by a crash right after it. An object
//! closed by a checkpoint or by rotation therefore holds fewer than
//! `flush_size` events; keep `checkpoint_interval_ms` at or above the rotation
//! interval so that most objects fill up. Uploads are single PUTs, or
//! multipart uploads above `part_size_bytes`; the checkpoint completes only
//! after every upload has been acknowledged by the store.
//!
//! The client is `object_store` (Apache Arrow project) driven by a small
//! current-thread Tokio runtime on the sink's own thread.

mod config;
mod encode;
mod naming;
use crate::format::schema;

pub use config::{Partitioner, S3Format, S3SinkConfig};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;

use crate::connector::{parse_sink, ConfigIssue, Rejected, Sink, SinkConfig, SinkKind};
use crate::event::Batch;

/// An object being filled.
struct Open {
    /// Partition number in the file name (always 0: there are no Kafka partitions).
    partition: u32,
    /// Position of its first event.
    first: u64,
    /// When its first event arrived.
    opened: Instant,
    /// Events in it.
    count: usize,
    /// JSON lines (`json`).
    lines: Vec<u8>,
    /// Parsed values (`avro`, `parquet`).
    rows: Vec<Value>,
}

/// A running `s3` sink.
pub struct S3Sink {
    config: S3SinkConfig,
    name: String,
    runtime: tokio::runtime::Runtime,
    store: Arc<AmazonS3>,
    /// Open objects by (stream, partition directory); ordered, so uploads go
    /// out in a deterministic order.
    open: BTreeMap<(String, String), Open>,
    avro_schema: Option<apache_avro::schema::Schema>,
    parquet_columns: Option<schema::Columns>,
    uploaded: u64,
}

/// Credentials from the shared credentials file (`[profile]`, `aws_access_key_id`, ...).
fn profile_credentials(profile: &str) -> Option<(String, String, Option<String>)> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws/credentials"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut section = String::new();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some((id?, secret?, token))
}

fn build_store(config: &S3SinkConfig, max_retries: usize, timeout: Duration) -> Result<AmazonS3> {
    // Client options first: `with_allow_http` is stored in them.
    let mut b = AmazonS3Builder::from_env()
        .with_client_options(
            object_store::ClientOptions::new()
                .with_timeout(timeout)
                .with_connect_timeout(timeout.min(Duration::from_secs(10))),
        )
        .with_bucket_name(&config.bucket);
    if let Some(region) = &config.region {
        b = b.with_region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        b = b.with_endpoint(endpoint.trim_end_matches('/'));
    }
    let path_style = config.path_style.unwrap_or(config.endpoint.is_some());
    b = b.with_virtual_hosted_style_request(!path_style);
    let allow_http = config.allow_http.unwrap_or_else(|| {
        config
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
    });
    b = b.with_allow_http(allow_http);
    match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = &config.session_token {
                b = b.with_token(t);
            }
        }
        _ if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() => {}
        _ => {
            let profile = config
                .profile
                .clone()
                .or_else(|| std::env::var("AWS_PROFILE").ok())
                .unwrap_or_else(|| "default".into());
            if let Some((id, secret, token)) = profile_credentials(&profile) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = token {
                    b = b.with_token(t);
                }
            } else if config.profile.is_some() {
                bail!("profile `{profile}` has no aws_access_key_id/aws_secret_access_key in the shared credentials file");
            }
        }
    }
    let retry = object_store::RetryConfig {
        max_retries,
        retry_timeout: timeout.saturating_mul(max_retries as u32 + 1),
        ..Default::default()
    };
    b.with_retry(retry)
        .build()
        .context("configuring the S3 client")
}

/// `e` and its root cause (refused connection, certificate, DNS), which
/// object_store's own message leaves out.
fn describe(e: &object_store::Error) -> String {
    let text = e.to_string();
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let root = root.to_string();
    if text.contains(&root) {
        text
    } else {
        format!("{text} ({root})")
    }
}

impl S3Sink {
    /// A sink per `config`, named `name` in logs.
    pub fn new(config: S3SinkConfig, name: &str) -> Result<Self> {
        // HTTPS via rustls with ring; a provider installed earlier stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the S3 sink's runtime")?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let store = {
            // The client's connection pool must be created inside the runtime.
            let _guard = runtime.enter();
            Arc::new(build_store(&config, config.max_retries, timeout)?)
        };
        let avro_schema = match &config.schema {
            Some(s) => Some(schema::parse_avro(s).map_err(|e| anyhow::anyhow!("schema: {e}"))?),
            None => None,
        };
        let parquet_columns = match (&avro_schema, config.format) {
            (Some(s), S3Format::Parquet) => {
                Some(schema::Columns::from_avro(s).map_err(|e| anyhow::anyhow!("schema: {e}"))?)
            }
            _ => None,
        };
        Ok(Self {
            config,
            name: name.to_string(),
            runtime,
            store,
            open: BTreeMap::new(),
            avro_schema,
            parquet_columns,
            uploaded: 0,
        })
    }

    fn endpoint(&self) -> String {
        self.config
            .endpoint
            .clone()
            .unwrap_or_else(|| "Amazon S3".into())
    }

    /// The directory and partition number of one event, or why it has none.
    fn partition_of(
        &self,
        doc: Option<&Value>,
        timestamp_ms: i64,
    ) -> Result<(String, u32), String> {
        match self.config.partitioner {
            Partitioner::Default => Ok(("partition=0".into(), 0)),
            Partitioner::Time => Ok((
                naming::time_path(
                    self.config.path_format.as_deref().unwrap_or_default(),
                    timestamp_ms,
                ),
                0,
            )),
            Partitioner::Field => {
                let field = self.config.partition_field.as_deref().unwrap_or_default();
                let value = match doc.and_then(|d| d.get(field)) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    _ => {
                        return Err(format!(
                        "field `{field}` (the partition) is missing or not a string, number or boolean"
                    ))
                    }
                };
                Ok((
                    format!("{}={}", naming::segment(field), naming::segment(&value)),
                    0,
                ))
            }
        }
    }

    /// Adds event `i` of `batch` to its object, or explains why it cannot be written.
    fn add(&mut self, batch: &Arc<Batch>, i: usize) -> Result<Option<(String, String)>, String> {
        let event = batch.get(i).ok_or("event missing from its batch")?;
        let Some(bytes) = event.value else {
            return Err("a tombstone (null value) cannot be written to an S3 object".into());
        };
        let needs_doc =
            self.config.format != S3Format::Json || self.config.partitioner == Partitioner::Field;
        let doc: Option<Value> = if needs_doc {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("value is not valid JSON: {e}"))?;
            if self.config.format != S3Format::Json && !v.is_object() {
                return Err(format!(
                    "{} records must be JSON objects",
                    if self.config.format == S3Format::Avro {
                        "Avro"
                    } else {
                        "Parquet"
                    }
                ));
            }
            Some(v)
        } else {
            crate::event::check_json(bytes).map_err(|e| format!("value is not valid JSON: {e}"))?;
            None
        };
        // A given schema decides now, so a misfit is dead-lettered alone.
        if let (Some(s), Some(d), S3Format::Avro) = (&self.avro_schema, &doc, self.config.format) {
            schema::to_avro_value(d, s)?;
        }
        if let (Some(cols), Some(Value::Object(d))) = (&self.parquet_columns, &doc) {
            for c in &cols.0 {
                schema::cell(d.get(&c.field), c.kind, &c.field)?;
            }
        }
        let (dir, partition) = self.partition_of(doc.as_ref(), event.timestamp_ms)?;
        let key = (batch.origin.to_string(), dir);
        let position = batch.positions.get(i).copied().unwrap_or(event.position);
        let open = self.open.entry(key.clone()).or_insert_with(|| Open {
            partition,
            first: position,
            opened: Instant::now(),
            count: 0,
            lines: Vec::new(),
            rows: Vec::new(),
        });
        match doc {
            Some(d) if self.config.format != S3Format::Json => open.rows.push(d),
            _ => {
                if bytes.contains(&b'\n') {
                    // Keep one value per line.
                    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                    let _ = serde_json::to_writer(&mut open.lines, &v);
                } else {
                    open.lines.extend_from_slice(bytes);
                }
                open.lines.push(b'\n');
            }
        }
        open.count += 1;
        Ok((open.count >= self.config.flush_size).then_some(key))
    }

    fn expired(&self, key: &(String, String)) -> bool {
        self.config.rotate_interval_ms > 0
            && self.open.get(key).is_some_and(|o| {
                o.opened.elapsed() >= Duration::from_millis(self.config.rotate_interval_ms)
            })
    }

    /// Closes the objects open longer than the rotation interval.
    fn rotate(&mut self) -> Result<()> {
        let due: Vec<_> = self
            .open
            .keys()
            .filter(|k| self.expired(k))
            .cloned()
            .collect();
        for k in due {
            self.close(&k)?;
        }
        Ok(())
    }

    /// Encodes and uploads one object; returns once the store has acknowledged it.
    fn close(&mut self, key: &(String, String)) -> Result<()> {
        let Some(open) = self.open.remove(key) else {
            return Ok(());
        };
        let (stream, dir) = key;
        let object = naming::object_key(
            &self.config.prefix,
            stream,
            dir,
            open.partition,
            open.first,
            self.config.format.extension(),
        );
        let body = match self.config.format {
            S3Format::Json => open.lines,
            S3Format::Avro => encode::avro(&open.rows, self.avro_schema.as_ref(), stream, &object)
                .with_context(|| format!("writing {object}"))?,
            S3Format::Parquet => encode::parquet(&open.rows, self.parquet_columns.as_ref())
                .with_context(|| format!("writing {object}"))?,
        };
        let path = object_store::path::Path::parse(&object)
            .with_context(|| format!("`{object}` is not a valid object key"))?;
        let size = body.len();
        let part = self.config.part_size_bytes;
        let store = self.store.clone();
        self.runtime
            .block_on(async move {
                if size > part {
                    let upload = store.put_multipart(&path).await?;
                    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, part);
                    w.write(&body);
                    w.finish().await
                } else {
                    store.put(&path, PutPayload::from(body)).await
                }
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "uploading s3://{}/{object} to {} failed: {}",
                    self.config.bucket,
                    self.endpoint(),
                    describe(&e)
                )
            })?;
        self.uploaded += 1;
        tracing::debug!(sink = %self.name, object, events = open.count, bytes = size, "object written");
        Ok(())
    }
}

impl Sink for S3Sink {
    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        // A quick, bounded probe: a wrong endpoint, bucket or credentials
        // fail the start clearly instead of at the first upload.
        let probe = {
            let _guard = self.runtime.enter();
            build_store(&self.config, 2, Duration::from_secs(5))?
        };
        let prefix = object_store::path::Path::from(self.config.prefix.trim_matches('/'));
        let result = self
            .runtime
            .block_on(async { probe.list_with_delimiter(Some(&prefix)).await });
        if let Err(e) = result {
            let text = e.to_string();
            let hint = if matches!(e, object_store::Error::NotFound { .. })
                || text.contains("NoSuchBucket")
                || text.contains("404 Not Found")
            {
                " (does the bucket exist?)"
            } else if matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            ) || text.contains("403 Forbidden")
                || text.contains("401 Unauthorized")
            {
                " (check the credentials)"
            } else {
                ""
            };
            bail!(
                "cannot reach bucket `{}` at {}{hint}: {}",
                self.config.bucket,
                self.endpoint(),
                describe(&e)
            );
        }
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        for i in 0..batch.len() {
            match self.add(batch, i) {
                Ok(Some(full)) => self.close(&full)?,
                Ok(None) => {}
                Err(reason) => rejected.push(batch, i, reason),
            }
            if i % 64 == 63 {
                self.rotate()?;
            }
        }
        self.rotate()
    }

    fn flush(&mut self, _rejected: &mut Rejected) -> Result<Value> {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for k in keys {
            self.close(&k)?;
        }
        // Object names are deterministic: a replay rewrites the same objects,
        // so there is nothing to resume from.
        Ok(serde_json::json!({ "objects": self.uploaded }))
    }
}

/// The `s3` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "s3",
    summary: "objects (JSON lines, Avro, Parquet) in S3 or an S3-compatible store",
    parse: parse_sink::<S3SinkConfig>,
};

impl SinkConfig for S3SinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        use crate::connector::endpoint::{from_http_url, Endpoint};
        let path_style = self.path_style.unwrap_or(self.endpoint.is_some());
        let mut out = match &self.endpoint {
            Some(e) => from_http_url(e)?,
            None => {
                let region = self
                    .region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".into());
                vec![Endpoint::new(
                    &format!("s3.{region}.amazonaws.com"),
                    Some(443),
                )]
            }
        };
        if !path_style {
            for e in &mut out {
                e.host = format!("{}.{}", self.bucket.to_ascii_lowercase(), e.host);
            }
        }
        Some(out)
    }
    fn operator_only(&self) -> Result<(), ConfigIssue> {
        // Without its own keys the client takes the server's: its
        // environment, its shared credentials file, its instance role.
        if self.profile.is_some() {
            return Err(ConfigIssue::at(
                "profile",
                "not allowed on a server: it names the server's own AWS credentials; give `access_key_id` and `secret_access_key` (from a named connection)",
            ));
        }
        if self.access_key_id.is_none() || self.secret_access_key.is_none() {
            return Err(ConfigIssue::at(
                "access_key_id",
                "required on a server, with `secret_access_key`: without them the S3 client would use the server's own AWS credentials",
            ));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        S3SinkConfig::check(self)
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(S3Sink::new(self.clone(), name)?))
    }
}
