//! A table's rows, found by key: a hash table built for lookups in batches.
//!
//! A lookup join asks for a whole batch of keys at once (`lookup-many`). On a
//! table larger than the cache each lookup misses twice: once for the slot,
//! once for the row it points to. Done one key at a time, each miss waits for
//! the one before. [`Rows::get_many`] works in three passes over the batch
//! instead: hash every key and ask the CPU to fetch its home slot; find each
//! key's slot and ask for its row; then compare each key with its row. The
//! misses of a batch overlap, and the last pass finds its rows in cache.
//!
//! No crate offers this: `hashbrown` keeps where a key's slot lies to itself,
//! so a caller cannot fetch it ahead. This is open addressing with linear
//! probing (a key's slot is at or after its home, before the next empty
//! slot), between a quarter and three quarters full (halved when removals
//! leave it emptier), with backward-shift deletion (no tombstones). Each slot keeps the key's 64-bit hash, so probing compares a
//! row's key only when the hashes agree. Keys are hashed with SipHash under
//! random keys, as std's maps are: keys are event data, and a tenant who could
//! choose colliding keys would slow every lookup.

use std::hash::{BuildHasher, RandomState};

use super::table_row::Row;

/// The fewest slots a table that holds anything has.
const MIN_SLOTS: usize = 16;

/// A table's rows, found by key (see the module docs).
#[derive(Clone, Default)]
pub struct Rows<S = RandomState> {
    /// Empty, or a power of two of slots.
    slots: Vec<Slot>,
    len: usize,
    hasher: S,
}

#[derive(Clone)]
struct Slot {
    hash: u64,
    row: Option<Row>,
}

impl<S> std::fmt::Debug for Rows<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("len", &self.len).finish()
    }
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it never
/// faults). Only on x86_64; elsewhere it does nothing.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86_64's baseline, and a prefetch reads
        // nothing the program sees: any address, valid or not, is allowed.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<S: BuildHasher> Rows<S> {
    /// An empty table hashing with `hasher` (tests give one that collides).
    #[cfg(test)]
    fn with_hasher(hasher: S) -> Self {
        Rows {
            slots: Vec::new(),
            len: 0,
            hasher,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `key` (hashing to `hash`), if any.
    fn find(&self, key: &[u8], hash: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = (hash as usize) & mask;
        // At most three quarters of the slots are full: the probe ends at
        // an empty one.
        loop {
            let slot = self.slots.get(i)?;
            let row = slot.row.as_ref()?;
            if slot.hash == hash && row.key() == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The row under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Row> {
        let i = self.find(key, self.hasher.hash_one(key))?;
        self.slots[i].row.as_ref()
    }

    /// The row under each of `keys`, in order, into `found` (cleared first),
    /// in three passes that overlap the batch's cache misses (module docs).
    pub fn get_many<'a>(&'a self, keys: &[&[u8]], found: &mut Vec<Option<&'a Row>>) {
        found.clear();
        if self.len == 0 {
            found.resize(keys.len(), None);
            return;
        }
        let mask = self.mask();
        // 1. Hash each key and fetch its home slot.
        let hashes: Vec<u64> = keys
            .iter()
            .map(|k| {
                let h = self.hasher.hash_one(k);
                prefetch(&self.slots[(h as usize) & mask]);
                h
            })
            .collect();
        // 2. Find the first slot with the key's hash and fetch its row.
        found.extend(hashes.iter().map(|&h| {
            let mut i = (h as usize) & mask;
            loop {
                let slot = &self.slots[i];
                let row = slot.row.as_ref()?;
                if slot.hash == h {
                    let p = row.bytes().as_ptr();
                    prefetch(p);
                    prefetch(p.wrapping_add(64));
                    return Some(row);
                }
                i = (i + 1) & mask;
            }
        }));
        // 3. Check each candidate's key; another key with the same 64-bit
        //    hash (practically never) sends that key through a full probe.
        for ((row, key), &h) in found.iter_mut().zip(keys).zip(&hashes) {
            if let Some(r) = row {
                if r.key() != *key {
                    *row = self.find(key, h).and_then(|i| self.slots[i].row.as_ref());
                }
            }
        }
    }

    /// Stores `row`, returning the row it replaces.
    pub fn insert(&mut self, row: Row) -> Option<Row> {
        let hash = self.hasher.hash_one(row.key());
        if let Some(i) = self.find(row.key(), hash) {
            return self.slots[i].row.replace(row);
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(hash, row);
        self.len += 1;
        None
    }

    /// Puts a row whose key is not in the table into the first empty slot
    /// from its home.
    fn place(&mut self, hash: u64, row: Row) {
        let mask = self.mask();
        let mut i = (hash as usize) & mask;
        while self.slots[i].row.is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            hash,
            row: Some(row),
        };
    }

    fn grow(&mut self) {
        self.resize((self.slots.len() * 2).max(MIN_SLOTS));
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(
            &mut self.slots,
            (0..size).map(|_| Slot { hash: 0, row: None }).collect(),
        );
        for slot in old {
            if let Some(row) = slot.row {
                self.place(slot.hash, row);
            }
        }
    }

    /// Removes the row under `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Row> {
        let mut hole = self.find(key, self.hasher.hash_one(key))?;
        let removed = self.slots[hole].row.take();
        self.len -= 1;
        // Backward shift: each row after the hole that could live in it (its
        // home is at or before the hole, going round) moves in, so that no
        // probe meets an empty slot before its key.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.slots[j].row.is_none() {
                break;
            }
            let home = (self.slots[j].hash as usize) & mask;
            let from_home = j.wrapping_sub(home) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        // Under a quarter full, half the slots: a table that grew and then
        // lost most of its rows holds no more than what `max_mb` counts.
        if self.slots.len() > MIN_SLOTS && self.len * 4 < self.slots.len() {
            self.resize(self.slots.len() / 2);
        }
        removed
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every row, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Row> {
        self.slots.iter().filter_map(|s| s.row.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::Hasher;

    /// Hashes a key to its length and first byte only: thousands of keys
    /// share a few hashes, so probing, growing and the backward shift meet
    /// long runs and wrap around the end of the slots.
    #[derive(Clone, Default)]
    struct Colliding;
    struct CollidingHasher(u64);
    impl Hasher for CollidingHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0 = self.0.wrapping_mul(31).wrapping_add(
                bytes.len() as u64 + u64::from(bytes.first().copied().unwrap_or(0) % 4),
            );
        }
    }
    impl BuildHasher for Colliding {
        type Hasher = CollidingHasher;
        fn build_hasher(&self) -> CollidingHasher {
            CollidingHasher(u64::MAX - 2)
        }
    }

    /// A small deterministic generator (xorshift), so a failure repeats.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn check_against_a_map<S: BuildHasher>(mut rows: Rows<S>, seed: u64) {
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut state = seed;
        for step in 0..20_000u64 {
            let key = format!("k{}", next(&mut state) % 3_000).into_bytes();
            match next(&mut state) % 10 {
                0..=5 => {
                    let value = step.to_string().into_bytes();
                    let old = rows.insert(Row::new(&key, &value));
                    let want = model.insert(key, value);
                    assert_eq!(old.map(|r| r.value().to_vec()), want, "insert at {step}");
                }
                6..=8 => {
                    let old = rows.remove(&key);
                    let want = model.remove(&key);
                    assert_eq!(old.map(|r| r.value().to_vec()), want, "remove at {step}");
                }
                _ => {
                    let asked: Vec<Vec<u8>> = (0..50)
                        .map(|_| format!("k{}", next(&mut state) % 3_500).into_bytes())
                        .collect();
                    let asked: Vec<&[u8]> = asked.iter().map(Vec::as_slice).collect();
                    let mut found = vec![None];
                    rows.get_many(&asked, &mut found);
                    assert_eq!(found.len(), asked.len());
                    for (k, row) in asked.iter().zip(&found) {
                        let want = model.get(*k).map(Vec::as_slice);
                        assert_eq!(row.map(Row::value), want, "get_many at {step}");
                        assert_eq!(rows.get(k).map(Row::value), want, "get at {step}");
                    }
                }
            }
            assert_eq!(rows.len(), model.len());
            // A quarter to three quarters full, small tables aside.
            let slots = rows.slots.len();
            assert!(
                rows.len() * 4 <= slots * 3,
                "{} rows in {slots} slots",
                rows.len()
            );
            assert!(
                slots <= MIN_SLOTS || rows.len() * 4 >= slots,
                "{} rows in {slots} slots",
                rows.len()
            );
        }
        let mut held: Vec<Vec<u8>> = rows.iter().map(|r| r.key().to_vec()).collect();
        let mut want: Vec<Vec<u8>> = model.keys().cloned().collect();
        held.sort();
        want.sort();
        assert_eq!(held, want);
        // Emptied, every slot is free again and nothing is found.
        for k in want {
            assert!(rows.remove(&k).is_some());
            let slots = rows.slots.len();
            assert!(
                slots <= MIN_SLOTS || rows.len() * 4 >= slots,
                "{} rows left in {slots} slots",
                rows.len()
            );
            // Every row left is still found after the shrinks.
            if rows.len().is_multiple_of(97) {
                assert!(rows.iter().all(|r| rows.get(r.key()).is_some()));
            }
        }
        assert!(rows.is_empty());
        assert_eq!(rows.iter().count(), 0);
        assert!(rows.get(b"k1").is_none());
    }

    #[test]
    fn inserts_replacements_removals_and_lookups_agree_with_a_map() {
        check_against_a_map(Rows::<RandomState>::default(), 0x9E37_79B9_7F4A_7C15);
    }

    #[test]
    fn keys_that_all_collide_are_still_found_replaced_and_removed() {
        check_against_a_map(Rows::with_hasher(Colliding), 0xD1B5_4A32_D192_ED03);
    }

    #[test]
    fn an_empty_table_answers_every_key_with_nothing() {
        let rows: Rows = Rows::default();
        let mut found = vec![None; 3];
        rows.get_many(&[b"a", b"", b"b"], &mut found);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(Option::is_none));
        assert!(rows.get(b"a").is_none());
    }

    #[test]
    fn rows_are_found_replaced_and_removed_by_key_alone() {
        let mut rows: Rows = Rows::default();
        assert!(rows.insert(Row::new(b"a", b"{\"v\":1}")).is_none());
        assert!(rows.insert(Row::new(b"ab", b"2")).is_none());
        let old = rows.insert(Row::new(b"a", b"{\"v\":3}"));
        assert_eq!(old.as_ref().map(Row::value), Some(&b"{\"v\":1}"[..]));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.get(b"a").map(Row::value), Some(&b"{\"v\":3}"[..]));
        assert_eq!(rows.get(b"ab").map(Row::value), Some(&b"2"[..]));
        assert!(rows.get(b"").is_none());
        assert_eq!(
            rows.remove(b"ab").map(|r| r.key().to_vec()),
            Some(b"ab".to_vec())
        );
        assert!(rows.remove(b"ab").is_none());
        assert_eq!(rows.iter().count(), 1);
    }

    #[test]
    fn keys_sharing_their_first_bytes_or_differing_by_trailing_zeros_stay_apart() {
        let mut rows: Rows = Rows::default();
        // Same head: longer keys that differ after byte 8, and short keys
        // that differ only by trailing zero bytes (the head's padding).
        let keys: [&[u8]; 7] = [
            b"customer-1",
            b"customer-2",
            b"customer",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0",
            b"",
        ];
        for (i, k) in keys.iter().enumerate() {
            assert!(rows.insert(Row::new(k, i.to_string().as_bytes())).is_none());
        }
        assert_eq!(rows.len(), keys.len());
        let mut asked: Vec<&[u8]> = keys.iter().rev().copied().collect();
        asked.extend([&b"customer-3"[..], b"a\0\0", b"customer-10"]);
        let mut found = Vec::new();
        rows.get_many(&asked, &mut found);
        let values: Vec<Option<&[u8]>> = found.iter().map(|r| r.map(Row::value)).collect();
        let mut want: Vec<Option<&[u8]>> = (0..keys.len())
            .rev()
            .map(|i| Some(["0", "1", "2", "3", "4", "5", "6"][i].as_bytes()))
            .collect();
        want.extend([None, None, None]);
        assert_eq!(values, want);
        for (k, row) in asked.iter().zip(&found) {
            assert_eq!(rows.get(k).map(Row::key), row.map(Row::key));
        }
        drop(found);
        // Replacing and removing one of a shared head leaves the others.
        assert!(rows.insert(Row::new(b"customer-2", b"new")).is_some());
        assert_eq!(
            rows.remove(b"customer-1").map(|r| r.value().to_vec()),
            Some(b"0".to_vec())
        );
        assert_eq!(rows.get(b"customer-2").map(Row::value), Some(&b"new"[..]));
        assert_eq!(rows.get(b"customer").map(Row::value), Some(&b"2"[..]));
        assert!(rows.get(b"customer-1").is_none());
        // get_many clears what it is given.
        let mut found = vec![None];
        rows.get_many(&[], &mut found);
        assert!(found.is_empty());
    }
}
