//! The client's file operations, each written once for both dialects where the two have the
//! same meaning (intro(5) and its siblings for 9P2000; diod's `protocol.md` for 9P2000.L).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;

use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

use super::rpc::{Pending, Reply};
use super::{Client, Fid, FidOwner};
use crate::codec::{
    dm, encode_twrite_header, getattr, open_mode, qid_type, Attr, DirentIter, Qid, Rmessage, Stat,
    StatIter, Tmessage, IOHDRSZ, MAXWELEM, NOFID, TWRITE_HEADER_LEN,
};
use crate::errno::{Errno, EINVAL, EIO, ENOENT, EPROTO, EXDEV};
use crate::transport::Transport;

/// Linux `open(2)` access mode mask and the flags the 9P2000 translation understands.
const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_TRUNC: u32 = 0o1000;
/// Linux `st_mode` file types.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// A file's description in the words both dialects share (from `Rgetattr` or `Rstat`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// The last path element (empty from 9P2000.L `Tgetattr`, which does not carry names).
    pub name: String,
    /// The file's qid.
    pub qid: Qid,
    /// Linux `st_mode`: file type and permission bits (translated from 9P2000's `DM` bits).
    pub mode: u32,
    /// Length in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Hard links (1 under 9P2000, which does not say).
    pub nlink: u64,
    /// Owner: a name under 9P2000, the number in decimal under 9P2000.L.
    pub uid: String,
    /// Group, likewise.
    pub gid: String,
}

impl FileInfo {
    /// Whether it describes a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == S_IFDIR
    }

    fn from_attr(attr: &Attr) -> FileInfo {
        FileInfo {
            name: String::new(),
            qid: attr.qid,
            mode: attr.mode,
            size: attr.size,
            mtime: attr.mtime_sec,
            nlink: attr.nlink,
            uid: attr.uid.to_string(),
            gid: attr.gid.to_string(),
        }
    }

    fn from_stat(stat: &Stat<'_>) -> FileInfo {
        let kind = if stat.mode & dm::DMDIR != 0 {
            S_IFDIR
        } else if stat.qid.ty & qid_type::QTSYMLINK != 0 {
            S_IFLNK
        } else {
            S_IFREG
        };
        FileInfo {
            name: stat.name.to_string(),
            qid: stat.qid,
            mode: kind | (stat.mode & 0o777),
            size: stat.length,
            mtime: u64::from(stat.mtime),
            nlink: 1,
            uid: stat.uid.to_string(),
            gid: stat.gid.to_string(),
        }
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// The entry's qid.
    pub qid: Qid,
    /// Linux `d_type` (from `Rreaddir`, or derived from the qid under 9P2000).
    pub dtype: u8,
    /// Where the listing continues after this entry (9P2000.L cookie, 9P2000 byte offset).
    pub offset: u64,
    /// The full description, which 9P2000 directory reads carry and 9P2000.L's do not.
    pub info: Option<FileInfo>,
}

fn dtype_of(qid: &Qid) -> u8 {
    if qid.ty & qid_type::QTDIR != 0 {
        4
    } else if qid.ty & qid_type::QTSYMLINK != 0 {
        10
    } else {
        8
    }
}

/// The Plan 9 open mode for Linux `open(2)` flags (open(5)).
fn plan9_mode(flags: u32) -> u8 {
    let access = match flags & O_ACCMODE {
        O_WRONLY => open_mode::OWRITE,
        O_RDWR => open_mode::ORDWR,
        _ => open_mode::OREAD,
    };
    if flags & O_TRUNC != 0 {
        access | open_mode::OTRUNC
    } else {
        access
    }
}

/// A 9P2000 `Twstat` stat that changes nothing (stat(5): `~0` and empty strings) but the name.
fn rename_stat(name: &str) -> Stat<'_> {
    Stat {
        ty: !0,
        dev: !0,
        qid: Qid { ty: !0, version: !0, path: !0 },
        mode: !0,
        atime: !0,
        mtime: !0,
        length: !0,
        name,
        uid: "",
        gid: "",
        muid: "",
    }
}

impl<T: Transport> Client<T> {
    fn owned_fid(&self, id: u32, qid: Qid) -> Fid {
        let inner: Rc<dyn FidOwner> = self.inner.clone();
        Fid {
            id,
            qid: Cell::new(qid),
            iounit: Cell::new(0),
            armed: Cell::new(true),
            owner: Rc::downgrade(&inner),
        }
    }

    async fn call(&self, msg: &Tmessage<'_>) -> Result<Reply, Errno> {
        Pending::start(&self.inner, msg, None)?.await
    }

    /// A request that makes fid `newfid`: on any failure the number is released.
    async fn call_making(&self, msg: &Tmessage<'_>, newfid: u32) -> Result<Reply, Errno> {
        let result = match Pending::start(&self.inner, msg, Some(newfid)) {
            Ok(pending) => pending.await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.inner.release_fid(newfid);
        }
        result
    }

    /// The most payload bytes one read or write of `fid` carries.
    fn io_unit(&self, fid: &Fid) -> u32 {
        let max = self.inner.msize - IOHDRSZ;
        match fid.iounit() {
            0 => max,
            unit => unit.min(max),
        }
    }

    /// Attaches to the tree `aname` as the configured user (attach(5)) and returns its root.
    pub async fn attach(&self, aname: &str) -> Result<Fid, Errno> {
        let config = &self.inner.config;
        let n_uname = match self.inner.dialect {
            crate::codec::Dialect::P2000 => None,
            crate::codec::Dialect::P2000L => Some(config.n_uname),
        };
        let fid = self.inner.alloc_fid()?;
        let msg = Tmessage::Attach { fid, afid: NOFID, uname: &config.uname, aname, n_uname };
        match self.call_making(&msg, fid).await?.message()? {
            Rmessage::Attach { qid } => Ok(self.owned_fid(fid, qid)),
            _ => {
                self.inner.release_fid(fid);
                Err(EPROTO)
            }
        }
    }

    /// Walks from `fid` along `names` to a new fid (walk(5)); no names clones `fid`. More than
    /// [`MAXWELEM`] names take several `Twalk`s. A walk that stops early is `ENOENT`.
    pub async fn walk(&self, fid: &Fid, names: &[&str]) -> Result<Fid, Errno> {
        let newfid = self.inner.alloc_fid()?;
        let first = &names[..names.len().min(MAXWELEM)];
        let walked = self.walk_once(fid.id, newfid, first).await?;
        let new = self.owned_fid(newfid, walked.unwrap_or(fid.qid()));
        for chunk in names[first.len()..].chunks(MAXWELEM) {
            // From here on the walk moves `newfid` itself; if it fails, `new` is clunked.
            if let Some(qid) = self.walk_once(newfid, newfid, chunk).await? {
                new.qid.set(qid);
            }
        }
        Ok(new)
    }

    /// One `Twalk` of at most [`MAXWELEM`] names; the qid of the last name walked.
    async fn walk_once(&self, fid: u32, newfid: u32, names: &[&str]) -> Result<Option<Qid>, Errno> {
        let list = crate::codec::WalkList::from_slice(names).ok_or(EINVAL)?;
        let msg = Tmessage::Walk { fid, newfid, names: list };
        let reply = if fid == newfid {
            self.call(&msg).await?
        } else {
            self.call_making(&msg, newfid).await?
        };
        match reply.message()? {
            Rmessage::Walk { qids } if qids.len() == names.len() => Ok(qids.last().copied()),
            Rmessage::Walk { .. } => {
                // A partial walk makes no fid (walk(5)).
                if fid != newfid {
                    self.inner.release_fid(newfid);
                }
                Err(ENOENT)
            }
            _ => {
                if fid != newfid {
                    // The server said something else; forget the fid in case it exists.
                    self.inner.send_detached_clunk(newfid);
                }
                Err(EPROTO)
            }
        }
    }

    /// Walks a `/`-separated path (empty elements ignored).
    pub async fn walk_path(&self, fid: &Fid, path: &str) -> Result<Fid, Errno> {
        let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.walk(fid, &names).await
    }

    /// Opens `fid` with Linux `open(2)` flags (`Tlopen`; under 9P2000 `Topen` with the access
    /// mode and `O_TRUNC` translated). Records the `iounit`. Returns the file's qid.
    pub async fn open(&self, fid: &Fid, flags: u32) -> Result<Qid, Errno> {
        let msg = match self.inner.dialect {
            crate::codec::Dialect::P2000L => Tmessage::Lopen { fid: fid.id, flags },
            crate::codec::Dialect::P2000 => Tmessage::Open { fid: fid.id, mode: plan9_mode(flags) },
        };
        match self.call(&msg).await?.message()? {
            Rmessage::Lopen { qid, iounit } | Rmessage::Open { qid, iounit } => {
                fid.iounit.set(iounit);
                Ok(qid)
            }
            _ => Err(EPROTO),
        }
    }

    /// Creates `name` in directory `dir` and opens it with `flags`; `mode` is its permission
    /// bits. Returns a new open fid for the file; `dir` still names the directory.
    pub async fn create(&self, dir: &Fid, name: &str, flags: u32, mode: u32) -> Result<Fid, Errno> {
        let file = self.walk(dir, &[]).await?;
        let msg = match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                Tmessage::Lcreate { fid: file.id, name, flags, mode, gid: self.inner.config.gid }
            }
            crate::codec::Dialect::P2000 => {
                Tmessage::Create { fid: file.id, name, perm: mode & 0o777, mode: plan9_mode(flags) }
            }
        };
        match self.call(&msg).await?.message()? {
            Rmessage::Lcreate { qid, iounit } | Rmessage::Create { qid, iounit } => {
                file.iounit.set(iounit);
                file.qid.set(qid);
                Ok(file)
            }
            _ => Err(EPROTO),
        }
    }

    /// One `Tread` of at most `count` bytes (clamped to the fid's unit) at `offset`; the data is
    /// a slice of the reply, not a copy. An empty buffer means end of file.
    pub async fn read(&self, fid: &Fid, offset: u64, count: u32) -> Result<SharedIoBuf, Errno> {
        let count = count.min(self.io_unit(fid));
        self.call(&Tmessage::Read { fid: fid.id, offset, count }).await?.payload()
    }

    /// Reads from `offset` to the end of the file, pipelining up to
    /// [`window`](super::ClientConfig::window) reads, and hands each piece to `sink` in order.
    /// Meant for files whose reads at increasing offsets are independent (not streams such as
    /// a console). Returns the bytes read.
    pub async fn read_to_sink(
        &self,
        fid: &Fid,
        offset: u64,
        sink: &mut dyn FnMut(SharedIoBuf) -> Result<(), Errno>,
    ) -> Result<u64, Errno> {
        let unit = self.io_unit(fid);
        let window = self.inner.config.window.max(1);
        let mut next = offset;
        let mut total = 0u64;
        let mut in_flight: VecDeque<(u64, Pending<T>)> = VecDeque::new();
        loop {
            while in_flight.len() < window {
                let msg = Tmessage::Read { fid: fid.id, offset: next, count: unit };
                in_flight.push_back((next, Pending::start(&self.inner, &msg, None)?));
                next += u64::from(unit);
            }
            let Some((at, pending)) = in_flight.pop_front() else { break };
            let data = pending.await?.payload()?;
            let len = data.len() as u64;
            if len == 0 {
                break;
            }
            total += len;
            sink(data)?;
            if len < u64::from(unit) {
                // A short read: what was asked beyond it is re-asked from its end.
                in_flight.clear();
                next = at + len;
            }
        }
        Ok(total)
    }

    /// Reads the whole file from offset 0 into a vector (see [`Client::read_to_sink`]).
    pub async fn read_to_end(&self, fid: &Fid) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        self.read_to_sink(fid, 0, &mut |piece| {
            out.extend_from_slice(&piece);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Builds a `Twrite` of `data` at `offset`: the payload copied once into a buffer (from the
    /// buffer source if there is one) with the header written into its headroom in front.
    fn start_write(&self, fid: u32, offset: u64, data: &[u8]) -> Result<Pending<T>, Errno> {
        let inner = &self.inner;
        let msize = inner.msize;
        let mut buf = inner
            .buffers
            .borrow()
            .as_ref()
            .and_then(|source| source(TWRITE_HEADER_LEN, data.len()))
            .unwrap_or_else(|| IoBuf::with_headroom(TWRITE_HEADER_LEN, data.len()));
        buf.try_extend_from_slice(data).map_err(|_| EIO)?;
        Pending::start_built(inner, move |tag| {
            let mut header = Vec::with_capacity(TWRITE_HEADER_LEN);
            encode_twrite_header(tag, fid, offset, data.len() as u32, msize, &mut header)
                .map_err(|_| super::EMSGSIZE)?;
            buf.retreat(TWRITE_HEADER_LEN).map_err(|_| EIO)?;
            buf.as_mut_slice()[..TWRITE_HEADER_LEN].copy_from_slice(&header);
            Ok(IoBufChain::from(buf.freeze()))
        })
    }

    /// One `Twrite` of at most one unit of `data` at `offset`; returns the bytes written.
    pub async fn write(&self, fid: &Fid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let n = data.len().min(self.io_unit(fid) as usize);
        match self.start_write(fid.id, offset, &data[..n])?.await?.message()? {
            Rmessage::Write { count } => Ok(count),
            _ => Err(EPROTO),
        }
    }

    /// One `Twrite` of `data`, which is sent as it is (no copy): a header buffer chained in
    /// front of it. `data` must fit one message.
    pub async fn write_buf(&self, fid: &Fid, offset: u64, data: SharedIoBuf) -> Result<u32, Errno> {
        let count = u32::try_from(data.len()).map_err(|_| super::EMSGSIZE)?;
        let msize = self.inner.msize;
        let id = fid.id;
        let pending = Pending::start_built(&self.inner, move |tag| {
            let mut header = Vec::with_capacity(TWRITE_HEADER_LEN);
            encode_twrite_header(tag, id, offset, count, msize, &mut header)
                .map_err(|_| super::EMSGSIZE)?;
            let mut chain = IoBufChain::from(SharedIoBuf::from_vec(header));
            chain.push_back(data);
            Ok(chain)
        })?;
        match pending.await?.message()? {
            Rmessage::Write { count } => Ok(count),
            _ => Err(EPROTO),
        }
    }

    /// Writes all of `data` at `offset`, split by the fid's unit with up to
    /// [`window`](super::ClientConfig::window) writes in flight. A short write is resumed from
    /// where it stopped; a write of nothing is `EIO`.
    pub async fn write_all(&self, fid: &Fid, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let unit = self.io_unit(fid) as usize;
        let window = self.inner.config.window.max(1);
        let mut pos = 0usize;
        let mut in_flight: VecDeque<(usize, usize, Pending<T>)> = VecDeque::new();
        while pos < data.len() || !in_flight.is_empty() {
            while pos < data.len() && in_flight.len() < window {
                let n = unit.min(data.len() - pos);
                let pending = self.start_write(fid.id, offset + pos as u64, &data[pos..pos + n])?;
                in_flight.push_back((pos, n, pending));
                pos += n;
            }
            let Some((at, n, pending)) = in_flight.pop_front() else { break };
            let count = match pending.await?.message()? {
                Rmessage::Write { count } => count as usize,
                _ => return Err(EPROTO),
            };
            if count == 0 {
                return Err(EIO);
            }
            if count < n {
                in_flight.clear();
                pos = at + count;
            }
        }
        Ok(())
    }

    /// Lists an open directory: `Treaddir` under 9P2000.L, reads of stat structures under
    /// 9P2000 (read(5)).
    pub async fn readdir(&self, dir: &Fid) -> Result<Vec<DirEntry>, Errno> {
        let mut entries = Vec::new();
        let mut offset = 0u64;
        // Linux asks for msize - IOHDRSZ, and diod refuses more.
        let count = self.io_unit(dir);
        loop {
            let data = match self.inner.dialect {
                crate::codec::Dialect::P2000L => {
                    self.call(&Tmessage::Readdir { fid: dir.id, offset, count }).await?.payload()?
                }
                crate::codec::Dialect::P2000 => self.read(dir, offset, count).await?,
            };
            if data.is_empty() {
                return Ok(entries);
            }
            match self.inner.dialect {
                crate::codec::Dialect::P2000L => {
                    for entry in DirentIter::new(&data) {
                        let entry = entry.map_err(|_| EPROTO)?;
                        offset = entry.offset;
                        entries.push(DirEntry {
                            name: entry.name.to_string(),
                            qid: entry.qid,
                            dtype: entry.ty,
                            offset: entry.offset,
                            info: None,
                        });
                    }
                }
                crate::codec::Dialect::P2000 => {
                    let mut at = offset;
                    for stat in StatIter::new(&data) {
                        let stat = stat.map_err(|_| EPROTO)?;
                        at += stat.wire_len() as u64;
                        entries.push(DirEntry {
                            name: stat.name.to_string(),
                            qid: stat.qid,
                            dtype: dtype_of(&stat.qid),
                            offset: at,
                            info: Some(FileInfo::from_stat(&stat)),
                        });
                    }
                    offset += data.len() as u64;
                }
            }
        }
    }

    /// Describes the file `fid` names (`Tgetattr` of the basic fields, or `Tstat`).
    pub async fn stat(&self, fid: &Fid) -> Result<FileInfo, Errno> {
        match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                let msg = Tmessage::Getattr { fid: fid.id, request_mask: getattr::BASIC };
                match self.call(&msg).await?.message()? {
                    Rmessage::Getattr { attr } => Ok(FileInfo::from_attr(&attr)),
                    _ => Err(EPROTO),
                }
            }
            crate::codec::Dialect::P2000 => {
                match self.call(&Tmessage::Stat { fid: fid.id }).await?.message()? {
                    Rmessage::Stat { stat } => Ok(FileInfo::from_stat(&stat)),
                    _ => Err(EPROTO),
                }
            }
        }
    }

    /// Makes directory `name` in `dir` with permission bits `mode` (`Tmkdir`, or a 9P2000
    /// `Tcreate` with `DMDIR`).
    pub async fn mkdir(&self, dir: &Fid, name: &str, mode: u32) -> Result<Qid, Errno> {
        match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                let msg = Tmessage::Mkdir { dfid: dir.id, name, mode, gid: self.inner.config.gid };
                match self.call(&msg).await?.message()? {
                    Rmessage::Mkdir { qid } => Ok(qid),
                    _ => Err(EPROTO),
                }
            }
            crate::codec::Dialect::P2000 => {
                let made = self.walk(dir, &[]).await?;
                let msg = Tmessage::Create {
                    fid: made.id,
                    name,
                    perm: dm::DMDIR | (mode & 0o777),
                    mode: open_mode::OREAD,
                };
                let qid = match self.call(&msg).await?.message()? {
                    Rmessage::Create { qid, .. } => qid,
                    _ => return Err(EPROTO),
                };
                self.clunk(made).await?;
                Ok(qid)
            }
        }
    }

    /// Removes the file `fid` names (remove(5)); the fid is gone afterwards either way.
    pub async fn remove(&self, fid: Fid) -> Result<(), Errno> {
        fid.disarm();
        let result = self.call(&Tmessage::Remove { fid: fid.id }).await;
        // remove(5): the fid is clunked even if the remove fails; a failed connection cannot
        // be asked again, so the number is released in every case.
        self.inner.release_fid(fid.id);
        result.map(drop)
    }

    /// Removes `name` from directory `dir` (`Tunlinkat` with Linux `flags`, `AT_REMOVEDIR` =
    /// 0x200 for a directory; a walk and a `Tremove` under 9P2000 or when the server does not
    /// know `Tunlinkat`).
    pub async fn unlinkat(&self, dir: &Fid, name: &str, flags: u32) -> Result<(), Errno> {
        match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                match self.call(&Tmessage::Unlinkat { dirfd: dir.id, name, flags }).await {
                    // Servers without Tunlinkat (diod 1.0) get a walk and a Tremove, as the
                    // Linux v9fs client does.
                    Err(crate::errno::EOPNOTSUPP) => {
                        let target = self.walk(dir, &[name]).await?;
                        self.remove(target).await
                    }
                    other => other.map(drop),
                }
            }
            crate::codec::Dialect::P2000 => {
                let target = self.walk(dir, &[name]).await?;
                self.remove(target).await
            }
        }
    }

    /// Moves the file `fid` names into directory `newdir` as `name` (`Trename`). Under 9P2000
    /// only a rename within the same directory exists (a `Twstat` of the name), so `newdir`
    /// must be the file's directory; the caller knows it, the protocol does not check it.
    pub async fn rename(&self, fid: &Fid, newdir: &Fid, name: &str) -> Result<(), Errno> {
        let msg = match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                Tmessage::Rename { fid: fid.id, dfid: newdir.id, name }
            }
            crate::codec::Dialect::P2000 => {
                Tmessage::Wstat { fid: fid.id, stat: rename_stat(name) }
            }
        };
        self.call(&msg).await.map(drop)
    }

    /// Renames `oldname` in `olddir` to `newname` in `newdir` (`Trenameat`, or a walk and a
    /// `Trename` when the server does not know `Trenameat`; under 9P2000 a walk and a `Twstat`,
    /// for which the two directories must be the same: else `EXDEV`).
    pub async fn renameat(
        &self,
        olddir: &Fid,
        oldname: &str,
        newdir: &Fid,
        newname: &str,
    ) -> Result<(), Errno> {
        match self.inner.dialect {
            crate::codec::Dialect::P2000L => {
                let msg = Tmessage::Renameat {
                    olddirfid: olddir.id,
                    oldname,
                    newdirfid: newdir.id,
                    newname,
                };
                match self.call(&msg).await {
                    // Servers without Trenameat (diod 1.0) get a walk and a Trename, as the
                    // Linux v9fs client does.
                    Err(crate::errno::EOPNOTSUPP) => {
                        let file = self.walk(olddir, &[oldname]).await?;
                        let result = self.rename(&file, newdir, newname).await;
                        self.clunk(file).await?;
                        result
                    }
                    other => other.map(drop),
                }
            }
            crate::codec::Dialect::P2000 => {
                if olddir.qid().path != newdir.qid().path {
                    return Err(EXDEV);
                }
                let file = self.walk(olddir, &[oldname]).await?;
                let result = self.rename(&file, newdir, newname).await;
                self.clunk(file).await?;
                result
            }
        }
    }

    /// Flushes a file to stable storage (`Tfsync`, 9P2000.L only).
    pub async fn fsync(&self, fid: &Fid) -> Result<(), Errno> {
        self.call(&Tmessage::Fsync { fid: fid.id, datasync: 0 }).await.map(drop)
    }

    /// Forgets `fid` (clunk(5)) and waits for the `Rclunk`; the number is free afterwards.
    pub async fn clunk(&self, fid: Fid) -> Result<(), Errno> {
        fid.disarm();
        let result = self.call(&Tmessage::Clunk { fid: fid.id }).await;
        self.inner.release_fid(fid.id);
        result.map(drop)
    }
}
