//! A processor stage's state split by source partition (`state: changelog`
//! on its `kafka` source): the events of each partition run against that
//! partition's own state, restored from the changelog topic the first time
//! the stage sees the partition under an assignment.
//!
//! Three headers the `kafka` source sets route an event: `sluice.partition`,
//! `sluice.offset`, and `sluice.assignment` (the consumer's assignment count
//! when the partition was assigned). The last value of each counts: the
//! source appends its own after the record's, which a producer could forge.
//! - An event of a newer assignment than the state held means the partition
//!   was revoked and assigned again meanwhile (another member may have moved
//!   its state on): the state is read back from the changelog.
//! - Events are dropped, and the partition's new owner reads them again,
//!   when they were read under an older assignment than the state held
//!   here, when another member has taken the partition over (this member's
//!   producer was fenced), or when taking the partition over would be
//!   needed while the source does not hold it under their assignment (the
//!   source tells, see `HeldPartitions`): events read before a revoke, or
//!   whose routing headers a plugin upstream rewrote, never take a
//!   partition over from its owner. Every stage decides alike, so their
//!   publishes cover the same events.
//! - A revoked partition's events still on their way are processed against
//!   its state as before, which is published as usual (a revoke voids the
//!   checkpoints taken before it, so its offsets are not committed here);
//!   at the second barrier after the revoke, which left the source behind
//!   them all, its state is dropped.
//! - An event below the offset the restored state has reached is already in
//!   it (the previous owner processed it and published before the group's
//!   offsets were committed): it is dropped.
//!
//! Event time is per partition too (Kafka Streams' stream time per task):
//! what closes a window of a partition depends on that partition's events
//! only, so results do not depend on how partitions are spread over members.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::changelog::{Changelog, Opened, Restored, Writer, MAX_PARTITIONS};
use crate::event::{Batch, EventView};
use crate::state::keyed::StateLimits;
use crate::state::KeyedState;

/// One partition's state and where it stands.
struct Part {
    state: KeyedState,
    assignment: u64,
    /// Events below this offset are in the restored state already.
    floor: i64,
    /// The offset after the last event processed.
    next_offset: i64,
    /// `next_offset` at the last publish.
    published: i64,
    writer: Arc<Writer>,
    /// The source was found not to hold it at a barrier: at the next, every
    /// event of it read before the revoke has arrived, and it is dropped.
    unheld: bool,
}

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub partition: i32,
    pub assignment: u64,
    pub offset: i64,
}

/// Reads the routing headers (the last of each name).
pub(crate) fn route(e: &EventView<'_>) -> Result<Route, String> {
    let (mut partition, mut offset, mut assignment) = (None, None, None);
    for (name, value) in e.headers() {
        match name {
            "sluice.partition" => partition = Some(value),
            "sluice.offset" => offset = Some(value),
            "sluice.assignment" => assignment = Some(value),
            _ => {}
        }
    }
    fn number<T: std::str::FromStr>(name: &str, v: Option<&[u8]>) -> Result<T, String> {
        let v = v.ok_or_else(|| {
            format!("state: changelog routes events by the `{name}` header the kafka source sets, and this event has none (does a stage upstream drop headers?)")
        })?;
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                format!(
                    "the `{name}` header holds {:?}, not a number",
                    String::from_utf8_lossy(&v[..v.len().min(32)])
                )
            })
    }
    let route = Route {
        partition: number("sluice.partition", partition)?,
        offset: number("sluice.offset", offset)?,
        assignment: number("sluice.assignment", assignment)?,
    };
    if route.partition < 0 || route.offset < 0 {
        return Err(format!(
            "partition {} offset {} is not a Kafka position",
            route.partition, route.offset
        ));
    }
    Ok(route)
}

/// A batch's events by (partition, assignment): (index, offset) each, in
/// the order they were read.
pub(crate) type Groups = BTreeMap<(i32, u64), Vec<(usize, i64)>>;

/// A stage's partitions.
pub(crate) struct Partitioned {
    pub changelog: Changelog,
    parts: BTreeMap<i32, Part>,
    limits: StateLimits,
}

/// What [`Partitioned::enter`] found.
pub(crate) enum Entered {
    /// The partition's state is in place; process events from `floor` on.
    Ready { floor: i64 },
    /// The events were read under an assignment that has ended here.
    Stale,
    /// The events name a partition the source topic does not have.
    Refused(String),
}

impl Partitioned {
    pub fn new(changelog: Changelog, limits: StateLimits) -> Self {
        Self {
            changelog,
            parts: BTreeMap::new(),
            limits,
        }
    }

    /// Groups a batch's event indices by (partition, assignment), in
    /// partition order and, within one, in the order they were read.
    pub fn split(batch: &Batch) -> (Groups, Vec<(usize, String)>) {
        let mut groups = Groups::new();
        let mut unroutable = Vec::new();
        for (i, e) in batch.iter().enumerate() {
            match route(&e) {
                Ok(r) => groups
                    .entry((r.partition, r.assignment))
                    .or_default()
                    .push((i, r.offset)),
                Err(reason) => unroutable.push((i, reason)),
            }
        }
        (groups, unroutable)
    }

    /// Makes `partition`'s state the one in `slot`, reading it back from the
    /// changelog when this is a new assignment of it. `slot` holds the
    /// stage's idle state between calls; [`Partitioned::leave`] puts it back.
    pub fn enter(
        &mut self,
        stage: &str,
        partition: i32,
        assignment: u64,
        slot: &mut KeyedState,
    ) -> Result<Entered> {
        match self.parts.get_mut(&partition) {
            Some(p) if p.assignment > assignment => return Ok(Entered::Stale),
            Some(p) if p.assignment == assignment => {
                if p.writer.is_fenced() {
                    return Ok(Entered::Stale);
                }
                let floor = p.floor;
                let budget = self.budget(partition);
                if let Some(p) = self.parts.get_mut(&partition) {
                    p.state.set_limits(budget);
                    std::mem::swap(slot, &mut p.state);
                }
                return Ok(Entered::Ready { floor });
            }
            _ => {}
        }
        // New here, or assigned again since (its state may have moved on).
        self.parts.remove(&partition);
        if self.parts.len() >= MAX_PARTITIONS {
            bail!(
                "stage `{stage}` would hold the state of more than {MAX_PARTITIONS} partitions of its source (each has its own changelog producer); run more members, or fewer partitions"
            );
        }
        let mut state = KeyedState::default();
        state.set_limits(self.budget(partition));
        let (writer, restored) = match self.changelog.open(partition, assignment, &mut state)? {
            Opened::Ready(writer, restored) => (writer, restored),
            Opened::Stale => return Ok(Entered::Stale),
            Opened::Refused(reason) => return Ok(Entered::Refused(reason)),
        };
        state.restored();
        log_restore(stage, &self.changelog.topic, partition, &restored, &state);
        let floor = restored.marker.map_or(0, |m| m.next_offset);
        let mut part = Part {
            state,
            assignment,
            floor,
            next_offset: floor,
            published: floor,
            writer,
            unheld: false,
        };
        std::mem::swap(slot, &mut part.state);
        self.parts.insert(partition, part);
        Ok(Entered::Ready { floor })
    }

    /// What `partition`'s state may hold: the stage's ceilings less what
    /// its other partitions hold, so the stage's state stays within them
    /// however many partitions it holds.
    fn budget(&self, partition: i32) -> StateLimits {
        let (mut bytes, mut entries, mut timers) = (0u64, 0u64, 0u64);
        for (p, part) in &self.parts {
            if *p != partition {
                let (b, e, t) = part.state.usage();
                bytes += b;
                entries += e;
                timers += t;
            }
        }
        StateLimits {
            bytes: self.limits.bytes.saturating_sub(bytes),
            entries: self.limits.entries.saturating_sub(entries),
            timers: self.limits.timers.saturating_sub(timers),
        }
    }

    /// Puts `partition`'s state back after a call, and the stage's idle
    /// state into `slot`; `next_offset` follows the last event processed.
    pub fn leave(&mut self, partition: i32, next_offset: Option<i64>, slot: &mut KeyedState) {
        if let Some(p) = self.parts.get_mut(&partition) {
            std::mem::swap(slot, &mut p.state);
            if let Some(n) = next_offset {
                p.next_offset = p.next_offset.max(n);
            }
        }
    }

    /// Begins each changed partition's publish for checkpoint `id`; a
    /// partition another member has taken over is dropped.
    pub fn publish(&mut self, stage: &str, id: u64) -> Result<usize> {
        let mut published = 0;
        let mut lost = Vec::new();
        for (partition, p) in &mut self.parts {
            if p.writer.is_fenced() {
                lost.push(*partition);
                continue;
            }
            if !p.state.has_changes() && p.next_offset == p.published {
                continue;
            }
            if self
                .changelog
                .publish(&p.writer, &mut p.state, p.next_offset, id)?
            {
                p.published = p.next_offset;
                published += 1;
            } else {
                lost.push(*partition);
            }
        }
        for partition in lost {
            tracing::info!(stage, partition, topic = %self.changelog.topic, "changelog: partition taken over by another member; its state here is dropped");
            self.parts.remove(&partition);
        }
        // Revoked partitions: their state belongs to the new owner, and no
        // longer counts against this stage's ceilings. Not at the first
        // barrier after the revoke: events read before it may still be on
        // their way (to this stage and to others, whose publishes must
        // cover the same events), but barriers are requested one at a time,
        // so the next one left the source after the revoke, behind them all.
        let mut revoked = Vec::new();
        for (partition, part) in &mut self.parts {
            if self.changelog.holds(*partition, part.assignment) {
                part.unheld = false;
            } else if part.unheld {
                revoked.push((*partition, part.assignment));
            } else {
                part.unheld = true;
            }
        }
        for (partition, assignment) in revoked {
            tracing::info!(
                stage,
                partition,
                "changelog: partition revoked; its state here is dropped"
            );
            self.parts.remove(&partition);
            self.changelog.forget(partition, assignment);
        }
        Ok(published)
    }
}

fn log_restore(stage: &str, topic: &str, partition: i32, r: &Restored, state: &KeyedState) {
    let (entries, bytes) = state.size();
    let mb = r.bytes as f64 / f64::from(1u32 << 20);
    let per_mb = if mb > 0.0 {
        r.millis as f64 / 1e3 / mb
    } else {
        0.0
    };
    tracing::info!(
        stage,
        partition,
        topic,
        records = r.records,
        read_bytes = r.bytes,
        entries,
        bytes,
        timers = state.timer_count(),
        next_offset = r.marker.map_or(0, |m| m.next_offset),
        ms = r.millis,
        fence_ms = r.fence_millis,
        "state restored from the changelog ({per_mb:.2} s/MB)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BatchBuilder;

    fn batch(headers: &[&[(&str, &str)]]) -> Batch {
        let mut b = BatchBuilder::new("s", Arc::from("s"), headers.len());
        for hs in headers {
            let hs: Vec<(&str, &[u8])> = hs.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            b.push(None, Some(b"{}"), &hs, 0, 0);
        }
        b.finish()
    }

    #[test]
    fn a_stage_holding_many_partitions_shares_its_ceilings_among_them() {
        let spec = crate::connector::ChangelogSpec {
            brokers: "127.0.0.1:9".into(),
            security: Vec::new(),
            group_id: "g".into(),
            topic: "t".into(),
        };
        let held = Arc::new(crate::connector::HeldPartitions::default());
        held.set(BTreeMap::from([(0, 1), (1, 1)]));
        let writers = Arc::new(super::super::changelog::Writers::new(&spec, held));
        let limits = StateLimits {
            bytes: 1_000,
            entries: 10,
            timers: 5,
        };
        let mut parts = Partitioned::new(Changelog::new(&spec, "w", writers), limits);
        for (partition, n) in [(0, 4u8), (1, 3)] {
            let mut state = KeyedState::default();
            for i in 0..n {
                state.put(vec![i], vec![0; 9], None);
                state.register(vec![i], 1);
            }
            state.commit();
            parts.parts.insert(
                partition,
                Part {
                    state,
                    assignment: 1,
                    floor: 0,
                    next_offset: 0,
                    published: 0,
                    writer: super::super::changelog::idle_writer(partition),
                    unheld: false,
                },
            );
        }
        // Partition 0 holds 4 entries of 10 bytes and 4 timers of 9 bytes
        // (76), partition 1 three of each (57).
        assert_eq!(
            parts.budget(0),
            StateLimits {
                bytes: 1_000 - 57,
                entries: 7,
                timers: 2
            }
        );
        assert_eq!(
            parts.budget(2),
            StateLimits {
                bytes: 1_000 - 76 - 57,
                entries: 3,
                timers: 0
            }
        );
        // In place, partition 0's writes past its share are refused.
        let mut slot = KeyedState::default();
        assert!(matches!(
            parts.enter("w", 0, 1, &mut slot).expect("enter"),
            Entered::Ready { floor: 0 }
        ));
        for i in 10..14u8 {
            slot.put(vec![i], vec![0; 9], None);
        }
        assert!(
            slot.breached().is_some(),
            "7 entries is partition 0's share"
        );
        slot.rollback();
        parts.leave(0, Some(5), &mut slot);
        assert!(
            matches!(
                parts.enter("w", 0, 0, &mut slot).expect("enter"),
                Entered::Stale
            ),
            "an older assignment's events are stale"
        );
    }

    #[test]
    fn events_are_grouped_by_partition_and_assignment_and_unroutable_ones_say_why() {
        let full = |p: &'static str, o: &'static str, a: &'static str| {
            vec![
                ("sluice.partition", p),
                ("sluice.offset", o),
                ("sluice.assignment", a),
            ]
        };
        let e0 = full("1", "10", "2");
        let e1 = full("0", "5", "2");
        let e2 = full("1", "11", "2");
        let e3 = full("1", "3", "4");
        // A forged header before the source's own: the last one counts.
        let mut e4 = vec![("sluice.partition", "9")];
        e4.extend(full("0", "6", "2"));
        let e5 = vec![("sluice.partition", "0"), ("sluice.offset", "7")];
        let e6 = full("x", "1", "1");
        let e7 = full("-1", "1", "1");
        let b = batch(&[&e0, &e1, &e2, &e3, &e4, &e5, &e6, &e7]);
        let (groups, bad) = Partitioned::split(&b);
        let got: Vec<_> = groups.into_iter().collect();
        assert_eq!(
            got,
            vec![
                ((0, 2), vec![(1, 5), (4, 6)]),
                ((1, 2), vec![(0, 10), (2, 11)]),
                ((1, 4), vec![(3, 3)]),
            ]
        );
        let bad: Vec<usize> = bad.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad, vec![5, 6, 7]);
        let (_, why) = Partitioned::split(&batch(&[&e5]));
        assert!(why[0].1.contains("sluice.assignment"), "{}", why[0].1);
    }
}
