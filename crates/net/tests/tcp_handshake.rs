//! TCP connection establishment: three-way handshake, simultaneous open, refusal, SYN loss,
//! listen backlog, and data both ways.

mod tcp_support;

use cairn_net::tcp::{CloseReason, TcpEvent, TcpState};
use cairn_net::wire::TcpFlags;
use tcp_support::*;

#[test]
fn three_way_handshake_and_data_both_ways() {
    let mut sim = Sim::pair();
    let listener = sim.b.listen(ADDR_B, 80, 4).unwrap();
    let ca = sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 80).unwrap();
    assert_eq!(sim.a.state(ca), Some(TcpState::SynSent));
    let mut cb = None;
    assert!(sim.run_until(SEC, |sim| {
        cb = cb.or_else(|| sim.b.accept(listener));
        cb.is_some() && sim.a.state(ca) == Some(TcpState::Established)
    }));
    let cb = cb.unwrap();
    // SYN, SYN-ACK, ACK.
    let first: Vec<_> = sim.log.iter().take(3).collect();
    assert!(first[0].dir == Dir::AtoB && flags_are(&first[0].repr, TcpFlags::SYN));
    assert!(first[1].dir == Dir::BtoA && flags_are(&first[1].repr, TcpFlags::SYN | TcpFlags::ACK));
    assert!(first[2].dir == Dir::AtoB && flags_are(&first[2].repr, TcpFlags::ACK));
    assert_eq!(first[1].repr.ack_number, first[0].repr.seq_number.wrapping_add(1));
    assert_eq!(first[0].repr.max_seg_size, Some(1460));
    assert!(first[0].repr.timestamps.is_some() && first[0].repr.window_scale.is_some());
    assert!(first[0].repr.sack_permitted && first[1].repr.sack_permitted, "SACK is offered");
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::Connected(ca)));
    assert!(drain_events(&mut sim.b).contains(&TcpEvent::Accepted { listener, conn: cb }));
    let info = sim.a.conn_info(ca).unwrap();
    assert!(info.timestamps && info.peer_sack_permitted);
    assert_eq!(info.mss, 1460 - 12);

    sim.a.send(ca, cairn_rt::iobuf::SharedIoBuf::copy_from_slice(b"hello from a")).unwrap();
    sim.b.send(cb, cairn_rt::iobuf::SharedIoBuf::copy_from_slice(b"and from b")).unwrap();
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    assert!(sim.run_until(SEC, |sim| {
        got_b.extend(read_all(&mut sim.b, cb));
        got_a.extend(read_all(&mut sim.a, ca));
        got_a.len() == 10 && got_b.len() == 12
    }));
    assert_eq!(got_b, b"hello from a");
    assert_eq!(got_a, b"and from b");
    assert!(drain_events(&mut sim.b).contains(&TcpEvent::Readable(cb)));
    sim.a.check_invariants().unwrap();
    sim.b.check_invariants().unwrap();
}

#[test]
fn connection_refused_by_rst_in_syn_sent() {
    let mut sim = Sim::pair();
    let ca = sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 81).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::Refused));
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::Closed(ca, CloseReason::Refused)));
    assert_eq!(sim.b.counters().no_connection, 1);
    assert_eq!(sim.b.counters().rst_sent, 1);
    assert_eq!(sim.a.counters().refused, 1);
    let rst = sim.seen(Dir::BtoA).next().unwrap();
    assert!(flags_are(&rst.repr, TcpFlags::RST | TcpFlags::ACK));
    sim.a.close(ca).unwrap();
    assert_eq!(sim.a.connection_count(), 0);
}

#[test]
fn simultaneous_open() {
    let mut sim = Sim::pair();
    let ca = sim.a.connect(sim.now, ADDR_A, 5000, ADDR_B, 6000).unwrap();
    let cb = sim.b.connect(sim.now, ADDR_B, 6000, ADDR_A, 5000).unwrap();
    assert!(sim.run_until(SEC, |sim| {
        sim.a.state(ca) == Some(TcpState::Established)
            && sim.b.state(cb) == Some(TcpState::Established)
    }));
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::Connected(ca)));
    assert!(drain_events(&mut sim.b).contains(&TcpEvent::Connected(cb)));
    // Both sent SYN, then SYN-ACK.
    let syns = sim.log.iter().filter(|s| flags_are(&s.repr, TcpFlags::SYN)).count();
    let synacks =
        sim.log.iter().filter(|s| flags_are(&s.repr, TcpFlags::SYN | TcpFlags::ACK)).count();
    assert_eq!((syns, synacks), (2, 2));
    sim.a.send(ca, cairn_rt::iobuf::SharedIoBuf::copy_from_slice(b"x")).unwrap();
    let mut got = Vec::new();
    assert!(sim.run_until(SEC, |sim| {
        got.extend(read_all(&mut sim.b, cb));
        got == b"x"
    }));
}

#[test]
fn lost_syn_and_syn_ack_are_retransmitted() {
    let mut sim = Sim::pair();
    let mut dropped = 0;
    sim.filter = Some(Box::new(move |_, repr, _| {
        if repr.flags.contains(TcpFlags::SYN) && dropped < 2 {
            dropped += 1;
            return false;
        }
        true
    }));
    let start = sim.now;
    let (ca, _cb) = sim.connect(80);
    // The SYN is lost (1 s RTO), then the SYN-ACK (the server's 1 s RTO, or the client's
    // backed-off 2 s SYN retransmission).
    assert!(sim.now - start >= 2 * SEC);
    assert!(sim.a.counters().rto_expirations >= 1);
    assert_eq!(sim.a.state(ca), Some(TcpState::Established));
}

#[test]
fn syn_retries_give_up() {
    let mut sim = Sim::pair();
    sim.blackhole = [true, true];
    let ca = sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 80).unwrap();
    assert!(sim.run_until(600 * SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::TimedOut));
    let syns = sim.seen(Dir::AtoB).count() as u32;
    assert_eq!(syns, 1 + test_config().syn_retries);
    // Backoff: gaps double from 1 s.
    let times: Vec<u64> = sim.seen(Dir::AtoB).map(|s| s.at).collect();
    assert_eq!(times[1] - times[0], SEC);
    assert_eq!(times[2] - times[1], 2 * SEC);
    assert_eq!(times[3] - times[2], 4 * SEC);
}

#[test]
fn listen_backlog_overflow_drops_syns() {
    let mut sim = Sim::pair();
    let listener = sim.b.listen(ADDR_B, 80, 2).unwrap();
    let conns: Vec<_> =
        (0..5).map(|_| sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 80).unwrap()).collect();
    sim.run_for(200 * MS);
    let established =
        conns.iter().filter(|&&c| sim.a.state(c) == Some(TcpState::Established)).count();
    assert_eq!(established, 2);
    assert_eq!(sim.b.counters().backlog_drops, 3);
    sim.b.check_invariants().unwrap();
    // Accepting frees room: the dropped SYNs are retransmitted and get in.
    let mut accepted = Vec::new();
    assert!(sim.run_until(30 * SEC, |sim| {
        while let Some(c) = sim.b.accept(listener) {
            accepted.push(c);
        }
        accepted.len() == 5
    }));
    assert!(conns.iter().all(|&c| sim.a.state(c) == Some(TcpState::Established)));
}

#[test]
fn segment_to_closed_port_gets_rst_and_ack_to_listener_gets_rst() {
    use cairn_net::wire::TcpRepr;
    let mut sim = Sim::pair();
    sim.b.listen(ADDR_B, 80, 4).unwrap();
    let stray = TcpRepr {
        src_port: 1234,
        dst_port: 80,
        flags: TcpFlags::ACK,
        seq_number: 10,
        ack_number: 777,
        window_len: 100,
        ..TcpRepr::default()
    };
    sim.b.input(sim.now, ADDR_A, ADDR_B, craft(&stray, b"", ADDR_A, ADDR_B));
    sim.b.input(
        sim.now,
        ADDR_A,
        ADDR_B,
        craft(&TcpRepr { dst_port: 99, ..stray }, b"", ADDR_A, ADDR_B),
    );
    let mut out = Vec::new();
    sim.b.dispatch(sim.now, &mut |_, _, chain, _| out.push(gather(chain)));
    assert_eq!(out.len(), 2);
    for bytes in &out {
        let p = cairn_net::wire::TcpPacket::new_checked(&bytes[..]).unwrap();
        assert!(p.rst() && !p.ack());
        assert_eq!(p.seq_number(), 777, "<SEQ=SEG.ACK><CTL=RST>");
    }
    assert_eq!(sim.b.counters().listen_drops, 1);
    assert_eq!(sim.b.counters().no_connection, 1);
    // A RST to a closed port is not answered.
    sim.b.input(
        sim.now,
        ADDR_A,
        ADDR_B,
        craft(&TcpRepr { flags: TcpFlags::RST, dst_port: 99, ..stray }, b"", ADDR_A, ADDR_B),
    );
    let mut n = 0;
    sim.b.dispatch(sim.now, &mut |_, _, _, _| n += 1);
    assert_eq!(n, 0);
}
