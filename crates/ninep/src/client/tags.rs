//! The client's per-connection tables: tags of requests in flight and fid numbers.
//!
//! intro(5): every request carries a tag that no other outstanding request of the connection
//! uses, and the reply carries it back; a tag is free again once its reply has been received.
//! flush(5) adds the rule that a flushed request's tag stays reserved until the `Rflush`
//! arrives, because the original reply may still come first. [`TagTable`] keeps that state;
//! [`FidPool`] hands out fid numbers the same way (a fid is free again after `Rclunk` or
//! `Rremove`, or after a request that would have made it failed).

use alloc::vec::Vec;
use core::task::Waker;

use cairn_rt::iobuf::SharedIoBuf;

use crate::codec::{NOFID, NOTAG};
use crate::errno::Errno;

/// Where one request stands.
#[derive(Debug)]
pub(crate) enum SlotState {
    /// Sent; its future waits for the reply.
    Waiting,
    /// The reply arrived (or the connection failed) and waits to be taken.
    Done(Result<SharedIoBuf, Errno>),
    /// Nobody waits any more: the request was flushed, or detached. Its reply is discarded.
    Abandoned,
}

/// One request in flight.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) state: SlotState,
    pub(crate) waker: Option<Waker>,
    /// The fid this request makes (`Tattach`, `Twalk`, `Tlcreate` clone), released if the
    /// request is abandoned and never succeeded.
    pub(crate) newfid: Option<u32>,
    /// For a `Tflush`: the tag it flushes, freed when the `Rflush` arrives.
    pub(crate) flush_of: Option<u16>,
    /// For a detached request (a background `Tclunk`): free the tag at its reply, whatever it
    /// says, and release this fid.
    pub(crate) release_on_reply: Option<u32>,
}

impl Slot {
    pub(crate) fn new() -> Slot {
        Slot {
            state: SlotState::Waiting,
            waker: None,
            newfid: None,
            flush_of: None,
            release_on_reply: None,
        }
    }
}

/// The tags of one connection: `0 ..= 0xFFFE` (`NOTAG` is `Tversion`'s).
#[derive(Debug, Default)]
pub(crate) struct TagTable {
    slots: Vec<Option<Slot>>,
    free: Vec<u16>,
    in_flight: usize,
}

impl TagTable {
    /// Reserves a tag for `slot`, or `None` if all 65535 are in flight.
    pub(crate) fn insert(&mut self, slot: Slot) -> Option<u16> {
        let tag = match self.free.pop() {
            Some(tag) => tag,
            None if self.slots.len() < usize::from(NOTAG) => {
                self.slots.push(None);
                (self.slots.len() - 1) as u16
            }
            None => return None,
        };
        self.slots[usize::from(tag)] = Some(slot);
        self.in_flight += 1;
        Some(tag)
    }

    /// The request with `tag`, if one is in flight.
    pub(crate) fn get_mut(&mut self, tag: u16) -> Option<&mut Slot> {
        self.slots.get_mut(usize::from(tag))?.as_mut()
    }

    /// Frees `tag` and returns its slot.
    pub(crate) fn remove(&mut self, tag: u16) -> Option<Slot> {
        let slot = self.slots.get_mut(usize::from(tag))?.take()?;
        self.free.push(tag);
        self.in_flight -= 1;
        Some(slot)
    }

    /// Requests in flight (flushed ones included until their `Rflush`).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Ends every waiting request with `errno` (the connection failed) and returns the wakers
    /// to call; abandoned requests are freed.
    pub(crate) fn fail_all(&mut self, errno: Errno) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for tag in 0..self.slots.len() {
            let Some(slot) = self.slots[tag].as_mut() else { continue };
            match slot.state {
                SlotState::Waiting => {
                    slot.state = SlotState::Done(Err(errno));
                    wakers.extend(slot.waker.take());
                }
                SlotState::Abandoned => {
                    self.remove(tag as u16);
                }
                SlotState::Done(_) => {}
            }
        }
        wakers
    }
}

/// Fid numbers of one connection; never [`NOFID`].
#[derive(Debug, Default)]
pub(crate) struct FidPool {
    next: u32,
    free: Vec<u32>,
}

impl FidPool {
    /// A fid number no live fid uses, or `None` if all are taken.
    pub(crate) fn alloc(&mut self) -> Option<u32> {
        if let Some(fid) = self.free.pop() {
            return Some(fid);
        }
        if self.next == NOFID {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }

    /// Makes `fid` available again.
    pub(crate) fn release(&mut self, fid: u32) {
        self.free.push(fid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_reused_only_after_removal() {
        let mut table = TagTable::default();
        let a = table.insert(Slot::new()).unwrap();
        let b = table.insert(Slot::new()).unwrap();
        assert_ne!(a, b);
        assert_eq!(table.in_flight(), 2);
        assert!(table.remove(a).is_some());
        assert!(table.remove(a).is_none(), "a tag is freed once");
        assert_eq!(table.insert(Slot::new()), Some(a));
        assert_eq!(table.in_flight(), 2);
    }

    #[test]
    fn the_table_never_hands_out_notag() {
        let mut table = TagTable::default();
        for expected in 0..NOTAG {
            assert_eq!(table.insert(Slot::new()), Some(expected));
        }
        assert_eq!(table.insert(Slot::new()), None, "65535 tags in flight is the limit");
    }

    #[test]
    fn fail_all_ends_waiters_and_frees_abandoned_requests() {
        let mut table = TagTable::default();
        let waiting = table.insert(Slot::new()).unwrap();
        let mut abandoned = Slot::new();
        abandoned.state = SlotState::Abandoned;
        let gone = table.insert(abandoned).unwrap();
        let _ = table.fail_all(104);
        assert!(matches!(table.get_mut(waiting).unwrap().state, SlotState::Done(Err(104))));
        assert!(table.get_mut(gone).is_none());
    }

    #[test]
    fn fids_come_back_after_release() {
        let mut pool = FidPool::default();
        let (a, b) = (pool.alloc().unwrap(), pool.alloc().unwrap());
        assert_ne!(a, b);
        pool.release(a);
        assert_eq!(pool.alloc(), Some(a));
    }
}
