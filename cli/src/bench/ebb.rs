//! `cairn bench ebb`: the cost of calling through an `EbbRef` against a plain reference.
//!
//! EbbRT claims the fast path of an Ebb call costs one predictable branch and one unconditional
//! branch more than a plain C++ call (OSDI 2016, section 3.2). Here the same inlined method is
//! called in a loop through an `EbbRef` to a multicore Ebb (translation: the core block through
//! the thread pointer, the table slot, a null check) and through a plain reference. `black_box`
//! keeps the optimizer from hoisting either lookup out of the loop or deleting the work.

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use cairn_rt::ebb::{self, EbbRef, MulticoreEbb};
use cairn_rt::percore::CoreGuard;
use cairn_rt::CoreId;

use super::Report;

/// A per-core accumulator: the method under test.
struct Accumulator {
    total: Cell<u64>,
}

impl Accumulator {
    #[inline(always)]
    fn add(&self, x: u64) {
        self.total.set(self.total.get().wrapping_add(x));
    }
}

impl MulticoreEbb for Accumulator {
    type Root = ();
    fn create_rep(_: &'static (), _core: CoreId) -> Self {
        Accumulator { total: Cell::new(0) }
    }
}

#[inline(never)]
fn through_ebb(ebb: EbbRef<Accumulator>, n: u64) {
    for i in 0..n {
        black_box(ebb).add(black_box(i));
    }
}

#[inline(never)]
fn through_plain(acc: &Accumulator, n: u64) {
    for i in 0..n {
        black_box(acc).add(black_box(i));
    }
}

fn ns_per_call(n: u64, f: impl Fn()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Runs the benchmark: best of several rounds of `n` calls each way, interleaved.
pub fn run(quick: bool) -> Result<Report, String> {
    let n: u64 = if quick { 2_000_000 } else { 200_000_000 };
    let rounds = if quick { 2 } else { 7 };
    let _core = CoreGuard::enter(0);
    let ebb = ebb::create_multicore::<Accumulator>(());
    let plain = Accumulator { total: Cell::new(0) };
    ebb.add(0); // take the fault outside the timed loop
    let (mut best_ebb, mut best_plain) = (f64::MAX, f64::MAX);
    for round in 0..rounds {
        super::progress(&format!("round {}/{rounds}: {n} calls each way", round + 1));
        best_plain = best_plain.min(ns_per_call(n, || through_plain(&plain, n)));
        best_ebb = best_ebb.min(ns_per_call(n, || through_ebb(ebb, n)));
    }
    black_box((ebb.total.get(), plain.total.get()));
    let overhead = best_ebb - best_plain;
    let table = format!(
        "ebb: {n} calls of an inlined method, best of {rounds} rounds\n\
         {:<24}{:>12}\n{:<24}{:>12.3}\n{:<24}{:>12.3}\n{:<24}{:>12.3}\n",
        "path",
        "ns/call",
        "EbbRef (multicore)",
        best_ebb,
        "plain &T",
        best_plain,
        "overhead",
        overhead
    );
    Ok(Report {
        table,
        fields: vec![
            ("ebb_ns", best_ebb),
            ("plain_ns", best_plain),
            ("overhead_ns", overhead),
            ("ratio", best_plain / best_ebb),
        ],
        peer: "a plain reference to the same object".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_run_reports_every_field() {
        let r = super::run(true).unwrap();
        let names: Vec<_> = r.fields.iter().map(|f| f.0).collect();
        assert_eq!(names, ["ebb_ns", "plain_ns", "overhead_ns", "ratio"]);
        assert!(r.fields[0].1 > 0.0 && r.fields[1].1 > 0.0);
    }
}
