//! `cairn bench alloc`: Hoard's threadtest, cairn's general allocator against glibc malloc and
//! mimalloc.
//!
//! The EbbRT paper evaluates its allocator with a port of threadtest from the Hoard benchmark
//! suite (OSDI 2016, "Memory Allocation", Figure 4) in two configurations: I. N = 100,000
//! objects, i = 1,000 rounds; II. N = 100 objects, i = 1,000,000 rounds. In threadtest each of
//! T threads runs all i rounds, and a round allocates N / T objects of 8 bytes (writing each
//! one, as Hoard's `Foo` constructor does) and then frees them all, so the total work is the
//! same for every T and perfect scaling halves the time on two threads.
//!
//! Here the rounds are divided by [`SCALE`] (so both configurations are 2 x 10^7 allocations and
//! frees per run, and the whole benchmark stays well under a minute on two cores), each
//! configuration runs on 1 and 2 threads, and each allocator is called explicitly through
//! [`GlobalAlloc`], in the same loop, without changing the binary's global allocator:
//!
//! - cairn: a `static` [`HostedAllocator`] (the general allocator over `mmap`), each thread
//!   entered as cairn core `t` with [`CoreGuard`], as the hosted runtime's core threads are;
//! - glibc: `std::alloc::System`, i.e. glibc's `malloc` and `free`;
//! - mimalloc: `mimalloc::MiMalloc`.
//!
//! Every allocator is reached through a call that is not inlined, as a global allocator is.
//!
//! Each figure is the best of a few runs, the allocators interleaved run by run.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use cairn_hosted::pages::HostedAllocator;
use cairn_rt::percore::CoreGuard;
use mimalloc::MiMalloc;

use super::Report;

/// The rounds of the paper's configurations are divided by this.
pub const SCALE: u64 = 5;

/// `--quick` divides them by this instead (a smoke test).
const QUICK_SCALE: u64 = 1000;

/// Hoard's default object: 8 bytes.
const OBJECT_SIZE: usize = 8;

/// cairn's allocator, used only through explicit calls.
static CAIRN: HostedAllocator = HostedAllocator::new();

/// One of the paper's configurations: total objects N and rounds i.
struct Config {
    name: &'static str,
    objects: u64,
    rounds: u64,
}

const CONFIGS: [Config; 2] = [
    Config { name: "I", objects: 100_000, rounds: 1_000 },
    Config { name: "II", objects: 100, rounds: 1_000_000 },
];

const THREADS: [usize; 2] = [1, 2];

/// JSON field names: `FIELDS[config][threads index][allocator]`, allocators in the order
/// cairn, glibc, mimalloc.
const FIELDS: [[[&str; 3]; 2]; 2] = [
    [
        ["cairn_i_t1_s", "glibc_i_t1_s", "mimalloc_i_t1_s"],
        ["cairn_i_t2_s", "glibc_i_t2_s", "mimalloc_i_t2_s"],
    ],
    [
        ["cairn_ii_t1_s", "glibc_ii_t1_s", "mimalloc_ii_t1_s"],
        ["cairn_ii_t2_s", "glibc_ii_t2_s", "mimalloc_ii_t2_s"],
    ],
];

/// Calls into an allocator the way a program calls its `#[global_allocator]`: through a function
/// that is not inlined into the caller (`__rust_alloc`), the same for all three allocators.
/// Without this, cairn's fast path would be inlined into the benchmark loop, whose speed then
/// depends on where the loop happens to fall in the binary.
struct Called<'a, A>(&'a A);

impl<A: GlobalAlloc> Called<'_, A> {
    /// # Safety
    ///
    /// `GlobalAlloc::alloc`'s contract.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }

    /// # Safety
    ///
    /// `GlobalAlloc::dealloc`'s contract.
    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// One thread of threadtest: `rounds` times, allocate `slots.len()` objects, then free them.
#[inline(never)]
fn worker<A: GlobalAlloc>(a: &A, rounds: u64, slots: &mut [*mut u8]) {
    let layout = Layout::from_size_align(OBJECT_SIZE, 8).expect("valid layout");
    let a = Called(a);
    for _ in 0..rounds {
        for slot in slots.iter_mut() {
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { a.alloc(layout) };
            if p.is_null() {
                handle_alloc_error(layout);
            }
            // SAFETY: a fresh 8-byte, 8-aligned block (Hoard's `Foo` sets its two fields).
            unsafe { p.cast::<u64>().write(14 | 29 << 32) };
            *slot = p;
        }
        black_box(&mut *slots);
        for &p in slots.iter() {
            // SAFETY: allocated above with this layout, freed once.
            unsafe { a.dealloc(p, layout) };
        }
    }
}

/// Runs threadtest on `threads` threads and returns the seconds from the start signal until
/// every thread has finished its rounds.
fn threadtest<A: GlobalAlloc + Sync>(
    a: &A,
    threads: usize,
    objects: u64,
    rounds: u64,
    as_cores: bool,
) -> f64 {
    let per_thread = (objects / threads as u64) as usize;
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    thread::scope(|s| {
        for t in 0..threads {
            let (start, end) = (&start, &end);
            s.spawn(move || {
                let _core = as_cores.then(|| CoreGuard::enter(t));
                let mut slots = vec![std::ptr::null_mut::<u8>(); per_thread];
                start.wait();
                worker(a, rounds, &mut slots);
                end.wait();
            });
        }
        start.wait();
        let t0 = Instant::now();
        end.wait();
        t0.elapsed().as_secs_f64()
    })
}

/// Runs the benchmark; `quick` divides the rounds by 1000 instead of [`SCALE`].
pub fn run(quick: bool) -> Result<Report, String> {
    let scale = if quick { QUICK_SCALE } else { SCALE };
    let repeats = if quick { 1 } else { 5 };
    // best[config][threads][allocator], seconds
    let mut best = [[[f64::INFINITY; 3]; 2]; 2];
    for rep in 0..repeats {
        for (c, config) in CONFIGS.iter().enumerate() {
            let rounds = (config.rounds / scale).max(1);
            for (ti, &threads) in THREADS.iter().enumerate() {
                super::progress(&format!(
                    "run {}/{repeats}: config {} (N={}, i={rounds}), {threads} thread(s)",
                    rep + 1,
                    config.name,
                    config.objects
                ));
                let secs = [
                    threadtest(&CAIRN, threads, config.objects, rounds, true),
                    threadtest(&System, threads, config.objects, rounds, false),
                    threadtest(&MiMalloc, threads, config.objects, rounds, false),
                ];
                for (b, s) in best[c][ti].iter_mut().zip(secs) {
                    *b = b.min(s);
                }
            }
        }
    }

    let mut totals = [0.0f64; 3];
    let mut table = format!(
        "alloc: Hoard threadtest, {OBJECT_SIZE}-byte objects, rounds scaled by 1/{scale} of the \
         paper's, best of {repeats}; seconds\n\
         {:<28}{:>8}{:>10}{:>10}{:>10}{:>13}{:>16}\n",
        "config", "threads", "cairn", "glibc", "mimalloc", "glibc/cairn", "mimalloc/cairn"
    );
    let mut per_config = Vec::new();
    for (c, config) in CONFIGS.iter().enumerate() {
        let rounds = (config.rounds / scale).max(1);
        for (ti, &threads) in THREADS.iter().enumerate() {
            let s = best[c][ti];
            let _ = writeln!(
                table,
                "{:<28}{:>8}{:>10.3}{:>10.3}{:>10.3}{:>13.2}{:>16.2}",
                format!("{}: N={} i={}", config.name, config.objects, rounds),
                threads,
                s[0],
                s[1],
                s[2],
                s[1] / s[0],
                s[2] / s[0]
            );
            for (a, secs) in s.iter().enumerate() {
                totals[a] += secs;
                per_config.push((FIELDS[c][ti][a], *secs));
            }
        }
    }
    let _ = writeln!(
        table,
        "{:<28}{:>8}{:>10.3}{:>10.3}{:>10.3}{:>13.2}{:>16.2}",
        "total",
        "",
        totals[0],
        totals[1],
        totals[2],
        totals[1] / totals[0],
        totals[2] / totals[0]
    );
    let _ = writeln!(
        table,
        "(paper: I. N=100,000 i=1,000; II. N=100 i=1,000,000; here i is divided by {scale})"
    );

    let mut fields = vec![
        ("cairn_s", totals[0]),
        ("glibc_s", totals[1]),
        ("mimalloc_s", totals[2]),
        ("ratio", totals[1] / totals[0]),
        ("mimalloc_ratio", totals[2] / totals[0]),
        ("scale", scale as f64),
    ];
    fields.extend(per_config);
    Ok(Report {
        table,
        fields,
        peer: "glibc malloc (std::alloc::System) and mimalloc (mimalloc::MiMalloc), called \
               through GlobalAlloc"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_run_reports_every_field_positive() {
        let r = super::run(true).unwrap();
        let get = |name: &str| r.fields.iter().find(|f| f.0 == name).map(|f| f.1);
        for name in ["cairn_s", "glibc_s", "mimalloc_s", "ratio", "mimalloc_ratio"] {
            let v = get(name).unwrap_or_else(|| panic!("field {name} missing"));
            assert!(v.is_finite() && v > 0.0, "{name} = {v}");
        }
        for config in super::FIELDS.iter().flatten().flatten() {
            assert!(get(config).unwrap() > 0.0, "{config}");
        }
        assert!(r.table.contains("glibc/cairn"));
    }
}
