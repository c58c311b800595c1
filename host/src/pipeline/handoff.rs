//! Exactly-once delivery's one shared piece: where a source leaves its
//! progress at each barrier for the sink that commits it inside its own
//! transaction (Kafka → Kafka with `send_offsets_to_transaction`).
//!
//! A source posts its handoff right after reporting its position for a
//! barrier, before the barrier goes downstream; a sink sees a barrier only
//! once it came through every input, so by then each upstream source has
//! posted for it. The board carries handoffs without knowing what they are.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{bail, Result};

use crate::connector::Handoff;

/// Barrier id, or `None` for the source's end.
type Key = (String, Option<u64>);

#[derive(Default)]
pub(crate) struct Handoffs {
    posted: Mutex<HashMap<Key, Handoff>>,
}

impl Handoffs {
    /// `source`'s progress at `barrier` (`None`: at its end).
    pub fn post(&self, source: &str, barrier: Option<u64>, handoff: Handoff) {
        let mut posted = match self.posted.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        posted.insert((source.to_string(), barrier), handoff);
    }

    /// What each of `sources` posted for `barrier`; a source that has ended
    /// since gives its final progress. One sink takes each source's
    /// handoffs, so a barrier's entries are removed as they are taken.
    pub fn take(&self, sources: &[String], barrier: Option<u64>) -> Result<Vec<Handoff>> {
        let mut posted = match self.posted.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        let mut out = Vec::with_capacity(sources.len());
        for s in sources {
            let at = barrier.and_then(|b| posted.remove(&(s.clone(), Some(b))));
            match at.or_else(|| posted.get(&(s.clone(), None)).cloned()) {
                Some(h) => out.push(h),
                None => bail!(
                    "source `{s}` handed off no progress for {}; an exactly-once commit needs it",
                    barrier.map_or("its end".to_string(), |b| format!("barrier {b}"))
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn value(h: &Handoff) -> u64 {
        *h.downcast_ref::<u64>().expect("u64")
    }

    #[test]
    fn handoffs_are_taken_once_per_barrier_and_an_ended_source_gives_its_last() {
        let board = Handoffs::default();
        let (a, b) = ("a".to_string(), "b".to_string());
        board.post("a", Some(1), Arc::new(10u64));
        board.post("b", Some(1), Arc::new(20u64));
        let got = board.take(&[a.clone(), b.clone()], Some(1)).expect("both");
        assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec![10, 20]);
        let Err(err) = board.take(std::slice::from_ref(&a), Some(1)) else {
            panic!("barrier 1 was taken already");
        };
        assert!(err.to_string().contains("barrier 1"), "{err}");
        board.post("a", None, Arc::new(11u64));
        board.post("b", Some(2), Arc::new(21u64));
        let got = board.take(&[a.clone(), b], Some(2)).expect("end stands in");
        assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec![11, 21]);
        let got = board.take(&[a], None).expect("end again");
        assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec![11]);
    }
}
