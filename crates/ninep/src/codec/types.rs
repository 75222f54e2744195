//! The values 9P messages carry: qids, the 9P2000 stat structure, the 9P2000.L attribute,
//! statfs, lock and directory-entry structures, and the protocol's numeric constants.
//!
//! Layouts follow Plan 9's intro(5) and stat(5) for 9P2000, and diod's `protocol.md` (the
//! Linux v9fs `net/9p` definitions) for 9P2000.L.

use core::fmt;
use core::ops::Deref;

/// The tag a `Tversion` carries: no other request may be outstanding, so none is needed.
pub const NOTAG: u16 = 0xFFFF;
/// "No fid": the `afid` of a `Tattach` made without authentication.
pub const NOFID: u32 = 0xFFFF_FFFF;
/// "No numeric user": the `n_uname` of a 9P2000.L `Tattach` or `Tauth` that names the user
/// by string only.
pub const NONUNAME: u32 = 0xFFFF_FFFF;
/// The most path elements one `Twalk` may name, and the most qids one `Rwalk` may return.
pub const MAXWELEM: usize = 16;
/// Bytes of a message header: `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;
/// Bytes of an `Rread` or `Rreaddir` up to its payload: header, `count[4]`.
pub const RREAD_HEADER_LEN: usize = HEADER_LEN + 4;
/// Bytes of a `Twrite` up to its payload: header, `fid[4], offset[8], count[4]`.
pub const TWRITE_HEADER_LEN: usize = HEADER_LEN + 4 + 8 + 4;
/// Plan 9's `IOHDRSZ`: what a server subtracts from `msize` to get the largest `iounit`.
pub const IOHDRSZ: u32 = 24;
/// The version string of plain 9P2000.
pub const VERSION_9P2000: &str = "9P2000";
/// The version string of 9P2000.L.
pub const VERSION_9P2000_L: &str = "9P2000.L";
/// What a server answers a `Tversion` whose version it does not speak.
pub const VERSION_UNKNOWN: &str = "unknown";
/// Bytes of a qid on the wire: `type[1] version[4] path[8]`.
pub const QID_LEN: usize = 13;

/// Message type numbers (intro(5) for 9P2000, diod's protocol.md for 9P2000.L).
pub mod mtype {
    /// 9P2000.L error reply: `ecode[4]`.
    pub const RLERROR: u8 = 7;
    /// 9P2000.L: file-system statistics request.
    pub const TSTATFS: u8 = 8;
    /// 9P2000.L: file-system statistics reply.
    pub const RSTATFS: u8 = 9;
    /// 9P2000.L: open with Linux flags.
    pub const TLOPEN: u8 = 12;
    /// 9P2000.L: reply to `Tlopen`.
    pub const RLOPEN: u8 = 13;
    /// 9P2000.L: create with Linux flags.
    pub const TLCREATE: u8 = 14;
    /// 9P2000.L: reply to `Tlcreate`.
    pub const RLCREATE: u8 = 15;
    /// 9P2000.L: make a symbolic link.
    pub const TSYMLINK: u8 = 16;
    /// 9P2000.L: reply to `Tsymlink`.
    pub const RSYMLINK: u8 = 17;
    /// 9P2000.L: make a device node.
    pub const TMKNOD: u8 = 18;
    /// 9P2000.L: reply to `Tmknod`.
    pub const RMKNOD: u8 = 19;
    /// 9P2000.L: rename a fid into a directory.
    pub const TRENAME: u8 = 20;
    /// 9P2000.L: reply to `Trename`.
    pub const RRENAME: u8 = 21;
    /// 9P2000.L: read a symbolic link.
    pub const TREADLINK: u8 = 22;
    /// 9P2000.L: reply to `Treadlink`.
    pub const RREADLINK: u8 = 23;
    /// 9P2000.L: get attributes.
    pub const TGETATTR: u8 = 24;
    /// 9P2000.L: reply to `Tgetattr`.
    pub const RGETATTR: u8 = 25;
    /// 9P2000.L: set attributes.
    pub const TSETATTR: u8 = 26;
    /// 9P2000.L: reply to `Tsetattr`.
    pub const RSETATTR: u8 = 27;
    /// 9P2000.L: prepare to read an extended attribute.
    pub const TXATTRWALK: u8 = 30;
    /// 9P2000.L: reply to `Txattrwalk`.
    pub const RXATTRWALK: u8 = 31;
    /// 9P2000.L: prepare to write an extended attribute.
    pub const TXATTRCREATE: u8 = 32;
    /// 9P2000.L: reply to `Txattrcreate`.
    pub const RXATTRCREATE: u8 = 33;
    /// 9P2000.L: read directory entries.
    pub const TREADDIR: u8 = 40;
    /// 9P2000.L: reply to `Treaddir`.
    pub const RREADDIR: u8 = 41;
    /// 9P2000.L: flush a file to stable storage.
    pub const TFSYNC: u8 = 50;
    /// 9P2000.L: reply to `Tfsync`.
    pub const RFSYNC: u8 = 51;
    /// 9P2000.L: acquire or release a POSIX record lock.
    pub const TLOCK: u8 = 52;
    /// 9P2000.L: reply to `Tlock`.
    pub const RLOCK: u8 = 53;
    /// 9P2000.L: test for a POSIX record lock.
    pub const TGETLOCK: u8 = 54;
    /// 9P2000.L: reply to `Tgetlock`.
    pub const RGETLOCK: u8 = 55;
    /// 9P2000.L: make a hard link.
    pub const TLINK: u8 = 70;
    /// 9P2000.L: reply to `Tlink`.
    pub const RLINK: u8 = 71;
    /// 9P2000.L: make a directory.
    pub const TMKDIR: u8 = 72;
    /// 9P2000.L: reply to `Tmkdir`.
    pub const RMKDIR: u8 = 73;
    /// 9P2000.L: rename by directory and name.
    pub const TRENAMEAT: u8 = 74;
    /// 9P2000.L: reply to `Trenameat`.
    pub const RRENAMEAT: u8 = 75;
    /// 9P2000.L: unlink by directory and name.
    pub const TUNLINKAT: u8 = 76;
    /// 9P2000.L: reply to `Tunlinkat`.
    pub const RUNLINKAT: u8 = 77;
    /// Negotiate version and msize.
    pub const TVERSION: u8 = 100;
    /// Reply to `Tversion`.
    pub const RVERSION: u8 = 101;
    /// Open an authentication fid.
    pub const TAUTH: u8 = 102;
    /// Reply to `Tauth`.
    pub const RAUTH: u8 = 103;
    /// Attach to a file tree.
    pub const TATTACH: u8 = 104;
    /// Reply to `Tattach`.
    pub const RATTACH: u8 = 105;
    /// Not a legal message; reserved by intro(5).
    pub const TERROR: u8 = 106;
    /// 9P2000 error reply: `ename[s]`.
    pub const RERROR: u8 = 107;
    /// Abort an outstanding request.
    pub const TFLUSH: u8 = 108;
    /// Reply to `Tflush`.
    pub const RFLUSH: u8 = 109;
    /// Walk a fid along a path.
    pub const TWALK: u8 = 110;
    /// Reply to `Twalk`.
    pub const RWALK: u8 = 111;
    /// 9P2000: open with Plan 9 modes.
    pub const TOPEN: u8 = 112;
    /// 9P2000: reply to `Topen`.
    pub const ROPEN: u8 = 113;
    /// 9P2000: create with Plan 9 permissions.
    pub const TCREATE: u8 = 114;
    /// 9P2000: reply to `Tcreate`.
    pub const RCREATE: u8 = 115;
    /// Read from a fid.
    pub const TREAD: u8 = 116;
    /// Reply to `Tread`.
    pub const RREAD: u8 = 117;
    /// Write to a fid.
    pub const TWRITE: u8 = 118;
    /// Reply to `Twrite`.
    pub const RWRITE: u8 = 119;
    /// Forget a fid.
    pub const TCLUNK: u8 = 120;
    /// Reply to `Tclunk`.
    pub const RCLUNK: u8 = 121;
    /// Remove a file and clunk its fid.
    pub const TREMOVE: u8 = 122;
    /// Reply to `Tremove`.
    pub const RREMOVE: u8 = 123;
    /// 9P2000: read a file's stat.
    pub const TSTAT: u8 = 124;
    /// 9P2000: reply to `Tstat`.
    pub const RSTAT: u8 = 125;
    /// 9P2000: change a file's stat.
    pub const TWSTAT: u8 = 126;
    /// 9P2000: reply to `Twstat`.
    pub const RWSTAT: u8 = 127;
}

/// Plan 9 open modes for `Topen` and `Tcreate` (open(5)).
pub mod open_mode {
    /// Open for reading.
    pub const OREAD: u8 = 0;
    /// Open for writing.
    pub const OWRITE: u8 = 1;
    /// Open for reading and writing.
    pub const ORDWR: u8 = 2;
    /// Open for execution (read permission checked as execute).
    pub const OEXEC: u8 = 3;
    /// Truncate the file on open.
    pub const OTRUNC: u8 = 0x10;
    /// Remove the file when its fid is clunked.
    pub const ORCLOSE: u8 = 0x40;
}

/// Qid type bits (intro(5)); the same bits sit in the top byte of a 9P2000 `Stat::mode`.
pub mod qid_type {
    /// A directory.
    pub const QTDIR: u8 = 0x80;
    /// An append-only file.
    pub const QTAPPEND: u8 = 0x40;
    /// An exclusive-use file.
    pub const QTEXCL: u8 = 0x20;
    /// A mounted channel.
    pub const QTMOUNT: u8 = 0x10;
    /// An authentication file.
    pub const QTAUTH: u8 = 0x08;
    /// A temporary (not backed up) file.
    pub const QTTMP: u8 = 0x04;
    /// A symbolic link (9P2000.u and .L).
    pub const QTSYMLINK: u8 = 0x02;
    /// A hard link (9P2000.u and .L).
    pub const QTLINK: u8 = 0x01;
    /// A plain file.
    pub const QTFILE: u8 = 0x00;
}

/// Permission and mode bits of a 9P2000 `Stat::mode` and `Tcreate` `perm` (stat(5)).
pub mod dm {
    /// A directory.
    pub const DMDIR: u32 = 0x8000_0000;
    /// An append-only file.
    pub const DMAPPEND: u32 = 0x4000_0000;
    /// An exclusive-use file.
    pub const DMEXCL: u32 = 0x2000_0000;
    /// A mounted channel.
    pub const DMMOUNT: u32 = 0x1000_0000;
    /// An authentication file.
    pub const DMAUTH: u32 = 0x0800_0000;
    /// A temporary file.
    pub const DMTMP: u32 = 0x0400_0000;
}

/// Bits of the `request_mask` of `Tgetattr` and the `valid` mask of `Rgetattr` (9P2000.L).
pub mod getattr {
    /// `mode`.
    pub const MODE: u64 = 0x0000_0001;
    /// `nlink`.
    pub const NLINK: u64 = 0x0000_0002;
    /// `uid`.
    pub const UID: u64 = 0x0000_0004;
    /// `gid`.
    pub const GID: u64 = 0x0000_0008;
    /// `rdev`.
    pub const RDEV: u64 = 0x0000_0010;
    /// `atime`.
    pub const ATIME: u64 = 0x0000_0020;
    /// `mtime`.
    pub const MTIME: u64 = 0x0000_0040;
    /// `ctime`.
    pub const CTIME: u64 = 0x0000_0080;
    /// `qid.path` (the inode number).
    pub const INO: u64 = 0x0000_0100;
    /// `size`.
    pub const SIZE: u64 = 0x0000_0200;
    /// `blocks`.
    pub const BLOCKS: u64 = 0x0000_0400;
    /// `btime` (birth time).
    pub const BTIME: u64 = 0x0000_0800;
    /// `gen`.
    pub const GEN: u64 = 0x0000_1000;
    /// `data_version`.
    pub const DATA_VERSION: u64 = 0x0000_2000;
    /// Everything `stat(2)` returns.
    pub const BASIC: u64 = 0x0000_07ff;
    /// Every field.
    pub const ALL: u64 = 0x0000_3fff;
}

/// Bits of the `valid` mask of `Tsetattr` (9P2000.L).
pub mod setattr {
    /// Set `mode`.
    pub const MODE: u32 = 0x0000_0001;
    /// Set `uid`.
    pub const UID: u32 = 0x0000_0002;
    /// Set `gid`.
    pub const GID: u32 = 0x0000_0004;
    /// Set `size` (truncate).
    pub const SIZE: u32 = 0x0000_0008;
    /// Set `atime` (to now unless `ATIME_SET`).
    pub const ATIME: u32 = 0x0000_0010;
    /// Set `mtime` (to now unless `MTIME_SET`).
    pub const MTIME: u32 = 0x0000_0020;
    /// Set `ctime` to now.
    pub const CTIME: u32 = 0x0000_0040;
    /// `atime` comes from the message.
    pub const ATIME_SET: u32 = 0x0000_0080;
    /// `mtime` comes from the message.
    pub const MTIME_SET: u32 = 0x0000_0100;
}

/// Lock types, flags and statuses of `Tlock`, `Tgetlock` and `Rlock` (9P2000.L).
pub mod lock {
    /// A read (shared) lock.
    pub const RDLCK: u8 = 0;
    /// A write (exclusive) lock.
    pub const WRLCK: u8 = 1;
    /// Unlock.
    pub const UNLCK: u8 = 2;
    /// Flag: block until the lock is granted.
    pub const FLAGS_BLOCK: u32 = 1;
    /// Flag: reclaim a lock after a server restart.
    pub const FLAGS_RECLAIM: u32 = 2;
    /// Status: the lock was granted.
    pub const SUCCESS: u8 = 0;
    /// Status: the lock is held by another.
    pub const BLOCKED: u8 = 1;
    /// Status: an error occurred.
    pub const ERROR: u8 = 2;
    /// Status: the server is in its grace period.
    pub const GRACE: u8 = 3;
}

/// The server's unique identity for a file: `type[1] version[4] path[8]` (intro(5)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qid {
    /// Qid type bits ([`qid_type`]).
    pub ty: u8,
    /// Version, bumped when the file changes.
    pub version: u32,
    /// Path, unique among the files of one server.
    pub path: u64,
}

/// The 9P2000 stat structure (stat(5)); strings borrow from the message.
///
/// On the wire it is preceded by its own `size[2]`, which counts the bytes that follow it; inside
/// `Rstat` and `Twstat` a second `size[2]` (the `stat[n]` count) precedes that. The codec writes
/// and checks both. In a `Twstat`, "don't touch" is `!0` for numbers and `""` for strings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat<'a> {
    /// For kernel use.
    pub ty: u16,
    /// For kernel use.
    pub dev: u32,
    /// The file's qid.
    pub qid: Qid,
    /// Permissions and [`dm`] flags.
    pub mode: u32,
    /// Last access time, seconds since the epoch.
    pub atime: u32,
    /// Last modification time, seconds since the epoch.
    pub mtime: u32,
    /// Length in bytes.
    pub length: u64,
    /// Last path element.
    pub name: &'a str,
    /// Owner.
    pub uid: &'a str,
    /// Group.
    pub gid: &'a str,
    /// User who last modified the file.
    pub muid: &'a str,
}

impl Stat<'_> {
    /// Bytes after the leading `size[2]`: the value of that size field.
    pub fn body_len(&self) -> usize {
        2 + 4
            + QID_LEN
            + 4
            + 4
            + 4
            + 8
            + 8
            + self.name.len()
            + self.uid.len()
            + self.gid.len()
            + self.muid.len()
    }

    /// Bytes of the whole structure on the wire, its own `size[2]` included.
    pub fn wire_len(&self) -> usize {
        2 + self.body_len()
    }
}

/// The attributes an `Rgetattr` returns (9P2000.L); `valid` says which are meaningful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// [`getattr`] bits of the fields that are valid.
    pub valid: u64,
    /// The file's qid.
    pub qid: Qid,
    /// Linux `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links.
    pub nlink: u64,
    /// Device number, for device files.
    pub rdev: u64,
    /// Length in bytes.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Access time, seconds.
    pub atime_sec: u64,
    /// Access time, nanoseconds.
    pub atime_nsec: u64,
    /// Modification time, seconds.
    pub mtime_sec: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u64,
    /// Status-change time, seconds.
    pub ctime_sec: u64,
    /// Status-change time, nanoseconds.
    pub ctime_nsec: u64,
    /// Birth time, seconds.
    pub btime_sec: u64,
    /// Birth time, nanoseconds.
    pub btime_nsec: u64,
    /// Inode generation.
    pub gen: u64,
    /// Data version.
    pub data_version: u64,
}

/// The changes a `Tsetattr` asks for (9P2000.L); `valid` says which to apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// [`setattr`] bits of the changes to make.
    pub valid: u32,
    /// New Linux `st_mode`.
    pub mode: u32,
    /// New owner.
    pub uid: u32,
    /// New group.
    pub gid: u32,
    /// New length.
    pub size: u64,
    /// New access time, seconds.
    pub atime_sec: u64,
    /// New access time, nanoseconds.
    pub atime_nsec: u64,
    /// New modification time, seconds.
    pub mtime_sec: u64,
    /// New modification time, nanoseconds.
    pub mtime_nsec: u64,
}

/// File-system statistics of an `Rstatfs` (9P2000.L), as Linux `statfs(2)` has them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    /// File-system type magic.
    pub ty: u32,
    /// Block size.
    pub bsize: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks free to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// File-system id.
    pub fsid: u64,
    /// Longest file name.
    pub namelen: u32,
}

/// A POSIX record lock as `Tlock`, `Tgetlock` and `Rgetlock` carry it (9P2000.L).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flock<'a> {
    /// [`lock`] type: read, write or unlock.
    pub ty: u8,
    /// First byte.
    pub start: u64,
    /// Bytes covered; 0 means to the end of the file.
    pub length: u64,
    /// Process id of the holder.
    pub proc_id: u32,
    /// Name of the client that holds it.
    pub client_id: &'a str,
}

/// One directory entry of an `Rreaddir` payload (9P2000.L):
/// `qid[13] offset[8] type[1] name[s]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirent<'a> {
    /// The entry's qid.
    pub qid: Qid,
    /// Offset to pass to the next `Treaddir` to continue after this entry.
    pub offset: u64,
    /// Linux `d_type`.
    pub ty: u8,
    /// Entry name.
    pub name: &'a str,
}

impl Dirent<'_> {
    /// Bytes of the entry on the wire.
    pub fn wire_len(&self) -> usize {
        QID_LEN + 8 + 1 + 2 + self.name.len()
    }
}

/// Up to [`MAXWELEM`] items held in place: the names of a `Twalk` or the qids of an `Rwalk`.
///
/// Decoding a walk allocates nothing; the list dereferences to a slice of its items.
#[derive(Clone, Copy)]
pub struct WalkList<T> {
    len: u8,
    items: [T; MAXWELEM],
}

impl<T: Copy + Default> WalkList<T> {
    /// An empty list.
    pub fn new() -> Self {
        WalkList { len: 0, items: [T::default(); MAXWELEM] }
    }

    /// A list holding `items`, or `None` if there are more than [`MAXWELEM`].
    pub fn from_slice(items: &[T]) -> Option<Self> {
        let mut list = Self::new();
        for &item in items {
            list.push(item).ok()?;
        }
        Some(list)
    }

    /// Appends `item`; gives it back if the list already holds [`MAXWELEM`].
    pub fn push(&mut self, item: T) -> Result<(), T> {
        let slot = self.items.get_mut(usize::from(self.len)).ok_or(item)?;
        *slot = item;
        self.len += 1;
        Ok(())
    }
}

impl<T: Copy + Default> Default for WalkList<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for WalkList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items[..usize::from(self.len)]
    }
}

impl<T: PartialEq> PartialEq for WalkList<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for WalkList<T> {}

impl<T: fmt::Debug> fmt::Debug for WalkList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
