//! Many connections: a thousand short request/response connections one after another, many at
//! once on one listener, and clean-up of every connection afterwards.

mod tcp_support;

use cairn_net::tcp::{ConnId, TcpEvent, TcpState};
use cairn_rt::iobuf::SharedIoBuf;
use tcp_support::*;

/// An echo server step on B: accept, echo what arrives, close when the client has.
fn echo_server(sim: &mut Sim, listener: cairn_net::tcp::ListenerId, open: &mut Vec<ConnId>) {
    while let Some(c) = sim.b.accept(listener) {
        open.push(c);
    }
    open.retain(|&c| {
        while let Some(buf) = sim.b.recv(c) {
            sim.b.send(c, buf).unwrap();
        }
        match sim.b.state(c) {
            Some(TcpState::CloseWait) => {
                sim.b.close(c).unwrap();
                false
            }
            Some(TcpState::Closed) | None => {
                let _ = sim.b.close(c);
                false
            }
            _ => true,
        }
    });
}

#[test]
fn a_thousand_short_connections() {
    let mut sim = Sim::pair();
    sim.logging = false;
    let listener = sim.b.listen(ADDR_B, 7, 64).unwrap();
    let mut open = Vec::new();
    for i in 0..1000u32 {
        let c = sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 7).unwrap();
        let msg = format!("request {i}");
        let mut got = Vec::new();
        let mut sent = false;
        assert!(sim.run_until(5 * SEC, |sim| {
            echo_server(sim, listener, &mut open);
            if !sent && sim.a.state(c) == Some(TcpState::Established) {
                sim.a.send(c, SharedIoBuf::copy_from_slice(msg.as_bytes())).unwrap();
                sim.a.shutdown_write(c).unwrap();
                sent = true;
            }
            got.extend(read_all(&mut sim.a, c));
            matches!(sim.a.state(c), Some(TcpState::TimeWait | TcpState::Closed))
        }));
        assert_eq!(got, msg.as_bytes());
        sim.a.close(c).unwrap();
    }
    // Everything drains: B's connections end in LAST-ACK -> CLOSED, A's TIME-WAITs expire.
    sim.run_for(5 * SEC);
    echo_server(&mut sim, listener, &mut open);
    assert_eq!(sim.b.connection_count(), 0);
    assert_eq!(sim.a.connection_count(), 0);
    let (a, b) = (sim.a.counters(), sim.b.counters());
    assert_eq!(a.active_opens, 1000);
    assert_eq!(b.passive_opens, 1000);
    assert_eq!(a.closed_normally + b.closed_normally, 2000);
    assert_eq!(a.retransmits + b.retransmits, 0);
    sim.a.check_invariants().unwrap();
    sim.b.check_invariants().unwrap();
}

#[test]
fn two_hundred_connections_at_once() {
    let link = LinkConfig {
        delay_ns: 2 * MS,
        loss_ppm: 10_000,
        reorder_ppm: 10_000,
        reorder_extra_ns: 2 * MS,
        ..Default::default()
    };
    let mut sim = Sim::new(test_config(), test_config(), link, 21);
    sim.logging = false;
    let listener = sim.b.listen(ADDR_B, 7, 256).unwrap();
    let clients: Vec<ConnId> =
        (0..200).map(|_| sim.a.connect(sim.now, ADDR_A, 0, ADDR_B, 7).unwrap()).collect();
    let mut open = Vec::new();
    let mut sent = vec![false; clients.len()];
    let mut got = vec![0usize; clients.len()];
    const SIZE: usize = 20_000;
    assert!(sim.run_until(120 * SEC, |sim| {
        echo_server(sim, listener, &mut open);
        for (i, &c) in clients.iter().enumerate() {
            if !sent[i] && sim.a.state(c) == Some(TcpState::Established) {
                sim.a.send(c, pattern_buf(i as u64, SIZE)).unwrap();
                sim.a.shutdown_write(c).unwrap();
                sent[i] = true;
            }
            while let Some(buf) = sim.a.recv(c) {
                for (k, &b) in buf.iter().enumerate() {
                    assert_eq!(b, pattern((i + got[i] + k) as u64));
                }
                got[i] += buf.len();
            }
        }
        got.iter().all(|&n| n == SIZE)
    }));
    for &c in &clients {
        sim.a.close(c).unwrap();
    }
    sim.run_for(10 * SEC);
    echo_server(&mut sim, listener, &mut open);
    assert_eq!(sim.a.connection_count() + sim.b.connection_count(), 0);
    assert!(drain_events(&mut sim.b).iter().any(|e| matches!(e, TcpEvent::Accepted { .. })));
}

#[test]
fn released_connection_in_fin_wait_2_does_not_linger_forever() {
    let mut sim = Sim::pair();
    let (ca, cb) = sim.connect(80);
    // A closes; B acknowledges the FIN but never closes (and then vanishes).
    sim.a.close(ca).unwrap();
    assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
    sim.run_for(100 * MS);
    assert_eq!(sim.a.connection_count(), 1, "A waits in FIN-WAIT-2");
    sim.blackhole = [true, true];
    sim.run_for(3 * SEC);
    assert_eq!(sim.a.connection_count(), 0, "gone after the FIN-WAIT-2 timeout");
}
