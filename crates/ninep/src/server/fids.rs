//! The per-connection fid table and what the framework keeps for each fid.
//!
//! intro(5): a fid is a 32-bit handle the client picks for a file on one connection; `Tattach`,
//! `Twalk` and `Txattrwalk` bring one into use, `Tclunk` and `Tremove` end it, and every other
//! request names one that is in use. The framework keeps, beside the file server's own state
//! for the fid, how it was opened (reads and writes are checked against it), its path name
//! (9P2000's `stat` reports the last element), whether it is to be removed when clunked
//! (`ORCLOSE`, open(5)) and where a 9P2000 directory read left off (read(5)).
//!
//! Entries are reference counted: a request that waits (a read) holds its fid's entry, so a
//! `Tclunk` that arrives meanwhile takes the fid out of the table at once while the file
//! server's `clunk` (or the `ORCLOSE` removal) happens when the last holder lets go.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::fail::{fails, Fail};
use super::FileServer;
use crate::codec::NOFID;

/// The most fids one connection may hold at once; more are refused with `EMFILE`.
pub const MAX_FIDS: usize = 65536;

/// A fid's path from the root of its attach, as a shared linked list of names: walking appends
/// one node, cloning a fid shares the whole path.
pub(crate) struct PathName {
    name: String,
    parent: Option<Rc<PathName>>,
}

impl PathName {
    /// The root of an attach; Plan 9's lib9p calls it `/`.
    pub(crate) fn root() -> Rc<PathName> {
        Rc::new(PathName { name: String::from("/"), parent: None })
    }

    /// The path of `name` inside `dir` (`..` goes up, staying at the root).
    pub(crate) fn child(dir: &Rc<PathName>, name: &str) -> Rc<PathName> {
        match name {
            ".." => dir.parent.clone().unwrap_or_else(|| dir.clone()),
            "." | "" => dir.clone(),
            _ => Rc::new(PathName { name: String::from(name), parent: Some(dir.clone()) }),
        }
    }

    /// The same file under a new last element (after a rename in its own directory).
    pub(crate) fn renamed(this: &Rc<PathName>, name: &str) -> Rc<PathName> {
        Rc::new(PathName { name: String::from(name), parent: this.parent.clone() })
    }

    /// The last element.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// How a fid was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenMode {
    /// Reads are allowed.
    pub(crate) read: bool,
    /// Writes are allowed.
    pub(crate) write: bool,
    /// The file is a directory (reads list it).
    pub(crate) dir: bool,
}

impl OpenMode {
    /// The mode of an open with Linux `flags` of a file that is a directory or not.
    pub(crate) fn from_flags(flags: u32, dir: bool) -> OpenMode {
        match flags & 3 {
            1 => OpenMode { read: false, write: true, dir },
            2 => OpenMode { read: true, write: true, dir },
            _ => OpenMode { read: true, write: false, dir },
        }
    }
}

/// Where a 9P2000 directory read stopped: the byte offset the next read must give, and the
/// file server's cookie to continue its listing from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DirCursor {
    pub(crate) next_offset: u64,
    pub(crate) cookie: u64,
}

/// One fid in use: the file server's state and the framework's.
pub(crate) struct FidEntry<S: FileServer> {
    server: Rc<S>,
    state: Option<S::Fid>,
    open: Cell<Option<OpenMode>>,
    path: RefCell<Rc<PathName>>,
    remove_on_clunk: Cell<bool>,
    dir_cursor: Cell<DirCursor>,
}

impl<S: FileServer> FidEntry<S> {
    /// A fid, not open, for `state` with path `path`.
    pub(crate) fn new(server: Rc<S>, state: S::Fid, path: Rc<PathName>) -> Rc<FidEntry<S>> {
        Rc::new(FidEntry {
            server,
            state: Some(state),
            open: Cell::new(None),
            path: RefCell::new(path),
            remove_on_clunk: Cell::new(false),
            dir_cursor: Cell::new(DirCursor::default()),
        })
    }

    /// A fid already open with `mode` (the result of a create).
    pub(crate) fn new_open(
        server: Rc<S>,
        state: S::Fid,
        path: Rc<PathName>,
        mode: OpenMode,
    ) -> Rc<FidEntry<S>> {
        let entry = Self::new(server, state, path);
        entry.open.set(Some(mode));
        entry
    }

    /// The file server's state for the fid.
    pub(crate) fn fid(&self) -> &S::Fid {
        // `state` is `None` only inside `into_state` and `drop`, which consume the entry.
        self.state.as_ref().expect("fid state is present while the entry lives")
    }

    /// How the fid is open, if it is.
    pub(crate) fn open_mode(&self) -> Option<OpenMode> {
        self.open.get()
    }

    /// Marks the fid open with `mode`.
    pub(crate) fn set_open(&self, mode: OpenMode) {
        self.open.set(Some(mode));
    }

    /// The fid's path.
    pub(crate) fn path(&self) -> Rc<PathName> {
        self.path.borrow().clone()
    }

    /// Gives the fid a new path (after a rename).
    pub(crate) fn set_path(&self, path: Rc<PathName>) {
        *self.path.borrow_mut() = path;
    }

    /// Asks for the file to be removed rather than clunked when the fid goes (`ORCLOSE`).
    pub(crate) fn set_remove_on_clunk(&self) {
        self.remove_on_clunk.set(true);
    }

    /// Where the last 9P2000 directory read stopped.
    pub(crate) fn dir_cursor(&self) -> DirCursor {
        self.dir_cursor.get()
    }

    /// Records where a 9P2000 directory read stopped.
    pub(crate) fn set_dir_cursor(&self, cursor: DirCursor) {
        self.dir_cursor.set(cursor);
    }

    /// Takes the file server's state out of an entry nobody else holds (for `Tremove`);
    /// nothing is clunked.
    pub(crate) fn into_state(mut self) -> Option<S::Fid> {
        self.state.take()
    }
}

impl<S: FileServer> Drop for FidEntry<S> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            if self.remove_on_clunk.get() {
                // ORCLOSE (open(5)): the removal's outcome has nobody to go to; the fid is
                // gone either way.
                let _ = self.server.remove(state);
            } else {
                self.server.clunk(state);
            }
        }
    }
}

/// The fids of one connection.
pub(crate) struct FidTable<E> {
    map: BTreeMap<u32, Rc<E>>,
    limit: usize,
}

impl<E> FidTable<E> {
    /// An empty table that holds at most `limit` fids.
    pub(crate) fn new(limit: usize) -> Self {
        FidTable { map: BTreeMap::new(), limit }
    }

    /// The entry of `fid`.
    pub(crate) fn get(&self, fid: u32) -> Result<Rc<E>, Fail> {
        self.map.get(&fid).cloned().ok_or(fails::UNKNOWN_FID)
    }

    /// Whether `fid` could be brought into use now: not in use, not `NOFID`, room left.
    pub(crate) fn check_new(&self, fid: u32) -> Result<(), Fail> {
        if fid == NOFID {
            return Err(fails::UNKNOWN_FID);
        }
        if self.map.contains_key(&fid) {
            return Err(fails::FID_IN_USE);
        }
        if self.map.len() >= self.limit {
            return Err(fails::TOO_MANY_FIDS);
        }
        Ok(())
    }

    /// Brings `fid` into use with `entry`.
    pub(crate) fn insert(&mut self, fid: u32, entry: Rc<E>) -> Result<(), Fail> {
        self.check_new(fid)?;
        self.map.insert(fid, entry);
        Ok(())
    }

    /// Puts `entry` in place of whatever `fid` was (it must be in use), returning the old one
    /// so the caller can let go of it outside any borrow.
    pub(crate) fn replace(&mut self, fid: u32, entry: Rc<E>) -> Option<Rc<E>> {
        self.map.insert(fid, entry)
    }

    /// Ends `fid`, returning its entry.
    pub(crate) fn remove(&mut self, fid: u32) -> Result<Rc<E>, Fail> {
        self.map.remove(&fid).ok_or(fails::UNKNOWN_FID)
    }

    /// Ends every fid, returning the entries.
    pub(crate) fn take_all(&mut self) -> Vec<Rc<E>> {
        core::mem::take(&mut self.map).into_values().collect()
    }

    /// How many fids are in use.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::{EBADF, EMFILE};

    #[test]
    fn table_refuses_reuse_nofid_and_beyond_its_limit() {
        let mut t: FidTable<u8> = FidTable::new(2);
        t.insert(1, Rc::new(1)).unwrap();
        assert_eq!(t.insert(1, Rc::new(9)), Err(fails::FID_IN_USE));
        assert_eq!(t.insert(NOFID, Rc::new(9)), Err(fails::UNKNOWN_FID));
        t.insert(2, Rc::new(2)).unwrap();
        assert_eq!(t.insert(3, Rc::new(3)).unwrap_err().errno, EMFILE);
        assert_eq!(*t.remove(1).unwrap(), 1);
        assert_eq!(t.remove(1).unwrap_err().errno, EBADF);
        t.insert(3, Rc::new(3)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.take_all().len(), 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn path_names_follow_walks_and_renames() {
        let root = PathName::root();
        assert_eq!(root.name(), "/");
        let a = PathName::child(&root, "a");
        let b = PathName::child(&a, "b");
        assert_eq!(b.name(), "b");
        assert_eq!(PathName::child(&b, "..").name(), "a");
        assert_eq!(PathName::child(&root, "..").name(), "/");
        let c = PathName::renamed(&b, "c");
        assert_eq!(c.name(), "c");
        assert_eq!(PathName::child(&c, "..").name(), "a");
    }

    #[test]
    fn open_modes_from_linux_flags() {
        assert_eq!(
            OpenMode::from_flags(0, false),
            OpenMode { read: true, write: false, dir: false }
        );
        assert_eq!(
            OpenMode::from_flags(1, false),
            OpenMode { read: false, write: true, dir: false }
        );
        assert_eq!(
            OpenMode::from_flags(0o1002, true),
            OpenMode { read: true, write: true, dir: true }
        );
    }
}
