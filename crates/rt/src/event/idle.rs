//! Idle handlers: EbbRT's recurring events, run in step 3 of every turn.
//!
//! A device in polling mode installs one; while any is installed the core polls instead of
//! blocking. Handlers can be added and removed at any time, also from inside a handler.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Names an installed idle handler, for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdleHandlerId(u64);

struct IdleEntry {
    id: IdleHandlerId,
    handler: Option<Box<dyn FnMut()>>,
    removed: bool,
}

/// One core's idle handlers.
#[derive(Default)]
pub(crate) struct IdleHandlers {
    entries: Vec<IdleEntry>,
    next_id: u64,
    running: bool,
}

impl IdleHandlers {
    pub(crate) fn add(&mut self, handler: Box<dyn FnMut()>) -> IdleHandlerId {
        self.next_id += 1;
        let id = IdleHandlerId(self.next_id);
        self.entries.push(IdleEntry { id, handler: Some(handler), removed: false });
        id
    }

    pub(crate) fn remove(&mut self, id: IdleHandlerId) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.id == id && !e.removed) else {
            return false;
        };
        if self.running {
            // Indexes must stay put while `run_all` walks them.
            self.entries[i].removed = true;
        } else {
            self.entries.remove(i);
        }
        true
    }

    /// Installed handlers, not counting those removed during the current run.
    pub(crate) fn len(&self) -> usize {
        self.entries.iter().filter(|e| !e.removed).count()
    }

    /// Runs every handler installed when the run starts. No borrow is held while a handler runs.
    pub(crate) fn run_all(cell: &RefCell<IdleHandlers>) {
        let count = {
            let mut this = cell.borrow_mut();
            this.running = true;
            this.entries.len()
        };
        for i in 0..count {
            let handler = {
                let mut this = cell.borrow_mut();
                let entry = &mut this.entries[i];
                if entry.removed {
                    continue;
                }
                entry.handler.take()
            };
            if let Some(mut handler) = handler {
                handler();
                let mut this = cell.borrow_mut();
                let entry = &mut this.entries[i];
                if !entry.removed {
                    entry.handler = Some(handler);
                }
            }
        }
        let mut this = cell.borrow_mut();
        this.running = false;
        this.entries.retain(|e| !e.removed);
    }
}
