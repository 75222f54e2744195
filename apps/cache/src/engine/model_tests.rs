//! Property tests: random command sequences against a simple model (a `BTreeMap` with
//! expiry), and the memory bound under a write load of ten times the limit, measured both by
//! the store's accounting and by the heap itself (a counting global allocator for this test
//! binary, per thread).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use std::alloc::{GlobalAlloc, Layout, System};

use proptest::prelude::*;

use super::tests::Harness;
use super::*;
use crate::protocol::StoreKind;

// ---------------------------------------------------------------- heap measurement

/// Counts the bytes each thread has allocated and not freed, and the peak.
struct CountingAlloc;

std::thread_local! {
    static NET: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = NET.try_with(|net| {
        let now = net.get() + delta;
        net.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the counting touches only const-initialised
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // The old and new blocks may coexist during the copy: count the new one first.
            account(new_size as isize);
            account(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn heap_net() -> isize {
    NET.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|p| p.set(NET.with(Cell::get)));
}

fn heap_peak() -> isize {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------- model

const KEYS: [&[u8]; 8] = [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5", b"k6", b"k7"];
const VALUES: [&[u8]; 8] =
    [b"0", b"5", b"42", b"18446744073709551615", b"abc", b"", b"hello world", b"10"];
const EXPTIMES: [i64; 6] = [0, 0, 1, 2, 5, -1];

#[derive(Clone, Debug)]
enum Op {
    Store(StoreKind, usize, usize, u32, usize),
    CasRight(usize, usize),
    CasWrong(usize, usize),
    Get(usize),
    Delete(usize),
    Arith(bool, usize, u64),
    Touch(usize, usize),
    Advance(u32),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(StoreKind::Set),
        Just(StoreKind::Add),
        Just(StoreKind::Replace),
        Just(StoreKind::Append),
        Just(StoreKind::Prepend),
    ];
    prop_oneof![
        6 => (kind, 0..8usize, 0..8usize, 0..3u32, 0..6usize)
            .prop_map(|(k, key, v, f, e)| Op::Store(k, key, v, f, e)),
        1 => (0..8usize, 0..8usize).prop_map(|(k, v)| Op::CasRight(k, v)),
        1 => (0..8usize, 0..8usize).prop_map(|(k, v)| Op::CasWrong(k, v)),
        6 => (0..8usize).prop_map(Op::Get),
        2 => (0..8usize).prop_map(Op::Delete),
        3 => (any::<bool>(), 0..8usize, prop_oneof![0..10u64, Just(u64::MAX)])
            .prop_map(|(i, k, d)| Op::Arith(i, k, d)),
        1 => (0..8usize, 0..6usize).prop_map(|(k, e)| Op::Touch(k, e)),
        2 => (0..3u32).prop_map(Op::Advance),
        1 => Just(Op::Flush),
    ]
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    exp: u32,
}

/// The model: what memcached promises, without memory limits.
struct Model {
    items: BTreeMap<Vec<u8>, Entry>,
}

impl Model {
    fn live(&mut self, key: &[u8], rel: u32) -> Option<&mut Entry> {
        let dead = self.items.get(key).is_some_and(|e| e.exp != 0 && e.exp <= rel);
        if dead {
            self.items.remove(key);
        }
        self.items.get_mut(key)
    }
}

/// The model's reading of a stored value as a number: leading digits, then the end or
/// whitespace, whatever follows it. memcached 1.6.18 agrees: after `set k 0 0 2` `10`,
/// `decr k 100` (value `0 `) and `append k 0 0 3` `abc`, `decr k 0` answers `0` and the value
/// becomes `0    `.
fn numeric(value: &[u8]) -> Option<u64> {
    let end = value.iter().position(|b| !b.is_ascii_digit()).unwrap_or(value.len());
    let (digits, rest) = value.split_at(end);
    if digits.is_empty() || rest.first().is_some_and(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    core::str::from_utf8(digits).ok()?.parse().ok()
}

fn run(h: &mut Harness, request: &Request<'_>) -> String {
    let mut out = vec![];
    h.shard.execute(request, h.now(), &mut out);
    String::from_utf8(out).unwrap()
}

/// Applies `op` to the shard and the model and checks the shard answered as the model says.
fn step(h: &mut Harness, model: &mut Model, op: &Op) {
    let now = h.now();
    let rel = now.rel();
    match *op {
        Op::Store(kind, k, v, flags, e) => {
            let (key, value) = (KEYS[k], VALUES[v]);
            let exp = now.expiry(EXPTIMES[e]);
            let request = Request::Store {
                kind,
                key,
                flags,
                exptime: EXPTIMES[e],
                cas: 0,
                noreply: false,
                data: value,
            };
            let got = run(h, &request);
            let present = model.live(key, rel).cloned();
            let stored = match (kind, present) {
                (StoreKind::Set, _) | (StoreKind::Add, None) | (StoreKind::Replace, Some(_)) => {
                    model.items.insert(key.to_vec(), Entry { value: value.to_vec(), flags, exp });
                    true
                }
                (StoreKind::Append, Some(old)) => {
                    let value = [&old.value[..], value].concat();
                    model.items.insert(key.to_vec(), Entry { value, ..old });
                    true
                }
                (StoreKind::Prepend, Some(old)) => {
                    let value = [value, &old.value[..]].concat();
                    model.items.insert(key.to_vec(), Entry { value, ..old });
                    true
                }
                _ => false,
            };
            assert_eq!(got, if stored { "STORED\r\n" } else { "NOT_STORED\r\n" }, "{op:?}");
        }
        Op::CasRight(k, v) | Op::CasWrong(k, v) => {
            let key = KEYS[k];
            let right = matches!(op, Op::CasRight(..));
            let cas = match h.shard.store().peek(key) {
                Some(item) if right => item.cas(),
                _ => u64::MAX - 1,
            };
            let request = Request::Store {
                kind: StoreKind::Cas,
                key,
                flags: 0,
                exptime: 0,
                cas,
                noreply: false,
                data: VALUES[v],
            };
            let got = run(h, &request);
            let expect = match model.live(key, rel) {
                None => "NOT_FOUND\r\n",
                Some(_) if !right => "EXISTS\r\n",
                Some(entry) => {
                    *entry = Entry { value: VALUES[v].to_vec(), flags: 0, exp: 0 };
                    "STORED\r\n"
                }
            };
            assert_eq!(got, expect, "{op:?}");
        }
        Op::Get(k) => {
            let key = KEYS[k];
            let got = run(h, &Request::Get { kind: GetKind::Get, exptime: None, keys: vec![key] });
            let expect = match model.live(key, rel) {
                None => String::from("END\r\n"),
                Some(e) => format!(
                    "VALUE {} {} {}\r\n{}\r\nEND\r\n",
                    core::str::from_utf8(key).unwrap(),
                    e.flags,
                    e.value.len(),
                    String::from_utf8_lossy(&e.value)
                ),
            };
            assert_eq!(got, expect, "{op:?}");
        }
        Op::Delete(k) => {
            let key = KEYS[k];
            let got = run(h, &Request::Delete { key, noreply: false });
            let expect =
                if model.live(key, rel).is_some() { "DELETED\r\n" } else { "NOT_FOUND\r\n" };
            model.items.remove(key);
            assert_eq!(got, expect, "{op:?}");
        }
        Op::Arith(incr, k, delta) => {
            let key = KEYS[k];
            let got = run(h, &Request::Arith { incr, key, delta, noreply: false });
            let expect = match model.live(key, rel) {
                None => String::from("NOT_FOUND\r\n"),
                Some(e) => match numeric(&e.value) {
                    None => String::from(
                        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                    ),
                    Some(n) => {
                        let n = if incr { n.wrapping_add(delta) } else { n.saturating_sub(delta) };
                        let digits = format!("{n}");
                        e.value = if digits.len() <= e.value.len() {
                            format!("{digits:<width$}", width = e.value.len()).into_bytes()
                        } else {
                            digits.clone().into_bytes()
                        };
                        format!("{digits}\r\n")
                    }
                },
            };
            assert_eq!(got, expect, "{op:?}");
        }
        Op::Touch(k, e) => {
            let key = KEYS[k];
            let got = run(h, &Request::Touch { key, exptime: EXPTIMES[e], noreply: false });
            let expect = match model.live(key, rel) {
                None => "NOT_FOUND\r\n",
                Some(entry) => {
                    entry.exp = now.expiry(EXPTIMES[e]);
                    "TOUCHED\r\n"
                }
            };
            assert_eq!(got, expect, "{op:?}");
        }
        Op::Advance(s) => h.t += s,
        Op::Flush => {
            h.shard.flush_all(0, now);
            model.items.clear();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With room for everything, the shard answers exactly as the model.
    #[test]
    fn matches_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut h = Harness::new();
        let mut model = Model { items: BTreeMap::new() };
        for op in &ops {
            step(&mut h, &mut model, op);
        }
    }

    /// With a small limit the shard never exceeds it, and a key present always holds the
    /// value last stored under it.
    #[test]
    fn small_limit_is_bounded_and_values_are_the_last_set(
        ops in proptest::collection::vec((0..64usize, 0..3000usize, 0..4u8), 1..400)
    ) {
        let limit = 48 * 1024;
        let settings = Settings { memory_limit: limit, ..Settings::default() };
        let mut h = Harness::with(settings, 0, 1);
        let mut last: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        for (i, &(key, len, what)) in ops.iter().enumerate() {
            let name = format!("key{key}");
            match what {
                0 | 1 => {
                    let value = vec![b'a' + (i % 26) as u8; len];
                    let request = Request::Store {
                        kind: StoreKind::Set, key: name.as_bytes(), flags: 0, exptime: 0, cas: 0,
                        noreply: false, data: &value,
                    };
                    prop_assert_eq!(run(&mut h, &request), "STORED\r\n");
                    last.insert(key, value);
                }
                2 => {
                    let mut out = vec![];
                    h.shard.get_one(GetKind::Get, None, name.as_bytes(), h.now(), &mut out);
                    if !out.is_empty() {
                        let value = &last[&key];
                        let header = format!("VALUE {name} 0 {}\r\n", value.len());
                        prop_assert_eq!(&out[..header.len()], header.as_bytes());
                        prop_assert_eq!(&out[header.len()..out.len() - 2], &value[..]);
                    }
                }
                _ => {
                    run(&mut h, &Request::Delete { key: name.as_bytes(), noreply: false });
                    last.remove(&key);
                }
            }
            prop_assert!(h.shard.store().used() <= limit);
        }
        h.shard.store().check();
    }
}

/// Writes ten times the limit in random sizes: the store's accounting never passes the
/// limit, and neither does the heap it really holds; the transient peak stays within the
/// documented allowance (the old array while one grows, and the item being written).
#[test]
fn memory_stays_bounded_writing_ten_times_the_limit() {
    let limit = 2 << 20;
    let max_value = 64 * 1024;
    let settings = Settings { memory_limit: limit, ..Settings::default() };
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let before = heap_net();
    reset_peak();
    let mut h = Harness::with(settings, 0, 1);
    let value = vec![b'v'; max_value];
    let mut out = Vec::with_capacity(16);
    let mut written = 0;
    let mut worst_held = 0isize;
    while written < 10 * limit {
        // Mostly small values, some large, as caches see.
        let len = match next() % 10 {
            0 => (next() % max_value as u64) as usize,
            1..=3 => (next() % 4096) as usize,
            _ => (next() % 200) as usize,
        };
        let key = format!("key:{}", next() % 100_000);
        let request = Request::Store {
            kind: StoreKind::Set,
            key: key.as_bytes(),
            flags: 0,
            exptime: 0,
            cas: 0,
            noreply: false,
            data: &value[..len],
        };
        h.shard.execute(&request, h.now(), &mut out);
        assert_eq!(out, b"STORED\r\n");
        out.clear();
        drop(request);
        drop(key);
        written += len;
        let store = h.shard.store();
        assert!(store.used() <= limit, "accounted {} > limit {limit}", store.used());
        // Everything this thread holds now, less the harness and `value`, is the store.
        let held = heap_net() - before - (max_value + 16) as isize;
        worst_held = worst_held.max(held);
        assert!(held <= limit as isize, "heap held {held} > limit {limit}");
    }
    let peak = heap_peak() - before - (max_value + 16) as isize;
    // Allowance: the old slot array or index during a reallocation (at most half the limit)
    // plus one item being built.
    let allowance = (limit / 2 + max_value + 4096) as isize;
    assert!(peak <= limit as isize + allowance, "peak {peak} > limit {limit} + {allowance}");
    let s = h.shard.stats();
    assert!(s.evictions > 0);
    std::println!(
        "wrote {written} bytes into a {limit}-byte shard: {} items, accounted {}, heap held at \
         most {worst_held}, transient peak {peak}",
        s.curr_items,
        s.total_malloced
    );
}
