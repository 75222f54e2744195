//! The send queue: data the application handed over that the peer has not yet acknowledged,
//! both the part in flight and the part beyond the peer's window (issue 5: "sends beyond the
//! peer's window queue until it opens").
//!
//! The queue holds the application's own [`SharedIoBuf`]s, never a copy. A segment is cut out
//! of it by cloning the buffers it spans and trimming the clones ([`SendBuffer::slice`]), so an
//! MSS-sized segment of a large chain shares its bytes with the queue (EbbRT, OSDI 2016 §3.4:
//! the stack sends the application's buffers by reference), and the same bytes can be cut again
//! for a retransmission. Buffers leave the queue as they are acknowledged.

use alloc::collections::VecDeque;

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

/// Data offsets are counted in bytes from the first data octet of the connection.
#[derive(Debug, Default)]
pub(crate) struct SendBuffer {
    /// Each buffer with the stream offset of its first byte; contiguous and in order.
    bufs: VecDeque<(u64, SharedIoBuf)>,
    /// The offset of the first unacknowledged byte.
    start: u64,
    /// The offset just past the last byte queued.
    end: u64,
}

impl SendBuffer {
    /// Bytes queued and not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// The offset just past the last byte queued: the total bytes ever queued.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Appends the application's buffers, without copying.
    pub(crate) fn push(&mut self, chain: IoBufChain) {
        for buf in chain {
            if !buf.is_empty() {
                let len = buf.len() as u64;
                self.bufs.push_back((self.end, buf));
                self.end += len;
            }
        }
    }

    /// Drops every byte before `offset` (acknowledged); offsets beyond the end are clamped.
    pub(crate) fn ack_to(&mut self, offset: u64) {
        let offset = offset.min(self.end);
        while let Some((first, buf)) = self.bufs.front_mut() {
            let buf_end = *first + buf.len() as u64;
            if buf_end <= offset {
                self.bufs.pop_front();
            } else {
                if offset > *first {
                    buf.advance((offset - *first) as usize);
                    *first = offset;
                }
                break;
            }
        }
        self.start = self.start.max(offset);
    }

    /// Drops everything (the connection was reset).
    pub(crate) fn clear(&mut self) {
        self.bufs.clear();
        self.start = self.end;
    }

    /// The bytes `[offset, offset + len)` as a chain of clones of the queued buffers, trimmed;
    /// shorter if the queue ends first, empty if `offset` is outside it.
    pub(crate) fn slice(&self, offset: u64, len: usize) -> IoBufChain {
        let mut out = IoBufChain::new();
        if offset < self.start || offset >= self.end || len == 0 {
            return out;
        }
        let mut index =
            self.bufs.partition_point(|(first, buf)| first + buf.len() as u64 <= offset);
        let mut left = len;
        let mut at = offset;
        while left > 0 {
            let Some((first, buf)) = self.bufs.get(index) else { break };
            let skip = (at - first) as usize;
            let take = (buf.len() - skip).min(left);
            let mut piece = buf.clone();
            piece.advance(skip);
            piece.truncate(take);
            out.push_back(piece);
            left -= take;
            at += take as u64;
            index += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(bytes: &[u8]) -> SharedIoBuf {
        SharedIoBuf::copy_from_slice(bytes)
    }

    #[test]
    fn slices_across_buffers_and_acks() {
        let mut q = SendBuffer::default();
        q.push(IoBufChain::from(buf(b"hello ")));
        let mut chain = IoBufChain::new();
        chain.push_back(buf(b"wide "));
        chain.push_back(buf(b""));
        chain.push_back(buf(b"world"));
        q.push(chain);
        assert_eq!((q.len(), q.end()), (16, 16));
        assert_eq!(q.slice(4, 5).to_vec(), b"o wid");
        assert_eq!(q.slice(10, 100).to_vec(), b" world");
        assert!(q.slice(16, 1).is_empty());
        q.ack_to(8);
        assert_eq!(q.len(), 8);
        assert!(q.slice(4, 2).is_empty(), "acknowledged bytes are gone");
        assert_eq!(q.slice(8, 3).to_vec(), b"de ");
        q.ack_to(100);
        assert_eq!(q.len(), 0);
        q.push(IoBufChain::from(buf(b"more")));
        assert_eq!(q.slice(16, 4).to_vec(), b"more");
    }

    #[test]
    fn slicing_shares_the_bytes() {
        let mut q = SendBuffer::default();
        let data = SharedIoBuf::from_vec(alloc::vec![7u8; 5000]);
        let ptr = data.as_ptr();
        q.push(IoBufChain::from(data));
        let seg = q.slice(1460, 1460);
        assert_eq!(seg.len(), 1460);
        assert_eq!(seg.front().map(|b| b.as_ptr()), Some(ptr.wrapping_add(1460)));
    }
}
