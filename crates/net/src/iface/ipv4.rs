//! IPv4 (RFC 791, host requirements of RFC 1122 §3): building outgoing headers in the headroom
//! in front of a payload chain, fragmenting datagrams larger than the MTU (RFC 791 §3.2), and
//! reassembling received fragments within limits (RFC 815's hole bookkeeping, simplified:
//! overlapping fragments drop the whole datagram, the choice RFC 5722 made for IPv6, which
//! defeats overlap attacks).
//!
//! Reassembly is bounded by [`ReassemblyConfig`]: at most `max_datagrams` in progress, at most
//! `max_fragments` pieces and `max_size` bytes each, and `timeout_ns` (30 s by default; RFC 1122
//! §3.3.2 suggests 60 to 120 s, RFC 791 15 s) to complete. Whatever breaks a limit is dropped
//! and counted. The pieces are views of the received frames until the last one arrives; the
//! datagram is then copied once into a contiguous buffer, since the layers above parse headers
//! from contiguous bytes.

use alloc::vec::Vec;

use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

use super::config::ReassemblyConfig;
use crate::wire::checksum;
use crate::wire::ipv4::HEADER_LEN;
use crate::wire::{ChecksumCapabilities, IpProtocol, Ipv4Address, Ipv4Packet};

/// Room left in front of a transport header for the IPv4 header (without options) and the
/// Ethernet header, so both are written into the same buffer without a new segment.
pub const HEADROOM: usize = crate::wire::ethernet::HEADER_LEN + HEADER_LEN;

/// The ones' complement sum (RFC 1071) of a whole chain, whatever its segment boundaries: a
/// piece that starts at an odd offset of the stream contributes its byte-swapped sum (RFC 1071
/// §2 (A), byte-order independence).
pub fn chain_sum(chain: &IoBufChain) -> u16 {
    let mut acc: u64 = 0;
    let mut odd = false;
    for slice in chain.slices() {
        let sum = checksum::sum(slice);
        acc += u64::from(if odd { sum.swap_bytes() } else { sum });
        odd ^= slice.len() % 2 == 1;
    }
    checksum::fold(acc)
}

/// Puts `len` bytes written by `write` in front of `chain`: into the headroom of its first
/// segment when that segment is the only buffer over its storage and has the room (no new
/// segment, nothing copied), otherwise into a new buffer with `lower_headroom` bytes of room in
/// front for the headers below.
pub fn prepend(
    chain: &mut IoBufChain,
    len: usize,
    lower_headroom: usize,
    write: impl FnOnce(&mut [u8]),
) {
    if let Some(front) = chain.pop_front() {
        match front.try_into_unique() {
            Ok(mut buf) if buf.headroom() >= len => {
                if buf.retreat(len).is_ok() {
                    write(&mut buf[..len]);
                    chain.push_front(buf.freeze());
                    return;
                }
                chain.push_front(buf.freeze());
            }
            Ok(buf) => chain.push_front(buf.freeze()),
            Err(shared) => chain.push_front(shared),
        }
    }
    let mut header = IoBuf::with_headroom(lower_headroom, len);
    if header.claim_tailroom(len).is_err() {
        unreachable!("a new buffer has the {len} bytes of tailroom it was made with");
    }
    write(&mut header[..]);
    chain.push_front(header.freeze());
}

/// The fields of an outgoing IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    /// The source address.
    pub src: Ipv4Address,
    /// The destination address.
    pub dst: Ipv4Address,
    /// The payload's protocol.
    pub protocol: IpProtocol,
    /// Time to Live.
    pub ttl: u8,
    /// Identification (RFC 6864: only meaningful for fragments).
    pub ident: u16,
}

/// Writes a 20-byte header for `payload_len` bytes of payload at `frag_offset`, with More
/// Fragments as given and Don't Fragment set on unfragmented datagrams (RFC 6864 §4.1).
fn write_header(
    bytes: &mut [u8],
    fields: &HeaderFields,
    payload_len: usize,
    frag_offset: usize,
    more_frags: bool,
    caps: &ChecksumCapabilities,
) {
    let mut packet = Ipv4Packet::new_unchecked(bytes);
    packet.set_version(4);
    packet.set_header_len(HEADER_LEN as u8);
    packet.set_dscp(0);
    packet.set_ecn(0);
    // The callers keep HEADER_LEN + payload_len within u16 (see `output`).
    packet.set_total_len((HEADER_LEN + payload_len) as u16);
    let fragmented = more_frags || frag_offset != 0;
    packet.set_ident(if fragmented { fields.ident } else { 0 });
    packet.clear_flags();
    packet.set_dont_frag(!fragmented);
    packet.set_more_frags(more_frags);
    packet.set_frag_offset(frag_offset as u16);
    packet.set_ttl(fields.ttl);
    packet.set_protocol(fields.protocol);
    packet.set_src_addr(fields.src);
    packet.set_dst_addr(fields.dst);
    if caps.ipv4.fill() {
        packet.fill_checksum();
    } else {
        packet.set_checksum(0);
    }
}

/// Why a datagram could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputError {
    /// The payload exceeds 65515 bytes, which Total Length cannot express.
    TooLarge,
}

/// Turns a payload into one datagram, or into fragments of at most `mtu` bytes each when it does
/// not fit (RFC 791 §3.2, "fragmentation"; every fragment but the last carries a multiple of 8
/// payload bytes). Each packet is handed to `emit`, headers included.
pub fn output(
    fields: &HeaderFields,
    mut payload: IoBufChain,
    mtu: usize,
    caps: &ChecksumCapabilities,
    mut emit: impl FnMut(IoBufChain),
) -> Result<(), OutputError> {
    let lower = crate::wire::ethernet::HEADER_LEN;
    if payload.len() > usize::from(u16::MAX) - HEADER_LEN {
        return Err(OutputError::TooLarge);
    }
    if HEADER_LEN + payload.len() <= mtu {
        let len = payload.len();
        prepend(&mut payload, HEADER_LEN, lower, |h| write_header(h, fields, len, 0, false, caps));
        emit(payload);
        return Ok(());
    }
    // At least 8 payload bytes per fragment, whatever the MTU says (RFC 791: every module
    // must pass 68-byte datagrams, so a smaller MTU is a misconfiguration).
    let per_fragment = (mtu.saturating_sub(HEADER_LEN) & !7).max(8);
    let mut offset = 0;
    while !payload.is_empty() {
        let take = per_fragment.min(payload.len());
        let mut piece = payload.split_to(take);
        let more = !payload.is_empty();
        prepend(&mut piece, HEADER_LEN, lower, |h| {
            write_header(h, fields, take, offset, more, caps)
        });
        emit(piece);
        offset += take;
    }
    Ok(())
}

/// What became of a received fragment.
#[derive(Debug)]
pub enum Reassembly {
    /// Kept; the datagram is not complete yet.
    Held,
    /// The fragment completed its datagram: the whole payload, and the first fragment's header
    /// rewritten to describe the whole datagram (for quoting in ICMP errors).
    Complete {
        /// The reassembled payload.
        payload: SharedIoBuf,
        /// An IPv4 header for the reassembled datagram (checksum not filled).
        header: [u8; HEADER_LEN],
    },
    /// Dropped because a limit was reached (counted as an overflow).
    Overflow,
    /// Dropped, with its datagram, because it overlapped another piece or was misaligned.
    Malformed,
    /// An exact duplicate of a piece already held; ignored.
    Duplicate,
}

/// Which datagram a fragment belongs to (RFC 791 §3.2: source, destination, protocol and
/// Identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragmentKey {
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: u8,
    ident: u16,
}

/// A datagram being reassembled.
#[derive(Debug)]
struct Partial {
    key: FragmentKey,
    deadline_ns: u64,
    /// Pieces sorted by offset, none overlapping.
    pieces: Vec<(usize, SharedIoBuf)>,
    /// Known once the last fragment (More Fragments clear) arrives.
    total_len: Option<usize>,
    received: usize,
    /// The first fragment's header, once it arrives.
    first_header: Option<[u8; HEADER_LEN]>,
}

/// Reassembles IPv4 fragments within [`ReassemblyConfig`]'s limits.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    partials: Vec<Partial>,
}

impl Reassembler {
    /// An empty reassembly buffer.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler { config, partials: Vec::new() }
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.partials.len()
    }

    /// Takes one fragment: `packet` is its checked header, `payload` its data (a view of the
    /// received frame).
    pub fn add(
        &mut self,
        now_ns: u64,
        packet: &Ipv4Packet<&[u8]>,
        payload: SharedIoBuf,
    ) -> Reassembly {
        let key = FragmentKey {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol().into(),
            ident: packet.ident(),
        };
        let offset = usize::from(packet.frag_offset());
        let len = payload.len();
        let more = packet.more_frags();
        if more && (len == 0 || len % 8 != 0) {
            self.remove(key);
            return Reassembly::Malformed;
        }
        if offset + len > self.config.max_size {
            self.remove(key);
            return Reassembly::Overflow;
        }
        let index = match self.partials.iter().position(|p| p.key == key) {
            Some(index) => index,
            None => {
                if self.partials.len() >= self.config.max_datagrams {
                    return Reassembly::Overflow;
                }
                self.partials.push(Partial {
                    key,
                    deadline_ns: now_ns.saturating_add(self.config.timeout_ns),
                    pieces: Vec::new(),
                    total_len: None,
                    received: 0,
                    first_header: None,
                });
                self.partials.len() - 1
            }
        };
        let partial = &mut self.partials[index];
        let end = offset + len;
        // Where the piece goes, and whether it is a duplicate or an overlap.
        let at = partial.pieces.partition_point(|(o, _)| *o < offset);
        if let Some((o, p)) = partial.pieces.get(at) {
            if *o == offset && p.len() == len && partial.total_len.is_none_or(|t| more || t == end)
            {
                return Reassembly::Duplicate;
            }
        }
        let overlaps_next = partial.pieces.get(at).is_some_and(|(o, _)| *o < end);
        let overlaps_prev = at > 0 && {
            let (o, p) = &partial.pieces[at - 1];
            o + p.len() > offset
        };
        let bad_last = match (more, partial.total_len) {
            (false, Some(total)) => total != end,
            (false, None) => partial.pieces.last().is_some_and(|(o, p)| o + p.len() > end),
            (true, Some(total)) => end > total,
            (true, None) => false,
        };
        if overlaps_next || overlaps_prev || bad_last {
            self.partials.swap_remove(index);
            return Reassembly::Malformed;
        }
        if partial.pieces.len() >= self.config.max_fragments {
            self.partials.swap_remove(index);
            return Reassembly::Overflow;
        }
        if !more {
            partial.total_len = Some(end);
        }
        if offset == 0 {
            let mut header = [0u8; HEADER_LEN];
            header.copy_from_slice(&packet.clone().into_inner()[..HEADER_LEN]);
            partial.first_header = Some(header);
        }
        partial.pieces.insert(at, (offset, payload));
        partial.received += len;
        let complete =
            partial.total_len == Some(partial.received) && partial.first_header.is_some();
        if !complete {
            return Reassembly::Held;
        }
        let partial = self.partials.swap_remove(index);
        let total = partial.received;
        let mut buf = IoBuf::with_headroom(0, total);
        let room = buf.tailroom_mut();
        for (offset, piece) in &partial.pieces {
            room[*offset..offset + piece.len()].copy_from_slice(piece);
        }
        if buf.claim_tailroom(total).is_err() {
            unreachable!("the buffer was made with {total} bytes of tailroom");
        }
        let mut header = partial.first_header.unwrap_or([0; HEADER_LEN]);
        let mut view = Ipv4Packet::new_unchecked(&mut header[..]);
        view.set_header_len(HEADER_LEN as u8);
        view.set_total_len((HEADER_LEN + total) as u16);
        view.clear_flags();
        Reassembly::Complete { payload: buf.freeze(), header }
    }

    /// Drops the datagram `key`, if it is in progress.
    fn remove(&mut self, key: FragmentKey) {
        self.partials.retain(|p| p.key != key);
    }

    /// Drops the datagrams whose time ran out and returns how many.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let before = self.partials.len();
        self.partials.retain(|p| p.deadline_ns > now_ns);
        before - self.partials.len()
    }

    /// When the next datagram in progress times out.
    pub fn next_deadline(&self) -> Option<u64> {
        self.partials.iter().map(|p| p.deadline_ns).min()
    }
}
