//! TCP connection teardown: orderly close each way, simultaneous close, TIME-WAIT expiry,
//! half-close, RST acceptance and challenge ACKs (RFC 5961), abort, data after close.

mod tcp_support;

use cairn_net::tcp::{CloseReason, TcpEvent, TcpState};
use cairn_net::wire::{TcpFlags, TcpRepr};
use cairn_rt::iobuf::SharedIoBuf;
use tcp_support::*;

#[test]
fn active_close_goes_through_time_wait_and_expires() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"last words")).unwrap();
    sim.a.shutdown_write(ca).unwrap();
    assert_eq!(sim.a.state(ca), Some(TcpState::FinWait1));
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
    assert_eq!(read_all(&mut sim.b, cb), b"last words");
    assert!(drain_events(&mut sim.b).contains(&TcpEvent::PeerClosed(cb)));
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::FinWait2)));
    sim.b.close(cb).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::TimeWait)));
    let entered = sim.now;
    // B's side is gone once its FIN is acknowledged (LAST-ACK -> CLOSED).
    assert!(sim.run_until(SEC, |sim| sim.b.connection_count() == 0));
    assert_eq!(sim.b.counters().closed_normally, 1);
    // TIME-WAIT lasts 2·MSL (2 s in the test configuration), then CLOSED.
    assert!(sim.run_until(10 * SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    let waited = sim.now - entered;
    assert!((2 * SEC..2 * SEC + 10 * MS).contains(&waited), "waited {waited}");
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::Closed(ca, CloseReason::Normal)));
    sim.a.close(ca).unwrap();
    assert_eq!(sim.a.connection_count(), 0);
}

#[test]
fn simultaneous_close() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.shutdown_write(ca).unwrap();
    sim.b.shutdown_write(cb).unwrap();
    // Both FINs cross: FIN-WAIT-1 -> CLOSING -> TIME-WAIT on both sides.
    let mut closing = [false; 2];
    assert!(sim.run_until(SEC, |sim| {
        closing[0] |= sim.a.state(ca) == Some(TcpState::Closing);
        closing[1] |= sim.b.state(cb) == Some(TcpState::Closing);
        sim.a.state(ca) == Some(TcpState::TimeWait) && sim.b.state(cb) == Some(TcpState::TimeWait)
    }));
    assert_eq!(closing, [true, true]);
    assert!(sim.run_until(5 * SEC, |sim| {
        sim.a.state(ca) == Some(TcpState::Closed) && sim.b.state(cb) == Some(TcpState::Closed)
    }));
}

#[test]
fn half_close_keeps_receiving() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"request")).unwrap();
    sim.a.shutdown_write(ca).unwrap();
    assert!(sim.a.send(ca, SharedIoBuf::copy_from_slice(b"more")).is_err());
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
    assert_eq!(read_all(&mut sim.b, cb), b"request");
    // B answers at length after A's FIN; A (FIN-WAIT-2) receives all of it.
    let reply = pattern_buf(0, 300_000);
    sim.b.send(cb, reply).unwrap();
    sim.b.close(cb).unwrap();
    let mut got = Vec::new();
    assert!(sim.run_until(10 * SEC, |sim| {
        got.extend(read_all(&mut sim.a, ca));
        sim.a.state(ca) == Some(TcpState::TimeWait)
    }));
    assert_eq!(got.len(), 300_000);
    assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i as u64)));
    assert!(drain_events(&mut sim.a).contains(&TcpEvent::PeerClosed(ca)));
}

/// Sends `repr` (with the connection's ports) from A to B as if from A's stack.
fn inject(sim: &mut Sim, repr: TcpRepr, payload: &[u8]) {
    let bytes = craft(&repr, payload, ADDR_A, ADDR_B);
    sim.b.input(sim.now, ADDR_A, ADDR_B, bytes);
}

fn emitted_by_b(sim: &mut Sim) -> Vec<TcpRepr> {
    let mut out = Vec::new();
    sim.b.dispatch(sim.now, &mut |src, dst, chain, _| {
        let bytes = gather(chain);
        let p = cairn_net::wire::TcpPacket::new_checked(&bytes[..]).unwrap();
        out.push(TcpRepr::parse(&p, src, dst, &Default::default()).unwrap());
    });
    out
}

#[test]
fn rst_in_window_is_challenged_exact_rst_resets_out_of_window_ignored() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.run_for(100 * MS);
    let ia = sim.a.conn_info(ca).unwrap();
    let (port_a, port_b) = (sim.a.local_endpoint(ca).unwrap().1, 80);
    let base =
        TcpRepr { src_port: port_a, dst_port: port_b, flags: TcpFlags::RST, ..Default::default() };

    // Out of window: ignored silently.
    inject(&mut sim, TcpRepr { seq_number: ia.snd_nxt.wrapping_add(1 << 30), ..base }, b"");
    assert!(emitted_by_b(&mut sim).is_empty());
    assert_eq!(sim.b.counters().rst_ignored, 1);

    // In window but not RCV.NXT: a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT>, no reset.
    inject(&mut sim, TcpRepr { seq_number: ia.snd_nxt.wrapping_add(100), ..base }, b"");
    let out = emitted_by_b(&mut sim);
    assert_eq!(out.len(), 1);
    assert!(flags_are(&out[0], TcpFlags::ACK));
    assert_eq!(out[0].ack_number, ia.snd_nxt);
    assert_eq!(sim.b.counters().rst_challenged, 1);
    assert_eq!(sim.b.state(cb), Some(TcpState::Established));

    // SYN on an established connection: challenge ACK too (RFC 5961 §4).
    inject(
        &mut sim,
        TcpRepr { flags: TcpFlags::SYN, seq_number: ia.snd_nxt.wrapping_add(5), ..base },
        b"",
    );
    assert_eq!(emitted_by_b(&mut sim).len(), 1);
    assert_eq!(sim.b.counters().syn_challenged, 1);
    assert_eq!(sim.b.state(cb), Some(TcpState::Established));

    // Exactly RCV.NXT: the connection is reset.
    inject(&mut sim, TcpRepr { seq_number: ia.snd_nxt, ..base }, b"");
    assert_eq!(sim.b.state(cb), Some(TcpState::Closed));
    assert_eq!(sim.b.close_reason(cb), Some(CloseReason::Reset));
    assert!(drain_events(&mut sim.b).contains(&TcpEvent::Closed(cb, CloseReason::Reset)));
    assert!(
        sim.b.send(cb, SharedIoBuf::copy_from_slice(b"x"))
            == Err(cairn_net::tcp::TcpError::Closed(CloseReason::Reset))
    );
}

#[test]
fn abort_sends_rst_and_peer_resets() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.abort(ca).unwrap();
    assert!(sim.a.has_pending_output(), "the RST waits for dispatch");
    assert_eq!(sim.a.state(ca), None, "the handle is gone");
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::Closed)));
    assert_eq!(sim.b.close_reason(cb), Some(CloseReason::Reset));
    assert_eq!(sim.a.counters().aborted, 1);
    assert_eq!(sim.b.counters().rst_accepted, 1);
    assert_eq!(sim.a.connection_count(), 0);
}

#[test]
fn close_with_unread_data_resets() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"unread")).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.b.recv_queue_len(cb) == 6));
    sim.b.close(cb).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::Reset));
}

#[test]
fn data_after_close_is_answered_with_rst() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.b.close(cb).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::CloseWait)));
    sim.a.send(ca, SharedIoBuf::copy_from_slice(b"too late")).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::Closed)));
    assert_eq!(sim.a.close_reason(ca), Some(CloseReason::Reset));
    assert_eq!(sim.b.counters().data_after_close, 1);
}

#[test]
fn time_wait_reacks_a_retransmitted_fin() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    sim.a.close(ca).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
    // Lose A's final ACK once: B retransmits its FIN and A, in TIME-WAIT, acknowledges again.
    let mut dropped = false;
    sim.filter = Some(Box::new(move |dir, repr, _| {
        if dir == Dir::AtoB && flags_are(repr, TcpFlags::ACK) && !dropped {
            dropped = true;
            return false;
        }
        true
    }));
    sim.b.close(cb).unwrap();
    assert!(sim.run_until(5 * SEC, |sim| sim.b.connection_count() == 0));
    assert!(sim.a.counters().out_of_window >= 1, "the old FIN");
    assert!(sim.b.counters().rto_expirations >= 1);
}

#[test]
fn new_syn_reopens_a_time_wait_tuple() {
    let mut sim = Sim::pair();
    let listener = sim.a.listen(ADDR_A, 7, 4).unwrap();
    // B connects to A:7 from a fixed port; A closes first so A holds TIME-WAIT.
    let cb = sim.b.connect(sim.now, ADDR_B, 40000, ADDR_A, 7).unwrap();
    let mut ca = None;
    assert!(sim.run_until(SEC, |sim| {
        ca = ca.or_else(|| sim.a.accept(listener));
        ca.is_some()
    }));
    let ca = ca.unwrap();
    sim.a.close(ca).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
    sim.b.close(cb).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.b.connection_count() == 0));
    assert_eq!(sim.a.connection_count(), 1, "A in TIME-WAIT");
    // Same tuple again, well before 2·MSL: the ISN clock moved on, so the SYN is newer.
    sim.run_for(100 * MS);
    let cb2 = sim.b.connect(sim.now, ADDR_B, 40000, ADDR_A, 7).unwrap();
    let mut ca2 = None;
    assert!(sim.run_until(SEC, |sim| {
        ca2 = ca2.or_else(|| sim.a.accept(listener));
        ca2.is_some() && sim.b.state(cb2) == Some(TcpState::Established)
    }));
    assert_eq!(sim.a.state(ca2.unwrap()), Some(TcpState::Established));
}
