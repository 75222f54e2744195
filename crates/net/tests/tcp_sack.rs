//! SACK (RFC 2018, RFC 2883, RFC 6675) and the undoing of spurious recoveries (RFC 3522, RFC
//! 4015) on the simulated link: the same seeded loss or reordering pattern is run with and
//! without each mechanism, and the simulated time each takes is compared (the simulation's
//! clock, so the comparison is exact, not a wall-clock timing).

mod tcp_support;

use cairn_net::tcp::{TcpConfig, TcpCounters};
use cairn_net::wire::TcpFlags;
use tcp_support::*;

const MIB: u64 = 1 << 20;

/// 1% loss each way and a 20 ms one-way delay, 100 Mbit/s: the impaired link of issue 5.
fn lossy_link() -> LinkConfig {
    LinkConfig {
        delay_ns: 20 * MS,
        loss_ppm: 10_000,
        rate_bps: 100_000_000 / 8,
        queue_bytes: 1 << 20,
        ..Default::default()
    }
}

fn config(sack: bool, timestamps: bool) -> TcpConfig {
    TcpConfig { recv_buffer: 4 << 20, sack, timestamps, ..test_config() }
}

/// Sends `total` bytes A→B over `link` with both ends configured as `cfg`; returns the
/// simulated nanoseconds it took and the sender's and receiver's counters.
fn transfer(cfg: TcpConfig, link: LinkConfig, seed: u64, total: u64) -> (u64, TcpCounters, Sim) {
    let mut sim = Sim::new(cfg.clone(), cfg, link, seed);
    sim.logging = false;
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, total, 64 * 1024, 3000 * SEC);
    assert_eq!(r.received, total, "incomplete");
    assert_eq!(r.sender_hash, r.receiver_hash);
    sim.a.check_invariants().unwrap();
    sim.b.check_invariants().unwrap();
    (r.elapsed_ns, sim.a.counters(), sim)
}

/// At 3% loss several segments of one window are often lost: NewReno repairs one per round
/// trip and often times out, SACK repairs them all in one.
#[test]
fn sack_recovers_from_loss_faster_than_newreno() {
    let link = LinkConfig { loss_ppm: 30_000, ..lossy_link() };
    let mut faster = 0;
    for seed in [1u64, 2, 3] {
        let (newreno_ns, newreno, _) = transfer(config(false, true), link.clone(), seed, 4 * MIB);
        let (sack_ns, sack, _) = transfer(config(true, true), link.clone(), seed, 4 * MIB);
        eprintln!(
            "seed {seed}: NewReno {} ms ({} rto, {} rtx), SACK {} ms ({} rto, {} rtx, {} by \
             scoreboard)",
            newreno_ns / MS,
            newreno.rto_expirations,
            newreno.retransmits,
            sack_ns / MS,
            sack.rto_expirations,
            sack.retransmits,
            sack.sack_retransmits,
        );
        assert_eq!(newreno.sacked_bytes, 0, "no SACK when it is off");
        assert!(sack.sacked_bytes > 0 && sack.sack_retransmits > 0, "{sack:?}");
        assert!(sack.rto_expirations <= newreno.rto_expirations, "{sack:?}\n{newreno:?}");
        faster += u32::from(sack_ns < newreno_ns);
    }
    assert_eq!(faster, 3, "SACK finished first on every seed");
}

#[test]
fn the_receiver_reports_what_it_holds_above_the_ack() {
    let link = LinkConfig { loss_ppm: 20_000, ..lossy_link() };
    let mut sim = Sim::new(config(true, true), config(true, true), link, 5);
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, 2 * MIB, 64 * 1024, 600 * SEC);
    assert_eq!(r.received, 2 * MIB);
    let mut with_blocks = 0;
    for seen in sim.seen(Dir::BtoA) {
        let ack = seen.repr.ack_number;
        for (i, &(left, right)) in seen.repr.sack_blocks.as_slice().iter().enumerate() {
            with_blocks += usize::from(i == 0);
            assert!(right.wrapping_sub(left) as i32 > 0, "empty block in {:?}", seen.repr);
            let above = left.wrapping_sub(ack) as i32 > 0;
            // Only a first block may be a D-SACK, and a D-SACK lies at or below the ACK.
            assert!(above || (i == 0 && right.wrapping_sub(ack) as i32 <= 0), "{:?}", seen.repr);
        }
    }
    assert!(with_blocks > 0, "no ACK carried SACK blocks");
    // The sender never carries blocks, having received nothing out of order.
    assert!(sim.seen(Dir::AtoB).all(|s| s.repr.sack_blocks.is_empty()));
}

#[test]
fn sack_is_used_only_when_both_ends_offer_it() {
    let link = LinkConfig { loss_ppm: 20_000, ..lossy_link() };
    let mut sim = Sim::new(config(true, true), config(false, true), link, 9);
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, MIB, 64 * 1024, 600 * SEC);
    assert_eq!(r.received, MIB);
    let syn = sim.seen(Dir::AtoB).next().unwrap();
    assert!(syn.repr.flags.contains(TcpFlags::SYN) && syn.repr.sack_permitted);
    let syn_ack = sim.seen(Dir::BtoA).next().unwrap();
    assert!(!syn_ack.repr.sack_permitted, "B does not offer it");
    assert!(sim.seen(Dir::BtoA).all(|s| s.repr.sack_blocks.is_empty()));
    assert!(!sim.a.conn_info(ca).unwrap().peer_sack_permitted);
    assert!(sim.a.counters().fast_retransmits > 0);
}

#[test]
fn a_duplicate_segment_is_reported_with_a_dsack() {
    // Every segment duplicated on a clean link: each copy after the first is a duplicate.
    let link = LinkConfig { delay_ns: MS, dup_ppm: 1_000_000, ..Default::default() };
    let mut sim = Sim::new(config(true, true), config(true, true), link, 3);
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, 64 * 1024, 8 * 1024, 60 * SEC);
    assert_eq!(r.received, 64 * 1024);
    let dsacks = sim
        .seen(Dir::BtoA)
        .filter(|s| {
            s.repr
                .sack_blocks
                .as_slice()
                .first()
                .is_some_and(|&(_, right)| right.wrapping_sub(s.repr.ack_number) as i32 <= 0)
        })
        .count();
    assert!(dsacks > 0, "no D-SACK for duplicated data");
}

/// A quarter of the segments overtake the others by up to `extra_ms` on a 10 ms path (as `tc
/// netem reorder` does), with no loss at all: every fast recovery is spurious. With timestamps
/// they are detected and undone, and the duplicate threshold grows to the reordering seen.
fn reordering(extra_ms: u64, timestamps: bool) -> (u64, TcpCounters) {
    let link = LinkConfig {
        delay_ns: 10 * MS,
        reorder_ppm: 250_000,
        reorder_extra_ns: extra_ms * MS,
        rate_bps: 100_000_000 / 8,
        queue_bytes: 1 << 20,
        ..Default::default()
    };
    let (ns, counters, _) = transfer(config(true, timestamps), link, 4, 16 * MIB);
    eprintln!(
        "reordering by up to {extra_ms} ms, timestamps {timestamps}: {} ms, {} recoveries, {} \
         undone, {} rto",
        ns / MS,
        counters.fast_retransmits,
        counters.spurious_recoveries,
        counters.rto_expirations
    );
    (ns, counters)
}

#[test]
fn spurious_recoveries_under_reordering_are_undone() {
    for extra_ms in [3, 15] {
        let (undo_ns, undo) = reordering(extra_ms, true);
        let (plain_ns, plain) = reordering(extra_ms, false);
        assert_eq!(undo.rto_expirations, 0);
        assert_eq!(plain.spurious_recoveries, 0, "no detection without timestamps");
        assert!(undo.spurious_recoveries * 10 >= undo.fast_retransmits * 9, "{undo:?}");
        assert!(undo.fast_retransmits * 10 < plain.fast_retransmits, "the threshold adapted");
        assert!(undo_ns * 4 < plain_ns, "{undo_ns} against {plain_ns}");
    }
}
