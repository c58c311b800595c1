//! One partition's keyed state as records of a compacted Kafka changelog
//! topic, and back.
//!
//! Record keys say what a record is, so compaction keeps the latest of each:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `e` + state key | expiry (i64 LE, `i64::MIN`: none) + value | an entry |
//! | `t` + time (i64 BE) + timer key | empty | a pending timer |
//! | `m` | JSON [`Marker`] | where the state stands in the source partition |
//! | `r` | `1` | a full copy follows: forget everything before |
//!
//! A deleted entry or a fired timer is a tombstone (no value). Each publish
//! is one Kafka transaction ending with the marker, so a reader that sees a
//! marker has seen every record it covers, and never a half-written publish.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::{timer_size, Changes, Entry, KeyedState};

/// Where a partition's state stands: every event of the source partition
/// below `next_offset` is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The source offset after the last event in the state.
    pub next_offset: i64,
    /// The partition's watermark.
    pub watermark: Option<i64>,
    /// Whether the plugin has asked for time (see [`KeyedState::keeps_time`]).
    pub keeps_time: bool,
}

/// The marker record's key.
pub const MARKER_KEY: &[u8] = b"m";
const RESET_KEY: &[u8] = b"r";

/// A record to publish: (key, value; `None` is a tombstone).
pub type Record<'a> = (&'a [u8], Option<&'a [u8]>);

impl KeyedState {
    /// Hands what changed since the last publish to `emit`, as changelog
    /// records: each changed entry and timer, or (when more changed than
    /// was worth remembering) a reset and a full copy. Then forgets the
    /// changes. The caller adds the marker.
    pub fn publish_changes(
        &mut self,
        emit: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut key = Vec::new();
        let mut value = Vec::new();
        let changes = std::mem::take(&mut self.changes);
        if changes.overflow {
            emit((RESET_KEY, Some(b"1")))?;
            for (k, e) in &self.entries {
                entry_record(&mut key, &mut value, k, Some(e));
                emit((&key, Some(&value)))?;
            }
            for (at, k) in self.timers.iter().chain(self.deferred.iter()) {
                timer_key(&mut key, *at, k);
                emit((&key, Some(b"")))?;
            }
        } else {
            for k in &changes.keys {
                let e = self.entries.get(k);
                entry_record(&mut key, &mut value, k, e);
                emit((&key, e.map(|_| value.as_slice())))?;
            }
            for t in &changes.timers {
                let pending = self.timers.contains(t) || self.deferred.contains(t);
                timer_key(&mut key, t.0, &t.1);
                emit((&key, pending.then_some(b"".as_slice())))?;
            }
        }
        self.changes = Changes::default();
        Ok(())
    }

    /// What the state holds against its ceilings: (bytes of keys, values
    /// and timer keys; entries; pending timers).
    pub fn usage(&self) -> (u64, u64, u64) {
        (
            u64::try_from(self.bytes + self.timer_bytes).unwrap_or(0),
            self.entries.len() as u64,
            (self.timers.len() + self.deferred.len()) as u64,
        )
    }

    /// Whether anything changed since the last publish.
    pub fn has_changes(&self) -> bool {
        let c = &self.changes;
        c.overflow || !c.keys.is_empty() || !c.timers.is_empty()
    }

    /// The marker a publish ends with.
    pub fn marker(&self, next_offset: i64) -> Marker {
        Marker {
            next_offset,
            watermark: self.watermark,
            keeps_time: self.keeps_time,
        }
    }

    /// Applies one record read back from the changelog; returns the marker
    /// when it is one. Fails on a record Sluice did not write, or when the
    /// state outgrows the stage's ceilings (another pipeline's limits may
    /// have been larger, or the topic was written to by something else).
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Option<Marker>> {
        match key.split_first() {
            Some((b'e', k)) => {
                if let Some(old) = self.entries.remove(k) {
                    self.bytes -= Entry::size(k, Some(&old));
                }
                if let Some(v) = value {
                    let (exp, v) = v
                        .split_first_chunk::<8>()
                        .ok_or_else(|| anyhow!("an entry record holds {} bytes, fewer than its 8-byte expiry", v.len()))?;
                    let exp = i64::from_le_bytes(*exp);
                    let e = Entry {
                        value: v.to_vec(),
                        expires_at: (exp != i64::MIN).then_some(exp),
                    };
                    self.bytes += Entry::size(k, Some(&e));
                    self.entries.insert(k.to_vec(), e);
                }
            }
            Some((b't', rest)) => {
                let (at, k) = rest
                    .split_first_chunk::<8>()
                    .ok_or_else(|| anyhow!("a timer record's key holds {} bytes, fewer than its 8-byte time", rest.len()))?;
                let t = (i64::from_be_bytes(*at), k.to_vec());
                if value.is_some() {
                    if self.timers.insert(t) {
                        self.timer_bytes += timer_size(k);
                    }
                } else if self.timers.remove(&t) {
                    self.timer_bytes -= timer_size(k);
                }
            }
            Some((b'm', [])) => {
                let v = value.ok_or_else(|| anyhow!("the marker record is a tombstone"))?;
                let m: Marker = serde_json::from_slice(v)
                    .map_err(|e| anyhow!("the marker record is not a Sluice marker: {e}"))?;
                self.watermark = m.watermark;
                self.keeps_time = m.keeps_time || self.keeps_time;
                return Ok(Some(m));
            }
            Some((b'r', [])) => {
                self.entries.clear();
                self.timers.clear();
                self.bytes = 0;
                self.timer_bytes = 0;
            }
            _ => bail!(
                "a record keyed {:?} is not one Sluice writes (was the topic written to by something else?)",
                String::from_utf8_lossy(&key[..key.len().min(32)])
            ),
        }
        let (bytes, entries, timers) = (
            u64::try_from(self.bytes + self.timer_bytes).unwrap_or(0),
            self.entries.len() as u64,
            self.timers.len() as u64,
        );
        let l = self.limits;
        if bytes > l.bytes || entries > l.entries || timers > l.timers {
            bail!(
                "the state read back holds {bytes} bytes, {entries} entries and {timers} timers, past the stage's ceilings ({} bytes, {} entries, {} timers)",
                l.bytes,
                l.entries,
                l.timers
            );
        }
        Ok(None)
    }

    /// After the last record: what the restored state shows about time.
    pub fn restored(&mut self) {
        let marked = self.keeps_time;
        self.note_kept_time();
        self.keeps_time |= marked;
        self.changes = Changes::default();
    }
}

fn entry_record(key: &mut Vec<u8>, value: &mut Vec<u8>, k: &[u8], e: Option<&Entry>) {
    key.clear();
    key.push(b'e');
    key.extend_from_slice(k);
    value.clear();
    if let Some(e) = e {
        value.extend_from_slice(&e.expires_at.unwrap_or(i64::MIN).to_le_bytes());
        value.extend_from_slice(&e.value);
    }
}

fn timer_key(key: &mut Vec<u8>, at: i64, k: &[u8]) {
    key.clear();
    key.push(b't');
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    fn publish(s: &mut KeyedState, log: &mut Log, next_offset: i64) {
        s.publish_changes(&mut |(k, v)| {
            log.push((k.to_vec(), v.map(<[u8]>::to_vec)));
            Ok(())
        })
        .expect("publish");
        let m = serde_json::to_vec(&s.marker(next_offset)).expect("marker");
        log.push((MARKER_KEY.to_vec(), Some(m)));
    }

    /// What Kafka's compaction leaves: the latest record of each key, in
    /// the order they were written.
    fn compact(log: &Log) -> Log {
        let mut out: Log = Vec::new();
        for (k, v) in log {
            out.retain(|(k2, _)| k2 != k);
            out.push((k.clone(), v.clone()));
        }
        out
    }

    fn read_back(log: &Log) -> (KeyedState, Option<Marker>) {
        let mut s = KeyedState::default();
        let mut marker = None;
        for (k, v) in log {
            if let Some(m) = s.apply_record(k, v.as_deref()).expect("apply") {
                marker = Some(m);
            }
        }
        s.restored();
        (s, marker)
    }

    type Dump = (Vec<(Vec<u8>, Entry)>, Vec<(i64, Vec<u8>)>, i64);

    fn dump(s: &KeyedState) -> Dump {
        (
            s.entries
                .iter()
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect(),
            s.timers.iter().cloned().collect(),
            s.bytes + s.timer_bytes,
        )
    }

    #[test]
    fn puts_deletes_expiries_and_timers_read_back_as_written_before_and_after_compaction() {
        let mut s = KeyedState::default();
        let mut log = Log::new();
        s.put(b"a".to_vec(), b"1".to_vec(), None);
        s.put(b"b".to_vec(), b"2".to_vec(), Some(60_000));
        s.register(b"w1".to_vec(), 1_000);
        s.register(b"w2".to_vec(), 2_000);
        s.commit();
        s.advance(500);
        publish(&mut s, &mut log, 10);
        s.delete(b"a".to_vec());
        s.put(b"c".to_vec(), b"3".to_vec(), None);
        s.commit();
        s.advance(1_500);
        let fired = s.due_timers(10);
        assert_eq!(fired, vec![(1_000, b"w1".to_vec())]);
        assert!(s.has_changes());
        publish(&mut s, &mut log, 20);
        assert!(!s.has_changes(), "a publish forgets what it published");
        for log in [log.clone(), compact(&log)] {
            let (back, marker) = read_back(&log);
            assert_eq!(dump(&back), dump(&s));
            assert_eq!(back.watermark(), 1_500);
            assert!(back.keeps_time(), "an expiring entry and timers keep time");
            assert_eq!(marker.map(|m| m.next_offset), Some(20));
        }
    }

    #[test]
    fn a_full_copy_after_too_many_changes_forgets_what_came_before_it() {
        let mut s = KeyedState::default();
        let mut log = Log::new();
        s.put(b"gone".to_vec(), b"x".to_vec(), None);
        s.commit();
        publish(&mut s, &mut log, 1);
        s.delete(b"gone".to_vec());
        s.commit();
        // More changed than is worth remembering: the next publish is a
        // reset and a full copy, which cannot name `gone` to delete it.
        for i in 0..5_000u32 {
            s.put(i.to_be_bytes().to_vec(), b"v".to_vec(), None);
            s.commit();
            s.delete(i.to_be_bytes().to_vec());
            s.commit();
        }
        s.put(b"kept".to_vec(), b"y".to_vec(), None);
        s.commit();
        assert!(s.changes.overflow);
        publish(&mut s, &mut log, 2);
        for log in [log.clone(), compact(&log)] {
            let (back, _) = read_back(&log);
            assert_eq!(dump(&back), dump(&s), "only `kept` is left");
        }
    }

    #[test]
    fn records_sluice_did_not_write_and_state_past_the_ceilings_are_refused() {
        let mut s = KeyedState::default();
        for (k, v) in [
            (b"x".as_slice(), Some(b"1".as_slice())),
            (b"e".as_slice(), Some(b"short".as_slice())),
            (b"tshort".as_slice(), Some(b"".as_slice())),
            (b"m".as_slice(), Some(b"{not json".as_slice())),
            (b"m".as_slice(), None),
            (b"".as_slice(), None),
        ] {
            assert!(s.apply_record(k, v).is_err(), "{k:?} {v:?}");
        }
        let mut small = KeyedState::default();
        small.set_limits(super::super::StateLimits {
            bytes: 100,
            entries: 2,
            timers: 1,
        });
        let mut value = i64::MIN.to_le_bytes().to_vec();
        value.extend_from_slice(b"v");
        assert!(small.apply_record(b"ea", Some(&value)).is_ok());
        assert!(small.apply_record(b"eb", Some(&value)).is_ok());
        let err = small
            .apply_record(b"ec", Some(&value))
            .expect_err("a third entry is past the ceiling");
        assert!(err.to_string().contains("ceilings"), "{err}");
    }
}
