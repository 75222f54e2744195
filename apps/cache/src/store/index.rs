//! The hash index: open addressing with linear probing over one flat array of 8-byte buckets.
//!
//! A bucket holds `tag << 32 | (slot + 1)`: the high half of the key's hash as a tag, and the
//! item's slot number plus one (0 marks an empty bucket). A probe compares tags first, so a
//! lookup touches the item only when the tag matches; a run of buckets is a run of cache lines.
//! Deletion shifts later members of the run back (Knuth, TAOCP vol. 3, 6.4, Algorithm R), so
//! there are no tombstones and probe lengths do not decay under churn. The table grows by
//! doubling at a 3/4 load; the store decides whether growth fits its memory limit.

use alloc::vec;
use alloc::vec::Vec;

/// The hash index of one store.
pub(crate) struct Index {
    buckets: Vec<u64>,
    mask: usize,
    len: usize,
}

/// Where a probe for a key ended.
pub(crate) enum Probe {
    /// The key is in slot `slot`, found in bucket `bucket`.
    Found {
        /// The bucket holding it.
        bucket: usize,
        /// The item's slot.
        slot: u32,
    },
    /// The key is absent; `bucket` is the empty bucket where it would go.
    Vacant {
        /// The first empty bucket of the run.
        bucket: usize,
    },
}

#[inline(always)]
fn tag_of(hash: u64) -> u64 {
    hash & 0xffff_ffff_0000_0000
}

impl Index {
    /// The smallest table, in buckets.
    pub(crate) const MIN_BUCKETS: usize = 1024;

    /// An empty index of `buckets` buckets (a power of two).
    pub(crate) fn with_buckets(buckets: usize) -> Index {
        debug_assert!(buckets.is_power_of_two());
        Index { buckets: vec![0; buckets], mask: buckets - 1, len: 0 }
    }

    /// Bytes the table occupies.
    pub(crate) fn bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<u64>()
    }

    /// Number of buckets.
    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Whether one more entry would pass the 3/4 load limit.
    pub(crate) fn needs_growth(&self) -> bool {
        (self.len + 1) * 4 > self.buckets.len() * 3
    }

    /// Bytes the next growth would add.
    pub(crate) fn growth_bytes(&self) -> usize {
        self.bytes()
    }

    /// Probes for `hash`; `is_key(slot)` says whether slot `slot` holds the key.
    #[inline]
    pub(crate) fn probe(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Probe {
        let tag = tag_of(hash);
        let mut bucket = hash as usize & self.mask;
        loop {
            let word = self.buckets[bucket];
            if word == 0 {
                return Probe::Vacant { bucket };
            }
            if word & 0xffff_ffff_0000_0000 == tag {
                let slot = (word as u32).wrapping_sub(1);
                if is_key(slot) {
                    return Probe::Found { bucket, slot };
                }
            }
            bucket = (bucket + 1) & self.mask;
        }
    }

    /// Fills the vacant `bucket` (from [`Probe::Vacant`]) with `slot`.
    pub(crate) fn fill(&mut self, bucket: usize, hash: u64, slot: u32) {
        debug_assert_eq!(self.buckets[bucket], 0);
        self.buckets[bucket] = tag_of(hash) | u64::from(slot + 1);
        self.len += 1;
    }

    /// Finds the bucket that points at `slot` (whose key hashes to `hash`).
    pub(crate) fn bucket_of(&self, hash: u64, slot: u32) -> Option<usize> {
        let want = tag_of(hash) | u64::from(slot + 1);
        let mut bucket = hash as usize & self.mask;
        loop {
            let word = self.buckets[bucket];
            if word == 0 {
                return None;
            }
            if word == want {
                return Some(bucket);
            }
            bucket = (bucket + 1) & self.mask;
        }
    }

    /// Empties `bucket`, shifting later members of its run back. `hash_of(slot)` gives the
    /// hash of the key in a slot (the store keeps it beside the item).
    pub(crate) fn remove(&mut self, mut bucket: usize, hash_of: impl Fn(u32) -> u64) {
        self.len -= 1;
        let mut next = bucket;
        loop {
            next = (next + 1) & self.mask;
            let word = self.buckets[next];
            if word == 0 {
                break;
            }
            let home = hash_of((word as u32).wrapping_sub(1)) as usize & self.mask;
            // Move `next` into the hole unless its home lies cyclically in (bucket, next].
            let stays = if bucket <= next {
                bucket < home && home <= next
            } else {
                bucket < home || home <= next
            };
            if !stays {
                self.buckets[bucket] = word;
                bucket = next;
            }
        }
        self.buckets[bucket] = 0;
    }

    /// Rebuilds the table with twice the buckets.
    pub(crate) fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let buckets = self.buckets.len() * 2;
        let old = core::mem::replace(&mut self.buckets, vec![0; buckets]);
        self.mask = buckets - 1;
        for word in old.into_iter().filter(|&w| w != 0) {
            let mut bucket = hash_of((word as u32).wrapping_sub(1)) as usize & self.mask;
            while self.buckets[bucket] != 0 {
                bucket = (bucket + 1) & self.mask;
            }
            self.buckets[bucket] = word;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A slot's "key" is its number; its hash is chosen by the test.
    fn find(index: &Index, hashes: &BTreeMap<u32, u64>, slot: u32) -> Option<u32> {
        match index.probe(hashes[&slot], |s| s == slot) {
            Probe::Found { slot, .. } => Some(slot),
            Probe::Vacant { .. } => None,
        }
    }

    #[test]
    fn insert_remove_with_collisions_and_wraparound() {
        let mut index = Index::with_buckets(16);
        let mut hashes = BTreeMap::new();
        // Many keys share home buckets 14 and 15, so runs wrap around the end.
        for slot in 0..11u32 {
            let hash = (u64::from(slot) << 32) | (14 + u64::from(slot % 2));
            hashes.insert(slot, hash);
            match index.probe(hash, |s| s == slot) {
                Probe::Vacant { bucket } => index.fill(bucket, hash, slot),
                Probe::Found { .. } => panic!("duplicate"),
            }
        }
        for slot in [0u32, 5, 3, 10] {
            let bucket = index.bucket_of(hashes[&slot], slot).unwrap();
            index.remove(bucket, |s| hashes[&s]);
            hashes.remove(&slot);
        }
        for slot in 0..11u32 {
            let expect = hashes.contains_key(&slot).then_some(slot);
            if let Some(&h) = hashes.get(&slot) {
                assert_eq!(find(&index, &hashes, slot), expect, "slot {slot} hash {h:x}");
            }
        }
        index.grow(|s| hashes[&s]);
        for &slot in hashes.keys() {
            assert_eq!(find(&index, &hashes, slot), Some(slot));
        }
    }
}
