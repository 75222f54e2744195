//! TCP (RFC 9293): the segment header, its options and its checksum over the IPv4
//! pseudo-header.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |       |       |R|E|G|K|H|T|N|N|                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           [Options]                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Options: End of Option List and No-Operation (RFC 9293 §3.2), Maximum Segment Size
//! (RFC 9293 §3.7.1), Window Scale and Timestamps (RFC 7323), SACK-Permitted and SACK (RFC
//! 2018).
//! Options of other kinds are skipped by their length. An option whose length is too short,
//! wrong for its kind, or runs past the header is [`Error::Malformed`]; nothing panics.

use core::ops::{BitOr, BitOrAssign};

use super::checksum::{self, ChecksumCapabilities};
use super::ipv4::{IpProtocol, Ipv4Address};
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;

    pub const OPT_END: u8 = 0;
    pub const OPT_NOP: u8 = 1;
    pub const OPT_MSS: u8 = 2;
    pub const OPT_WS: u8 = 3;
    pub const OPT_SACK_PERM: u8 = 4;
    pub const OPT_SACK: u8 = 5;
    pub const OPT_TSTAMP: u8 = 8;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// The longest TCP header: a data offset of 15 words.
pub const MAX_HEADER_LEN: usize = 60;

/// The largest window scale shift (RFC 7323 §2.3); larger received values are taken as this.
pub const MAX_WINDOW_SCALE: u8 = 14;

/// The control bits of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flags.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// Whether every flag in `other` is set here.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags without those in `other`.
    pub const fn without(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;

    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// The two values of the Timestamps option (RFC 7323 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpTimestamps {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the TSval being echoed (meaningful when ACK is set).
    pub tsecr: u32,
}

/// The blocks of one SACK option (RFC 2018 §3): each the left edge and the right edge (the
/// sequence number just past the block) of data the receiver holds beyond its cumulative ACK.
/// An option holds at most four blocks; three fit beside the Timestamps option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    len: u8,
    blocks: [(u32, u32); SackBlocks::MAX],
}

impl SackBlocks {
    /// The most blocks one option carries (40 bytes of options: 2 + 4 · 8 = 34).
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks { len: 0, blocks: [(0, 0); SackBlocks::MAX] }
    }

    /// Appends a block; returns false, changing nothing, if four are already held.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        let Some(slot) = self.blocks.get_mut(usize::from(self.len)) else { return false };
        *slot = (left, right);
        self.len += 1;
        true
    }

    /// The blocks, in the order they were pushed or received.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }

    /// The number of blocks.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no blocks.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of Option List (kind 0): the options stop here.
    EndOfList,
    /// No-Operation (kind 1): padding between options.
    NoOperation,
    /// Maximum Segment Size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window Scale (kind 3, length 3): the shift count, as received.
    WindowScale(u8),
    /// SACK-Permitted (kind 4, length 2).
    SackPermitted,
    /// SACK (kind 5, length 2 + 8·n for n of 1 to 4 blocks).
    Sack(SackBlocks),
    /// Timestamps (kind 8, length 10).
    Timestamps(TcpTimestamps),
    /// Any other kind, with its data (the bytes after kind and length).
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option's data.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `bytes`, returning it and the bytes after it.
    /// [`Error::Truncated`] if `bytes` is empty; [`Error::Malformed`] if the length byte is
    /// missing, below 2, wrong for the kind, or runs past `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<(TcpOption<'a>, &'a [u8])> {
        let (&kind, rest) = bytes.split_first().ok_or(Error::Truncated)?;
        match kind {
            field::OPT_END => return Ok((TcpOption::EndOfList, rest)),
            field::OPT_NOP => return Ok((TcpOption::NoOperation, rest)),
            _ => {}
        }
        let (&len, _) = rest.split_first().ok_or(Error::Malformed)?;
        let len = usize::from(len);
        if len < 2 || len > bytes.len() {
            return Err(Error::Malformed);
        }
        let (option, rest) = bytes.split_at(len);
        let data = &option[2..];
        let parsed = match (kind, len) {
            (field::OPT_MSS, 4) => TcpOption::MaxSegmentSize(read_u16(data)),
            (field::OPT_WS, 3) => TcpOption::WindowScale(data[0]),
            (field::OPT_SACK_PERM, 2) => TcpOption::SackPermitted,
            (field::OPT_SACK, 10 | 18 | 26 | 34) => {
                let mut blocks = SackBlocks::new();
                for block in data.chunks_exact(8) {
                    blocks.push(read_u32(&block[..4]), read_u32(&block[4..]));
                }
                TcpOption::Sack(blocks)
            }
            (field::OPT_TSTAMP, 10) => TcpOption::Timestamps(TcpTimestamps {
                tsval: read_u32(&data[..4]),
                tsecr: read_u32(&data[4..]),
            }),
            (
                field::OPT_MSS
                | field::OPT_WS
                | field::OPT_SACK_PERM
                | field::OPT_SACK
                | field::OPT_TSTAMP,
                _,
            ) => return Err(Error::Malformed),
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Ok((parsed, rest))
    }

    /// The number of bytes this option takes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(blocks) => 2 + 8 * blocks.len(),
            TcpOption::Timestamps(_) => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buffer` and returns the bytes after it.
    ///
    /// # Panics
    ///
    /// If `buffer` is shorter than [`TcpOption::buffer_len`], or an unknown option's data is
    /// longer than 253 bytes.
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (out, rest) = buffer.split_at_mut(len);
        match *self {
            TcpOption::EndOfList => out[0] = field::OPT_END,
            TcpOption::NoOperation => out[0] = field::OPT_NOP,
            TcpOption::MaxSegmentSize(mss) => {
                out[..2].copy_from_slice(&[field::OPT_MSS, 4]);
                write_u16(&mut out[2..], mss);
            }
            TcpOption::WindowScale(shift) => out.copy_from_slice(&[field::OPT_WS, 3, shift]),
            TcpOption::SackPermitted => out.copy_from_slice(&[field::OPT_SACK_PERM, 2]),
            TcpOption::Sack(blocks) => {
                out[..2].copy_from_slice(&[field::OPT_SACK, len as u8]);
                for (chunk, &(left, right)) in out[2..].chunks_exact_mut(8).zip(blocks.as_slice()) {
                    write_u32(&mut chunk[..4], left);
                    write_u32(&mut chunk[4..], right);
                }
            }
            TcpOption::Timestamps(ts) => {
                out[..2].copy_from_slice(&[field::OPT_TSTAMP, 10]);
                write_u32(&mut out[2..6], ts.tsval);
                write_u32(&mut out[6..], ts.tsecr);
            }
            TcpOption::Unknown { kind, data } => {
                out[0] = kind;
                out[1] = u8::try_from(len).expect("TCP option data longer than 253 bytes");
                out[2..].copy_from_slice(data);
            }
        }
        rest
    }
}

/// An iterator over the options of a TCP header. It yields each option (NOPs included), stops
/// after End of Option List or the end of the header, and after yielding an error yields
/// nothing more.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    bytes: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// An iterator over the options in `bytes` (the header bytes after the fixed 20).
    pub const fn new(bytes: &'a [u8]) -> Self {
        TcpOptions { bytes }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        match TcpOption::parse(self.bytes) {
            Ok((TcpOption::EndOfList, _)) => {
                self.bytes = &[];
                Some(Ok(TcpOption::EndOfList))
            }
            Ok((option, rest)) => {
                self.bytes = rest;
                Some(Ok(option))
            }
            Err(e) => {
                self.bytes = &[];
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// A zero-copy view of a TCP segment in a byte buffer. The segment is the whole buffer (TCP has
/// no length field: it ends where the IPv4 payload ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// A view over `buffer` with no length check: for emitting into a buffer of
    /// [`TcpRepr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// A view over untrusted bytes: checks the lengths first (see [`TcpPacket::check_len`]),
    /// after which no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] if the buffer cannot hold the fixed header or the header the Data
    /// Offset declares; [`Error::Malformed`] if Data Offset is below 5.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if header_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// The acknowledgment number (meaningful when ACK is set).
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// The header length in bytes (Data Offset × 4), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The FIN flag.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// The SYN flag.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// The RST flag.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// The PSH flag.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// The ACK flag.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// The URG flag.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// The window, unscaled, as sent.
    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WINDOW])
    }

    /// The checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer (meaningful when URG is set).
    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option bytes, between the fixed header and the data.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// An iterator over the parsed options.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// The segment length in sequence space: data, plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    fn compute_sum(&self, src: Ipv4Address, dst: Ipv4Address) -> u16 {
        let bytes = self.buffer.as_ref();
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Tcp.into(), len);
        checksum::combine(&[pseudo, checksum::sum(bytes)])
    }

    /// Whether the checksum over the pseudo-header for `src`→`dst` and the whole segment is
    /// correct.
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        self.compute_sum(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(&mut self.buffer.as_mut()[field::ACK_NUM], value);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60); clears the reserved bits.
    pub fn set_header_len(&mut self, len: u8) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((len / 4) & 0x0f) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::WINDOW], value);
    }

    /// Sets the checksum field as given.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::URGENT], value);
    }

    /// The option bytes, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The data after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Computes the checksum over the pseudo-header for `src`→`dst` and the whole segment, and
    /// stores it.
    pub fn fill_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        self.set_checksum(0);
        let sum = !self.compute_sum(src, dst);
        self.set_checksum(sum);
    }
}

/// A parsed TCP segment header with the options this stack uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpRepr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The control bits.
    pub flags: TcpFlags,
    /// The sequence number.
    pub seq_number: u32,
    /// The acknowledgment number (meaningful when `flags` has ACK).
    pub ack_number: u32,
    /// The window, unscaled, as sent.
    pub window_len: u16,
    /// The urgent pointer (meaningful when `flags` has URG).
    pub urgent_at: u16,
    /// The Maximum Segment Size option, if present.
    pub max_seg_size: Option<u16>,
    /// The Window Scale option's shift, if present (received values above 14 read as 14).
    pub window_scale: Option<u8>,
    /// Whether the SACK-Permitted option is present.
    pub sack_permitted: bool,
    /// The SACK option's blocks (empty if absent). When emitting, only as many blocks as fit
    /// beside the other options in 40 bytes are written.
    pub sack_blocks: SackBlocks,
    /// The Timestamps option, if present.
    pub timestamps: Option<TcpTimestamps>,
    /// The data length in bytes.
    pub payload_len: usize,
}

impl TcpRepr {
    /// Parses a checked segment that travelled from `src` to `dst`: [`Error::Checksum`] if the
    /// checksum is wrong (unless `caps` says the device verified it), [`Error::Malformed`] if an
    /// option is. Unknown options are skipped; of repeated ones the last wins.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        caps: &ChecksumCapabilities,
    ) -> Result<TcpRepr> {
        packet.check_len()?;
        if caps.tcp.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            flags: packet.flags(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            payload_len: packet.payload().len(),
            ..TcpRepr::default()
        };
        for option in packet.options_iter() {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => {
                    repr.window_scale = Some(shift.min(MAX_WINDOW_SCALE))
                }
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::Sack(blocks) => repr.sack_blocks = blocks,
                TcpOption::Timestamps(ts) => repr.timestamps = Some(ts),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// The options this repr emits, in order (absent ones as `None`). SACK comes last, with
    /// as many blocks as still fit in the 40 bytes of option space.
    fn options(&self) -> [Option<TcpOption<'static>>; 5] {
        let mut options = [
            self.max_seg_size.map(TcpOption::MaxSegmentSize),
            self.sack_permitted.then_some(TcpOption::SackPermitted),
            self.timestamps.map(TcpOption::Timestamps),
            self.window_scale.map(TcpOption::WindowScale),
            None,
        ];
        if !self.sack_blocks.is_empty() {
            let used: usize = options.iter().flatten().map(TcpOption::buffer_len).sum();
            let room = (MAX_HEADER_LEN - HEADER_LEN).saturating_sub(used + 2) / 8;
            let mut blocks = self.sack_blocks;
            blocks.truncate(room);
            if !blocks.is_empty() {
                options[4] = Some(TcpOption::Sack(blocks));
            }
        }
        options
    }

    /// The length of the header this emits: 20 bytes plus the options, padded to a word.
    pub fn header_len(&self) -> usize {
        let options: usize = self.options().iter().flatten().map(TcpOption::buffer_len).sum();
        HEADER_LEN + options.next_multiple_of(4)
    }

    /// The length of the whole segment: header and data.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header and options (padded with End of Option List) into `packet`, calls
    /// `emit_payload` on the data bytes (pass `|_| {}` when they are already in place), then
    /// fills the checksum for `src`→`dst` unless `caps` says the device does (it is then left
    /// zero). The segment is the whole buffer: size it with [`TcpRepr::buffer_len`].
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`TcpRepr::header_len`].
    pub fn emit<T, F>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        caps: &ChecksumCapabilities,
        emit_payload: F,
    ) where
        T: AsRef<[u8]> + AsMut<[u8]>,
        F: FnOnce(&mut [u8]),
    {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        // At most 40 bytes of options, so the header is at most 60 bytes.
        packet.set_header_len(self.header_len() as u8);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_at);
        let mut out = packet.options_mut();
        for option in self.options().iter().flatten() {
            out = option.emit(out);
        }
        out.fill(field::OPT_END);
        emit_payload(packet.payload_mut());
        if caps.tcp.fill() {
            packet.fill_checksum(src, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// A Linux-style SYN from 10.0.0.1:40000 to 10.0.0.2:80: seq 0x01020304, window 64240,
    /// options MSS 1460, SACK-Permitted, Timestamps (0x11223344, 0), NOP, Window Scale 7.
    /// Checksum 0x5410 computed independently.
    const SYN: [u8; 40] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x54, 0x10, 0x00, 0x00, // fixed header
        0x02, 0x04, 0x05, 0xb4, // MSS
        0x04, 0x02, // SACK-Permitted
        0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, // Timestamps
        0x01, // NOP
        0x03, 0x03, 0x07, // Window Scale
    ];

    fn syn_repr() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            flags: TcpFlags::SYN,
            seq_number: 0x0102_0304,
            ack_number: 0,
            window_len: 64240,
            urgent_at: 0,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_blocks: SackBlocks::new(),
            timestamps: Some(TcpTimestamps { tsval: 0x1122_3344, tsecr: 0 }),
            payload_len: 0,
        }
    }

    /// A Linux-style ACK with NOP, NOP, Timestamps, NOP, NOP and a one-block SACK option
    /// (0x0a0b1000..0x0a0b2000); checksum 0x1e95 computed independently.
    const SACK_ACK: [u8; 44] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0xb0, 0x10, 0x01,
        0xf5, 0x1e, 0x95, 0x00, 0x00, // fixed header
        0x01, 0x01, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // NOPs, TS
        0x01, 0x01, 0x05, 0x0a, 0x0a, 0x0b, 0x10, 0x00, 0x0a, 0x0b, 0x20, 0x00, // NOPs, SACK
    ];

    #[test]
    fn parses_sack_blocks_and_emits_them_within_40_bytes() {
        let packet = TcpPacket::new_checked(&SACK_ACK[..]).unwrap();
        assert!(packet.verify_checksum(SRC, DST));
        let repr = TcpRepr::parse(&packet, SRC, DST, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr.sack_blocks.as_slice(), [(0x0a0b_1000, 0x0a0b_2000)]);
        assert_eq!(repr.timestamps.map(|t| t.tsecr), Some(0x5566_7788));

        // Four blocks and timestamps: only three fit, and they round-trip.
        let mut four = repr;
        for i in 1..4u32 {
            assert!(four.sack_blocks.push(i * 100, i * 100 + 50));
        }
        assert!(!four.sack_blocks.push(1, 2), "an option holds four blocks");
        assert_eq!(four.header_len(), 20 + 10 + 26);
        let mut bytes = alloc::vec![0u8; four.buffer_len()];
        let mut out = TcpPacket::new_unchecked(&mut bytes[..]);
        four.emit(&mut out, SRC, DST, &ChecksumCapabilities::default(), |_| {});
        let back = TcpRepr::parse(
            &TcpPacket::new_checked(&bytes[..]).unwrap(),
            SRC,
            DST,
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        assert_eq!(back.sack_blocks.as_slice(), &four.sack_blocks.as_slice()[..3]);

        // A SACK option whose length is not 2 + 8·n is malformed.
        for len in [2u8, 9, 11, 42] {
            let mut opt = alloc::vec![5u8, len];
            opt.resize(usize::from(len.max(2)), 0);
            assert_eq!(TcpOption::parse(&opt).map(|_| ()), Err(Error::Malformed), "{len}");
        }
    }

    #[test]
    fn parses_a_real_syn() {
        let packet = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (40000, 80));
        assert_eq!(packet.header_len(), 40);
        assert!(packet.syn() && !packet.ack() && !packet.fin() && !packet.rst());
        assert!(!packet.psh() && !packet.urg());
        assert_eq!(packet.segment_len(), 1);
        assert_eq!(packet.checksum(), 0x5410);
        assert!(packet.verify_checksum(SRC, DST));
        let options: alloc::vec::Vec<_> = packet.options_iter().collect();
        assert_eq!(
            options,
            [
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps(TcpTimestamps { tsval: 0x1122_3344, tsecr: 0 })),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
        let repr = TcpRepr::parse(&packet, SRC, DST, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr, syn_repr());
    }

    #[test]
    fn emit_then_parse() {
        let caps = ChecksumCapabilities::default();
        let mut repr = syn_repr();
        repr.flags = TcpFlags::SYN | TcpFlags::ACK;
        repr.ack_number = 99;
        repr.payload_len = 5;
        let mut out = [0u8; 45];
        assert_eq!(repr.buffer_len(), 45);
        let mut packet = TcpPacket::new_unchecked(&mut out[..]);
        repr.emit(&mut packet, SRC, DST, &caps, |p| p.copy_from_slice(b"hello"));
        let packet = TcpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(packet.payload(), b"hello");
        assert_eq!(TcpRepr::parse(&packet, SRC, DST, &caps), Ok(repr));
        assert!(
            TcpRepr::parse(&packet, DST, SRC, &ChecksumCapabilities::default()).is_ok(),
            "swapping source and destination leaves the pseudo-header sum unchanged"
        );
        assert_eq!(
            TcpRepr::parse(&packet, SRC, Ipv4Address::new(10, 0, 0, 3), &caps),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn bare_header_has_no_options() {
        let repr = TcpRepr { src_port: 1, dst_port: 2, flags: TcpFlags::RST, ..TcpRepr::default() };
        assert_eq!(repr.header_len(), 20);
        let mut out = [0u8; 20];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut out[..]),
            SRC,
            DST,
            &Default::default(),
            |_| {},
        );
        let packet = TcpPacket::new_checked(&out[..]).unwrap();
        assert!(packet.rst() && packet.options().is_empty());
        assert_eq!(TcpRepr::parse(&packet, SRC, DST, &Default::default()), Ok(repr));
    }

    #[test]
    fn data_offset_checks() {
        assert_eq!(TcpPacket::new_checked(&SYN[..19]), Err(Error::Truncated));
        assert_eq!(TcpPacket::new_checked(&SYN[..39]), Err(Error::Truncated));
        let mut bytes = SYN;
        bytes[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&bytes[..]), Err(Error::Malformed));
    }

    #[test]
    fn option_syntax() {
        // Unknown kind 30 with 2 bytes of data is skipped by its length.
        let (opt, rest) = TcpOption::parse(&[30, 4, 0xaa, 0xbb, 1]).unwrap();
        assert_eq!(opt, TcpOption::Unknown { kind: 30, data: &[0xaa, 0xbb] });
        assert_eq!(rest, &[1]);
        // Lengths: missing, too short, past the end, wrong for the kind.
        assert_eq!(TcpOption::parse(&[2]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[30, 1]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[30, 0]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[2, 4, 5]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[2, 3, 5]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[8, 9, 0, 0, 0, 0, 0, 0, 0]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
        // End of list stops iteration even if bytes follow.
        let opts: alloc::vec::Vec<_> = TcpOptions::new(&[1, 0, 2, 4, 5, 0xb4]).collect();
        assert_eq!(opts, [Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]);
        // An error ends iteration.
        let opts: alloc::vec::Vec<_> = TcpOptions::new(&[3, 7, 1, 1]).collect();
        assert_eq!(opts, [Err(Error::Malformed)]);
        // Unknown options round-trip through emit.
        let mut out = [0u8; 4];
        let rest = TcpOption::Unknown { kind: 30, data: &[0xaa, 0xbb] }.emit(&mut out);
        assert!(rest.is_empty());
        assert_eq!(out, [30, 4, 0xaa, 0xbb]);
    }

    #[test]
    fn malformed_option_fails_the_repr_and_large_shift_is_clamped() {
        let caps = ChecksumCapabilities::offloaded();
        let mut bytes = SYN;
        bytes[37] = 0x03;
        bytes[38] = 0x09; // Window Scale length 9 runs past the header
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(TcpRepr::parse(&packet, SRC, DST, &caps), Err(Error::Malformed));
        let mut bytes = SYN;
        bytes[39] = 20;
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(TcpRepr::parse(&packet, SRC, DST, &caps).unwrap().window_scale, Some(14));
    }
}
