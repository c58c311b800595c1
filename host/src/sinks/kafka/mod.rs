//! `kafka` sink: an rdkafka producer (idempotent by default).
//!
//! - Key → partition with the Java client's partitioner (`murmur2_random`),
//!   so keys land where other Kafka producers would put them; headers and
//!   timestamps are preserved.
//! - The topic is fixed (`topic`) or read per event from a header
//!   (`topic_header`), so a plugin can route events.
//! - `flush` waits until librdkafka has a delivery report for everything
//!   written: only then does a checkpoint (and so the source's offset
//!   commit) cover those events. A delivery that fails with a retriable
//!   error (a timeout, a broker going away) is sent again with backoff; a
//!   delivery that keeps failing, or a fatal error of the idempotent
//!   producer (a restarted broker that forgot its id), gets a new producer; a
//!   record the broker refuses for good (too large, invalid) is rejected to
//!   the dead-letter destination; anything else (unknown topic, not
//!   authorized, a fatal producer error) stops the pipeline with a message
//!   naming the topic and the cause.
//! - Usable as the pipeline's `dead_letter` destination: the runner's error
//!   details arrive as headers and are written as Kafka headers.
//! - `delivery: exactly_once`: a transactional producer, its
//!   `transactional.id` stable across restarts (starting it fences an older
//!   instance and aborts what that left open). Records written between two
//!   checkpoint barriers form one transaction; at the barrier the upstream
//!   `kafka` sources' offsets (handed over by the pipeline, see
//!   [`Sink::source_progress`]) join it with `send_offsets_to_transaction`,
//!   and it commits. Any failure inside a transaction (a delivery that
//!   failed, a rebalance that took partitions read in it, a newer instance
//!   fencing this one) aborts it and stops the run: a restart resumes from
//!   the offsets of the last committed transaction, so `read_committed`
//!   consumers see every record once.

mod config;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

pub use config::{Delivery, KafkaSinkConfig};

use crate::clients::kafka::{ErrorLog, GroupProgress, Refusing, ERROR_LOG_WINDOW};
use crate::clients::kafka_diagnose::{forward_log, Refusals};
use crate::clients::kafka_security::KafkaSecurity;
use crate::connector::{
    parse_sink, ConfigIssue, ErrorClass, Handoff, Rejected, Sink, SinkConfig, SinkKind,
};
use crate::event::Batch;
use crate::format::codec::{CodecError, Encoder};

/// An event on its way: where it came from in the batch and where it goes.
pub struct Pending {
    batch: Arc<Batch>,
    index: usize,
    topic: String,
    attempt: u32,
}

/// Producer callbacks: delivery reports.
pub struct Ctx {
    sink: String,
    in_flight: AtomicUsize,
    failed: Mutex<Vec<(Box<Pending>, KafkaError)>>,
    errors: ErrorLog,
    refusals: Refusals,
}

impl Refusing for Ctx {
    fn refusals(&self) -> &Refusals {
        &self.refusals
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, line: &str) {
        self.refusals.note(line);
        forward_log(level, fac, line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.note(reason);
        if let Some(line) = self
            .errors
            .admit(&error.to_string(), reason, Instant::now())
        {
            tracing::warn!(sink = %self.sink, "kafka: {line}");
        }
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        if let Err((e, _)) = result {
            let mut failed = match self.failed.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            failed.push((pending, e.clone()));
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do about a failed delivery.
fn verdict(e: &KafkaError) -> ErrorClass {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidMessageSize
            | C::InvalidTimestamp,
        ) => ErrorClass::Rejected(e.to_string()),
        Some(
            C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::Fatal
            | C::InvalidConfig
            | C::UnsupportedVersion,
        ) => ErrorClass::Fatal(e.to_string()),
        _ => ErrorClass::Retry(e.to_string()),
    }
}

/// A running `kafka` sink.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    name: String,
    producer: Option<BaseProducer<Ctx>>,
    value: Encoder,
    key: Encoder,
    delivered: u64,
    /// Producers replaced since the last successful flush.
    resets: u32,
    /// Under `exactly_once`: the producer's `transactional.id`.
    transactional_id: Option<String>,
    /// Under `exactly_once`: the upstream sources' progress to commit at the
    /// coming flush.
    progress: Vec<Handoff>,
    transactions: u64,
    /// TLS and SASL settings read at open, for producers made after it.
    security: Option<KafkaSecurity>,
}

/// How long one transactional call may block before it is retried or fails.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of a transactional call that keeps failing with a retriable error.
const TXN_ATTEMPTS: u32 = 5;

impl KafkaSink {
    /// A sink per `config` named `name`.
    pub fn new(config: KafkaSinkConfig, name: &str) -> Result<Self> {
        let registry = config.schema_registry.as_deref();
        let schema = match &config.schema {
            Some(s) => Some(
                crate::format::schema::parse_avro(s).map_err(|e| anyhow::anyhow!("schema: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            value: Encoder::new(
                config.format,
                registry,
                config.subject_naming,
                schema,
                config.record_name.clone(),
                false,
            ),
            key: Encoder::new(
                config.key_format,
                registry,
                config.subject_naming,
                None,
                config.record_name.clone(),
                true,
            ),
            config,
            name: name.to_string(),
            producer: None,
            delivered: 0,
            resets: 0,
            transactional_id: None,
            progress: Vec::new(),
            transactions: 0,
            security: None,
        })
    }

    fn create_producer(&self, security: &KafkaSecurity) -> Result<BaseProducer<Ctx>> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.config.brokers)
            .set("client.id", format!("sluice-{}", self.name))
            .set(
                "enable.idempotence",
                if self.config.idempotent {
                    "true"
                } else {
                    "false"
                },
            )
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("queue.buffering.max.messages", "500000")
            // librdkafka's default is 1 GiB; the bound is counted against
            // the pipeline (see `clients::kafka_buffers`).
            .set(
                "queue.buffering.max.kbytes",
                crate::clients::kafka_buffers::PRODUCER_QUEUE_KBYTES.to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "5000");
        if let Some(id) = &self.transactional_id {
            cfg.set("transactional.id", id)
                .set("enable.idempotence", "true");
        }
        for (k, v) in self.config.properties.iter() {
            cfg.set(k, v);
        }
        // Validated against `properties`: they agree.
        for (k, v) in security.settings() {
            cfg.set(k, v);
        }
        crate::clients::kafka_diagnose::keep_info_lines(&mut cfg);
        let ctx = Ctx {
            sink: self.name.clone(),
            in_flight: AtomicUsize::new(0),
            failed: Mutex::new(Vec::new()),
            errors: ErrorLog::new(ERROR_LOG_WINDOW),
            refusals: Refusals::default(),
        };
        cfg.create_with_context(ctx).map_err(|e| {
            crate::clients::kafka_diagnose::creation_error(
                e,
                format!("creating a Kafka producer for {}", self.config.brokers),
            )
        })
    }

    fn producer(&self) -> Result<&BaseProducer<Ctx>> {
        self.producer.as_ref().context("the kafka sink is not open")
    }

    /// The topic for event `index` of `batch`.
    fn topic_of(&self, batch: &Batch, index: usize) -> Option<String> {
        if let Some(h) = &self.config.topic_header {
            if let Some(t) = batch.get(index).and_then(|e| {
                e.headers()
                    .find(|(n, _)| n == h)
                    .and_then(|(_, v)| std::str::from_utf8(v).ok())
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
            }) {
                return Some(t);
            }
        }
        self.config.topic.clone()
    }

    /// Encodes with `enc`, retrying while the schema registry is unreachable.
    fn encode(enc: &mut Encoder, name: &str, topic: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut wait = Duration::from_millis(200);
        loop {
            match enc.encode(topic, bytes) {
                Ok(v) => return Ok(v),
                Err(CodecError::Bad(m)) => return Err(m),
                Err(CodecError::Unavailable(m)) => {
                    tracing::warn!(sink = %name, "{m}; retrying in {wait:?}");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Hands one event to librdkafka (waiting while its queue is full).
    fn send(&mut self, pending: Box<Pending>, rejected: &mut Rejected) -> Result<()> {
        let Some(event) = pending.batch.get(pending.index) else {
            return Ok(());
        };
        let topic = pending.topic.clone();
        let value = match event.value {
            None => None,
            Some(v) => match Self::encode(&mut self.value, &self.name, &topic, v) {
                Ok(b) => Some(b),
                Err(reason) => {
                    rejected.push(
                        &pending.batch,
                        pending.index,
                        format!("value for topic `{topic}`: {reason}"),
                    );
                    return Ok(());
                }
            },
        };
        let key = match event.key {
            None => None,
            Some(k) => match Self::encode(&mut self.key, &self.name, &topic, k) {
                Ok(b) => Some(b),
                Err(reason) => {
                    rejected.push(
                        &pending.batch,
                        pending.index,
                        format!("key for topic `{topic}`: {reason}"),
                    );
                    return Ok(());
                }
            },
        };
        let mut headers = OwnedHeaders::new();
        for (n, v) in event.headers() {
            headers = headers.insert(Header {
                key: n,
                value: Some(v),
            });
        }
        let timestamp = event.timestamp_ms;
        let batch = pending.batch.clone();
        let index = pending.index;
        let mut record: BaseRecord<'_, [u8], [u8], Box<Pending>> =
            BaseRecord::with_opaque_to(&topic, pending).headers(headers);
        if let Some(v) = &value {
            record = record.payload(v.as_slice());
        }
        if let Some(k) = &key {
            record = record.key(k.as_slice());
        }
        if timestamp > 0 {
            record = record.timestamp(timestamp);
        }
        let producer = self.producer()?;
        producer.context().in_flight.fetch_add(1, Ordering::SeqCst);
        let (e, pending) = loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // Waits out the whole slice (see `flush`): short, so
                    // the record goes as soon as acknowledgements free room.
                    producer.poll(Duration::from_millis(2));
                }
                Err((e, r)) => {
                    producer.context().in_flight.fetch_sub(1, Ordering::SeqCst);
                    match verdict(&e) {
                        ErrorClass::Fatal(_) if self.may_reset(&e) => break (e, r.delivery_opaque),
                        ErrorClass::Fatal(_) => bail!(
                            "kafka sink `{}`: cannot produce to topic `{topic}`: {e}",
                            self.name
                        ),
                        // A transactional producer refusing a record for a
                        // reason other than the record itself is in trouble.
                        ErrorClass::Retry(_) if self.transactional_id.is_some() => {
                            self.abort("the producer refused a record");
                            bail!(
                                "kafka sink `{}`: cannot produce to topic `{topic}` inside a transaction: {e}; the run stops, a restart resumes from the last committed offsets",
                                self.name
                            )
                        }
                        _ => {
                            rejected.push(&batch, index, format!("topic `{topic}`: {e}"));
                            return Ok(());
                        }
                    }
                }
            }
        };
        tracing::warn!(sink = %self.name, topic = %topic, "kafka: the producer failed ({e}); starting a new one");
        let mut taken = Vec::new();
        self.reset_producer(&mut taken)?;
        for (p, _) in taken {
            self.send(p, rejected)?;
        }
        self.send(pending, rejected)
    }

    /// True when a fatal producer error may be cured by a new producer: an
    /// idempotent producer whose id a broker forgot (a restart of in-memory
    /// storage) fails for good, a new one starts afresh. At most 5 in a row.
    fn may_reset(&self, e: &KafkaError) -> bool {
        self.transactional_id.is_none()
            && self.config.idempotent
            && e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
            && self.resets < 5
    }

    /// Deals with failed deliveries: resend, reject or stop.
    fn handle_failures(&mut self, rejected: &mut Rejected) -> Result<()> {
        let failed: Vec<(Box<Pending>, KafkaError)> = {
            let producer = self.producer()?;
            let mut f = match producer.context().failed.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            std::mem::take(&mut *f)
        };
        if let Some((pending, e)) = failed.first() {
            if self.transactional_id.is_some() {
                // The transaction cannot commit any more; a restart redoes it.
                self.abort("a delivery failed");
                bail!(
                    "kafka sink `{}`: delivery to topic `{}` failed inside a transaction ({e}); the transaction was aborted and the run stops, a restart resumes from the last committed offsets",
                    self.name,
                    pending.topic
                );
            }
        }
        let mut retry = Vec::new();
        let mut force_reset = false;
        for (pending, e) in failed {
            match verdict(&e) {
                ErrorClass::Rejected(_) => rejected.push(
                    &pending.batch,
                    pending.index,
                    format!("topic `{}` refused the record: {e}", pending.topic),
                ),
                ErrorClass::Fatal(_) if self.may_reset(&e) => {
                    force_reset = true;
                    retry.push((pending, e));
                }
                ErrorClass::Fatal(_) => bail!(
                    "kafka sink `{}`: delivery to topic `{}` failed: {e}",
                    self.name,
                    pending.topic
                ),
                ErrorClass::Retry(_) => retry.push((pending, e)),
            }
        }
        let Some(attempt) = retry.iter().map(|(p, _)| p.attempt + 1).max() else {
            return Ok(());
        };
        let wait = Duration::from_millis(100u64 << attempt.min(7)).min(Duration::from_secs(10));
        tracing::warn!(sink = %self.name, topic = %retry[0].0.topic, attempt, "kafka: {} deliveries failed ({}); sending again in {wait:?}", retry.len(), retry[0].1);
        std::thread::sleep(wait);
        if attempt >= 2 || force_reset {
            // librdkafka already retried for message.timeout.ms. A broker that
            // lost its state (a restart of in-memory storage) refuses the
            // idempotent producer's id for good: start a new producer.
            self.reset_producer(&mut retry)?;
        }
        for (mut pending, _) in retry {
            pending.attempt = attempt;
            self.send(pending, rejected)?;
        }
        Ok(())
    }

    /// Replaces the producer, taking back every record the old one still held.
    fn reset_producer(&mut self, retry: &mut Vec<(Box<Pending>, KafkaError)>) -> Result<()> {
        if let Some(old) = self.producer.take() {
            old.purge(PurgeConfig::default().queue().inflight());
            let deadline = Instant::now() + Duration::from_secs(10);
            while old.context().in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                old.poll(Duration::from_millis(50));
            }
            let mut f = match old.context().failed.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            retry.append(&mut f);
        }
        let security = self
            .security
            .clone()
            .context("the kafka sink is not open")?;
        self.producer = Some(self.create_producer(&security)?);
        self.resets += 1;
        tracing::warn!(sink = %self.name, "kafka: started a new producer after repeated delivery failures");
        Ok(())
    }
}

/// A transactional call's error: (may be retried, needs an abort).
fn txn_error(e: &KafkaError) -> (bool, bool) {
    match e {
        KafkaError::Transaction(r) => (r.is_retriable(), r.txn_requires_abort()),
        _ => (false, false),
    }
}

impl KafkaSink {
    /// Runs a transactional call, retrying it while librdkafka says it may.
    fn txn_call(
        &mut self,
        what: &str,
        f: impl Fn(&BaseProducer<Ctx>) -> Result<(), KafkaError>,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match f(self.producer()?) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let (retriable, abortable) = txn_error(&e);
            if retriable && attempt < TXN_ATTEMPTS {
                tracing::warn!(sink = %self.name, attempt, "kafka: {what} failed ({e}); retrying");
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                continue;
            }
            if abortable || retriable {
                self.abort(what);
            }
            bail!(
                "kafka sink `{}` (transactional.id `{}`): {what} failed: {e}; the run stops, a restart resumes from the last committed offsets",
                self.name,
                self.transactional_id.as_deref().unwrap_or("")
            );
        }
    }

    /// Aborts the open transaction, if it can be (a fenced producer cannot).
    fn abort(&self, why: &str) {
        if let Some(p) = &self.producer {
            match p.abort_transaction(TXN_TIMEOUT) {
                Ok(()) => tracing::warn!(sink = %self.name, "kafka: transaction aborted ({why})"),
                Err(e) => {
                    tracing::warn!(sink = %self.name, "kafka: aborting the transaction ({why}) failed: {e}")
                }
            }
        }
    }

    /// Under `exactly_once`: commits the records written since the last
    /// barrier together with the sources' offsets at this one, and opens
    /// the next transaction.
    fn commit_transaction(&mut self) -> Result<()> {
        for handoff in std::mem::take(&mut self.progress) {
            let Some(g) = handoff.downcast_ref::<GroupProgress>() else {
                self.abort("an upstream source is not a kafka source");
                bail!("kafka sink `{}`: an upstream source handed over progress that is not a Kafka consumer group's", self.name);
            };
            if !g.revoked.is_empty() {
                self.abort("a rebalance");
                bail!(
                    "kafka sink `{}`: a rebalance of consumer group `{}` took partitions {:?} from source `{}` while records read from them were in the open transaction; it was aborted and the run stops, a restart resumes from the last committed offsets",
                    self.name, g.group_id, g.revoked, g.source
                );
            }
            if g.offsets.is_empty() {
                continue;
            }
            let Some(cgm) = &g.group else {
                self.abort("no group membership");
                bail!("kafka sink `{}`: source `{}` read records but has no consumer group membership to commit them with", self.name, g.source);
            };
            let mut tpl = TopicPartitionList::new();
            for (t, p, o) in &g.offsets {
                tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                    .with_context(|| format!("offset {o} of {t}[{p}]"))?;
            }
            self.txn_call("sending the source offsets to the transaction", |p| {
                p.send_offsets_to_transaction(&tpl, cgm, TXN_TIMEOUT)
            })?;
        }
        self.txn_call("committing the transaction", |p| {
            p.commit_transaction(TXN_TIMEOUT)
        })?;
        self.producer()?.poll(Duration::ZERO);
        let mut rejected = Rejected::default();
        self.handle_failures(&mut rejected)?;
        self.transactions += 1;
        self.txn_call("beginning a transaction", |p| p.begin_transaction())
    }
}

impl Sink for KafkaSink {
    fn exactly_once(&mut self, pipeline: &str) -> bool {
        if self.config.delivery != Delivery::ExactlyOnce {
            return false;
        }
        self.transactional_id = Some(
            self.config
                .transactional_id
                .clone()
                .unwrap_or_else(|| format!("sluice-{pipeline}-{}", self.name)),
        );
        true
    }

    fn source_progress(&mut self, progress: Vec<Handoff>) -> Result<()> {
        self.progress = progress;
        Ok(())
    }

    fn open(&mut self, _position: Option<&Value>) -> Result<()> {
        // Read the password file now (validation read it too).
        let security = self
            .config
            .security()
            .map_err(|i| anyhow::anyhow!("{}: {}", i.field, i.message))?;
        let producer = self.create_producer(&security)?;
        let c = &self.config;
        crate::clients::kafka::wait_for_brokers(
            producer.client(),
            &c.brokers,
            c.connect_timeout_ms,
            &self.name,
            &security,
            &|| {
                producer.poll(Duration::ZERO);
            },
        )?;
        self.security = Some(security);
        self.producer = Some(producer);
        if self.config.delivery == Delivery::ExactlyOnce {
            let Some(id) = self.transactional_id.clone() else {
                bail!("kafka sink `{}`: `delivery: exactly_once` works for a sink under `sinks:` fed by `kafka` sources, not for the dead-letter destination", self.name);
            };
            // Fences any older producer with this id and aborts what it left open.
            self.txn_call("initialising transactions", |p| {
                p.init_transactions(TXN_TIMEOUT)
            })?;
            self.txn_call("beginning a transaction", |p| p.begin_transaction())?;
            tracing::info!(sink = %self.name, transactional_id = %id, "kafka: exactly-once delivery, transactions initialised");
        }
        Ok(())
    }

    fn write(&mut self, batch: &Arc<Batch>, rejected: &mut Rejected) -> Result<()> {
        for index in 0..batch.len() {
            let Some(topic) = self.topic_of(batch, index) else {
                rejected.push(
                    batch,
                    index,
                    format!(
                        "no topic: the event has no `{}` header and the sink no `topic`",
                        self.config.topic_header.as_deref().unwrap_or("")
                    ),
                );
                continue;
            };
            self.send(
                Box::new(Pending {
                    batch: batch.clone(),
                    index,
                    topic,
                    attempt: 0,
                }),
                rejected,
            )?;
        }
        self.producer()?.poll(Duration::ZERO);
        self.handle_failures(rejected)?;
        self.delivered += batch.len() as u64;
        Ok(())
    }

    fn flush(&mut self, rejected: &mut Rejected) -> Result<Value> {
        if self.transactional_id.is_some() {
            self.commit_transaction()?;
            return Ok(json!({ "written": self.delivered, "transactions": self.transactions }));
        }
        let started = Instant::now();
        loop {
            {
                let producer = self.producer()?;
                // rdkafka's own `flush` waits in slices of 100 ms, and its
                // `poll` always waits out its whole timeout: a checkpoint's
                // flush took 100 ms however fast the broker acknowledged,
                // the sink stood still meanwhile, and that was the p99 of
                // end-to-end latency (docs/performance.md). `flush(ZERO)`
                // wakes the brokers' threads (what lingers may still wait
                // out `linger.ms`) and returns at once; the short polls
                // serve acknowledgements as they come.
                let _ = producer.flush(Duration::ZERO);
                producer.poll(flush_poll(started.elapsed()));
            }
            self.handle_failures(rejected)?;
            let producer = self.producer()?;
            let failed_empty = producer
                .context()
                .failed
                .lock()
                .map(|f| f.is_empty())
                .unwrap_or(false);
            if producer.context().in_flight.load(Ordering::SeqCst) == 0 && failed_empty {
                break;
            }
        }
        self.resets = 0;
        Ok(json!({ "written": self.delivered }))
    }
}

/// How long one poll of a flush waits: a millisecond while the broker
/// acknowledges as fast as it usually does, longer once it is slow, so a
/// flush waiting for a broker that is down does not spin.
fn flush_poll(waited: Duration) -> Duration {
    if waited < Duration::from_millis(200) {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(20)
    }
}

/// The `kafka` sink in the connector registry.
pub const KIND: SinkKind = SinkKind {
    name: "kafka",
    summary: "records to Kafka topics (idempotent producer, JSON or Avro)",
    parse: parse_sink::<KafkaSinkConfig>,
};

impl SinkConfig for KafkaSinkConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::kafka_security::endpoints(&self.brokers, self.schema_registry.as_deref())
    }
    fn operator_only(&self) -> Result<(), ConfigIssue> {
        crate::clients::kafka_security::tenant_may_set(&self.properties)
    }
    fn client_buffers(&self) -> Option<crate::connector::ClientBuffers> {
        // Validation refused a property that does not parse; such a file never runs.
        let bytes = crate::clients::kafka_buffers::producer_bytes(&self.properties).ok()?;
        Some(crate::connector::ClientBuffers {
            mb: bytes.div_ceil(1 << 20),
            made_of: crate::clients::kafka_buffers::PRODUCER_PARTS,
            field: "properties",
        })
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        KafkaSinkConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        crate::clients::kafka_security::resolve_paths(self.tls.as_mut(), self.sasl.as_mut(), base);
    }

    fn fingerprint_text(&self) -> String {
        crate::clients::kafka_security::fingerprint_text(self, |c| {
            c.tls = None;
            c.sasl = None;
        })
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        Ok(Box::new(KafkaSink::new(self.clone(), name)?))
    }
}
