//! Every request (`T`) and reply (`R`) message of 9P2000 and 9P2000.L as a typed value.
//!
//! Strings and payloads borrow from the buffer a message was decoded from (or is to be encoded
//! from). Field names follow the manual pages (intro(5) and its siblings) and diod's
//! `protocol.md`. The tag is not part of the value: the decoders return it beside the message
//! and the encoders take it as an argument.

use super::types::{mtype, Attr, Flock, Qid, SetAttr, Stat, StatFs, WalkList};

/// A request, client to server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tmessage<'a> {
    /// `Tversion`: `msize[4] version[s]`. Sent with tag [`NOTAG`](super::NOTAG).
    Version {
        /// The largest message the client will send or accept.
        msize: u32,
        /// The protocol version the client offers.
        version: &'a str,
    },
    /// `Tauth`: `afid[4] uname[s] aname[s]`, and `n_uname[4]` in 9P2000.L.
    Auth {
        /// The fid to use for the authentication conversation.
        afid: u32,
        /// User name.
        uname: &'a str,
        /// File tree to authenticate for.
        aname: &'a str,
        /// Numeric user id: `Some` exactly in 9P2000.L ([`NONUNAME`](super::NONUNAME) if unused).
        n_uname: Option<u32>,
    },
    /// `Tattach`: `fid[4] afid[4] uname[s] aname[s]`, and `n_uname[4]` in 9P2000.L.
    Attach {
        /// The fid that will name the root.
        fid: u32,
        /// The authentication fid, or [`NOFID`](super::NOFID).
        afid: u32,
        /// User name.
        uname: &'a str,
        /// File tree to attach to.
        aname: &'a str,
        /// Numeric user id: `Some` exactly in 9P2000.L ([`NONUNAME`](super::NONUNAME) if unused).
        n_uname: Option<u32>,
    },
    /// `Tflush`: `oldtag[2]`.
    Flush {
        /// The tag of the request to abort.
        oldtag: u16,
    },
    /// `Twalk`: `fid[4] newfid[4] nwname[2] nwname*(wname[s])`.
    Walk {
        /// The fid to start from.
        fid: u32,
        /// The fid to name the result (may equal `fid`).
        newfid: u32,
        /// Path elements, at most [`MAXWELEM`](super::MAXWELEM).
        names: WalkList<&'a str>,
    },
    /// `Topen` (9P2000): `fid[4] mode[1]`.
    Open {
        /// The fid to open.
        fid: u32,
        /// [`open_mode`](super::open_mode) bits.
        mode: u8,
    },
    /// `Tcreate` (9P2000): `fid[4] name[s] perm[4] mode[1]`.
    Create {
        /// The directory to create in; afterwards names the new file.
        fid: u32,
        /// New file's name.
        name: &'a str,
        /// Permissions and [`dm`](super::dm) bits.
        perm: u32,
        /// [`open_mode`](super::open_mode) bits.
        mode: u8,
    },
    /// `Tread`: `fid[4] offset[8] count[4]`.
    Read {
        /// The fid to read.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes wanted.
        count: u32,
    },
    /// `Twrite`: `fid[4] offset[8] count[4] data[count]`.
    Write {
        /// The fid to write.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// The payload: a slice of the receive buffer, never copied by the decoder.
        data: &'a [u8],
    },
    /// `Tclunk`: `fid[4]`.
    Clunk {
        /// The fid to forget.
        fid: u32,
    },
    /// `Tremove`: `fid[4]`.
    Remove {
        /// The fid of the file to remove (clunked either way).
        fid: u32,
    },
    /// `Tstat` (9P2000): `fid[4]`.
    Stat {
        /// The fid to describe.
        fid: u32,
    },
    /// `Twstat` (9P2000): `fid[4] stat[n]`.
    Wstat {
        /// The fid to change.
        fid: u32,
        /// New values; `!0` and `""` mean "don't touch".
        stat: Stat<'a>,
    },
    /// `Tstatfs` (9P2000.L): `fid[4]`.
    Statfs {
        /// Any fid in the file system.
        fid: u32,
    },
    /// `Tlopen` (9P2000.L): `fid[4] flags[4]`.
    Lopen {
        /// The fid to open.
        fid: u32,
        /// Linux `open(2)` flags.
        flags: u32,
    },
    /// `Tlcreate` (9P2000.L): `fid[4] name[s] flags[4] mode[4] gid[4]`.
    Lcreate {
        /// The directory to create in; afterwards names the new file.
        fid: u32,
        /// New file's name.
        name: &'a str,
        /// Linux `open(2)` flags.
        flags: u32,
        /// Linux mode bits.
        mode: u32,
        /// Group of the new file.
        gid: u32,
    },
    /// `Tsymlink` (9P2000.L): `fid[4] name[s] symtgt[s] gid[4]`.
    Symlink {
        /// The directory to create in.
        fid: u32,
        /// Link name.
        name: &'a str,
        /// What the link points at.
        symtgt: &'a str,
        /// Group of the link.
        gid: u32,
    },
    /// `Tmknod` (9P2000.L): `dfid[4] name[s] mode[4] major[4] minor[4] gid[4]`.
    Mknod {
        /// The directory to create in.
        dfid: u32,
        /// Node name.
        name: &'a str,
        /// Linux mode bits, file type included.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
        /// Group of the node.
        gid: u32,
    },
    /// `Trename` (9P2000.L): `fid[4] dfid[4] name[s]`.
    Rename {
        /// The file to rename.
        fid: u32,
        /// The directory to move it into.
        dfid: u32,
        /// Its new name.
        name: &'a str,
    },
    /// `Treadlink` (9P2000.L): `fid[4]`.
    Readlink {
        /// The link to read.
        fid: u32,
    },
    /// `Tgetattr` (9P2000.L): `fid[4] request_mask[8]`.
    Getattr {
        /// The file to describe.
        fid: u32,
        /// [`getattr`](super::getattr) bits wanted.
        request_mask: u64,
    },
    /// `Tsetattr` (9P2000.L): `fid[4] valid[4] mode[4] uid[4] gid[4] size[8]`
    /// `atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]`.
    Setattr {
        /// The file to change.
        fid: u32,
        /// The changes.
        attr: SetAttr,
    },
    /// `Txattrwalk` (9P2000.L): `fid[4] newfid[4] name[s]`.
    Xattrwalk {
        /// The file whose attributes to read.
        fid: u32,
        /// The fid to read the attribute (or, with an empty name, the list) through.
        newfid: u32,
        /// Attribute name; empty lists them all.
        name: &'a str,
    },
    /// `Txattrcreate` (9P2000.L): `fid[4] name[s] attr_size[8] flags[4]`.
    Xattrcreate {
        /// The fid to write the attribute through (it stops naming the file).
        fid: u32,
        /// Attribute name.
        name: &'a str,
        /// Bytes of the attribute's value.
        attr_size: u64,
        /// Linux `setxattr(2)` flags.
        flags: u32,
    },
    /// `Treaddir` (9P2000.L): `fid[4] offset[8] count[4]`.
    Readdir {
        /// The open directory.
        fid: u32,
        /// 0, or an offset a previous entry gave.
        offset: u64,
        /// Bytes wanted.
        count: u32,
    },
    /// `Tfsync` (9P2000.L): `fid[4] datasync[4]`.
    ///
    /// diod's `protocol.md` lists only `fid[4]`; the decoder accepts that older form as
    /// `datasync: 0`. The encoder always writes the field, as Linux does.
    Fsync {
        /// The file to flush.
        fid: u32,
        /// Non-zero for `fdatasync(2)`.
        datasync: u32,
    },
    /// `Tlock` (9P2000.L):
    /// `fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]`.
    Lock {
        /// The open file.
        fid: u32,
        /// [`lock`](super::lock) flags.
        flags: u32,
        /// The lock wanted (or to release, with type `UNLCK`).
        lock: Flock<'a>,
    },
    /// `Tgetlock` (9P2000.L):
    /// `fid[4] type[1] start[8] length[8] proc_id[4] client_id[s]`.
    Getlock {
        /// The open file.
        fid: u32,
        /// The lock to test for.
        lock: Flock<'a>,
    },
    /// `Tlink` (9P2000.L): `dfid[4] fid[4] name[s]`.
    Link {
        /// The directory to link into.
        dfid: u32,
        /// The file to link.
        fid: u32,
        /// The new name.
        name: &'a str,
    },
    /// `Tmkdir` (9P2000.L): `dfid[4] name[s] mode[4] gid[4]`.
    Mkdir {
        /// The directory to create in.
        dfid: u32,
        /// New directory's name.
        name: &'a str,
        /// Linux mode bits.
        mode: u32,
        /// Group of the new directory.
        gid: u32,
    },
    /// `Trenameat` (9P2000.L): `olddirfid[4] oldname[s] newdirfid[4] newname[s]`.
    Renameat {
        /// The directory the file is in.
        olddirfid: u32,
        /// Its name there.
        oldname: &'a str,
        /// The directory to move it to.
        newdirfid: u32,
        /// Its new name.
        newname: &'a str,
    },
    /// `Tunlinkat` (9P2000.L): `dirfd[4] name[s] flags[4]`.
    Unlinkat {
        /// The directory the entry is in.
        dirfd: u32,
        /// The entry's name.
        name: &'a str,
        /// Linux `unlinkat(2)` flags (`AT_REMOVEDIR`).
        flags: u32,
    },
}

impl Tmessage<'_> {
    /// The message type number ([`mtype`]).
    pub fn msg_type(&self) -> u8 {
        use mtype::*;
        match self {
            Tmessage::Version { .. } => TVERSION,
            Tmessage::Auth { .. } => TAUTH,
            Tmessage::Attach { .. } => TATTACH,
            Tmessage::Flush { .. } => TFLUSH,
            Tmessage::Walk { .. } => TWALK,
            Tmessage::Open { .. } => TOPEN,
            Tmessage::Create { .. } => TCREATE,
            Tmessage::Read { .. } => TREAD,
            Tmessage::Write { .. } => TWRITE,
            Tmessage::Clunk { .. } => TCLUNK,
            Tmessage::Remove { .. } => TREMOVE,
            Tmessage::Stat { .. } => TSTAT,
            Tmessage::Wstat { .. } => TWSTAT,
            Tmessage::Statfs { .. } => TSTATFS,
            Tmessage::Lopen { .. } => TLOPEN,
            Tmessage::Lcreate { .. } => TLCREATE,
            Tmessage::Symlink { .. } => TSYMLINK,
            Tmessage::Mknod { .. } => TMKNOD,
            Tmessage::Rename { .. } => TRENAME,
            Tmessage::Readlink { .. } => TREADLINK,
            Tmessage::Getattr { .. } => TGETATTR,
            Tmessage::Setattr { .. } => TSETATTR,
            Tmessage::Xattrwalk { .. } => TXATTRWALK,
            Tmessage::Xattrcreate { .. } => TXATTRCREATE,
            Tmessage::Readdir { .. } => TREADDIR,
            Tmessage::Fsync { .. } => TFSYNC,
            Tmessage::Lock { .. } => TLOCK,
            Tmessage::Getlock { .. } => TGETLOCK,
            Tmessage::Link { .. } => TLINK,
            Tmessage::Mkdir { .. } => TMKDIR,
            Tmessage::Renameat { .. } => TRENAMEAT,
            Tmessage::Unlinkat { .. } => TUNLINKAT,
        }
    }
}

/// A reply, server to client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rmessage<'a> {
    /// `Rversion`: `msize[4] version[s]`.
    Version {
        /// The negotiated message size.
        msize: u32,
        /// The version the server speaks, or `"unknown"`.
        version: &'a str,
    },
    /// `Rauth`: `aqid[13]`.
    Auth {
        /// Qid of the authentication file.
        aqid: Qid,
    },
    /// `Rattach`: `qid[13]`.
    Attach {
        /// Qid of the root.
        qid: Qid,
    },
    /// `Rerror` (9P2000): `ename[s]`.
    Error {
        /// What went wrong, in words.
        ename: &'a str,
    },
    /// `Rlerror` (9P2000.L): `ecode[4]`.
    Lerror {
        /// A Linux errno.
        ecode: u32,
    },
    /// `Rflush`.
    Flush,
    /// `Rwalk`: `nwqid[2] nwqid*(qid[13])`.
    Walk {
        /// One qid per element walked; fewer than asked means the walk stopped early.
        qids: WalkList<Qid>,
    },
    /// `Ropen` (9P2000): `qid[13] iounit[4]`.
    Open {
        /// Qid of the opened file.
        qid: Qid,
        /// Largest read or write guaranteed to be done in one message; 0 if unknown.
        iounit: u32,
    },
    /// `Rcreate` (9P2000): `qid[13] iounit[4]`.
    Create {
        /// Qid of the new file.
        qid: Qid,
        /// As in `Ropen`.
        iounit: u32,
    },
    /// `Rread`: `count[4] data[count]`.
    Read {
        /// The payload: a slice of the receive buffer, never copied by the decoder.
        data: &'a [u8],
    },
    /// `Rwrite`: `count[4]`.
    Write {
        /// Bytes written.
        count: u32,
    },
    /// `Rclunk`.
    Clunk,
    /// `Rremove`.
    Remove,
    /// `Rstat` (9P2000): `stat[n]`.
    Stat {
        /// The file's description.
        stat: Stat<'a>,
    },
    /// `Rwstat` (9P2000).
    Wstat,
    /// `Rstatfs` (9P2000.L): `type[4] bsize[4] blocks[8] bfree[8] bavail[8]`
    /// `files[8] ffree[8] fsid[8] namelen[4]`.
    Statfs {
        /// The statistics.
        statfs: StatFs,
    },
    /// `Rlopen` (9P2000.L): `qid[13] iounit[4]`.
    Lopen {
        /// Qid of the opened file.
        qid: Qid,
        /// As in `Ropen`.
        iounit: u32,
    },
    /// `Rlcreate` (9P2000.L): `qid[13] iounit[4]`.
    Lcreate {
        /// Qid of the new file.
        qid: Qid,
        /// As in `Ropen`.
        iounit: u32,
    },
    /// `Rsymlink` (9P2000.L): `qid[13]`.
    Symlink {
        /// Qid of the new link.
        qid: Qid,
    },
    /// `Rmknod` (9P2000.L): `qid[13]`.
    Mknod {
        /// Qid of the new node.
        qid: Qid,
    },
    /// `Rrename` (9P2000.L).
    Rename,
    /// `Rreadlink` (9P2000.L): `target[s]`.
    Readlink {
        /// What the link points at.
        target: &'a str,
    },
    /// `Rgetattr` (9P2000.L): `valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8]`
    /// `size[8] blksize[8] blocks[8]`, then seconds and nanoseconds of atime, mtime, ctime and
    /// btime, then `gen[8] data_version[8]`.
    Getattr {
        /// The attributes.
        attr: Attr,
    },
    /// `Rsetattr` (9P2000.L).
    Setattr,
    /// `Rxattrwalk` (9P2000.L): `size[8]`.
    Xattrwalk {
        /// Bytes of the attribute's value (or of the name list).
        size: u64,
    },
    /// `Rxattrcreate` (9P2000.L).
    Xattrcreate,
    /// `Rreaddir` (9P2000.L): `count[4] data[count]`.
    Readdir {
        /// Packed entries, a slice of the receive buffer; read them with
        /// [`DirentIter`](super::DirentIter).
        data: &'a [u8],
    },
    /// `Rfsync` (9P2000.L).
    Fsync,
    /// `Rlock` (9P2000.L): `status[1]`.
    Lock {
        /// [`lock`](super::lock) status.
        status: u8,
    },
    /// `Rgetlock` (9P2000.L): `type[1] start[8] length[8] proc_id[4] client_id[s]`.
    Getlock {
        /// The conflicting lock, or the one asked about with type `UNLCK` if none conflicts.
        lock: Flock<'a>,
    },
    /// `Rlink` (9P2000.L).
    Link,
    /// `Rmkdir` (9P2000.L): `qid[13]`.
    Mkdir {
        /// Qid of the new directory.
        qid: Qid,
    },
    /// `Rrenameat` (9P2000.L).
    Renameat,
    /// `Runlinkat` (9P2000.L).
    Unlinkat,
}

impl Rmessage<'_> {
    /// The message type number ([`mtype`]).
    pub fn msg_type(&self) -> u8 {
        use mtype::*;
        match self {
            Rmessage::Version { .. } => RVERSION,
            Rmessage::Auth { .. } => RAUTH,
            Rmessage::Attach { .. } => RATTACH,
            Rmessage::Error { .. } => RERROR,
            Rmessage::Lerror { .. } => RLERROR,
            Rmessage::Flush => RFLUSH,
            Rmessage::Walk { .. } => RWALK,
            Rmessage::Open { .. } => ROPEN,
            Rmessage::Create { .. } => RCREATE,
            Rmessage::Read { .. } => RREAD,
            Rmessage::Write { .. } => RWRITE,
            Rmessage::Clunk => RCLUNK,
            Rmessage::Remove => RREMOVE,
            Rmessage::Stat { .. } => RSTAT,
            Rmessage::Wstat => RWSTAT,
            Rmessage::Statfs { .. } => RSTATFS,
            Rmessage::Lopen { .. } => RLOPEN,
            Rmessage::Lcreate { .. } => RLCREATE,
            Rmessage::Symlink { .. } => RSYMLINK,
            Rmessage::Mknod { .. } => RMKNOD,
            Rmessage::Rename => RRENAME,
            Rmessage::Readlink { .. } => RREADLINK,
            Rmessage::Getattr { .. } => RGETATTR,
            Rmessage::Setattr => RSETATTR,
            Rmessage::Xattrwalk { .. } => RXATTRWALK,
            Rmessage::Xattrcreate => RXATTRCREATE,
            Rmessage::Readdir { .. } => RREADDIR,
            Rmessage::Fsync => RFSYNC,
            Rmessage::Lock { .. } => RLOCK,
            Rmessage::Getlock { .. } => RGETLOCK,
            Rmessage::Link => RLINK,
            Rmessage::Mkdir { .. } => RMKDIR,
            Rmessage::Renameat => RRENAMEAT,
            Rmessage::Unlinkat => RUNLINKAT,
        }
    }
}
