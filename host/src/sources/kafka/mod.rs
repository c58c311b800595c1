//! `kafka` source: an rdkafka consumer in a consumer group, or (with
//! `assign: all`) one that reads every partition itself.
//!
//! - Each record becomes an event: the Kafka key, headers and timestamp map
//!   directly; `sluice.topic`, `sluice.partition` and `sluice.offset` headers
//!   say where it came from. Values (and optionally keys) are decoded from
//!   JSON, Kafka Connect JSON with schema, or Confluent-framed Avro into the
//!   JSON events flow in; a body that does not decode goes to the dead-letter
//!   destination with the reason and its offset is passed like any other.
//! - The position is the next offset per (topic, partition). Offsets are
//!   committed to the group only in [`Source::committed`], i.e. after every
//!   sink has acknowledged every event derived from them; never automatically.
//!   The group's committed offsets are what a restart (of this process or of
//!   another member taking over a partition) resumes from.
//! - Rebalances (eager protocol): on revoke, the partitions leave the
//!   position, and a checkpoint taken before the latest assignment is never
//!   committed (its offsets may be stale); events already
//!   handed on still flow to the sinks, and the new owner reads from the last
//!   committed offset, so a rebalance can duplicate but never lose. On
//!   assign, reading resumes from the committed offsets.
//! - Exactly-once (a downstream `kafka` sink with `delivery: exactly_once`):
//!   the source commits nothing itself; at each barrier it hands the sink its
//!   offsets and group membership ([`GroupProgress`]), which the sink
//!   commits inside its transaction. A rebalance that takes away a
//!   partition read since the last barrier is reported in the handoff, so
//!   the sink aborts rather than commit records the new owner reads again.
//! - `assign: all`: no group. The source assigns itself every partition of
//!   its topics (matched against the broker's metadata, again every
//!   [`METADATA_EVERY`] so partitions added later are read too) at the
//!   checkpoint's offsets, and commits nothing anywhere: the checkpoint is
//!   its only record. Every process of a scaled-out pipeline then holds the
//!   whole table it feeds, whichever stream partitions it is assigned.
//! - An unreachable broker at start fails after `connect_timeout_ms`; at
//!   run time librdkafka reconnects with backoff and errors are logged.

mod config;
mod order;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use serde_json::{json, Value};

pub use config::{Assign, KafkaSourceConfig, StartAt};

use order::{Held, TimeOrder};

use crate::clients::kafka::{ErrorLog, GroupProgress, Refusing, ERROR_LOG_WINDOW};
use crate::clients::kafka_diagnose::{forward_log, Refusals};
use crate::connector::{parse_source, ConfigIssue, SourceConfig, SourceContext, SourceKind};
use crate::connector::{Handoff, LagUnit, Malformed, Polled, Progress, Source};
use crate::event::BatchBuilder;
use crate::format::codec::{CodecError, Decoder};

type Tp = (String, i32);

/// How long one poll waits for the first record.
const POLL_WAIT: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Rebalances {
    /// Partitions this process has been assigned at least once.
    started: HashSet<Tp>,
    assigned: Vec<Tp>,
    revoked: Vec<Tp>,
    /// Assignments so far.
    generation: u64,
    /// What this member holds now, for the log: an incremental (cooperative)
    /// rebalance names only the partitions that change hands.
    holding: BTreeSet<Tp>,
}

/// Consumer callbacks: rebalances are recorded and applied on the next poll.
pub struct Ctx {
    source: String,
    /// Where a fresh pipeline starts partitions it has not read yet.
    fresh: Option<Offset>,
    log: Mutex<Rebalances>,
    errors: ErrorLog,
    refusals: Refusals,
    /// Under `state: changelog`: a revoke counts as a new assignment too,
    /// so a checkpoint taken before it (which may hold offsets of a
    /// partition whose state publish the new owner has voided) is never
    /// committed.
    revoke_is_new: bool,
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
            tracing::warn!(source = %self.source, "kafka: {line}{}", hint(&line));
        }
    }
}

/// What to do about a consumer error whose fix is not in its text.
fn hint(error: &str) -> &'static str {
    if error.contains("Inconsistent group protocol") {
        "; the group's members disagree on `partition.assignment.strategy`: eager (range or \
         roundrobin, librdkafka's default and earlier Sluice builds') against \
         cooperative-sticky (Sluice's default now), which one group cannot mix; stop the \
         other members first, or give every member the same strategy in `properties:`"
    } else {
        ""
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let parts: Vec<Tp> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut log = match self.log.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(start) = self.fresh {
                    for (t, p) in &parts {
                        if !log.started.contains(&(t.clone(), *p)) {
                            let _ = tpl.set_partition_offset(t, *p, start);
                        }
                    }
                }
                log.holding.extend(parts.iter().cloned());
                tracing::info!(source = %self.source, partitions = ?parts, holding = ?log.holding, "kafka: partitions assigned");
                log.started.extend(parts.iter().cloned());
                log.generation += 1;
                log.assigned.extend(parts);
                if cooperative {
                    base.incremental_assign(tpl)
                } else {
                    base.assign(tpl)
                }
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(source = %self.source, "kafka: rebalance error {err:?}; dropping the assignment");
                }
                for tp in &parts {
                    log.holding.remove(tp);
                }
                tracing::info!(source = %self.source, partitions = ?parts, holding = ?log.holding, "kafka: partitions revoked");
                if self.revoke_is_new && !parts.is_empty() {
                    log.generation += 1;
                }
                log.revoked.extend(parts);
                if cooperative {
                    base.incremental_unassign(tpl)
                } else {
                    base.unassign()
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(source = %self.source, "kafka: applying a rebalance: {e}");
        }
    }
}

/// A running `kafka` source.
pub struct KafkaSource {
    config: KafkaSourceConfig,
    name: String,
    origin: Arc<str>,
    consumer: Option<BaseConsumer<Ctx>>,
    value: Decoder,
    key: Decoder,
    /// Next offset to read per topic and partition this member holds.
    offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    assigned: HashSet<Tp>,
    /// Assignments seen; a position from an earlier one is never committed.
    generation: u64,
    /// Under `state: changelog`: the assignment count when each partition
    /// held was assigned, sent on as the `sluice.assignment` header so a
    /// stage knows a partition that came back (see `pipeline/partitioned.rs`).
    assigned_at: BTreeMap<String, BTreeMap<i32, u64>>,
    /// Under `state: changelog`: where the stages learn what is held.
    tells_held: Option<Arc<crate::connector::HeldPartitions>>,
    last_error: Option<Instant>,
    /// An exactly-once sink commits the offsets (see [`Source::handoff`]).
    hand_off: bool,
    /// Offsets at the last handoff: a partition revoked with a different
    /// offset now was read in the transaction still open.
    handed: BTreeMap<Tp, i64>,
    /// Partitions revoked after being read since the last handoff.
    revoked_mid_transaction: Vec<Tp>,
    /// Where the lag is reported.
    progress: Arc<Progress>,
    /// The resumed checkpoint's offsets (what the group committed), for the
    /// lag of partitions not read from since; dropped for a partition once
    /// it is revoked, since another member may have read on.
    resumed: BTreeMap<Tp, i64>,
    /// When the lag was last measured.
    lag_at: Option<Instant>,
    /// Each partition's (low, high) watermark at the first assignment: what
    /// existed when the source started, which tables fed by it must hold
    /// before the stages reading them run.
    ends: Option<BTreeMap<Tp, (i64, i64)>>,
    /// A poll found nothing for its whole wait after the ends were read
    /// and every assigned partition had been fetched: nothing more is there.
    idle_after_ends: bool,
    /// Caught up for good (or the ends could not be read).
    caught: bool,
    /// When the source subscribed, for a member that is never assigned a
    /// partition (more members than partitions).
    subscribed_at: Option<Instant>,
    /// Under `assign: all`: when the topics' partitions were last listed.
    listed_at: Option<Instant>,
    /// Under `assign: all`: topics named in `topics` that the broker did not
    /// have at the last listing (warned about once each).
    missing: HashSet<String>,
    /// Under `assign: all`: where each partition was first assigned, for one
    /// not read from yet when the assignment is replaced.
    starts: BTreeMap<Tp, Offset>,
    /// Records fetched and not handed on yet, handed on in time order.
    held: TimeOrder,
    /// Whether records go on in timestamp order across partitions: only
    /// when they reach a processor stage ([`KafkaSource::in_time_order`]).
    time_ordered: bool,
}

/// A record's decoded key and value, or its undecodable bytes and why.
type Decoded<'m> =
    std::result::Result<(Option<Cow<'m, [u8]>>, Option<Cow<'m, [u8]>>), (&'m [u8], String)>;

/// What one poll gathered: the batch, undecodable records, client errors,
/// and whether it was idle.
type PollParts = (BatchBuilder, Vec<Malformed>, Vec<String>, bool);

impl KafkaSource {
    /// A source per `config` named `name`.
    pub fn new(
        config: KafkaSourceConfig,
        name: &str,
        origin: Arc<str>,
        progress: Arc<Progress>,
    ) -> Self {
        let registry = config.schema_registry.as_deref();
        Self {
            value: Decoder::new(config.format, registry),
            key: Decoder::new(config.key_format, registry),
            config,
            name: name.to_string(),
            origin,
            consumer: None,
            offsets: BTreeMap::new(),
            assigned: HashSet::new(),
            assigned_at: BTreeMap::new(),
            tells_held: None,
            generation: 0,
            last_error: None,
            hand_off: false,
            handed: BTreeMap::new(),
            revoked_mid_transaction: Vec::new(),
            progress,
            lag_at: None,
            resumed: BTreeMap::new(),
            ends: None,
            idle_after_ends: false,
            caught: false,
            subscribed_at: None,
            listed_at: None,
            missing: HashSet::new(),
            starts: BTreeMap::new(),
            held: TimeOrder::default(),
            time_ordered: false,
        }
    }

    /// Under `state: changelog`: tells the stages which partitions it holds.
    pub fn holding_into(mut self, held: Option<Arc<crate::connector::HeldPartitions>>) -> Self {
        self.tells_held = held;
        self
    }

    /// Hands records on in timestamp order across partitions (see
    /// [`order`]). Only event time in a processor's state and timers needs
    /// it, and it costs about a third of a stateless pipeline's throughput,
    /// so the runner asks for it only for sources that reach a processor.
    pub fn in_time_order(mut self, on: bool) -> Self {
        self.time_ordered = on;
        self
    }

    /// Under `assign: all`: assigns every partition of the topics not yet
    /// assigned. A partition the checkpoint holds resumes at its offset; one
    /// it does not starts where `start` says if it existed at open (as a
    /// group member's partition without a committed offset does), and at its
    /// beginning if it appeared while running (all of it is new).
    fn assign_every_partition(&mut self, at_open: bool) {
        self.listed_at = Some(Instant::now());
        let Some(c) = &self.consumer else { return };
        let metadata = match c.fetch_metadata(None, END_OFFSETS_TIMEOUT) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(source = %self.name, "kafka: cannot list the topics' partitions ({e}); trying again in {} s", METADATA_EVERY.as_secs());
                return;
            }
        };
        let mut added = Vec::new();
        let mut seen = HashSet::new();
        let ours = self.config.matcher();
        for topic in metadata.topics() {
            if topic.error().is_some() || !ours(topic.name()) {
                continue;
            }
            seen.insert(topic.name());
            for p in topic.partitions() {
                let tp = (topic.name().to_string(), p.id());
                if self.assigned.contains(&tp) {
                    continue;
                }
                let offset = match self.resumed.get(&tp) {
                    Some(o) => Offset::Offset(*o),
                    None if at_open && self.config.start == StartAt::Latest => Offset::End,
                    None => Offset::Beginning,
                };
                added.push((tp, offset));
            }
        }
        for t in &self.config.topics {
            if !seen.contains(t.as_str()) && self.missing.insert(t.clone()) {
                tracing::warn!(source = %self.name, "kafka: topic `{t}` does not exist (yet); its partitions are read once it does");
            }
        }
        self.missing.retain(|t| !seen.contains(t.as_str()));
        if added.is_empty() {
            return;
        }
        // Without a group, librdkafka only replaces the whole assignment:
        // the partitions already held go in again at the next offset to read.
        let mut tpl = TopicPartitionList::new();
        let held = self.assigned.iter().map(|tp| {
            let at = self
                .next_offset(tp)
                .map(Offset::Offset)
                .or_else(|| self.starts.get(tp).copied())
                .unwrap_or(Offset::Beginning);
            (tp.clone(), at)
        });
        for ((topic, partition), at) in held.chain(added.iter().cloned()) {
            if let Err(e) = tpl.add_partition_offset(&topic, partition, at) {
                tracing::warn!(source = %self.name, "kafka: {topic}[{partition}] at {at:?}: {e}");
                return;
            }
        }
        match c.assign(&tpl) {
            Ok(()) => {
                let parts: Vec<&Tp> = added.iter().map(|(tp, _)| tp).collect();
                tracing::info!(source = %self.name, partitions = ?parts, "kafka: reading every partition (assign: all)");
                for (tp, at) in added {
                    self.starts.insert(tp.clone(), at);
                    self.assigned.insert(tp);
                }
            }
            Err(e) => {
                tracing::warn!(source = %self.name, "kafka: assigning every partition: {e}; trying again in {} s", METADATA_EVERY.as_secs())
            }
        }
    }

    /// Reads the watermarks of the partitions first assigned: the end a
    /// table fed by this source loads to. If the broker cannot say, the
    /// source counts as caught up at once, as it did before it could tell.
    fn read_ends(&mut self) {
        let Some(c) = &self.consumer else { return };
        let mut ends = BTreeMap::new();
        for (topic, partition) in &self.assigned {
            match c.fetch_watermarks(topic, *partition, END_OFFSETS_TIMEOUT) {
                Ok(w) => {
                    ends.insert((topic.clone(), *partition), w);
                }
                Err(e) => {
                    tracing::warn!(source = %self.name, "kafka: cannot read the end offsets of {topic}[{partition}] ({e}); tables fed by this source count as loaded now");
                    self.caught = true;
                    break;
                }
            }
        }
        tracing::debug!(source = %self.name, ends = ?ends, "kafka: end offsets at the first assignment");
        self.ends = Some(ends);
    }

    /// The next offset this source reads in `tp`, if known.
    fn next_offset(&self, tp: &Tp) -> Option<i64> {
        self.offsets
            .get(&tp.0)
            .and_then(|p| p.get(&tp.1))
            .or_else(|| self.resumed.get(tp))
            .copied()
    }

    fn consumer(&self) -> Result<&BaseConsumer<Ctx>> {
        self.consumer
            .as_ref()
            .context("the kafka source is not open")
    }

    fn apply_rebalances(&mut self) {
        let Some(c) = &self.consumer else { return };
        let mut log = match c.context().log.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        for tp in log.revoked.drain(..) {
            if let Some(parts) = self.offsets.get_mut(&tp.0) {
                let read = parts.remove(&tp.1);
                if self.hand_off && read.is_some() && read != self.handed.get(&tp).copied() {
                    self.revoked_mid_transaction.push(tp.clone());
                }
            }
            self.resumed.remove(&tp);
            self.held.forget(&tp);
            if let Some(parts) = self.assigned_at.get_mut(&tp.0) {
                parts.remove(&tp.1);
            }
            self.assigned.remove(&tp);
        }
        let generation = log.generation;
        for tp in log.assigned.drain(..) {
            self.assigned_at
                .entry(tp.0.clone())
                .or_default()
                .insert(tp.1, generation);
            self.assigned.insert(tp);
        }
        if let (Some(held), Some(topic)) = (&self.tells_held, self.config.topics.first()) {
            held.set(self.assigned_at.get(topic).cloned().unwrap_or_default());
        }
        self.generation = log.generation;
    }

    /// Reports the lag: for each assigned partition, the high watermark
    /// librdkafka last saw (its fetch responses carry it, so this asks the
    /// broker nothing) less the next offset to read.
    fn measure_lag(&mut self) {
        if self.lag_at.is_some_and(|t| t.elapsed() < LAG_EVERY) {
            return;
        }
        self.lag_at = Some(Instant::now());
        let Some(c) = &self.consumer else { return };
        // Partitions not read from yet: where the consumer will start.
        let positions = c.position().ok();
        let parts: Vec<(Option<i64>, Option<i64>)> = self
            .assigned
            .iter()
            .map(|(topic, partition)| {
                let next = self
                    .offsets
                    .get(topic)
                    .and_then(|p| p.get(partition))
                    .copied()
                    .or_else(|| self.resumed.get(&(topic.clone(), *partition)).copied())
                    .or_else(|| {
                        let e = positions.as_ref()?.find_partition(topic, *partition)?;
                        match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        }
                    });
                let high = cached_high_watermark(c, topic, *partition);
                (next, high)
            })
            .collect();
        if let Some(lag) = lag_of(&parts) {
            self.progress.set_lag(lag, LagUnit::Messages);
        }
    }

    /// Reads what the consumer has into the held records, up to `bound` of
    /// them, waiting up to `wait` for the first. True if it read any.
    fn fetch(&mut self, bound: usize, wait: Duration, errors: &mut Vec<String>) -> Result<bool> {
        let consumer = self
            .consumer
            .as_ref()
            .context("the kafka source is not open")?;
        let mut any = false;
        let mut wait = wait;
        while self.held.len() < bound && self.held.bytes() < HELD_MAX_BYTES {
            let Some(msg) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    errors.push(e.to_string());
                    break;
                }
            };
            any = true;
            let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
            let body = Self::decode_record((&mut self.key, &mut self.value), &self.name, &msg)
                .map(|(k, v)| (k.map(Cow::into_owned), v.map(Cow::into_owned)))
                .map_err(|(bytes, reason)| (bytes.to_vec(), reason));
            let headers = msg
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or(&[]).to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let held = Held {
                offset,
                timestamp_ms: msg.timestamp().to_millis().unwrap_or_else(now_ms),
                body,
                headers,
            };
            self.held.push(topic, partition, held);
        }
        Ok(any)
    }

    /// Hands on up to `max` held records in timestamp order (see [`order`]).
    fn hand_on(
        &mut self,
        max: usize,
        bound: usize,
        b: &mut BatchBuilder,
        malformed: &mut Vec<Malformed>,
    ) {
        let mut numbers = String::with_capacity(32);
        let mut assignment = String::with_capacity(20);
        let changelog = self.config.state == config::StateIn::Changelog;
        // Whether an empty partition is behind cannot change within one
        // call (nothing is fetched meanwhile, and one that empties here has
        // had its last offset set): `start` has it asked once per partition.
        self.held.start(&self.assigned);
        // Full at the start: this whole batch goes on (deciding per record
        // would hand on one record per poll once the first one is taken).
        let full = self.held.len() >= bound || self.held.bytes() >= HELD_MAX_BYTES;
        let hold_wait = Duration::from_millis(self.config.time_order_wait_ms);
        while b.len() + malformed.len() < max {
            let (offsets, resumed, consumer) = (&self.offsets, &self.resumed, &self.consumer);
            // Behind: the broker has records of it this source has not read
            // (or it has not been fetched from yet).
            let behind = |tp: &Tp| {
                let Some(c) = consumer else { return false };
                let next = offsets
                    .get(&tp.0)
                    .and_then(|p| p.get(&tp.1))
                    .or_else(|| resumed.get(tp))
                    .copied();
                match (next, cached_high_watermark(c, &tp.0, tp.1)) {
                    (Some(n), Some(high)) => n < high,
                    (None, Some(high)) => high > 0,
                    (_, None) => true,
                }
            };
            let Some((part, held)) = self.held.next(behind, hold_wait, full) else {
                break;
            };
            let (topic, partition) = self.held.tp(part);
            let partition = *partition;
            let offset = held.offset;
            read_up_to(&mut self.offsets, topic, partition, offset);
            let position = u64::try_from(offset).unwrap_or(0);
            let (key, value) = match held.body {
                Ok(kv) => kv,
                Err((bytes, reason)) => {
                    malformed.push(Malformed {
                        bytes,
                        reason,
                        position,
                    });
                    continue;
                }
            };
            let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(held.headers.len() + 3);
            for (k, v) in &held.headers {
                headers.push((k.as_str(), v.as_slice()));
            }
            push_origin(&mut headers, &mut numbers, topic, partition, offset);
            if changelog {
                // Revoked partitions' records were forgotten before this
                // call: what is handed on belongs to the current assignment.
                let at = self
                    .assigned_at
                    .get(topic.as_str())
                    .and_then(|p| p.get(&partition))
                    .copied()
                    .unwrap_or(self.generation);
                assignment.clear();
                let _ = write!(assignment, "{at}");
                headers.push(("sluice.assignment", assignment.as_bytes()));
            }
            b.push(
                key.as_deref(),
                value.as_deref(),
                &headers,
                held.timestamp_ms,
                position,
            );
        }
    }

    /// One batch in timestamp order across partitions (see [`order`]), for
    /// a source whose events reach a processor stage.
    fn poll_in_time_order(&mut self, max: usize) -> Result<PollParts> {
        let mut b = BatchBuilder::new(&self.origin, self.origin.clone(), max.min(4096));
        let mut malformed = Vec::new();
        let deadline = Instant::now() + POLL_WAIT;
        let mut errors = Vec::new();
        let mut fetched_any = false;
        let bound = max.saturating_mul(4).max(HELD_MIN);
        loop {
            // Wait for a record only while there is nothing to hand on.
            let wait = if b.is_empty() && malformed.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            fetched_any |= self.fetch(bound, wait, &mut errors)?;
            self.apply_rebalances();
            self.hand_on(max, bound, &mut b, &mut malformed);
            if !b.is_empty() || !malformed.is_empty() || !errors.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let idle = !fetched_any && self.held.len() == 0 && errors.is_empty();
        Ok((b, malformed, errors, idle))
    }

    /// One batch as librdkafka hands records over, for a source whose
    /// events reach no processor (transforms, sinks and tables need no order
    /// across partitions): nothing is held or copied.
    fn poll_as_fetched(&mut self, max: usize) -> Result<PollParts> {
        let mut b = BatchBuilder::new(&self.origin, self.origin.clone(), max.min(4096));
        let mut malformed = Vec::new();
        let deadline = Instant::now() + POLL_WAIT;
        let mut errors = Vec::new();
        let mut numbers = String::with_capacity(32);
        {
            let consumer = self
                .consumer
                .as_ref()
                .context("the kafka source is not open")?;
            while b.len() + malformed.len() < max {
                let wait = if b.is_empty() && malformed.is_empty() {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                let Some(msg) = consumer.poll(wait) else {
                    if wait.is_zero() {
                        break;
                    }
                    continue;
                };
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        errors.push(e.to_string());
                        break;
                    }
                };
                let topic = msg.topic();
                let partition = msg.partition();
                let offset = msg.offset();
                read_up_to(&mut self.offsets, topic, partition, offset);
                let position = u64::try_from(offset).unwrap_or(0);
                let (key, value) =
                    match Self::decode_record((&mut self.key, &mut self.value), &self.name, &msg) {
                        Ok(kv) => kv,
                        Err((bytes, reason)) => {
                            malformed.push(Malformed {
                                bytes: bytes.to_vec(),
                                reason,
                                position,
                            });
                            continue;
                        }
                    };
                let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(8);
                if let Some(hs) = msg.headers() {
                    for h in hs.iter() {
                        headers.push((h.key, h.value.unwrap_or(&[])));
                    }
                }
                push_origin(&mut headers, &mut numbers, topic, partition, offset);
                let ts = msg.timestamp().to_millis().unwrap_or_else(now_ms);
                b.push(key.as_deref(), value.as_deref(), &headers, ts, position);
            }
        }
        let idle = b.is_empty() && malformed.is_empty() && errors.is_empty();
        self.apply_rebalances();
        Ok((b, malformed, errors, idle))
    }

    /// A record's key and value through the source's formats (borrowed
    /// when they pass as they are), or the bytes that did not decode and why
    /// (the key's first). Takes the decoders rather than `self`, which the
    /// caller's consumer borrows.
    fn decode_record<'m>(
        (key_dec, value_dec): (&mut Decoder, &mut Decoder),
        name: &str,
        msg: &'m BorrowedMessage<'_>,
    ) -> Decoded<'m> {
        let whence = || format!("{}[{}]@{}", msg.topic(), msg.partition(), msg.offset());
        let value = match msg.payload() {
            None => Ok(None),
            Some(v) => Self::decode(value_dec, name, v)
                .map(|d| Some(d.map_or(Cow::Borrowed(v), Cow::Owned)))
                .map_err(|e| (v, format!("value at {}: {e}", whence()))),
        };
        let key = match msg.key() {
            None => Ok(None),
            Some(k) => Self::decode(key_dec, name, k)
                .map(|d| Some(d.map_or(Cow::Borrowed(k), Cow::Owned)))
                .map_err(|e| (k, format!("key at {}: {e}", whence()))),
        };
        match (key, value) {
            (Ok(k), Ok(v)) => Ok((k, v)),
            (Err(bad), _) | (_, Err(bad)) => Err(bad),
        }
    }

    fn warn_rate_limited(&mut self, message: String) {
        let now = Instant::now();
        if self
            .last_error
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
        {
            self.last_error = Some(now);
            tracing::warn!(source = %self.name, "kafka: {message} (librdkafka retries with backoff){}", hint(&message));
        }
    }

    /// Decodes with `dec`, retrying while the schema registry is unreachable.
    fn decode(dec: &mut Decoder, name: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut wait = Duration::from_millis(200);
        loop {
            match dec.decode(bytes) {
                Ok(v) => return Ok(v),
                Err(CodecError::Bad(m)) => return Err(m),
                Err(CodecError::Unavailable(m)) => {
                    tracing::warn!(source = %name, "{m}; retrying in {wait:?}");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Notes that `offset` of a partition was read: its next offset follows it.
fn read_up_to(
    offsets: &mut BTreeMap<String, BTreeMap<i32, i64>>,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    match offsets.get_mut(topic) {
        Some(parts) => {
            parts.insert(partition, offset + 1);
        }
        None => {
            offsets.insert(topic.to_string(), BTreeMap::from([(partition, offset + 1)]));
        }
    }
}

/// Appends the `sluice.topic`, `sluice.partition` and `sluice.offset`
/// headers; `numbers` holds the digits they point into, so no header
/// allocates.
fn push_origin<'a>(
    headers: &mut Vec<(&'a str, &'a [u8])>,
    numbers: &'a mut String,
    topic: &'a str,
    partition: i32,
    offset: i64,
) {
    numbers.clear();
    let _ = write!(numbers, "{partition}{offset}");
    let (partition_text, offset_text) = numbers.split_at(digits(i64::from(partition)));
    headers.push(("sluice.topic", topic.as_bytes()));
    headers.push(("sluice.partition", partition_text.as_bytes()));
    headers.push(("sluice.offset", offset_text.as_bytes()));
}

/// The high watermark librdkafka last saw for a partition, from its fetch
/// responses (`rd_kafka_get_watermark_offsets`: no request, unlike rdkafka's
/// `fetch_watermarks`, which this crate version does not wrap).
fn cached_high_watermark(c: &BaseConsumer<Ctx>, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `c` lives; the topic is a
    // NUL-terminated string that outlives the call; `low`/`high` are valid
    // for writes. The function only reads librdkafka's own state under its
    // locks.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            c.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// How often the lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// How long reading a partition's end offsets may take.
const END_OFFSETS_TIMEOUT: Duration = Duration::from_secs(10);
/// Records a source may hold while it hands them on in time order (or 4
/// polls' worth, if more): enough for a fetched chunk (1 MiB, librdkafka's
/// `max.partition.fetch.bytes`) of several partitions of small records, so
/// that the oldest of each is in view. With as many held, it hands on
/// without waiting for a partition that holds nothing.
const HELD_MIN: usize = 16_384;
/// Bytes a source may hold in time order, whatever the records' count: 16,384
/// records of a megabyte each would otherwise be 16 GiB outside librdkafka's
/// own bounded queue. Reaching it counts as full: what is held goes on.
pub(crate) const HELD_MAX_BYTES: usize = 64 << 20;
/// How often a source with `assign: all` lists its topics' partitions again.
const METADATA_EVERY: Duration = Duration::from_secs(10);

/// The summed lag of partitions given as (next offset, high watermark),
/// counting those where both are known; `None` if none is.
fn lag_of(parts: &[(Option<i64>, Option<i64>)]) -> Option<u64> {
    let mut known = false;
    let mut sum = 0u64;
    for (next, high) in parts {
        if let (Some(n), Some(h)) = (*next, *high) {
            if n >= 0 && h >= 0 {
                known = true;
                sum = sum.saturating_add(u64::try_from(h.saturating_sub(n)).unwrap_or(0));
            }
        }
    }
    known.then_some(sum)
}

/// Parses a position value into (topic, partition) → next offset.
fn parse_position(p: &Value) -> BTreeMap<Tp, i64> {
    let mut out = BTreeMap::new();
    if let Some(topics) = p.get("offsets").and_then(Value::as_object) {
        for (topic, parts) in topics {
            if let Some(parts) = parts.as_object() {
                for (part, off) in parts {
                    if let (Ok(p), Some(o)) = (part.parse::<i32>(), off.as_i64()) {
                        out.insert((topic.clone(), p), o);
                    }
                }
            }
        }
    }
    out
}

impl Source for KafkaSource {
    /// Caught up once every partition first assigned was read to the end
    /// it had then (or a poll after their first fetches found nothing):
    /// a table fed by this source then holds what the topics held at start.
    /// A member never assigned a partition has nothing to load.
    fn caught_up(&self) -> bool {
        if self.caught || self.idle_after_ends {
            return true;
        }
        match &self.ends {
            Some(ends) => ends.iter().all(|(tp, (low, high))| {
                high <= low || self.next_offset(tp).is_some_and(|n| n >= *high)
            }),
            None => self.subscribed_at.is_some_and(|t| {
                t.elapsed()
                    >= Duration::from_millis(self.config.session_timeout_ms.saturating_mul(3))
            }),
        }
    }

    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        let c = &self.config;
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &c.brokers)
            .set("client.id", format!("sluice-{}", self.name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                if c.start == StartAt::Latest {
                    "latest"
                } else {
                    "earliest"
                },
            )
            .set("session.timeout.ms", c.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (c.session_timeout_ms / 4).max(100).to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "5000")
            // Kafka's default (500 ms) is what an idle partition adds to the
            // latency of the next record on brokers that hold fetches that long.
            .set("fetch.wait.max.ms", "50")
            // librdkafka's default (1000 ms) is how long a partition waits
            // for its next fetch once its prefetch queue is full; a stage
            // that drains the queue faster than that then starves. Lowering
            // it took Kafka → filter → project → Kafka from ~140k to ~360k
            // events/s (docs/performance.md). It only applies while the
            // queue is full, so an idle source fetches no more often.
            .set("fetch.queue.backoff.ms", "50")
            // Incremental rebalancing: a member joining or leaving moves
            // only the partitions that change owner. librdkafka's default
            // (range, roundrobin) revokes every partition of every member,
            // and each restarts from its last committed offset: duplicates
            // for partitions that never moved.
            .set("partition.assignment.strategy", "cooperative-sticky");
        // librdkafka assigns partitions only to a consumer with a group id,
        // even a manual assignment that never joins the group nor commits to
        // it; `assign: all` does neither, so the id only has to be its own.
        let group = c.group().map_or_else(
            || format!("sluice-assign-all-{}-{}", self.name, std::process::id()),
            str::to_string,
        );
        cfg.set("group.id", group);
        for (k, v) in c.properties.iter() {
            cfg.set(k, v);
        }
        // Validated against `properties` (they agree); read the password file now.
        let security = c
            .security()
            .map_err(|i| anyhow::anyhow!("{}: {}", i.field, i.message))?;
        for (k, v) in security.settings() {
            cfg.set(k, v);
        }
        crate::clients::kafka_diagnose::keep_info_lines(&mut cfg);
        self.resumed = position.map(parse_position).unwrap_or_default();
        let fresh = match (position, c.start) {
            (None, StartAt::Earliest) => Some(Offset::Beginning),
            (None, StartAt::Latest) => Some(Offset::End),
            _ => None,
        };
        let ctx = Ctx {
            source: self.name.clone(),
            fresh,
            log: Mutex::new(Rebalances::default()),
            errors: ErrorLog::new(ERROR_LOG_WINDOW),
            refusals: Refusals::default(),
            revoke_is_new: self.config.state == config::StateIn::Changelog,
        };
        let consumer: BaseConsumer<Ctx> = cfg.create_with_context(ctx).map_err(|e| {
            crate::clients::kafka_diagnose::creation_error(
                e,
                format!("creating a Kafka consumer for {}", c.brokers),
            )
        })?;
        crate::clients::kafka::wait_for_brokers(
            consumer.client(),
            &c.brokers,
            c.connect_timeout_ms,
            &self.name,
            &security,
            // Not subscribed yet: this serves only logs and errors.
            &|| {
                for _ in 0..1000 {
                    if consumer.poll(Duration::ZERO).is_none() {
                        break;
                    }
                }
            },
        )?;
        let subs = c.subscription();
        match c.group() {
            Some(group) => {
                let refs: Vec<&str> = subs.iter().map(String::as_str).collect();
                consumer
                    .subscribe(&refs)
                    .with_context(|| format!("subscribing to {subs:?}"))?;
                tracing::info!(source = %self.name, topics = ?subs, group = %group, "kafka: subscribed");
                self.consumer = Some(consumer);
            }
            None => {
                self.consumer = Some(consumer);
                self.assign_every_partition(true);
            }
        }
        self.subscribed_at = Some(Instant::now());
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let (b, malformed, errors, idle) = if self.time_ordered {
            self.poll_in_time_order(max)?
        } else {
            self.poll_as_fetched(max)?
        };
        for e in errors {
            self.warn_rate_limited(e);
        }
        if self
            .listed_at
            .is_some_and(|t| t.elapsed() >= METADATA_EVERY)
        {
            self.assign_every_partition(false);
        }
        if self.ends.is_none() && !self.assigned.is_empty() && !self.caught {
            self.read_ends();
        } else if idle && self.ends.is_some() && !self.idle_after_ends {
            // Only once every partition has been fetched: before its first
            // fetch an idle poll says nothing about what is there.
            if let Some(c) = &self.consumer {
                self.idle_after_ends = self
                    .assigned
                    .iter()
                    .all(|(t, p)| cached_high_watermark(c, t, *p).is_some_and(|h| h >= 0));
            }
        }
        self.measure_lag();
        Ok(Polled {
            batch: (!b.is_empty()).then(|| b.finish()),
            malformed,
            done: false,
        })
    }

    fn position(&self) -> Value {
        let topics: serde_json::Map<String, Value> = self
            .offsets
            .iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(t, parts)| {
                let m: serde_json::Map<String, Value> = parts
                    .iter()
                    .map(|(p, o)| (p.to_string(), json!(o)))
                    .collect();
                (t.clone(), Value::Object(m))
            })
            .collect();
        json!({ "offsets": topics, "generation": self.generation })
    }

    /// Only in a group: the transaction commits offsets to the group.
    fn hand_off_progress(&mut self) -> bool {
        self.hand_off = self.config.group().is_some();
        self.hand_off
    }

    fn paused(&mut self) {
        self.measure_lag();
    }

    fn handoff(&mut self) -> Option<Handoff> {
        let offsets: Vec<(String, i32, i64)> = self
            .offsets
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, o)| (t.clone(), *p, *o)))
            .collect();
        self.handed = offsets
            .iter()
            .map(|(t, p, o)| ((t.clone(), *p), *o))
            .collect();
        Some(Arc::new(GroupProgress {
            source: self.name.clone(),
            group_id: self.config.group().unwrap_or_default().to_string(),
            group: self.consumer.as_ref().and_then(|c| c.group_metadata()),
            offsets,
            revoked: std::mem::take(&mut self.revoked_mid_transaction),
        }))
    }

    fn committed(&mut self, position: &Value) -> Result<()> {
        if self.hand_off {
            // The exactly-once sink committed these offsets in its transaction.
            return Ok(());
        }
        if self.config.group().is_none() {
            // `assign: all`: the durable checkpoint is the only record.
            return Ok(());
        }
        // A checkpoint taken before the latest assignment may hold offsets of
        // partitions now owned elsewhere, or of a topic the broker lost and
        // recreated; committing them could skip records. The next checkpoint
        // commits what this member read since.
        let generation = position.get("generation").and_then(Value::as_u64);
        if generation.is_some_and(|g| g != self.generation) {
            tracing::debug!(source = %self.name, "kafka: not committing a checkpoint from before the latest rebalance");
            return Ok(());
        }
        let offsets = parse_position(position);
        let mut tpl = TopicPartitionList::new();
        // Every partition in the position: its events are acknowledged (one
        // revoked since, without a new assignment, is what this member
        // finished; a commit behind its new owner only means duplicates).
        for ((t, p), o) in &offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .with_context(|| format!("offset {o} of {t}[{p}]"))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        match self.consumer()?.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                tracing::debug!(source = %self.name, offsets = ?offsets, "kafka: offsets committed")
            }
            // A rebalance or an unreachable broker: the next checkpoint commits
            // again; until then a restart re-reads (duplicates, no loss).
            Err(e) => {
                tracing::warn!(source = %self.name, "kafka: committing offsets failed: {e}; the next checkpoint retries")
            }
        }
        Ok(())
    }
}

/// Decimal digits of `n` (with its sign).
fn digits(n: i64) -> usize {
    let mut len = usize::from(n < 0) + 1;
    let mut m = n.unsigned_abs();
    while m >= 10 {
        m /= 10;
        len += 1;
    }
    len
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `kafka` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "kafka",
    summary: "records from Kafka topics, in a consumer group (or every partition)",
    parse: parse_source::<KafkaSourceConfig>,
};

impl SourceConfig for KafkaSourceConfig {
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        crate::clients::kafka_security::endpoints(&self.brokers, self.schema_registry.as_deref())
    }
    fn operator_only(&self) -> Result<(), ConfigIssue> {
        crate::clients::kafka_security::tenant_may_set(&self.properties)
    }
    fn client_buffers(&self) -> Option<crate::connector::ClientBuffers> {
        // Validation refused a property that does not parse; such a file never runs.
        let bytes = self.buffer_bytes().ok()?;
        let (bytes, made_of) = if self.state == config::StateIn::Changelog {
            (
                bytes + crate::clients::kafka_buffers::changelog_bytes(),
                crate::clients::kafka_buffers::CHANGELOG_CONSUMER_PARTS,
            )
        } else {
            (bytes, crate::clients::kafka_buffers::CONSUMER_PARTS)
        };
        Some(crate::connector::ClientBuffers {
            mb: bytes.div_ceil(1 << 20),
            made_of,
            field: "properties",
        })
    }

    fn check(&self) -> Result<(), ConfigIssue> {
        KafkaSourceConfig::check(self)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        crate::clients::kafka_security::resolve_paths(self.tls.as_mut(), self.sasl.as_mut(), base);
    }

    fn fingerprint_text(&self) -> String {
        let mut c = self.clone();
        c.tls = None;
        c.sasl = None;
        // Stripped before redaction, which would leave `<tuning>` in its
        // place. As printed before `assign` and `time_order_wait_ms` existed (when
        // `group_id` was a plain string), so the checkpoints of group members
        // still fit: neither changes what a position means.
        let mut text = format!("{c:?}")
            .replacen(", tls: None, sasl: None", "", 1)
            .replacen(
                &format!(", time_order_wait_ms: {}", c.time_order_wait_ms),
                "",
                1,
            );
        if let (Some(g), Assign::Group) = (&c.group_id, c.assign) {
            text = text.replacen(
                &format!("group_id: Some({g:?}), assign: Group"),
                &format!("group_id: {g:?}"),
                1,
            );
        }
        // As printed before `state` existed, when state was always local.
        let text = text.replacen(", state: Local", "", 1);
        crate::connector::fingerprint::redacted(&text)
    }

    fn changelog(&self) -> Option<crate::connector::ChangelogSpec> {
        if self.state != config::StateIn::Changelog {
            return None;
        }
        let security = self.security().ok()?;
        Some(crate::connector::ChangelogSpec {
            brokers: self.brokers.clone(),
            security: security
                .settings()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            group_id: self.group_id.clone()?,
            topic: self.topics.first()?.clone(),
        })
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(
            KafkaSource::new(
                self.clone(),
                cx.name,
                std::sync::Arc::from(cx.name),
                cx.progress,
            )
            .in_time_order(cx.reaches_processor)
            .holding_into(cx.held),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_group_mixing_assignment_protocols_is_explained() {
        // The text librdkafka gives when a cooperative member meets an eager one.
        let h = hint("JoinGroup failed: Broker: Inconsistent group protocol");
        assert!(h.contains("partition.assignment.strategy"), "{h}");
        assert!(h.contains("stop the other members first"), "{h}");
        assert_eq!(hint("Broker: Unknown topic or partition"), "");
    }

    use super::*;

    #[test]
    fn tls_and_sasl_stay_out_of_the_fingerprint() {
        let config = |extra: Value| -> KafkaSourceConfig {
            let mut v = json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"});
            if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            serde_json::from_value(v).expect("config")
        };
        let plain = config(json!({}));
        let secured = config(json!({
            "tls": {"mode": "verify-full"},
            "sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"}
        }));
        let text = SourceConfig::fingerprint_text(&secured);
        // As the configuration printed before it had the blocks, so older
        // checkpoints still fit.
        assert!(!text.contains("tls") && !text.contains("sasl"), "{text}");
        assert!(text.contains("group_id: \"g\""), "{text}");
        assert_eq!(text, SourceConfig::fingerprint_text(&plain));
    }

    fn parsed(v: Value) -> KafkaSourceConfig {
        serde_json::from_value(v).expect("config")
    }

    #[test]
    fn a_group_is_required_unless_every_partition_is_read_and_refused_then() {
        let issue = |v: Value| parsed(v).check().err().map(|i| (i.field, i.message));
        let (field, message) =
            issue(json!({"brokers": "x:1", "topics": ["t"]})).expect("no group refused");
        assert_eq!(field, "group_id");
        assert!(message.contains("`assign: all`"), "{message}");
        let (field, message) =
            issue(json!({"brokers": "x:1", "topics": ["t"], "assign": "all", "group_id": "g"}))
                .expect("a group with assign: all refused");
        assert_eq!(field, "group_id");
        assert!(
            message.starts_with("not used with `assign: all`"),
            "{message}"
        );
        let (field, _) =
            issue(json!({"brokers": "x:1", "topic_pattern": "orders-(", "assign": "all"}))
                .expect("a bad pattern refused");
        assert_eq!(field, "topic_pattern");
        assert_eq!(
            issue(json!({"brokers": "x:1", "topics": ["t"], "assign": "all"})),
            None
        );
        let bad: Result<KafkaSourceConfig, _> =
            serde_json::from_value(json!({"brokers": "x:1", "topics": ["t"], "assign": "some"}));
        assert!(bad.is_err());
        let (field, _) = issue(
            json!({"brokers": "x:1", "topics": ["t"], "group_id": "g", "time_order_wait_ms": 3_600_000}),
        )
        .expect("an hour's wait refused");
        assert_eq!(field, "time_order_wait_ms");
    }

    #[test]
    fn every_partition_is_matched_by_name_or_by_the_pattern_anchored_at_the_start() {
        let c = parsed(
            json!({"brokers": "x:1", "topics": ["people"], "topic_pattern": "orders-.*", "assign": "all"}),
        );
        assert!(c.matches("people"));
        assert!(c.matches("orders-eu"));
        assert!(!c.matches("old-orders-eu"), "anchored as librdkafka's are");
        assert!(!c.matches("peoples"));
        assert_eq!(c.group(), None);
    }

    #[test]
    fn a_source_reading_every_partition_cannot_hand_off_to_a_transaction() {
        let all = parsed(json!({"brokers": "x:1", "topics": ["t"], "assign": "all"}));
        let mut s = KafkaSource::new(all, "s", Arc::from("s"), Arc::default());
        assert!(!s.hand_off_progress(), "no group to commit offsets to");
        let grouped = parsed(json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"}));
        let mut s = KafkaSource::new(grouped, "s", Arc::from("s"), Arc::default());
        assert!(s.hand_off_progress());
    }

    #[test]
    fn a_group_members_fingerprint_is_as_before_assign_existed() {
        let text = SourceConfig::fingerprint_text(&parsed(
            json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"}),
        ));
        assert_eq!(
            text,
            "KafkaSourceConfig { brokers: \"x:1\", topics: [\"t\"], topic_pattern: None, group_id: \"g\", start: Committed, format: Json, key_format: Raw, schema_registry: None, connect_timeout_ms: <tuning>, session_timeout_ms: <tuning>, properties: {} }",
            "as session 14 printed it"
        );
        let text = SourceConfig::fingerprint_text(&parsed(
            json!({"brokers": "x:1", "topics": ["t"], "assign": "all"}),
        ));
        assert!(text.contains("group_id: None, assign: All"), "{text}");
    }

    #[test]
    fn state_in_a_changelog_needs_a_group_one_topic_and_a_group_id_fit_for_topic_names() {
        let ok = parsed(
            json!({"brokers": "x:1", "topics": ["t"], "group_id": "g.1_a-b", "state": "changelog"}),
        );
        assert!(ok.check().is_ok());
        let spec = SourceConfig::changelog(&ok).expect("a changelog");
        assert_eq!(
            (spec.group_id.as_str(), spec.topic.as_str()),
            ("g.1_a-b", "t")
        );
        let local = parsed(json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"}));
        assert!(SourceConfig::changelog(&local).is_none());
        // The producers and the restore are counted against the pipeline.
        let mb = |c: &KafkaSourceConfig| SourceConfig::client_buffers(c).map(|b| b.mb);
        assert_eq!(
            mb(&ok).zip(mb(&local)).map(|(a, b)| a - b),
            Some(crate::clients::kafka_buffers::changelog_bytes().div_ceil(1 << 20))
        );
        // Local and changelog state are different pipelines to a checkpoint.
        assert_ne!(
            SourceConfig::fingerprint_text(&ok),
            SourceConfig::fingerprint_text(&parsed(
                json!({"brokers": "x:1", "topics": ["t"], "group_id": "g.1_a-b"})
            ))
        );
        for (bad, field) in [
            (
                json!({"brokers": "x:1", "topics": ["t"], "assign": "all", "state": "changelog"}),
                "state",
            ),
            (
                json!({"brokers": "x:1", "topics": ["t", "u"], "group_id": "g", "state": "changelog"}),
                "state",
            ),
            (
                json!({"brokers": "x:1", "topic_pattern": "t.*", "group_id": "g", "state": "changelog"}),
                "state",
            ),
            (
                json!({"brokers": "x:1", "topics": ["t"], "group_id": "g/../x", "state": "changelog"}),
                "group_id",
            ),
            (
                json!({"brokers": "x:1", "topics": ["t"], "group_id": "g".repeat(181), "state": "changelog"}),
                "group_id",
            ),
        ] {
            let e = parsed(bad.clone()).check().expect_err(&bad.to_string());
            assert_eq!(e.field, field, "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_lag_sums_the_partitions_whose_position_and_watermark_are_known() {
        assert_eq!(lag_of(&[]), None);
        assert_eq!(lag_of(&[(None, Some(10)), (Some(3), None)]), None);
        // -1001 is librdkafka's "invalid offset".
        assert_eq!(lag_of(&[(Some(-1001), Some(10))]), None);
        assert_eq!(
            lag_of(&[(Some(3), Some(10)), (Some(5), Some(5)), (None, Some(7))]),
            Some(7)
        );
        // A position past the watermark (it moved since) is no lag, never
        // a negative one.
        assert_eq!(lag_of(&[(Some(12), Some(10)), (Some(0), Some(4))]), Some(4));
    }

    /// The stale-checkpoint guard: a checkpoint taken before the latest
    /// assignment commits nothing. The source here has no consumer, so a
    /// commit that got past the guard fails with "not open", which is how the
    /// test tells the two paths apart without a broker.
    #[test]
    fn a_checkpoint_from_before_the_latest_rebalance_commits_nothing() {
        let mut s = KafkaSource::new(
            serde_json::from_value(json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"}))
                .expect("config"),
            "k",
            Arc::from("k"),
            Arc::default(),
        );
        s.generation = 3;
        let offsets = json!({"t": {"0": 5}});
        let stale = json!({"offsets": offsets, "generation": 2});
        assert!(
            s.committed(&stale).is_ok(),
            "a stale checkpoint is skipped, not committed"
        );
        let current = json!({"offsets": offsets, "generation": 3});
        let err = s
            .committed(&current)
            .expect_err("a current checkpoint reaches the consumer");
        assert!(format!("{err:#}").contains("not open"), "{err:#}");
        // A checkpoint written before generations were recorded is committed.
        let old = json!({"offsets": offsets});
        assert!(s.committed(&old).is_err());
    }

    #[test]
    fn kafka_positions_round_trip() {
        let mut s = KafkaSource::new(
            serde_json::from_value(json!({"brokers": "x:1", "topics": ["t"], "group_id": "g"}))
                .expect("config"),
            "k",
            Arc::from("k"),
            Arc::default(),
        );
        s.offsets
            .insert("t".into(), BTreeMap::from([(0, 5), (2, 9)]));
        s.offsets.insert("u.v".into(), BTreeMap::from([(1, 1)]));
        let p = s.position();
        assert_eq!(
            p,
            json!({"offsets": {"t": {"0": 5, "2": 9}, "u.v": {"1": 1}}, "generation": 0})
        );
        assert_eq!(
            parse_position(&p),
            BTreeMap::from([
                (("t".into(), 0), 5),
                (("t".into(), 2), 9),
                (("u.v".into(), 1), 1)
            ])
        );
        assert_eq!(
            (
                digits(0),
                digits(7),
                digits(10),
                digits(-3),
                digits(123_456)
            ),
            (1, 1, 2, 2, 6)
        );
    }
}
