//! Decoding: bytes of one message to a [`Tmessage`] or [`Rmessage`] that borrows from them.
//!
//! Every read goes through [`Reader`], whose accessors check the bytes remaining first, so no
//! input can make a decoder index out of bounds or panic.

use super::message::{Rmessage, Tmessage};
use super::types::{
    mtype, Attr, Dirent, Flock, Qid, SetAttr, Stat, StatFs, WalkList, HEADER_LEN, MAXWELEM,
};
use super::{type_in_dialect, DecodeError, Dialect};

/// A bounds-checked cursor over the body of one message.
struct Reader<'a> {
    buf: &'a [u8],
    ty: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::FieldOverrun { ty: self.ty });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u16()?;
        let bytes = self.take(usize::from(len))?;
        core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { ty: self.ty })
    }

    /// `count[4]` then that many bytes, borrowed.
    fn data(&mut self) -> Result<&'a [u8], DecodeError> {
        let count = self.u32()?;
        let count =
            usize::try_from(count).map_err(|_| DecodeError::FieldOverrun { ty: self.ty })?;
        self.take(count)
    }

    fn qid(&mut self) -> Result<Qid, DecodeError> {
        Ok(Qid { ty: self.u8()?, version: self.u32()?, path: self.u64()? })
    }

    fn walk_count(&mut self) -> Result<u16, DecodeError> {
        let count = self.u16()?;
        if usize::from(count) > MAXWELEM {
            return Err(DecodeError::TooManyWalkElements { ty: self.ty, count });
        }
        Ok(count)
    }

    /// A stat structure, `size[2]` first, checking that size against the fields.
    fn stat(&mut self) -> Result<Stat<'a>, DecodeError> {
        let size = usize::from(self.u16()?);
        let body = self.take(size).map_err(|_| DecodeError::BadStatSize { ty: self.ty })?;
        let ty = self.ty;
        let mut inner = Reader { buf: body, ty };
        let stat = (|| {
            Ok(Stat {
                ty: inner.u16()?,
                dev: inner.u32()?,
                qid: inner.qid()?,
                mode: inner.u32()?,
                atime: inner.u32()?,
                mtime: inner.u32()?,
                length: inner.u64()?,
                name: inner.str()?,
                uid: inner.str()?,
                gid: inner.str()?,
                muid: inner.str()?,
            })
        })()
        .map_err(|e| match e {
            // The stat's size field says fewer bytes than its fields take.
            DecodeError::FieldOverrun { .. } => DecodeError::BadStatSize { ty },
            other => other,
        })?;
        if !inner.buf.is_empty() {
            return Err(DecodeError::BadStatSize { ty });
        }
        Ok(stat)
    }

    /// `stat[n]` as `Rstat` and `Twstat` carry it: `n[2]` then a stat whose own size is n - 2.
    fn nested_stat(&mut self) -> Result<Stat<'a>, DecodeError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        let mut inner = Reader { buf: bytes, ty: self.ty };
        let stat = inner.stat()?;
        if !inner.buf.is_empty() {
            return Err(DecodeError::BadStatSize { ty: self.ty });
        }
        Ok(stat)
    }

    fn flock(&mut self) -> Result<Flock<'a>, DecodeError> {
        Ok(Flock {
            ty: self.u8()?,
            start: self.u64()?,
            length: self.u64()?,
            proc_id: self.u32()?,
            client_id: self.str()?,
        })
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::ExtraBody { ty: self.ty, extra: self.buf.len() })
        }
    }
}

/// Checks the framing of `buf` (exactly one message, within `msize`) and that its type is part
/// of `dialect`; returns a reader over the body and the tag.
fn open_frame(buf: &[u8], dialect: Dialect, msize: u32) -> Result<(Reader<'_>, u16), DecodeError> {
    let header = super::peek_header(buf)
        .ok_or(DecodeError::Truncated { needed: HEADER_LEN, available: buf.len() })?;
    let size = header.size;
    if size > msize {
        return Err(DecodeError::TooLarge { size, msize });
    }
    // usize is at least 32 bits on every target cairn runs on; saturate otherwise.
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len < HEADER_LEN {
        return Err(DecodeError::SizeTooSmall { size });
    }
    if len > buf.len() {
        return Err(DecodeError::Truncated { needed: len, available: buf.len() });
    }
    if len < buf.len() {
        return Err(DecodeError::TrailingBytes { size, available: buf.len() });
    }
    let ty = header.ty;
    match type_in_dialect(ty, dialect) {
        None => return Err(DecodeError::UnknownType { ty }),
        Some(false) => return Err(DecodeError::WrongDialect { ty, dialect }),
        Some(true) => {}
    }
    Ok((Reader { buf: &buf[HEADER_LEN..], ty }, header.tag))
}

/// Decodes one request from `buf`, which must hold exactly one message (see
/// [`frame_len`](super::frame_len)), of a connection speaking `dialect` with message size
/// `msize`. Returns the tag and the message, which borrows its strings and `Twrite` payload
/// from `buf`.
///
/// A `Tversion` decodes under either dialect (it comes before one is chosen). A reply type is
/// [`DecodeError::UnknownType`].
pub fn decode_tmessage(
    buf: &[u8],
    dialect: Dialect,
    msize: u32,
) -> Result<(u16, Tmessage<'_>), DecodeError> {
    use mtype::*;
    let (mut r, tag) = open_frame(buf, dialect, msize)?;
    let l = dialect == Dialect::P2000L;
    let msg = match r.ty {
        TVERSION => Tmessage::Version { msize: r.u32()?, version: r.str()? },
        TAUTH => Tmessage::Auth {
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
            n_uname: if l { Some(r.u32()?) } else { None },
        },
        TATTACH => Tmessage::Attach {
            fid: r.u32()?,
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
            n_uname: if l { Some(r.u32()?) } else { None },
        },
        TFLUSH => Tmessage::Flush { oldtag: r.u16()? },
        TWALK => {
            let fid = r.u32()?;
            let newfid = r.u32()?;
            let count = r.walk_count()?;
            let mut names = WalkList::new();
            for _ in 0..count {
                // walk_count bounded count by MAXWELEM, so the push cannot fail.
                let _ = names.push(r.str()?);
            }
            Tmessage::Walk { fid, newfid, names }
        }
        TOPEN => Tmessage::Open { fid: r.u32()?, mode: r.u8()? },
        TCREATE => {
            Tmessage::Create { fid: r.u32()?, name: r.str()?, perm: r.u32()?, mode: r.u8()? }
        }
        TREAD => Tmessage::Read { fid: r.u32()?, offset: r.u64()?, count: r.u32()? },
        TWRITE => Tmessage::Write { fid: r.u32()?, offset: r.u64()?, data: r.data()? },
        TCLUNK => Tmessage::Clunk { fid: r.u32()? },
        TREMOVE => Tmessage::Remove { fid: r.u32()? },
        TSTAT => Tmessage::Stat { fid: r.u32()? },
        TWSTAT => Tmessage::Wstat { fid: r.u32()?, stat: r.nested_stat()? },
        TSTATFS => Tmessage::Statfs { fid: r.u32()? },
        TLOPEN => Tmessage::Lopen { fid: r.u32()?, flags: r.u32()? },
        TLCREATE => Tmessage::Lcreate {
            fid: r.u32()?,
            name: r.str()?,
            flags: r.u32()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        TSYMLINK => {
            Tmessage::Symlink { fid: r.u32()?, name: r.str()?, symtgt: r.str()?, gid: r.u32()? }
        }
        TMKNOD => Tmessage::Mknod {
            dfid: r.u32()?,
            name: r.str()?,
            mode: r.u32()?,
            major: r.u32()?,
            minor: r.u32()?,
            gid: r.u32()?,
        },
        TRENAME => Tmessage::Rename { fid: r.u32()?, dfid: r.u32()?, name: r.str()? },
        TREADLINK => Tmessage::Readlink { fid: r.u32()? },
        TGETATTR => Tmessage::Getattr { fid: r.u32()?, request_mask: r.u64()? },
        TSETATTR => Tmessage::Setattr {
            fid: r.u32()?,
            attr: SetAttr {
                valid: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
                atime_sec: r.u64()?,
                atime_nsec: r.u64()?,
                mtime_sec: r.u64()?,
                mtime_nsec: r.u64()?,
            },
        },
        TXATTRWALK => Tmessage::Xattrwalk { fid: r.u32()?, newfid: r.u32()?, name: r.str()? },
        TXATTRCREATE => Tmessage::Xattrcreate {
            fid: r.u32()?,
            name: r.str()?,
            attr_size: r.u64()?,
            flags: r.u32()?,
        },
        TREADDIR => Tmessage::Readdir { fid: r.u32()?, offset: r.u64()?, count: r.u32()? },
        TFSYNC => {
            let fid = r.u32()?;
            // The older layout (diod's protocol.md) has no datasync field.
            let datasync = if r.buf.is_empty() { 0 } else { r.u32()? };
            Tmessage::Fsync { fid, datasync }
        }
        TLOCK => {
            let fid = r.u32()?;
            let ty = r.u8()?;
            let flags = r.u32()?;
            let lock = Flock {
                ty,
                start: r.u64()?,
                length: r.u64()?,
                proc_id: r.u32()?,
                client_id: r.str()?,
            };
            Tmessage::Lock { fid, flags, lock }
        }
        TGETLOCK => Tmessage::Getlock { fid: r.u32()?, lock: r.flock()? },
        TLINK => Tmessage::Link { dfid: r.u32()?, fid: r.u32()?, name: r.str()? },
        TMKDIR => Tmessage::Mkdir { dfid: r.u32()?, name: r.str()?, mode: r.u32()?, gid: r.u32()? },
        TRENAMEAT => Tmessage::Renameat {
            olddirfid: r.u32()?,
            oldname: r.str()?,
            newdirfid: r.u32()?,
            newname: r.str()?,
        },
        TUNLINKAT => Tmessage::Unlinkat { dirfd: r.u32()?, name: r.str()?, flags: r.u32()? },
        ty => return Err(DecodeError::UnknownType { ty }),
    };
    r.finish()?;
    Ok((tag, msg))
}

/// Decodes one reply from `buf`, which must hold exactly one message, of a connection speaking
/// `dialect` with message size `msize`. Returns the tag and the message, which borrows its
/// strings and `Rread`/`Rreaddir` payload from `buf`.
///
/// An `Rversion` decodes under either dialect. A request type is
/// [`DecodeError::UnknownType`].
pub fn decode_rmessage(
    buf: &[u8],
    dialect: Dialect,
    msize: u32,
) -> Result<(u16, Rmessage<'_>), DecodeError> {
    use mtype::*;
    let (mut r, tag) = open_frame(buf, dialect, msize)?;
    let msg = match r.ty {
        RVERSION => Rmessage::Version { msize: r.u32()?, version: r.str()? },
        RAUTH => Rmessage::Auth { aqid: r.qid()? },
        RATTACH => Rmessage::Attach { qid: r.qid()? },
        RERROR => Rmessage::Error { ename: r.str()? },
        RLERROR => Rmessage::Lerror { ecode: r.u32()? },
        RFLUSH => Rmessage::Flush,
        RWALK => {
            let count = r.walk_count()?;
            let mut qids = WalkList::new();
            for _ in 0..count {
                // walk_count bounded count by MAXWELEM, so the push cannot fail.
                let _ = qids.push(r.qid()?);
            }
            Rmessage::Walk { qids }
        }
        ROPEN => Rmessage::Open { qid: r.qid()?, iounit: r.u32()? },
        RCREATE => Rmessage::Create { qid: r.qid()?, iounit: r.u32()? },
        RREAD => Rmessage::Read { data: r.data()? },
        RWRITE => Rmessage::Write { count: r.u32()? },
        RCLUNK => Rmessage::Clunk,
        RREMOVE => Rmessage::Remove,
        RSTAT => Rmessage::Stat { stat: r.nested_stat()? },
        RWSTAT => Rmessage::Wstat,
        RSTATFS => Rmessage::Statfs {
            statfs: StatFs {
                ty: r.u32()?,
                bsize: r.u32()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                fsid: r.u64()?,
                namelen: r.u32()?,
            },
        },
        RLOPEN => Rmessage::Lopen { qid: r.qid()?, iounit: r.u32()? },
        RLCREATE => Rmessage::Lcreate { qid: r.qid()?, iounit: r.u32()? },
        RSYMLINK => Rmessage::Symlink { qid: r.qid()? },
        RMKNOD => Rmessage::Mknod { qid: r.qid()? },
        RRENAME => Rmessage::Rename,
        RREADLINK => Rmessage::Readlink { target: r.str()? },
        RGETATTR => Rmessage::Getattr {
            attr: Attr {
                valid: r.u64()?,
                qid: r.qid()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                nlink: r.u64()?,
                rdev: r.u64()?,
                size: r.u64()?,
                blksize: r.u64()?,
                blocks: r.u64()?,
                atime_sec: r.u64()?,
                atime_nsec: r.u64()?,
                mtime_sec: r.u64()?,
                mtime_nsec: r.u64()?,
                ctime_sec: r.u64()?,
                ctime_nsec: r.u64()?,
                btime_sec: r.u64()?,
                btime_nsec: r.u64()?,
                gen: r.u64()?,
                data_version: r.u64()?,
            },
        },
        RSETATTR => Rmessage::Setattr,
        RXATTRWALK => Rmessage::Xattrwalk { size: r.u64()? },
        RXATTRCREATE => Rmessage::Xattrcreate,
        RREADDIR => Rmessage::Readdir { data: r.data()? },
        RFSYNC => Rmessage::Fsync,
        RLOCK => Rmessage::Lock { status: r.u8()? },
        RGETLOCK => Rmessage::Getlock { lock: r.flock()? },
        RLINK => Rmessage::Link,
        RMKDIR => Rmessage::Mkdir { qid: r.qid()? },
        RRENAMEAT => Rmessage::Renameat,
        RUNLINKAT => Rmessage::Unlinkat,
        ty => return Err(DecodeError::UnknownType { ty }),
    };
    r.finish()?;
    Ok((tag, msg))
}

/// The stat structures packed in the payload of an `Rread` of a 9P2000 directory.
///
/// Yields each in turn, borrowing from the payload; after an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct StatIter<'a> {
    rest: &'a [u8],
}

impl<'a> StatIter<'a> {
    /// Iterates over the stats in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        StatIter { rest: data }
    }
}

impl<'a> Iterator for StatIter<'a> {
    type Item = Result<Stat<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut r = Reader { buf: self.rest, ty: 0 };
        match r.stat() {
            Ok(stat) => {
                self.rest = r.buf;
                Some(Ok(stat))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The directory entries packed in the payload of an `Rreaddir` (9P2000.L).
///
/// Yields each in turn, borrowing from the payload; after an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct DirentIter<'a> {
    rest: &'a [u8],
}

impl<'a> DirentIter<'a> {
    /// Iterates over the entries in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        DirentIter { rest: data }
    }
}

impl<'a> Iterator for DirentIter<'a> {
    type Item = Result<Dirent<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut r = Reader { buf: self.rest, ty: mtype::RREADDIR };
        let entry =
            (|| Ok(Dirent { qid: r.qid()?, offset: r.u64()?, ty: r.u8()?, name: r.str()? }))();
        self.rest = if entry.is_ok() { r.buf } else { &[] };
        Some(entry)
    }
}
