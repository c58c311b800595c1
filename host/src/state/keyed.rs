//! Keyed state and event-time timers of one processor stage.
//!
//! Writes made during a plugin call go to a pending overlay that is applied
//! only when the call succeeds. A call that traps (and is retried on a split
//! batch) therefore leaves no half-applied state behind, and a count is never
//! incremented twice for one event.
//!
//! State is saved at every checkpoint barrier, next to the checkpoint it
//! belongs to, and restored from the checkpoint a restart resumes from, so
//! state and source positions always match. A save writes only what changed
//! since the previous one (a delta) on top of an occasional full copy (a
//! base): see [`delta`].
//!
//! The stage's ceilings (state bytes, entries, timers) are checked when a
//! plugin writes: a write past one is refused and the call is marked breached
//! ([`KeyedState::breached`]), so the processor fails that call and rolls
//! its writes back. Timers a plugin registers while timers fire, at or before
//! the time being fired, wait for the next watermark advance: a plugin that
//! re-registers what fires cannot keep one advance going forever.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::plugin::Limits;

mod changelog;
mod delta;

pub use changelog::{Marker, Record, MARKER_KEY};
pub use delta::{load_saved, Saved};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    /// Expires once the watermark passes this event time.
    expires_at: Option<i64>,
}

fn timer_size(key: &[u8]) -> i64 {
    key.len() as i64 + 8
}

impl Entry {
    fn size(key: &[u8], e: Option<&Entry>) -> i64 {
        e.map_or(0, |e| (key.len() + e.value.len()) as i64)
    }
}

/// The ceilings of one stage's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Key + value bytes.
    pub bytes: u64,
    /// Entries.
    pub entries: u64,
    /// Pending timers.
    pub timers: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        let l = Limits::default();
        Self::from(&l)
    }
}

impl From<&Limits> for StateLimits {
    fn from(l: &Limits) -> Self {
        Self {
            bytes: l.state_mb.saturating_mul(1 << 20),
            entries: l.state_entries,
            timers: l.timers,
        }
    }
}

/// One stage's state.
#[derive(Debug, Default)]
pub struct KeyedState {
    entries: BTreeMap<Vec<u8>, Entry>,
    timers: BTreeSet<(i64, Vec<u8>)>,
    watermark: Option<i64>,
    pending: BTreeMap<Vec<u8>, Option<Entry>>,
    pending_timers: Vec<(bool, i64, Vec<u8>)>,
    limits: StateLimits,
    /// Key + value bytes of `entries`.
    bytes: i64,
    /// Key bytes (+ 8 for the time) of `timers` and `deferred`: timer keys
    /// count against the byte ceiling too.
    timer_bytes: i64,
    /// What `pending_timers` would add to `timer_bytes` at most.
    pending_timer_bytes: i64,
    /// What `pending` would add to `bytes` and to the entry count.
    pending_bytes: i64,
    pending_entries: i64,
    /// Set while timers up to this time are being fired.
    firing_upto: Option<i64>,
    /// Timers registered while firing, at or before the time being fired.
    deferred: Vec<(i64, Vec<u8>)>,
    breach: Option<String>,
    /// What changed since the last save, which the next delta holds.
    changes: Changes,
    /// The files the last save wrote on, which the next delta builds on.
    chain: Option<delta::Chain>,
    /// The plugin has asked for a timer or an expiring entry: its output
    /// depends on the watermark, so an event behind it is late.
    keeps_time: bool,
}

/// Keys and timers written (or expired, fired, cancelled) since the last
/// save. Only their names are kept: a delta writes each one's current value,
/// or its deletion.
#[derive(Debug, Default)]
struct Changes {
    keys: BTreeSet<Vec<u8>>,
    key_bytes: usize,
    timers: BTreeSet<(i64, Vec<u8>)>,
    timer_bytes: usize,
    /// More changed than a delta is worth (or than is safe to remember: a
    /// plugin may write and delete ever new keys): the next save is a base.
    overflow: bool,
}

/// Changes remembered however small the state: below this a base is cheap,
/// but a delta is still smaller.
const CHANGES_FLOOR: usize = 4096;
const CHANGE_BYTES_FLOOR: usize = 1 << 20;

impl Changes {
    /// Stops tracking once the changes outgrow the state itself (`entries`
    /// keys or timers of `bytes` bytes): a base is then no larger than a
    /// delta, and the memory the names hold stays within the stage's ceiling.
    fn bound(&mut self, entries: usize, bytes: i64) {
        let bytes = usize::try_from(bytes).unwrap_or(0);
        if self.keys.len() + self.timers.len() > entries.max(CHANGES_FLOOR)
            || self.key_bytes + self.timer_bytes > bytes.max(CHANGE_BYTES_FLOOR)
        {
            *self = Changes {
                overflow: true,
                ..Changes::default()
            };
        }
    }

    fn key(&mut self, k: &[u8]) {
        if !self.overflow && !self.keys.contains(k) {
            self.key_bytes += k.len();
            self.keys.insert(k.to_vec());
        }
    }

    fn timer(&mut self, at: i64, k: &[u8]) {
        if !self.overflow {
            let t = (at, k.to_vec());
            if !self.timers.contains(&t) {
                self.timer_bytes += k.len() + 8;
                self.timers.insert(t);
            }
        }
    }
}
/// Files written before state files carried a checksum.
const MAGIC_V1: &[u8; 8] = b"SLUICEST";
/// The current format: as version 1, followed by the CRC-32 (little-endian)
/// of everything before it, so a torn or damaged file is refused on restore.
const MAGIC: &[u8; 8] = b"SLUICES2";

/// Counts what passes through into a CRC-32, so a state file's checksum
/// costs no second pass over a state that may be as large as its ceiling.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

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
        let mut freed = 0;
        let mut expired = Vec::new();
        self.entries.retain(|k, e| {
            let keep = e.expires_at.is_none_or(|at| at > to);
            if !keep {
                freed += Entry::size(k, Some(e));
                expired.push(k.clone());
            }
            keep
        });
        self.bytes -= freed;
        for k in &expired {
            self.changes.key(k);
        }
        self.bound_changes();
    }

    fn bound_changes(&mut self) {
        let entries = self.entries.len() + self.timers.len() + self.deferred.len();
        self.changes.bound(entries, self.bytes + self.timer_bytes);
    }

    /// Sets the ceilings checked by later writes.
    pub fn set_limits(&mut self, limits: impl Into<StateLimits>) {
        self.limits = limits.into();
    }

    /// The ceiling this call's writes ran into, if any.
    pub fn breached(&self) -> Option<String> {
        self.breach.clone()
    }

    fn refuse(&mut self, what: String) {
        if self.breach.is_none() {
            self.breach = Some(what);
        }
    }

    /// Records a pending write of `key` (replacing any earlier one in this
    /// call) if the ceilings allow it.
    fn stage_write(&mut self, key: Vec<u8>, entry: Option<Entry>) {
        if self.breach.is_some() {
            return;
        }
        let committed = Entry::size(&key, self.entries.get(&key));
        let exists = i64::from(self.entries.contains_key(&key));
        let (old_bytes, old_entries) = match self.pending.get(&key) {
            Some(p) => (
                Entry::size(&key, p.as_ref()) - committed,
                i64::from(p.is_some()) - exists,
            ),
            None => (0, 0),
        };
        let new_bytes = Entry::size(&key, entry.as_ref()) - committed;
        let new_entries = i64::from(entry.is_some()) - exists;
        let bytes = self.bytes + self.pending_bytes - old_bytes
            + new_bytes
            + self.timer_bytes
            + self.pending_timer_bytes;
        let entries = self.entries.len() as i64 + self.pending_entries - old_entries + new_entries;
        if bytes > 0 && bytes as u64 > self.limits.bytes {
            let mb = self.limits.bytes >> 20;
            return self.refuse(format!(
                "state ceiling of {mb} MiB (a write would bring the stage's state to {bytes} bytes)"
            ));
        }
        if entries > 0 && entries as u64 > self.limits.entries {
            return self.refuse(format!("state ceiling of {} entries", self.limits.entries));
        }
        self.pending_bytes += new_bytes - old_bytes;
        self.pending_entries += new_entries - old_entries;
        self.pending.insert(key, entry);
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
        self.keeps_time |= ttl_ms.is_some();
        let expires_at = ttl_ms.map(|t| {
            self.watermark()
                .max(0)
                .saturating_add(i64::try_from(t).unwrap_or(i64::MAX))
        });
        self.stage_write(key, Some(Entry { value, expires_at }));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.stage_write(key, None);
    }

    /// Entries under `prefix` in key order, at most `limit`, seeing this
    /// call's writes. Walks no further than `limit` live entries.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut committed = self
            .entries
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.as_slice(), Some(e.value.as_slice())))
            .peekable();
        let mut pending = self
            .pending
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.as_slice(), e.as_ref().map(|e| e.value.as_slice())))
            .peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            // The pending write of a key hides its committed value.
            let next = match (committed.peek(), pending.peek()) {
                (None, None) => break,
                (Some(_), None) => committed.next(),
                (None, Some(_)) => pending.next(),
                (Some((c, _)), Some((p, _))) => match c.cmp(p) {
                    std::cmp::Ordering::Less => committed.next(),
                    std::cmp::Ordering::Greater => pending.next(),
                    std::cmp::Ordering::Equal => {
                        committed.next();
                        pending.next()
                    }
                },
            };
            if let Some((k, Some(v))) = next {
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        out
    }

    /// Asks for a timer at event time `at`.
    pub fn register(&mut self, key: Vec<u8>, at: i64) {
        self.keeps_time = true;
        if self.breach.is_some() {
            return;
        }
        let count = self.timers.len() + self.deferred.len() + self.pending_timers.len();
        if count as u64 >= self.limits.timers {
            return self.refuse(format!(
                "timer ceiling of {} pending timers",
                self.limits.timers
            ));
        }
        let bytes = self.bytes
            + self.pending_bytes
            + self.timer_bytes
            + self.pending_timer_bytes
            + timer_size(&key);
        if bytes > 0 && bytes as u64 > self.limits.bytes {
            let mb = self.limits.bytes >> 20;
            return self.refuse(format!(
                "state ceiling of {mb} MiB (a timer would bring the stage's state and timer keys to {bytes} bytes)"
            ));
        }
        self.pending_timer_bytes += timer_size(&key);
        self.pending_timers.push((true, at, key));
    }

    /// Cancels a timer.
    pub fn cancel(&mut self, key: Vec<u8>, at: i64) {
        if self.breach.is_some() {
            return;
        }
        // Cancels are recorded like registrations, so they count the same.
        if self.pending_timers.len() as u64 >= self.limits.timers {
            return self.refuse(format!(
                "timer ceiling of {} timer operations per call",
                self.limits.timers
            ));
        }
        self.pending_timers.push((false, at, key));
    }

    /// Applies this call's writes.
    pub fn commit(&mut self) {
        for (k, e) in std::mem::take(&mut self.pending) {
            self.changes.key(&k);
            match e {
                Some(e) => {
                    let key_len = k.len() as i64;
                    self.bytes += Entry::size(&k, Some(&e));
                    if let Some(old) = self.entries.insert(k, e) {
                        self.bytes -= key_len + old.value.len() as i64;
                    }
                }
                None => {
                    if let Some(old) = self.entries.remove(&k) {
                        self.bytes -= Entry::size(&k, Some(&old));
                    }
                }
            }
        }
        for (add, at, key) in std::mem::take(&mut self.pending_timers) {
            self.changes.timer(at, &key);
            let size = timer_size(&key);
            if add {
                match self.firing_upto {
                    Some(upto) if at <= upto => {
                        self.timer_bytes += size;
                        self.deferred.push((at, key));
                    }
                    _ => {
                        if self.timers.insert((at, key)) {
                            self.timer_bytes += size;
                        }
                    }
                }
            } else {
                let t = (at, key);
                if self.timers.remove(&t) {
                    self.timer_bytes -= size;
                }
                let before = self.deferred.len();
                self.deferred.retain(|d| *d != t);
                self.timer_bytes -= size * (before - self.deferred.len()) as i64;
            }
        }
        self.pending_timer_bytes = 0;
        self.pending_bytes = 0;
        self.pending_entries = 0;
        self.breach = None;
        self.bound_changes();
    }

    /// Forgets this call's writes (the call failed).
    pub fn rollback(&mut self) {
        self.pending.clear();
        self.pending_timers.clear();
        self.pending_timer_bytes = 0;
        self.pending_bytes = 0;
        self.pending_entries = 0;
        self.breach = None;
    }

    /// Marks timers up to `upto` as being fired (`Some`), or the end of a
    /// watermark advance (`None`): timers registered meanwhile at or before
    /// the time being fired then become due for the next advance.
    pub fn firing(&mut self, upto: Option<i64>) {
        self.firing_upto = upto;
        if upto.is_none() {
            for t in std::mem::take(&mut self.deferred) {
                let size = timer_size(&t.1);
                if !self.timers.insert(t) {
                    self.timer_bytes -= size;
                }
            }
        }
    }

    /// Removes and returns the timers at or before the watermark, oldest first.
    pub fn due_timers(&mut self, limit: usize) -> Vec<(i64, Vec<u8>)> {
        let w = self.watermark();
        let mut due = Vec::new();
        while due.len() < limit {
            match self.timers.first() {
                Some((at, _)) if *at <= w => {
                    if let Some(t) = self.timers.pop_first() {
                        self.timer_bytes -= timer_size(&t.1);
                        self.changes.timer(t.0, &t.1);
                        due.push(t);
                    }
                }
                _ => break,
            }
        }
        self.bound_changes();
        due
    }

    /// Puts back timers whose call failed, so they fire again.
    pub fn restore_timers(&mut self, timers: Vec<(i64, Vec<u8>)>) {
        for t in timers {
            let size = timer_size(&t.1);
            self.changes.timer(t.0, &t.1);
            if self.timers.insert(t) {
                self.timer_bytes += size;
            }
        }
        self.bound_changes();
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

    /// Whether events behind the watermark are late for this stage: once
    /// its plugin has asked for a timer or an expiring entry (a window, a
    /// join buffer), an event behind the watermark could change what was
    /// already emitted or expired. A plugin that has done neither (a lookup
    /// join) takes events in any order. Restored state counts if it holds a
    /// timer or an expiring entry.
    pub fn keeps_time(&self) -> bool {
        self.keeps_time
    }

    /// The watermark, read by the plugin: one that reads it decides by event
    /// time, so from then on the stage keeps time.
    pub fn watermark_for_plugin(&mut self) -> i64 {
        self.keeps_time = true;
        self.watermark()
    }

    /// After a load: whether the saved state shows the plugin keeps time.
    pub(crate) fn note_kept_time(&mut self) {
        self.keeps_time = !self.timers.is_empty()
            || !self.deferred.is_empty()
            || self.entries.values().any(|e| e.expires_at.is_some());
    }

    /// Pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len() + self.deferred.len()
    }

    /// Saves everything committed to `path` (atomically: temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.write_base(path).map(|_| ())
    }

    /// Writes the full state (a base); returns its checksum and size.
    fn write_base(&self, path: &Path) -> Result<(u32, u64)> {
        write_atomically(path, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&self.watermark().to_le_bytes())?;
            w.write_all(&(self.entries.len() as u64).to_le_bytes())?;
            for (k, e) in &self.entries {
                put_bytes(w, k)?;
                put_bytes(w, &e.value)?;
                w.write_all(&e.expires_at.unwrap_or(i64::MIN).to_le_bytes())?;
            }
            w.write_all(&((self.timers.len() + self.deferred.len()) as u64).to_le_bytes())?;
            // Deferred timers are only held within one advance; saving them with
            // the rest keeps them should a barrier land meanwhile.
            for (at, k) in self.timers.iter().chain(self.deferred.iter()) {
                w.write_all(&at.to_le_bytes())?;
                put_bytes(w, k)?;
            }
            Ok(())
        })
    }

    /// Loads what [`KeyedState::save`] wrote, refusing a file whose
    /// checksum does not match (torn, truncated or damaged).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_base(path).map(|(s, _, _)| s)
    }

    /// A base, with the checksum a delta on top of it records (the one it
    /// ends with; for files from before checksums, that of the whole file)
    /// and its size.
    fn load_base(path: &Path) -> Result<(Self, u32, u64)> {
        let bytes = read_file(path)?;
        let (body, crc) = match bytes.get(..8) {
            Some(m) if m == MAGIC => checked_body(&bytes, path)?,
            Some(m) if m == MAGIC_V1 => (&bytes[..], crc32fast::hash(&bytes)),
            _ => bail!("{} is not a Sluice stage state file", path.display()),
        };
        let s = Self::decode(body).with_context(|| format!("stage state {}", path.display()))?;
        Ok((s, crc, bytes.len() as u64))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes, at: 8 };
        let mut s = KeyedState::default();
        let w = r.i64()?;
        s.watermark = (w != i64::MIN).then_some(w);
        for _ in 0..r.u64()? {
            let k = r.bytes()?;
            let value = r.bytes()?;
            let exp = r.i64()?;
            s.bytes += (k.len() + value.len()) as i64;
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
            let key = r.bytes()?;
            let size = timer_size(&key);
            if s.timers.insert((at, key)) {
                s.timer_bytes += size;
            }
        }
        if r.at != bytes.len() {
            bail!("{} bytes follow the last timer", bytes.len() - r.at);
        }
        s.note_kept_time();
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

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening stage state {}", path.display()))?
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading stage state {}", path.display()))?;
    Ok(bytes)
}

/// The body of a file that ends with the CRC-32 of everything before it,
/// and that checksum; a torn or damaged file is refused.
fn checked_body<'a>(bytes: &'a [u8], path: &Path) -> Result<(&'a [u8], u32)> {
    let Some(split) = bytes.len().checked_sub(4).filter(|n| *n >= 8) else {
        bail!("stage state {} is truncated", path.display());
    };
    let (body, sum) = bytes.split_at(split);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(sum);
    let stored = u32::from_le_bytes(stored);
    if crc32fast::hash(body) != stored {
        bail!(
            "stage state {} is damaged: its checksum does not match",
            path.display()
        );
    }
    Ok((body, stored))
}

/// Writes `path` through `body`, then the CRC-32 of what it wrote, durably
/// and atomically (temp file, fsync, rename): after a crash the file is
/// whole or absent. Returns the checksum and file size.
fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(u32, u64)> {
    let dir = path.parent().context("a state file has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    // A leftover temp file (a crash mid-save) would keep its old mode.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // State holds raw event data: readable by the owner only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let f = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    // Streamed, not built in memory first: the state may be as large as
    // its ceiling, and a second copy of it would double the peak.
    let mut w = Checksummed {
        inner: std::io::BufWriter::with_capacity(1 << 16, f),
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    body(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
    let crc = w.crc.finalize();
    let len = w.len + 4;
    let mut w = w.inner;
    w.write_all(&crc.to_le_bytes())?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_data()?;
    crate::failpoint::hit("stage.state.rename.before")?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok((crc, len))
}

fn put_bytes(w: &mut (impl Write + ?Sized), b: &[u8]) -> std::io::Result<()> {
    w.write_all(&(b.len() as u64).to_le_bytes())?;
    w.write_all(b)
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
    fn a_stage_keeps_time_once_it_asks_for_a_timer_or_an_expiring_entry_and_after_a_restore() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut plain = KeyedState::default();
        plain.put(b"k".to_vec(), b"v".to_vec(), None);
        plain.commit();
        assert!(!plain.keeps_time(), "a plain entry keeps no time");
        plain.save(&dir.path().join("plain")).expect("save");
        assert!(!KeyedState::load(&dir.path().join("plain"))
            .expect("load")
            .keeps_time());

        let mut timed = KeyedState::default();
        timed.register(b"w".to_vec(), 10);
        assert!(timed.keeps_time());
        timed.commit();
        timed.save(&dir.path().join("timer")).expect("save");
        assert!(KeyedState::load(&dir.path().join("timer"))
            .expect("load")
            .keeps_time());

        let mut expiring = KeyedState::default();
        expiring.put(b"k".to_vec(), b"v".to_vec(), Some(1000));
        assert!(expiring.keeps_time());
        expiring.commit();
        expiring.save(&dir.path().join("ttl")).expect("save");
        assert!(KeyedState::load(&dir.path().join("ttl"))
            .expect("load")
            .keeps_time());
    }

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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("saved")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "state files are private: {mode:o}");
        }
        let mut back = KeyedState::load(&path).expect("load");
        assert_eq!(back.get(b"w:2"), Some(b"y".to_vec()));
        assert_eq!(back.watermark(), 100);
        assert!(back.due_timers(10).is_empty());
        back.advance(160);
        assert_eq!(back.get(b"w:2"), None, "expired at 150");
        assert_eq!(back.due_timers(10), vec![(120, b"k".to_vec())]);
    }

    #[test]
    fn a_damaged_or_torn_state_file_is_refused_with_its_path() {
        let mut s = KeyedState::default();
        s.advance(7);
        s.put(b"count:EUR".to_vec(), b"41".to_vec(), None);
        s.register(b"w".to_vec(), 600_000);
        s.commit();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_file(dir.path(), "agg", 5);
        s.save(&path).expect("save");
        let good = std::fs::read(&path).expect("read");
        assert_eq!(
            KeyedState::load(&path).expect("intact").get(b"count:EUR"),
            Some(b"41".to_vec())
        );
        let shown = path.display().to_string();
        // One flipped bit in a value: the file still parses, so only the
        // checksum can tell (a count of 41 would come back as 40).
        let mut flipped = good.clone();
        let at = good
            .windows(2)
            .position(|w| w == b"41")
            .expect("value in file");
        flipped[at + 1] ^= 1;
        std::fs::write(&path, &flipped).expect("write");
        let err = format!("{:#}", KeyedState::load(&path).expect_err("damaged"));
        assert!(
            err.contains(&shown) && err.contains("checksum does not match"),
            "{err}"
        );
        for cut in [good.len() - 1, good.len() / 2, 9, 3] {
            std::fs::write(&path, &good[..cut]).expect("write");
            let err = format!("{:#}", KeyedState::load(&path).expect_err("torn"));
            assert!(err.contains(&shown), "cut at {cut}: {err}");
        }
    }

    fn limited(bytes: u64, entries: u64, timers: u64) -> KeyedState {
        let mut s = KeyedState::default();
        s.set_limits(StateLimits {
            bytes,
            entries,
            timers,
        });
        s
    }

    #[test]
    fn writes_past_a_ceiling_are_refused_and_mark_the_call() {
        let mut s = limited(100, 3, 2);
        s.put(b"a".to_vec(), vec![0; 40], None);
        s.put(b"a".to_vec(), vec![0; 60], None);
        assert_eq!(s.breached(), None, "rewriting a key counts once");
        s.put(b"b".to_vec(), vec![0; 60], None);
        assert!(s.breached().is_some_and(|b| b.contains("state ceiling")));
        assert_eq!(s.get(b"b"), None, "the refused write is not visible");
        s.rollback();
        assert_eq!(s.breached(), None);
        for k in [b"x", b"y", b"z"] {
            s.put(k.to_vec(), vec![1], None);
        }
        s.commit();
        s.put(b"w".to_vec(), vec![1], None);
        assert!(s.breached().is_some_and(|b| b.contains("3 entries")));
        s.rollback();
        s.delete(b"x".to_vec());
        s.put(b"w".to_vec(), vec![1], None);
        assert_eq!(s.breached(), None, "a delete makes room");
        s.commit();
        s.register(b"t1".to_vec(), 1);
        s.register(b"t2".to_vec(), 2);
        s.register(b"t3".to_vec(), 3);
        assert!(s
            .breached()
            .is_some_and(|b| b.contains("timer ceiling of 2")));
        s.rollback();
        let mut s = limited(100, 10, 10);
        s.register(vec![0; 200], 1);
        assert!(
            s.breached().is_some_and(|b| b.contains("state ceiling")),
            "timer keys count as state bytes"
        );
    }

    #[test]
    fn timers_rearmed_while_firing_wait_for_the_next_advance() {
        let mut s = KeyedState::default();
        s.register(b"k".to_vec(), 10);
        s.commit();
        s.advance(10);
        let due = s.due_timers(10);
        assert_eq!(due.len(), 1);
        s.firing(Some(10));
        s.register(b"k".to_vec(), 10);
        s.register(b"later".to_vec(), 11);
        s.commit();
        assert!(s.due_timers(10).is_empty(), "not again in this advance");
        s.firing(None);
        assert_eq!(s.timer_count(), 2);
        assert_eq!(
            s.due_timers(10),
            vec![(10, b"k".to_vec())],
            "due at the next advance"
        );
        s.advance(11);
        assert_eq!(s.due_timers(10), vec![(11, b"later".to_vec())]);
    }
}
