//! The interface a file server implements: [`FileServer`].
//!
//! Its shape follows Plan 9's lib9p (`Srv`, with one callback per request) and diod's `ops`,
//! with the operations of 9P2000.L as the base vocabulary because they are the richer set:
//! the server framework translates 9P2000's `open`, `create`, `stat`, `wstat` and directory
//! reads onto them, so a server is written once and speaks both dialects.
//!
//! Rules the framework relies on:
//! - A `Fid` value is the server's state for one fid: what file it names and, once opened, how.
//!   The framework owns it and hands it back by reference; state that an operation changes
//!   (an open file, a directory cursor) lives behind interior mutability in the server's type.
//! - Every operation that does not apply returns an [`Errno`]; the defaults return
//!   [`EOPNOTSUPP`](crate::errno::EOPNOTSUPP), so a synthetic server implements only what it has.
//! - [`FileServer::read`] and [`FileServer::write`] are `async`: they may wait (a network
//!   connection's data, a `listen` file, a console). The framework runs each request as its own
//!   task on the connection's core, and `Tflush` drops the waiting future, which must therefore
//!   leave the server consistent when dropped at any await point.
//! - A [`Qid`]'s `path` is never 0 (some clients treat 0 as "no file").

use alloc::string::String;
use alloc::vec::Vec;

use cairn_rt::iobuf::IoBuf;

use crate::codec::{Attr, Flock, Qid, SetAttr, StatFs};
use crate::errno::{Errno, EOPNOTSUPP};

/// Who is attaching: the user name and, in 9P2000.L, the numeric uid
/// ([`NONUNAME`](crate::codec::NONUNAME) when the client sent none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `uname` of the `Tattach`.
    pub uname: String,
    /// `n_uname` of the `Tattach`, or `NONUNAME`.
    pub n_uname: u32,
}

/// One entry of a directory listing, as [`FileServer::readdir`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's qid.
    pub qid: Qid,
    /// The cookie that continues the listing after this entry (passed back as `offset`).
    pub offset: u64,
    /// Linux `d_type` (`DT_DIR` = 4, `DT_REG` = 8, `DT_LNK` = 10, ...).
    pub kind: u8,
    /// The entry's name (never empty, never containing `/`).
    pub name: String,
}

/// Linux `d_type` values for [`DirEntry::kind`].
pub mod dtype {
    /// Unknown.
    pub const DT_UNKNOWN: u8 = 0;
    /// Character device.
    pub const DT_CHR: u8 = 2;
    /// Directory.
    pub const DT_DIR: u8 = 4;
    /// Regular file.
    pub const DT_REG: u8 = 8;
    /// Symbolic link.
    pub const DT_LNK: u8 = 10;
}

/// A lock request's outcome, `Rlock`'s status byte (diod's `protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStatus {
    /// The lock was granted (or released).
    Success = 0,
    /// Someone else holds a conflicting lock.
    Blocked = 1,
    /// An error.
    Error = 2,
    /// The server gave up waiting.
    Grace = 3,
}

/// A file server: a tree of files that the 9P server framework serves to clients.
///
/// Linux open flags (`O_RDONLY` = 0, `O_WRONLY` = 1, `O_RDWR` = 2, `O_CREAT` = 0o100,
/// `O_EXCL` = 0o200, `O_TRUNC` = 0o1000, `O_APPEND` = 0o2000, `O_DIRECTORY` = 0o200000, ...)
/// are the flag vocabulary for both dialects: the framework converts 9P2000's `mode` byte
/// (`OREAD`, `OWRITE`, `ORDWR`, `OEXEC`, `OTRUNC`, `ORCLOSE`) to them.
// Futures here run on one core's executor and are never sent across cores, so the missing
// `Send` bound that `async_fn_in_trait` warns about is the intended contract.
#[allow(async_fn_in_trait)]
pub trait FileServer: 'static {
    /// The server's state for one fid.
    type Fid: 'static;

    /// `Tattach`: the root of the tree named `aname`.
    fn attach(&self, aname: &str, who: &Credentials) -> Result<Self::Fid, Errno>;

    /// The qid of the file `fid` names.
    fn qid(&self, fid: &Self::Fid) -> Qid;

    /// One step of a `Twalk`: the file `name` inside directory `dir` (`..` is the parent; at
    /// the root of the tree, `..` is the root itself). Never changes `dir`.
    fn walk(&self, dir: &Self::Fid, name: &str) -> Result<Self::Fid, Errno>;

    /// A `Twalk` with no names: a second fid for the same file, not open.
    fn clone_fid(&self, fid: &Self::Fid) -> Result<Self::Fid, Errno>;

    /// `Tlopen` / `Topen`: opens `fid` with Linux `flags`. Returns the qid and the iounit
    /// (0 for "msize minus the header").
    fn open(&self, fid: &Self::Fid, flags: u32) -> Result<(Qid, u32), Errno>;

    /// `Tlcreate` / `Tcreate` of a file: creates `name` in directory `dir` with permission
    /// `mode` and opens it with `flags`. The returned fid state replaces `dir`'s (as the
    /// protocol says, the fid now names the new, open file).
    fn create(
        &self,
        dir: &Self::Fid,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(Self::Fid, u32), Errno> {
        let _ = (dir, name, flags, mode, gid);
        Err(EOPNOTSUPP)
    }

    /// `Tread` / `Tread` on an open file: at most `count` bytes from `offset`. An empty buffer
    /// is end of file. May wait (a device, a connection); dropping the future cancels it.
    async fn read(&self, fid: &Self::Fid, offset: u64, count: u32) -> Result<IoBuf, Errno>;

    /// `Twrite`: writes `data` at `offset`, returning how many bytes were taken. May wait.
    async fn write(&self, fid: &Self::Fid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let _ = (fid, offset, data);
        Err(EOPNOTSUPP)
    }

    /// `Treaddir` (and the framework's 9P2000 directory reads): entries of the open directory
    /// `fid` after cookie `offset` (0 = from the start), at most `max` of them; an empty list
    /// is the end. `.` and `..` may be included; the framework drops them for 9P2000.
    fn readdir(&self, fid: &Self::Fid, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno>;

    /// `Tgetattr` / `Tstat`: the file's attributes.
    fn getattr(&self, fid: &Self::Fid) -> Result<Attr, Errno>;

    /// `Tsetattr` / `Twstat`: changes the attributes `attr.valid` selects.
    fn setattr(&self, fid: &Self::Fid, attr: &SetAttr) -> Result<(), Errno> {
        let _ = (fid, attr);
        Err(EOPNOTSUPP)
    }

    /// `Tclunk`: the fid is forgotten. Releases whatever the fid held.
    fn clunk(&self, fid: Self::Fid) {
        drop(fid);
    }

    /// `Tremove`: removes the file `fid` names (the fid is clunked whatever the outcome).
    fn remove(&self, fid: Self::Fid) -> Result<(), Errno> {
        drop(fid);
        Err(EOPNOTSUPP)
    }

    /// `Tmkdir` / `Tcreate` with `DMDIR`: creates directory `name` in `dir`.
    fn mkdir(&self, dir: &Self::Fid, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        let _ = (dir, name, mode, gid);
        Err(EOPNOTSUPP)
    }

    /// `Tsymlink`: creates symbolic link `name` in `dir` pointing at `target`.
    fn symlink(&self, dir: &Self::Fid, name: &str, target: &str, gid: u32) -> Result<Qid, Errno> {
        let _ = (dir, name, target, gid);
        Err(EOPNOTSUPP)
    }

    /// `Tmknod`: creates a device node or fifo `name` in `dir`.
    fn mknod(
        &self,
        dir: &Self::Fid,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    ) -> Result<Qid, Errno> {
        let _ = (dir, name, mode, major, minor, gid);
        Err(EOPNOTSUPP)
    }

    /// `Treadlink`: the target of the symbolic link `fid` names.
    fn readlink(&self, fid: &Self::Fid) -> Result<String, Errno> {
        let _ = fid;
        Err(EOPNOTSUPP)
    }

    /// `Tlink`: a hard link `name` in `dir` to the file `target` names.
    fn link(&self, dir: &Self::Fid, target: &Self::Fid, name: &str) -> Result<(), Errno> {
        let _ = (dir, target, name);
        Err(EOPNOTSUPP)
    }

    /// `Trename` (and `Twstat` of a name): moves the file `fid` names to `name` in `new_dir`,
    /// or in its own directory when `new_dir` is `None`.
    fn rename(
        &self,
        fid: &Self::Fid,
        new_dir: Option<&Self::Fid>,
        name: &str,
    ) -> Result<(), Errno> {
        let _ = (fid, new_dir, name);
        Err(EOPNOTSUPP)
    }

    /// `Trenameat`: moves `old_name` in `old_dir` to `new_name` in `new_dir`.
    fn renameat(
        &self,
        old_dir: &Self::Fid,
        old_name: &str,
        new_dir: &Self::Fid,
        new_name: &str,
    ) -> Result<(), Errno> {
        let _ = (old_dir, old_name, new_dir, new_name);
        Err(EOPNOTSUPP)
    }

    /// `Tunlinkat`: removes `name` from `dir` (`flags` may hold `AT_REMOVEDIR` = 0x200).
    fn unlinkat(&self, dir: &Self::Fid, name: &str, flags: u32) -> Result<(), Errno> {
        let _ = (dir, name, flags);
        Err(EOPNOTSUPP)
    }

    /// `Tstatfs`: the file system's statistics.
    fn statfs(&self, fid: &Self::Fid) -> Result<StatFs, Errno> {
        let _ = fid;
        Err(EOPNOTSUPP)
    }

    /// `Tfsync`: flushes the open file to stable storage (`datasync` as fdatasync).
    fn fsync(&self, fid: &Self::Fid, datasync: bool) -> Result<(), Errno> {
        let _ = (fid, datasync);
        Ok(())
    }

    /// `Tlock`: takes or releases a POSIX record lock (`flags` bit 0: the client would block).
    fn lock(&self, fid: &Self::Fid, lock: &Flock<'_>, flags: u32) -> Result<LockStatus, Errno> {
        let _ = (fid, lock, flags);
        Err(EOPNOTSUPP)
    }

    /// `Tgetlock`: the first lock that would conflict with `lock`, or `lock` with type
    /// `F_UNLCK` (2) if none would.
    fn getlock(&self, fid: &Self::Fid, lock: &Flock<'_>) -> Result<(u8, u64, u64, u32), Errno> {
        let _ = (fid, lock);
        Err(EOPNOTSUPP)
    }

    /// `Txattrwalk`: the size of extended attribute `name` of `fid` (all names, NUL
    /// separated, when `name` is empty), and a fid state from which it can be read.
    fn xattrwalk(&self, fid: &Self::Fid, name: &str) -> Result<(Self::Fid, u64), Errno> {
        let _ = (fid, name);
        Err(EOPNOTSUPP)
    }

    /// `Txattrcreate`: turns `fid` into a writer for extended attribute `name`.
    fn xattrcreate(&self, fid: &Self::Fid, name: &str, size: u64, flags: u32) -> Result<(), Errno> {
        let _ = (fid, name, size, flags);
        Err(EOPNOTSUPP)
    }
}
