//! `cairn bench spawn`: a cross-core `spawn_on` round trip against a `std::sync::mpsc` ping-pong.
//!
//! cairn: core 0 sends a closure to core 1 with `spawn_on` (its lock-free mailbox, and a doorbell
//! if core 1 sleeps); that closure sends one back to core 0, which starts the next round. The
//! peer: two threads, pinned to the same two CPUs, passing a token back and forth over a pair
//! of `std::sync::mpsc` channels with blocking receives. Both report nanoseconds per round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_hosted::affinity;
use cairn_rt::event::{self, Runtime};

use super::Report;

/// Round trips of core 0 → core 1 → core 0, each started by the previous one's return.
fn cairn_round_trips(runtime: &'static Runtime, rounds: u64) -> Result<f64, String> {
    static REMAINING: AtomicU64 = AtomicU64::new(0);
    REMAINING.store(rounds, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Duration>();
    fn bounce(start: Instant, done: mpsc::Sender<Duration>) {
        event::spawn_on(1, move || {
            event::spawn_on(0, move || {
                if REMAINING.fetch_sub(1, Ordering::Relaxed) == 1 {
                    let _ = done.send(start.elapsed());
                } else {
                    bounce(start, done);
                }
            })
        });
    }
    runtime.spawn_on(0, move || bounce(Instant::now(), tx));
    let elapsed = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "the cairn round trips did not finish in 120 s".to_string())?;
    Ok(elapsed.as_nanos() as f64 / rounds as f64)
}

fn std_round_trips(rounds: u64) -> f64 {
    let (to_b, b_rx) = mpsc::channel::<u64>();
    let (to_a, a_rx) = mpsc::channel::<u64>();
    let cpu1 = affinity::cpu_for_core(1).unwrap_or(0);
    let b = std::thread::spawn(move || {
        let _ = affinity::pin_current_thread(cpu1);
        while let Ok(v) = b_rx.recv() {
            if to_a.send(v + 1).is_err() {
                break;
            }
        }
    });
    let cpu0 = affinity::cpu_for_core(0).unwrap_or(0);
    let a = std::thread::spawn(move || {
        let _ = affinity::pin_current_thread(cpu0);
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..rounds {
            to_b.send(v).expect("peer thread alive");
            v = a_rx.recv().expect("peer thread alive");
        }
        assert_eq!(v, rounds);
        start.elapsed()
    });
    let elapsed = a.join().expect("ping thread");
    b.join().expect("pong thread");
    elapsed.as_nanos() as f64 / rounds as f64
}

/// Runs the benchmark: warm-up, then the best of several rounds each way.
pub fn run(quick: bool) -> Result<Report, String> {
    let rounds: u64 = if quick { 2_000 } else { 200_000 };
    let repeats = if quick { 1 } else { 5 };
    let handle =
        cairn_hosted::start(2, |_| {}).map_err(|e| format!("cannot start 2 cores: {e}"))?;
    let runtime = handle.runtime();
    super::progress("warming up both");
    cairn_round_trips(runtime, rounds / 10 + 1)?;
    std_round_trips(rounds / 10 + 1);
    let (mut cairn_ns, mut std_ns) = (f64::MAX, f64::MAX);
    for r in 0..repeats {
        super::progress(&format!("repeat {}/{repeats}: {rounds} round trips each", r + 1));
        cairn_ns = cairn_ns.min(cairn_round_trips(runtime, rounds)?);
        std_ns = std_ns.min(std_round_trips(rounds));
    }
    let (c0, c1) = (runtime.counters(0), runtime.counters(1));
    handle.shutdown();
    handle.join().map_err(|_| "a core panicked".to_string())?;
    let table = format!(
        "spawn: cross-core round trip, best of {repeats} x {rounds}\n\
         {:<34}{:>12}\n{:<34}{:>12.1}\n{:<34}{:>12.1}\n\
         cairn core 0: {} events, {} blocks, {} doorbells; core 1: {} events, {} blocks, {} doorbells\n",
        "path", "ns/round trip", "cairn spawn_on core0->core1->core0", cairn_ns,
        "std::sync::mpsc ping-pong", std_ns,
        c0.events, c0.blocks, c0.wakeups, c1.events, c1.blocks, c1.wakeups
    );
    Ok(Report {
        table,
        fields: vec![("cairn_ns", cairn_ns), ("std_ns", std_ns), ("ratio", std_ns / cairn_ns)],
        peer: "std::sync::mpsc ping-pong between two pinned threads".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_run_reports_every_field() {
        let r = super::run(true).unwrap();
        let names: Vec<_> = r.fields.iter().map(|f| f.0).collect();
        assert_eq!(names, ["cairn_ns", "std_ns", "ratio"]);
        assert!(r.fields.iter().all(|f| f.1 > 0.0));
    }
}
