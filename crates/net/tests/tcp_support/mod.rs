//! A deterministic simulated link between two `TcpStack`s, for the TCP tests: a virtual clock,
//! a seeded PRNG, and controllable loss, duplication, reordering, delay and bandwidth. Every
//! segment is checked on the way (checksum, parse) as the interface layer would.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cairn_net::tcp::{ConnId, TcpConfig, TcpEvent, TcpStack};
use cairn_net::wire::{ChecksumCapabilities, Ipv4Address, TcpFlags, TcpPacket, TcpRepr};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;
pub const ADDR_A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
pub const ADDR_B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

/// SplitMix64: small, seedable, good enough to decide drops.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `per_million` / 1e6.
    pub fn chance(&mut self, per_million: u32) -> bool {
        per_million > 0 && (self.next_u64() % 1_000_000) < u64::from(per_million)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// What the link does to segments (per direction, same for both).
#[derive(Debug, Clone, Default)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay_ns: u64,
    /// Loss probability, per million segments.
    pub loss_ppm: u32,
    /// Duplication probability, per million.
    pub dup_ppm: u32,
    /// Probability that a segment is held back by up to `reorder_extra_ns`, per million.
    pub reorder_ppm: u32,
    pub reorder_extra_ns: u64,
    /// Bottleneck rate in bytes per second (0: unlimited), with a drop-tail queue of
    /// `queue_bytes`.
    pub rate_bps: u64,
    pub queue_bytes: u64,
}

/// A direction on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    AtoB,
    BtoA,
}

/// One segment seen on the link (before loss).
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: u64,
    pub dir: Dir,
    pub repr: TcpRepr,
}

type Filter = Box<dyn FnMut(Dir, &TcpRepr, &[u8]) -> bool>;

pub struct Sim {
    pub now: u64,
    pub a: TcpStack,
    pub b: TcpStack,
    pub link: LinkConfig,
    pub rng: Rng,
    /// (deliver at, serial) -> (direction, bytes)
    in_flight: BTreeMap<(u64, u64), (Dir, Vec<u8>)>,
    serial: u64,
    link_free_at: [u64; 2],
    /// Every segment emitted, in order.
    pub log: Vec<Seen>,
    /// Keep the log (off for bulk transfers).
    pub logging: bool,
    /// Return false to drop a segment (applied before the random effects).
    pub filter: Option<Filter>,
    /// Stop delivering anything to this side (the peer vanished).
    pub blackhole: [bool; 2],
    pub dropped: u64,
    pub delivered: u64,
}

pub fn test_config() -> TcpConfig {
    TcpConfig { isn_secret: *b"0123456789abcdef", time_wait_ns: 2 * SEC, ..TcpConfig::default() }
}

impl Sim {
    pub fn new(cfg_a: TcpConfig, cfg_b: TcpConfig, link: LinkConfig, seed: u64) -> Self {
        Sim {
            now: 1_000 * MS,
            a: TcpStack::new(cfg_a),
            b: TcpStack::new(cfg_b),
            link,
            rng: Rng::new(seed),
            in_flight: BTreeMap::new(),
            serial: 0,
            link_free_at: [0; 2],
            log: Vec::new(),
            logging: true,
            filter: None,
            blackhole: [false; 2],
            dropped: 0,
            delivered: 0,
        }
    }

    pub fn pair() -> Self {
        Sim::new(test_config(), test_config(), LinkConfig { delay_ns: MS, ..Default::default() }, 1)
    }

    pub fn stack(&mut self, dir_from: Dir) -> &mut TcpStack {
        match dir_from {
            Dir::AtoB => &mut self.a,
            Dir::BtoA => &mut self.b,
        }
    }

    /// Collects what both stacks have to send and puts it on the link.
    pub fn flush(&mut self) {
        let now = self.now;
        let mut out: Vec<(Dir, Vec<u8>)> = Vec::new();
        self.a.dispatch(now, &mut |src, dst, chain, _| {
            assert_eq!((src, dst), (ADDR_A, ADDR_B));
            out.push((Dir::AtoB, gather(chain)));
        });
        self.b.dispatch(now, &mut |src, dst, chain, _| {
            assert_eq!((src, dst), (ADDR_B, ADDR_A));
            out.push((Dir::BtoA, gather(chain)));
        });
        for (dir, bytes) in out {
            self.transmit(dir, bytes);
        }
    }

    fn transmit(&mut self, dir: Dir, bytes: Vec<u8>) {
        let (src, dst) = match dir {
            Dir::AtoB => (ADDR_A, ADDR_B),
            Dir::BtoA => (ADDR_B, ADDR_A),
        };
        let packet = TcpPacket::new_checked(&bytes[..]).expect("emitted segment parses");
        assert!(packet.verify_checksum(src, dst), "emitted segment has a bad checksum");
        let repr = TcpRepr::parse(&packet, src, dst, &ChecksumCapabilities::default())
            .expect("emitted segment parses");
        if self.logging {
            self.log.push(Seen { at: self.now, dir, repr });
        }
        if let Some(filter) = self.filter.as_mut() {
            if !filter(dir, &repr, packet.payload()) {
                self.dropped += 1;
                return;
            }
        }
        if self.rng.chance(self.link.loss_ppm) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.link.dup_ppm) { 2 } else { 1 };
        let side = dir as usize;
        let mut depart = self.now;
        if self.link.rate_bps > 0 {
            let start = self.link_free_at[side].max(self.now);
            let backlog_bytes = (start - self.now) * self.link.rate_bps / SEC;
            if self.link.queue_bytes > 0 && backlog_bytes > self.link.queue_bytes {
                self.dropped += 1;
                return;
            }
            let tx = (bytes.len() as u64 + 40) * SEC / self.link.rate_bps;
            self.link_free_at[side] = start + tx;
            depart = start + tx;
        }
        for _ in 0..copies {
            let mut at = depart + self.link.delay_ns;
            if self.rng.chance(self.link.reorder_ppm) {
                at += 1 + self.rng.below(self.link.reorder_extra_ns);
            }
            self.serial += 1;
            self.in_flight.insert((at, self.serial), (dir, bytes.clone()));
        }
    }

    /// The next time something happens: a delivery or a timer.
    fn next_time(&self) -> Option<u64> {
        let packet = self.in_flight.keys().next().map(|&(t, _)| t);
        [packet, self.a.next_deadline(), self.b.next_deadline()].into_iter().flatten().min()
    }

    /// Advances to the next event (no further than `limit`), delivers and fires timers.
    /// Returns false if nothing is left to happen before `limit`.
    pub fn step(&mut self, limit: u64) -> bool {
        self.flush();
        let Some(t) = self.next_time() else { return false };
        if t > limit {
            self.now = self.now.max(limit);
            return false;
        }
        self.now = self.now.max(t);
        while let Some((&(at, serial), _)) = self.in_flight.iter().next() {
            if at > self.now {
                break;
            }
            let (dir, bytes) = self.in_flight.remove(&(at, serial)).expect("present");
            let (to, src, dst) = match dir {
                Dir::AtoB => (1, ADDR_A, ADDR_B),
                Dir::BtoA => (0, ADDR_B, ADDR_A),
            };
            if self.blackhole[to] {
                self.dropped += 1;
                continue;
            }
            self.delivered += 1;
            let buf = SharedIoBuf::from_vec(bytes);
            if to == 1 {
                self.b.input(self.now, src, dst, buf);
            } else {
                self.a.input(self.now, src, dst, buf);
            }
        }
        if self.a.next_deadline().is_some_and(|d| d <= self.now) {
            self.a.on_timer(self.now);
        }
        if self.b.next_deadline().is_some_and(|d| d <= self.now) {
            self.b.on_timer(self.now);
        }
        true
    }

    /// Runs until `done` says so (it is called after every step and may act as the
    /// applications), or until `duration` of virtual time passes. Returns `done`'s last answer.
    pub fn run_until(&mut self, duration: u64, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let limit = self.now + duration;
        for _ in 0..20_000_000u64 {
            self.flush();
            if done(self) {
                return true;
            }
            if !self.step(limit) {
                self.flush();
                return done(self);
            }
        }
        panic!("simulation did not settle");
    }

    /// Runs for `duration` of virtual time, whatever happens.
    pub fn run_for(&mut self, duration: u64) {
        self.run_until(duration, |_| false);
    }

    /// Sets up a connection from A (ephemeral port) to B's listener on `port`; returns
    /// (A's connection, B's connection).
    pub fn connect(&mut self, port: u16) -> (ConnId, ConnId) {
        let listener = self.b.listen(ADDR_B, port, 16).expect("listen");
        let ca = self.a.connect(self.now, ADDR_A, 0, ADDR_B, port).expect("connect");
        let mut cb = None;
        let ok = self.run_until(10 * SEC, |sim| {
            if cb.is_none() {
                cb = sim.b.accept(listener);
            }
            cb.is_some() && sim.a.state(ca) == Some(cairn_net::tcp::TcpState::Established)
        });
        assert!(ok, "handshake did not complete");
        drain_events(&mut self.a);
        drain_events(&mut self.b);
        (ca, cb.expect("accepted"))
    }

    /// The segments logged in one direction.
    pub fn seen(&self, dir: Dir) -> impl Iterator<Item = &Seen> {
        self.log.iter().filter(move |s| s.dir == dir)
    }
}

pub fn gather(chain: IoBufChain) -> Vec<u8> {
    let mut out = Vec::with_capacity(chain.len());
    for slice in chain.slices() {
        out.extend_from_slice(slice);
    }
    out
}

pub fn drain_events(stack: &mut TcpStack) -> Vec<TcpEvent> {
    std::iter::from_fn(|| stack.poll_event()).collect()
}

/// Reads everything available on `conn`.
pub fn read_all(stack: &mut TcpStack, conn: ConnId) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(buf) = stack.recv(conn) {
        out.extend_from_slice(&buf);
    }
    out
}

/// Builds the bytes of a segment from `src` to `dst` with a correct checksum.
pub fn craft(repr: &TcpRepr, payload: &[u8], src: Ipv4Address, dst: Ipv4Address) -> SharedIoBuf {
    let mut repr = *repr;
    repr.payload_len = payload.len();
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut bytes[..]),
        src,
        dst,
        &ChecksumCapabilities::default(),
        |p| p.copy_from_slice(payload),
    );
    SharedIoBuf::from_vec(bytes)
}

/// The byte at stream offset `i` of the test pattern.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (i as u8)
}

/// `len` bytes of the pattern from offset `from`.
pub fn pattern_buf(from: u64, len: usize) -> SharedIoBuf {
    SharedIoBuf::from_vec((0..len as u64).map(|i| pattern(from + i)).collect())
}

/// FNV-1a, to compare streams.
pub fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

pub const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Whether a segment has exactly these flags among SYN, ACK, FIN, RST.
pub fn flags_are(repr: &TcpRepr, flags: TcpFlags) -> bool {
    (repr.flags.0 & 0x17) == flags.0
}

/// The outcome of [`bulk`].
#[derive(Debug, Clone, Copy)]
pub struct BulkResult {
    pub received: u64,
    pub sender_hash: u64,
    pub receiver_hash: u64,
    pub elapsed_ns: u64,
}

/// Streams `total` pattern bytes from `tx_side`'s `tx` to the other side's `rx`, keeping at
/// most `window_ahead` bytes queued, checking every byte on arrival. Stops after `limit_ns`.
pub fn bulk(
    sim: &mut Sim,
    tx_side: Dir,
    tx: ConnId,
    rx: ConnId,
    total: u64,
    chunk: usize,
    limit_ns: u64,
) -> BulkResult {
    let start = sim.now;
    let window_ahead = 1 << 20;
    let (mut sent, mut received) = (0u64, 0u64);
    let (mut sender_hash, mut receiver_hash) = (FNV_INIT, FNV_INIT);
    sim.run_until(limit_ns, |sim| {
        let (txs, rxs) = match tx_side {
            Dir::AtoB => (&mut sim.a, &mut sim.b),
            Dir::BtoA => (&mut sim.b, &mut sim.a),
        };
        while sent < total && txs.send_queue_len(tx) < window_ahead {
            let len = chunk.min((total - sent) as usize);
            let buf = pattern_buf(sent, len);
            sender_hash = fnv(sender_hash, &buf);
            txs.send(tx, buf).expect("send");
            sent += len as u64;
        }
        while let Some(buf) = rxs.recv(rx) {
            for (i, &b) in buf.iter().enumerate() {
                assert_eq!(
                    b,
                    pattern(received + i as u64),
                    "corrupt byte at {}",
                    received + i as u64
                );
            }
            receiver_hash = fnv(receiver_hash, &buf);
            received += buf.len() as u64;
        }
        received >= total
    });
    BulkResult { received, sender_hash, receiver_hash, elapsed_ns: sim.now - start }
}
