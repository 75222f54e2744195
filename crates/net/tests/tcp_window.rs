//! Flow control and output pacing: zero windows with probes and reopening, Nagle on and off,
//! delayed ACKs, the send queue limit.

mod tcp_support;

use cairn_net::tcp::{TcpConfig, TcpError, TcpEvent};
use cairn_net::wire::TcpFlags;
use cairn_rt::iobuf::SharedIoBuf;
use tcp_support::*;

#[test]
fn zero_window_probes_back_off_and_the_window_reopens() {
    let small = TcpConfig { recv_buffer: 16 * 1024, ..test_config() };
    let link = LinkConfig { delay_ns: 5 * MS, ..Default::default() };
    let mut sim = Sim::new(test_config(), small, link, 9);
    let (ca, cb) = sim.connect(80);
    let total = 100_000usize;
    sim.a.send(ca, pattern_buf(0, total)).unwrap();
    // B's application does not read: the window closes and A keeps the rest queued.
    sim.run_for(20 * SEC);
    assert_eq!(sim.b.recv_queue_len(cb), 16 * 1024);
    assert_eq!(sim.a.conn_info(ca).unwrap().snd_wnd, 0);
    assert_eq!(sim.a.send_queue_len(ca), total - 16 * 1024);
    let probes = sim.a.counters().window_probes;
    assert!(probes >= 3, "probes {probes}");
    // Probes carry one octet and come at growing intervals.
    let zero_at = sim.seen(Dir::BtoA).find(|s| s.repr.window_len == 0).map(|s| s.at).unwrap();
    let probe_times: Vec<u64> = sim
        .seen(Dir::AtoB)
        .filter(|s| s.at > zero_at && s.repr.payload_len == 1)
        .map(|s| s.at)
        .collect();
    assert!(probe_times.len() as u64 >= probes);
    let gaps: Vec<u64> = probe_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "gaps {gaps:?}");
    assert!(gaps.last() > gaps.first());
    // Each probe is answered (window still zero), so the connection is not given up.
    assert_eq!(sim.a.counters().timeouts, 0);
    assert_eq!(sim.b.counters().beyond_window_bytes, probes);
    // The application reads: a window update reopens the flow and everything arrives intact.
    let mut got = Vec::new();
    assert!(sim.run_until(20 * SEC, |sim| {
        got.extend(read_all(&mut sim.b, cb));
        got.len() == total
    }));
    assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i as u64)));
    sim.a.check_invariants().unwrap();
    sim.b.check_invariants().unwrap();
}

#[test]
fn peer_vanishing_during_zero_window_times_out() {
    let small = TcpConfig { recv_buffer: 8 * 1024, ..test_config() };
    let a_cfg = TcpConfig { max_retries: 5, ..test_config() };
    let mut sim = Sim::new(a_cfg, small, LinkConfig { delay_ns: MS, ..Default::default() }, 9);
    let (ca, _cb) = sim.connect(80);
    sim.a.send(ca, pattern_buf(0, 50_000)).unwrap();
    sim.run_for(2 * SEC);
    assert_eq!(sim.a.conn_info(ca).unwrap().snd_wnd, 0);
    sim.blackhole = [true, true];
    assert!(sim.run_until(3600 * SEC, |sim| {
        sim.a.state(ca) == Some(cairn_net::tcp::TcpState::Closed)
    }));
    assert_eq!(sim.a.close_reason(ca), Some(cairn_net::tcp::CloseReason::TimedOut));
}

/// Sends `count` writes of `size` bytes, one every `every_ns`, and returns the number of data
/// segments A emitted.
fn trickle(nodelay: bool, count: usize, size: usize, every_ns: u64) -> (usize, Vec<u8>) {
    let link = LinkConfig { delay_ns: 10 * MS, ..Default::default() };
    let mut sim = Sim::new(test_config(), test_config(), link, 4);
    let (ca, cb) = sim.connect(80);
    sim.a.set_nodelay(ca, nodelay).unwrap();
    assert_eq!(sim.a.conn_info(ca).unwrap().nodelay, nodelay);
    let mut got = Vec::new();
    for i in 0..count {
        sim.a.send(ca, pattern_buf((i * size) as u64, size)).unwrap();
        sim.run_for(every_ns);
        got.extend(read_all(&mut sim.b, cb));
    }
    assert!(sim.run_until(5 * SEC, |sim| {
        got.extend(read_all(&mut sim.b, cb));
        got.len() == count * size
    }));
    let data_segments = sim.seen(Dir::AtoB).filter(|s| s.repr.payload_len > 0).count();
    (data_segments, got)
}

#[test]
fn nagle_off_by_default_and_on_coalesces_small_writes() {
    assert!(test_config().nodelay, "Nagle is off by default");
    let (off, data_off) = trickle(true, 100, 10, MS);
    let (on, data_on) = trickle(false, 100, 10, MS);
    assert_eq!(off, 100, "every small write goes out at once");
    assert!(on <= 10, "Nagle held small segments while one was unacknowledged: {on}");
    assert_eq!(data_off, data_on);
    assert!(data_on.iter().enumerate().all(|(i, &b)| b == pattern(i as u64)));
}

#[test]
fn delayed_ack_timing() {
    let link = LinkConfig { delay_ns: MS, ..Default::default() };
    let mut sim = Sim::new(test_config(), test_config(), link, 4);
    let (ca, cb) = sim.connect(80);
    sim.log.clear();
    // One small segment: B acknowledges it 40 ms after it arrives.
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"ping")).unwrap();
    let sent = sim.now;
    sim.run_for(200 * MS);
    assert_eq!(read_all(&mut sim.b, cb), b"ping");
    let ack = sim.seen(Dir::BtoA).next().unwrap();
    assert!(flags_are(&ack.repr, TcpFlags::ACK));
    assert_eq!(ack.at - sent, MS + 40 * MS);
    assert_eq!(sim.b.counters().delayed_acks, 1);
    // Two full segments: acknowledged at once, on the second.
    sim.log.clear();
    let mss = sim.a.conn_info(ca).unwrap().mss;
    sim.a.send(ca, pattern_buf(0, 2 * mss)).unwrap();
    let sent = sim.now;
    sim.run_for(200 * MS);
    let acks: Vec<_> = sim.seen(Dir::BtoA).collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].at - sent, MS);
    // Out of order: a duplicate ACK at once.
    sim.log.clear();
    let mut first = true;
    sim.filter = Some(Box::new(move |dir, repr, _| {
        if dir == Dir::AtoB && repr.payload_len > 0 && first {
            first = false;
            return false;
        }
        true
    }));
    sim.a.send(ca, pattern_buf(0, 2 * mss)).unwrap();
    let sent = sim.now;
    sim.run_for(MS + 1);
    let acks: Vec<_> = sim.seen(Dir::BtoA).collect();
    assert_eq!(acks.len(), 1, "immediate duplicate ACK");
    assert_eq!(acks[0].at - sent, MS);
    assert_eq!(sim.b.counters().ooo_queued, 1);
}

#[test]
fn delayed_acks_can_be_turned_off() {
    let eager = TcpConfig { delayed_ack_ns: 0, ..test_config() };
    let mut sim =
        Sim::new(test_config(), eager, LinkConfig { delay_ns: MS, ..Default::default() }, 4);
    let (ca, _cb) = sim.connect(80);
    sim.log.clear();
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"ping")).unwrap();
    let sent = sim.now;
    sim.run_for(100 * MS);
    assert_eq!(sim.seen(Dir::BtoA).next().unwrap().at - sent, MS);
}

#[test]
fn send_queue_limit_blocks_then_writable() {
    let limited = TcpConfig { send_queue_limit: Some(64 * 1024), ..test_config() };
    let mut sim =
        Sim::new(limited, test_config(), LinkConfig { delay_ns: MS, ..Default::default() }, 4);
    let (ca, cb) = sim.connect(80);
    let mut queued = 0;
    loop {
        match sim.a.send(ca, pattern_buf(queued, 10_000)) {
            Ok(()) => queued += 10_000,
            Err(TcpError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(queued, 70_000, "accepted while below the limit");
    let mut got = 0;
    assert!(sim.run_until(5 * SEC, |sim| {
        got += read_all(&mut sim.b, cb).len();
        drain_events(&mut sim.a).contains(&TcpEvent::Writable(ca))
    }));
    assert!(sim.a.send(ca, pattern_buf(queued, 10)).is_ok());
}
