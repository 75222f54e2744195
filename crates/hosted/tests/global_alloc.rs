//! cairn's allocator as the process's global allocator, hammered through std.
//!
//! This test binary installs [`HostedAllocator`] as `#[global_allocator]`, so everything in it
//! (the test harness, std's threads, channels, formatting) allocates from cairn's slab caches.
//! The tests churn `Vec`, `String`, `HashMap` and `Box` on many threads, some running as cairn
//! cores and some not, pass objects between threads so they are freed far from where they were
//! allocated, and check every byte they wrote.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use cairn_hosted::pages::HostedAllocator;
use cairn_rt::percore::CoreGuard;

#[global_allocator]
static GLOBAL: HostedAllocator = HostedAllocator::new();

/// Core ids handed to test threads: unique across the whole binary, since the harness runs
/// tests in parallel and one core id may belong to one thread at a time.
static NEXT_CORE: AtomicUsize = AtomicUsize::new(0);

fn enter_core() -> CoreGuard {
    let core = NEXT_CORE.fetch_add(1, Ordering::Relaxed);
    assert!(core < cairn_rt::percore::MAX_CORES, "test ran out of core ids");
    CoreGuard::enter(core)
}

/// A small xorshift generator, so the tests need no crate beyond std.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i) as u8).collect()
}

#[test]
fn collections_churn_on_cores_and_plain_threads() {
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let _core = (t % 2 == 0).then(enter_core);
                barrier.wait();
                let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (t as u64 + 1));
                let mut map: HashMap<u64, (String, Vec<u8>)> = HashMap::new();
                for i in 0..30_000u64 {
                    let key = rng.below(2000);
                    match rng.below(4) {
                        0 | 1 => {
                            let len = rng.below(300) as usize;
                            map.insert(key, (format!("key-{key}-{i}"), pattern(key ^ i, len)));
                        }
                        2 => {
                            if let Some((name, bytes)) = map.remove(&key) {
                                let (k, seed) = name[4..].split_once('-').unwrap();
                                assert_eq!(k.parse::<u64>().unwrap(), key);
                                let seed = key ^ seed.parse::<u64>().unwrap();
                                assert_eq!(bytes, pattern(seed, bytes.len()));
                            }
                        }
                        _ => {
                            if let Some((name, bytes)) = map.get_mut(&key) {
                                // Grow in place or move, then shrink back.
                                name.push_str("++");
                                name.truncate(name.len() - 2);
                                bytes.reserve(rng.below(100) as usize);
                            }
                        }
                    }
                }
                for (key, (name, bytes)) in map {
                    let (_, seed) = name[4..].split_once('-').unwrap();
                    assert_eq!(bytes, pattern(key ^ seed.parse::<u64>().unwrap(), bytes.len()));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn objects_freed_on_other_threads() {
    // A ring of threads, cores and plain threads alternating: each allocates boxes, strings
    // and vectors, keeps some and sends the rest to the next thread, which checks and drops
    // them.
    let threads = 6;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| mpsc::channel::<Vec<(u64, Box<[u8]>, String)>>()).unzip();
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let next = senders[(t + 1) % threads].clone();
            thread::spawn(move || {
                let _core = (t % 2 == 1).then(enter_core);
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t as u64);
                for round in 0..40u64 {
                    let batch: Vec<(u64, Box<[u8]>, String)> = (0..500)
                        .map(|_| {
                            let seed = rng.next();
                            let len = (seed % 2000) as usize;
                            (seed, pattern(seed, len).into_boxed_slice(), seed.to_string())
                        })
                        .collect();
                    next.send(batch).unwrap();
                    let theirs = rx.recv().unwrap();
                    assert_eq!(theirs.len(), 500, "round {round}");
                    for (seed, bytes, text) in theirs {
                        assert_eq!(&*bytes, &pattern(seed, bytes.len())[..]);
                        assert_eq!(text, seed.to_string());
                    }
                }
            })
        })
        .collect();
    drop(senders);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn big_allocations_and_realloc_growth() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let _core = (t % 2 == 0).then(enter_core);
                // Grow a vector one push at a time through every size class, buddy orders and
                // huge mappings; realloc must keep every element.
                let mut v: Vec<u64> = Vec::new();
                for i in 0..(1 << 20) as u64 {
                    v.push(i ^ t);
                }
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ t));
                v.truncate(1000);
                v.shrink_to_fit();
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ t));
                // Big buffers of many sizes, written at both ends.
                let mut bufs = Vec::new();
                for k in 0..24 {
                    let len = (1usize << k) * 3 + 5;
                    let mut b = vec![0u8; len];
                    assert!(b.iter().all(|&x| x == 0), "vec![0; n] is zeroed");
                    b[0] = k as u8;
                    b[len - 1] = !(k as u8);
                    bufs.push(b);
                }
                for (k, b) in bufs.iter().enumerate() {
                    assert_eq!((b[0], b[b.len() - 1]), (k as u8, !(k as u8)));
                }
                // A string built by repeated appends (realloc in place within a class, then
                // moving across classes).
                let mut s = String::new();
                for i in 0..20_000 {
                    s.push_str(&i.to_string());
                }
                let expected: String = (0..20_000).map(|i: i32| i.to_string()).collect();
                assert_eq!(s, expected);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn over_aligned_allocations() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(64))]
    struct Line([u8; 100]);
    let pages: Vec<Box<Page>> = (0..50).map(|i| Box::new(Page([i as u8; 4096]))).collect();
    let lines: Vec<Box<Line>> = (0..500).map(|i| Box::new(Line([i as u8; 100]))).collect();
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(&**p as *const Page as usize % 4096, 0);
        assert!(p.0.iter().all(|&b| b == i as u8));
    }
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(&**l as *const Line as usize % 64, 0);
        assert!(l.0.iter().all(|&b| b == i as u8));
    }
    // Alignments beyond a page and beyond the largest buddy block.
    for shift in [13, 16, 21, 23] {
        let layout = std::alloc::Layout::from_size_align(100, 1 << shift).unwrap();
        // SAFETY: non-zero size; freed below with the same layout.
        unsafe {
            let p = std::alloc::alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % (1 << shift), 0);
            p.write_bytes(7, 100);
            std::alloc::dealloc(p, layout);
        }
    }
}
