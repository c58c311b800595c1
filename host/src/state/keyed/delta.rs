//! Incremental saves of a stage's keyed state.
//!
//! A save writes either a base (`<id>.state`: the whole state, in the format
//! saves have always had, so checkpoints written before deltas existed load
//! as they are) or a delta (`<id>.delta`: the watermark, then every key and
//! timer that changed since the previous save, each with its current value
//! or its deletion). A delta names the file it was written on top of (the
//! previous save) and that file's checksum, so the state at checkpoint N is
//! the base N's chain starts from with each delta up to N applied in order,
//! and a delta is never applied to anything but the exact file it followed.
//!
//! Bounds: a new base is written (compaction) once the deltas since the last
//! one would add up to more than half of it (at least [`COMPACT_FLOOR`]), or
//! after [`MAX_DELTAS`] deltas; so a restore reads at most about one and a
//! half bases' worth of bytes and a bounded number of files. Pruning removes
//! only files older than the base of the oldest checkpoint that may still be
//! the last committed one.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{
    checked_body, put_bytes, read_file, timer_size, write_atomically, Changes, Entry, KeyedState,
    Reader,
};

const DELTA_MAGIC: &[u8; 8] = b"SLUICED1";
/// Magic, parent id, parent kind, parent checksum.
const HEADER: usize = 8 + 8 + 1 + 4;
/// Deltas on one base at most.
const MAX_DELTAS: u32 = 128;
/// Deltas may add up to this much however small their base.
const COMPACT_FLOOR: u64 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Base,
    Delta,
}

impl Kind {
    fn ext(self) -> &'static str {
        match self {
            Kind::Base => "state",
            Kind::Delta => "delta",
        }
    }
}

fn file_name(id: u64, kind: Kind) -> String {
    format!("{id}.{}", kind.ext())
}

fn parse_name(name: &str) -> Option<(u64, Kind)> {
    let (id, ext) = name.split_once('.')?;
    let kind = match ext {
        "state" => Kind::Base,
        "delta" => Kind::Delta,
        _ => return None,
    };
    Some((id.parse().ok()?, kind))
}

/// The files a stage's last save wrote on, which the next delta builds on.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    last_id: u64,
    last_kind: Kind,
    /// The last file's checksum, which a delta on top of it records.
    last_crc: u32,
    base_id: u64,
    base_bytes: u64,
    /// Bytes and number of the deltas since the base.
    delta_bytes: u64,
    deltas: u32,
    /// (checkpoint, the base its chain starts from) of recent saves, oldest
    /// first: what pruning must keep.
    history: VecDeque<(u64, u64)>,
}

/// What one save wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The file (in the stage's directory) the checkpoint records.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// A base (the whole state) rather than a delta.
    pub base: bool,
}

impl KeyedState {
    /// Saves the state for checkpoint `id` in `state_dir/stages/<stage>/`:
    /// a delta on the last save when the bounds allow, else a base. Then
    /// removes the files none of the last `keep` checkpoints needs (the last
    /// committed checkpoint is at most that far behind).
    pub fn save_checkpoint(
        &mut self,
        state_dir: &Path,
        stage: &str,
        id: u64,
        keep: u64,
    ) -> Result<Saved> {
        let dir = state_dir.join("stages").join(stage);
        let parent = match &self.chain {
            Some(c) if !self.changes.overflow && c.last_id < id && c.deltas < MAX_DELTAS => {
                let grown = c.delta_bytes + self.delta_size();
                (grown <= (c.base_bytes / 2).max(COMPACT_FLOOR)).then_some((
                    c.last_id,
                    c.last_kind,
                    c.last_crc,
                ))
            }
            _ => None,
        };
        let kind = if parent.is_some() {
            Kind::Delta
        } else {
            Kind::Base
        };
        let path = dir.join(file_name(id, kind));
        let (crc, bytes) = match parent {
            Some(p) => self.write_delta(&path, p)?,
            None => self.write_base(&path)?,
        };
        let before = self.chain.take();
        let (base_id, base_bytes, delta_bytes, deltas) = match &before {
            Some(c) if kind == Kind::Delta => {
                (c.base_id, c.base_bytes, c.delta_bytes + bytes, c.deltas + 1)
            }
            _ => (id, bytes, 0, 0),
        };
        let mut history = before.map(|c| c.history).unwrap_or_default();
        history.push_back((id, base_id));
        let mut chain = Chain {
            last_id: id,
            last_kind: kind,
            last_crc: crc,
            base_id,
            base_bytes,
            delta_bytes,
            deltas,
            history,
        };
        prune(&dir, &mut chain, id.saturating_sub(keep));
        self.chain = Some(chain);
        self.changes = Changes::default();
        Ok(Saved {
            file: file_name(id, kind),
            bytes,
            base: kind == Kind::Base,
        })
    }

    /// About how many bytes a delta of the current changes takes.
    fn delta_size(&self) -> u64 {
        let keys: usize = self
            .changes
            .keys
            .iter()
            .map(|k| 9 + k.len() + self.entries.get(k).map_or(0, |e| 16 + e.value.len()))
            .sum();
        let timers: usize = self.changes.timers.iter().map(|(_, k)| 17 + k.len()).sum();
        (HEADER + 28 + keys + timers) as u64
    }

    fn write_delta(&self, path: &Path, parent: (u64, Kind, u32)) -> Result<(u32, u64)> {
        let (parent_id, parent_kind, parent_crc) = parent;
        // A timer is pending if it waits in either set (as a base saves it).
        let deferred: HashSet<&(i64, Vec<u8>)> = self.deferred.iter().collect();
        write_atomically(path, |w| {
            w.write_all(DELTA_MAGIC)?;
            w.write_all(&parent_id.to_le_bytes())?;
            w.write_all(&[u8::from(parent_kind == Kind::Delta)])?;
            w.write_all(&parent_crc.to_le_bytes())?;
            w.write_all(&self.watermark().to_le_bytes())?;
            w.write_all(&(self.changes.keys.len() as u64).to_le_bytes())?;
            for k in &self.changes.keys {
                match self.entries.get(k) {
                    Some(e) => {
                        w.write_all(&[1])?;
                        put_bytes(w, k)?;
                        put_bytes(w, &e.value)?;
                        w.write_all(&e.expires_at.unwrap_or(i64::MIN).to_le_bytes())?;
                    }
                    None => {
                        w.write_all(&[0])?;
                        put_bytes(w, k)?;
                    }
                }
            }
            w.write_all(&(self.changes.timers.len() as u64).to_le_bytes())?;
            for t in &self.changes.timers {
                let pending = self.timers.contains(t) || deferred.contains(t);
                w.write_all(&[u8::from(pending)])?;
                w.write_all(&t.0.to_le_bytes())?;
                put_bytes(w, &t.1)?;
            }
            Ok(())
        })
    }

    /// Applies a delta's body (checksum already checked).
    fn apply(&mut self, body: &[u8]) -> Result<()> {
        let mut r = Reader {
            b: body,
            at: HEADER,
        };
        let w = r.i64()?;
        self.watermark = (w != i64::MIN).then_some(w);
        for _ in 0..r.u64()? {
            let put = r.tag()?;
            let k = r.bytes()?;
            if put {
                let value = r.bytes()?;
                let exp = r.i64()?;
                self.bytes += (k.len() + value.len()) as i64;
                let e = Entry {
                    value,
                    expires_at: (exp != i64::MIN).then_some(exp),
                };
                let key_len = k.len();
                if let Some(old) = self.entries.insert(k, e) {
                    self.bytes -= (key_len + old.value.len()) as i64;
                }
            } else if let Some(old) = self.entries.remove(&k) {
                self.bytes -= Entry::size(&k, Some(&old));
            }
        }
        for _ in 0..r.u64()? {
            let add = r.tag()?;
            let at = r.i64()?;
            let key = r.bytes()?;
            let size = timer_size(&key);
            if add {
                if self.timers.insert((at, key)) {
                    self.timer_bytes += size;
                }
            } else if self.timers.remove(&(at, key)) {
                self.timer_bytes -= size;
            }
        }
        if r.at != body.len() {
            bail!("{} bytes follow the last timer", body.len() - r.at);
        }
        Ok(())
    }
}

impl Reader<'_> {
    fn tag(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            t => bail!("unknown change tag {t}"),
        }
    }
}

/// A delta's header: the file it builds on and that file's checksum.
struct Header {
    parent_id: u64,
    parent_kind: Kind,
    parent_crc: u32,
}

fn header(body: &[u8]) -> Result<Header> {
    let mut r = Reader { b: body, at: 8 };
    let parent_id = r.u64()?;
    let parent_kind = if r.tag()? { Kind::Delta } else { Kind::Base };
    let mut crc = [0u8; 4];
    crc.copy_from_slice(r.take(4)?);
    Ok(Header {
        parent_id,
        parent_kind,
        parent_crc: u32::from_le_bytes(crc),
    })
}

/// Fails naming `path` if it is missing: a file a checkpoint's chain needs.
fn needed(path: &Path, by: Option<&Path>) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    match by {
        Some(by) => bail!(
            "{}, which {} builds on, is missing",
            path.display(),
            by.display()
        ),
        None => bail!("{} is missing", path.display()),
    }
}

/// Loads the state a checkpoint recorded as `path` (a base or a delta):
/// its base with every delta of its chain applied in order. A missing,
/// torn or damaged file anywhere in the chain is refused, naming it.
pub fn load_saved(path: &Path) -> Result<KeyedState> {
    let dir = path.parent().context("a state file has a directory")?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some((id, kind)) = parse_name(name) else {
        bail!("{} is not a stage state file name", path.display());
    };
    // Newest first, back to the base.
    let mut deltas: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut at = (id, kind);
    let mut by: Option<PathBuf> = None;
    while at.1 == Kind::Delta {
        let p = dir.join(file_name(at.0, at.1));
        needed(&p, by.as_deref())?;
        let bytes = read_file(&p)?;
        if bytes.get(..8) != Some(DELTA_MAGIC.as_slice()) {
            bail!("{} is not a Sluice stage state delta", p.display());
        }
        let h = header(checked_body(&bytes, &p)?.0)
            .with_context(|| format!("stage state {}", p.display()))?;
        // Ids only go back: a chain ends, whatever the files say.
        if h.parent_id >= at.0 {
            bail!(
                "stage state {} builds on checkpoint {}, which is not older",
                p.display(),
                h.parent_id
            );
        }
        at = (h.parent_id, h.parent_kind);
        deltas.push((p.clone(), bytes));
        by = Some(p);
    }
    let base_path = dir.join(file_name(at.0, at.1));
    needed(&base_path, by.as_deref())?;
    let (mut state, mut crc, base_bytes) = KeyedState::load_base(&base_path)?;
    let mut previous = base_path;
    let mut delta_bytes = 0;
    let count = deltas.len() as u32;
    for (p, bytes) in deltas.into_iter().rev() {
        let (body, own) = checked_body(&bytes, &p)?;
        let h = header(body)?;
        if h.parent_crc != crc {
            bail!(
                "stage state {} was written on top of a different {} (the checksum it recorded for it does not match)",
                p.display(),
                previous.display()
            );
        }
        state
            .apply(body)
            .with_context(|| format!("stage state {}", p.display()))?;
        crc = own;
        delta_bytes += bytes.len() as u64;
        previous = p;
    }
    state.chain = Some(Chain {
        last_id: id,
        last_kind: kind,
        last_crc: crc,
        base_id: at.0,
        base_bytes,
        delta_bytes,
        deltas: count,
        history: VecDeque::from([(id, at.0)]),
    });
    state.note_kept_time();
    Ok(state)
}

/// Forgets saves older than `keep_from` and removes every file older than
/// the base the oldest remaining save's chain starts from.
fn prune(dir: &Path, chain: &mut Chain, keep_from: u64) {
    while chain.history.len() > 1 && chain.history.front().is_some_and(|(c, _)| *c < keep_from) {
        chain.history.pop_front();
    }
    let Some(&(_, floor)) = chain.history.front() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let old = name
            .to_str()
            .and_then(parse_name)
            .is_some_and(|(id, _)| id < floor);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Dump = (
        Vec<(Vec<u8>, Entry)>,
        BTreeSet<(i64, Vec<u8>)>,
        i64,
        i64,
        i64,
    );

    /// Everything a save keeps, and the byte counts the ceilings use.
    fn dump(s: &KeyedState) -> Dump {
        let timers = s.timers.iter().chain(s.deferred.iter()).cloned().collect();
        let entries = s
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        (entries, timers, s.watermark(), s.bytes, s.timer_bytes)
    }

    fn stage_dir(root: &Path) -> PathBuf {
        root.join("stages").join("agg")
    }

    fn files(root: &Path) -> BTreeSet<String> {
        std::fs::read_dir(stage_dir(root))
            .expect("stage dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn put(s: &mut KeyedState, k: &str, v: &str) {
        s.put(k.as_bytes().to_vec(), v.as_bytes().to_vec(), None);
        s.commit();
    }

    /// A state of `n` keys, saved as the base of checkpoint 1.
    fn large(root: &Path, n: usize) -> KeyedState {
        let mut s = KeyedState::default();
        for i in 0..n {
            s.put(format!("key:{i:06}").into_bytes(), vec![b'v'; 40], None);
        }
        s.register(b"w".to_vec(), 1_000);
        s.commit();
        let saved = s.save_checkpoint(root, "agg", 1, 8).expect("save");
        assert!(saved.base, "the first save is a base");
        s
    }

    #[test]
    fn a_delta_holds_puts_deletes_expiries_and_timers_and_restores_what_a_full_copy_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut s = large(root, 1000);
        s.advance(100);
        put(&mut s, "key:000001", "changed");
        s.put(b"ttl".to_vec(), b"x".to_vec(), Some(50));
        s.delete(b"key:000002".to_vec());
        s.register(b"t1".to_vec(), 500);
        s.register(b"t2".to_vec(), 600);
        s.commit();
        let saved = s.save_checkpoint(root, "agg", 2, 8).expect("save 2");
        assert!(!saved.base && saved.file == "2.delta", "{saved:?}");
        // Expiry, a fired timer, a cancelled one, and a timer deferred
        // while firing (a barrier may land between fire and advance).
        s.advance(500);
        assert_eq!(s.due_timers(10), vec![(500, b"t1".to_vec())]);
        s.cancel(b"t2".to_vec(), 600);
        s.firing(Some(500));
        s.register(b"again".to_vec(), 400);
        s.commit();
        let saved = s.save_checkpoint(root, "agg", 3, 8).expect("save 3");
        assert!(!saved.base, "{saved:?}");
        assert!(saved.bytes < 200, "a few changes, a few bytes: {saved:?}");

        let back = load_saved(&stage_dir(root).join("3.delta")).expect("load chain");
        assert_eq!(dump(&back), dump(&s));
        assert_eq!(back.get(b"ttl"), None, "expired at 150");
        assert_eq!(back.get(b"key:000002"), None, "deleted");
        let full = root.join("full.state");
        s.save(&full).expect("full copy");
        assert_eq!(
            dump(&back),
            dump(&KeyedState::load(&full).expect("full")),
            "base + deltas restore exactly what a full copy does"
        );
        // Checkpoint 2 is still there as it was.
        let two = load_saved(&stage_dir(root).join("2.delta")).expect("load 2");
        assert_eq!(two.get(b"key:000002"), None);
        assert_eq!(two.timer_count(), 3);
    }

    #[test]
    fn restored_state_continues_the_chain_and_old_full_files_still_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // A file as a build before deltas wrote it (the same base format),
        // and one from before checksums (version 1: no trailer).
        let mut s = KeyedState::default();
        put(&mut s, "EUR", "12");
        s.register(b"w".to_vec(), 60_000);
        s.commit();
        let legacy = stage_dir(root).join("7.state");
        s.save(&legacy).expect("save");
        let v2 = std::fs::read(&legacy).expect("read");
        let mut v1 = v2[..v2.len() - 4].to_vec();
        v1[..8].copy_from_slice(super::super::MAGIC_V1);
        for bytes in [v2, v1] {
            std::fs::write(&legacy, &bytes).expect("write");
            let mut back = load_saved(&legacy).expect("an old full file loads");
            assert_eq!(dump(&back), dump(&s));
            put(&mut back, "USD", "3");
            let saved = back.save_checkpoint(root, "agg", 8, 8).expect("save");
            assert_eq!(saved.file, "8.delta", "a delta on the restored file");
            let again = load_saved(&stage_dir(root).join("8.delta")).expect("chain");
            assert_eq!(dump(&again), dump(&back));
            assert_eq!(again.get(b"EUR"), Some(b"12".to_vec()));
        }
    }

    #[test]
    fn deltas_are_compacted_into_a_new_base_before_they_outgrow_their_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // Many small deltas: a new base after MAX_DELTAS of them.
        let mut s = large(root, 10);
        let mut bases = Vec::new();
        for id in 2..=(2 * u64::from(MAX_DELTAS) + 3) {
            put(&mut s, "key:000001", &id.to_string());
            if s.save_checkpoint(root, "agg", id, 8).expect("save").base {
                bases.push(id);
            }
        }
        let m = u64::from(MAX_DELTAS);
        assert_eq!(bases, vec![m + 2, 2 * m + 3], "a base every {m} deltas");
        // Large deltas: a new base once they add up to half the base.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut s = large(root, 20_000);
        let base = std::fs::metadata(stage_dir(root).join("1.state"))
            .expect("base")
            .len();
        let mut written = 0;
        for id in 2..100 {
            for i in 0..1000 {
                s.put(
                    format!("key:{:06}", (id * 1000 + i) % 20_000).into_bytes(),
                    vec![b'w'; 40],
                    None,
                );
            }
            s.commit();
            let saved = s.save_checkpoint(root, "agg", id, 8).expect("save");
            if saved.base {
                assert!(written > base / 3, "compacted early: {written} of {base}");
                assert!(
                    written <= base / 2,
                    "deltas outgrew half the base: {written} of {base}"
                );
                let back = load_saved(&stage_dir(root).join(&saved.file)).expect("load");
                assert_eq!(dump(&back), dump(&s));
                return;
            }
            written += saved.bytes;
        }
        panic!("no compaction after {written} bytes of deltas on a {base}-byte base");
    }

    #[test]
    fn more_changes_than_the_state_holds_make_the_next_save_a_base() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut s = large(root, 10);
        // Ever new keys written and deleted: nothing stays, but every name
        // would have to be remembered for a delta.
        for i in 0..(super::super::CHANGES_FLOOR + 10) {
            let k = format!("tmp:{i}").into_bytes();
            s.put(k.clone(), b"x".to_vec(), None);
            s.commit();
            s.delete(k);
            s.commit();
        }
        assert!(s.changes.overflow && s.changes.keys.is_empty());
        let saved = s.save_checkpoint(root, "agg", 2, 8).expect("save");
        assert!(saved.base, "{saved:?}");
        put(&mut s, "key:000001", "x");
        assert!(!s.save_checkpoint(root, "agg", 3, 8).expect("save").base);
    }

    #[test]
    fn pruning_keeps_every_file_the_recent_checkpoints_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut s = large(root, 10);
        let last = u64::from(MAX_DELTAS) + 5;
        for id in 2..=last {
            put(&mut s, "key:000001", &id.to_string());
            s.save_checkpoint(root, "agg", id, 8).expect("save");
        }
        // Checkpoint `last - 8` (the oldest that may be the last committed)
        // is a delta on base 1: its whole chain stays, though it is old.
        for id in (last - 8)..=last {
            let name = files(root)
                .into_iter()
                .find(|f| parse_name(f).is_some_and(|(i, _)| i == id))
                .expect("kept");
            let back = load_saved(&stage_dir(root).join(&name)).expect("chain intact");
            assert_eq!(back.get(b"key:000001"), Some(id.to_string().into_bytes()));
        }
        assert!(files(root).contains("1.state"), "the base the chain needs");
        // Eight saves past the new base, everything before it goes.
        for id in (last + 1)..=(last + 9) {
            put(&mut s, "key:000001", &id.to_string());
            s.save_checkpoint(root, "agg", id, 8).expect("save");
        }
        let kept = files(root);
        let base = u64::from(MAX_DELTAS) + 2;
        assert!(kept.contains(&format!("{base}.state")), "{kept:?}");
        assert!(
            kept.iter()
                .all(|f| parse_name(f).is_some_and(|(i, _)| i >= base)),
            "{kept:?}"
        );
    }

    #[test]
    fn a_torn_damaged_or_orphaned_delta_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut s = large(root, 100);
        put(&mut s, "key:000001", "41");
        s.save_checkpoint(root, "agg", 2, 8).expect("save");
        put(&mut s, "key:000003", "x");
        s.save_checkpoint(root, "agg", 3, 8).expect("save");
        let two = stage_dir(root).join("2.delta");
        let three = stage_dir(root).join("3.delta");
        let good = std::fs::read(&two).expect("read");
        let err = |p: &Path| format!("{:#}", load_saved(p).expect_err("refused"));
        for cut in [good.len() - 1, good.len() / 2, 9, 3, 0] {
            std::fs::write(&two, &good[..cut]).expect("tear");
            let e = err(&three);
            assert!(e.contains(&two.display().to_string()), "cut at {cut}: {e}");
        }
        let mut flipped = good.clone();
        let at = good.windows(2).position(|w| w == b"41").expect("value");
        flipped[at + 1] ^= 1;
        std::fs::write(&two, &flipped).expect("flip");
        let e = err(&three);
        assert!(
            e.contains("checksum does not match") && e.contains(&two.display().to_string()),
            "{e}"
        );
        std::fs::remove_file(&two).expect("remove");
        let e = err(&three);
        assert!(
            e.contains(&format!(
                "{}, which {} builds on, is missing",
                two.display(),
                three.display()
            )),
            "{e}"
        );
        // A different, intact checkpoint 2 (written on the same base by
        // another run): the chain does not silently mix the two.
        let other = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(stage_dir(other.path())).expect("dir");
        std::fs::copy(
            stage_dir(root).join("1.state"),
            stage_dir(other.path()).join("1.state"),
        )
        .expect("copy");
        let mut s = load_saved(&stage_dir(other.path()).join("1.state")).expect("base");
        put(&mut s, "key:000001", "7");
        s.save_checkpoint(other.path(), "agg", 2, 8)
            .expect("other 2");
        std::fs::copy(stage_dir(other.path()).join("2.delta"), &two).expect("copy");
        let e = err(&three);
        assert!(e.contains("was written on top of a different"), "{e}");
        // A chain that does not go back in time ends with an error.
        let mut looped = std::fs::read(&three).expect("read");
        looped[8..16].copy_from_slice(&3u64.to_le_bytes());
        let n = looped.len() - 4;
        let crc = crc32fast::hash(&looped[..n]).to_le_bytes();
        looped[n..].copy_from_slice(&crc);
        std::fs::write(&three, &looped).expect("write");
        assert!(err(&three).contains("which is not older"));
    }
}
