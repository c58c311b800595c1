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

use std::collections::{HashSet, VecDeque};
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

impl Held {
    /// Bytes it holds: key, value (or the undecodable bytes) and headers.
    pub fn size(&self) -> usize {
        let body = match &self.body {
            Ok((k, v)) => k.as_ref().map_or(0, Vec::len) + v.as_ref().map_or(0, Vec::len),
            Err((bytes, reason)) => bytes.len() + reason.len(),
        };
        body + self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
    }
}

/// The records held per partition.
///
/// Per record handed on, it costs one pass over the partitions (a handful,
/// usually) and no allocation or hashing: partitions live in a vector, a push
/// finds its partition from the previous push (records come in runs of one
/// partition), and whether an empty partition is behind is asked once per
/// [`TimeOrder::start`].
#[derive(Default)]
pub(super) struct TimeOrder {
    parts: Vec<Part>,
    len: usize,
    /// [`Held::size`] summed over the held records.
    bytes: usize,
    /// The partition the last push went to.
    last: usize,
}

struct Part {
    tp: Tp,
    queue: VecDeque<Held>,
    /// Assigned to this source (at the last [`TimeOrder::start`]).
    assigned: bool,
    /// Whether the broker holds records of it not fetched yet, once asked
    /// since the last [`TimeOrder::start`].
    behind: Option<bool>,
    /// Since when it has held the others back while empty and behind; it
    /// stops holding once that is older than the wait.
    waiting_since: Option<Instant>,
}

impl Part {
    fn new(tp: Tp, assigned: bool) -> Self {
        Part {
            tp,
            queue: VecDeque::new(),
            assigned,
            behind: None,
            waiting_since: None,
        }
    }
}

impl TimeOrder {
    /// Records held, over every partition.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held, over every partition ([`Held::size`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        let is = |p: &Part| p.tp.1 == partition && p.tp.0 == topic;
        if self.parts.get(self.last).is_some_and(is) {
            return Some(self.last);
        }
        self.parts.iter().position(is)
    }

    fn part(&mut self, topic: &str, partition: i32) -> usize {
        match self.find(topic, partition) {
            Some(i) => i,
            None => {
                self.parts
                    .push(Part::new((topic.to_string(), partition), false));
                self.parts.len() - 1
            }
        }
    }

    pub fn push(&mut self, topic: &str, partition: i32, held: Held) {
        let i = self.part(topic, partition);
        let part = &mut self.parts[i];
        part.waiting_since = None;
        self.bytes += held.size();
        part.queue.push_back(held);
        self.last = i;
        self.len += 1;
    }

    /// Forgets a revoked partition's records: its new owner reads them.
    pub fn forget(&mut self, tp: &Tp) {
        if let Some(i) = self.find(&tp.0, tp.1) {
            let part = self.parts.remove(i);
            self.len -= part.queue.len();
            self.bytes -= part.queue.iter().map(Held::size).sum::<usize>();
            self.last = 0;
        }
    }

    /// Starts handing on: notes which partitions are `assigned` now and
    /// forgets what was known of their watermarks.
    pub fn start<'a>(&mut self, assigned: impl IntoIterator<Item = &'a Tp>) {
        let assigned: HashSet<&Tp> = assigned.into_iter().collect();
        let mut marked = 0;
        for part in &mut self.parts {
            part.assigned = assigned.contains(&part.tp);
            part.behind = None;
            marked += usize::from(part.assigned);
        }
        // Partitions neither assigned nor holding anything are gone.
        self.parts.retain(|p| p.assigned || !p.queue.is_empty());
        if marked < assigned.len() {
            let known: HashSet<Tp> = self.parts.iter().map(|p| p.tp.clone()).collect();
            for tp in assigned.into_iter().filter(|tp| !known.contains(*tp)) {
                self.parts.push(Part::new(tp.clone(), true));
            }
        }
        self.last = 0;
    }

    /// The partition of a record [`TimeOrder::next`] returned.
    pub fn tp(&self, part: usize) -> &Tp {
        &self.parts[part].tp
    }

    /// The held record with the smallest timestamp (the lower partition on a
    /// tie) and its partition's index for [`TimeOrder::tp`], unless an
    /// assigned partition holding nothing is `behind` (the broker has
    /// records for it not fetched yet) and has held the others back for less
    /// than `wait`. `full`: hand on regardless (the held records reached
    /// their bound).
    pub fn next(
        &mut self,
        behind: impl Fn(&Tp) -> bool,
        wait: Duration,
        full: bool,
    ) -> Option<(usize, Held)> {
        let mut oldest: Option<(i64, usize)> = None;
        for (i, part) in self.parts.iter().enumerate() {
            if let Some(h) = part.queue.front() {
                let older = oldest
                    .is_none_or(|(ts, o)| (h.timestamp_ms, &part.tp) < (ts, &self.parts[o].tp));
                if older {
                    oldest = Some((h.timestamp_ms, i));
                }
            }
        }
        let (_, i) = oldest?;
        if !full {
            let mut now = None;
            for part in &mut self.parts {
                if !part.assigned || !part.queue.is_empty() {
                    continue;
                }
                let is_behind = *part.behind.get_or_insert_with(|| behind(&part.tp));
                if !is_behind {
                    part.waiting_since = None;
                    continue;
                }
                let now = *now.get_or_insert_with(Instant::now);
                let since = *part.waiting_since.get_or_insert(now);
                if now.duration_since(since) < wait {
                    return None;
                }
            }
        }
        let held = self.parts[i].queue.pop_front()?;
        self.len -= 1;
        self.bytes -= held.size();
        Some((i, held))
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
        o.start(assigned);
        let mut out = Vec::new();
        while let Some((i, h)) = o.next(|_| false, Duration::ZERO, false) {
            out.push((o.tp(i).1, h.timestamp_ms));
        }
        out
    }

    #[test]
    fn chunks_of_several_partitions_come_out_in_time_order_each_partition_in_log_order() {
        let mut o = TimeOrder::default();
        for (i, ts) in [10, 20, 30, 40].into_iter().enumerate() {
            o.push("t", 0, held(i as i64, ts));
        }
        for (i, ts) in [15, 25, 25, 50].into_iter().enumerate() {
            o.push("t", 1, held(i as i64, ts));
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
        o.push("t", 0, held(0, 100));
        let assigned = [tp(0), tp(1)];
        let behind = |t: &Tp| t.1 == 1;
        o.start(&assigned);
        assert!(
            o.next(behind, Duration::from_secs(60), false).is_none(),
            "partition 1 may hold older records"
        );
        assert!(
            o.next(behind, Duration::from_secs(60), true).is_some(),
            "full: handed on regardless"
        );
        o.push("t", 0, held(1, 200));
        assert!(
            o.next(behind, Duration::ZERO, false).is_some(),
            "waited long enough"
        );
        o.push("t", 0, held(2, 300));
        // A new hand-on asks the watermarks again.
        o.start(&assigned);
        assert!(
            o.next(|_| false, Duration::from_secs(60), false).is_some(),
            "a partition read to its watermark holds nothing back"
        );
    }

    #[test]
    fn a_partition_is_asked_whether_it_is_behind_once_per_hand_on() {
        let mut o = TimeOrder::default();
        for i in 0..5 {
            o.push("t", 0, held(i, i * 10));
        }
        let asked = std::cell::Cell::new(0);
        let behind = |_: &Tp| {
            asked.set(asked.get() + 1);
            false
        };
        o.start(&[tp(0), tp(1), tp(2)]);
        let mut n = 0;
        while o.next(behind, Duration::from_secs(60), false).is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        assert_eq!(asked.get(), 2, "partitions 1 and 2, once each");
    }

    #[test]
    fn partitions_neither_assigned_nor_holding_records_are_dropped_at_start() {
        let mut o = TimeOrder::default();
        o.push("t", 0, held(0, 1));
        o.start(&[tp(0), tp(1)]);
        assert_eq!(o.parts.len(), 2);
        assert!(o.next(|_| false, Duration::ZERO, false).is_some());
        // Partition 0 revoked without being forgotten (empty), 1 kept.
        o.start(&[tp(1)]);
        assert_eq!(o.parts.len(), 1);
        assert_eq!(o.parts[0].tp, tp(1));
    }

    #[test]
    fn held_bytes_count_keys_values_and_headers_and_go_down_as_records_leave() {
        let mut o = TimeOrder::default();
        let big = Held {
            offset: 0,
            timestamp_ms: 1,
            body: Ok((Some(vec![0; 10]), Some(vec![0; 1000]))),
            headers: vec![("h".into(), vec![0; 5])],
        };
        o.push("t", 0, big);
        o.push("t", 1, held(0, 2));
        assert_eq!(o.bytes(), 10 + 1000 + 1 + 5 + 1);
        o.start(&[tp(0), tp(1)]);
        assert!(o.next(|_| false, Duration::ZERO, false).is_some());
        assert_eq!(o.bytes(), 1, "the big one left");
        o.forget(&tp(1));
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn a_revoked_partition_is_forgotten_with_its_records() {
        let mut o = TimeOrder::default();
        o.push("t", 0, held(0, 5));
        o.push("t", 1, held(0, 1));
        o.push("t", 1, held(1, 2));
        o.forget(&tp(1));
        assert_eq!(o.len(), 1);
        assert_eq!(drain(&mut o, &[tp(0)]), [(0, 5)]);
    }
}
