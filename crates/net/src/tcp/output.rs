//! Turning a segment's header repr and payload chain into the bytes `dispatch` hands out: a
//! fresh header buffer (with headroom for the interface's IPv4 and Ethernet headers) followed by
//! the payload's own buffers, and the checksum over the pseudo-header, header and payload
//! computed across the chain without gathering it (RFC 9293 §3.1, RFC 1071).

use cairn_rt::iobuf::{IoBuf, IoBufChain};

use crate::wire::checksum::{self, Checksum, ChecksumCapabilities};
use crate::wire::{IpProtocol, Ipv4Address, TcpPacket, TcpRepr};

/// The ones' complement sum of a chain of byte slices that follow `start_odd` bytes of parity:
/// a slice that starts at an odd offset contributes its own sum byte-swapped (RFC 1071 §2 (B):
/// the sum is byte-order independent up to a swap).
pub(crate) fn chain_sum<'a>(slices: impl IntoIterator<Item = &'a [u8]>, start_odd: bool) -> u64 {
    let mut acc = 0u64;
    let mut odd = start_odd;
    for slice in slices {
        let sum = checksum::sum(slice);
        acc += u64::from(if odd { sum.swap_bytes() } else { sum });
        if slice.len() % 2 == 1 {
            odd = !odd;
        }
    }
    acc
}

/// Serializes one segment from `src` to `dst`: the header is emitted into a new buffer with
/// `headroom` bytes in front; the checksum is filled unless `offload`, which leaves the sum
/// of the pseudo-header for the device to finish.
pub(crate) fn serialize(
    repr: &TcpRepr,
    payload: IoBufChain,
    src: Ipv4Address,
    dst: Ipv4Address,
    headroom: usize,
    offload: bool,
) -> IoBufChain {
    let mut repr = *repr;
    repr.payload_len = payload.len();
    let header_len = repr.header_len();
    let mut header = IoBuf::with_headroom(headroom, header_len);
    header.tailroom_mut()[..header_len].fill(0);
    if header.claim_tailroom(header_len).is_err() {
        unreachable!("the buffer was created with room for the header");
    }
    let caps = ChecksumCapabilities { tcp: Checksum::Offloaded, ..ChecksumCapabilities::default() };
    let mut packet = TcpPacket::new_unchecked(&mut header[..]);
    repr.emit(&mut packet, src, dst, &caps, |_| {});
    let total = (header_len + payload.len()) as u32;
    let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Tcp.into(), total);
    let sum = if offload {
        // What the device adds the segment to (Linux's `CHECKSUM_PARTIAL` convention): the
        // folded, not complemented, pseudo-header sum over the whole TCP length.
        checksum::fold(u64::from(pseudo))
    } else {
        let acc = u64::from(pseudo)
            + u64::from(checksum::sum(packet.into_inner()))
            + chain_sum(payload.slices(), header_len % 2 == 1);
        !checksum::fold(acc)
    };
    TcpPacket::new_unchecked(&mut header[..]).set_checksum(sum);
    // The header goes in front of the payload's own chain, which usually has room for it.
    let mut chain = payload;
    chain.push_front(header.freeze());
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, TcpTimestamps};
    use cairn_rt::iobuf::SharedIoBuf;

    #[test]
    fn checksum_over_odd_pieces_matches_the_contiguous_one() {
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        let repr = TcpRepr {
            src_port: 1234,
            dst_port: 80,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            seq_number: 0xdead_beef,
            ack_number: 42,
            window_len: 1000,
            timestamps: Some(TcpTimestamps { tsval: 5, tsecr: 6 }),
            ..TcpRepr::default()
        };
        let mut payload = IoBufChain::new();
        for piece in [&b"a"[..], b"bcd", b"", b"efghi", b"j"] {
            payload.push_back(SharedIoBuf::copy_from_slice(piece));
        }
        let chain = serialize(&repr, payload, src, dst, 34, false);
        assert_eq!(chain.front().map(|h| h.headroom()), Some(34));
        let bytes = chain.to_vec();
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(src, dst));
        assert_eq!(packet.payload(), b"abcdefghij");
        let parsed = TcpRepr::parse(&packet, src, dst, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(parsed, TcpRepr { payload_len: 10, ..repr });
    }

    #[test]
    fn an_offloaded_checksum_is_finished_by_summing_the_segment_into_the_field() {
        let (src, dst) = (Ipv4Address::new(192, 168, 7, 1), Ipv4Address::new(10, 9, 8, 7));
        let repr = TcpRepr {
            src_port: 49152,
            dst_port: 5201,
            flags: TcpFlags::ACK,
            seq_number: 7,
            ack_number: 9,
            window_len: 512,
            ..TcpRepr::default()
        };
        let payload = IoBufChain::from(SharedIoBuf::copy_from_slice(&[0x5a; 3001]));
        let mut bytes = serialize(&repr, payload, src, dst, 0, true).to_vec();
        let partial = TcpPacket::new_checked(&bytes[..]).unwrap().checksum();
        assert_eq!(partial, checksum::pseudo_header_v4(src, dst, 6, bytes.len() as u32));
        assert!(!TcpPacket::new_checked(&bytes[..]).unwrap().verify_checksum(src, dst));
        // What a device does with `CHECKSUM_PARTIAL`: sum from the TCP header on, field
        // included, and store the complement.
        let finished = !checksum::sum(&bytes);
        TcpPacket::new_unchecked(&mut bytes[..]).set_checksum(finished);
        assert!(TcpPacket::new_checked(&bytes[..]).unwrap().verify_checksum(src, dst));
    }
}
