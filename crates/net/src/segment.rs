//! TCP segmentation done in software: what a device with TCP segmentation offload does to a
//! TCP/IPv4 frame longer than the MTU that [`Device::transmit_segmented`] handed it.
//!
//! The frame is cut into pieces of `segment_size` payload octets, each with a copy of the
//! Ethernet, IPv4 and TCP headers in which the IPv4 Total Length and Identification (one more
//! per piece), the TCP sequence number and the checksums are made right for that piece. FIN
//! and PSH stay only on the last piece and CWR only on the first, as Linux's GSO and NICs do
//! (Linux `tcp_gso_segment`; Intel 82599 datasheet §7.2.4). The in-memory pair uses this to
//! act as such a device, so the stack's offloaded sends are tested against an implementation
//! that does not trust the partial checksum it was given.
//!
//! [`Device::transmit_segmented`]: crate::device::Device::transmit_segmented

use alloc::vec::Vec;

use cairn_rt::iobuf::IoBufChain;

use crate::wire::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;
use crate::wire::ipv4::HEADER_LEN as IPV4_HEADER_LEN;
use crate::wire::tcp::HEADER_LEN as TCP_HEADER_LEN;
use crate::wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket};

/// Why a frame could not be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentError {
    /// Not an unfragmented TCP/IPv4 frame with whole headers.
    NotTcp,
    /// A segment size of zero.
    ZeroSegmentSize,
}

/// Where the headers of an unfragmented TCP/IPv4 frame lie: what a device that finishes
/// checksums or cuts segments needs to know of a frame (virtio-net's `csum_start` and
/// `hdr_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFrameLayout {
    /// Octets of IPv4 header.
    pub ip_header: usize,
    /// Offset of the TCP header from the frame's start.
    pub tcp_start: usize,
    /// Ethernet, IPv4 and TCP headers together.
    pub len: usize,
    /// One past the payload's last octet (IPv4 Total Length; the link may pad beyond it).
    pub end: usize,
}

/// Offset of the checksum field within the TCP header (RFC 9293 §3.1).
pub const TCP_CHECKSUM_OFFSET: usize = 16;

/// Why [`TcpFrameLayout::read`] found no layout.
enum Unparsed {
    /// The bytes say the frame is not an unfragmented TCP/IPv4 one.
    NotTcp,
    /// The bytes end before they can say.
    Short,
}

impl TcpFrameLayout {
    /// The layout of `frame` (the frame's start, at least through its headers), if it is an
    /// unfragmented TCP/IPv4 frame with whole headers.
    pub fn parse(frame: &[u8]) -> Result<TcpFrameLayout, SegmentError> {
        TcpFrameLayout::read(frame).map_err(|_| SegmentError::NotTcp)
    }

    /// The layout of the frame `chain` holds, read from its first buffer, where a stack puts
    /// the headers; the chain is gathered only when its first buffer ends before they do.
    pub fn of_chain(chain: &IoBufChain) -> Option<TcpFrameLayout> {
        let first = chain.front().map_or(&[][..], |b| &b[..]);
        match TcpFrameLayout::read(first) {
            Ok(layout) => Some(layout),
            Err(Unparsed::Short) if first.len() < chain.len() => {
                TcpFrameLayout::read(&chain.to_vec()).ok()
            }
            Err(_) => None,
        }
    }

    fn read(frame: &[u8]) -> Result<TcpFrameLayout, Unparsed> {
        // Only the headers need be there, so each length is checked here rather than by
        // the wire views' `new_checked`, which want the whole packet.
        if frame.len() < ETHERNET_HEADER_LEN + IPV4_HEADER_LEN {
            return Err(Unparsed::Short);
        }
        if EthernetFrame::new_unchecked(frame).ethertype() != EtherType::Ipv4 {
            return Err(Unparsed::NotTcp);
        }
        let ip = Ipv4Packet::new_unchecked(&frame[ETHERNET_HEADER_LEN..]);
        let ip_header = usize::from(ip.header_len());
        if ip.version() != 4
            || ip_header < IPV4_HEADER_LEN
            || ip.protocol() != IpProtocol::Tcp
            || ip.more_frags()
            || ip.frag_offset() != 0
        {
            return Err(Unparsed::NotTcp);
        }
        let tcp_start = ETHERNET_HEADER_LEN + ip_header;
        if frame.len() < tcp_start + TCP_HEADER_LEN {
            return Err(Unparsed::Short);
        }
        let tcp_header = usize::from(TcpPacket::new_unchecked(&frame[tcp_start..]).header_len());
        let len = tcp_start + tcp_header;
        let end = ETHERNET_HEADER_LEN + usize::from(ip.total_len());
        if tcp_header < TCP_HEADER_LEN || end < len {
            return Err(Unparsed::NotTcp);
        }
        if frame.len() < len {
            return Err(Unparsed::Short);
        }
        Ok(TcpFrameLayout { ip_header, tcp_start, len, end })
    }
}

/// Cuts `frame` (Ethernet, IPv4, TCP, payload) into frames of at most `segment_size` payload
/// octets each, with full checksums, and hands each to `emit` in order. A frame whose payload
/// fits one segment comes out once, its checksums filled.
pub fn segment_tcp(
    frame: &[u8],
    segment_size: u16,
    mut emit: impl FnMut(Vec<u8>),
) -> Result<(), SegmentError> {
    if segment_size == 0 {
        return Err(SegmentError::ZeroSegmentSize);
    }
    let TcpFrameLayout { ip_header, len: headers, end, .. } = TcpFrameLayout::parse(frame)?;
    if end > frame.len() {
        return Err(SegmentError::NotTcp);
    }
    let ip = Ipv4Packet::new_unchecked(&frame[ETHERNET_HEADER_LEN..]);
    let (src, dst, ident) = (ip.src_addr(), ip.dst_addr(), ip.ident());
    let tcp = TcpPacket::new_unchecked(&frame[ETHERNET_HEADER_LEN + ip_header..]);
    let (seq, flags) = (tcp.seq_number(), tcp.flags());
    let payload = &frame[headers..end];
    let size = usize::from(segment_size);
    let pieces = payload.len().div_ceil(size).max(1);
    for index in 0..pieces {
        let start = index * size;
        let stop = (start + size).min(payload.len());
        let last = index + 1 == pieces;
        let mut out = Vec::with_capacity(headers + stop - start);
        out.extend_from_slice(&frame[..headers]);
        out.extend_from_slice(&payload[start..stop]);
        let ip_len = out.len() - ETHERNET_HEADER_LEN;
        let mut piece_flags = flags;
        if !last {
            piece_flags = piece_flags.without(TcpFlags::FIN | TcpFlags::PSH);
        }
        if index > 0 {
            piece_flags = piece_flags.without(TcpFlags::CWR);
        }
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut out[ETHERNET_HEADER_LEN..]);
            ip.set_total_len(ip_len as u16);
            ip.set_ident(ident.wrapping_add(index as u16));
            ip.fill_checksum();
        }
        let mut tcp = TcpPacket::new_unchecked(&mut out[ETHERNET_HEADER_LEN + ip_header..]);
        tcp.set_seq_number(seq.wrapping_add(start as u32));
        tcp.set_flags(piece_flags);
        tcp.fill_checksum(src, dst);
        emit(out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Address;
    use alloc::vec;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// An Ethernet/IPv4/TCP frame with a Timestamps option (32-octet TCP header), `payload`
    /// octets of pattern, and the checksum field holding garbage, as a device may get it.
    fn frame(payload: usize, flags: TcpFlags) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32 + payload];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = (20 + 32 + payload) as u16;
        f[14..34].copy_from_slice(&[
            0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        let tcp = &mut f[34..66];
        tcp[..4].copy_from_slice(&[0xc0, 0x00, 0x14, 0x51]);
        tcp[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = flags.0;
        tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
        tcp[16..18].copy_from_slice(&[0xde, 0xad]);
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6]);
        for (i, byte) in f[66..].iter_mut().enumerate() {
            *byte = (i * 7 % 251) as u8;
        }
        f
    }

    fn cut(frame: &[u8], size: u16) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        segment_tcp(frame, size, |p| pieces.push(p)).expect("segmentable");
        pieces
    }

    #[test]
    fn pieces_carry_advancing_sequence_numbers_and_valid_checksums() {
        let whole = frame(3000, TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR);
        let pieces = cut(&whole, 1448);
        assert_eq!(pieces.len(), 3);
        let mut payload = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&piece[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ident(), 0x1234 + i as u16);
            assert_eq!(usize::from(ip.total_len()), piece.len() - 14);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(SRC, DST), "piece {i}");
            assert_eq!(tcp.seq_number(), 0xffff_f000u32.wrapping_add(1448 * i as u32));
            let last = i == 2;
            assert_eq!(tcp.flags().contains(TcpFlags::FIN), last);
            assert_eq!(tcp.flags().contains(TcpFlags::PSH), last);
            assert_eq!(tcp.flags().contains(TcpFlags::CWR), i == 0);
            assert!(tcp.flags().contains(TcpFlags::ACK));
            assert_eq!(&piece[34 + 20..34 + 32], &whole[34 + 20..34 + 32], "options copied");
            payload.extend_from_slice(tcp.payload());
        }
        assert_eq!(pieces[0].len() - 66, 1448);
        assert_eq!(pieces[2].len() - 66, 3000 - 2 * 1448);
        assert_eq!(payload, whole[66..]);
    }

    #[test]
    fn a_frame_that_fits_comes_out_once_with_its_checksum_finished() {
        let pieces = cut(&frame(100, TcpFlags::ACK), 1448);
        assert_eq!(pieces.len(), 1);
        let tcp = TcpPacket::new_checked(&pieces[0][34..]).unwrap();
        assert!(tcp.verify_checksum(SRC, DST));
        let bare = cut(&frame(0, TcpFlags::ACK | TcpFlags::FIN), 1448);
        assert_eq!(bare.len(), 1, "a segment with no payload still goes");
    }

    #[test]
    fn other_frames_are_refused() {
        let mut udp = frame(10, TcpFlags::ACK);
        udp[14 + 9] = 17;
        assert_eq!(segment_tcp(&udp, 1448, |_| {}), Err(SegmentError::NotTcp));
        let mut fragment = frame(10, TcpFlags::ACK);
        fragment[14 + 6] |= 0x20;
        assert_eq!(segment_tcp(&fragment, 1448, |_| {}), Err(SegmentError::NotTcp));
        let whole = frame(10, TcpFlags::ACK);
        assert_eq!(segment_tcp(&whole[..60], 1448, |_| {}), Err(SegmentError::NotTcp));
        assert_eq!(segment_tcp(&whole, 0, |_| {}), Err(SegmentError::ZeroSegmentSize));
        let layout = TcpFrameLayout::parse(&whole[..66]).expect("headers alone are enough");
        assert_eq!((layout.tcp_start, layout.len, layout.end), (34, 66, 76));
    }

    proptest::proptest! {
        #[test]
        fn pieces_put_back_together_are_the_payload(len in 0usize..9000, size in 1u16..3000) {
            let whole = frame(len, TcpFlags::ACK | TcpFlags::PSH);
            let pieces = cut(&whole, size);
            proptest::prop_assert_eq!(pieces.len(), len.div_ceil(usize::from(size)).max(1));
            let mut payload = Vec::new();
            for piece in &pieces {
                let tcp = TcpPacket::new_checked(&piece[34..]).unwrap();
                proptest::prop_assert!(tcp.verify_checksum(SRC, DST));
                proptest::prop_assert!(tcp.payload().len() <= usize::from(size));
                proptest::prop_assert_eq!(
                    tcp.seq_number(),
                    0xffff_f000u32.wrapping_add(payload.len() as u32)
                );
                payload.extend_from_slice(tcp.payload());
            }
            proptest::prop_assert_eq!(&payload[..], &whole[66..]);
        }
    }
}
