//! The command executor: what each memcached command does to one shard's [`Store`], and the
//! exact bytes of its reply.
//!
//! The reference is memcached's `protocol.txt`; where it is silent or loose, memcached
//! 1.6.18's behaviour is (`proto_text.c`, `memcached.c`'s `do_store_item` and
//! `do_add_delta`, `items.c`'s `do_item_get`), checked by sending it the same bytes. The unit
//! tests quote those exchanges.
//!
//! A [`Shard`] owns one store and the command counters of its core; the server sends each
//! single-key request to the shard that owns the key ([`shard_of`]) and merges the shards'
//! [`ShardStats`] for `stats`.
//!
//! Departures from memcached 1.6.18, each deliberate:
//! - Meta commands accept `E(token)` (set the new cas), from later memcached releases;
//!   1.6.18 answers `CLIENT_ERROR invalid flag`.
//! - Recency is CLOCK over one list per shard instead of segmented per-class LRUs (see
//!   [`crate::store`]), so `la=`/`l` report the last access exactly rather than memcached's
//!   bump-rate-limited time, and eviction does not depend on an item's size class.
//! - A meta command whose opaque token is too long is refused before it changes anything;
//!   memcached may apply part of it first.

mod classic;
mod meta;
mod stats;
pub mod text;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;

use crate::protocol::{GetKind, Request};
use crate::store::Store;

pub use crate::store::{hash_key, shard_of};
pub use stats::{write_stats, ServerStats, ShardStats};

/// The version this server reports (`version`, `stats`): memcached's protocol level, then
/// ours. Clients and memcached's own tests read the leading `major.minor.patch`.
pub const VERSION: &str = "1.6.18-cairn";

/// memcached's `REALTIME_MAXDELTA`: exptimes up to 30 days are relative, larger ones are
/// absolute Unix times (`protocol.txt`, "Expiration times").
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// The longest key (`protocol.txt`, "Keys"; memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// memcached starts its clock this many seconds before the process did
/// (`ITEM_UPDATE_INTERVAL + 2`, `memcached.c`, `stats_init`), so a relative time of 1 is
/// always in the past and "no flush" (0) differs from every real flush time.
const CLOCK_OFFSET: u32 = 62;

/// The time a command runs at, read once per batch by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Wall-clock seconds since the Unix epoch (for absolute expiry times).
    pub unix_s: u64,
    /// Seconds since the server started (memcached's `current_time`, less its fixed offset).
    pub uptime_s: u32,
}

impl Now {
    /// memcached's `current_time`: the relative clock items are stamped with.
    #[inline]
    pub fn rel(self) -> u32 {
        self.uptime_s.saturating_add(CLOCK_OFFSET)
    }

    /// memcached's `realtime(EXPTIME_TO_POSITIVE_TIME(exptime))`: a protocol exptime as a
    /// relative time. 0 is never (0); up to 30 days is relative to now; beyond that an
    /// absolute Unix time, 1 (long past) if at or before the server's start; negative is
    /// already expired.
    pub fn expiry(self, exptime: i64) -> u32 {
        let exptime = if exptime < 0 { REALTIME_MAXDELTA + 1 } else { exptime };
        if exptime == 0 {
            return 0;
        }
        let rel = self.rel();
        if exptime > REALTIME_MAXDELTA {
            let started = self.unix_s as i64 - i64::from(rel);
            if exptime <= started {
                1
            } else {
                (exptime - started).min(i64::from(u32::MAX)) as u32
            }
        } else {
            rel.saturating_add(exptime as u32)
        }
    }
}

/// Server settings the engine and `stats settings` need (memcached's command-line options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Bytes for the whole cache (`-m`, in bytes).
    pub memory_limit: usize,
    /// Largest item, memcached's item size with header (`-I`).
    pub max_item_size: usize,
    /// Worker threads, one shard each (`-t`).
    pub threads: usize,
    /// Simultaneous connections (`-c`).
    pub conn_limit: usize,
    /// TCP port (`-p`).
    pub port: u16,
    /// UDP port (`-U`; 0 off).
    pub udp_port: u16,
    /// The address listened on (`-l`; empty: all).
    pub listen: String,
    /// Verbosity (`-v`, `verbosity`).
    pub verbosity: u32,
    /// Evict when full (`-M` turns it off: stores fail with an out-of-memory error).
    pub evictions: bool,
    /// Whether `flush_all` is allowed (`-F` turns it off).
    pub flush_enabled: bool,
    /// Listen backlog (`-b`).
    pub tcp_backlog: u32,
    /// Requests handled per connection per event (`-R`).
    pub reqs_per_event: u32,
    /// Idle connection timeout in seconds (0: none).
    pub idle_timeout: u32,
}

impl Default for Settings {
    /// memcached's defaults: 64 MiB, 1 MiB items, 4 threads, 1024 connections, port 11211.
    fn default() -> Self {
        Settings {
            memory_limit: 64 * 1024 * 1024,
            max_item_size: 1024 * 1024,
            threads: 4,
            conn_limit: 1024,
            port: 11211,
            udp_port: 0,
            listen: String::new(),
            verbosity: 0,
            evictions: true,
            flush_enabled: true,
            tcp_backlog: 1024,
            reqs_per_event: 20,
            idle_timeout: 0,
        }
    }
}

/// Command counters of one shard that the store does not keep.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    cmd_get: u64,
    cmd_touch: u64,
    cmd_meta: u64,
    get_misses: u64,
    touch_misses: u64,
    delete_misses: u64,
    incr_misses: u64,
    decr_misses: u64,
    cas_misses: u64,
    store_too_large: u64,
    store_no_memory: u64,
}

/// One core's part of the cache: a [`Store`] and the command counters. Touched only by its
/// core; the server sends it work with `spawn_on`.
pub struct Shard {
    store: Store,
    max_item_size: usize,
    counters: Counters,
    /// The latest relative time a command ran at (for work that is given no [`Now`]).
    clock: u32,
}

/// What the shared store path decided (`do_store_item`'s `store_item_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Stored(u64),
    Exists,
    NotFound,
    NotStored,
    NoMemory,
}

/// What incr/decr decided (`do_add_delta`'s `delta_result_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delta {
    /// The new value's digits (`len` of `buf`) and the item's slot.
    Ok {
        slot: u32,
        buf: [u8; 20],
        len: usize,
    },
    NotFound,
    NonNumeric,
    CasMismatch,
    NoMemory,
}

impl Shard {
    /// Shard `index` of `count`, with `memory_limit / count` of the memory.
    pub fn new(settings: &Settings, index: usize, count: usize) -> Shard {
        let count = count.max(1);
        Shard {
            store: Store::new(
                settings.memory_limit / count,
                settings.evictions,
                index as u64,
                count as u64,
            ),
            max_item_size: settings.max_item_size,
            counters: Counters::default(),
            clock: 0,
        }
    }

    /// Removes `key`'s item without a reply or a command count: what memcached does to the old
    /// item when a `set` or `ms` for its key is refused as too large
    /// ([`Parsed::Invalid`](crate::protocol::Parsed::Invalid)'s `unlink`).
    pub fn unlink(&mut self, key: &[u8], now: Now) {
        self.clock = now.rel();
        if let Some(slot) = self.store.find(crate::store::hash::hash_key(key), key, now.rel()) {
            self.store.remove(slot);
        }
    }

    /// The shard's store (read-only; for tests and diagnostics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Executes a single-key request and appends the exact reply bytes to `out` (nothing for
    /// `noreply`, nor for what meta `q` mode suppresses).
    ///
    /// Also accepted, for a server with one shard or for tests: `get`-family requests (every
    /// key, then `END`), `flush_all` (this shard only, then `OK`), `mn`, `version` and
    /// `verbosity`. `stats`, `quit` and `cache_memlimit` concern the whole server, which
    /// answers them; given here they get `ERROR`.
    pub fn execute(&mut self, request: &Request<'_>, now: Now, out: &mut Vec<u8>) {
        self.clock = now.rel();
        match request {
            Request::Store { kind, key, flags, exptime, cas, noreply, data } => {
                self.store_command(*kind, key, *flags, *exptime, *cas, *noreply, data, now, out)
            }
            Request::Delete { key, noreply } => self.delete(key, *noreply, now, out),
            Request::Arith { incr, key, delta, noreply } => {
                self.arith(*incr, key, *delta, *noreply, now, out)
            }
            Request::Touch { key, exptime, noreply } => {
                self.touch(key, *exptime, *noreply, now, out)
            }
            Request::Get { kind, exptime, keys } => {
                for key in keys {
                    self.get_one(*kind, *exptime, key, now, out);
                }
                out.extend_from_slice(b"END\r\n");
            }
            Request::MetaGet { key, flags } => self.meta_get(key, flags, now, out),
            Request::MetaSet { key, data, flags } => self.meta_set(key, data, flags, now, out),
            Request::MetaDelete { key, flags } => self.meta_delete(key, flags, now, out),
            Request::MetaArith { key, flags } => self.meta_arith(key, flags, now, out),
            Request::MetaDebug { key, flags: _ } => self.meta_debug(key, now, out),
            Request::FlushAll { delay, noreply } => {
                self.flush_all(*delay, now);
                if !noreply {
                    out.extend_from_slice(b"OK\r\n");
                }
            }
            Request::MetaNoop => out.extend_from_slice(b"MN\r\n"),
            Request::Version => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(VERSION.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Request::Verbosity { noreply, .. } => {
                if !noreply {
                    out.extend_from_slice(b"OK\r\n");
                }
            }
            Request::Stats { .. } | Request::Quit | Request::CacheMemlimit { .. } => {
                out.extend_from_slice(b"ERROR\r\n")
            }
        }
    }

    /// One key of a `get`/`gets`/`gat`/`gats`: appends `VALUE <key> <flags> <bytes>[ <cas>]`
    /// and the data if the key is present; nothing on a miss. The server writes the final
    /// `END\r\n`. `exptime` is the new expiry for `gat`/`gats`.
    #[inline]
    pub fn get_one(
        &mut self,
        kind: GetKind,
        exptime: Option<i64>,
        key: &[u8],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        if key.len() > KEY_MAX_LENGTH {
            return;
        }
        let rel = now.rel();
        self.clock = rel;
        let Some(slot) = self.store.find(hash_key(key), key, rel) else {
            if exptime.is_some() {
                self.counters.cmd_touch += 1;
                self.counters.touch_misses += 1;
            } else {
                self.counters.cmd_get += 1;
                self.counters.get_misses += 1;
            }
            return;
        };
        let class = self.store.item(slot).class();
        if let Some(exptime) = exptime {
            self.counters.cmd_touch += 1;
            self.store.class_mut(class).touch_hits += 1;
            self.store.item_mut(slot).set_exptime(now.expiry(exptime));
        } else {
            self.counters.cmd_get += 1;
            self.store.class_mut(class).get_hits += 1;
        }
        let item = self.store.item_mut(slot);
        item.bump(rel);
        let value = item.value();
        out.reserve(value.len() + key.len() + 48);
        out.extend_from_slice(b"VALUE ");
        out.extend_from_slice(key);
        out.push(b' ');
        text::push_u64(out, u64::from(item.client_flags()));
        out.push(b' ');
        text::push_u64(out, value.len() as u64);
        if matches!(kind, GetKind::Gets | GetKind::Gats) {
            out.push(b' ');
            text::push_u64(out, item.cas());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }

    /// Applies `flush_all [delay]` to this shard (the server broadcasts it to every shard,
    /// then answers `OK`). memcached's semantics (`process_flush_all_command`,
    /// `item_is_flushed`): the flush time is `realtime(delay)` (now if 0 or negative); items
    /// last stored or read at or before one second earlier become invalid once it arrives, and
    /// an immediate flush also invalidates everything stored before it in the current second
    /// (by cas). An item stored in the second before a delayed flush fires is flushed too.
    pub fn flush_all(&mut self, delay: i64, now: Now) {
        let rel = now.rel();
        let new_oldest = if delay > 0 { now.expiry(delay) } else { rel };
        self.store.flush(new_oldest.saturating_sub(1), rel);
    }

    /// Sets this shard's memory limit (`cache_memlimit`, the server divides by the shard
    /// count), evicting down to it at once.
    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.store.set_limit(bytes, self.clock);
    }

    /// Background expiry crawler step, for an idle handler or timer: reclaims up to `budget`
    /// expired or flushed items (examining at most `8 * budget` slots), returns how many.
    pub fn crawl(&mut self, now: Now, budget: usize) -> usize {
        self.store.crawl(now.rel(), budget)
    }

    /// Resets the counters (`stats reset`); item counts stay.
    pub fn reset_stats(&mut self) {
        self.counters = Counters::default();
        self.store.reset_stats();
    }

    /// Builds the `data` allocation: key then value.
    fn item_data(key: &[u8], parts: [&[u8]; 2]) -> alloc::boxed::Box<[u8]> {
        let mut data = Vec::with_capacity(key.len() + parts[0].len() + parts[1].len());
        data.extend_from_slice(key);
        data.extend_from_slice(parts[0]);
        data.extend_from_slice(parts[1]);
        data.into_boxed_slice()
    }

    /// memcached's `do_store_item` for every storage mode. `req_cas` 0 means none;
    /// `set_stale` is `ms .. I` in cas mode; `new_cas` is `E` (0: draw one).
    #[allow(clippy::too_many_arguments)]
    fn do_store(
        &mut self,
        kind: crate::protocol::StoreKind,
        key: &[u8],
        data: &[u8],
        client_flags: u32,
        exptime: u32,
        req_cas: u64,
        set_stale: bool,
        new_cas: u64,
        item_bits: u8,
        rel: u32,
    ) -> Outcome {
        use crate::protocol::StoreKind;
        use crate::store::{bits, NewItem};
        let hash = hash_key(key);
        let total = crate::store::classes::item_total(key.len(), client_flags, data.len());
        let new_class = self.store.classes().class_of(total);
        self.store.class_mut(new_class).cmd_set += 1;
        let mut new = NewItem { client_flags, exptime, cas: new_cas, bits: item_bits };
        let old = self.store.find(hash, key, rel);
        let Some(slot) = old else {
            return match kind {
                StoreKind::Set | StoreKind::Add => {
                    match self.store.insert(
                        hash,
                        Shard::item_data(key, [data, b""]),
                        key.len(),
                        new,
                        rel,
                    ) {
                        Ok(slot) => Outcome::Stored(self.store.item(slot).cas()),
                        Err(_) => Outcome::NoMemory,
                    }
                }
                StoreKind::Cas => {
                    self.counters.cas_misses += 1;
                    Outcome::NotFound
                }
                StoreKind::Replace | StoreKind::Append | StoreKind::Prepend => Outcome::NotStored,
            };
        };
        let (old_cas, old_class) = {
            let item = self.store.item(slot);
            (item.cas(), item.class())
        };
        #[derive(PartialEq)]
        enum CasResult {
            None,
            Match,
            Stale,
            BadVal,
        }
        let cas_res = if req_cas == 0 {
            CasResult::None
        } else if req_cas == old_cas {
            CasResult::Match
        } else if set_stale && req_cas < old_cas {
            CasResult::Stale
        } else {
            CasResult::BadVal
        };
        let data = match kind {
            StoreKind::Add => {
                // "add only adds a nonexistent item, but promote to head of LRU".
                let item = self.store.item_mut(slot);
                item.update_bits(bits::ACCESSED, 0);
                return Outcome::NotStored;
            }
            StoreKind::Cas => match cas_res {
                CasResult::Match => {
                    self.store.class_mut(old_class).cas_hits += 1;
                    Shard::item_data(key, [data, b""])
                }
                CasResult::Stale => {
                    self.store.class_mut(old_class).cas_hits += 1;
                    let item = self.store.item(slot);
                    new.exptime = item.exptime();
                    new.bits |= bits::STALE | (item.bits() & bits::TOKEN_SENT);
                    Shard::item_data(key, [data, b""])
                }
                CasResult::None | CasResult::BadVal => {
                    self.store.class_mut(old_class).cas_badval += 1;
                    return Outcome::Exists;
                }
            },
            StoreKind::Append | StoreKind::Prepend => {
                if cas_res != CasResult::None && cas_res != CasResult::Match {
                    return Outcome::Exists;
                }
                let item = self.store.item(slot);
                new.client_flags = item.client_flags();
                new.exptime = item.exptime();
                if kind == StoreKind::Append {
                    Shard::item_data(key, [item.value(), data])
                } else {
                    Shard::item_data(key, [data, item.value()])
                }
            }
            StoreKind::Set | StoreKind::Replace => Shard::item_data(key, [data, b""]),
        };
        match self.store.insert(hash, data, key.len(), new, rel) {
            Ok(slot) => Outcome::Stored(self.store.item(slot).cas()),
            Err(_) => Outcome::NoMemory,
        }
    }

    /// memcached's `do_add_delta`: incr (wrapping at 2^64) or decr (stopping at 0) a decimal
    /// value. A result no longer than the old value is written in place, padded with spaces
    /// as memcached does; a longer one reallocates. Either way the item gets a new cas.
    fn add_delta(
        &mut self,
        key: &[u8],
        incr: bool,
        delta: u64,
        req_cas: u64,
        new_cas: u64,
        rel: u32,
    ) -> Delta {
        let Some(slot) = self.store.find(hash_key(key), key, rel) else {
            return Delta::NotFound;
        };
        let item = self.store.item(slot);
        if item.value().is_empty() {
            return Delta::NonNumeric;
        }
        if req_cas != 0 && item.cas() != req_cas {
            return Delta::CasMismatch;
        }
        let Some(value) = text::parse_strtoull(item.value()) else {
            return Delta::NonNumeric;
        };
        let value = if incr { value.wrapping_add(delta) } else { value.saturating_sub(delta) };
        let class = item.class();
        if incr {
            self.store.class_mut(class).incr_hits += 1;
        } else {
            self.store.class_mut(class).decr_hits += 1;
        }
        let (buf, len) = text::u64_digits(value);
        let cas = if new_cas != 0 { new_cas } else { self.store.next_cas() };
        let old_len = self.store.item(slot).value().len();
        if len <= old_len {
            let item = self.store.item_mut(slot);
            let v = item.value_mut();
            v[..len].copy_from_slice(&buf[..len]);
            v[len..].fill(b' ');
            item.modified(rel, cas);
            Delta::Ok { slot, buf, len }
        } else {
            let data = Shard::item_data(key, [&buf[..len], b""]);
            match self.store.replace_data(slot, data, cas, rel) {
                Ok(slot) => Delta::Ok { slot, buf, len },
                Err(_) => Delta::NoMemory,
            }
        }
    }
}
