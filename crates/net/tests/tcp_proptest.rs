//! Property tests: arbitrary segments (random flags, sequence and acknowledgment numbers near
//! and far from the connection's, windows, options, payloads) and arbitrary bytes fed to a
//! stack holding a connection in each state. The stack must never panic and its invariants
//! (SND.UNA ≤ SND.NXT ≤ SND.MAX, nothing sent beyond the queue, tables consistent) must hold
//! after every segment, every dispatch and every timer.

mod tcp_support;

use cairn_net::tcp::{TcpConfig, TcpStack, TcpState};
use cairn_net::wire::{Ipv4Address, SackBlocks, TcpFlags, TcpRepr, TcpTimestamps};
use cairn_rt::iobuf::SharedIoBuf;
use proptest::prelude::*;
use tcp_support::*;

/// The states a connection can be put in before fuzzing; the side fuzzed is the one in that
/// state.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Listen,
    SynSent,
    SynReceived,
    Established,
    EstablishedWithData,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

const SETUPS: [Setup; 11] = [
    Setup::Listen,
    Setup::SynSent,
    Setup::SynReceived,
    Setup::Established,
    Setup::EstablishedWithData,
    Setup::FinWait1,
    Setup::FinWait2,
    Setup::CloseWait,
    Setup::Closing,
    Setup::LastAck,
    Setup::TimeWait,
];

/// Which side is fuzzed, and the (local port, remote port) of its connection.
struct Target {
    side_b: bool,
    ports: (u16, u16),
}

fn drop_all(sim: &mut Sim) {
    sim.filter = Some(Box::new(|_, _, _| false));
    sim.flush();
    sim.filter = None;
}

fn setup(kind: Setup) -> (Sim, Target) {
    let cfg = TcpConfig { recv_buffer: 32 * 1024, ..test_config() };
    let mut sim = Sim::new(cfg.clone(), cfg, LinkConfig { delay_ns: MS, ..Default::default() }, 5);
    let b_side = |sim: &Sim, ca| Target {
        side_b: true,
        ports: (80, sim.a.local_endpoint(ca).map_or(0, |e| e.1)),
    };
    let a_side = |sim: &Sim, ca| Target {
        side_b: false,
        ports: (sim.a.local_endpoint(ca).map_or(0, |e| e.1), 80),
    };
    let target = match kind {
        Setup::Listen => {
            sim.b.listen(ADDR_B, 80, 4).unwrap();
            Target { side_b: true, ports: (80, 40000) }
        }
        Setup::SynSent => {
            let ca = sim.a.connect(sim.now, ADDR_A, 40000, ADDR_B, 80).unwrap();
            drop_all(&mut sim);
            a_side(&sim, ca)
        }
        Setup::SynReceived => {
            sim.b.listen(ADDR_B, 80, 4).unwrap();
            sim.a.connect(sim.now, ADDR_A, 40000, ADDR_B, 80).unwrap();
            sim.filter = Some(Box::new(|dir, _, _| dir == Dir::AtoB));
            sim.run_for(10 * MS);
            sim.filter = None;
            Target { side_b: true, ports: (80, 40000) }
        }
        Setup::Established | Setup::EstablishedWithData => {
            let (ca, cb) = sim.connect(80);
            if let Setup::EstablishedWithData = kind {
                sim.b.send(cb, pattern_buf(0, 20_000)).unwrap();
                sim.a.send(ca, pattern_buf(0, 20_000)).unwrap();
                sim.filter = Some(Box::new(|_, r, _| r.payload_len == 0 || r.seq_number % 3 != 0));
                sim.run_for(3 * MS);
                sim.filter = None;
            }
            b_side(&sim, ca)
        }
        Setup::FinWait1 => {
            let (ca, _) = sim.connect(80);
            sim.a.send(ca, pattern_buf(0, 3000)).unwrap();
            sim.a.shutdown_write(ca).unwrap();
            drop_all(&mut sim);
            a_side(&sim, ca)
        }
        Setup::FinWait2 | Setup::CloseWait => {
            let (ca, _) = sim.connect(80);
            sim.a.shutdown_write(ca).unwrap();
            assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::FinWait2)));
            if let Setup::FinWait2 = kind {
                a_side(&sim, ca)
            } else {
                b_side(&sim, ca)
            }
        }
        Setup::Closing => {
            let (ca, cb) = sim.connect(80);
            sim.filter =
                Some(Box::new(|dir, r, _| !(dir == Dir::AtoB && r.flags.contains(TcpFlags::FIN))));
            sim.a.shutdown_write(ca).unwrap();
            sim.b.shutdown_write(cb).unwrap();
            assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::Closing)));
            sim.filter = None;
            a_side(&sim, ca)
        }
        Setup::LastAck => {
            let (ca, cb) = sim.connect(80);
            sim.a.shutdown_write(ca).unwrap();
            assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
            sim.b.shutdown_write(cb).unwrap();
            drop_all(&mut sim);
            b_side(&sim, ca)
        }
        Setup::TimeWait => {
            let (ca, cb) = sim.connect(80);
            sim.a.shutdown_write(ca).unwrap();
            assert!(sim.run_until(SEC, |sim| sim.b.state(cb) == Some(TcpState::CloseWait)));
            sim.b.close(cb).unwrap();
            assert!(sim.run_until(SEC, |sim| sim.a.state(ca) == Some(TcpState::TimeWait)));
            a_side(&sim, ca)
        }
    };
    (sim, target)
}

/// One fuzzed segment, before its numbers are placed relative to the connection.
#[derive(Debug, Clone)]
struct Fuzz {
    flags: u8,
    seq_near: bool,
    seq_off: i32,
    ack_near: bool,
    ack_off: i32,
    window: u16,
    mss: Option<u16>,
    ws: Option<u8>,
    ts: Option<(u32, u32)>,
    sack: bool,
    payload: usize,
    right_ports: bool,
    advance_ms: u16,
    /// SACK blocks as (offset from the target's last sequence number, length).
    sack_blocks: Vec<(i32, u16)>,
}

fn fuzz_strategy() -> impl Strategy<Value = Fuzz> {
    (
        (any::<u8>(), any::<bool>(), -70_000i32..70_000, any::<bool>(), -70_000i32..70_000),
        (any::<u16>(), proptest::option::of(any::<u16>()), proptest::option::of(0u8..20)),
        (proptest::option::of((any::<u32>(), any::<u32>())), any::<bool>(), 0usize..3000),
        (
            proptest::bool::weighted(0.9),
            0u16..2000,
            proptest::collection::vec((-3000i32..70_000, 1u16..5000), 0..4),
        ),
    )
        .prop_map(
            |(
                (flags, seq_near, seq_off, ack_near, ack_off),
                (window, mss, ws),
                (ts, sack, payload),
                (right_ports, advance_ms, sack_blocks),
            )| Fuzz {
                flags,
                seq_near,
                seq_off,
                ack_near,
                ack_off,
                window,
                mss,
                ws,
                ts,
                sack,
                payload,
                right_ports,
                advance_ms,
                sack_blocks,
            },
        )
}

/// The (seq, ack) the target last sent, to place fuzzed numbers near.
fn anchors(sim: &Sim, target: &Target) -> (u32, u32) {
    let dir = if target.side_b { Dir::BtoA } else { Dir::AtoB };
    sim.seen(dir).last().map_or((0, 0), |s| (s.repr.seq_number, s.repr.ack_number))
}

fn feed(sim: &mut Sim, target: &Target, f: &Fuzz) {
    let (my_seq, my_ack) = anchors(sim, target);
    let (src, dst) = if target.side_b { (ADDR_A, ADDR_B) } else { (ADDR_B, ADDR_A) };
    let seq = if f.seq_near {
        my_ack.wrapping_add(f.seq_off as u32)
    } else {
        f.seq_off as u32 ^ 0x5a5a_0000
    };
    let ack = if f.ack_near {
        my_seq.wrapping_add(f.ack_off as u32)
    } else {
        f.ack_off as u32 ^ 0xa5a5_0000
    };
    let (dst_port, src_port) =
        if f.right_ports { target.ports } else { (f.window | 1, f.advance_ms | 1) };
    let repr = TcpRepr {
        src_port,
        dst_port,
        flags: TcpFlags(f.flags),
        seq_number: seq,
        ack_number: ack,
        window_len: f.window,
        urgent_at: 0,
        max_seg_size: f.mss,
        window_scale: f.ws,
        sack_permitted: f.sack,
        sack_blocks: {
            let mut blocks = SackBlocks::new();
            for &(off, len) in &f.sack_blocks {
                let left = my_seq.wrapping_add(off as u32);
                blocks.push(left, left.wrapping_add(u32::from(len)));
            }
            blocks
        },
        timestamps: f.ts.map(|(tsval, tsecr)| TcpTimestamps { tsval, tsecr }),
        payload_len: 0,
    };
    let payload: Vec<u8> = (0..f.payload).map(|i| i as u8).collect();
    let bytes = craft(&repr, &payload, src, dst);
    let stack: &mut TcpStack = if target.side_b { &mut sim.b } else { &mut sim.a };
    stack.input(sim.now, src, dst, bytes);
}

fn check(sim: &Sim) -> Result<(), TestCaseError> {
    sim.a.check_invariants().map_err(|e| TestCaseError::fail(format!("A: {e}")))?;
    sim.b.check_invariants().map_err(|e| TestCaseError::fail(format!("B: {e}")))?;
    Ok(())
}

proptest! {
    // 256 cases unless PROPTEST_CASES says otherwise (for longer runs).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_segments_never_break_a_connection(
        which in 0usize..SETUPS.len(),
        segments in proptest::collection::vec(fuzz_strategy(), 1..24),
    ) {
        let (mut sim, target) = setup(SETUPS[which]);
        check(&sim)?;
        for f in &segments {
            feed(&mut sim, &target, f);
            check(&sim)?;
            // The stack answers; the answers travel (and may be dropped) like any segment.
            sim.flush();
            check(&sim)?;
            sim.run_for(u64::from(f.advance_ms) * MS / 4);
            check(&sim)?;
        }
        // Whatever happened, the stacks settle: run on and check again.
        sim.run_for(200 * SEC);
        check(&sim)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        which in 0usize..SETUPS.len(),
        blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..16),
        header_like in any::<bool>(),
    ) {
        let (mut sim, target) = setup(SETUPS[which]);
        let (src, dst) = if target.side_b { (ADDR_A, ADDR_B) } else { (ADDR_B, ADDR_A) };
        for mut blob in blobs {
            if header_like && blob.len() >= 20 {
                // Plausible header start: the right ports and a data offset in range.
                blob[..2].copy_from_slice(&target.ports.1.to_be_bytes());
                blob[2..4].copy_from_slice(&target.ports.0.to_be_bytes());
                blob[12] = (blob[12] % 11 + 5) << 4;
            }
            let stack: &mut TcpStack = if target.side_b { &mut sim.b } else { &mut sim.a };
            stack.input(sim.now, src, dst, SharedIoBuf::from_vec(blob));
            check(&sim)?;
            sim.flush();
        }
        // Odd addresses are refused, not panicked on.
        sim.b.input(sim.now, Ipv4Address::BROADCAST, ADDR_B, SharedIoBuf::from_vec(vec![0; 20]));
        check(&sim)?;
    }
}

#[test]
fn every_setup_reaches_its_state() {
    for kind in SETUPS {
        let (sim, target) = setup(kind);
        let stack = if target.side_b { &sim.b } else { &sim.a };
        if matches!(kind, Setup::Listen) {
            assert_eq!(stack.connection_count(), 0);
        } else {
            assert!(stack.connection_count() >= 1, "{kind:?}");
        }
        check(&sim).unwrap();
    }
}
