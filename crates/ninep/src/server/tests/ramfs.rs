//! A small in-memory [`FileServer`] for the tests: directories, files, symbolic links, one
//! extended attribute, and `blocking` files whose reads and writes wait until the test
//! releases them (to exercise `Tflush`). It counts what the framework asks of it.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::task::{Poll, Waker};

use cairn_rt::iobuf::IoBuf;

use crate::codec::{getattr, qid_type, Attr, Flock, Qid, SetAttr, StatFs};
use crate::errno::*;
use crate::server::{dtype, Credentials, DirEntry, FileServer, LockStatus};

/// Linux mode type bits the tree uses.
pub(crate) const S_IFDIR: u32 = 0o040_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const S_IFLNK: u32 = 0o120_000;

enum Kind {
    Dir(BTreeMap<String, u64>),
    File(Vec<u8>),
    Symlink(String),
    Blocking,
}

struct Node {
    parent: u64,
    kind: Kind,
    perm: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    version: u32,
}

/// The file server's state for one fid.
pub(crate) struct RamFid {
    ino: u64,
    xattr: Option<Vec<u8>>,
}

/// Counts the drops of a waiting read or write, i.e. cancellations.
struct DropCount<'a>(&'a Cell<u32>, bool);

impl Drop for DropCount<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.set(self.0.get() + 1);
        }
    }
}

/// The tree.
pub(crate) struct RamFs {
    nodes: RefCell<BTreeMap<u64, Node>>,
    next_ino: Cell<u64>,
    released: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
    /// Reads or writes of blocking files that were dropped while they waited.
    pub(crate) cancelled: Cell<u32>,
    /// Fids clunked (by `clunk`) and removed (by `remove`).
    pub(crate) clunks: Cell<u32>,
    pub(crate) removes: Cell<u32>,
    /// Fids the framework holds: attach, walk, clone, create and xattrwalk add one; clunk
    /// and remove take one away.
    pub(crate) live_fids: Cell<i64>,
    /// Where the payload of the last read reply and of the last write lay.
    pub(crate) last_read_ptr: Cell<usize>,
    pub(crate) last_write: Cell<(usize, usize)>,
    /// The flags of the last open.
    pub(crate) last_open_flags: Cell<u32>,
    /// The last setattr.
    pub(crate) last_setattr: Cell<Option<SetAttr>>,
    /// fsync calls.
    pub(crate) syncs: Cell<u32>,
    /// The iounit `open` reports.
    pub(crate) iounit: Cell<u32>,
}

impl RamFs {
    /// A tree holding `/`, `/hello` ("hello, world\n"), `/dir/` and `/blocking`.
    pub(crate) fn new() -> RamFs {
        let fs = RamFs {
            nodes: RefCell::new(BTreeMap::new()),
            next_ino: Cell::new(2),
            released: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
            cancelled: Cell::new(0),
            clunks: Cell::new(0),
            removes: Cell::new(0),
            live_fids: Cell::new(0),
            last_read_ptr: Cell::new(0),
            last_write: Cell::new((0, 0)),
            last_open_flags: Cell::new(0),
            last_setattr: Cell::new(None),
            syncs: Cell::new(0),
            iounit: Cell::new(0),
        };
        let root = Node {
            parent: 1,
            kind: Kind::Dir(BTreeMap::new()),
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1000,
            version: 0,
        };
        fs.nodes.borrow_mut().insert(1, root);
        fs.add(1, "hello", Kind::File(b"hello, world\n".to_vec()), 0o644);
        fs.add(1, "dir", Kind::Dir(BTreeMap::new()), 0o755);
        fs.add(1, "blocking", Kind::Blocking, 0o666);
        fs
    }

    /// Adds a node; returns its inode number.
    fn add(&self, dir: u64, name: &str, kind: Kind, perm: u32) -> u64 {
        let ino = self.next_ino.get();
        self.next_ino.set(ino + 1);
        let node = Node { parent: dir, kind, perm, uid: 1000, gid: 100, mtime: 2000, version: 0 };
        let mut nodes = self.nodes.borrow_mut();
        nodes.insert(ino, node);
        if let Some(Node { kind: Kind::Dir(children), .. }) = nodes.get_mut(&dir) {
            children.insert(name.to_string(), ino);
        }
        ino
    }

    /// Adds a file with `data` under the directory at `path` (names from the root).
    pub(crate) fn add_file(&self, dir_path: &[&str], name: &str, data: &[u8]) {
        let dir = self.lookup(dir_path).expect("directory exists");
        self.add(dir, name, Kind::File(data.to_vec()), 0o644);
    }

    /// Adds a directory under the directory at `path`.
    pub(crate) fn add_dir(&self, dir_path: &[&str], name: &str) {
        let dir = self.lookup(dir_path).expect("directory exists");
        self.add(dir, name, Kind::Dir(BTreeMap::new()), 0o755);
    }

    /// The inode at `path`, if any.
    fn lookup(&self, path: &[&str]) -> Option<u64> {
        let nodes = self.nodes.borrow();
        let mut ino = 1;
        for name in path {
            match &nodes.get(&ino)?.kind {
                Kind::Dir(children) => ino = *children.get(*name)?,
                _ => return None,
            }
        }
        Some(ino)
    }

    /// The contents of the file at `path`, if it is one.
    pub(crate) fn contents(&self, path: &[&str]) -> Option<Vec<u8>> {
        let ino = self.lookup(path)?;
        match &self.nodes.borrow().get(&ino)?.kind {
            Kind::File(data) => Some(data.clone()),
            _ => None,
        }
    }

    /// Whether something exists at `path`.
    pub(crate) fn exists(&self, path: &[&str]) -> bool {
        self.lookup(path).is_some()
    }

    /// Lets every waiting (and later) read or write of a blocking file finish.
    pub(crate) fn release(&self) {
        self.released.set(true);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Waits until [`release`](Self::release); counts a drop before that as a cancellation.
    async fn gate(&self) {
        let mut guard = DropCount(&self.cancelled, false);
        core::future::poll_fn(|cx| {
            if self.released.get() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        guard.1 = true;
    }

    fn qid_of(&self, ino: u64) -> Qid {
        let nodes = self.nodes.borrow();
        let Some(node) = nodes.get(&ino) else { return Qid { ty: 0, version: 0, path: ino } };
        let ty = match node.kind {
            Kind::Dir(_) => qid_type::QTDIR,
            Kind::Symlink(_) => qid_type::QTSYMLINK,
            _ => qid_type::QTFILE,
        };
        Qid { ty, version: node.version, path: ino }
    }

    fn fid(&self, ino: u64) -> RamFid {
        self.live_fids.set(self.live_fids.get() + 1);
        RamFid { ino, xattr: None }
    }

    fn child(&self, dir: u64, name: &str) -> Result<u64, Errno> {
        let nodes = self.nodes.borrow();
        match &nodes.get(&dir).ok_or(ENOENT)?.kind {
            Kind::Dir(children) => match name {
                ".." => Ok(nodes[&dir].parent),
                "." => Ok(dir),
                _ => children.get(name).copied().ok_or(ENOENT),
            },
            _ => Err(ENOTDIR),
        }
    }

    fn unlink(&self, dir: u64, name: &str) -> Result<u64, Errno> {
        let ino = self.child(dir, name)?;
        let mut nodes = self.nodes.borrow_mut();
        if let Kind::Dir(children) = &nodes[&ino].kind {
            if !children.is_empty() {
                return Err(ENOTEMPTY);
            }
        }
        if let Some(Node { kind: Kind::Dir(children), .. }) = nodes.get_mut(&dir) {
            children.remove(name);
        }
        nodes.remove(&ino);
        Ok(ino)
    }

    fn new_node(
        &self,
        dir: u64,
        name: &str,
        kind: Kind,
        perm: u32,
        gid: u32,
    ) -> Result<u64, Errno> {
        if self.child(dir, name).is_ok() {
            return Err(EEXIST);
        }
        let ino = self.add(dir, name, kind, perm & 0o7777);
        if let Some(node) = self.nodes.borrow_mut().get_mut(&ino) {
            node.gid = gid;
        }
        Ok(ino)
    }

    fn move_node(&self, ino: u64, new_dir: u64, name: &str) -> Result<(), Errno> {
        let old_dir = self.nodes.borrow().get(&ino).ok_or(ENOENT)?.parent;
        let old_name = match &self.nodes.borrow()[&old_dir].kind {
            Kind::Dir(children) => children.iter().find(|(_, &i)| i == ino).map(|(n, _)| n.clone()),
            _ => None,
        }
        .ok_or(ENOENT)?;
        if self.child(new_dir, name).is_ok() {
            return Err(EEXIST);
        }
        let mut nodes = self.nodes.borrow_mut();
        if let Some(Node { kind: Kind::Dir(children), .. }) = nodes.get_mut(&old_dir) {
            children.remove(&old_name);
        }
        match nodes.get_mut(&new_dir) {
            Some(Node { kind: Kind::Dir(children), .. }) => {
                children.insert(name.to_string(), ino);
            }
            _ => return Err(ENOTDIR),
        }
        if let Some(node) = nodes.get_mut(&ino) {
            node.parent = new_dir;
        }
        Ok(())
    }
}

impl FileServer for RamFs {
    type Fid = RamFid;

    fn attach(&self, aname: &str, _who: &Credentials) -> Result<RamFid, Errno> {
        match aname {
            "" | "/" => Ok(self.fid(1)),
            _ => Err(ENOENT),
        }
    }

    fn qid(&self, fid: &RamFid) -> Qid {
        self.qid_of(fid.ino)
    }

    fn walk(&self, dir: &RamFid, name: &str) -> Result<RamFid, Errno> {
        let ino = self.child(dir.ino, name)?;
        Ok(self.fid(ino))
    }

    fn clone_fid(&self, fid: &RamFid) -> Result<RamFid, Errno> {
        Ok(self.fid(fid.ino))
    }

    fn open(&self, fid: &RamFid, flags: u32) -> Result<(Qid, u32), Errno> {
        self.last_open_flags.set(flags);
        let mut nodes = self.nodes.borrow_mut();
        let node = nodes.get_mut(&fid.ino).ok_or(ENOENT)?;
        if let Kind::File(data) = &mut node.kind {
            if flags & 0o1000 != 0 {
                data.clear();
            }
        }
        drop(nodes);
        Ok((self.qid_of(fid.ino), self.iounit.get()))
    }

    fn create(
        &self,
        dir: &RamFid,
        name: &str,
        _flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(RamFid, u32), Errno> {
        let ino = self.new_node(dir.ino, name, Kind::File(Vec::new()), mode, gid)?;
        Ok((self.fid(ino), 0))
    }

    async fn read(&self, fid: &RamFid, offset: u64, count: u32) -> Result<IoBuf, Errno> {
        if let Some(value) = &fid.xattr {
            let start = (offset as usize).min(value.len());
            let end = start.saturating_add(count as usize).min(value.len());
            return Ok(IoBuf::from_vec(value[start..end].to_vec()));
        }
        let blocking =
            matches!(self.nodes.borrow().get(&fid.ino).map(|n| &n.kind), Some(Kind::Blocking));
        if blocking {
            self.gate().await;
            return Ok(IoBuf::from_vec(b"released".to_vec()));
        }
        let nodes = self.nodes.borrow();
        let data = match &nodes.get(&fid.ino).ok_or(ENOENT)?.kind {
            Kind::File(data) => data,
            Kind::Dir(_) => return Err(EISDIR),
            _ => return Err(EINVAL),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(count as usize).min(data.len());
        let buf = IoBuf::from_vec(data[start..end].to_vec());
        self.last_read_ptr.set(buf.as_ptr() as usize);
        Ok(buf)
    }

    async fn write(&self, fid: &RamFid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.last_write.set((data.as_ptr() as usize, data.len()));
        let blocking =
            matches!(self.nodes.borrow().get(&fid.ino).map(|n| &n.kind), Some(Kind::Blocking));
        if blocking {
            self.gate().await;
            return Ok(data.len() as u32);
        }
        let mut nodes = self.nodes.borrow_mut();
        let node = nodes.get_mut(&fid.ino).ok_or(ENOENT)?;
        let Kind::File(file) = &mut node.kind else { return Err(EINVAL) };
        let start = usize::try_from(offset).map_err(|_| EFBIG)?;
        if file.len() < start + data.len() {
            file.resize(start + data.len(), 0);
        }
        file[start..start + data.len()].copy_from_slice(data);
        node.version += 1;
        Ok(data.len() as u32)
    }

    fn readdir(&self, fid: &RamFid, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        let nodes = self.nodes.borrow();
        let node = nodes.get(&fid.ino).ok_or(ENOENT)?;
        let Kind::Dir(children) = &node.kind else { return Err(ENOTDIR) };
        let mut all = vec![(".".to_string(), fid.ino), ("..".to_string(), node.parent)];
        all.extend(children.iter().map(|(n, &i)| (n.clone(), i)));
        drop(nodes);
        Ok(all
            .into_iter()
            .enumerate()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(max)
            .map(|(i, (name, ino))| {
                let qid = self.qid_of(ino);
                let kind =
                    if qid.ty & qid_type::QTDIR != 0 { dtype::DT_DIR } else { dtype::DT_REG };
                DirEntry { qid, offset: i as u64 + 1, kind, name }
            })
            .collect())
    }

    fn getattr(&self, fid: &RamFid) -> Result<Attr, Errno> {
        let nodes = self.nodes.borrow();
        let node = nodes.get(&fid.ino).ok_or(ENOENT)?;
        let (ty, size) = match &node.kind {
            Kind::Dir(c) => (S_IFDIR, c.len() as u64),
            Kind::File(d) => (S_IFREG, d.len() as u64),
            Kind::Symlink(t) => (S_IFLNK, t.len() as u64),
            Kind::Blocking => (S_IFREG, 0),
        };
        let (mode, uid, gid, mtime) = (ty | node.perm, node.uid, node.gid, node.mtime);
        drop(nodes);
        Ok(Attr {
            valid: getattr::BASIC,
            qid: self.qid_of(fid.ino),
            mode,
            uid,
            gid,
            nlink: 1,
            size,
            blksize: 4096,
            mtime_sec: mtime,
            atime_sec: mtime,
            ..Attr::default()
        })
    }

    fn setattr(&self, fid: &RamFid, attr: &SetAttr) -> Result<(), Errno> {
        use crate::codec::setattr::*;
        self.last_setattr.set(Some(*attr));
        let mut nodes = self.nodes.borrow_mut();
        let node = nodes.get_mut(&fid.ino).ok_or(ENOENT)?;
        if attr.valid & MODE != 0 {
            node.perm = attr.mode & 0o7777;
        }
        if attr.valid & UID != 0 {
            node.uid = attr.uid;
        }
        if attr.valid & GID != 0 {
            node.gid = attr.gid;
        }
        if attr.valid & MTIME_SET != 0 {
            node.mtime = attr.mtime_sec;
        }
        if attr.valid & SIZE != 0 {
            match &mut node.kind {
                Kind::File(data) => data.resize(attr.size as usize, 0),
                _ => return Err(EINVAL),
            }
        }
        Ok(())
    }

    fn clunk(&self, fid: RamFid) {
        self.clunks.set(self.clunks.get() + 1);
        self.live_fids.set(self.live_fids.get() - 1);
        drop(fid);
    }

    fn remove(&self, fid: RamFid) -> Result<(), Errno> {
        self.removes.set(self.removes.get() + 1);
        self.live_fids.set(self.live_fids.get() - 1);
        if fid.ino == 1 {
            return Err(EBUSY);
        }
        let dir = self.nodes.borrow().get(&fid.ino).ok_or(ENOENT)?.parent;
        let name = match &self.nodes.borrow()[&dir].kind {
            Kind::Dir(c) => c.iter().find(|(_, &i)| i == fid.ino).map(|(n, _)| n.clone()),
            _ => None,
        }
        .ok_or(ENOENT)?;
        self.unlink(dir, &name).map(drop)
    }

    fn mkdir(&self, dir: &RamFid, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        let ino = self.new_node(dir.ino, name, Kind::Dir(BTreeMap::new()), mode, gid)?;
        Ok(self.qid_of(ino))
    }

    fn symlink(&self, dir: &RamFid, name: &str, target: &str, gid: u32) -> Result<Qid, Errno> {
        let ino = self.new_node(dir.ino, name, Kind::Symlink(target.to_string()), 0o777, gid)?;
        Ok(self.qid_of(ino))
    }

    fn readlink(&self, fid: &RamFid) -> Result<String, Errno> {
        match &self.nodes.borrow().get(&fid.ino).ok_or(ENOENT)?.kind {
            Kind::Symlink(target) => Ok(target.clone()),
            _ => Err(EINVAL),
        }
    }

    fn rename(&self, fid: &RamFid, new_dir: Option<&RamFid>, name: &str) -> Result<(), Errno> {
        let dir = match new_dir {
            Some(d) => d.ino,
            None => self.nodes.borrow().get(&fid.ino).ok_or(ENOENT)?.parent,
        };
        self.move_node(fid.ino, dir, name)
    }

    fn renameat(
        &self,
        old_dir: &RamFid,
        old_name: &str,
        new_dir: &RamFid,
        new_name: &str,
    ) -> Result<(), Errno> {
        let ino = self.child(old_dir.ino, old_name)?;
        self.move_node(ino, new_dir.ino, new_name)
    }

    fn unlinkat(&self, dir: &RamFid, name: &str, _flags: u32) -> Result<(), Errno> {
        self.unlink(dir.ino, name).map(drop)
    }

    fn statfs(&self, _fid: &RamFid) -> Result<StatFs, Errno> {
        Ok(StatFs { ty: 0x01021997, bsize: 4096, blocks: 100, namelen: 255, ..StatFs::default() })
    }

    fn fsync(&self, _fid: &RamFid, _datasync: bool) -> Result<(), Errno> {
        self.syncs.set(self.syncs.get() + 1);
        Ok(())
    }

    fn lock(&self, _fid: &RamFid, lock: &Flock<'_>, _flags: u32) -> Result<LockStatus, Errno> {
        Ok(if lock.start == 666 { LockStatus::Blocked } else { LockStatus::Success })
    }

    fn getlock(&self, _fid: &RamFid, lock: &Flock<'_>) -> Result<(u8, u64, u64, u32), Errno> {
        Ok((crate::codec::lock::UNLCK, lock.start, lock.length, lock.proc_id))
    }

    fn xattrwalk(&self, fid: &RamFid, name: &str) -> Result<(RamFid, u64), Errno> {
        let value: &[u8] = match name {
            "" => b"user.test\0",
            "user.test" => b"value",
            _ => return Err(ENODATA),
        };
        let mut reader = self.fid(fid.ino);
        reader.xattr = Some(value.to_vec());
        Ok((reader, value.len() as u64))
    }
}
