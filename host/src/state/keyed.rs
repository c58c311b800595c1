//! Keyed state and event-time timers of one processor stage.
//!
//! Writes made during a plugin call go to a pending overlay that is applied
//! only when the call succeeds. A call that traps (and is retried on a split
//! batch) therefore leaves no half-applied state behind, and a count is never
//! incremented twice for one event.
//!
//! The whole state is saved at every checkpoint barrier, next to the
//! checkpoint it belongs to, and restored from the checkpoint a restart
//! resumes from, so state and source positions always match.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    /// Expires once the watermark passes this event time.
    expires_at: Option<i64>,
}

/// One stage's state.
#[derive(Debug, Default)]
pub struct KeyedState {
    entries: BTreeMap<Vec<u8>, Entry>,
    timers: BTreeSet<(i64, Vec<u8>)>,
    watermark: Option<i64>,
    pending: BTreeMap<Vec<u8>, Option<Entry>>,
    pending_timers: Vec<(bool, i64, Vec<u8>)>,
}

const MAGIC: &[u8; 8] = b"SLUICEST";

impl KeyedState {
    /// The current watermark (`i64::MIN` before any event).
    pub fn watermark(&self) -> i64 {
        self.watermark.unwrap_or(i64::MIN)
    }

    /// Moves the watermark forward (never back) and drops expired entries.
    pub fn advance(&mut self, to: i64) {
        if self.watermark.is_some_and(|w| w >= to) {
            return;
        }
        self.watermark = Some(to);
        self.entries
            .retain(|_, e| e.expires_at.is_none_or(|at| at > to));
    }

    /// A value, seeing this call's own writes.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.pending.get(key) {
            Some(Some(e)) => Some(e.value.clone()),
            Some(None) => None,
            None => self.entries.get(key).map(|e| e.value.clone()),
        }
    }

    /// Writes `value`; with `ttl_ms`, it expires that long after the watermark.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl_ms: Option<u64>) {
        let expires_at = ttl_ms.map(|t| {
            self.watermark()
                .max(0)
                .saturating_add(i64::try_from(t).unwrap_or(i64::MAX))
        });
        self.pending.insert(key, Some(Entry { value, expires_at }));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.pending.insert(key, None);
    }

    /// Entries under `prefix` in key order, at most `limit`, seeing this call's writes.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for (k, e) in self
            .entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            merged.insert(k, Some(&e.value));
        }
        for (k, e) in self
            .pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            merged.insert(k, e.as_ref().map(|e| e.value.as_slice()));
        }
        merged
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_vec(), v?.to_vec())))
            .take(limit)
            .collect()
    }

    /// Asks for a timer at event time `at`.
    pub fn register(&mut self, key: Vec<u8>, at: i64) {
        self.pending_timers.push((true, at, key));
    }

    /// Cancels a timer.
    pub fn cancel(&mut self, key: Vec<u8>, at: i64) {
        self.pending_timers.push((false, at, key));
    }

    /// Applies this call's writes.
    pub fn commit(&mut self) {
        for (k, e) in std::mem::take(&mut self.pending) {
            match e {
                Some(e) => {
                    self.entries.insert(k, e);
                }
                None => {
                    self.entries.remove(&k);
                }
            }
        }
        for (add, at, key) in std::mem::take(&mut self.pending_timers) {
            if add {
                self.timers.insert((at, key));
            } else {
                self.timers.remove(&(at, key));
            }
        }
    }

    /// Forgets this call's writes (the call failed).
    pub fn rollback(&mut self) {
        self.pending.clear();
        self.pending_timers.clear();
    }

    /// Removes and returns the timers at or before the watermark, oldest first.
    pub fn due_timers(&mut self, limit: usize) -> Vec<(i64, Vec<u8>)> {
        let w = self.watermark();
        let mut due = Vec::new();
        while due.len() < limit {
            match self.timers.first() {
                Some((at, _)) if *at <= w => {
                    if let Some(t) = self.timers.pop_first() {
                        due.push(t);
                    }
                }
                _ => break,
            }
        }
        due
    }

    /// Puts back timers whose call failed, so they fire again.
    pub fn restore_timers(&mut self, timers: Vec<(i64, Vec<u8>)>) {
        self.timers.extend(timers);
    }

    /// Number of entries and their key+value bytes.
    pub fn size(&self) -> (usize, usize) {
        (
            self.entries.len(),
            self.entries
                .iter()
                .map(|(k, e)| k.len() + e.value.len())
                .sum(),
        )
    }

    /// Pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Saves everything committed to `path` (atomically: temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut buf = Vec::with_capacity(64 + self.size().1);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&self.watermark().to_le_bytes());
        buf.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (k, e) in &self.entries {
            put_bytes(&mut buf, k);
            put_bytes(&mut buf, &e.value);
            buf.extend_from_slice(&e.expires_at.unwrap_or(i64::MIN).to_le_bytes());
        }
        buf.extend_from_slice(&(self.timers.len() as u64).to_le_bytes());
        for (at, k) in &self.timers {
            buf.extend_from_slice(&at.to_le_bytes());
            put_bytes(&mut buf, k);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&buf)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    /// Loads what [`KeyedState::save`] wrote.
    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .with_context(|| format!("opening stage state {}", path.display()))?
            .read_to_end(&mut bytes)?;
        let mut r = Reader { b: &bytes, at: 0 };
        if r.take(8)? != MAGIC {
            bail!("{} is not a Sluice stage state file", path.display());
        }
        let mut s = KeyedState::default();
        let w = r.i64()?;
        s.watermark = (w != i64::MIN).then_some(w);
        for _ in 0..r.u64()? {
            let k = r.bytes()?;
            let value = r.bytes()?;
            let exp = r.i64()?;
            s.entries.insert(
                k,
                Entry {
                    value,
                    expires_at: (exp != i64::MIN).then_some(exp),
                },
            );
        }
        for _ in 0..r.u64()? {
            let at = r.i64()?;
            s.timers.insert((at, r.bytes()?));
        }
        Ok(s)
    }
}

/// Where stage `stage` keeps its state for checkpoint `id`.
pub fn state_file(state_dir: &Path, stage: &str, id: u64) -> PathBuf {
    state_dir
        .join("stages")
        .join(stage)
        .join(format!("{id}.state"))
}

/// Removes a stage's state files older than checkpoint `keep_from`.
pub fn prune(state_dir: &Path, stage: &str, keep_from: u64) {
    let dir = state_dir.join("stages").join(stage);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".state"))
            .and_then(|n| n.parse::<u64>().ok());
        if id.is_some_and(|id| id < keep_from) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else {
            bail!("stage state file is truncated");
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = usize::try_from(self.u64()?)?;
        Ok(self.take(n)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_calls_leave_no_trace() {
        let mut s = KeyedState::default();
        s.put(b"a".to_vec(), b"1".to_vec(), None);
        assert_eq!(
            s.get(b"a"),
            Some(b"1".to_vec()),
            "a call sees its own writes"
        );
        s.rollback();
        assert_eq!(s.get(b"a"), None);
        s.put(b"a".to_vec(), b"2".to_vec(), None);
        s.register(b"t".to_vec(), 10);
        s.commit();
        assert_eq!(s.get(b"a"), Some(b"2".to_vec()));
        s.delete(b"a".to_vec());
        assert_eq!(s.get(b"a"), None);
        s.rollback();
        assert_eq!(s.get(b"a"), Some(b"2".to_vec()));
        assert_eq!(s.timer_count(), 1);
    }

    #[test]
    fn scan_ttl_timers_and_round_trip() {
        let mut s = KeyedState::default();
        s.advance(100);
        s.put(b"w:1".to_vec(), b"x".to_vec(), None);
        s.put(b"w:2".to_vec(), b"y".to_vec(), Some(50));
        s.put(b"z".to_vec(), b"z".to_vec(), None);
        s.register(b"k".to_vec(), 120);
        s.commit();
        s.delete(b"w:1".to_vec());
        assert_eq!(s.scan(b"w:", 10), vec![(b"w:2".to_vec(), b"y".to_vec())]);
        s.commit();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_file(dir.path(), "agg", 3);
        s.save(&path).expect("save");
        let mut back = KeyedState::load(&path).expect("load");
        assert_eq!(back.get(b"w:2"), Some(b"y".to_vec()));
        assert_eq!(back.watermark(), 100);
        assert!(back.due_timers(10).is_empty());
        back.advance(160);
        assert_eq!(back.get(b"w:2"), None, "expired at 150");
        assert_eq!(back.due_timers(10), vec![(120, b"k".to_vec())]);
        prune(dir.path(), "agg", 4);
        assert!(!path.exists());
    }
}
