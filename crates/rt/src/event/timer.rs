//! A hierarchical timing wheel: the per-core store of pending timers.
//!
//! EbbRT's Timer Ebb schedules events after a delay ("Delay based scheduling of events", the
//! paper's Table 1); each core's event manager checks its timers on every turn and, when it has
//! nothing else to do, blocks until the earliest one is due. [`TimerWheel`] is that store. It
//! holds one-shot entries only; the event manager re-arms periodic timers itself.
//!
//! # Layout
//!
//! Time is counted in *ticks* of `tick_ns` nanoseconds since the wheel was created. The wheel
//! has [`LEVELS`] levels of 64 slots; a slot on level `l` spans `64^l` ticks, so the levels
//! cover `2^36` ticks ahead of the current tick. An entry is filed on the lowest level whose
//! slot can tell its tick apart from the current tick (the level of the highest bit in which
//! they differ); entries beyond the top level wait in an overflow list. As time moves into a
//! higher-level slot, that slot's entries *cascade*: they are filed again and land on lower
//! levels, until they reach level 0, whose slots are single ticks.
//!
//! Each level keeps a 64-bit occupancy mask, so finding the next non-empty slot is one
//! `trailing_zeros`; advancing across a long idle gap jumps from one occupied slot to the next
//! instead of walking every tick. Entries live in a slab and each slot is an intrusive doubly
//! linked list through it, so insert and cancel are O(1). Keys carry a generation, so a key whose
//! timer has fired or been cancelled can never cancel the entry that later reuses its slot.
//!
//! A tick groups deadlines but never rounds them: each entry keeps its exact deadline, and the
//! slot of the current tick fires only the entries whose deadline has passed. A timer never
//! fires early, and [`TimerWheel::next_deadline`] reports exact deadlines for the next tick.

use alloc::vec::Vec;

/// Number of wheel levels; with 64 slots each they reach `2^36` ticks ahead.
pub const LEVELS: usize = 6;
/// log2 of the number of slots per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// End of a list, or no entry.
const NIL: u32 = u32::MAX;
/// The `level` of an entry that waits in the overflow list.
const OVERFLOW: u8 = LEVELS as u8;
/// The `level` of an entry that is in no list: free, or about to fire.
const DETACHED: u8 = u8::MAX;

/// Names one pending timer in a [`TimerWheel`], returned by [`TimerWheel::insert`].
///
/// A key stays unique to its timer: once the timer has fired or been cancelled, the key is
/// stale and [`TimerWheel::cancel`] returns `None` for it, even after its storage is reused
/// (keys carry a 32-bit generation, so only `2^32` reuses of one slot could alias).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// One slab slot: a pending timer, or a free slot in the free list.
struct Entry<T> {
    /// The timer's value; `None` while the slot is free.
    value: Option<T>,
    /// The exact deadline.
    deadline_ns: u64,
    /// The deadline's tick (rounded down).
    tick: u64,
    /// Insertion order, to fire equal deadlines first-in first-out.
    seq: u64,
    /// Bumped each time the slot is freed, so stale keys miss.
    generation: u32,
    /// Neighbours in the slot's list (`next` also links the free list).
    prev: u32,
    next: u32,
    /// Which list holds the entry: a level, `OVERFLOW`, or `DETACHED`.
    level: u8,
    /// The slot on that level.
    slot: u8,
}

/// Where the wheel must look next: the earliest occupied slot.
#[derive(Clone, Copy, Debug)]
struct Expiry {
    /// A level below `LEVELS`, or `LEVELS` for the overflow list.
    level: usize,
    slot: usize,
    /// The first tick the slot covers; no entry in it is due earlier.
    start_tick: u64,
}

/// A hierarchical timing wheel of one-shot timers carrying values of type `T`.
///
/// See the [module docs](self) for the layout. All times are nanoseconds on the caller's
/// monotonic clock; the wheel never reads a clock itself.
pub struct TimerWheel<T> {
    /// The time of tick 0.
    origin_ns: u64,
    /// The length of a tick.
    tick_ns: u64,
    /// The current tick: every entry whose tick is earlier has fired.
    cur: u64,
    /// The head of each slot's list.
    heads: [[u32; SLOTS]; LEVELS],
    /// Bit `s` of `occupied[l]` is set when slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The head of the overflow list.
    overflow: u32,
    /// No overflow entry has an earlier tick (it may be earlier than all of them after a cancel;
    /// it is `u64::MAX` while the list is empty).
    overflow_min_tick: u64,
    /// The slab of entries.
    entries: Vec<Entry<T>>,
    /// The head of the free list through `Entry::next`.
    free: u32,
    /// Number of pending timers.
    len: usize,
    /// The next insertion sequence number.
    next_seq: u64,
    /// Scratch list of due entries `(deadline, seq, index)`, kept to reuse its allocation.
    due: Vec<(u64, u64, u32)>,
}

impl<T> TimerWheel<T> {
    /// Creates an empty wheel whose current time is `now_ns` and whose slots on level 0 are
    /// `tick_ns` nanoseconds wide.
    ///
    /// A smaller tick makes `next_deadline` tighter for far timers and cascades more often;
    /// `tick_ns` does not limit precision, since entries keep their exact deadlines.
    ///
    /// # Panics
    ///
    /// If `tick_ns` is zero.
    pub fn new(now_ns: u64, tick_ns: u64) -> Self {
        assert!(tick_ns > 0, "TimerWheel tick must be at least 1 ns");
        TimerWheel {
            origin_ns: now_ns,
            tick_ns,
            cur: 0,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            overflow: NIL,
            overflow_min_tick: u64::MAX,
            entries: Vec::new(),
            free: NIL,
            len: 0,
            next_seq: 0,
            due: Vec::new(),
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns `true` if no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns `true` if `key` names a timer that has neither fired nor been cancelled.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.entries.get(key.index as usize).is_some_and(|e| {
            e.generation == key.generation && e.value.is_some() && e.level != DETACHED
        })
    }

    /// Adds a timer that fires with `value` once time reaches `deadline_ns`. A deadline at or
    /// before the current time fires on the next [`advance`](TimerWheel::advance). O(1).
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` timers are pending at once.
    pub fn insert(&mut self, deadline_ns: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let tick = self.tick_of(deadline_ns);
        let index = if self.free != NIL {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            self.free = entry.next;
            entry.value = Some(value);
            entry.deadline_ns = deadline_ns;
            entry.tick = tick;
            entry.seq = seq;
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("too many pending timers");
            self.entries.push(Entry {
                value: Some(value),
                deadline_ns,
                tick,
                seq,
                generation: 0,
                prev: NIL,
                next: NIL,
                level: DETACHED,
                slot: 0,
            });
            index
        };
        self.file(index);
        self.len += 1;
        TimerKey { index, generation: self.entries[index as usize].generation }
    }

    /// Cancels the timer named by `key` and returns its value, or returns `None` if the key is
    /// stale (its timer already fired or was cancelled). O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        if !self.contains(key) {
            return None;
        }
        self.unlink(key.index);
        Some(self.release(key.index).1)
    }

    /// A time no later than the earliest pending deadline, or `None` if no timer is pending.
    ///
    /// When the earliest timers are due within the current or next occupied tick, this is the
    /// exact earliest deadline. When they are further out, it is the start of the wheel slot
    /// that holds them, which can be earlier than the deadline (by less than the slot's span);
    /// an event loop that sleeps until then wakes, advances, and asks again, getting a closer
    /// answer each time. After `advance(now)` the answer is always later than `now`, so a
    /// loop that blocks until it never spins.
    pub fn next_deadline(&self) -> Option<u64> {
        let expiry = self.next_expiry()?;
        Some(if expiry.level == 0 {
            let mut earliest = u64::MAX;
            let mut index = self.heads[0][expiry.slot];
            while index != NIL {
                let entry = &self.entries[index as usize];
                earliest = earliest.min(entry.deadline_ns);
                index = entry.next;
            }
            earliest
        } else if expiry.level == LEVELS {
            // Both bounds are at or before every overflow entry's tick; take the closer.
            self.tick_start_ns(self.overflow_min_tick.max(expiry.start_tick))
        } else {
            self.tick_start_ns(expiry.start_tick)
        })
    }

    /// Fires, by calling `fire` with its key and value, every pending timer whose deadline is
    /// at or before `now_ns`, in deadline order (equal deadlines in insertion order). Timers
    /// with a later deadline stay pending, even when they share `now_ns`'s tick.
    ///
    /// The work is proportional to the number of occupied slots passed and entries moved, not
    /// to the time elapsed. `now_ns` should not go backwards; if it does, nothing fires that
    /// is not due at `now_ns`.
    pub fn advance(&mut self, now_ns: u64, mut fire: impl FnMut(TimerKey, T)) {
        let target = self.tick_of(now_ns).max(self.cur);
        let mut due = core::mem::take(&mut self.due);
        while let Some(expiry) = self.next_expiry() {
            if expiry.start_tick > target {
                break;
            }
            self.cur = self.cur.max(expiry.start_tick);
            let mut index = self.detach_list(expiry.level, expiry.slot);
            if expiry.level == 0 {
                while index != NIL {
                    let entry = &mut self.entries[index as usize];
                    let next = entry.next;
                    if entry.deadline_ns <= now_ns {
                        entry.level = DETACHED;
                        due.push((entry.deadline_ns, entry.seq, index));
                    } else {
                        // Only possible in the tick of `now_ns` itself: keep it for later.
                        self.file(index);
                    }
                    index = next;
                }
                if expiry.start_tick == target || self.heads[0][expiry.slot] != NIL {
                    // Nothing later can be due: every other slot starts after this one.
                    break;
                }
            } else {
                // A higher-level slot, or the overflow list, whose span time has reached: file
                // its entries again relative to the new current tick, on lower levels.
                if expiry.level == LEVELS {
                    self.overflow_min_tick = u64::MAX;
                }
                while index != NIL {
                    let next = self.entries[index as usize].next;
                    self.file(index);
                    index = next;
                }
            }
        }
        self.cur = target;
        due.sort_unstable();
        for &(_, _, index) in &due {
            let (key, value) = self.release(index);
            fire(key, value);
        }
        due.clear();
        self.due = due;
    }

    /// The tick that `ns` falls in (times before the origin fall in tick 0).
    fn tick_of(&self, ns: u64) -> u64 {
        ns.saturating_sub(self.origin_ns) / self.tick_ns
    }

    /// The time at which `tick` starts.
    fn tick_start_ns(&self, tick: u64) -> u64 {
        self.origin_ns.saturating_add(tick.saturating_mul(self.tick_ns))
    }

    /// The earliest occupied slot. Slots on a level all start after every slot on the levels
    /// below it (a level-`l` entry differs from the current tick in its level-`l` digit, a
    /// lower one agrees there), so the lowest occupied level holds the answer.
    fn next_expiry(&self) -> Option<Expiry> {
        for level in 0..LEVELS {
            let shift = SLOT_BITS * level as u32;
            let digit = (self.cur >> shift) & (SLOTS as u64 - 1);
            // Slots before the current digit are empty (time has passed them); mask anyway.
            let candidates = self.occupied[level] & (u64::MAX << digit);
            if candidates != 0 {
                let slot = candidates.trailing_zeros() as usize;
                let span_bits = shift + SLOT_BITS;
                let block = self.cur & !((1u64 << span_bits) - 1);
                let start_tick = block + ((slot as u64) << shift);
                return Some(Expiry { level, slot, start_tick });
            }
        }
        if self.overflow == NIL {
            return None;
        }
        let top_bits = SLOT_BITS * LEVELS as u32;
        let block = self.overflow_min_tick & !((1u64 << top_bits) - 1);
        Some(Expiry { level: LEVELS, slot: 0, start_tick: block.max(self.cur) })
    }

    /// Puts a detached entry in the list its tick belongs in, relative to the current tick.
    fn file(&mut self, index: u32) {
        let tick = self.entries[index as usize].tick.max(self.cur);
        let differing = tick ^ self.cur;
        // The level of the highest bit in which the tick differs from the current tick.
        let level = ((63 - (differing | 1).leading_zeros()) / SLOT_BITS) as usize;
        if level >= LEVELS {
            self.overflow_min_tick = self.overflow_min_tick.min(tick);
            self.link(index, OVERFLOW, 0);
        } else {
            let slot = (tick >> (SLOT_BITS * level as u32)) as usize & (SLOTS - 1);
            self.link(index, level as u8, slot);
        }
    }

    /// The head of the list for `level` (or `OVERFLOW`) and `slot`.
    fn head_mut(&mut self, level: u8, slot: usize) -> &mut u32 {
        if level == OVERFLOW {
            &mut self.overflow
        } else {
            &mut self.heads[level as usize][slot]
        }
    }

    /// Pushes a detached entry on the front of a list.
    fn link(&mut self, index: u32, level: u8, slot: usize) {
        let head = core::mem::replace(self.head_mut(level, slot), index);
        if head != NIL {
            self.entries[head as usize].prev = index;
        } else if level != OVERFLOW {
            self.occupied[level as usize] |= 1 << slot;
        }
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = head;
        entry.level = level;
        entry.slot = slot as u8;
    }

    /// Removes an entry from the list that holds it.
    fn unlink(&mut self, index: u32) {
        let Entry { prev, next, level, slot, .. } = self.entries[index as usize];
        let slot = slot as usize;
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            *self.head_mut(level, slot) = next;
            if next == NIL {
                if level == OVERFLOW {
                    // Forget the bound of the entries that are gone, so that a later overflow
                    // entry does not inherit it.
                    self.overflow_min_tick = u64::MAX;
                } else {
                    self.occupied[level as usize] &= !(1 << slot);
                }
            }
        }
        let entry = &mut self.entries[index as usize];
        entry.level = DETACHED;
        entry.prev = NIL;
        entry.next = NIL;
    }

    /// Empties a whole list and returns its old head; the entries stay chained through `next`
    /// until they are filed again.
    fn detach_list(&mut self, level: usize, slot: usize) -> u32 {
        if level < LEVELS {
            self.occupied[level] &= !(1 << slot);
        }
        core::mem::replace(self.head_mut(level as u8, slot), NIL)
    }

    /// Frees a detached entry's slot and returns its (now stale) key and its value.
    fn release(&mut self, index: u32) -> (TimerKey, T) {
        let entry = &mut self.entries[index as usize];
        let key = TimerKey { index, generation: entry.generation };
        let value = entry.value.take().expect("released timer entry holds a value");
        entry.generation = entry.generation.wrapping_add(1);
        entry.level = DETACHED;
        entry.prev = NIL;
        entry.next = self.free;
        self.free = index;
        self.len -= 1;
        (key, value)
    }
}

impl<T> core::fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TimerWheel")
            .field("tick_ns", &self.tick_ns)
            .field("now_ns", &self.tick_start_ns(self.cur))
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Advances `wheel` to `now` and returns what fired, as `(key, value)`.
    fn fired<T>(wheel: &mut TimerWheel<T>, now: u64) -> Vec<(TimerKey, T)> {
        let mut out = Vec::new();
        wheel.advance(now, |key, value| out.push((key, value)));
        out
    }

    fn values<T>(fired: Vec<(TimerKey, T)>) -> Vec<T> {
        fired.into_iter().map(|(_, v)| v).collect()
    }

    #[test]
    fn empty_wheel() {
        let mut wheel: TimerWheel<u32> = TimerWheel::new(1_000, 10);
        assert!(wheel.is_empty());
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_deadline(), None);
        assert!(fired(&mut wheel, 1_000_000).is_empty());
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let mut wheel = TimerWheel::new(0, 1_000);
        let key = wheel.insert(2_500, "a");
        assert_eq!(wheel.len(), 1);
        assert!(wheel.contains(key));
        assert_eq!(wheel.next_deadline(), Some(2_500));
        // Same tick as the deadline but earlier: must not fire.
        assert!(fired(&mut wheel, 2_000).is_empty());
        assert!(fired(&mut wheel, 2_499).is_empty());
        assert_eq!(wheel.next_deadline(), Some(2_500));
        assert_eq!(fired(&mut wheel, 2_500), vec![(key, "a")]);
        assert!(wheel.is_empty());
        assert!(!wheel.contains(key));
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let mut wheel = TimerWheel::new(0, 100);
        wheel.insert(5_000, 3);
        wheel.insert(300, 1);
        wheel.insert(5_000, 4);
        wheel.insert(1_000_000, 6);
        wheel.insert(301, 2);
        wheel.insert(999_999, 5);
        assert_eq!(wheel.next_deadline(), Some(300));
        assert_eq!(values(fired(&mut wheel, 2_000_000)), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let mut wheel = TimerWheel::new(1_000_000, 1_000);
        fired(&mut wheel, 5_000_000);
        wheel.insert(10, "before origin");
        wheel.insert(4_000_000, "before now");
        assert!(wheel.next_deadline().unwrap() <= 10);
        assert_eq!(values(fired(&mut wheel, 5_000_000)), vec!["before origin", "before now"]);
    }

    #[test]
    fn cancel_and_stale_keys() {
        let mut wheel = TimerWheel::new(0, 10);
        let a = wheel.insert(100, 'a');
        let b = wheel.insert(200, 'b');
        assert_eq!(wheel.cancel(a), Some('a'));
        assert_eq!(wheel.cancel(a), None, "a cancelled key is stale");
        // The freed slot is reused; the old key must not reach the new timer.
        let c = wheel.insert(300, 'c');
        assert_eq!(c.index, a.index);
        assert_ne!(c, a);
        assert_eq!(wheel.cancel(a), None);
        assert_eq!(wheel.len(), 2);
        assert_eq!(values(fired(&mut wheel, 250)), vec!['b']);
        assert_eq!(wheel.cancel(b), None, "a fired key is stale");
        assert_eq!(wheel.cancel(c), Some('c'));
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn cascades_across_levels() {
        let mut wheel = TimerWheel::new(0, 1);
        // One deadline on each level, and one in the overflow list.
        let deadlines: Vec<u64> = (0..=LEVELS as u32).map(|l| 3 << (SLOT_BITS * l)).collect();
        for &d in &deadlines {
            wheel.insert(d, d);
        }
        for &d in &deadlines {
            let next = wheel.next_deadline().unwrap();
            assert!(next <= d);
            assert!(fired(&mut wheel, d - 1).is_empty());
            assert_eq!(values(fired(&mut wheel, d)), vec![d]);
        }
        assert!(wheel.is_empty());
    }

    #[test]
    fn far_future_and_huge_gap_is_fast() {
        // With a 1 ns tick, walking tick by tick would never finish.
        let mut wheel = TimerWheel::new(0, 1);
        let far = u64::MAX / 3;
        let key = wheel.insert(far, ());
        wheel.insert(u64::MAX, ());
        assert!(fired(&mut wheel, far - 1).is_empty());
        let next = wheel.next_deadline().unwrap();
        assert!(next <= far && next > far - 1 - (1 << 36));
        assert_eq!(fired(&mut wheel, far), vec![(key, ())]);
        assert_eq!(fired(&mut wheel, u64::MAX).len(), 1);
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_deadline_is_never_late_and_converges() {
        let mut wheel = TimerWheel::new(0, 1_000);
        let deadline = 5_000_000_000;
        wheel.insert(deadline, ());
        let mut now = 0;
        let mut wakeups = 0;
        loop {
            let next = wheel.next_deadline().unwrap();
            assert!(next <= deadline);
            assert!(next > now, "the loop would spin");
            now = next;
            wakeups += 1;
            if !fired(&mut wheel, now).is_empty() {
                break;
            }
        }
        assert_eq!(now, deadline);
        // One wake per level at most, plus the final one.
        assert!(wakeups <= LEVELS + 1, "{wakeups} wakeups");
    }

    #[test]
    fn keeps_not_yet_due_entries_of_the_current_tick() {
        let mut wheel = TimerWheel::new(0, 1_000);
        wheel.insert(1_900, 2);
        wheel.insert(1_100, 1);
        assert_eq!(values(fired(&mut wheel, 1_500)), vec![1]);
        assert_eq!(wheel.next_deadline(), Some(1_900));
        wheel.insert(1_200, 0);
        assert_eq!(values(fired(&mut wheel, 1_500)), vec![0]);
        assert_eq!(values(fired(&mut wheel, 1_900)), vec![2]);
    }

    /// One step of the property test.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// Insert a timer `delta` ns after (or, if negative, before) the current time.
        Insert(i64),
        /// Cancel the `n`-th key ever handed out (modulo their number).
        Cancel(usize),
        /// Move time forward by this many ns.
        Advance(u64),
        /// Move time to just before (`false`) or exactly to (`true`) the deadline of the `n`-th
        /// pending timer (modulo their number), if that is not in the past.
        AdvanceToDeadline(usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (-5_000i64..200_000).prop_map(Op::Insert),
            1 => (0i64..(1 << 50)).prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Cancel),
            3 => (0u64..50_000).prop_map(Op::Advance),
            1 => (0u64..(1 << 44)).prop_map(Op::Advance),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(n, at)| Op::AdvanceToDeadline(n, at)),
        ]
    }

    /// Runs `ops` against both the wheel and a model (a list of pending `(deadline, seq)`):
    /// the wheel must fire exactly the entries the model says, in order, never early and once
    /// each; cancelled entries never fire; `next_deadline` is never later than the earliest
    /// pending deadline, and after an advance it is later than the current time.
    fn check_against_model(origin: u64, tick: u64, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut wheel = TimerWheel::new(origin, tick);
        let mut now = origin;
        // Pending per the model: (deadline, seq, key).
        let mut model: Vec<(u64, u64, TimerKey)> = Vec::new();
        let mut keys: Vec<TimerKey> = Vec::new();
        let mut seq = 0u64;
        for &op in ops {
            match op {
                Op::Insert(delta) => {
                    let deadline = now.saturating_add_signed(delta);
                    let key = wheel.insert(deadline, seq);
                    model.push((deadline, seq, key));
                    keys.push(key);
                    seq += 1;
                }
                Op::Cancel(n) => {
                    if keys.is_empty() {
                        continue;
                    }
                    let key = keys[n % keys.len()];
                    let pending = model.iter().position(|&(_, _, k)| k == key);
                    let got = wheel.cancel(key);
                    match pending {
                        Some(i) => {
                            let (_, s, _) = model.remove(i);
                            prop_assert_eq!(got, Some(s));
                        }
                        None => prop_assert_eq!(got, None),
                    }
                }
                Op::Advance(_) | Op::AdvanceToDeadline(..) => {
                    now = match op {
                        Op::Advance(delta) => now.saturating_add(delta),
                        Op::AdvanceToDeadline(n, at) if !model.is_empty() => {
                            let deadline = model[n % model.len()].0;
                            now.max(if at { deadline } else { deadline.saturating_sub(1) })
                        }
                        _ => now,
                    };
                    let mut expected: Vec<(u64, u64, TimerKey)> =
                        model.iter().copied().filter(|&(d, _, _)| d <= now).collect();
                    expected.sort();
                    model.retain(|&(d, _, _)| d > now);
                    let got = fired(&mut wheel, now);
                    let got: Vec<(u64, TimerKey)> = got.into_iter().map(|(k, s)| (s, k)).collect();
                    let want: Vec<(u64, TimerKey)> =
                        expected.iter().map(|&(_, s, k)| (s, k)).collect();
                    prop_assert_eq!(got, want);
                    // After an advance nothing pending is due, so the loop would not spin.
                    if let Some(next) = wheel.next_deadline() {
                        prop_assert!(next > now);
                    }
                }
            }
            prop_assert_eq!(wheel.len(), model.len());
            let earliest = model.iter().map(|&(d, _, _)| d).min();
            match (wheel.next_deadline(), earliest) {
                (None, None) => {}
                (Some(next), Some(earliest)) => prop_assert!(next <= earliest),
                (next, earliest) => {
                    prop_assert!(false, "next_deadline {:?} vs model {:?}", next, earliest)
                }
            }
            for &(_, _, key) in &model {
                prop_assert!(wheel.contains(key));
            }
        }
        // Everything left fires eventually, in order.
        let got = values(fired(&mut wheel, u64::MAX));
        model.sort();
        let want: Vec<u64> = model.iter().map(|&(_, s, _)| s).collect();
        prop_assert_eq!(got, want);
        prop_assert!(wheel.is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// [`check_against_model`] on random operation sequences, with far deadlines and long
        /// jumps that exercise every level and the overflow list.
        #[test]
        fn wheel_matches_model(
            origin in 0u64..(1 << 40),
            tick in prop_oneof![Just(1u64), Just(7), Just(1_000), Just(65_536)],
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            check_against_model(origin, tick, &ops)?;
        }
    }

    /// A case proptest once found: an overflow entry reached through a jump to its deadline.
    #[test]
    fn regression_overflow_cascade_then_exact_deadline() {
        use Op::*;
        let ops = [
            Insert(0),
            Insert(68719476736),
            Insert(0),
            Cancel(15456074552740896097),
            Insert(0),
            Insert(0),
            Insert(0),
            Advance(68719476736),
            Insert(0),
            Insert(125437),
            Insert(68719476736),
            Insert(1),
            AdvanceToDeadline(719955661039249824, false),
            Insert(0),
            AdvanceToDeadline(8400858147980319948, true),
        ];
        check_against_model(0, 1, &ops).unwrap();
    }
}
