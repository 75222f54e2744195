//! `stats` replies: the general statistics, `settings`, `items`, `slabs` and `sizes`
//! (`protocol.txt`, "Statistics"), with memcached 1.6.18's names, order and formats.
//!
//! What is synthesized, because the store is not memcached's slab allocator (see
//! [`crate::store`]):
//! - `stats items`/`stats slabs` file items under the slab class memcached would have
//!   used. Pages are not real: `total_pages` is the number of 1 MiB pages the class's items
//!   would fill, and `total_malloced` is the store's accounted memory.
//! - All items are in one CLOCK list, reported as memcached's cold segment (`number_cold`,
//!   `hits_to_cold`); the hot/warm/temp figures are 0. `age` is the age of the class's item
//!   nearest the eviction end.
//! - `hash_power_level`/`hash_bytes` describe the largest shard's index and the sum of all.
//!
//! Figures about memcached machinery cairn lacks (slab rebalancing, extstore, the logger,
//! response objects, read buffers) are left out.

use alloc::vec::Vec;

use super::{text, Settings, Shard, VERSION};
use crate::store::classes::{SizeClasses, MAX_CLASSES, SLAB_CHUNK_MAX, SLAB_PAGE_SIZE};
use crate::store::ClassStats;

/// Figures of one shard, or of several summed ([`ShardStats::merge`], `+=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Retrievals (`get` keys, `mg` without `T`).
    pub cmd_get: u64,
    /// Storage commands that got as far as storing (memcached's `cmd_set`).
    pub cmd_set: u64,
    /// Touches (`touch`, `gat` keys, `mg` with `T`).
    pub cmd_touch: u64,
    /// Meta commands executed by shards (`mn` is the server's to add).
    pub cmd_meta: u64,
    /// Retrievals that hit.
    pub get_hits: u64,
    /// Retrievals that missed.
    pub get_misses: u64,
    /// Lookups that found an expired item.
    pub get_expired: u64,
    /// Lookups that found an item invalidated by `flush_all`.
    pub get_flushed: u64,
    /// Deletes that missed.
    pub delete_misses: u64,
    /// Deletes that hit.
    pub delete_hits: u64,
    /// Incrs that missed.
    pub incr_misses: u64,
    /// Incrs that hit.
    pub incr_hits: u64,
    /// Decrs that missed.
    pub decr_misses: u64,
    /// Decrs that hit.
    pub decr_hits: u64,
    /// Cas on a missing key.
    pub cas_misses: u64,
    /// Cas that matched.
    pub cas_hits: u64,
    /// Cas that did not match.
    pub cas_badval: u64,
    /// Touches that hit.
    pub touch_hits: u64,
    /// Touches that missed.
    pub touch_misses: u64,
    /// Stores refused as larger than the item size limit.
    pub store_too_large: u64,
    /// Stores refused for lack of memory.
    pub store_no_memory: u64,
    /// The memory limit in bytes.
    pub limit_maxbytes: u64,
    /// Accounted bytes in use (items, slot arrays, indexes).
    pub total_malloced: u64,
    /// Bytes of the hash indexes.
    pub hash_bytes: u64,
    /// log2 of the largest index's bucket count.
    pub hash_power_level: u32,
    /// Bytes held by items.
    pub bytes: u64,
    /// Items stored.
    pub curr_items: u64,
    /// Items ever stored.
    pub total_items: u64,
    /// Dead items reclaimed that were never read.
    pub expired_unfetched: u64,
    /// Live items evicted that were never read.
    pub evicted_unfetched: u64,
    /// Live items evicted.
    pub evictions: u64,
    /// Dead items reclaimed.
    pub reclaimed: u64,
    /// Dead items the crawler reclaimed.
    pub crawler_reclaimed: u64,
    /// Slots the crawler examined.
    pub crawler_items_checked: u64,
    /// The flush horizon (memcached's `oldest_live`; `stats settings` "oldest").
    pub oldest_live: u32,
    /// Per slab class, indexed by class id (empty or `MAX_CLASSES + 1` long).
    pub classes: Vec<ClassStats>,
}

impl ShardStats {
    /// Adds another shard's figures.
    pub fn merge(&mut self, other: &ShardStats) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += other.$f; )* };
        }
        sum!(
            cmd_get,
            cmd_set,
            cmd_touch,
            cmd_meta,
            get_hits,
            get_misses,
            get_expired,
            get_flushed,
            delete_misses,
            delete_hits,
            incr_misses,
            incr_hits,
            decr_misses,
            decr_hits,
            cas_misses,
            cas_hits,
            cas_badval,
            touch_hits,
            touch_misses,
            store_too_large,
            store_no_memory,
            limit_maxbytes,
            total_malloced,
            hash_bytes,
            bytes,
            curr_items,
            total_items,
            expired_unfetched,
            evicted_unfetched,
            evictions,
            reclaimed,
            crawler_reclaimed,
            crawler_items_checked
        );
        self.hash_power_level = self.hash_power_level.max(other.hash_power_level);
        self.oldest_live = self.oldest_live.max(other.oldest_live);
        if self.classes.len() < other.classes.len() {
            self.classes.resize(other.classes.len(), ClassStats::default());
        }
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge(theirs);
        }
    }
}

impl core::ops::AddAssign<&ShardStats> for ShardStats {
    fn add_assign(&mut self, other: &ShardStats) {
        self.merge(other);
    }
}

impl core::ops::AddAssign<ShardStats> for ShardStats {
    fn add_assign(&mut self, other: ShardStats) {
        self.merge(&other);
    }
}

/// Figures the server keeps (connections, bytes on the wire, process). `Default` is all
/// zeros, accepting connections; fill what is known and take the rest from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStats {
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_s: u32,
    /// Wall-clock Unix seconds.
    pub time_unix_s: u64,
    /// Open connections.
    pub curr_connections: u64,
    /// Connections ever accepted.
    pub total_connections: u64,
    /// Connections refused at the limit.
    pub rejected_connections: u64,
    /// Connection structures allocated.
    pub connection_structures: u64,
    /// Worker threads.
    pub threads: usize,
    /// User CPU time, microseconds.
    pub rusage_user_us: u64,
    /// System CPU time, microseconds.
    pub rusage_system_us: u64,
    /// Bytes read from clients.
    pub bytes_read: u64,
    /// Bytes written to clients.
    pub bytes_written: u64,
    /// `flush_all` commands.
    pub cmd_flush: u64,
    /// `mn` commands (added to the shards' `cmd_meta`).
    pub cmd_meta_noop: u64,
    /// Whether the server is accepting connections.
    pub accepting_conns: bool,
    /// Times the server stopped accepting at the connection limit.
    pub listen_disabled_num: u64,
    /// Times a connection yielded after `reqs_per_event` requests.
    pub conn_yields: u64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            pid: 0,
            uptime_s: 0,
            time_unix_s: 0,
            curr_connections: 0,
            total_connections: 0,
            rejected_connections: 0,
            connection_structures: 0,
            threads: 0,
            rusage_user_us: 0,
            rusage_system_us: 0,
            bytes_read: 0,
            bytes_written: 0,
            cmd_flush: 0,
            cmd_meta_noop: 0,
            accepting_conns: true,
            listen_disabled_num: 0,
            conn_yields: 0,
        }
    }
}

impl Shard {
    /// This shard's figures.
    pub fn stats(&self) -> ShardStats {
        let store = &self.store;
        let classes = store.class_stats(self.clock, 10_000);
        let c = &self.counters;
        let mut s = ShardStats {
            cmd_get: c.cmd_get,
            cmd_touch: c.cmd_touch,
            cmd_meta: c.cmd_meta,
            get_misses: c.get_misses,
            get_expired: store.counters().get_expired,
            get_flushed: store.counters().get_flushed,
            delete_misses: c.delete_misses,
            incr_misses: c.incr_misses,
            decr_misses: c.decr_misses,
            cas_misses: c.cas_misses,
            touch_misses: c.touch_misses,
            store_too_large: c.store_too_large,
            store_no_memory: c.store_no_memory,
            limit_maxbytes: store.limit() as u64,
            total_malloced: store.used() as u64,
            hash_bytes: store.index_bytes() as u64,
            hash_power_level: store.index_power(),
            bytes: store.item_bytes() as u64,
            curr_items: store.len() as u64,
            total_items: store.counters().total_items,
            crawler_items_checked: store.counters().crawler_items_checked,
            oldest_live: store.oldest_live(),
            classes: classes.to_vec(),
            ..ShardStats::default()
        };
        for class in &classes {
            s.cmd_set += class.cmd_set;
            s.get_hits += class.get_hits;
            s.delete_hits += class.delete_hits;
            s.incr_hits += class.incr_hits;
            s.decr_hits += class.decr_hits;
            s.cas_hits += class.cas_hits;
            s.cas_badval += class.cas_badval;
            s.touch_hits += class.touch_hits;
            s.expired_unfetched += class.expired_unfetched;
            s.evicted_unfetched += class.evicted_unfetched;
            s.evictions += class.evicted;
            s.reclaimed += class.reclaimed;
            s.crawler_reclaimed += class.crawler_reclaimed;
        }
        s
    }
}

/// Appends `STAT <name> <value>\r\n`.
fn stat(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    text::push_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `STAT <name> <text>\r\n`.
fn stat_str(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `STAT <prefix>:<name> <value>\r\n` (`items:3:number`, `3:chunk_size`).
fn stat_class(out: &mut Vec<u8>, prefix: &str, class: usize, name: &str, value: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(prefix.as_bytes());
    text::push_u64(out, class as u64);
    out.push(b':');
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    text::push_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `sec.usec`, as memcached prints rusage.
fn push_seconds(out: &mut Vec<u8>, micros: u64) {
    text::push_u64(out, micros / 1_000_000);
    out.push(b'.');
    let frac = micros % 1_000_000;
    let (buf, len) = text::u64_digits(frac);
    out.extend(core::iter::repeat_n(b'0', 6 - len));
    out.extend_from_slice(&buf[..len]);
}

/// Writes the reply to `stats <args>`: general statistics (no args), `settings`, `items`,
/// `slabs`, `sizes`, `reset` (the answer only: the server resets the shards with
/// [`Shard::reset_stats`]); anything else gets memcached's `ERROR` (`conns` is the server's
/// to answer, as it alone knows the connections). `shards` is the sum of every shard's
/// [`Shard::stats`].
pub fn write_stats(
    args: &[&[u8]],
    shards: &ShardStats,
    server: &ServerStats,
    settings: &Settings,
    out: &mut Vec<u8>,
) {
    match args.first().copied() {
        None => general(shards, server, settings, out),
        Some(b"settings") => settings_stats(shards, settings, out),
        Some(b"items") => items(shards, out),
        Some(b"slabs") => slabs(shards, out),
        Some(b"sizes") => out.extend_from_slice(b"STAT sizes_status disabled\r\n"),
        Some(b"reset") => return out.extend_from_slice(b"RESET\r\n"),
        Some(_) => return out.extend_from_slice(b"ERROR\r\n"),
    }
    out.extend_from_slice(b"END\r\n");
}

fn general(s: &ShardStats, server: &ServerStats, settings: &Settings, out: &mut Vec<u8>) {
    stat(out, "pid", u64::from(server.pid));
    stat(out, "uptime", u64::from(server.uptime_s));
    stat(out, "time", server.time_unix_s);
    stat_str(out, "version", VERSION.as_bytes());
    stat(out, "pointer_size", (core::mem::size_of::<usize>() * 8) as u64);
    out.extend_from_slice(b"STAT rusage_user ");
    push_seconds(out, server.rusage_user_us);
    out.extend_from_slice(b"\r\nSTAT rusage_system ");
    push_seconds(out, server.rusage_system_us);
    out.extend_from_slice(b"\r\n");
    stat(out, "max_connections", settings.conn_limit as u64);
    stat(out, "curr_connections", server.curr_connections);
    stat(out, "total_connections", server.total_connections);
    stat(out, "rejected_connections", server.rejected_connections);
    stat(out, "connection_structures", server.connection_structures);
    stat(out, "cmd_get", s.cmd_get);
    stat(out, "cmd_set", s.cmd_set);
    stat(out, "cmd_flush", server.cmd_flush);
    stat(out, "cmd_touch", s.cmd_touch);
    stat(out, "cmd_meta", s.cmd_meta + server.cmd_meta_noop);
    stat(out, "get_hits", s.get_hits);
    stat(out, "get_misses", s.get_misses);
    stat(out, "get_expired", s.get_expired);
    stat(out, "get_flushed", s.get_flushed);
    stat(out, "delete_misses", s.delete_misses);
    stat(out, "delete_hits", s.delete_hits);
    stat(out, "incr_misses", s.incr_misses);
    stat(out, "incr_hits", s.incr_hits);
    stat(out, "decr_misses", s.decr_misses);
    stat(out, "decr_hits", s.decr_hits);
    stat(out, "cas_misses", s.cas_misses);
    stat(out, "cas_hits", s.cas_hits);
    stat(out, "cas_badval", s.cas_badval);
    stat(out, "touch_hits", s.touch_hits);
    stat(out, "touch_misses", s.touch_misses);
    stat(out, "store_too_large", s.store_too_large);
    stat(out, "store_no_memory", s.store_no_memory);
    stat(out, "auth_cmds", 0);
    stat(out, "auth_errors", 0);
    stat(out, "bytes_read", server.bytes_read);
    stat(out, "bytes_written", server.bytes_written);
    stat(out, "limit_maxbytes", s.limit_maxbytes);
    stat(out, "accepting_conns", u64::from(server.accepting_conns));
    stat(out, "listen_disabled_num", server.listen_disabled_num);
    stat(out, "threads", server.threads as u64);
    stat(out, "conn_yields", server.conn_yields);
    stat(out, "hash_power_level", u64::from(s.hash_power_level));
    stat(out, "hash_bytes", s.hash_bytes);
    stat(out, "hash_is_expanding", 0);
    stat(out, "bytes", s.bytes);
    stat(out, "curr_items", s.curr_items);
    stat(out, "total_items", s.total_items);
    stat(out, "expired_unfetched", s.expired_unfetched);
    stat(out, "evicted_unfetched", s.evicted_unfetched);
    stat(out, "evicted_active", 0);
    stat(out, "evictions", s.evictions);
    stat(out, "reclaimed", s.reclaimed);
    stat(out, "crawler_reclaimed", s.crawler_reclaimed);
    stat(out, "crawler_items_checked", s.crawler_items_checked);
}

fn settings_stats(s: &ShardStats, settings: &Settings, out: &mut Vec<u8>) {
    let yes_no = |b: bool| if b { &b"yes"[..] } else { &b"no"[..] };
    stat(out, "maxbytes", settings.memory_limit as u64);
    stat(out, "maxconns", settings.conn_limit as u64);
    stat(out, "tcpport", u64::from(settings.port));
    stat(out, "udpport", u64::from(settings.udp_port));
    let inter = if settings.listen.is_empty() { &b"NULL"[..] } else { settings.listen.as_bytes() };
    stat_str(out, "inter", inter);
    stat(out, "verbosity", u64::from(settings.verbosity));
    stat(out, "oldest", u64::from(s.oldest_live));
    stat_str(out, "evictions", if settings.evictions { b"on" } else { b"off" });
    stat_str(out, "domain_socket", b"NULL");
    stat_str(out, "umask", b"700");
    stat_str(out, "shutdown_command", b"no");
    stat_str(out, "growth_factor", b"1.25");
    stat(out, "chunk_size", crate::store::classes::CHUNK_SIZE as u64);
    stat(out, "num_threads", settings.threads as u64);
    stat(out, "num_threads_per_udp", settings.threads as u64);
    stat_str(out, "stat_key_prefix", b":");
    stat_str(out, "detail_enabled", b"no");
    stat(out, "reqs_per_event", u64::from(settings.reqs_per_event));
    stat_str(out, "cas_enabled", b"yes");
    stat(out, "tcp_backlog", u64::from(settings.tcp_backlog));
    stat_str(out, "binding_protocol", b"ascii");
    stat_str(out, "auth_enabled_sasl", b"no");
    stat_str(out, "auth_enabled_ascii", b"no");
    stat(out, "item_size_max", settings.max_item_size as u64);
    stat_str(out, "maxconns_fast", b"yes");
    stat(out, "hashpower_init", 0);
    stat_str(out, "slab_reassign", b"no");
    stat(out, "slab_automove", 0);
    stat(out, "slab_chunk_max", SLAB_CHUNK_MAX as u64);
    stat_str(out, "lru_crawler", b"yes");
    stat(out, "tail_repair_time", 0);
    stat_str(out, "flush_enabled", yes_no(settings.flush_enabled));
    stat_str(out, "dump_enabled", b"no");
    stat_str(out, "hash_algorithm", b"wyfold");
    stat_str(out, "lru_maintainer_thread", b"no");
    stat_str(out, "lru_segmented", b"no");
    stat_str(out, "temp_lru", b"no");
    stat(out, "idle_timeout", u64::from(settings.idle_timeout));
    stat_str(out, "track_sizes", b"no");
    stat_str(out, "inline_ascii_response", b"no");
}

fn items(s: &ShardStats, out: &mut Vec<u8>) {
    for (id, c) in s.classes.iter().enumerate().take(MAX_CLASSES + 1) {
        if c.number == 0 {
            continue;
        }
        let mut line = |name: &str, value: u64| stat_class(out, "items:", id, name, value);
        line("number", c.number);
        line("number_hot", 0);
        line("number_warm", 0);
        line("number_cold", c.number);
        line("age_hot", 0);
        line("age_warm", 0);
        line("age", c.age);
        line("mem_requested", c.bytes);
        line("evicted", c.evicted);
        line("evicted_nonzero", c.evicted_nonzero);
        line("evicted_time", c.evicted_time);
        line("outofmemory", c.outofmemory);
        line("tailrepairs", 0);
        line("reclaimed", c.reclaimed);
        line("expired_unfetched", c.expired_unfetched);
        line("evicted_unfetched", c.evicted_unfetched);
        line("evicted_active", 0);
        line("crawler_reclaimed", c.crawler_reclaimed);
        line("crawler_items_checked", 0);
        line("lrutail_reflocked", 0);
        line("moves_to_cold", 0);
        line("moves_to_warm", 0);
        line("moves_within_lru", 0);
        line("direct_reclaims", 0);
        line("hits_to_hot", 0);
        line("hits_to_warm", 0);
        line("hits_to_cold", c.get_hits);
        line("hits_to_temp", 0);
    }
}

fn slabs(s: &ShardStats, out: &mut Vec<u8>) {
    let sizes = SizeClasses::new();
    let mut active = 0;
    for (id, c) in s.classes.iter().enumerate().take(MAX_CLASSES + 1) {
        if id == 0 || !c.is_used() {
            continue;
        }
        active += 1;
        let chunk = sizes.chunk_size(id as u8) as u64;
        let per_page = (SLAB_PAGE_SIZE as u64 / chunk).max(1);
        let pages = c.number.div_ceil(per_page).max(1);
        let mut line = |name: &str, value: u64| stat_class(out, "", id, name, value);
        line("chunk_size", chunk);
        line("chunks_per_page", per_page);
        line("total_pages", pages);
        line("total_chunks", pages * per_page);
        line("used_chunks", c.number);
        line("free_chunks", pages * per_page - c.number);
        line("free_chunks_end", 0);
        line("get_hits", c.get_hits);
        line("cmd_set", c.cmd_set);
        line("delete_hits", c.delete_hits);
        line("incr_hits", c.incr_hits);
        line("decr_hits", c.decr_hits);
        line("cas_hits", c.cas_hits);
        line("cas_badval", c.cas_badval);
        line("touch_hits", c.touch_hits);
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", s.total_malloced);
}
