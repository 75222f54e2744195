//! The receive side's buffers: data in order, waiting for the application, and segments that
//! arrived out of order, waiting for the gap before them to fill (RFC 9293 §3.10.7.4, "seventh,
//! process the segment text"; RFC 5681 §4.2 asks for an immediate ACK in both the out-of-order
//! and the gap-filling case, which the connection does).
//!
//! Received payloads stay in the [`SharedIoBuf`]s the interface handed in (a view of the
//! received frame), so the application reads the bytes where the device put them. Overlapping
//! retransmissions are trimmed against what is already held; the out-of-order queue is bounded
//! in segments, and a segment that does not fit is dropped and counted by the caller.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use cairn_rt::iobuf::SharedIoBuf;

/// In-order data for the application and the out-of-order queue of one connection. Positions
/// are receive-side sequence positions (see [`super::seq`]).
#[derive(Debug, Default)]
pub(crate) struct RecvBuffer {
    ready: VecDeque<SharedIoBuf>,
    ready_bytes: usize,
    /// Disjoint, sorted by start position.
    ooo: Vec<(i64, SharedIoBuf)>,
    /// The position of a FIN that arrived after a gap.
    pub(crate) ooo_fin: Option<i64>,
    /// Where the most recent out-of-order segment started: its block is reported first
    /// (RFC 2018 §4).
    last_ooo: Option<i64>,
}

impl RecvBuffer {
    /// Bytes in order and not yet read by the application.
    pub(crate) fn ready_bytes(&self) -> usize {
        self.ready_bytes
    }

    /// Number of out-of-order segments held.
    pub(crate) fn ooo_segments(&self) -> usize {
        self.ooo.len()
    }

    /// Appends in-order data.
    pub(crate) fn push_ready(&mut self, buf: SharedIoBuf) {
        if !buf.is_empty() {
            self.ready_bytes += buf.len();
            self.ready.push_back(buf);
        }
    }

    /// Takes the oldest in-order buffer.
    pub(crate) fn pop(&mut self) -> Option<SharedIoBuf> {
        let buf = self.ready.pop_front()?;
        self.ready_bytes -= buf.len();
        Some(buf)
    }

    /// Drops everything held (the connection was reset or the application went away).
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.ready_bytes = 0;
        self.ooo.clear();
        self.ooo_fin = None;
        self.last_ooo = None;
    }

    /// The SACK blocks to report (RFC 2018 §4), at most four: the out-of-order data held,
    /// merged where pieces touch, the block with the most recently received segment first and
    /// then the others from the highest down. Returns the blocks and how many are valid.
    pub(crate) fn sack_ranges(&self) -> ([(i64, i64); 4], usize) {
        let mut out = [(0, 0); 4];
        let mut n = 0;
        let recent = self
            .last_ooo
            .and_then(|pos| self.blocks_from_top().find(|&(s, e)| s <= pos && pos < e));
        if let Some(block) = recent {
            out[0] = block;
            n = 1;
        }
        for block in self.blocks_from_top() {
            if n == out.len() {
                break;
            }
            if Some(block) != recent {
                out[n] = block;
                n += 1;
            }
        }
        (out, n)
    }

    /// The out-of-order data as `[start, end)` blocks, pieces that touch merged, from the
    /// highest down; computed as it is walked, with no allocation.
    fn blocks_from_top(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let mut pieces = self.ooo.iter().rev().map(|(s, b)| (*s, s + b.len() as i64)).peekable();
        core::iter::from_fn(move || {
            let (mut start, end) = pieces.next()?;
            while let Some((s, _)) = pieces.next_if(|&(_, e)| e >= start) {
                start = s;
            }
            Some((start, end))
        })
    }

    /// Queues data that starts at `start`, beyond the next expected position; the parts already
    /// held are trimmed off. Returns false, keeping nothing, if the queue already holds
    /// `max_segments` pieces and this would add one.
    pub(crate) fn insert_out_of_order(
        &mut self,
        mut start: i64,
        mut buf: SharedIoBuf,
        max_segments: usize,
    ) -> bool {
        self.last_ooo = Some(start);
        let mut index = self.ooo.partition_point(|(s, b)| s + b.len() as i64 <= start);
        while !buf.is_empty() {
            let Some((s, b)) = self.ooo.get(index) else {
                if self.ooo.len() >= max_segments {
                    return false;
                }
                self.ooo.push((start, buf));
                return true;
            };
            let (s, e) = (*s, *s + b.len() as i64);
            if start < s {
                if self.ooo.len() >= max_segments {
                    return false;
                }
                let take = ((s - start) as usize).min(buf.len());
                let piece = buf.split_to(take);
                self.ooo.insert(index, (start, piece));
                start += take as i64;
                index += 2;
            } else {
                let skip = ((e - start) as usize).min(buf.len());
                buf.advance(skip);
                start += skip as i64;
                index += 1;
            }
        }
        true
    }

    /// Moves queued data that now continues the in-order stream at `*next` to the ready queue,
    /// advancing `*next`; returns how many bytes moved.
    pub(crate) fn drain_in_order(&mut self, next: &mut i64) -> usize {
        let mut moved = 0;
        let mut taken = 0;
        for (start, buf) in self.ooo.iter_mut() {
            if *start > *next {
                break;
            }
            taken += 1;
            let end = *start + buf.len() as i64;
            if end <= *next {
                continue;
            }
            let mut piece = core::mem::take(buf);
            piece.advance((*next - *start) as usize);
            *next = end;
            moved += piece.len();
            self.ready_bytes += piece.len();
            self.ready.push_back(piece);
        }
        self.ooo.drain(..taken);
        if self.ooo.is_empty() {
            self.last_ooo = None;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(bytes: &[u8]) -> SharedIoBuf {
        SharedIoBuf::copy_from_slice(bytes)
    }

    fn read_all(r: &mut RecvBuffer) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = r.pop() {
            out.extend_from_slice(&b);
        }
        out
    }

    #[test]
    fn reassembles_overlapping_pieces() {
        let mut r = RecvBuffer::default();
        let mut next = 1i64;
        assert!(r.insert_out_of_order(6, buf(b"fgh"), 8));
        assert!(r.insert_out_of_order(4, buf(b"defghij"), 8));
        assert!(r.insert_out_of_order(12, buf(b"lm"), 8));
        assert_eq!(r.ooo_segments(), 4);
        // 4..11 (merged from two pieces) and 12..14; the newest segment (12) first.
        assert_eq!(r.sack_ranges(), ([(12, 14), (4, 11), (0, 0), (0, 0)], 2));
        assert!(r.insert_out_of_order(5, buf(b"e"), 8));
        assert_eq!(r.sack_ranges().0[..2], [(4, 11), (12, 14)]);
        assert_eq!(r.drain_in_order(&mut next), 0);
        r.push_ready(buf(b"abc"));
        next = 4;
        assert_eq!(r.drain_in_order(&mut next), 7);
        assert_eq!(next, 11);
        assert_eq!(r.ooo_segments(), 1);
        r.push_ready(buf(b"k"));
        next = 12;
        r.drain_in_order(&mut next);
        assert_eq!(next, 14);
        assert_eq!(read_all(&mut r), b"abcdefghijklm");
        assert_eq!(r.ready_bytes(), 0);
    }

    #[test]
    fn bounded_in_segments() {
        let mut r = RecvBuffer::default();
        assert!(r.insert_out_of_order(10, buf(b"a"), 2));
        assert!(r.insert_out_of_order(20, buf(b"b"), 2));
        assert!(!r.insert_out_of_order(30, buf(b"c"), 2));
        assert!(!r.insert_out_of_order(5, buf(b"c"), 2));
        assert!(r.insert_out_of_order(10, buf(b"a"), 2), "a duplicate adds nothing");
        assert_eq!(r.ooo_segments(), 2);
        // Old data behind `next` is skipped when draining.
        let mut next = 15;
        assert_eq!(r.drain_in_order(&mut next), 0);
        assert_eq!(r.ooo_segments(), 1);
    }
}
