//! Cutting a byte stream into whole 9P messages.
//!
//! Every 9P message starts with `size[4]`, the length of the whole message (intro(5)); a stream
//! transport (TCP, a Unix socket) carries messages back to back and splits them wherever the
//! kernel likes. The [`Framer`] collects received buffers and hands out one message at a time:
//! a slice of the receive buffer, without a copy, when the message lies within one buffer, and
//! a copy (counted by the IOBuf copy meter) only when it spans two or more.

use cairn_9p::codec::HEADER_LEN;
use cairn_9p::transport::TransportError;
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

/// Received bytes not yet handed out as messages, and the largest message accepted.
#[derive(Debug)]
pub struct Framer {
    pending: IoBufChain<SharedIoBuf>,
    msize: u32,
}

impl Framer {
    /// A framer that accepts messages of up to `msize` bytes.
    pub fn new(msize: u32) -> Framer {
        Framer { pending: IoBufChain::new(), msize }
    }

    /// The largest message accepted now.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// Sets the largest message accepted (after version negotiation).
    pub fn set_msize(&mut self, msize: u32) {
        self.msize = msize;
    }

    /// Bytes received but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Adds bytes received from the stream.
    pub fn push(&mut self, buf: SharedIoBuf) {
        if !buf.is_empty() {
            self.pending.push_back(buf);
        }
    }

    /// The next whole message, `Ok(None)` if more bytes are needed, or
    /// [`TransportError::BadSize`] when a size field is below the 7-byte header or above
    /// `msize` (the stream cannot be resynchronised after that).
    pub fn next_message(&mut self) -> Result<Option<SharedIoBuf>, TransportError> {
        let mut size_field = [0u8; 4];
        if self.pending.cursor().peek_array::<4>().map(|a| size_field = a).is_err() {
            return Ok(None);
        }
        let size = u32::from_le_bytes(size_field);
        if (size as usize) < HEADER_LEN || size > self.msize {
            return Err(TransportError::BadSize(size));
        }
        if self.pending.len() < size as usize {
            return Ok(None);
        }
        // One segment: a slice of it. Several: `into_contiguous` copies (and counts) them.
        let message = self.pending.split_to(size as usize);
        Ok(Some(message.into_contiguous()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_rt::iobuf::IoBuf;

    fn message(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len()) as u32;
        let mut m = size.to_le_bytes().to_vec();
        m.push(ty);
        m.extend_from_slice(&tag.to_le_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn coalesced_messages_come_out_one_by_one_as_slices_of_the_buffer() {
        let mut wire = message(100, 1, b"abc");
        wire.extend(message(120, 2, &[7; 4]));
        let buf = SharedIoBuf::from(IoBuf::from_vec(wire.clone()));
        let base = buf.as_ptr();
        let mut framer = Framer::new(8192);
        framer.push(buf);
        let first = framer.next_message().unwrap().unwrap();
        let second = framer.next_message().unwrap().unwrap();
        assert_eq!(&first[..], &wire[..10]);
        assert_eq!(&second[..], &wire[10..]);
        assert_eq!(first.as_ptr(), base, "the first message is a slice, not a copy");
        assert_eq!(second.as_ptr(), base.wrapping_add(10));
        assert_eq!(framer.next_message(), Ok(None));
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn a_message_split_byte_by_byte_arrives_whole() {
        let wire = message(117, 9, b"split across many receives");
        let mut framer = Framer::new(8192);
        for (i, byte) in wire.iter().enumerate() {
            assert_eq!(framer.next_message(), Ok(None), "nothing before byte {i}");
            framer.push(SharedIoBuf::copy_from_slice(&[*byte]));
        }
        let got = framer.next_message().unwrap().unwrap();
        assert_eq!(&got[..], &wire[..]);
    }

    #[test]
    fn a_split_size_field_waits_for_its_fourth_byte() {
        let wire = message(100, 3, b"x");
        let mut framer = Framer::new(8192);
        framer.push(SharedIoBuf::copy_from_slice(&wire[..3]));
        assert_eq!(framer.next_message(), Ok(None));
        framer.push(SharedIoBuf::copy_from_slice(&wire[3..]));
        assert_eq!(&framer.next_message().unwrap().unwrap()[..], &wire[..]);
    }

    #[test]
    fn sizes_below_the_header_or_above_msize_are_refused() {
        for size in [0u32, 6, 257] {
            let mut framer = Framer::new(256);
            let mut wire = size.to_le_bytes().to_vec();
            wire.extend_from_slice(&[0; 16]);
            framer.push(SharedIoBuf::copy_from_slice(&wire));
            assert_eq!(framer.next_message(), Err(TransportError::BadSize(size)), "size {size}");
        }
        let mut framer = Framer::new(256);
        framer.push(SharedIoBuf::copy_from_slice(&message(100, 0, &[0; 249])));
        assert!(framer.next_message().unwrap().is_some(), "exactly msize is allowed");
    }

    #[test]
    fn lowering_msize_applies_to_the_next_message() {
        let mut framer = Framer::new(1000);
        framer.set_msize(100);
        assert_eq!(framer.msize(), 100);
        framer.push(SharedIoBuf::copy_from_slice(&message(100, 0, &[0; 200])));
        assert_eq!(framer.next_message(), Err(TransportError::BadSize(207)));
    }
}
