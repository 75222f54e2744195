//! The conversations of one protocol directory (`net/tcp` or `net/udp`).
//!
//! Plan 9's devip numbers a protocol's conversations from 0 and hands out a new one on each
//! open of `clone` (ip(3)). Here numbers are never reused, so a stale qid can never name a
//! newer conversation. The table holds conversations weakly: a conversation lives as long as
//! some fid names it (any of its files, or its directory), and when the last such fid is
//! clunked it is hung up and its directory disappears, as Plan 9 closes a conversation when
//! its last open file is closed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use cairn_9p::errno::{Errno, EMFILE};

use super::conn::Conn;
use super::Proto;

/// The live conversations of one protocol.
pub(crate) struct ConnTable {
    proto: Proto,
    conns: RefCell<BTreeMap<u32, Weak<Conn>>>,
    next: Cell<u32>,
}

impl ConnTable {
    /// An empty table for `proto`.
    pub(crate) fn new(proto: Proto) -> Rc<ConnTable> {
        Rc::new(ConnTable { proto, conns: RefCell::new(BTreeMap::new()), next: Cell::new(0) })
    }

    /// A new conversation with the next number (an open of `clone`).
    pub(crate) fn create(self: &Rc<Self>) -> Result<Rc<Conn>, Errno> {
        let number = self.next.get();
        self.next.set(number.checked_add(1).ok_or(EMFILE)?);
        let conn = Rc::new(Conn::new(self.proto, number, Rc::downgrade(self)));
        self.conns.borrow_mut().insert(number, Rc::downgrade(&conn));
        Ok(conn)
    }

    /// Conversation `number`, if it is alive.
    pub(crate) fn get(&self, number: u32) -> Option<Rc<Conn>> {
        self.conns.borrow().get(&number).and_then(Weak::upgrade)
    }

    /// The live conversations with numbers above `after` (all with `None`), in order.
    pub(crate) fn list_after(&self, after: Option<u32>) -> Vec<Rc<Conn>> {
        let conns = self.conns.borrow();
        let range = match after {
            Some(u32::MAX) => return Vec::new(),
            Some(n) => conns.range(n + 1..),
            None => conns.range(..),
        };
        range.filter_map(|(_, w)| w.upgrade()).collect()
    }

    /// Drops conversation `number` from the table (its last fid is gone).
    pub(crate) fn forget(&self, number: u32) {
        // A conversation is dropped by a fid's drop, never while the table is borrowed; if that
        // ever changed, the dead entry would merely linger (lookups skip it) until the next drop.
        if let Ok(mut conns) = self.conns.try_borrow_mut() {
            conns.remove(&number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_up_and_dead_conversations_vanish() {
        let table = ConnTable::new(Proto::Tcp);
        let a = table.create().unwrap();
        let b = table.create().unwrap();
        let c = table.create().unwrap();
        assert_eq!((a.number(), b.number(), c.number()), (0, 1, 2));
        drop(b);
        assert!(table.get(1).is_none());
        let numbers: Vec<u32> = table.list_after(None).iter().map(|c| c.number()).collect();
        assert_eq!(numbers, [0, 2]);
        let after: Vec<u32> = table.list_after(Some(0)).iter().map(|c| c.number()).collect();
        assert_eq!(after, [2]);
        assert_eq!(table.create().unwrap().number(), 3, "numbers are not reused");
        assert_eq!(table.conns.borrow().len(), 2, "only a and c remain (the new one was dropped)");
    }
}
