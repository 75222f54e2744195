//! Segments that belong to no connection's output: RSTs in answer to segments for closed ports
//! or with unacceptable ACKs (RFC 9293 §3.10.7.1-3), and the rate limit on challenge ACKs
//! (RFC 5961 §7). They wait in a bounded queue for the next `dispatch`.

use alloc::collections::VecDeque;

use crate::wire::{Ipv4Address, TcpFlags, TcpRepr};

/// One segment to emit outside any connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControlSegment {
    pub(crate) src: Ipv4Address,
    pub(crate) dst: Ipv4Address,
    pub(crate) repr: TcpRepr,
}

/// The bounded queue of control segments.
#[derive(Debug, Default)]
pub(crate) struct ControlQueue {
    queue: VecDeque<ControlSegment>,
    limit: usize,
}

impl ControlQueue {
    pub(crate) fn new(limit: usize) -> Self {
        ControlQueue { queue: VecDeque::new(), limit }
    }

    /// Queues a RST from `src:src_port` to `dst:dst_port` with sequence number `seq` and, when
    /// `ack` is given, the ACK bit and that acknowledgment number. Returns false (nothing
    /// queued) when the queue is full.
    pub(crate) fn push_rst(
        &mut self,
        src: (Ipv4Address, u16),
        dst: (Ipv4Address, u16),
        seq: u32,
        ack: Option<u32>,
    ) -> bool {
        if self.queue.len() >= self.limit {
            return false;
        }
        let mut flags = TcpFlags::RST;
        if ack.is_some() {
            flags |= TcpFlags::ACK;
        }
        let repr = TcpRepr {
            src_port: src.1,
            dst_port: dst.1,
            flags,
            seq_number: seq,
            ack_number: ack.unwrap_or(0),
            ..TcpRepr::default()
        };
        self.queue.push_back(ControlSegment { src: src.0, dst: dst.0, repr });
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn pop(&mut self) -> Option<ControlSegment> {
        self.queue.pop_front()
    }
}

/// The answer to a segment that reached no connection and no listener (RFC 9293 §3.10.7.1):
/// nothing to a RST; `<SEQ=SEG.ACK><CTL=RST>` to a segment with ACK; otherwise
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. Returns `(seq, ack)` for
/// [`ControlQueue::push_rst`].
pub(crate) fn reset_reply(seg: &TcpRepr) -> Option<(u32, Option<u32>)> {
    if seg.flags.contains(TcpFlags::RST) {
        return None;
    }
    if seg.flags.contains(TcpFlags::ACK) {
        return Some((seg.ack_number, None));
    }
    let len = seg.payload_len as u32
        + u32::from(seg.flags.contains(TcpFlags::SYN))
        + u32::from(seg.flags.contains(TcpFlags::FIN));
    Some((0, Some(seg.seq_number.wrapping_add(len))))
}

/// The challenge-ACK budget of RFC 5961 §7: at most `limit` per second across the stack.
#[derive(Debug, Default)]
pub(crate) struct ChallengeLimiter {
    second: u64,
    sent: u32,
}

impl ChallengeLimiter {
    /// Whether one more challenge ACK may go out at `now_ns`, counting it if so.
    pub(crate) fn allow(&mut self, now_ns: u64, limit: u32) -> bool {
        let second = now_ns / 1_000_000_000;
        if second != self.second {
            self.second = second;
            self.sent = 0;
        }
        if self.sent >= limit {
            return false;
        }
        self.sent += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_replies_follow_rfc9293_3_10_7_1() {
        let mut seg = TcpRepr { seq_number: 100, payload_len: 10, ..TcpRepr::default() };
        seg.flags = TcpFlags::SYN;
        assert_eq!(reset_reply(&seg), Some((0, Some(111))));
        seg.flags = TcpFlags::ACK | TcpFlags::FIN;
        seg.ack_number = 555;
        assert_eq!(reset_reply(&seg), Some((555, None)));
        seg.flags = TcpFlags::RST;
        assert_eq!(reset_reply(&seg), None);
    }

    #[test]
    fn challenge_limit_per_second() {
        let mut l = ChallengeLimiter::default();
        assert!(l.allow(0, 2) && l.allow(1, 2));
        assert!(!l.allow(2, 2));
        assert!(l.allow(1_000_000_000, 2));
    }

    #[test]
    fn control_queue_is_bounded() {
        let mut q = ControlQueue::new(1);
        let a = (Ipv4Address::new(1, 2, 3, 4), 5);
        assert!(q.push_rst(a, a, 1, None));
        assert!(!q.push_rst(a, a, 1, None));
        assert!(q.pop().is_some_and(|s| s.repr.flags == TcpFlags::RST));
    }
}
