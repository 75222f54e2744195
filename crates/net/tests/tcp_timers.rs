//! Retransmission timing: RTO backoff and giving up, the peer vanishing mid-transfer.

mod tcp_support;

use cairn_net::tcp::{CloseReason, TcpConfig, TcpEvent, TcpState};
use cairn_rt::iobuf::SharedIoBuf;
use tcp_support::*;

#[test]
fn rto_backs_off_exponentially_then_gives_up() {
    let cfg = TcpConfig { max_retries: 6, ..test_config() };
    let mut sim =
        Sim::new(cfg, test_config(), LinkConfig { delay_ns: MS, ..Default::default() }, 2);
    let (ca, _cb) = sim.connect(80);
    sim.blackhole = [false, true];
    sim.log.clear();
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"into the void")).unwrap();
    assert!(sim.run_until(3600 * SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::TimedOut));
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::Closed(ca, CloseReason::TimedOut)));
    let c = sim.a.counters();
    assert_eq!(c.rto_expirations, 6);
    assert_eq!(c.timeouts, 1);
    let times: Vec<u64> =
        sim.seen(Dir::AtoB).filter(|s| s.repr.payload_len > 0).map(|s| s.at).collect();
    assert_eq!(times.len(), 7, "the original and 6 retransmissions");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The RTT is 2 ms, so RTO sits at its 200 ms floor, then doubles each time.
    assert_eq!(gaps[0], 200 * MS);
    for w in gaps.windows(2) {
        assert_eq!(w[1], 2 * w[0]);
    }
    // And the last wait before giving up was another doubled RTO.
    assert_eq!(sim.now - times[6], 2 * gaps[5]);
}

#[test]
fn rto_is_capped_at_the_maximum() {
    let cfg = TcpConfig { max_retries: 12, rto_max_ns: 3 * SEC, ..test_config() };
    let mut sim =
        Sim::new(cfg, test_config(), LinkConfig { delay_ns: MS, ..Default::default() }, 2);
    let (ca, _cb) = sim.connect(80);
    sim.blackhole = [false, true];
    sim.log.clear();
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"x")).unwrap();
    assert!(sim.run_until(3600 * SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    let times: Vec<u64> = sim.seen(Dir::AtoB).map(|s| s.at).collect();
    let max_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert_eq!(max_gap, 3 * SEC);
}

#[test]
fn peer_vanishing_mid_transfer_times_out() {
    let cfg = TcpConfig { max_retries: 8, ..test_config() };
    let link = LinkConfig { delay_ns: 5 * MS, rate_bps: 50_000_000, ..Default::default() };
    let mut sim = Sim::new(cfg, test_config(), link, 12);
    sim.logging = false;
    let (ca, cb) = sim.connect(80);
    let mut sent = 0u64;
    let mut got = 0u64;
    sim.run_until(60 * SEC, |sim| {
        while sim.a.send_queue_len(ca) < 512 * 1024 {
            sim.a.send(ca, pattern_buf(sent, 16 * 1024)).unwrap();
            sent += 16 * 1024;
        }
        got += read_all(&mut sim.b, cb).len() as u64;
        got > 4 << 20
    });
    // The peer disappears (power cut): nothing gets through either way any more.
    sim.blackhole = [true, true];
    let cut = sim.now;
    assert!(sim.run_until(3600 * SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::TimedOut));
    let took = sim.now - cut;
    // 200 ms doubling 9 times: about 200 ms · (2^9 − 1) ≈ 102 s.
    assert!((50 * SEC..200 * SEC).contains(&took), "gave up after {} s", took / SEC);
    assert_eq!(sim.a.send_queue_len(ca), 0, "queues dropped");
    sim.a.check_invariants().unwrap();
}
