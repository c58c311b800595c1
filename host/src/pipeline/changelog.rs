//! Keyed state in Kafka: each processor stage downstream of a `kafka`
//! source with `state: changelog` keeps one state per source partition,
//! published to partition P of a compacted changelog topic, so the state of
//! P moves with P between the members of the consumer group.
//!
//! - **One transactional producer per source partition**, shared by the
//!   pipeline's stages, its `transactional.id` derived from the consumer
//!   group and the partition. A new owner's `init_transactions` fences the
//!   previous owner and aborts what it left open, so its reads never wait
//!   for a dead member's transaction and a zombie cannot publish over it.
//! - **A publish is one transaction per partition** across the stages: for
//!   each stage, the entries and timers that changed since the last one,
//!   then a marker with the source offset its state has reached. One
//!   transaction keeps the stages' markers in step: were one stage's
//!   publish to land and a later stage's not, the first would skip events
//!   on restore that the second never counted. It is begun at the checkpoint barrier and committed only once
//!   the whole checkpoint has committed (the sinks have flushed what the
//!   state's events produced), and before the source commits the group's
//!   offsets: so the marker's offset is never behind the group's, and a new
//!   owner skips the events below it instead of counting them twice.
//! - **Restore** reads the partition from the start with
//!   `isolation.level=read_committed` up to its end.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::connector::{ChangelogSpec, HeldPartitions};
use crate::state::keyed::{Marker, MARKER_KEY};
use crate::state::KeyedState;

/// How long a transactional call or a restore may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a transaction may stay open (the broker's default ceiling is
/// 15 minutes), and a stage wait for the previous one's commit.
const TXN_TIMEOUT: Duration = Duration::from_secs(600);
const RESTORE_TIMEOUT: Duration = Duration::from_secs(300);
use crate::clients::kafka_buffers::{
    CHANGELOG_PARTITIONS as MAX_PARTITIONS_HELD, CHANGELOG_QUEUE_KBYTES as PRODUCER_QUEUE_KBYTES,
    CHANGELOG_RECORD_BYTES as MAX_RECORD_BYTES,
};
/// Partitions one stage may hold: each has its own producer (threads and
/// buffers), so a topic with hundreds of partitions assigned to one member
/// fails clearly instead of exhausting the host (see `clients::kafka_buffers`).
pub const MAX_PARTITIONS: usize = MAX_PARTITIONS_HELD;

/// What [`Changelog::open`] found.
pub enum Opened {
    /// Taken over (or joined, when another stage took it over first) and
    /// read back.
    Ready(Arc<Writer>, Restored),
    /// The events were read under an assignment that has ended here.
    Stale,
    /// The events name a partition the source topic does not have.
    Refused(String),
}

/// The changelog topic of one stage.
pub struct Changelog {
    spec: ChangelogSpec,
    /// `<group>-<stage>-changelog`.
    pub topic: String,
    stage: String,
    /// Partitions the topic is known to have.
    partitions: Mutex<i32>,
    /// The run's producers, one per partition, shared by its stages.
    writers: Arc<Writers>,
}

/// The changelog topic's name for `stage` of a pipeline in `group`.
pub fn topic_name(group: &str, stage: &str) -> String {
    format!("{group}-{stage}-changelog")
}

/// Log lines of the changelog's clients go where the rest of the Kafka
/// clients' lines go.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, line: &str) {
        crate::clients::kafka_diagnose::forward_log(level, fac, line);
    }
}

impl ProducerContext for Quiet {
    type DeliveryOpaque = ();
    // A record that fails makes the transaction fail at commit.
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

impl ConsumerContext for Quiet {}

/// What a restore read, for the log and the figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restored {
    pub records: u64,
    pub bytes: u64,
    pub millis: u64,
    /// Of `millis`, taking the partition's producer over (fencing).
    pub fence_millis: u64,
    pub marker: Option<Marker>,
}

impl Changelog {
    pub fn new(spec: &ChangelogSpec, stage: &str, writers: Arc<Writers>) -> Self {
        Self {
            topic: topic_name(&spec.group_id, stage),
            spec: spec.clone(),
            stage: stage.to_string(),
            partitions: Mutex::new(0),
            writers,
        }
    }

    fn config(&self) -> ClientConfig {
        client_config(&self.spec)
    }

    /// Whether the source holds `partition` under `assignment` now.
    pub fn holds(&self, partition: i32, assignment: u64) -> bool {
        self.writers.holds(partition, assignment)
    }

    /// Lets go of `partition`'s producer (see [`Writers::forget`]).
    pub fn forget(&self, partition: i32, assignment: u64) {
        self.writers.forget(partition, assignment)
    }

    /// Makes sure the topic exists, compacted, with more than `partition`
    /// partitions (as many as the source topic has, at least). `Ok(Some)`
    /// says why `partition` is refused: the source topic has no such
    /// partition (a header a plugin upstream may rewrite named it, and the
    /// host does not grow a topic to whatever a header says).
    fn ensure(&self, partition: i32) -> Result<Option<String>> {
        let mut known = self
            .partitions
            .lock()
            .map_err(|_| anyhow!("changelog lock poisoned"))?;
        if *known > partition {
            return Ok(None);
        }
        let admin: AdminClient<Quiet> = self
            .config()
            .create_with_context(Quiet)
            .context("creating a Kafka admin client")?;
        let meta = admin
            .inner()
            .fetch_metadata(None, CALL_TIMEOUT)
            .context("reading the brokers' topics")?;
        let count = |name: &str| {
            meta.topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
        };
        let Some(source) = count(&self.spec.topic) else {
            bail!(
                "the brokers' metadata has no topic `{}` (or reports an error for it); the changelog topics are partitioned like it",
                self.spec.topic
            );
        };
        if partition >= source {
            return Ok(Some(format!(
                "partition {partition} is not one of source topic `{}` ({source} partitions)",
                self.spec.topic
            )));
        }
        let want = source;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime for the Kafka admin client")?;
        let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        // Room for a record of `MAX_RECORD_BYTES` and its batch's framing.
        let max_bytes = (MAX_RECORD_BYTES + (64 << 10)).to_string();
        match count(&self.topic) {
            None => {
                let topic = NewTopic::new(&self.topic, want, TopicReplication::Fixed(-1))
                    .set("cleanup.policy", "compact")
                    .set("max.message.bytes", &max_bytes);
                let results = runtime
                    .block_on(admin.create_topics([&topic], &options))
                    .with_context(|| format!("creating changelog topic `{}`", self.topic))?;
                for r in results {
                    match r {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((t, e)) => bail!("creating changelog topic `{t}`: {e}"),
                    }
                }
                tracing::info!(stage = %self.stage, topic = %self.topic, partitions = want, "changelog topic created (compacted)");
            }
            Some(have) if have < want => {
                let grow = NewPartitions::new(&self.topic, usize::try_from(want).unwrap_or(1));
                let results = runtime
                    .block_on(admin.create_partitions([&grow], &options))
                    .with_context(|| format!("adding partitions to `{}`", self.topic))?;
                for r in results {
                    match r {
                        // Another member grew it first.
                        Ok(_) | Err((_, RDKafkaErrorCode::InvalidPartitions)) => {}
                        Err((t, e)) => bail!("adding partitions to changelog topic `{t}`: {e}"),
                    }
                }
            }
            Some(_) => {}
        }
        *known = want;
        Ok(None)
    }

    /// Takes partition `partition` (read under `assignment`) over for this
    /// stage: the first stage to see the assignment fences the partition's
    /// previous writer (and aborts what it left open); then this stage's
    /// state is read back. `Ok(Err)` says why the partition is refused.
    pub fn open(&self, partition: i32, assignment: u64, state: &mut KeyedState) -> Result<Opened> {
        if let Some(refused) = self.ensure(partition)? {
            return Ok(Opened::Refused(refused));
        }
        let started = Instant::now();
        let Some(writer) = self.writers.take_over(partition, assignment)? else {
            return Ok(Opened::Stale);
        };
        let fenced_at = started.elapsed();
        let mut restored = {
            let _one_at_a_time = self
                .writers
                .reading
                .lock()
                .map_err(|_| anyhow!("changelog lock poisoned"))?;
            self.read(partition, state)?
        };
        restored.fence_millis = fenced_at.as_millis() as u64;
        restored.millis = started.elapsed().as_millis() as u64;
        Ok(Opened::Ready(writer, restored))
    }

    fn read(&self, partition: i32, state: &mut KeyedState) -> Result<Restored> {
        let consumer: BaseConsumer<Quiet> = self
            .config()
            .set("group.id", format!("sluice-restore-{}", self.topic))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // Within `CHANGELOG_READ_BYTES`, counted against the pipeline.
            .set("fetch.max.bytes", (MAX_RECORD_BYTES * 2).to_string())
            .set(
                "max.partition.fetch.bytes",
                (MAX_RECORD_BYTES * 2).to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                (MAX_RECORD_BYTES * 2 / 1024).to_string(),
            )
            // An empty (or fully read) partition answers at once, not after
            // the default half second.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.error.backoff.ms", "10")
            .create_with_context(Quiet)
            .context("creating the changelog's reader")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Beginning)
            .context("assigning the changelog partition")?;
        consumer
            .assign(&tpl)
            .context("assigning the changelog partition")?;
        let deadline = Instant::now() + RESTORE_TIMEOUT;
        let mut r = Restored::default();
        loop {
            if Instant::now() > deadline {
                bail!(
                    "reading partition {partition} of changelog topic `{}` took longer than {} s",
                    self.topic,
                    RESTORE_TIMEOUT.as_secs()
                );
            }
            match consumer.poll(Duration::from_millis(50)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(r),
                Some(Err(e)) => {
                    tracing::warn!(stage = %self.stage, topic = %self.topic, partition, "kafka: reading the changelog: {e}")
                }
                Some(Ok(m)) => {
                    let key = m.key().unwrap_or_default();
                    let value = m.payload();
                    r.records += 1;
                    r.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
                    let at = m.offset();
                    if let Some(marker) = state.apply_record(key, value).with_context(|| {
                        format!(
                            "partition {partition} of changelog topic `{}`, offset {at}",
                            self.topic
                        )
                    })? {
                        r.marker = Some(marker);
                    }
                }
            }
        }
    }

    /// Adds `state`'s changes since its last publish, then its marker, to
    /// the partition's transaction for checkpoint `id` (begun by the first
    /// stage to publish for it; committed with the checkpoint, see
    /// [`Writers::commit_upto`]). Returns `false` when another member has
    /// taken the partition over.
    pub fn publish(
        &self,
        writer: &Arc<Writer>,
        state: &mut KeyedState,
        next_offset: i64,
        id: u64,
    ) -> Result<bool> {
        if writer.is_fenced() {
            return Ok(false);
        }
        let result = match writer.begin(id) {
            Ok(true) => {
                self.writers.pending(writer);
                writer.publish(&self.topic, state, next_offset)
            }
            Ok(false) => writer.publish(&self.topic, state, next_offset),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(true),
            Err(e) if writer.fenced_by(&e) => {
                writer.fence();
                Ok(false)
            }
            Err(e) => {
                let _ = writer.producer.abort_transaction(CALL_TIMEOUT);
                let too_large = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::MessageSizeTooLarge)
                );
                Err(anyhow!(e))
                    .with_context(|| {
                        if too_large {
                            format!("a state entry (key and value) is larger than the changelog's {} KiB record limit", MAX_RECORD_BYTES >> 10)
                        } else {
                            "the broker refused the publish".to_string()
                        }
                    })
                    .with_context(|| {
                    format!(
                        "publishing partition {} of the state to changelog topic `{}`",
                        writer.partition, self.topic
                    )
                })
            }
        }
    }
}

fn client_config(spec: &ChangelogSpec) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &spec.brokers);
    for (k, v) in &spec.security {
        cfg.set(k, v);
    }
    cfg
}

/// Whether `code` says another producer with the same transactional id
/// took over (a new owner of the partition).
fn fencing(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::InvalidProducerIdMapping
        )
    )
}

/// One partition's transactional producer.
pub struct Writer {
    producer: BaseProducer<Quiet>,
    /// Its `transactional.id`, for messages.
    id: String,
    pub partition: i32,
    /// The source assignment it was opened under.
    assignment: u64,
    /// The checkpoint whose publish is open, if one is.
    open: Mutex<Option<u64>>,
    closed: Condvar,
    fenced: std::sync::atomic::AtomicBool,
}

impl Writer {
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn fence(&self) {
        self.fenced.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether `e` comes of a newer producer of the partition having taken
    /// over: said directly, or as the fatal error a fenced producer reports
    /// every call after (`Local: Fatal error`).
    fn fenced_by(&self, e: &KafkaError) -> bool {
        fencing(e.rdkafka_error_code())
            || (matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal))
                || matches!(e, KafkaError::Transaction(t) if t.is_fatal()))
                && fencing(self.producer.client().fatal_error().map(|(code, _)| code))
    }

    /// Makes sure the transaction of checkpoint `id` is open: returns
    /// `true` when this call began it. A transaction still open for an
    /// earlier checkpoint is waited for (the next barrier may reach a stage
    /// before the coordinator has committed the last).
    fn begin(&self, id: u64) -> Result<bool, KafkaError> {
        let open = match self.open.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        if *open == Some(id) {
            return Ok(false);
        }
        let (mut open, _) = match self
            .closed
            .wait_timeout_while(open, TXN_TIMEOUT, |o| o.is_some_and(|at| at != id))
        {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        if open.is_some() {
            return Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut));
        }
        self.producer.begin_transaction()?;
        *open = Some(id);
        Ok(true)
    }

    fn publish(
        &self,
        topic: &str,
        state: &mut KeyedState,
        next_offset: i64,
    ) -> Result<(), KafkaError> {
        let mut result = Ok(());
        state
            .publish_changes(&mut |(k, v)| {
                if let Err(e) = self.send(topic, k, v) {
                    result = Err(e);
                    return Err(anyhow!("stopped"));
                }
                Ok(())
            })
            .ok();
        result?;
        let marker = serde_json::to_vec(&state.marker(next_offset)).unwrap_or_default();
        self.send(topic, MARKER_KEY, Some(&marker))
    }

    /// Sends one record, waiting for room when the queue is full.
    fn send(&self, topic: &str, key: &[u8], value: Option<&[u8]>) -> Result<(), KafkaError> {
        if key.len() + value.map_or(0, <[u8]>::len) > MAX_RECORD_BYTES {
            return Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            ));
        }
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(self.partition)
                .key(key);
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if Instant::now() < deadline =>
                {
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Commits the open publish. Returns `false` when the partition was
    /// taken over meanwhile (its publish is void; the new owner's counts).
    fn commit(&self) -> Result<bool> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| anyhow!("changelog lock poisoned"))?;
        if open.is_none() {
            return Ok(true);
        }
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.producer.commit_transaction(CALL_TIMEOUT) {
                Ok(()) => break Ok(true),
                Err(e) if self.fenced_by(&e) => {
                    self.fence();
                    break Ok(false);
                }
                Err(KafkaError::Transaction(t)) if t.is_retriable() && attempt < 5 => {
                    std::thread::sleep(Duration::from_millis(100 * attempt));
                }
                Err(e) => {
                    let _ = self.producer.abort_transaction(CALL_TIMEOUT);
                    break Err(anyhow!(
                        "committing the changelog transaction of partition {} (`{}`): {e}",
                        self.partition,
                        self.id
                    ));
                }
            }
        };
        *open = None;
        self.closed.notify_all();
        result
    }
}

/// The producers of one run, one per source partition, shared by its
/// stages, and the transactions waiting for their checkpoint to commit:
/// the coordinator commits them before the sources commit their offsets.
pub struct Writers {
    spec: ChangelogSpec,
    by_partition: Mutex<std::collections::BTreeMap<i32, Arc<Writer>>>,
    pending: Mutex<Vec<Arc<Writer>>>,
    /// What the source holds now.
    held: Arc<HeldPartitions>,
    /// One read back at a time across the stages: the reader's buffers are
    /// counted once (`CHANGELOG_READ_BYTES`).
    reading: Mutex<()>,
    /// Partitions whose producer was let go, and the assignment it had.
    retired: Mutex<std::collections::BTreeMap<i32, u64>>,
}

impl Writers {
    pub fn new(spec: &ChangelogSpec, held: Arc<HeldPartitions>) -> Self {
        Self {
            spec: spec.clone(),
            by_partition: Mutex::new(std::collections::BTreeMap::new()),
            pending: Mutex::new(Vec::new()),
            held,
            reading: Mutex::new(()),
            retired: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Where the source says what it holds.
    pub fn held(&self) -> Arc<HeldPartitions> {
        self.held.clone()
    }

    /// Whether the source holds `partition` under `assignment` now.
    pub fn holds(&self, partition: i32, assignment: u64) -> bool {
        self.held.get(partition) == Some(assignment)
    }

    /// Lets go of `partition`'s producer (its state was dropped after a
    /// revoke; an open transaction keeps it until the coordinator commits
    /// it), remembering the assignment, so that no event of it takes the
    /// partition over again.
    pub fn forget(&self, partition: i32, assignment: u64) {
        if let Ok(mut ws) = self.by_partition.lock() {
            if ws
                .get(&partition)
                .is_some_and(|w| w.assignment == assignment)
            {
                ws.remove(&partition);
                if let Ok(mut r) = self.retired.lock() {
                    r.insert(partition, assignment);
                }
            }
        }
    }

    /// The producer of `partition` under `assignment`: the one already
    /// opened for it (another stage took the partition over first), or a
    /// new one, whose `init_transactions` fences every earlier writer of
    /// the partition, here or in another member. `None`: the events were
    /// read under an assignment that has ended here, or name a partition
    /// the source does not hold (headers a plugin rewrote): they must not
    /// take a partition over from its owner.
    fn take_over(&self, partition: i32, assignment: u64) -> Result<Option<Arc<Writer>>> {
        let mut writers = self
            .by_partition
            .lock()
            .map_err(|_| anyhow!("changelog lock poisoned"))?;
        let last = writers
            .get(&partition)
            .map(|w| (w.assignment, w.is_fenced()))
            .or_else(|| {
                self.retired
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&partition).map(|a| (*a, true)))
            });
        match last {
            Some((a, false)) if a == assignment => {
                return Ok(writers.get(&partition).cloned());
            }
            Some((a, true)) if a == assignment && self.holds(partition, assignment) => bail!(
                "the changelog producer of partition {partition} was fenced while this member holds the partition (a transaction that outlived `transaction.timeout.ms`, or another member of the group writing it); the run stops so that no offset is committed past the state"
            ),
            Some((a, _)) if a >= assignment => return Ok(None),
            _ => {}
        }
        // Only the first stage to meet an assignment gets here: the source
        // must hold the partition under it.
        if !self.holds(partition, assignment) {
            return Ok(None);
        }
        let id = format!("sluice-changelog-{}-{partition}", self.spec.group_id);
        let producer: BaseProducer<Quiet> = client_config(&self.spec)
            .set("transactional.id", &id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            // A transaction stays open from a barrier until the checkpoint
            // commits; Kafka's default (a minute) would abort one behind a
            // slow sink.
            .set(
                "transaction.timeout.ms",
                TXN_TIMEOUT.as_millis().to_string(),
            )
            .set(
                "message.max.bytes",
                (MAX_RECORD_BYTES + (64 << 10)).to_string(),
            )
            .set(
                "queue.buffering.max.kbytes",
                PRODUCER_QUEUE_KBYTES.to_string(),
            )
            .create_with_context(Quiet)
            .context("creating the changelog's producer")?;
        producer
            .init_transactions(CALL_TIMEOUT)
            .with_context(|| format!("taking over transactional id `{id}`"))?;
        if let Some(old) = writers.get(&partition) {
            old.fence();
        }
        let w = Arc::new(Writer {
            producer,
            id,
            partition,
            assignment,
            open: Mutex::new(None),
            closed: Condvar::new(),
            fenced: std::sync::atomic::AtomicBool::new(false),
        });
        writers.insert(partition, w.clone());
        Ok(Some(w))
    }

    fn pending(&self, w: &Arc<Writer>) {
        if let Ok(mut ws) = self.pending.lock() {
            ws.push(w.clone());
        }
    }

    /// Commits every transaction begun for checkpoint `id` or before. A
    /// partition taken over meanwhile is logged and left to its new owner.
    pub fn commit_upto(&self, id: u64) -> Result<()> {
        let due: Vec<Arc<Writer>> = match self.pending.lock() {
            Ok(mut ws) => {
                let (due, rest) = std::mem::take(&mut *ws).into_iter().partition(|w| {
                    w.open
                        .lock()
                        .map(|o| o.is_some_and(|at| at <= id))
                        .unwrap_or(false)
                });
                *ws = rest;
                due
            }
            Err(_) => bail!("changelog lock poisoned"),
        };
        let started = Instant::now();
        for w in &due {
            if !w.commit()? {
                if self.holds(w.partition, w.assignment) {
                    // Its offsets would be committed past the state.
                    bail!(
                        "the changelog transaction of partition {} (`{}`) was fenced while this member holds the partition; the run stops so that no offset is committed past the state",
                        w.partition,
                        w.id
                    );
                }
                tracing::warn!(transactional_id = %w.id, partition = w.partition, checkpoint = id, "changelog: the partition was taken over by another member; its last publish here is void");
            }
        }
        if !due.is_empty() {
            tracing::debug!(
                checkpoint = id,
                partitions = due.len(),
                micros = started.elapsed().as_micros() as u64,
                "changelog transactions committed"
            );
        }
        Ok(())
    }
}

/// A writer whose producer points nowhere: creating one connects to
/// nothing, for tests that never send.
#[cfg(test)]
pub(crate) fn idle_writer(partition: i32) -> Arc<Writer> {
    Arc::new(tests::writer_for(partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        writer_for(0)
    }

    pub(super) fn writer_for(partition: i32) -> Writer {
        let producer: BaseProducer<Quiet> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create_with_context(Quiet)
            .expect("producer");
        Writer {
            producer,
            id: "test".into(),
            partition,
            assignment: 1,
            open: Mutex::new(None),
            closed: Condvar::new(),
            fenced: std::sync::atomic::AtomicBool::new(false),
        }
    }

    #[test]
    fn an_entry_past_the_record_limit_is_refused_before_it_is_sent() {
        let w = writer();
        let big = vec![0u8; MAX_RECORD_BYTES];
        let e = w.send("t", b"ek", Some(&big)).expect_err("too large");
        assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::MessageSizeTooLarge)
        );
        assert!(!w.fenced_by(&e), "too large is not a take-over");
    }

    #[test]
    fn only_a_take_over_counts_as_fencing() {
        let w = writer();
        assert!(w.fenced_by(&KafkaError::MessageProduction(
            RDKafkaErrorCode::ProducerFenced
        )));
        assert!(fencing(Some(RDKafkaErrorCode::Fenced)));
        assert!(!fencing(Some(RDKafkaErrorCode::MessageSizeTooLarge)));
        // A fatal error of a producer that was not fenced is not taken for one.
        assert!(!w.fenced_by(&KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)));
    }

    #[test]
    fn a_partition_is_taken_over_only_while_held_and_never_under_an_ended_assignment() {
        let spec = ChangelogSpec {
            brokers: "127.0.0.1:9".into(),
            security: Vec::new(),
            group_id: "g".into(),
            topic: "t".into(),
        };
        let held = Arc::new(HeldPartitions::default());
        let writers = Writers::new(&spec, held.clone());
        // Not held (revoked before any stage took it over, or a header a
        // plugin rewrote): no producer is made, no owner fenced.
        assert!(writers.take_over(3, 1).expect("no error").is_none());
        // Held under 2 with a live producer: every stage joins it; events
        // of an ended assignment never take it back.
        held.set(std::collections::BTreeMap::from([(0, 2)]));
        let w = Arc::new(Writer {
            assignment: 2,
            ..writer_for(0)
        });
        writers
            .by_partition
            .lock()
            .expect("lock")
            .insert(0, w.clone());
        let joined = writers.take_over(0, 2).expect("no error").expect("joined");
        assert!(Arc::ptr_eq(&joined, &w));
        assert!(writers.take_over(0, 1).expect("no error").is_none());
        // Fenced while the source still holds it: the run must stop before
        // offsets commit past the state.
        w.fence();
        let Err(e) = writers.take_over(0, 2) else {
            panic!("fenced while held must stop the run");
        };
        assert!(
            e.to_string().contains("fenced while this member holds"),
            "{e}"
        );
        // Revoked, then let go: its events stay stale.
        held.set(std::collections::BTreeMap::new());
        assert!(writers.take_over(0, 2).expect("no error").is_none());
        writers.forget(0, 2);
        assert!(writers.by_partition.lock().expect("lock").is_empty());
        assert!(writers.take_over(0, 2).expect("no error").is_none());
    }

    #[test]
    fn a_changelog_topic_is_named_after_the_group_and_the_stage() {
        assert_eq!(topic_name("orders-agg", "w"), "orders-agg-w-changelog");
    }
}
