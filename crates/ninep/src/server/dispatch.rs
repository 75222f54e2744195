//! Requests of both dialects and of 9P2000.L, translated onto [`FileServer`] calls.
//!
//! The rules are those of intro(5), attach(5), walk(5), read(5), clunk(5) and remove(5) for
//! the messages both dialects share, and of diod's `protocol.md` (Linux `net/9p`) for the
//! 9P2000.L ones. 9P2000's own messages are in [`super::plan9`].

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::fail::{fails, Fail};
use super::fids::{FidEntry, OpenMode, PathName};
use super::session::{chain_of, Session};
use super::{Credentials, FileServer};
use crate::codec::{
    encode_dirent, encode_rread_header, encode_rreaddir_header, getattr, qid_type, Dialect, Dirent,
    Flock, Rmessage, Tmessage, WalkList, NOFID, NONUNAME,
};
use crate::errno::{EISDIR, ENOTDIR};
use crate::transport::Transport;

/// The fewest bytes one `Rreaddir` entry takes: qid, offset, type, a name of one byte.
const MIN_DIRENT: usize = 13 + 8 + 1 + 2 + 1;

/// The most `readdir` calls one directory read makes to fill its reply.
pub(crate) const MAX_READDIR_BATCHES: usize = 64;

/// Checks a name that a request creates or links: not empty, not `.` or `..`, without `/` or
/// NUL (intro(5): a name is one path element).
pub(crate) fn check_new_name(name: &str) -> Result<(), Fail> {
    if name == "." || name == ".." {
        return Err(fails::BAD_NAME);
    }
    check_walk_name(name)
}

/// Checks one element of a walk: not empty, without `/` or NUL (`..` is allowed).
pub(crate) fn check_walk_name(name: &str) -> Result<(), Fail> {
    if name.is_empty() || name.bytes().any(|b| b == b'/' || b == 0) {
        return Err(fails::BAD_NAME);
    }
    Ok(())
}

/// Whether `qid` names a directory.
pub(crate) fn is_dir(ty: u8) -> bool {
    ty & qid_type::QTDIR != 0
}

impl<S: FileServer, T: Transport> Session<S, T> {
    /// The entry of `fid`.
    pub(crate) fn fid(&self, fid: u32) -> Result<Rc<FidEntry<S>>, Fail> {
        self.fids.borrow().get(fid)
    }

    /// Brings `fid` into use with `entry` (the caller checked `fid` with `check_new` before
    /// asking the file server for the state, so this does not fail in practice).
    pub(crate) fn insert_fid(&self, fid: u32, entry: Rc<FidEntry<S>>) -> Result<(), Fail> {
        // The named temporary ends the table's borrow before the function returns.
        let inserted = self.fids.borrow_mut().insert(fid, entry);
        inserted
    }

    /// Puts `entry` in place of `fid`'s entry; the old one is let go of (clunked if unused).
    pub(crate) fn replace_fid(&self, fid: u32, entry: Rc<FidEntry<S>>) {
        let old = self.fids.borrow_mut().replace(fid, entry);
        drop(old);
    }

    /// Puts `entry` under `newfid`: in place of `fid` when they are the same, else as a new fid.
    fn put_fid(&self, fid: u32, newfid: u32, entry: Rc<FidEntry<S>>) -> Result<(), Fail> {
        if newfid == fid {
            self.replace_fid(fid, entry);
            Ok(())
        } else {
            self.insert_fid(newfid, entry)
        }
    }

    /// A new fid entry for the file server state `state`.
    pub(crate) fn entry(&self, state: S::Fid, path: Rc<PathName>) -> Rc<FidEntry<S>> {
        FidEntry::new(self.server.clone(), state, path)
    }

    /// Answers or starts one decoded request (not `Tversion` or `Tflush`, which the session
    /// handles itself). `message` is the buffer `request` borrows from.
    pub(crate) fn dispatch(
        self: &Rc<Self>,
        tag: u16,
        request: Tmessage<'_>,
        message: &SharedIoBuf,
    ) -> Result<(), Fail> {
        match request {
            Tmessage::Version { .. } | Tmessage::Flush { .. } => Err(fails::BOTCH),
            Tmessage::Auth { .. } => Err(fails::NO_AUTH),
            Tmessage::Attach { fid, afid, uname, aname, n_uname } => {
                self.attach(tag, fid, afid, uname, aname, n_uname)
            }
            Tmessage::Walk { fid, newfid, names } => self.walk(tag, fid, newfid, &names),
            Tmessage::Read { fid, offset, count } => self.read(tag, fid, offset, count),
            Tmessage::Write { fid, offset, data } => self.write(tag, fid, offset, data, message),
            Tmessage::Clunk { fid } => self.clunk(tag, fid),
            Tmessage::Remove { fid } => self.remove(tag, fid),
            Tmessage::Open { fid, mode } => self.open(tag, fid, mode),
            Tmessage::Create { fid, name, perm, mode } => self.create(tag, fid, name, perm, mode),
            Tmessage::Stat { fid } => self.stat(tag, fid),
            Tmessage::Wstat { fid, stat } => self.wstat(tag, fid, &stat),
            Tmessage::Statfs { fid } => {
                let statfs = self.server.statfs(self.fid(fid)?.fid())?;
                self.send_reply(tag, &Rmessage::Statfs { statfs });
                Ok(())
            }
            Tmessage::Lopen { fid, flags } => self.lopen(tag, fid, flags),
            Tmessage::Lcreate { fid, name, flags, mode, gid } => {
                self.lcreate(tag, fid, name, flags, mode, gid)
            }
            Tmessage::Symlink { fid, name, symtgt, gid } => {
                check_new_name(name)?;
                let qid = self.server.symlink(self.fid(fid)?.fid(), name, symtgt, gid)?;
                debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
                self.send_reply(tag, &Rmessage::Symlink { qid });
                Ok(())
            }
            Tmessage::Mknod { dfid, name, mode, major, minor, gid } => {
                check_new_name(name)?;
                let qid =
                    self.server.mknod(self.fid(dfid)?.fid(), name, mode, major, minor, gid)?;
                debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
                self.send_reply(tag, &Rmessage::Mknod { qid });
                Ok(())
            }
            Tmessage::Rename { fid, dfid, name } => {
                check_new_name(name)?;
                let (entry, dir) = (self.fid(fid)?, self.fid(dfid)?);
                self.server.rename(entry.fid(), Some(dir.fid()), name)?;
                entry.set_path(PathName::child(&dir.path(), name));
                self.send_reply(tag, &Rmessage::Rename);
                Ok(())
            }
            Tmessage::Readlink { fid } => {
                let target = self.server.readlink(self.fid(fid)?.fid())?;
                self.send_reply(tag, &Rmessage::Readlink { target: &target });
                Ok(())
            }
            Tmessage::Getattr { fid, request_mask } => {
                let mut attr = self.server.getattr(self.fid(fid)?.fid())?;
                // A server that leaves `valid` empty filled in what stat(2) returns.
                let filled = if attr.valid == 0 { getattr::BASIC } else { attr.valid };
                attr.valid = filled & request_mask;
                debug_assert_ne!(attr.qid.path, 0, "qid path 0 from the file server");
                self.send_reply(tag, &Rmessage::Getattr { attr });
                Ok(())
            }
            Tmessage::Setattr { fid, attr } => {
                self.server.setattr(self.fid(fid)?.fid(), &attr)?;
                self.send_reply(tag, &Rmessage::Setattr);
                Ok(())
            }
            Tmessage::Xattrwalk { fid, newfid, name } => self.xattrwalk(tag, fid, newfid, name),
            Tmessage::Xattrcreate { fid, name, attr_size, flags } => {
                let entry = self.fid(fid)?;
                self.server.xattrcreate(entry.fid(), name, attr_size, flags)?;
                entry.set_open(OpenMode { read: false, write: true, dir: false });
                self.send_reply(tag, &Rmessage::Xattrcreate);
                Ok(())
            }
            Tmessage::Readdir { fid, offset, count } => self.readdir(tag, fid, offset, count),
            Tmessage::Fsync { fid, datasync } => {
                self.server.fsync(self.fid(fid)?.fid(), datasync != 0)?;
                self.send_reply(tag, &Rmessage::Fsync);
                Ok(())
            }
            Tmessage::Lock { fid, flags, lock } => {
                let status = self.server.lock(self.fid(fid)?.fid(), &lock, flags)?;
                self.send_reply(tag, &Rmessage::Lock { status: status as u8 });
                Ok(())
            }
            Tmessage::Getlock { fid, lock } => {
                let (ty, start, length, proc_id) =
                    self.server.getlock(self.fid(fid)?.fid(), &lock)?;
                let lock = Flock { ty, start, length, proc_id, client_id: lock.client_id };
                self.send_reply(tag, &Rmessage::Getlock { lock });
                Ok(())
            }
            Tmessage::Link { dfid, fid, name } => {
                check_new_name(name)?;
                let (dir, target) = (self.fid(dfid)?, self.fid(fid)?);
                self.server.link(dir.fid(), target.fid(), name)?;
                self.send_reply(tag, &Rmessage::Link);
                Ok(())
            }
            Tmessage::Mkdir { dfid, name, mode, gid } => {
                check_new_name(name)?;
                let qid = self.server.mkdir(self.fid(dfid)?.fid(), name, mode, gid)?;
                debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
                self.send_reply(tag, &Rmessage::Mkdir { qid });
                Ok(())
            }
            Tmessage::Renameat { olddirfid, oldname, newdirfid, newname } => {
                check_new_name(oldname)?;
                check_new_name(newname)?;
                let (old_dir, new_dir) = (self.fid(olddirfid)?, self.fid(newdirfid)?);
                self.server.renameat(old_dir.fid(), oldname, new_dir.fid(), newname)?;
                self.send_reply(tag, &Rmessage::Renameat);
                Ok(())
            }
            Tmessage::Unlinkat { dirfd, name, flags } => {
                check_new_name(name)?;
                self.server.unlinkat(self.fid(dirfd)?.fid(), name, flags)?;
                self.send_reply(tag, &Rmessage::Unlinkat);
                Ok(())
            }
        }
    }

    /// `Tattach` (attach(5)): `fid` names the root of tree `aname`. No authentication is
    /// done, so any `afid` but `NOFID` names no authentication fid.
    fn attach(
        &self,
        tag: u16,
        fid: u32,
        afid: u32,
        uname: &str,
        aname: &str,
        n_uname: Option<u32>,
    ) -> Result<(), Fail> {
        if afid != NOFID {
            return Err(fails::UNKNOWN_FID);
        }
        self.fids.borrow().check_new(fid)?;
        let who = Credentials { uname: String::from(uname), n_uname: n_uname.unwrap_or(NONUNAME) };
        let state = self.server.attach(aname, &who)?;
        let qid = self.server.qid(&state);
        debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
        self.insert_fid(fid, self.entry(state, PathName::root()))?;
        self.send_reply(tag, &Rmessage::Attach { qid });
        Ok(())
    }

    /// `Twalk` (walk(5)). A walk that fails at its first name is an error; one that fails
    /// later answers the qids of the names it got through and leaves `newfid` unused. `newfid`
    /// may be `fid`, which then moves only if the whole walk succeeds.
    fn walk(&self, tag: u16, fid: u32, newfid: u32, names: &[&str]) -> Result<(), Fail> {
        let start = self.fid(fid)?;
        if self.dialect() == Dialect::P2000 && start.open_mode().is_some() {
            // walk(5): the fid must not have been opened.
            return Err(fails::ALREADY_OPEN);
        }
        if newfid != fid {
            self.fids.borrow().check_new(newfid)?;
        }
        for name in names {
            check_walk_name(name)?;
        }
        if names.is_empty() {
            if newfid != fid {
                let state = self.server.clone_fid(start.fid())?;
                self.insert_fid(newfid, self.entry(state, start.path()))?;
            }
            self.send_reply(tag, &Rmessage::Walk { qids: WalkList::new() });
            return Ok(());
        }
        let mut qids = WalkList::new();
        let mut path = start.path();
        let mut current: Option<S::Fid> = None;
        for (i, name) in names.iter().enumerate() {
            let from = current.as_ref().unwrap_or_else(|| start.fid());
            match self.server.walk(from, name) {
                Ok(next) => {
                    let qid = self.server.qid(&next);
                    debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
                    // The decoder allows at most MAXWELEM names, the list's capacity.
                    let _ = qids.push(qid);
                    path = PathName::child(&path, name);
                    if let Some(previous) = current.replace(next) {
                        self.server.clunk(previous);
                    }
                }
                Err(errno) => {
                    if let Some(previous) = current.take() {
                        self.server.clunk(previous);
                    }
                    if i == 0 {
                        return Err(errno.into());
                    }
                    self.send_reply(tag, &Rmessage::Walk { qids });
                    return Ok(());
                }
            }
        }
        let Some(state) = current else { return Err(fails::BOTCH) };
        self.put_fid(fid, newfid, self.entry(state, path))?;
        self.send_reply(tag, &Rmessage::Walk { qids });
        Ok(())
    }

    /// `Tread` (read(5)): at most `msize - 11` bytes. A file's read runs as its own task and
    /// its payload follows the header unchanged; a 9P2000 directory is read as stat entries.
    fn read(self: &Rc<Self>, tag: u16, fid: u32, offset: u64, count: u32) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        let mode = entry.open_mode().ok_or(fails::NOT_OPEN)?;
        if !mode.read {
            return Err(fails::NOT_OPEN_FOR_READ);
        }
        let count = count.min(self.max_read());
        if mode.dir {
            return match self.dialect() {
                Dialect::P2000 => self.read_dir_stats(tag, &entry, offset, count),
                // 9P2000.L lists directories with Treaddir only.
                Dialect::P2000L => Err(EISDIR.into()),
            };
        }
        let session = self.clone();
        let msize = self.msize();
        self.spawn_request(tag, async move {
            let mut data = session.server.read(entry.fid(), offset, count).await?;
            if data.len() > count as usize {
                data.truncate(count as usize);
            }
            let mut header = Vec::with_capacity(crate::codec::RREAD_HEADER_LEN);
            // count <= msize - 11, so the header always fits.
            encode_rread_header(tag, data.len() as u32, msize, &mut header)
                .map_err(|_| fails::REPLY_TOO_LARGE)?;
            session.stats.read(data.len());
            let mut chain = chain_of(header);
            if !data.is_empty() {
                chain.push_back(data.freeze());
            }
            Ok(chain)
        });
        Ok(())
    }

    /// `Twrite` (write(5)): runs as its own task; the file server sees the payload where it
    /// lies in the received message.
    fn write(
        self: &Rc<Self>,
        tag: u16,
        fid: u32,
        offset: u64,
        data: &[u8],
        message: &SharedIoBuf,
    ) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        let mode = entry.open_mode().ok_or(fails::NOT_OPEN)?;
        if !mode.write {
            return Err(fails::NOT_OPEN_FOR_WRITE);
        }
        if mode.dir {
            return Err(EISDIR.into());
        }
        // `data` is a slice of `message`: keep the message and find the slice again in the task.
        let start = (data.as_ptr() as usize).wrapping_sub(message.as_ptr() as usize);
        let range = start..start + data.len();
        if message.get(range.clone()).map(<[u8]>::as_ptr) != Some(data.as_ptr()) {
            return Err(fails::BOTCH);
        }
        let message = message.clone();
        let session = self.clone();
        self.spawn_request(tag, async move {
            let data = &message[range];
            let written = session.server.write(entry.fid(), offset, data).await?;
            let written = written.min(data.len() as u32);
            session.stats.written(written);
            let mut out = Vec::new();
            crate::codec::encode_rmessage(
                tag,
                &Rmessage::Write { count: written },
                session.dialect(),
                session.msize(),
                &mut out,
            )
            .map_err(|_| fails::REPLY_TOO_LARGE)?;
            Ok(chain_of(out))
        });
        Ok(())
    }

    /// `Tclunk` (clunk(5)): the fid is forgotten; the file server's `clunk` (or, for
    /// `ORCLOSE`, `remove`) runs once no waiting request uses it any more.
    fn clunk(&self, tag: u16, fid: u32) -> Result<(), Fail> {
        let entry = self.fids.borrow_mut().remove(fid)?;
        drop(entry);
        self.send_reply(tag, &Rmessage::Clunk);
        Ok(())
    }

    /// `Tremove` (remove(5)): removes the file and clunks the fid, even if the removal fails.
    fn remove(&self, tag: u16, fid: u32) -> Result<(), Fail> {
        let entry = self.fids.borrow_mut().remove(fid)?;
        let entry = Rc::try_unwrap(entry).map_err(|_still_used| fails::FID_BUSY)?;
        let state = entry.into_state().ok_or(fails::BOTCH)?;
        self.server.remove(state)?;
        self.send_reply(tag, &Rmessage::Remove);
        Ok(())
    }

    /// `Tlopen`: opens the fid with Linux flags.
    fn lopen(&self, tag: u16, fid: u32, flags: u32) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        if entry.open_mode().is_some() {
            return Err(fails::ALREADY_OPEN);
        }
        let (qid, iounit) = self.server.open(entry.fid(), flags)?;
        debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
        entry.set_open(OpenMode::from_flags(flags, is_dir(qid.ty)));
        self.send_reply(tag, &Rmessage::Lopen { qid, iounit: self.iounit(iounit) });
        Ok(())
    }

    /// `Tlcreate`: creates and opens `name` in the directory `fid`, which then names it.
    fn lcreate(
        &self,
        tag: u16,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(), Fail> {
        check_new_name(name)?;
        let dir = self.fid(fid)?;
        if dir.open_mode().is_some() {
            return Err(fails::ALREADY_OPEN);
        }
        let (state, iounit) = self.server.create(dir.fid(), name, flags, mode, gid)?;
        let qid = self.server.qid(&state);
        debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
        let path = PathName::child(&dir.path(), name);
        let open = OpenMode::from_flags(flags, false);
        self.replace_fid(fid, FidEntry::new_open(self.server.clone(), state, path, open));
        self.send_reply(tag, &Rmessage::Lcreate { qid, iounit: self.iounit(iounit) });
        Ok(())
    }

    /// `Txattrwalk`: `newfid` reads extended attribute `name` of `fid` (or the list of them).
    fn xattrwalk(&self, tag: u16, fid: u32, newfid: u32, name: &str) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        if newfid != fid {
            self.fids.borrow().check_new(newfid)?;
        }
        let (state, size) = self.server.xattrwalk(entry.fid(), name)?;
        let open = OpenMode { read: true, write: false, dir: false };
        let reader = FidEntry::new_open(self.server.clone(), state, entry.path(), open);
        self.put_fid(fid, newfid, reader)?;
        self.send_reply(tag, &Rmessage::Xattrwalk { size });
        Ok(())
    }

    /// `Treaddir`: as many whole entries as fit in `count` bytes, continuing after the cookie
    /// `offset`, packed as `encode_dirent` writes them.
    fn readdir(&self, tag: u16, fid: u32, offset: u64, count: u32) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        let mode = entry.open_mode().ok_or(fails::NOT_OPEN)?;
        if !mode.dir {
            return Err(ENOTDIR.into());
        }
        let budget = count.min(self.max_read()) as usize;
        let mut body = Vec::new();
        let mut cookie = offset;
        let mut full = false;
        'batches: for _ in 0..MAX_READDIR_BATCHES {
            let want = (budget - body.len()) / MIN_DIRENT + 1;
            let entries = match self.server.readdir(entry.fid(), cookie, want) {
                Ok(entries) => entries,
                // What was read so far goes out; the error comes back on the next call.
                Err(_) if !body.is_empty() => break,
                Err(errno) => return Err(errno.into()),
            };
            if entries.is_empty() {
                break;
            }
            for e in &entries {
                debug_assert_ne!(e.qid.path, 0, "qid path 0 from the file server");
                let dirent = Dirent { qid: e.qid, offset: e.offset, ty: e.kind, name: &e.name };
                if body.len() + dirent.wire_len() > budget {
                    full = true;
                    break 'batches;
                }
                // A name too long for a 9P string cannot be sent; leave it out.
                let _ = encode_dirent(&dirent, &mut body);
                cookie = e.offset;
            }
        }
        if body.is_empty() && full {
            return Err(fails::COUNT_TOO_SMALL);
        }
        let mut header = Vec::with_capacity(crate::codec::RREAD_HEADER_LEN);
        encode_rreaddir_header(tag, body.len() as u32, self.msize(), &mut header)
            .map_err(|_| fails::REPLY_TOO_LARGE)?;
        let mut chain: IoBufChain = chain_of(header);
        if !body.is_empty() {
            chain.push_back(SharedIoBuf::from_vec(body));
        }
        self.send_chain(chain);
        Ok(())
    }
}
