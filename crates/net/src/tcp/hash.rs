//! Keyed hashing for initial sequence numbers (RFC 6528) and the flow hash that picks the core a
//! connection lives on.
//!
//! RFC 6528 §3 generates ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where
//! M is a timer ticking every 4 microseconds and F a keyed pseudorandom function. F here is
//! SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), written out
//! below because it is thirty lines and the crate is `no_std` without dependencies.

use crate::wire::Ipv4Address;

/// SipHash-2-4 of `data` under the 128-bit `key`.
pub(crate) fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]]);
    let k1 =
        u64::from_le_bytes([key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15]]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let m = u64::from_le_bytes(bytes);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = words.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The 12 bytes of a 4-tuple, in the order given.
fn tuple_bytes(a: Ipv4Address, a_port: u16, b: Ipv4Address, b_port: u16) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&a.0);
    bytes[4..6].copy_from_slice(&a_port.to_be_bytes());
    bytes[6..10].copy_from_slice(&b.0);
    bytes[10..].copy_from_slice(&b_port.to_be_bytes());
    bytes
}

/// The initial sequence number for a connection (RFC 6528 §3): a 4-microsecond clock plus a
/// keyed hash of the 4-tuple, so numbers of one tuple keep increasing across incarnations while
/// an off-path attacker cannot guess them.
pub(crate) fn initial_sequence(
    secret: &[u8; 16],
    local: Ipv4Address,
    local_port: u16,
    remote: Ipv4Address,
    remote_port: u16,
    now_ns: u64,
) -> u32 {
    let m = (now_ns / 4_000) as u32;
    let f = siphash24(secret, &tuple_bytes(local, local_port, remote, remote_port)) as u32;
    m.wrapping_add(f)
}

/// A per-connection offset for the timestamp clock (RFC 7323 §7.1 recommends randomizing the
/// TSval start per connection so timestamps leak no host-wide clock).
pub(crate) fn timestamp_offset(
    secret: &[u8; 16],
    local: Ipv4Address,
    local_port: u16,
    remote: Ipv4Address,
    remote_port: u16,
) -> u32 {
    let mut key = *secret;
    key[0] ^= 0x5a;
    siphash24(&key, &tuple_bytes(local, local_port, remote, remote_port)) as u32
}

/// The hash that decides which core owns a TCP connection (issue 5, "a connection lives on the
/// core its flow hashes to"): the interface hashes each arriving segment's
/// `(src, src_port, dst, dst_port)` and steers it to core `flow_hash(..) % cores`. The hash is
/// not symmetric: it is defined on the tuple *as it arrives*, which for a connection this host
/// opened is `(remote, remote_port, local, local_port)`; [`TcpStack::connect`] picks ephemeral
/// ports so that its own connections hash back to the core that opened them.
///
/// It is SipHash-2-4 under a fixed key, so every core and the interface agree without sharing
/// state, and a peer cannot aim all its flows at one core without trying ports.
///
/// [`TcpStack::connect`]: super::TcpStack::connect
pub fn flow_hash(src: Ipv4Address, src_port: u16, dst: Ipv4Address, dst_port: u16) -> u32 {
    const KEY: [u8; 16] = *b"cairn-flow-hash!";
    siphash24(&KEY, &tuple_bytes(src, src_port, dst, dst_port)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the SipHash paper (appendix A): key 00..0f, message 00..0e.
    #[test]
    fn siphash_reference_vector() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
        assert_eq!(siphash24(&key, &msg), 0xa129_ca61_49be_45e5);
        // The paper's first vector, the empty message.
        assert_eq!(siphash24(&key, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn isn_moves_with_the_clock_and_depends_on_the_tuple() {
        let (a, b) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        let s = [7u8; 16];
        let i0 = initial_sequence(&s, a, 1000, b, 80, 0);
        let i1 = initial_sequence(&s, a, 1000, b, 80, 4_000_000);
        assert_eq!(i1.wrapping_sub(i0), 1000, "the 4 µs clock M");
        assert_ne!(initial_sequence(&s, a, 1001, b, 80, 0), i0);
        assert_ne!(initial_sequence(&[8u8; 16], a, 1000, b, 80, 0), i0);
    }

    #[test]
    fn flow_hash_is_directional_and_spreads() {
        let (a, b) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        assert_eq!(flow_hash(a, 1, b, 2), flow_hash(a, 1, b, 2));
        assert_ne!(flow_hash(a, 1, b, 2), flow_hash(b, 2, a, 1));
        let mut per_core = [0u32; 4];
        for port in 0..4000u16 {
            per_core[(flow_hash(a, port, b, 80) % 4) as usize] += 1;
        }
        assert!(per_core.iter().all(|&n| (800..1200).contains(&n)), "{per_core:?}");
    }
}
