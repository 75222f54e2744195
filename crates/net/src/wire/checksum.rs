//! The internet checksum (RFC 1071): the 16-bit ones' complement of the ones' complement sum of
//! the data taken as big-endian 16-bit words, plus the IPv4 pseudo-header that UDP (RFC 768) and
//! TCP (RFC 9293 §3.1) add to their sums.
//!
//! Because 2^16 ≡ 1 (mod 2^16 − 1), the ones' complement sum of 16-bit words equals the sum of
//! 32-bit words folded down to 16 bits (RFC 1071 §2 (B), "deferred carries"): [`sum`] adds
//! 32-bit words into a 64-bit accumulator and folds once at the end, which the compiler turns
//! into wide vector adds.
//!
//! A device that computes checksums itself says so with [`ChecksumCapabilities`], and the
//! protocol `Repr`s then skip the work in that direction.

use super::ipv4::Ipv4Address;

/// Folds a wide ones' complement accumulator down to 16 bits (end-around carries included).
pub const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The ones' complement sum of `data` as big-endian 16-bit words, folded to 16 bits but not
/// complemented. An odd final byte is padded with a zero byte, so when sums of several pieces are
/// [`combine`]d only the last piece may have odd length.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        acc += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// Adds partial sums (from [`sum`] or [`pseudo_header_v4`]) in ones' complement arithmetic.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The internet checksum of `data`: the complement of its [`sum`], ready to store in a header.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The sum of the IPv4 pseudo-header (source, destination, zero, protocol, length) that UDP and
/// TCP prepend to their checksums. `length` is the UDP length or the TCP segment length.
pub fn pseudo_header_v4(src: Ipv4Address, dst: Ipv4Address, protocol: u8, length: u32) -> u16 {
    let [s0, s1, s2, s3] = src.0;
    let [d0, d1, d2, d3] = dst.0;
    let acc = u64::from(u32::from_be_bytes([s0, s1, s2, s3]))
        + u64::from(u32::from_be_bytes([d0, d1, d2, d3]))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// Where a checksum is computed: by this stack in software, or by the device (offloaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Checksum {
    /// The stack verifies received checksums and fills transmitted ones.
    #[default]
    Software,
    /// The device verifies on receive (and drops bad frames); the stack still fills on transmit.
    OffloadRx,
    /// The device fills on transmit; the stack still verifies on receive.
    OffloadTx,
    /// The device does both: the stack neither verifies nor fills.
    Offloaded,
}

impl Checksum {
    /// Whether the stack must verify this checksum on received packets.
    pub const fn verify(self) -> bool {
        matches!(self, Checksum::Software | Checksum::OffloadTx)
    }

    /// Whether the stack must fill this checksum in transmitted packets.
    pub const fn fill(self) -> bool {
        matches!(self, Checksum::Software | Checksum::OffloadRx)
    }
}

/// Which checksums a device computes itself, per protocol. The default does everything in
/// software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChecksumCapabilities {
    /// The IPv4 header checksum.
    pub ipv4: Checksum,
    /// The ICMPv4 checksum.
    pub icmpv4: Checksum,
    /// The UDP checksum (over the IPv4 pseudo-header).
    pub udp: Checksum,
    /// The TCP checksum (over the IPv4 pseudo-header).
    pub tcp: Checksum,
}

impl ChecksumCapabilities {
    /// Every checksum computed in software (the default).
    pub const fn software() -> Self {
        ChecksumCapabilities {
            ipv4: Checksum::Software,
            icmpv4: Checksum::Software,
            udp: Checksum::Software,
            tcp: Checksum::Software,
        }
    }

    /// Every checksum offloaded to the device, in both directions (loopback, or a NIC that does
    /// it all).
    pub const fn offloaded() -> Self {
        ChecksumCapabilities {
            ipv4: Checksum::Offloaded,
            icmpv4: Checksum::Offloaded,
            udp: Checksum::Offloaded,
            tcp: Checksum::Offloaded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }

    /// The 16-bit-word definition, written the slow way, to compare against.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(word);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn odd_lengths_and_carries() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0xff; 7]), naive(&[0xff; 7]));
        assert_eq!(sum(&[0xff; 4096]), 0xffff);
    }

    #[test]
    fn combine_of_pieces_equals_whole() {
        let data: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        assert_eq!(combine(&[sum(&data[..6]), sum(&data[6..])]), sum(&data));
    }

    #[test]
    fn offload_modes() {
        assert!(Checksum::Software.verify() && Checksum::Software.fill());
        assert!(!Checksum::OffloadRx.verify() && Checksum::OffloadRx.fill());
        assert!(Checksum::OffloadTx.verify() && !Checksum::OffloadTx.fill());
        assert!(!Checksum::Offloaded.verify() && !Checksum::Offloaded.fill());
        assert_eq!(ChecksumCapabilities::default(), ChecksumCapabilities::software());
    }

    proptest::proptest! {
        #[test]
        fn wide_sum_matches_naive(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let (a, b) = (sum(&data), naive(&data));
            // 0x0000 and 0xffff are both ones' complement zero; the wide sum only returns 0 for
            // all-zero data, as does the naive one.
            proptest::prop_assert_eq!(a, b);
        }

        #[test]
        fn flipping_a_bit_breaks_the_checksum(
            data in proptest::collection::vec(proptest::num::u8::ANY, 2..200),
            bit in proptest::num::usize::ANY,
        ) {
            // Append the checksum so the whole sums to 0xffff, then flip one bit.
            let mut data = data;
            if data.len() % 2 == 1 { data.push(0); }
            let c = checksum(&data);
            data.extend_from_slice(&c.to_be_bytes());
            proptest::prop_assert_eq!(sum(&data), 0xffff);
            let bit = bit % (data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert_ne!(sum(&data), 0xffff);
        }
    }
}
