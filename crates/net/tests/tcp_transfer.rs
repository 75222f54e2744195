//! TCP data transfer: bulk transfers with byte-for-byte checks over clean and lossy, reordering,
//! duplicating links; NewReno fast retransmit; window scaling; timestamps RTT; zero-copy
//! segmentation.

mod tcp_support;

use cairn_net::tcp::TcpConfig;
use tcp_support::*;

const MIB: u64 = 1 << 20;

fn lossy_link(loss_ppm: u32, seed_delay_ms: u64) -> LinkConfig {
    LinkConfig {
        delay_ns: seed_delay_ms * MS,
        loss_ppm,
        dup_ppm: 5_000,
        reorder_ppm: 20_000,
        reorder_extra_ns: 3 * MS,
        rate_bps: 100_000_000,
        queue_bytes: 512 * 1024,
    }
}

fn big_buffers() -> TcpConfig {
    TcpConfig { recv_buffer: 1 << 20, ..test_config() }
}

#[test]
fn bulk_transfer_clean_link_each_way() {
    let link = LinkConfig { delay_ns: 5 * MS, rate_bps: 200_000_000, ..Default::default() };
    let mut sim = Sim::new(big_buffers(), big_buffers(), link, 7);
    sim.logging = false;
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, 32 * MIB, 64 * 1024, 120 * SEC);
    assert_eq!(r.received, 32 * MIB);
    assert_eq!(r.sender_hash, r.receiver_hash);
    let r = bulk(&mut sim, Dir::BtoA, cb, ca, 16 * MIB, 10_000, 120 * SEC);
    assert_eq!(r.received, 16 * MIB);
    assert_eq!(r.sender_hash, r.receiver_hash);
    let (a, b) = (sim.a.counters(), sim.b.counters());
    assert_eq!(a.retransmits + b.retransmits, 0, "no loss, no retransmission");
    // Window scaling let the window exceed 64 KiB.
    let info = sim.a.conn_info(ca).unwrap();
    // 1 MiB needs a shift of 5 to fit in 16 bits (RFC 7323 §2.3).
    assert_eq!((info.snd_wscale, info.rcv_wscale), (5, 5));
    assert!(info.snd_wnd > 65_535, "{info:?}");
    // 200 Mbit/s with 10 ms RTT and a 1 MiB window: far faster than a 64 KiB window allows
    // (64 KiB / 10 ms = 52 Mbit/s would take 5 s for 32 MiB).
    sim.a.check_invariants().unwrap();
    sim.b.check_invariants().unwrap();
}

#[test]
fn bulk_transfer_under_loss_reordering_and_duplication() {
    for (seed, loss_ppm) in [(1u64, 10_000u32), (2, 30_000), (3, 50_000)] {
        let mut sim = Sim::new(big_buffers(), big_buffers(), lossy_link(loss_ppm, 2), seed);
        sim.logging = false;
        let (ca, cb) = sim.connect(80);
        let total = if loss_ppm >= 50_000 { 8 * MIB } else { 20 * MIB };
        let r = bulk(&mut sim, Dir::AtoB, ca, cb, total, 32 * 1024, 1200 * SEC);
        assert_eq!(r.received, total, "loss {loss_ppm} ppm: incomplete");
        assert_eq!(r.sender_hash, r.receiver_hash);
        let a = sim.a.counters();
        let b = sim.b.counters();
        assert!(a.fast_retransmits > 0, "loss {loss_ppm}: {a:?}");
        assert!(a.retransmits > 0 && a.dup_acks > 0);
        assert!(b.ooo_queued > 0, "{b:?}");
        sim.a.check_invariants().unwrap();
        sim.b.check_invariants().unwrap();
        eprintln!(
            "loss {loss_ppm} ppm: {total} B in {} ms, fast rtx {}, partial {}, rto {}, rtx {}",
            r.elapsed_ns / MS,
            a.fast_retransmits,
            a.partial_ack_retransmits,
            a.rto_expirations,
            a.retransmits
        );
    }
}

#[test]
fn both_directions_at_once_under_loss() {
    let mut sim = Sim::new(big_buffers(), big_buffers(), lossy_link(10_000, 3), 11);
    sim.logging = false;
    let (ca, cb) = sim.connect(80);
    let total = 4 * MIB;
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (0u64, 0u64, 0u64, 0u64);
    assert!(sim.run_until(600 * SEC, |sim| {
        while sent_a < total && sim.a.send_queue_len(ca) < 256 * 1024 {
            sim.a.send(ca, pattern_buf(sent_a, 5000)).unwrap();
            sent_a += 5000;
        }
        while sent_b < total && sim.b.send_queue_len(cb) < 256 * 1024 {
            sim.b.send(cb, pattern_buf(sent_b, 7000)).unwrap();
            sent_b += 7000;
        }
        while let Some(buf) = sim.b.recv(cb) {
            assert!(buf.iter().enumerate().all(|(i, &x)| x == pattern(got_b + i as u64)));
            got_b += buf.len() as u64;
        }
        while let Some(buf) = sim.a.recv(ca) {
            assert!(buf.iter().enumerate().all(|(i, &x)| x == pattern(got_a + i as u64)));
            got_a += buf.len() as u64;
        }
        got_a >= total && got_b >= total
    }));
}

#[test]
fn timestamps_give_rtt_samples() {
    let link = LinkConfig { delay_ns: 25 * MS, ..Default::default() };
    let mut sim = Sim::new(test_config(), test_config(), link.clone(), 3);
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, 2 * MIB, 16 * 1024, 60 * SEC);
    assert_eq!(r.received, 2 * MIB);
    let info = sim.a.conn_info(ca).unwrap();
    assert!(info.timestamps);
    let srtt = info.srtt_ns.unwrap();
    // RTT is 50 ms plus up to the 40 ms delayed ACK on the last segment of a flight.
    assert!((45 * MS..=95 * MS).contains(&srtt), "srtt {} ms", srtt / MS);
    assert!(info.rto_ns >= 200 * MS);
    // Without timestamps: Karn's timed segments give a similar answer.
    let plain = TcpConfig { timestamps: false, ..test_config() };
    let mut sim = Sim::new(plain.clone(), plain, link, 3);
    let (ca, cb) = sim.connect(80);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, 2 * MIB, 16 * 1024, 60 * SEC);
    assert_eq!(r.received, 2 * MIB);
    let info = sim.a.conn_info(ca).unwrap();
    assert!(!info.timestamps);
    assert_eq!(info.mss, 1460);
    let srtt = info.srtt_ns.unwrap();
    assert!((45 * MS..=95 * MS).contains(&srtt), "srtt {} ms", srtt / MS);
}

#[test]
fn window_scaling_only_when_both_offer_it() {
    let off = TcpConfig { window_scaling: false, recv_buffer: 1 << 20, ..test_config() };
    let mut sim =
        Sim::new(big_buffers(), off, LinkConfig { delay_ns: MS, ..Default::default() }, 5);
    let (ca, cb) = sim.connect(80);
    let (ia, ib) = (sim.a.conn_info(ca).unwrap(), sim.b.conn_info(cb).unwrap());
    assert_eq!((ia.snd_wscale, ia.rcv_wscale, ib.snd_wscale, ib.rcv_wscale), (0, 0, 0, 0));
    assert!(ia.snd_wnd <= 65_535);
    let synack = sim.seen(Dir::BtoA).next().unwrap();
    assert_eq!(synack.repr.window_scale, None);
    let r = bulk(&mut sim, Dir::AtoB, ca, cb, MIB, 8192, 60 * SEC);
    assert_eq!(r.received, MIB);
}

thread_local! {
    static COPIED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_copy(n: usize) {
    COPIED.with(|c| c.set(c.get() + n as u64));
}

#[test]
fn peer_mss_is_respected_and_segments_share_the_senders_buffers() {
    let small = TcpConfig { mtu: 576, ..test_config() };
    let link = LinkConfig { delay_ns: MS, ..Default::default() };
    let mut sim = Sim::new(test_config(), small, link, 5);
    let (ca, cb) = sim.connect(80);
    assert_eq!(sim.a.conn_info(ca).unwrap().mss, 536 - 12);
    let data = pattern_buf(0, 100_000);
    let base = data.as_ptr() as usize;
    sim.a.send(ca, data).unwrap();
    cairn_rt::iobuf::set_copy_observer(Some(count_copy));
    let before = COPIED.with(|c| c.get());
    let mut segments = 0;
    sim.a.dispatch(sim.now, &mut |_, _, chain, _| {
        // The header buffer, then the payload as a view into the application's buffer.
        assert_eq!(chain.segment_count(), 2);
        assert_eq!(chain.len(), 536 - 12 + 32);
        let payload = chain.segments().nth(1).unwrap();
        let at = payload.as_ptr() as usize - base;
        assert_eq!(at, segments * (536 - 12));
        segments += 1;
    });
    assert_eq!(COPIED.with(|c| c.get()), before, "segmentation copied payload bytes");
    assert!(segments >= 10, "the initial window's worth went out: {segments}");
    let mut got = Vec::new();
    assert!(sim.run_until(10 * SEC, |sim| {
        got.extend(read_all(&mut sim.b, cb));
        got.len() == 100_000
    }));
    assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i as u64)));
    let max_payload = sim.seen(Dir::AtoB).map(|s| s.repr.payload_len).max().unwrap();
    assert_eq!(max_payload, 536 - 12);
}
