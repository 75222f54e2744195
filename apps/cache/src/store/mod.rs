//! One shard's items: a hash index, the items themselves, memory accounting, eviction and
//! expiry. A [`Store`] is a plain single-threaded object owned by one core (DESIGN.md,
//! "Per-core ownership"): no locks, no atomics.
//!
//! # Layout
//!
//! - Every item's key and value sit together in one heap allocation of exactly
//!   `key + value` bytes, so a hit is one copy of a contiguous value into the reply.
//! - Its metadata (cas, client flags, expiry, last access, LRU links, hash) lives in an
//!   [`Item`] record in one `Vec` of slots; freed slots form a free list.
//! - The index (`index.rs`) maps a key's hash to a slot: open addressing, linear probing, 8-byte
//!   buckets carrying a 32-bit tag, so most probes never touch an item.
//! - The key hash ([`hash`]) is a wyhash-style multiply-fold, not SipHash.
//!
//! # Why not memcached's slab classes
//!
//! memcached carves 1 MiB pages into chunks of ~40 size classes and keeps one LRU per class;
//! a new item evicts from its own class (`items.c`, `slabs.c`). That makes memory exact but
//! leaves pages stuck in the classes that first claimed them ("slab calcification", which
//! memcached answers with its slab rebalancer). A shard here is a fraction of `-m`, often a
//! few MiB, where a page per class would already be most of the memory. So items are
//! allocated from cairn's allocator (per-core slab allocators with size classes of their own,
//! DESIGN.md "Memory"), and the shard keeps **one** recency order over all items: an eviction
//! removes the least recently used item whatever its size, and memory freed by any item
//! serves any other. Per-class figures are still kept and reported under memcached's class
//! ids ([`classes`]), because users read `stats items` and `stats slabs`.
//!
//! # Recency: CLOCK over an insertion-ordered list
//!
//! A hit sets the item's *accessed* bit and stamps its access time; it does not move the item,
//! so a get writes one cache line it already holds. Eviction takes the list's tail: an
//! accessed item gets a second chance (bit cleared, moved to the head), an expired or flushed
//! one is reclaimed, any other is evicted. This is CLOCK (Corbató, 1968), the usual
//! approximation of LRU; memcached's own segmented LRU likewise avoids moving items on every
//! hit.
//!
//! # Memory accounting
//!
//! The limit covers every item's key+value allocation, the slot array's capacity
//! (`size_of::<Item>()` = 56 bytes per slot) and the index's buckets, each charged at the
//! size cairn's general allocator really gives it ([`charge`]: its size class up to 32 KiB,
//! four per power of two, or its power-of-two block of pages up to 4 MiB), not at the size
//! asked for. Charging the requested size instead let the rounding (up to a quarter of a
//! class, nearly half of a buddy block) sit outside `-m`. The slot array is grown to fill the
//! allocation it gets. Growing either array is paid for before it happens (by evicting when
//! growth would not fit), so the accounted total never exceeds the limit; an item that would
//! not fit even in an empty shard is refused (`SERVER_ERROR out of memory storing object`).
//! The `bytes` statistic stays memcached's: key + value + slot, unrounded.
//!
//! Not accounted, and documented as the overhead on top of the limit: the per-class
//! statistics (a few KiB per shard); the allocator's partly used slabs and the empty ones each
//! core keeps; blocks freed but not yet reused, which stay resident (the page allocator reuses
//! its oldest memory first, see `cairn_rt::mem::page`); and, transiently during one command,
//! the copy of the one item being written (append, prepend and incr build the new value before
//! the old one is freed) and the old array while the slot array or index is being reallocated.
//! Buffers of the connections (receive ring, replies) belong to the server, not the store. The
//! whole process stays within 13 MiB of `-m 64` in `cli/tests/cache_stress.rs`'s
//! `memory_stays_bounded` (memcached: 7 MiB), 4 MiB of it the receive ring of the core serving.
//!
//! # Expiry and flush
//!
//! Times are memcached's `rel_time_t`: seconds on the server's clock, with memcached's
//! offset so that 1 is always in the past (see [`crate::engine::Now`]). An item is dead when
//! its exptime has passed or a `flush_all` covers it; dead items are removed when touched
//! (lazy expiry, as memcached's `do_item_get`), when they reach the eviction end, and by the
//! crawler ([`Store::crawl`]) that an idle handler runs.

pub mod classes;
pub mod hash;
mod index;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;

use cairn_rt::mem::general::usable_size;

use classes::{SizeClasses, MAX_CLASSES};
use index::{Index, Probe};

pub use hash::{hash_key, shard_of};

/// No slot (end of a list).
const NIL: u32 = u32::MAX;

/// [`Item`] bits.
pub mod bits {
    /// The item has been read at least once (memcached's `ITEM_FETCHED`).
    pub const FETCHED: u8 = 1;
    /// Read since the clock hand last passed it.
    pub const ACCESSED: u8 = 2;
    /// Marked stale by `md .. I` or `ms .. I` (memcached's `ITEM_STALE`).
    pub const STALE: u8 = 4;
    /// A recache win token was handed out (memcached's `ITEM_TOKEN_SENT`).
    pub const TOKEN_SENT: u8 = 8;
    /// The key was sent in base64 and is echoed back that way (`ITEM_KEY_BINARY`).
    pub const KEY_BINARY: u8 = 16;
    /// The slot is free.
    pub(crate) const FREE: u8 = 128;
}

/// One item's metadata; its key and value live in one allocation it owns.
#[derive(Debug)]
pub struct Item {
    data: Box<[u8]>,
    hash: u64,
    cas: u64,
    exptime: u32,
    time: u32,
    client_flags: u32,
    prev: u32,
    next: u32,
    key_len: u8,
    class: u8,
    bits: u8,
}

impl Item {
    fn free(next: u32) -> Item {
        Item {
            data: Box::default(),
            hash: 0,
            cas: 0,
            exptime: 0,
            time: 0,
            client_flags: 0,
            prev: NIL,
            next,
            key_len: 0,
            class: 0,
            bits: bits::FREE,
        }
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    /// The value (the data block, without `\r\n`).
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.data[usize::from(self.key_len)..]
    }

    /// The value, writable in place (its length is fixed).
    #[inline]
    pub fn value_mut(&mut self) -> &mut [u8] {
        &mut self.data[usize::from(self.key_len)..]
    }

    /// The cas unique.
    #[inline]
    pub fn cas(&self) -> u64 {
        self.cas
    }

    /// The client's flags.
    #[inline]
    pub fn client_flags(&self) -> u32 {
        self.client_flags
    }

    /// Expiry in rel time; 0 is never.
    #[inline]
    pub fn exptime(&self) -> u32 {
        self.exptime
    }

    /// Sets the expiry (rel time; 0 is never).
    #[inline]
    pub fn set_exptime(&mut self, exptime: u32) {
        self.exptime = exptime;
    }

    /// The last access (rel time).
    #[inline]
    pub fn time(&self) -> u32 {
        self.time
    }

    /// The [`bits`].
    #[inline]
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Sets `set` and clears `clear` among the [`bits`].
    #[inline]
    pub fn update_bits(&mut self, set: u8, clear: u8) {
        self.bits = (self.bits & !clear) | set;
    }

    /// memcached's slab class id for this item.
    #[inline]
    pub fn class(&self) -> u8 {
        self.class
    }

    /// memcached's `ITEM_ntotal` for this item.
    pub fn memcached_size(&self) -> usize {
        classes::item_total(self.key().len(), self.client_flags, self.value().len())
    }

    /// Records an in-place change of the value: new access time and cas.
    #[inline]
    pub fn modified(&mut self, now: u32, cas: u64) {
        self.time = now;
        self.cas = cas;
    }

    /// Records a read: memcached's bump (`do_item_bump`) sets FETCHED; we also set the CLOCK
    /// bit and stamp the access time.
    #[inline]
    pub fn bump(&mut self, now: u32) {
        self.bits |= bits::FETCHED | bits::ACCESSED;
        self.time = now;
    }
}

/// Counters kept per memcached slab class (`stats items`, `stats slabs`). Summed over shards
/// with [`ClassStats::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Items now stored.
    pub number: u64,
    /// Their accounted bytes (key + value + slot).
    pub bytes: u64,
    /// Age in seconds of the item nearest eviction (filled in by [`Store::class_stats`]).
    pub age: u64,
    /// Live items evicted to make room.
    pub evicted: u64,
    /// Of those, items that had an expiry time.
    pub evicted_nonzero: u64,
    /// Seconds since the last access of the most recently evicted item.
    pub evicted_time: u64,
    /// Stores refused for lack of memory.
    pub outofmemory: u64,
    /// Dead (expired or flushed) items whose memory was reclaimed.
    pub reclaimed: u64,
    /// Dead items reclaimed that were never read.
    pub expired_unfetched: u64,
    /// Live items evicted that were never read.
    pub evicted_unfetched: u64,
    /// Dead items the crawler reclaimed.
    pub crawler_reclaimed: u64,
    /// Read hits.
    pub get_hits: u64,
    /// Storage commands that stored into this class.
    pub cmd_set: u64,
    /// Deletes that hit.
    pub delete_hits: u64,
    /// Incrs that hit.
    pub incr_hits: u64,
    /// Decrs that hit.
    pub decr_hits: u64,
    /// Cas commands that matched.
    pub cas_hits: u64,
    /// Cas commands that did not match.
    pub cas_badval: u64,
    /// Touches that hit.
    pub touch_hits: u64,
}

impl ClassStats {
    /// Adds another shard's figures (times take the maximum).
    pub fn merge(&mut self, other: &ClassStats) {
        self.number += other.number;
        self.bytes += other.bytes;
        self.age = self.age.max(other.age);
        self.evicted += other.evicted;
        self.evicted_nonzero += other.evicted_nonzero;
        self.evicted_time = self.evicted_time.max(other.evicted_time);
        self.outofmemory += other.outofmemory;
        self.reclaimed += other.reclaimed;
        self.expired_unfetched += other.expired_unfetched;
        self.evicted_unfetched += other.evicted_unfetched;
        self.crawler_reclaimed += other.crawler_reclaimed;
        self.get_hits += other.get_hits;
        self.cmd_set += other.cmd_set;
        self.delete_hits += other.delete_hits;
        self.incr_hits += other.incr_hits;
        self.decr_hits += other.decr_hits;
        self.cas_hits += other.cas_hits;
        self.cas_badval += other.cas_badval;
        self.touch_hits += other.touch_hits;
    }

    /// Whether memcached would list this class (it has held something).
    pub fn is_used(&self) -> bool {
        *self != ClassStats::default()
    }
}

/// Store-wide counters that are not per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Items ever stored.
    pub total_items: u64,
    /// Reads that found an expired item.
    pub get_expired: u64,
    /// Reads that found an item invalidated by `flush_all`.
    pub get_flushed: u64,
    /// Slots the crawler examined.
    pub crawler_items_checked: u64,
}

/// Why a store could not take an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The item cannot fit within the memory limit even with everything else evicted (or
    /// eviction is off and memory is full).
    NoMemory,
}

/// What the item to insert carries besides its key and value.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewItem {
    /// Client flags.
    pub client_flags: u32,
    /// Expiry (rel time; 0 never).
    pub exptime: u32,
    /// The cas unique to give it; 0 draws the next one.
    pub cas: u64,
    /// Initial [`bits`].
    pub bits: u8,
}

/// The outcome of one step of the eviction hand.
enum Step {
    /// A slot was freed.
    Freed,
    /// An accessed item got a second chance.
    Skipped,
    /// Nothing can be freed.
    Stuck,
}

/// One shard's items. See the module documentation.
pub struct Store {
    items: Vec<Item>,
    free_head: u32,
    index: Index,
    lru_head: u32,
    lru_tail: u32,
    count: usize,
    data_bytes: usize,
    /// What the items' allocations really take: [`charge`] of each one's length.
    data_charged: usize,
    limit: usize,
    evictions: bool,
    classes: SizeClasses,
    class_stats: [ClassStats; MAX_CLASSES + 1],
    counters: StoreCounters,
    cas_next: u64,
    cas_stride: u64,
    oldest_live: u32,
    oldest_cas: u64,
    crawl_cursor: usize,
}

/// Bytes of one slot.
pub const SLOT_BYTES: usize = core::mem::size_of::<Item>();

/// The smallest growth of the slot array, in slots.
const MIN_SLOT_GROWTH: usize = 16;

/// The bytes an allocation of `len` bytes really takes: cairn's general allocator rounds it up
/// to its size class (up to 32 KiB) or buddy block (up to 4 MiB). The limit is charged this,
/// so that `-m` covers the rounding (see "Memory accounting" in the module docs).
#[inline]
pub fn charge(len: usize) -> usize {
    match Layout::array::<u8>(len) {
        Ok(layout) if len > 0 => usable_size(layout),
        _ => len,
    }
}

/// What the slot array takes with room for `capacity` slots.
fn slots_charge(capacity: usize) -> usize {
    charge(capacity.saturating_mul(SLOT_BYTES))
}

/// The most slots that fit in the allocation made for `capacity` of them.
fn slots_filling(capacity: usize) -> usize {
    slots_charge(capacity) / SLOT_BYTES
}

impl Store {
    /// An empty store holding at most `limit` accounted bytes. Cas uniques are
    /// `cas_offset + k * cas_stride` for k = 1, 2, ...: shard `i` of `n` passes `(i, n)` so
    /// uniques never repeat across shards.
    pub fn new(limit: usize, evictions: bool, cas_offset: u64, cas_stride: u64) -> Store {
        let buckets = (limit / 512).clamp(16, Index::MIN_BUCKETS).next_power_of_two();
        let stride = cas_stride.max(1);
        Store {
            items: Vec::new(),
            free_head: NIL,
            index: Index::with_buckets(buckets),
            lru_head: NIL,
            lru_tail: NIL,
            count: 0,
            data_bytes: 0,
            data_charged: 0,
            limit,
            evictions,
            classes: SizeClasses::new(),
            class_stats: [ClassStats::default(); MAX_CLASSES + 1],
            counters: StoreCounters::default(),
            cas_next: stride + cas_offset % stride,
            cas_stride: stride,
            oldest_live: 0,
            oldest_cas: 0,
            crawl_cursor: 0,
        }
    }

    /// Items stored (live or not yet reaped).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the store holds no items.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The memory limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Accounted bytes: items' key+value allocations, slot array and index buckets, each as
    /// the allocator rounds it ([`charge`]).
    pub fn used(&self) -> usize {
        self.fixed_bytes() + self.data_charged
    }

    /// Bytes of the slot array (as allocated) and the index.
    pub fn fixed_bytes(&self) -> usize {
        slots_charge(self.items.capacity()) + self.index.bytes()
    }

    /// Bytes of the index.
    pub fn index_bytes(&self) -> usize {
        self.index.bytes()
    }

    /// log2 of the index's bucket count (memcached's `hash_power_level`).
    pub fn index_power(&self) -> u32 {
        self.index.capacity().trailing_zeros()
    }

    /// Bytes held by items (key + value + slot each): the `bytes` statistic.
    pub fn item_bytes(&self) -> usize {
        self.data_bytes + self.count * SLOT_BYTES
    }

    /// Draws the next cas unique.
    pub fn next_cas(&mut self) -> u64 {
        let cas = self.cas_next;
        self.cas_next += self.cas_stride;
        cas
    }

    /// The cas the next item would get (memcached's `get_cas_id` peek for flush).
    fn peek_cas(&self) -> u64 {
        self.cas_next
    }

    /// Sets a new memory limit, evicting at once down to it.
    pub fn set_limit(&mut self, limit: usize, now: u32) {
        self.limit = limit;
        while self.used() > self.limit {
            if let Step::Stuck = self.evict_step(now) {
                break;
            }
        }
        if self.count == 0 && self.fixed_bytes() > self.limit {
            // Nothing to keep: start over with arrays sized for the new limit.
            let fresh = Store::new(limit, self.evictions, 0, 1);
            self.items = fresh.items;
            self.free_head = NIL;
            self.index = fresh.index;
            self.lru_head = NIL;
            self.lru_tail = NIL;
            self.crawl_cursor = 0;
        }
    }

    /// Store-wide counters.
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }

    /// Per-class counters for class `class`, writable (the engine counts hits there).
    #[inline]
    pub fn class_mut(&mut self, class: u8) -> &mut ClassStats {
        &mut self.class_stats[usize::from(class)]
    }

    /// Per-class statistics, with each class's `age` filled in from the eviction end of the
    /// recency list (the first item of the class found walking from the tail, at most
    /// `scan` items).
    pub fn class_stats(&self, now: u32, scan: usize) -> [ClassStats; MAX_CLASSES + 1] {
        let mut stats = self.class_stats;
        let mut seen = [false; MAX_CLASSES + 1];
        let mut slot = self.lru_tail;
        let mut left = scan;
        while slot != NIL && left > 0 {
            let item = &self.items[slot as usize];
            let class = usize::from(item.class);
            if !seen[class] {
                seen[class] = true;
                stats[class].age = u64::from(now.saturating_sub(item.time));
            }
            slot = item.prev;
            left -= 1;
        }
        stats
    }

    /// The size classes.
    pub fn classes(&self) -> &SizeClasses {
        &self.classes
    }

    /// The flush horizon: memcached's `settings.oldest_live` (0: none).
    pub fn oldest_live(&self) -> u32 {
        self.oldest_live
    }

    /// Applies `flush_all`: items last written or read at or before `oldest_live` are invalid
    /// once `now` reaches it, and so are items with a cas below `oldest_cas` (memcached's
    /// `item_is_flushed` with `use_cas`).
    pub fn flush(&mut self, oldest_live: u32, now: u32) {
        self.oldest_live = oldest_live;
        if oldest_live <= now {
            self.oldest_cas = self.peek_cas();
        }
    }

    #[inline]
    fn is_flushed(&self, item: &Item, now: u32) -> bool {
        self.oldest_live != 0
            && self.oldest_live <= now
            && (item.time <= self.oldest_live
                || (self.oldest_cas != 0 && item.cas < self.oldest_cas))
    }

    #[inline]
    fn is_expired(item: &Item, now: u32) -> bool {
        item.exptime != 0 && item.exptime <= now
    }

    /// Whether the item in `slot` is dead (expired or flushed) at `now`.
    pub fn is_dead(&self, slot: u32, now: u32) -> bool {
        let item = &self.items[slot as usize];
        Store::is_expired(item, now) || self.is_flushed(item, now)
    }

    /// The item in `slot`.
    #[inline]
    pub fn item(&self, slot: u32) -> &Item {
        &self.items[slot as usize]
    }

    /// The item in `slot`, writable.
    #[inline]
    pub fn item_mut(&mut self, slot: u32) -> &mut Item {
        &mut self.items[slot as usize]
    }

    #[inline]
    fn probe(&self, hash: u64, key: &[u8]) -> Probe {
        let items = &self.items;
        self.index.probe(hash, |slot| items[slot as usize].key() == key)
    }

    /// Looks a key up. A dead item found is removed on the spot and counted (`get_expired`,
    /// `get_flushed`), as memcached's `do_item_get` does, and reported as absent.
    #[inline]
    pub fn find(&mut self, hash: u64, key: &[u8], now: u32) -> Option<u32> {
        match self.probe(hash, key) {
            Probe::Vacant { .. } => None,
            Probe::Found { bucket, slot } => {
                let item = &self.items[slot as usize];
                if self.is_flushed(item, now) {
                    self.counters.get_flushed += 1;
                    self.unlink(bucket, slot);
                    None
                } else if Store::is_expired(item, now) {
                    self.counters.get_expired += 1;
                    self.unlink(bucket, slot);
                    None
                } else {
                    Some(slot)
                }
            }
        }
    }

    /// The item stored under `key`, dead or alive, without touching anything (diagnostics).
    pub fn peek(&self, key: &[u8]) -> Option<&Item> {
        match self.probe(hash_key(key), key) {
            Probe::Found { slot, .. } => Some(&self.items[slot as usize]),
            Probe::Vacant { .. } => None,
        }
    }

    /// Removes the item in `slot`.
    pub fn remove(&mut self, slot: u32) {
        let hash = self.items[slot as usize].hash;
        let bucket = self.index.bucket_of(hash, slot).expect("a linked item is in the index");
        self.unlink(bucket, slot);
    }

    fn unlink(&mut self, bucket: usize, slot: u32) {
        let items = &self.items;
        self.index.remove(bucket, |s| items[s as usize].hash);
        self.lru_detach(slot);
        let item = &mut self.items[slot as usize];
        let data = core::mem::take(&mut item.data);
        let class = usize::from(item.class);
        *item = Item::free(self.free_head);
        self.free_head = slot;
        self.count -= 1;
        self.data_bytes -= data.len();
        self.data_charged -= charge(data.len());
        let stats = &mut self.class_stats[class];
        stats.number -= 1;
        stats.bytes -= (data.len() + SLOT_BYTES) as u64;
    }

    fn lru_detach(&mut self, slot: u32) {
        let (prev, next) = {
            let item = &self.items[slot as usize];
            (item.prev, item.next)
        };
        if prev == NIL {
            self.lru_head = next;
        } else {
            self.items[prev as usize].next = next;
        }
        if next == NIL {
            self.lru_tail = prev;
        } else {
            self.items[next as usize].prev = prev;
        }
    }

    fn lru_push_head(&mut self, slot: u32) {
        let old_head = self.lru_head;
        {
            let item = &mut self.items[slot as usize];
            item.prev = NIL;
            item.next = old_head;
        }
        if old_head == NIL {
            self.lru_tail = slot;
        } else {
            self.items[old_head as usize].prev = slot;
        }
        self.lru_head = slot;
    }

    /// One step of the eviction hand at the tail of the recency list.
    fn evict_step(&mut self, now: u32) -> Step {
        let slot = self.lru_tail;
        if slot == NIL {
            return Step::Stuck;
        }
        let item = &self.items[slot as usize];
        let class = usize::from(item.class);
        let fetched = item.bits & bits::FETCHED != 0;
        if Store::is_expired(item, now) || self.is_flushed(item, now) {
            let stats = &mut self.class_stats[class];
            stats.reclaimed += 1;
            if !fetched {
                stats.expired_unfetched += 1;
            }
            self.remove(slot);
            return Step::Freed;
        }
        if !self.evictions {
            return Step::Stuck;
        }
        if item.bits & bits::ACCESSED != 0 {
            self.items[slot as usize].bits &= !bits::ACCESSED;
            if self.lru_head != slot {
                self.lru_detach(slot);
                self.lru_push_head(slot);
            }
            return Step::Skipped;
        }
        let (exptime, time) = (item.exptime, item.time);
        let stats = &mut self.class_stats[class];
        stats.evicted += 1;
        stats.evicted_time = u64::from(now.saturating_sub(time));
        if exptime != 0 {
            stats.evicted_nonzero += 1;
        }
        if !fetched {
            stats.evicted_unfetched += 1;
        }
        self.remove(slot);
        Step::Freed
    }

    /// Whether an item of `data_len` key+value bytes could ever be stored.
    pub fn fits(&self, data_len: usize) -> bool {
        self.fixed_bytes() + charge(data_len) <= self.limit
    }

    /// Stores a new item whose key is `data[..key_len]` and value the rest, replacing any item
    /// with the same key (dead or alive), evicting as needed. Returns its slot.
    ///
    /// On [`StoreError::NoMemory`] because the item can never fit, nothing changed; if eviction
    /// is off and memory is full, the old item (if any) is gone, as memcached's `set` drops it.
    pub fn insert(
        &mut self,
        hash: u64,
        data: Box<[u8]>,
        key_len: usize,
        new: NewItem,
        now: u32,
    ) -> Result<u32, StoreError> {
        debug_assert!(key_len <= 250 && key_len <= data.len());
        let class = self.classes.class_of(classes::item_total(
            key_len,
            new.client_flags,
            data.len() - key_len,
        ));
        if !self.fits(data.len()) {
            self.class_stats[usize::from(class)].outofmemory += 1;
            return Err(StoreError::NoMemory);
        }
        if let Probe::Found { bucket, slot } = self.probe(hash, &data[..key_len]) {
            self.unlink(bucket, slot);
        }
        if let Err(e) = self.make_room(data.len(), now) {
            self.class_stats[usize::from(class)].outofmemory += 1;
            return Err(e);
        }
        let bucket = match self.probe(hash, &data[..key_len]) {
            Probe::Vacant { bucket } => bucket,
            Probe::Found { .. } => unreachable!("the key was removed above"),
        };
        let slot = self.free_head;
        self.free_head = self.items[slot as usize].next;
        let cas = if new.cas == 0 { self.next_cas() } else { new.cas };
        let len = data.len();
        self.items[slot as usize] = Item {
            data,
            hash,
            cas,
            exptime: new.exptime,
            time: now,
            client_flags: new.client_flags,
            prev: NIL,
            next: NIL,
            key_len: key_len as u8,
            class,
            bits: new.bits & !bits::FREE,
        };
        self.index.fill(bucket, hash, slot);
        self.lru_push_head(slot);
        self.count += 1;
        self.data_bytes += len;
        self.data_charged += charge(len);
        self.counters.total_items += 1;
        let stats = &mut self.class_stats[usize::from(class)];
        stats.number += 1;
        stats.bytes += (len + SLOT_BYTES) as u64;
        Ok(slot)
    }

    /// Evicts until an item of `data_len` bytes, a free slot and an index entry fit.
    fn make_room(&mut self, data_len: usize, now: u32) -> Result<(), StoreError> {
        let data_charge = charge(data_len);
        while self.used() + data_charge > self.limit {
            if let Step::Stuck = self.evict_step(now) {
                return Err(StoreError::NoMemory);
            }
        }
        while self.free_head == NIL {
            let spare = self.limit - self.used() - data_charge;
            if let Some(capacity) = self.slot_growth(spare) {
                self.grow_slots(capacity - self.items.capacity());
            } else if let Step::Stuck = self.evict_step(now) {
                return Err(StoreError::NoMemory);
            }
        }
        while self.index.needs_growth() {
            if self.used() + data_charge + self.index.growth_bytes() <= self.limit {
                let items = &self.items;
                self.index.grow(|s| items[s as usize].hash);
            } else if let Step::Stuck = self.evict_step(now) {
                return Err(StoreError::NoMemory);
            }
        }
        Ok(())
    }

    /// The slot array's next capacity: about double (at least 64 slots more), less if `spare`
    /// bytes cannot pay for that, and filling the allocation the allocator would round it up
    /// to. `None` when fewer than [`MIN_SLOT_GROWTH`] more slots fit in `spare`.
    fn slot_growth(&self, spare: usize) -> Option<usize> {
        let old = self.items.capacity();
        let paid = slots_charge(old);
        let mut growth = old.max(64);
        while growth >= MIN_SLOT_GROWTH {
            let capacity = slots_filling(old + growth);
            if slots_charge(capacity) - paid <= spare {
                return Some(capacity);
            }
            growth /= 2;
        }
        None
    }

    fn grow_slots(&mut self, growth: usize) {
        self.items.reserve_exact(growth);
        // Thread every new slot onto the free list, lowest first.
        let start = self.items.len();
        let end = self.items.capacity();
        for slot in start..end {
            let next = if slot + 1 < end { (slot + 1) as u32 } else { self.free_head };
            self.items.push(Item::free(next));
        }
        if end > start {
            self.free_head = start as u32;
        }
    }

    /// Replaces the value of the item in `slot` with `data` (same key, `data[..key_len]`),
    /// keeping its metadata but giving it cas `cas`. Used when a value changes length
    /// (append, prepend, incr that grows). Fails if the new size cannot fit.
    pub fn replace_data(
        &mut self,
        slot: u32,
        data: Box<[u8]>,
        cas: u64,
        now: u32,
    ) -> Result<u32, StoreError> {
        let item = &self.items[slot as usize];
        let new = NewItem {
            client_flags: item.client_flags,
            exptime: item.exptime,
            cas,
            bits: item.bits & bits::KEY_BINARY,
        };
        let (hash, key_len) = (item.hash, usize::from(item.key_len));
        self.insert(hash, data, key_len, new, now)
    }

    /// Crawler step: examines up to `8 * budget` slots from where the last step stopped and
    /// reclaims dead items, at most `budget` of them. Returns how many it reclaimed.
    pub fn crawl(&mut self, now: u32, budget: usize) -> usize {
        let slots = self.items.len();
        if slots == 0 || budget == 0 {
            return 0;
        }
        let max_checks = budget.saturating_mul(8).min(slots);
        let mut reclaimed = 0;
        let mut checked = 0;
        while checked < max_checks && reclaimed < budget {
            if self.crawl_cursor >= slots {
                self.crawl_cursor = 0;
            }
            let slot = self.crawl_cursor as u32;
            self.crawl_cursor += 1;
            checked += 1;
            let item = &self.items[slot as usize];
            if item.bits & bits::FREE != 0 {
                continue;
            }
            if self.is_dead(slot, now) {
                let stats = &mut self.class_stats[usize::from(item.class)];
                stats.reclaimed += 1;
                stats.crawler_reclaimed += 1;
                if item.bits & bits::FETCHED == 0 {
                    stats.expired_unfetched += 1;
                }
                self.remove(slot);
                reclaimed += 1;
            }
        }
        self.counters.crawler_items_checked += checked as u64;
        reclaimed
    }

    /// Resets the counters (`stats reset`); item counts and sizes stay.
    pub fn reset_stats(&mut self) {
        for stats in self.class_stats.iter_mut() {
            *stats =
                ClassStats { number: stats.number, bytes: stats.bytes, ..ClassStats::default() };
        }
        self.counters = StoreCounters::default();
    }

    /// Checks the internal invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut n = 0;
        let mut bytes = 0;
        let mut slot = self.lru_head;
        let mut prev = NIL;
        while slot != NIL {
            let item = &self.items[slot as usize];
            assert_eq!(item.prev, prev);
            assert_eq!(item.bits & bits::FREE, 0);
            assert_eq!(hash_key(item.key()), item.hash);
            assert!(
                matches!(self.probe(item.hash, item.key()), Probe::Found { slot: s, .. } if s == slot)
            );
            n += 1;
            bytes += item.data.len();
            prev = slot;
            slot = item.next;
        }
        assert_eq!(self.lru_tail, prev);
        assert_eq!(n, self.count);
        assert_eq!(bytes, self.data_bytes);
        let mut charged = 0;
        for item in &self.items {
            charged += charge(item.data.len());
        }
        assert_eq!(charged, self.data_charged);
        assert!(self.used() <= self.limit, "used {} limit {}", self.used(), self.limit);
        let numbers: u64 = self.class_stats.iter().map(|c| c.number).sum();
        assert_eq!(numbers, self.count as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn data(key: &[u8], value: &[u8]) -> Box<[u8]> {
        let mut v = Vec::with_capacity(key.len() + value.len());
        v.extend_from_slice(key);
        v.extend_from_slice(value);
        v.into_boxed_slice()
    }

    fn put(store: &mut Store, key: &[u8], value: &[u8], now: u32) -> Result<u32, StoreError> {
        store.insert(hash_key(key), data(key, value), key.len(), NewItem::default(), now)
    }

    fn get(store: &mut Store, key: &[u8], now: u32) -> Option<Vec<u8>> {
        let slot = store.find(hash_key(key), key, now)?;
        store.item_mut(slot).bump(now);
        Some(store.item(slot).value().to_vec())
    }

    #[test]
    fn slot_is_56_bytes() {
        assert_eq!(SLOT_BYTES, 56);
    }

    #[test]
    fn insert_find_replace_remove() {
        let mut store = Store::new(1 << 20, true, 0, 1);
        put(&mut store, b"a", b"1", 100).unwrap();
        put(&mut store, b"b", b"2", 100).unwrap();
        put(&mut store, b"a", b"3", 100).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(get(&mut store, b"a", 100).unwrap(), b"3");
        let slot = store.find(hash_key(b"b"), b"b", 100).unwrap();
        store.remove(slot);
        assert_eq!(get(&mut store, b"b", 100), None);
        store.check();
    }

    #[test]
    fn cas_uniques_interleave_across_shards() {
        let mut a = Store::new(1 << 20, true, 0, 3);
        let mut b = Store::new(1 << 20, true, 1, 3);
        let mut c = Store::new(1 << 20, true, 2, 3);
        let mut all = alloc::collections::BTreeSet::new();
        for _ in 0..100 {
            for s in [&mut a, &mut b, &mut c] {
                let cas = s.next_cas();
                assert!(cas != 0);
                assert!(all.insert(cas));
            }
        }
    }

    #[test]
    fn lazy_expiry_counts() {
        let mut store = Store::new(1 << 20, true, 0, 1);
        let new = NewItem { exptime: 110, ..NewItem::default() };
        store.insert(hash_key(b"k"), data(b"k", b"v"), 1, new, 100).unwrap();
        assert!(store.find(hash_key(b"k"), b"k", 109).is_some());
        assert!(store.find(hash_key(b"k"), b"k", 110).is_none());
        assert_eq!(store.counters().get_expired, 1);
        assert!(store.is_empty());
        store.check();
    }

    #[test]
    fn clock_evicts_least_recently_used() {
        // Room for about four 1000-byte items beyond the fixed arrays.
        let mut store = Store::new(0, true, 0, 1);
        store.set_limit(store.fixed_bytes() + 64 * SLOT_BYTES + 4 * 1001 + 500, 0);
        let value = vec![b'x'; 1000];
        for key in [b"a", b"b", b"c", b"d"] {
            put(&mut store, key, &value, 10).unwrap();
        }
        assert_eq!(store.len(), 4);
        // Read "a": the next store evicts "b", the least recently used.
        assert!(get(&mut store, b"a", 11).is_some());
        put(&mut store, b"e", &value, 12).unwrap();
        assert!(get(&mut store, b"b", 12).is_none());
        assert!(get(&mut store, b"a", 12).is_some());
        // Then "c" (unread), then "d".
        put(&mut store, b"f", &value, 13).unwrap();
        assert!(get(&mut store, b"c", 13).is_none());
        assert!(get(&mut store, b"d", 13).is_some());
        let evicted: u64 = store.class_stats.iter().map(|c| c.evicted).sum();
        assert_eq!(evicted, 2);
        store.check();
    }

    #[test]
    fn expired_items_are_reclaimed_before_live_ones_are_evicted() {
        let mut store = Store::new(0, true, 0, 1);
        store.set_limit(store.fixed_bytes() + 64 * SLOT_BYTES + 3 * 1001 + 500, 0);
        let value = vec![b'x'; 1000];
        let short = NewItem { exptime: 15, ..NewItem::default() };
        store.insert(hash_key(b"old"), data(b"old", &value), 3, short, 10).unwrap();
        put(&mut store, b"b", &value, 10).unwrap();
        put(&mut store, b"c", &value, 10).unwrap();
        put(&mut store, b"d", &value, 20).unwrap();
        let stats: ClassStats = store.class_stats.iter().fold(ClassStats::default(), |mut a, c| {
            a.merge(c);
            a
        });
        assert_eq!((stats.reclaimed, stats.evicted, stats.expired_unfetched), (1, 0, 1));
        store.check();
    }

    #[test]
    fn item_larger_than_the_limit_is_refused_and_nothing_changes() {
        let mut store = Store::new(64 * 1024, true, 0, 1);
        put(&mut store, b"k", b"small", 1).unwrap();
        assert_eq!(put(&mut store, b"k", &vec![0; 70 * 1024], 1), Err(StoreError::NoMemory));
        assert_eq!(get(&mut store, b"k", 1).unwrap(), b"small");
        store.check();
    }

    #[test]
    fn without_eviction_a_full_store_refuses() {
        let mut store = Store::new(0, false, 0, 1);
        store.set_limit(store.fixed_bytes() + 64 * SLOT_BYTES + 2 * 1001 + 100, 0);
        let value = vec![b'x'; 1000];
        put(&mut store, b"a", &value, 1).unwrap();
        put(&mut store, b"b", &value, 1).unwrap();
        assert_eq!(put(&mut store, b"c", &value, 1), Err(StoreError::NoMemory));
        assert!(get(&mut store, b"a", 1).is_some());
        store.check();
    }

    #[test]
    fn crawler_reclaims_expired_items() {
        let mut store = Store::new(1 << 20, true, 0, 1);
        for i in 0..100u32 {
            let key = format!("k{i}");
            let exptime = if i % 2 == 0 { 50 } else { 0 };
            let new = NewItem { exptime, ..NewItem::default() };
            store
                .insert(hash_key(key.as_bytes()), data(key.as_bytes(), b"v"), key.len(), new, 1)
                .unwrap();
        }
        assert_eq!(store.crawl(40, 1000), 0);
        let mut total = 0;
        for _ in 0..100 {
            total += store.crawl(60, 8);
        }
        assert_eq!(total, 50);
        assert_eq!(store.len(), 50);
        store.check();
    }

    #[test]
    fn many_items_grow_and_churn() {
        let mut store = Store::new(256 * 1024, true, 0, 1);
        for i in 0..20_000u32 {
            let key = format!("key{}", i % 5000);
            put(&mut store, key.as_bytes(), &vec![b'v'; (i % 97) as usize], i / 100).unwrap();
            if i % 7 == 0 {
                if let Some(slot) = store.find(hash_key(key.as_bytes()), key.as_bytes(), i / 100) {
                    store.remove(slot);
                }
            }
            if i % 1000 == 0 {
                store.check();
            }
        }
        store.check();
    }
}
