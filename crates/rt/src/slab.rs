//! A generational slab: per-core tables of tasks, timers and in-flight I/O operations.
//!
//! A slot's id carries the generation it was filled in, so an id that outlives its entry (a
//! late wakeup of a finished task, a cancelled timer, a completion for an abandoned I/O) finds
//! nothing instead of a newcomer. Not thread-safe: each core owns its slabs.

use alloc::vec::Vec;

/// The id of an entry in a per-core slab: an index and the generation it was filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId {
    index: u32,
    generation: u32,
}

impl SlotId {
    /// The id packed in 64 bits (e.g. an io_uring `user_data`).
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The id unpacked from [`to_u64`](Self::to_u64).
    pub const fn from_u64(v: u64) -> SlotId {
        SlotId { index: v as u32, generation: (v >> 32) as u32 }
    }
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Entries addressed by [`SlotId`], with vacant slots reused.
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    vacant: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { entries: Vec::new(), vacant: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// Stores the value built by `make` from its own id, and returns the id.
    pub fn insert_with(&mut self, make: impl FnOnce(SlotId) -> T) -> SlotId {
        let index = match self.vacant.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry { generation: 0, value: None });
                u32::try_from(self.entries.len() - 1).expect("slab index overflow")
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        let id = SlotId { index, generation: entry.generation };
        entry.value = Some(make(id));
        self.len += 1;
        id
    }

    /// Stores `value` and returns its id.
    pub fn insert(&mut self, value: T) -> SlotId {
        self.insert_with(|_| value)
    }

    /// The entry `id`, if it is still the one that id names.
    pub fn get_mut(&mut self, id: SlotId) -> Option<&mut T> {
        let entry = self.entries.get_mut(id.index as usize)?;
        if entry.generation == id.generation {
            entry.value.as_mut()
        } else {
            None
        }
    }

    /// Removes and returns the entry `id`, if it is still the one that id names.
    pub fn remove(&mut self, id: SlotId) -> Option<T> {
        let entry = self.entries.get_mut(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        let value = entry.value.take()?;
        self.vacant.push(id.index);
        self.len -= 1;
        Some(value)
    }

    /// The entry `id`, if it is still the one that id names.
    pub fn get(&self, id: SlotId) -> Option<&T> {
        let entry = self.entries.get(id.index as usize)?;
        if entry.generation == id.generation {
            entry.value.as_ref()
        } else {
            None
        }
    }

    /// How many entries are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_find_nothing_after_reuse() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a.index, b.index, "the slot is reused");
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b).copied(), Some("b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn insert_with_sees_its_own_id() {
        let mut slab = Slab::default();
        let id = slab.insert_with(|id| id);
        assert_eq!(slab.get_mut(id).copied(), Some(id));
        assert_eq!(SlotId::from_u64(id.to_u64()), id);
    }
}
