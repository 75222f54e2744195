//! Encoding: a [`Tmessage`] or [`Rmessage`] to its wire form, appended to a `Vec<u8>`.
//!
//! The size field is written last, once the body's length is known. A message that would not
//! fit in `msize`, or a string longer than 65535 bytes, is an [`EncodeError`], and the vector
//! is left as it was.

use alloc::vec::Vec;

use super::message::{Rmessage, Tmessage};
use super::types::{
    mtype, Dirent, Flock, Qid, Stat, HEADER_LEN, RREAD_HEADER_LEN, TWRITE_HEADER_LEN,
};
use super::{type_in_dialect, Dialect, EncodeError};

/// Appends the fields of one message to `out`.
struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        let len =
            u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong { len: s.len() })?;
        self.u16(len);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// `count[4]` then the bytes; `room` is how many more bytes the message may take.
    fn data(&mut self, data: &[u8], room: usize, msize: u32) -> Result<(), EncodeError> {
        let count = u32::try_from(data.len())
            .ok()
            .filter(|_| data.len().saturating_add(4) <= room)
            .ok_or(EncodeError::TooLarge { size: data.len().saturating_add(4), msize })?;
        self.u32(count);
        self.out.extend_from_slice(data);
        Ok(())
    }

    fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }

    fn stat(&mut self, s: &Stat<'_>) -> Result<(), EncodeError> {
        let body = u16::try_from(s.body_len())
            .map_err(|_| EncodeError::StringTooLong { len: s.body_len() })?;
        self.u16(body);
        self.u16(s.ty);
        self.u32(s.dev);
        self.qid(&s.qid);
        self.u32(s.mode);
        self.u32(s.atime);
        self.u32(s.mtime);
        self.u64(s.length);
        self.str(s.name)?;
        self.str(s.uid)?;
        self.str(s.gid)?;
        self.str(s.muid)
    }

    /// `stat[n]`: `n[2]`, then the stat with its own size.
    fn nested_stat(&mut self, s: &Stat<'_>) -> Result<(), EncodeError> {
        let n = u16::try_from(s.wire_len())
            .map_err(|_| EncodeError::StringTooLong { len: s.wire_len() })?;
        self.u16(n);
        self.stat(s)
    }

    fn flock_tail(&mut self, l: &Flock<'_>) -> Result<(), EncodeError> {
        self.u64(l.start);
        self.u64(l.length);
        self.u32(l.proc_id);
        self.str(l.client_id)
    }
}

/// Writes a message around `body`: header with a placeholder size, the body, then the size.
/// On any error `out` is truncated back to where it was.
fn frame(
    out: &mut Vec<u8>,
    ty: u8,
    tag: u16,
    dialect: Dialect,
    msize: u32,
    body: impl FnOnce(&mut Writer<'_>, usize) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    if type_in_dialect(ty, dialect) != Some(true) {
        return Err(EncodeError::WrongDialect { ty, dialect });
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    let room = usize::try_from(msize).unwrap_or(usize::MAX).saturating_sub(HEADER_LEN);
    let written = body(&mut Writer { out: &mut *out }, room);
    let result = written.and_then(|()| {
        let len = out.len() - start;
        match u32::try_from(len) {
            Ok(size) if size <= msize => Ok(size),
            _ => Err(EncodeError::TooLarge { size: len, msize }),
        }
    });
    match result {
        Ok(size) => {
            out[start..start + 4].copy_from_slice(&size.to_le_bytes());
            Ok(out.len() - start)
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn n_uname(w: &mut Writer<'_>, n: Option<u32>, dialect: Dialect) -> Result<(), EncodeError> {
    match (dialect, n) {
        (Dialect::P2000, None) => Ok(()),
        (Dialect::P2000L, Some(n)) => {
            w.u32(n);
            Ok(())
        }
        _ => Err(EncodeError::NumericUser { dialect }),
    }
}

/// Appends request `msg` with `tag` to `out`, as a connection speaking `dialect` with message
/// size `msize` sends it. Returns the bytes appended.
///
/// A `Tversion` encodes under either dialect; any other message must belong to `dialect`.
pub fn encode_tmessage(
    tag: u16,
    msg: &Tmessage<'_>,
    dialect: Dialect,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let ty = msg.msg_type();
    frame(out, ty, tag, dialect, msize, |w, room| {
        match *msg {
            Tmessage::Version { msize, version } => {
                w.u32(msize);
                w.str(version)?;
            }
            Tmessage::Auth { afid, uname, aname, n_uname: n } => {
                w.u32(afid);
                w.str(uname)?;
                w.str(aname)?;
                n_uname(w, n, dialect)?;
            }
            Tmessage::Attach { fid, afid, uname, aname, n_uname: n } => {
                w.u32(fid);
                w.u32(afid);
                w.str(uname)?;
                w.str(aname)?;
                n_uname(w, n, dialect)?;
            }
            Tmessage::Flush { oldtag } => w.u16(oldtag),
            Tmessage::Walk { fid, newfid, ref names } => {
                w.u32(fid);
                w.u32(newfid);
                // A WalkList holds at most MAXWELEM (16) names.
                w.u16(names.len() as u16);
                for name in names.iter() {
                    w.str(name)?;
                }
            }
            Tmessage::Open { fid, mode } => {
                w.u32(fid);
                w.u8(mode);
            }
            Tmessage::Create { fid, name, perm, mode } => {
                w.u32(fid);
                w.str(name)?;
                w.u32(perm);
                w.u8(mode);
            }
            Tmessage::Read { fid, offset, count } | Tmessage::Readdir { fid, offset, count } => {
                w.u32(fid);
                w.u64(offset);
                w.u32(count);
            }
            Tmessage::Write { fid, offset, data } => {
                w.u32(fid);
                w.u64(offset);
                w.data(data, room.saturating_sub(12), msize)?;
            }
            Tmessage::Clunk { fid }
            | Tmessage::Remove { fid }
            | Tmessage::Stat { fid }
            | Tmessage::Statfs { fid }
            | Tmessage::Readlink { fid } => w.u32(fid),
            Tmessage::Wstat { fid, ref stat } => {
                w.u32(fid);
                w.nested_stat(stat)?;
            }
            Tmessage::Lopen { fid, flags } => {
                w.u32(fid);
                w.u32(flags);
            }
            Tmessage::Lcreate { fid, name, flags, mode, gid } => {
                w.u32(fid);
                w.str(name)?;
                w.u32(flags);
                w.u32(mode);
                w.u32(gid);
            }
            Tmessage::Symlink { fid, name, symtgt, gid } => {
                w.u32(fid);
                w.str(name)?;
                w.str(symtgt)?;
                w.u32(gid);
            }
            Tmessage::Mknod { dfid, name, mode, major, minor, gid } => {
                w.u32(dfid);
                w.str(name)?;
                w.u32(mode);
                w.u32(major);
                w.u32(minor);
                w.u32(gid);
            }
            Tmessage::Rename { fid, dfid, name } => {
                w.u32(fid);
                w.u32(dfid);
                w.str(name)?;
            }
            Tmessage::Getattr { fid, request_mask } => {
                w.u32(fid);
                w.u64(request_mask);
            }
            Tmessage::Setattr { fid, ref attr } => {
                w.u32(fid);
                w.u32(attr.valid);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                w.u64(attr.size);
                w.u64(attr.atime_sec);
                w.u64(attr.atime_nsec);
                w.u64(attr.mtime_sec);
                w.u64(attr.mtime_nsec);
            }
            Tmessage::Xattrwalk { fid, newfid, name } => {
                w.u32(fid);
                w.u32(newfid);
                w.str(name)?;
            }
            Tmessage::Xattrcreate { fid, name, attr_size, flags } => {
                w.u32(fid);
                w.str(name)?;
                w.u64(attr_size);
                w.u32(flags);
            }
            Tmessage::Fsync { fid, datasync } => {
                w.u32(fid);
                w.u32(datasync);
            }
            Tmessage::Lock { fid, flags, ref lock } => {
                w.u32(fid);
                w.u8(lock.ty);
                w.u32(flags);
                w.flock_tail(lock)?;
            }
            Tmessage::Getlock { fid, ref lock } => {
                w.u32(fid);
                w.u8(lock.ty);
                w.flock_tail(lock)?;
            }
            Tmessage::Link { dfid, fid, name } => {
                w.u32(dfid);
                w.u32(fid);
                w.str(name)?;
            }
            Tmessage::Mkdir { dfid, name, mode, gid } => {
                w.u32(dfid);
                w.str(name)?;
                w.u32(mode);
                w.u32(gid);
            }
            Tmessage::Renameat { olddirfid, oldname, newdirfid, newname } => {
                w.u32(olddirfid);
                w.str(oldname)?;
                w.u32(newdirfid);
                w.str(newname)?;
            }
            Tmessage::Unlinkat { dirfd, name, flags } => {
                w.u32(dirfd);
                w.str(name)?;
                w.u32(flags);
            }
        }
        Ok(())
    })
}

/// Appends reply `msg` with `tag` to `out`, as a connection speaking `dialect` with message
/// size `msize` sends it. Returns the bytes appended.
///
/// An `Rversion` encodes under either dialect; any other message must belong to `dialect`
/// (so an error is `Rerror` under 9P2000 and `Rlerror` under 9P2000.L; see
/// [`Dialect::error_reply`]).
pub fn encode_rmessage(
    tag: u16,
    msg: &Rmessage<'_>,
    dialect: Dialect,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let ty = msg.msg_type();
    frame(out, ty, tag, dialect, msize, |w, room| {
        match *msg {
            Rmessage::Version { msize, version } => {
                w.u32(msize);
                w.str(version)?;
            }
            Rmessage::Auth { aqid: ref qid }
            | Rmessage::Attach { ref qid }
            | Rmessage::Symlink { ref qid }
            | Rmessage::Mknod { ref qid }
            | Rmessage::Mkdir { ref qid } => w.qid(qid),
            Rmessage::Error { ename } => w.str(ename)?,
            Rmessage::Lerror { ecode } => w.u32(ecode),
            Rmessage::Flush
            | Rmessage::Clunk
            | Rmessage::Remove
            | Rmessage::Wstat
            | Rmessage::Rename
            | Rmessage::Setattr
            | Rmessage::Xattrcreate
            | Rmessage::Fsync
            | Rmessage::Link
            | Rmessage::Renameat
            | Rmessage::Unlinkat => {}
            Rmessage::Walk { ref qids } => {
                // A WalkList holds at most MAXWELEM (16) qids.
                w.u16(qids.len() as u16);
                for qid in qids.iter() {
                    w.qid(qid);
                }
            }
            Rmessage::Open { ref qid, iounit }
            | Rmessage::Create { ref qid, iounit }
            | Rmessage::Lopen { ref qid, iounit }
            | Rmessage::Lcreate { ref qid, iounit } => {
                w.qid(qid);
                w.u32(iounit);
            }
            Rmessage::Read { data } | Rmessage::Readdir { data } => w.data(data, room, msize)?,
            Rmessage::Write { count } => w.u32(count),
            Rmessage::Stat { ref stat } => w.nested_stat(stat)?,
            Rmessage::Statfs { ref statfs } => {
                w.u32(statfs.ty);
                w.u32(statfs.bsize);
                w.u64(statfs.blocks);
                w.u64(statfs.bfree);
                w.u64(statfs.bavail);
                w.u64(statfs.files);
                w.u64(statfs.ffree);
                w.u64(statfs.fsid);
                w.u32(statfs.namelen);
            }
            Rmessage::Readlink { target } => w.str(target)?,
            Rmessage::Getattr { ref attr } => {
                w.u64(attr.valid);
                w.qid(&attr.qid);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                for v in [
                    attr.nlink,
                    attr.rdev,
                    attr.size,
                    attr.blksize,
                    attr.blocks,
                    attr.atime_sec,
                    attr.atime_nsec,
                    attr.mtime_sec,
                    attr.mtime_nsec,
                    attr.ctime_sec,
                    attr.ctime_nsec,
                    attr.btime_sec,
                    attr.btime_nsec,
                    attr.gen,
                    attr.data_version,
                ] {
                    w.u64(v);
                }
            }
            Rmessage::Xattrwalk { size } => w.u64(size),
            Rmessage::Lock { status } => w.u8(status),
            Rmessage::Getlock { ref lock } => {
                w.u8(lock.ty);
                w.flock_tail(lock)?;
            }
        }
        Ok(())
    })
}

/// Appends the header of a payload-carrying message (`Rread`, `Rreaddir`): size, type, tag,
/// count, where the size covers `count` payload bytes the caller sends next.
fn payload_header(
    ty: u8,
    tag: u16,
    count: u32,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let size = RREAD_HEADER_LEN as u64 + u64::from(count);
    if size > u64::from(msize) {
        return Err(EncodeError::TooLarge { size: size as usize, msize });
    }
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    Ok(RREAD_HEADER_LEN)
}

/// Appends the [`RREAD_HEADER_LEN`] bytes that start an `Rread` carrying `count` bytes,
/// without the payload: the server sends those bytes next (chained as their own `IoBuf`), so a
/// read reply costs no copy. Fails if the whole message would exceed `msize`.
pub fn encode_rread_header(
    tag: u16,
    count: u32,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    payload_header(mtype::RREAD, tag, count, msize, out)
}

/// As [`encode_rread_header`], for an `Rreaddir` (9P2000.L) whose `count` bytes of packed
/// entries (see [`encode_dirent`]) follow.
pub fn encode_rreaddir_header(
    tag: u16,
    count: u32,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    payload_header(mtype::RREADDIR, tag, count, msize, out)
}

/// Appends the [`TWRITE_HEADER_LEN`] bytes that start a `Twrite` of `count` bytes at `offset`
/// through `fid`, without the payload, which the client sends next. Fails if the whole
/// message would exceed `msize`.
pub fn encode_twrite_header(
    tag: u16,
    fid: u32,
    offset: u64,
    count: u32,
    msize: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let size = TWRITE_HEADER_LEN as u64 + u64::from(count);
    if size > u64::from(msize) {
        return Err(EncodeError::TooLarge { size: size as usize, msize });
    }
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.push(mtype::TWRITE);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&fid.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    Ok(TWRITE_HEADER_LEN)
}

/// Appends one 9P2000 stat structure (its own `size[2]` first), as the payload of an `Rread` of
/// a directory packs them.
pub fn encode_stat(stat: &Stat<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let start = out.len();
    let result = Writer { out }.stat(stat);
    match result {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Appends one directory entry as the payload of an `Rreaddir` (9P2000.L) packs them.
pub fn encode_dirent(entry: &Dirent<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let start = out.len();
    let mut w = Writer { out };
    w.qid(&entry.qid);
    w.u64(entry.offset);
    w.u8(entry.ty);
    let result = w.str(entry.name);
    match result {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}
