//! Hands records on in timestamp order across a source's partitions.
//!
//! librdkafka returns a partition's records a fetched chunk at a time, so a
//! backlog of several partitions comes out with event time jumping back at
//! every chunk, and a window downstream would find most of it late. As Kafka
//! Streams does within a task, the source holds what it fetched per
//! partition and hands on the record with the smallest timestamp, holding
//! everything back while a partition that holds nothing may still have
//! older records on the broker (it is behind its high watermark), for at
//! most a bounded wait each time. Within a partition the order is the log's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Tp;

/// A record's decoded key and value.
pub(super) type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A record's undecodable bytes and why they did not decode.
pub(super) type Undecodable = (Vec<u8>, String);

/// A record fetched but not handed on yet.
pub(super) struct Held {
    pub offset: i64,
    pub timestamp_ms: i64,
    /// The decoded key and value, or the undecodable bytes and why.
    pub body: Result<KeyValue, Undecodable>,
    /// The record's own headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The records held per partition.
#[derive(Default)]
pub(super) struct TimeOrder {
    queues: BTreeMap<Tp, VecDeque<Held>>,
    len: usize,
    /// Since when an empty partition behind its watermark has held the
    /// others back; it stops holding once that is older than the wait.
    waiting: HashMap<Tp, Instant>,
}

impl TimeOrder {
    /// Records held, over every partition.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, tp: &Tp, held: Held) {
        self.waiting.remove(tp);
        match self.queues.get_mut(tp) {
            Some(q) => q.push_back(held),
            None => {
                self.queues.insert(tp.clone(), VecDeque::from([held]));
            }
        }
        self.len += 1;
    }

    /// Forgets a revoked partition's records: its new owner reads them.
    pub fn forget(&mut self, tp: &Tp) {
        if let Some(q) = self.queues.remove(tp) {
            self.len -= q.len();
        }
        self.waiting.remove(tp);
    }

    /// The held record with the smallest timestamp (the lower partition on a
    /// tie), unless a partition of `assigned` holding nothing is `behind`
    /// (the broker has records for it not fetched yet) and has held the
    /// others back for less than `wait`. `full`: hand on regardless (the
    /// held records reached their bound).
    pub fn next<'a>(
        &mut self,
        assigned: impl IntoIterator<Item = &'a Tp>,
        behind: impl Fn(&Tp) -> bool,
        wait: Duration,
        full: bool,
    ) -> Option<(Tp, Held)> {
        let tp = self
            .queues
            .iter()
            .filter_map(|(tp, q)| q.front().map(|h| (h.timestamp_ms, tp)))
            .min()
            .map(|(_, tp)| tp.clone())?;
        if !full {
            let now = Instant::now();
            for other in assigned {
                if self.queues.get(other).is_some_and(|q| !q.is_empty()) {
                    continue;
                }
                if !behind(other) {
                    self.waiting.remove(other);
                    continue;
                }
                let since = *self.waiting.entry(other.clone()).or_insert(now);
                if now.duration_since(since) < wait {
                    return None;
                }
            }
        }
        let q = self.queues.get_mut(&tp)?;
        let held = q.pop_front()?;
        self.len -= 1;
        Some((tp, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(offset: i64, ts: i64) -> Held {
        Held {
            offset,
            timestamp_ms: ts,
            body: Ok((None, Some(offset.to_string().into_bytes()))),
            headers: Vec::new(),
        }
    }

    fn tp(p: i32) -> Tp {
        ("t".to_string(), p)
    }

    fn drain(o: &mut TimeOrder, assigned: &[Tp]) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        while let Some((tp, h)) = o.next(assigned, |_| false, Duration::ZERO, false) {
            out.push((tp.1, h.timestamp_ms));
        }
        out
    }

    #[test]
    fn chunks_of_several_partitions_come_out_in_time_order_each_partition_in_log_order() {
        let mut o = TimeOrder::default();
        for (i, ts) in [10, 20, 30, 40].into_iter().enumerate() {
            o.push(&tp(0), held(i as i64, ts));
        }
        for (i, ts) in [15, 25, 25, 50].into_iter().enumerate() {
            o.push(&tp(1), held(i as i64, ts));
        }
        assert_eq!(o.len(), 8);
        assert_eq!(
            drain(&mut o, &[tp(0), tp(1)]),
            [
                (0, 10),
                (1, 15),
                (0, 20),
                (1, 25),
                (1, 25),
                (0, 30),
                (0, 40),
                (1, 50)
            ]
        );
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn an_empty_partition_behind_its_watermark_holds_the_others_back_for_the_wait_only() {
        let mut o = TimeOrder::default();
        o.push(&tp(0), held(0, 100));
        let assigned = [tp(0), tp(1)];
        let behind = |t: &Tp| t.1 == 1;
        assert!(
            o.next(&assigned, behind, Duration::from_secs(60), false)
                .is_none(),
            "partition 1 may hold older records"
        );
        assert!(
            o.next(&assigned, behind, Duration::from_secs(60), true)
                .is_some(),
            "full: handed on regardless"
        );
        o.push(&tp(0), held(1, 200));
        assert!(
            o.next(&assigned, behind, Duration::ZERO, false).is_some(),
            "waited long enough"
        );
        o.push(&tp(0), held(2, 300));
        assert!(
            o.next(&assigned, |_| false, Duration::from_secs(60), false)
                .is_some(),
            "a partition read to its watermark holds nothing back"
        );
    }

    #[test]
    fn a_revoked_partition_is_forgotten_with_its_records() {
        let mut o = TimeOrder::default();
        o.push(&tp(0), held(0, 5));
        o.push(&tp(1), held(0, 1));
        o.push(&tp(1), held(1, 2));
        o.forget(&tp(1));
        assert_eq!(o.len(), 1);
        assert_eq!(drain(&mut o, &[tp(0)]), [(0, 5)]);
    }
}
