//! Unit tests of every command path. Expected replies are what memcached 1.6.18 answered to
//! the same bytes (`memcached -p 22123 -U 0 -l 127.0.0.1 -t 1`, python sockets); cas values
//! differ from memcached's global counter and are read back where they matter.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::protocol::{MetaFlag, MetaFlags, StoreKind};

/// Decodes standard base64 (test keys only).
fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = vec![];
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn meta_flags(tokens: &[&'static str]) -> MetaFlags<'static> {
    MetaFlags {
        flags: tokens
            .iter()
            .map(|t| MetaFlag { flag: t.as_bytes()[0], token: &t.as_bytes()[1..] })
            .collect(),
    }
}

fn meta_key(key: &'static str, tokens: &[&'static str]) -> Cow<'static, [u8]> {
    if tokens.contains(&"b") {
        Cow::Owned(b64decode(key))
    } else {
        Cow::Borrowed(key.as_bytes())
    }
}

/// Builds a request from a command line (and data block), like the parser would.
pub(super) fn request(line: &'static str, data: &'static [u8]) -> Request<'static> {
    let t: Vec<&'static str> = line.split(' ').collect();
    let noreply = t.last() == Some(&"noreply");
    let num = |i: usize| t[i].parse::<i64>().unwrap();
    let store = |kind| Request::Store {
        kind,
        key: t[1].as_bytes(),
        flags: t[2].parse().unwrap(),
        exptime: num(3),
        cas: if kind == StoreKind::Cas { t[5].parse().unwrap() } else { 0 },
        noreply,
        data,
    };
    let keys = |from: usize| t[from..].iter().map(|k| k.as_bytes()).collect();
    match t[0] {
        "get" => Request::Get { kind: GetKind::Get, exptime: None, keys: keys(1) },
        "gets" => Request::Get { kind: GetKind::Gets, exptime: None, keys: keys(1) },
        "gat" => Request::Get { kind: GetKind::Gat, exptime: Some(num(1)), keys: keys(2) },
        "gats" => Request::Get { kind: GetKind::Gats, exptime: Some(num(1)), keys: keys(2) },
        "set" => store(StoreKind::Set),
        "add" => store(StoreKind::Add),
        "replace" => store(StoreKind::Replace),
        "append" => store(StoreKind::Append),
        "prepend" => store(StoreKind::Prepend),
        "cas" => store(StoreKind::Cas),
        "delete" => Request::Delete { key: t[1].as_bytes(), noreply },
        "incr" | "decr" => Request::Arith {
            incr: t[0] == "incr",
            key: t[1].as_bytes(),
            delta: t[2].parse().unwrap(),
            noreply,
        },
        "touch" => Request::Touch { key: t[1].as_bytes(), exptime: num(2), noreply },
        "flush_all" => Request::FlushAll {
            delay: if t.len() > 1 && t[1] != "noreply" { num(1) } else { 0 },
            noreply,
        },
        "mn" => Request::MetaNoop,
        "mg" => Request::MetaGet { key: meta_key(t[1], &t[2..]), flags: meta_flags(&t[2..]) },
        "ms" => Request::MetaSet { key: meta_key(t[1], &t[3..]), data, flags: meta_flags(&t[3..]) },
        "md" => Request::MetaDelete { key: meta_key(t[1], &t[2..]), flags: meta_flags(&t[2..]) },
        "ma" => Request::MetaArith { key: meta_key(t[1], &t[2..]), flags: meta_flags(&t[2..]) },
        "me" => Request::MetaDebug { key: meta_key(t[1], &t[2..]), flags: meta_flags(&t[2..]) },
        other => panic!("test harness does not know {other}"),
    }
}

/// A shard and a clock.
pub(super) struct Harness {
    pub shard: Shard,
    pub t: u32,
}

pub(super) const EPOCH: u64 = 1_700_000_000;

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Settings::default(), 0, 1)
    }

    pub fn with(settings: Settings, index: usize, count: usize) -> Harness {
        Harness { shard: Shard::new(&settings, index, count), t: 10 }
    }

    pub fn now(&self) -> Now {
        Now { unix_s: EPOCH + u64::from(self.t), uptime_s: self.t }
    }

    /// Runs a command with a data block; returns the reply.
    pub fn d(&mut self, line: &'static str, data: &'static str) -> String {
        let mut out = vec![];
        let now = self.now();
        self.shard.execute(&request(line, data.as_bytes()), now, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Runs a command without data.
    pub fn c(&mut self, line: &'static str) -> String {
        self.d(line, "")
    }

    /// The cas of a key, read without side effects.
    pub fn cas(&mut self, key: &'static str) -> u64 {
        self.shard.store().peek(key.as_bytes()).unwrap().cas()
    }
}

// ---------------------------------------------------------------- storage commands

#[test]
fn set_get_gets_and_multi_get() {
    let mut h = Harness::new();
    assert_eq!(h.d("set a 5 0 2", "10"), "STORED\r\n");
    assert_eq!(h.c("get a"), "VALUE a 5 2\r\n10\r\nEND\r\n");
    let cas = h.cas("a");
    assert_eq!(h.c("gets a"), alloc::format!("VALUE a 5 2 {cas}\r\n10\r\nEND\r\n"));
    assert_eq!(h.d("set b 0 0 0", ""), "STORED\r\n");
    assert_eq!(
        h.c("get a nope b a"),
        "VALUE a 5 2\r\n10\r\nVALUE b 0 0\r\n\r\nVALUE a 5 2\r\n10\r\nEND\r\n"
    );
    assert_eq!(h.d("set a 0 0 1 noreply", "x"), "");
    assert_eq!(h.c("get a"), "VALUE a 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn add_replace() {
    let mut h = Harness::new();
    assert_eq!(h.d("replace k 0 0 1", "x"), "NOT_STORED\r\n");
    assert_eq!(h.d("add k 0 0 1", "x"), "STORED\r\n");
    assert_eq!(h.d("add k 0 0 1", "y"), "NOT_STORED\r\n");
    assert_eq!(h.d("replace k 3 0 1", "z"), "STORED\r\n");
    assert_eq!(h.c("get k"), "VALUE k 3 1\r\nz\r\nEND\r\n");
}

#[test]
fn append_prepend_keep_flags_and_exptime() {
    // memcached: set p 5 100 1 x; append p 7 0 1 y; prepend p 9 0 1 w; gets p ->
    // "VALUE p 5 3 18\r\nwxy\r\nEND\r\n"; append on a missing key -> NOT_STORED.
    let mut h = Harness::new();
    assert_eq!(h.d("append zz 0 0 1", "x"), "NOT_STORED\r\n");
    assert_eq!(h.d("prepend zz 0 0 1", "x"), "NOT_STORED\r\n");
    assert_eq!(h.d("set p 5 100 1", "x"), "STORED\r\n");
    let before = h.cas("p");
    assert_eq!(h.d("append p 7 0 1", "y"), "STORED\r\n");
    assert_eq!(h.d("prepend p 9 0 1", "w"), "STORED\r\n");
    assert!(h.cas("p") > before);
    assert_eq!(h.c("get p"), "VALUE p 5 3\r\nwxy\r\nEND\r\n");
    assert_eq!(h.c("mg p t"), "HD t100\r\n");
    h.t += 100;
    assert_eq!(h.c("get p"), "END\r\n");
}

#[test]
fn cas_command() {
    // memcached: "cas p 0 0 1 999" -> EXISTS; "cas nope 0 0 1 1" -> NOT_FOUND.
    let mut h = Harness::new();
    assert_eq!(h.d("set p 0 0 1", "x"), "STORED\r\n");
    assert_eq!(h.d("cas p 0 0 1 999", "q"), "EXISTS\r\n");
    assert_eq!(h.d("cas nope 0 0 1 1", "q"), "NOT_FOUND\r\n");
    assert_eq!(h.d("cas p 0 0 1 0", "q"), "EXISTS\r\n");
    let cas = h.cas("p");
    let line: &'static str = alloc::format!("cas p 3 0 1 {cas}").leak();
    assert_eq!(h.d(line, "q"), "STORED\r\n");
    assert_eq!(h.d(line, "r"), "EXISTS\r\n");
    assert_eq!(h.c("get p"), "VALUE p 3 1\r\nq\r\nEND\r\n");
    let s = h.shard.stats();
    assert_eq!((s.cas_hits, s.cas_badval, s.cas_misses), (1, 3, 1));
}

#[test]
fn cas_uniques_are_unique_and_increasing_across_shards() {
    let settings = Settings::default();
    let mut shards: Vec<Shard> = (0..4).map(|i| Shard::new(&settings, i, 4)).collect();
    let mut seen = alloc::collections::BTreeSet::new();
    let now = Now { unix_s: EPOCH, uptime_s: 1 };
    for round in 0..50 {
        for (i, shard) in shards.iter_mut().enumerate() {
            let mut out = vec![];
            shard.execute(&request("set k 0 0 1", b"x"), now, &mut out);
            out.clear();
            shard.execute(&request("incr n 1", b""), now, &mut out);
            out.clear();
            shard.execute(&request("mg k c", b""), now, &mut out);
            let cas: u64 = core::str::from_utf8(&out[4..out.len() - 2]).unwrap().parse().unwrap();
            assert!(seen.insert(cas), "cas {cas} repeated (round {round}, shard {i})");
            assert_eq!(cas % 4, i as u64);
        }
    }
}

#[test]
fn delete_and_touch() {
    // memcached: touch p 10 -> TOUCHED; touch nope 10 -> NOT_FOUND; delete p -> DELETED;
    // delete p -> NOT_FOUND.
    let mut h = Harness::new();
    h.d("set p 0 0 1", "x");
    assert_eq!(h.c("touch p 10"), "TOUCHED\r\n");
    assert_eq!(h.c("touch nope 10"), "NOT_FOUND\r\n");
    assert_eq!(h.c("mg p t"), "HD t10\r\n");
    assert_eq!(h.c("delete p"), "DELETED\r\n");
    assert_eq!(h.c("delete p"), "NOT_FOUND\r\n");
    assert_eq!(h.c("delete p noreply"), "");
    assert_eq!(h.c("touch p 1 noreply"), "");
    let s = h.shard.stats();
    assert_eq!((s.touch_hits, s.touch_misses, s.cmd_touch), (1, 2, 3));
    assert_eq!((s.delete_hits, s.delete_misses), (1, 2));
}

#[test]
fn gat_and_gats_update_exptime() {
    // memcached: gat 100 g nope g -> two VALUE g 3 1; gats 0 g -> with cas; mg g t -> t-1;
    // gat -1 g returns the value and expires it.
    let mut h = Harness::new();
    h.d("set g 3 0 1", "x");
    assert_eq!(h.c("gat 100 g nope g"), "VALUE g 3 1\r\nx\r\nVALUE g 3 1\r\nx\r\nEND\r\n");
    assert_eq!(h.c("mg g t"), "HD t100\r\n");
    let cas = h.cas("g");
    assert_eq!(h.c("gats 0 g"), alloc::format!("VALUE g 3 1 {cas}\r\nx\r\nEND\r\n"));
    assert_eq!(h.c("mg g t"), "HD t-1\r\n");
    assert_eq!(h.c("gat -1 g"), "VALUE g 3 1\r\nx\r\nEND\r\n");
    assert_eq!(h.c("get g"), "END\r\n");
    let s = h.shard.stats();
    assert_eq!((s.cmd_touch, s.touch_hits, s.touch_misses), (5, 4, 1));
}

// ---------------------------------------------------------------- incr / decr

#[test]
fn incr_decr_like_memcached() {
    // memcached 1.6.18 transcript (see module doc).
    let mut h = Harness::new();
    h.d("set a 0 0 2", "10");
    assert_eq!(h.c("decr a 1"), "9\r\n");
    // The shorter result is written in place and padded with a space.
    assert_eq!(h.c("get a"), "VALUE a 0 2\r\n9 \r\nEND\r\n");
    assert_eq!(h.c("incr a 100"), "109\r\n");
    assert_eq!(h.c("get a"), "VALUE a 0 3\r\n109\r\nEND\r\n");
    assert_eq!(h.c("incr a 1 noreply"), "");
    assert_eq!(h.c("get a"), "VALUE a 0 3\r\n110\r\nEND\r\n");
    for (value, reply) in [
        ("-5", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        ("-0", "1\r\n"),
        (" 12", "13\r\n"),
        ("12a", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        ("12 ", "13\r\n"),
        ("+12", "13\r\n"),
        ("", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        ("hi", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    ] {
        let mut out = vec![];
        let now = h.now();
        h.shard.execute(&request("set n 0 0 0", value.as_bytes().to_vec().leak()), now, &mut out);
        assert_eq!(h.c("incr n 1"), reply, "value {value:?}");
    }
    assert_eq!(h.c("incr n 1 noreply"), "");
}

#[test]
fn incr_wraps_and_decr_floors() {
    // memcached's t/incrdecr.t.
    let mut h = Harness::new();
    h.d("set bug21 0 0 19", "9223372036854775807");
    assert_eq!(h.c("incr bug21 1"), "9223372036854775808\r\n");
    assert_eq!(h.c("incr bug21 1"), "9223372036854775809\r\n");
    assert_eq!(h.c("decr bug21 1"), "9223372036854775808\r\n");
    h.d("set num 0 0 1", "1");
    assert_eq!(h.c("incr num 1"), "2\r\n");
    assert_eq!(h.c("incr num 8"), "10\r\n");
    assert_eq!(h.c("get num"), "VALUE num 0 2\r\n10\r\nEND\r\n");
    assert_eq!(h.c("decr num 1"), "9\r\n");
    assert_eq!(h.c("decr num 9"), "0\r\n");
    assert_eq!(h.c("decr num 5"), "0\r\n");
    h.d("set num 0 0 20", "18446744073709551615");
    assert_eq!(h.c("incr num 1"), "0\r\n");
    assert_eq!(h.c("decr bogus 5"), "NOT_FOUND\r\n");
    assert_eq!(h.c("incr bogus 5"), "NOT_FOUND\r\n");
    h.d("set bigincr 0 0 1", "0");
    assert_eq!(h.c("incr bigincr 18446744073709551610"), "18446744073709551610\r\n");
    let s = h.shard.stats();
    assert_eq!((s.incr_hits, s.incr_misses, s.decr_hits, s.decr_misses), (6, 1, 4, 1));
}

// ---------------------------------------------------------------- expiry

#[test]
fn expiry_rules() {
    let mut h = Harness::new();
    let unix = h.now().unix_s as i64;
    // Relative: alive until the second it names.
    h.d("set rel 0 5 1", "x");
    // 30 days exactly is still relative.
    h.d("set month 0 2592000 1", "x");
    // Negative: expired at once.
    assert_eq!(h.d("set neg 0 -1 1", "x"), "STORED\r\n");
    assert_eq!(h.c("get neg"), "END\r\n");
    // Absolute in the past (beyond 30 days, before now): expired at once.
    let past: &'static str = alloc::format!("set past 0 {} 1", unix - 1).leak();
    h.d(past, "x");
    assert_eq!(h.c("get past"), "END\r\n");
    let ancient: &'static str = "set ancient 0 2592001 1";
    h.d(ancient, "x");
    assert_eq!(h.c("get ancient"), "END\r\n");
    // Absolute in the future.
    let future: &'static str = alloc::format!("set abs 0 {} 1", unix + 7).leak();
    h.d(future, "x");
    assert_eq!(h.c("mg abs t"), "HD t7\r\n");
    h.t += 4;
    assert_eq!(h.c("get rel"), "VALUE rel 0 1\r\nx\r\nEND\r\n");
    assert_eq!(h.c("mg rel t"), "HD t1\r\n");
    h.t += 1;
    assert_eq!(h.c("get rel"), "END\r\n");
    assert_eq!(h.c("get abs"), "VALUE abs 0 1\r\nx\r\nEND\r\n");
    h.t += 2;
    assert_eq!(h.c("get abs"), "END\r\n");
    assert_eq!(h.c("mg month t"), "HD t2591993\r\n");
    assert_eq!(h.shard.stats().get_expired, 5);
}

#[test]
fn crawler_reclaims_expired() {
    let mut h = Harness::new();
    h.d("set a 0 5 1", "x");
    h.d("set b 0 0 1", "x");
    h.d("set c 0 -1 1", "x");
    assert_eq!(h.shard.crawl(h.now(), 10), 1);
    h.t += 5;
    assert_eq!(h.shard.crawl(h.now(), 10), 1);
    let s = h.shard.stats();
    assert_eq!((s.curr_items, s.crawler_reclaimed, s.reclaimed, s.expired_unfetched), (1, 2, 2, 2));
}

// ---------------------------------------------------------------- flush_all

#[test]
fn flush_all_now_spares_items_set_after_it_in_the_same_second() {
    let mut h = Harness::new();
    h.d("set a 0 0 1", "x");
    h.t += 1;
    h.d("set b 0 0 1", "x");
    assert_eq!(h.c("flush_all"), "OK\r\n");
    h.d("set c 0 0 1", "x");
    assert_eq!(h.c("get a b c"), "VALUE c 0 1\r\nx\r\nEND\r\n");
    h.t += 1;
    h.d("set d 0 0 1", "x");
    assert_eq!(h.c("get c d"), "VALUE c 0 1\r\nx\r\nVALUE d 0 1\r\nx\r\nEND\r\n");
    assert_eq!(h.shard.stats().get_flushed, 2);
    assert_eq!(h.c("flush_all noreply"), "");
    assert_eq!(h.c("get c d"), "END\r\n");
}

#[test]
fn flush_all_with_delay() {
    // memcached t/flush-all.t: after "flush_all 2", a set still reads back until the delay
    // passes.
    let mut h = Harness::new();
    h.d("set a 0 0 1", "x");
    assert_eq!(h.c("flush_all 2"), "OK\r\n");
    h.d("set b 0 0 1", "x");
    assert_eq!(h.c("get a b"), "VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\nx\r\nEND\r\n");
    // One second later the flush time (now+2, less one) arrives: items stamped at or before
    // it are invalid, including one set in that very second.
    h.t += 1;
    h.d("set c 0 0 1", "x");
    assert_eq!(h.c("get a b c"), "END\r\n");
    h.t += 1;
    h.d("set d 0 0 1", "x");
    assert_eq!(h.c("get d"), "VALUE d 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn flush_all_with_absolute_time_and_negative_delay() {
    let mut h = Harness::new();
    h.d("set a 0 0 1", "x");
    let at = h.now().unix_s + 3;
    let mut out = vec![];
    h.shard.flush_all(at as i64, h.now());
    h.shard.execute(&request("get a", b""), h.now(), &mut out);
    assert_eq!(out, b"VALUE a 0 1\r\nx\r\nEND\r\n");
    h.t += 2;
    assert_eq!(h.c("get a"), "END\r\n");
    h.d("set b 0 0 1", "x");
    h.t += 1;
    h.shard.flush_all(-5, h.now());
    assert_eq!(h.c("get b"), "END\r\n");
}

// ---------------------------------------------------------------- sizes and memory

#[test]
fn item_size_limit_matches_memcached() {
    // memcached -I 1m: key "k", flags 0: 1048516 bytes STORED, 1048517 too large; flags 1:
    // 1048512 STORED, 1048513 too large.
    let mut h = Harness::with(Settings { memory_limit: 16 << 20, ..Settings::default() }, 0, 1);
    let big: &'static [u8] = vec![b'x'; 1048517].leak();
    let run = |h: &mut Harness, flags: u32, len: usize| {
        let mut out = vec![];
        let r = Request::Store {
            kind: StoreKind::Set,
            key: b"k",
            flags,
            exptime: 0,
            cas: 0,
            noreply: false,
            data: &big[..len],
        };
        h.shard.execute(&r, h.now(), &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(run(&mut h, 0, 1048516), "STORED\r\n");
    assert_eq!(run(&mut h, 0, 1048517), "SERVER_ERROR object too large for cache\r\n");
    assert_eq!(run(&mut h, 1, 1048512), "STORED\r\n");
    assert_eq!(run(&mut h, 1, 1048513), "SERVER_ERROR object too large for cache\r\n");
    // A failed set drops the old value (memcached: STORED, too large, then get -> END).
    assert_eq!(h.c("get k"), "END\r\n");
    assert_eq!(h.shard.stats().store_too_large, 2);
}

#[test]
fn item_larger_than_the_shard_is_out_of_memory() {
    let settings = Settings { memory_limit: 256 * 1024, ..Settings::default() };
    let mut h = Harness::with(settings, 0, 4);
    let big: &'static str = alloc::string::String::from_utf8(vec![b'x'; 70 * 1024]).unwrap().leak();
    assert_eq!(h.d("set small 0 0 1", "x"), "STORED\r\n");
    assert_eq!(h.d("set k 0 0 71680", big), "SERVER_ERROR out of memory storing object\r\n");
    assert_eq!(h.d("set k 0 0 71680 noreply", big), "");
    assert_eq!(h.d("ms k 71680 q", big), "SERVER_ERROR out of memory storing object\r\n");
    assert_eq!(h.c("get small"), "VALUE small 0 1\r\nx\r\nEND\r\n");
    assert_eq!(h.shard.stats().store_no_memory, 3);
}

#[test]
fn eviction_is_least_recently_used() {
    let settings = Settings { memory_limit: 64 * 1024, ..Settings::default() };
    let mut h = Harness::with(settings, 0, 1);
    let value: &'static str = alloc::string::String::from_utf8(vec![b'v'; 1000]).unwrap().leak();
    let keys: Vec<&'static str> = (0..200).map(|i| &*alloc::format!("key{i}").leak()).collect();
    // Fill, reading key0 all along so it stays recent.
    let mut stored = 0;
    for key in &keys {
        let line: &'static str = alloc::format!("set {key} 0 0 1000").leak();
        assert_eq!(h.d(line, value), "STORED\r\n");
        stored += 1;
        assert!(h.c("get key0").starts_with("VALUE key0"), "key0 evicted after {stored}");
    }
    let s = h.shard.stats();
    assert!(s.evictions > 100);
    assert!(s.total_malloced <= 64 * 1024);
    // The oldest unread keys went first; the newest are all there.
    for key in &keys[1..50] {
        let line: &'static str = alloc::format!("get {key}").leak();
        assert_eq!(h.c(line), "END\r\n");
    }
    for key in &keys[190..] {
        let line: &'static str = alloc::format!("get {key}").leak();
        assert!(h.c(line).starts_with("VALUE"));
    }
}

// ---------------------------------------------------------------- meta commands

#[test]
fn mg_flags() {
    // memcached: "mg a v c f s t k h l O123 q" -> "VA 3 c15 f0 s3 t-1 ka h1 l1 O123\r\n110\r\n"
    // (after a get, one second later).
    let mut h = Harness::new();
    h.d("set a 0 0 3", "110");
    h.c("get a");
    h.t += 1;
    let cas = h.cas("a");
    assert_eq!(
        h.c("mg a v c f s t k h l O123 q"),
        alloc::format!("VA 3 c{cas} f0 s3 t-1 ka h1 l1 O123\r\n110\r\n")
    );
    assert_eq!(h.c("mg a s v"), "VA 3 s3\r\n110\r\n");
    assert_eq!(h.c("mg a"), "HD\r\n");
    assert_eq!(h.c("mg a k f"), "HD ka f0\r\n");
    // Misses: EN with O and k; nothing with q.
    assert_eq!(h.c("mg missing v k O1"), "EN kmissing O1\r\n");
    assert_eq!(h.c("mg missing v q k O1"), "");
}

#[test]
fn mg_h_and_l_report_before_the_bump_and_u_skips_it() {
    let mut h = Harness::new();
    h.d("set a 0 0 1", "x");
    h.t += 3;
    assert_eq!(h.c("mg a h l u"), "HD h0 l3\r\n");
    assert_eq!(h.c("mg a h l"), "HD h0 l3\r\n");
    assert_eq!(h.c("mg a h l"), "HD h1 l0\r\n");
}

#[test]
fn mg_t_updates_ttl_in_order() {
    let mut h = Harness::new();
    h.d("set a 0 100 1", "x");
    assert_eq!(h.c("mg a t T5"), "HD t100\r\n");
    assert_eq!(h.c("mg a T30 t"), "HD t30\r\n");
    assert_eq!(h.c("mg a T-1"), "HD\r\n");
    assert_eq!(h.c("mg a"), "EN\r\n");
    let s = h.shard.stats();
    assert_eq!((s.cmd_touch, s.touch_hits), (3, 3));
}

#[test]
fn mg_vivify_recache_and_stale() {
    // memcached 1.6.18 transcript, cas values replaced.
    let mut h = Harness::new();
    let cas = |h: &mut Harness| h.cas("viv");
    let r = h.c("mg viv N30 v c t s f");
    let c1 = cas(&mut h);
    assert_eq!(r, alloc::format!("VA 0 c{c1} t30 s0 f0 W\r\n\r\n"));
    assert_eq!(h.c("mg viv N30 v c t s f"), alloc::format!("VA 0 c{c1} t30 s0 f0 Z\r\n\r\n"));
    assert_eq!(h.c("mg viv v t"), "VA 0 t30 Z\r\n\r\n");
    assert_eq!(h.d("ms viv 3 T60", "new"), "HD\r\n");
    assert_eq!(h.c("mg viv v t R30"), "VA 3 t60\r\nnew\r\n");
    assert_eq!(h.c("mg viv v t R100"), "VA 3 t60 W\r\nnew\r\n");
    h.t += 1;
    assert_eq!(h.c("mg viv v t R100"), "VA 3 t59 Z\r\nnew\r\n");
    // md I: stale, new cas, TOKEN_SENT cleared, so the next reader wins.
    assert_eq!(h.c("md viv I T30"), "HD\r\n");
    let c2 = cas(&mut h);
    assert_eq!(h.c("mg viv v t c"), alloc::format!("VA 3 t30 c{c2} X W\r\nnew\r\n"));
    assert_eq!(h.c("mg viv v t c"), alloc::format!("VA 3 t30 c{c2} Z X\r\nnew\r\n"));
    // ms with I and an older cas stores, keeping stale and the token; a newer cas fails.
    assert_eq!(h.d("ms viv 3 C1 I", "old"), "HD\r\n");
    let c3 = cas(&mut h);
    assert_eq!(h.c("mg viv c"), alloc::format!("HD c{c3} Z X\r\n"));
    let newer: &'static str = alloc::format!("ms viv 3 I C{}", c3 + 100).leak();
    assert_eq!(h.d(newer, "foo"), "EX\r\n");
    assert_eq!(h.c("mg viv v"), "VA 3 Z X\r\nold\r\n");
    // A vivified miss with N0 never expires; h and l before the bump.
    assert_eq!(h.c("mg nothere N0 h l t"), "HD h0 l0 t-1 W\r\n");
    assert_eq!(h.c("mg nothere h l t k q"), "HD h1 l0 t-1 knothere Z\r\n");
}

#[test]
fn meta_flag_errors() {
    // memcached 1.6.18's answers.
    let mut h = Harness::new();
    h.d("set k 0 0 2", "hi");
    assert_eq!(h.c("mg k v v"), "CLIENT_ERROR duplicate flag\r\n");
    assert_eq!(h.c("mg k x"), "CLIENT_ERROR invalid flag\r\n");
    assert_eq!(h.c("mg k T"), "CLIENT_ERROR bad token in command line format\r\n");
    assert_eq!(h.c("mg k Tx"), "CLIENT_ERROR bad token in command line format\r\n");
    assert_eq!(h.c("mg k N"), "CLIENT_ERROR bad token in command line format\r\n");
    assert_eq!(
        h.c("mg k O12345678901234567890123456789012 v"),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(
        h.c("mg k O1234567890123456789012345678901"),
        "HD O1234567890123456789012345678901\r\n"
    );
    assert_eq!(
        h.c("mg k s t c f 5 6 7 8 9 10 11 12 13 14 15 16 17 18"),
        "CLIENT_ERROR options flags are too long\r\n"
    );
    assert_eq!(h.c("mg k 1 2 3"), "CLIENT_ERROR invalid flag\r\n");
    assert_eq!(h.d("ms k 2 S2", "hi"), "CLIENT_ERROR invalid flag\r\n");
    assert_eq!(h.d("ms k 2 F-1", "hi"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(h.d("ms k 2 MEE", "hi"), "CLIENT_ERROR incorrect length for M token\r\n");
    assert_eq!(h.d("ms k 2 MX", "hi"), "CLIENT_ERROR invalid mode for ms M token\r\n");
    assert_eq!(h.c("md k x"), "CLIENT_ERROR invalid or duplicate flag\r\n");
    assert_eq!(h.c("ma k Dabc"), "CLIENT_ERROR invalid or duplicate flag\r\n");
    assert_eq!(h.c("ma k v v"), "CLIENT_ERROR invalid or duplicate flag\r\n");
    assert_eq!(h.c("ma k C9999999999999999999999"), "CLIENT_ERROR invalid or duplicate flag\r\n");
    assert_eq!(h.c("ma k Mx"), "CLIENT_ERROR invalid mode for ma M token\r\n");
    // q does not hide errors.
    assert_eq!(h.c("ma k q"), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    // F keeps the low 32 bits, as memcached's strtoul on a 64-bit build.
    assert_eq!(h.d("ms k 2 F4294967297", "hi"), "HD\r\n");
    assert_eq!(h.c("mg k f"), "HD f1\r\n");
}

#[test]
fn ms_modes_and_flags() {
    let mut h = Harness::new();
    assert_eq!(h.d("ms m1 2", "hi"), "HD\r\n");
    // Base64 key: echoed encoded with " b"; the item remembers it.
    let r = h.d("ms bTE= 2 b k c O9", "hi");
    let cas = h.cas("m1");
    assert_eq!(r, alloc::format!("HD kbTE= b c{cas} O9\r\n"));
    assert_eq!(h.c("mg bTE= b k v f"), "VA 2 kbTE= b f0\r\nhi\r\n");
    assert_eq!(h.c("mg m1 k"), "HD kbTE= b\r\n");
    assert_eq!(h.c("mg m1 t s"), "HD t-1 s2\r\n");
    // q hides HD only.
    assert_eq!(h.d("ms m1 2 q", "ho"), "");
    assert_eq!(h.d("ms m1 2 ME", "ho"), "NS\r\n");
    assert_eq!(h.d("ms m1 2 ME q", "ho"), "NS\r\n");
    assert_eq!(h.d("ms new1 2 MR", "ho"), "NS\r\n");
    assert_eq!(h.d("ms new1 2 MA", "ho"), "NS\r\n");
    assert_eq!(h.d("ms new1 2 MP", "ho"), "NS\r\n");
    let r = h.d("ms m1 2 MA c", "zz");
    let cas = h.cas("m1");
    assert_eq!(r, alloc::format!("HD c{cas}\r\n"));
    assert_eq!(h.d("ms m1 2 MP C1", "zz"), "EX\r\n");
    assert_eq!(h.c("mg m1 v"), "VA 4\r\nhozz\r\n");
    assert_eq!(h.d("ms m1 3 C1", "abc"), "EX\r\n");
    assert_eq!(h.d("ms nokey 3 C1", "abc"), "NF\r\n");
    assert_eq!(h.d("ms nokey 3 C1 k c", "abc"), "NF knokey c0\r\n");
    // I without a cas is a plain set.
    assert_eq!(h.d("ms m1 3 I", "abc"), "HD\r\n");
    // T, F, MS, MR.
    assert_eq!(h.d("ms m1 1 T100 F7 MS", "s"), "HD\r\n");
    assert_eq!(h.c("mg m1 t f v"), "VA 1 t100 f7\r\ns\r\n");
    assert_eq!(h.d("ms m1 1 MR", "r"), "HD\r\n");
    assert_eq!(h.c("mg m1 t f v"), "VA 1 t-1 f0\r\nr\r\n");
    let cas = h.cas("m1");
    let line: &'static str = alloc::format!("ms m1 1 MR C{cas}").leak();
    assert_eq!(h.d(line, "c"), "HD\r\n");
    // T-1: stored and gone.
    assert_eq!(h.d("ms m1 2 T-1", "hi"), "HD\r\n");
    assert_eq!(h.c("mg m1 v"), "EN\r\n");
    // E sets the cas (later memcached releases).
    assert_eq!(h.d("ms e 1 E12345 c", "x"), "HD c12345\r\n");
    assert_eq!(h.c("mg e c"), "HD c12345\r\n");
}

#[test]
fn md_flags() {
    // memcached: md m1 C1 -> EX; md m1 q -> (nothing); md m1 -> NF; md m1 q -> NF;
    // md m1 k O5 q -> "NF km1 O5".
    let mut h = Harness::new();
    h.d("ms m1 2", "hi");
    assert_eq!(h.c("md m1 C999999"), "EX\r\n");
    assert_eq!(h.c("md m1 q"), "");
    assert_eq!(h.c("md m1"), "NF\r\n");
    assert_eq!(h.c("md m1 q"), "NF\r\n");
    assert_eq!(h.c("md m1 k O5 q"), "NF km1 O5\r\n");
    h.d("ms m1 2", "hi");
    let cas = h.cas("m1");
    let line: &'static str = alloc::format!("md m1 C{cas} k O7").leak();
    assert_eq!(h.c(line), "HD km1 O7\r\n");
    assert_eq!(h.c("mg m1"), "EN\r\n");
    assert_eq!(h.c("md bTE= b k"), "NF kbTE= b\r\n");
    let s = h.shard.stats();
    assert_eq!((s.delete_hits, s.delete_misses), (2, 5));
}

#[test]
fn ma_flags() {
    // memcached 1.6.18 transcript.
    let mut h = Harness::new();
    assert_eq!(h.c("ma cnt"), "NF\r\n");
    assert_eq!(h.c("ma cnt N0 J10 v"), "VA 2\r\n10\r\n");
    assert_eq!(h.c("ma cnt v"), "VA 2\r\n11\r\n");
    let r = h.c("ma cnt MD D3 v c t");
    let cas = h.cas("cnt");
    assert_eq!(r, alloc::format!("VA 1 c{cas} t-1\r\n8\r\n"));
    assert_eq!(h.c("ma cnt M- D30 v"), "VA 1\r\n0\r\n");
    assert_eq!(h.c("ma cnt MI D5 q"), "");
    assert_eq!(h.c("ma cnt M+ v"), "VA 1\r\n6\r\n");
    assert_eq!(h.c("ma cnt q k O4 C1"), "EX kcnt O4\r\n");
    assert_eq!(h.c("ma nope q k O4"), "NF knope O4\r\n");
    // N on a hit does nothing; T sets the TTL at its place in the order.
    assert_eq!(h.c("ma cnt N100 J7 v t"), "VA 1 t-1\r\n7\r\n");
    assert_eq!(h.c("ma cnt t T50 v"), "VA 1 t-1\r\n8\r\n");
    assert_eq!(h.c("ma cnt T40 t"), "HD t40\r\n");
    // A vivified counter takes N's TTL; q does not hide its reply.
    assert_eq!(h.c("ma viv N9 J3 t q"), "HD t9\r\n");
    let s = h.shard.stats();
    assert_eq!((s.incr_hits, s.decr_hits, s.incr_misses), (6, 2, 2));
}

#[test]
fn me_debug_line() {
    // memcached: "ME a exp=-1 la=1 cas=15 fetch=yes cls=1 size=63" for a 3-byte value read
    // once, one second earlier; "ME viv exp=-29 ..." with 29 seconds to live.
    let mut h = Harness::new();
    h.d("set a 0 0 3", "110");
    let cas = h.cas("a");
    assert_eq!(
        h.c("me a"),
        alloc::format!("ME a exp=-1 la=0 cas={cas} fetch=no cls=1 size=63\r\n")
    );
    h.c("get a");
    h.t += 1;
    assert_eq!(
        h.c("me a"),
        alloc::format!("ME a exp=-1 la=1 cas={cas} fetch=yes cls=1 size=63\r\n")
    );
    h.d("set b 1 30 3", "110");
    h.t += 1;
    let cas = h.cas("b");
    assert_eq!(
        h.c("me b"),
        alloc::format!("ME b exp=-29 la=1 cas={cas} fetch=no cls=1 size=67\r\n")
    );
    assert_eq!(h.c("me missing"), "EN\r\n");
    h.d("ms bTE= 2 b", "hi");
    assert!(h.c("me bTE= b").starts_with("ME bTE= exp=-1"));
}

#[test]
fn noop_version_and_server_commands() {
    let mut h = Harness::new();
    assert_eq!(h.c("mn"), "MN\r\n");
    let mut out = vec![];
    h.shard.execute(&Request::Version, h.now(), &mut out);
    assert_eq!(out, b"VERSION 1.6.18-cairn\r\n");
    out.clear();
    h.shard.execute(&Request::Quit, h.now(), &mut out);
    assert_eq!(out, b"ERROR\r\n");
}

// ---------------------------------------------------------------- stats

#[test]
fn stats_groups() {
    let mut h = Harness::new();
    h.d("set a 0 0 1", "x");
    h.c("get a nope");
    h.c("mg a v");
    let shards = h.shard.stats();
    let server =
        ServerStats { pid: 7, threads: 1, rusage_user_us: 11_717, ..ServerStats::default() };
    let settings = Settings::default();
    let mut out = vec![];
    write_stats(&[], &shards, &server, &settings, &mut out);
    let general = String::from_utf8(out.clone()).unwrap();
    for line in [
        "STAT pid 7\r\n",
        "STAT version 1.6.18-cairn\r\n",
        "STAT rusage_user 0.011717\r\n",
        "STAT cmd_get 3\r\n",
        "STAT cmd_set 1\r\n",
        "STAT cmd_meta 1\r\n",
        "STAT get_hits 2\r\n",
        "STAT get_misses 1\r\n",
        "STAT curr_items 1\r\n",
        "STAT total_items 1\r\n",
        "STAT limit_maxbytes 67108864\r\n",
        "STAT threads 1\r\n",
    ] {
        assert!(general.contains(line), "{line:?} not in {general}");
    }
    assert!(general.starts_with("STAT pid 7\r\nSTAT uptime 0\r\n"));
    assert!(general.ends_with("END\r\n"));
    for (group, must) in [
        (
            &b"settings"[..],
            "STAT maxbytes 67108864\r\nSTAT maxconns 1024\r\nSTAT tcpport 11211\r\n",
        ),
        (b"settings", "STAT item_size_max 1048576\r\n"),
        (b"settings", "STAT evictions on\r\n"),
        (b"items", "STAT items:1:number 1\r\n"),
        (b"items", "STAT items:1:hits_to_cold 2\r\n"),
        (
            b"slabs",
            "STAT 1:chunk_size 96\r\nSTAT 1:chunks_per_page 10922\r\nSTAT 1:total_pages 1\r\n",
        ),
        (b"slabs", "STAT active_slabs 1\r\n"),
        (b"sizes", "STAT sizes_status disabled\r\nEND\r\n"),
        (b"bogus", "ERROR\r\n"),
    ] {
        out.clear();
        write_stats(&[group], &shards, &server, &settings, &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(must), "{must:?} not in {text}");
    }
    let mut twice = shards.clone();
    twice += &shards;
    assert_eq!(twice.curr_items, 2);
    assert_eq!(twice.classes[1].number, 2);
    h.shard.reset_stats();
    let s = h.shard.stats();
    assert_eq!((s.cmd_get, s.get_hits, s.curr_items), (0, 0, 1));
}

#[test]
fn memory_limit_can_shrink() {
    let settings = Settings { memory_limit: 1 << 20, ..Settings::default() };
    let mut h = Harness::with(settings, 0, 1);
    let value: &'static str = alloc::string::String::from_utf8(vec![b'v'; 1000]).unwrap().leak();
    for i in 0..800 {
        let line: &'static str = alloc::format!("set k{i} 0 0 1000").leak();
        h.d(line, value);
    }
    assert!(h.shard.stats().total_malloced > 512 * 1024);
    h.shard.set_memory_limit(256 * 1024);
    let s = h.shard.stats();
    assert!(s.total_malloced <= 256 * 1024);
    assert_eq!(s.limit_maxbytes, 256 * 1024);
}
