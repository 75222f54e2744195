//! Host directory export: a [`FileServer`] serving one host directory, as diod and npfs do
//! (issue 3, part 3: `cairn 9p serve --export DIR [--read-only]`).
//!
//! # Nothing outside the directory is reachable
//!
//! The export never resolves a path string. Every fid holds an `O_PATH` descriptor of the file
//! it names (`ExportFid`), and every operation is a system call on such a descriptor
//! (`AT_EMPTY_PATH`) or on a directory descriptor plus one name that the client sent and that
//! the export checked holds no `/` and is not `""`, `.` or `..` (else `EINVAL`, or `ENOENT` for
//! `""`). The pieces:
//!
//! - **Walk** opens each name with openat2(2) relative to the directory fid's descriptor,
//!   with `O_PATH | O_NOFOLLOW` and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS`. A symbolic link is never followed: walking its name gives a fid
//!   for the link itself (what 9P2000.L clients expect; they read it with `Treadlink` and
//!   resolve it themselves), and walking *through* it fails with `ENOTDIR` because its
//!   descriptor is not a directory. The descriptor pins the inode the name had at that instant,
//!   so a directory swapped for a symbolic link between two walk steps (TOCTOU) changes
//!   nothing: the next step starts from the inode the previous step found.
//! - **`..`** at the root is the root (walk(5)). Elsewhere it is the directory's real parent
//!   (openat of `..` on the directory's descriptor), accepted only after climbing from it to
//!   the root, `..` by `..`, finds the root's device and inode; a directory that has left the
//!   tree gives `EACCES`.
//! - **Open** of a directory fid reopens `.` relative to the fid's own descriptor: the very same
//!   inode, no name involved. A non-directory cannot be reopened from an `O_PATH` descriptor
//!   without `/proc/self/fd` (a magic link, which this design refuses), so the fid also keeps
//!   its parent directory's descriptor and its name; open goes through openat2 with the
//!   resolve flags above plus `O_NOFOLLOW | O_NONBLOCK` (a fifo swapped in must not block the
//!   core), then compares the opened file's device and inode with the fid's. A mismatch (the
//!   name now holds another file) is `ESTALE`, a vanished name `ENOENT`, a symbolic link
//!   `ELOOP`. `O_TRUNC` is applied with ftruncate(2) only after that check.
//! - **Attribute changes** use the fid's descriptor itself: fchownat and utimensat with
//!   `AT_EMPTY_PATH`, fchmodat2(2) with `AT_EMPTY_PATH` (falling back to fchmod on a reopened
//!   descriptor before Linux 6.6), ftruncate on an open or reopened descriptor.
//! - **Create, mkdir, symlink, mknod, link, rename, renameat, unlinkat, remove** name a
//!   directory fid's descriptor and a checked name; none of these calls follows a trailing
//!   symbolic link, so none can touch a file outside the tree. `remove` and `rename` of a fid
//!   first check that the fid's parent and name still hold the fid's inode. `link` links the
//!   fid's inode itself (`AT_EMPTY_PATH`, which needs `CAP_DAC_READ_SEARCH`, else the same
//!   check on the parent and name); a fid of a symbolic link to an outside file links the
//!   link, never its target. A symbolic link's target is stored as the client sent it: it is
//!   inert, since the export never follows one.
//! - **mknod** refuses block and character devices (`EPERM`): a device node created inside the
//!   tree would reach a host device, as if the export were mounted `nodev`.
//!
//! openat2 answers `EXDEV` when a resolution would escape the starting directory; with single
//! names and `..` handled above that cannot happen, but if the kernel ever reports it the
//! export answers `EACCES` (an escape is a permission matter to the client, as with diod).
//!
//! Limits of the guarantee: a host process that moves a directory out of the tree while a fid
//! holds it leaves that fid naming a directory outside (true of any server holding
//! descriptors, diod included); `..` still never climbs out of the tree. `remove` and the
//! pre-6.6 `link` fallback check the name's inode just before the call, so a host process that
//! swaps the name in that instant can make them act on the file swapped in, which is still in
//! the tree and not followed.
//!
//! # Other choices
//!
//! - The export acts with the server's own credentials (diod's "squash" mode): the client's
//!   `n_uname` is not adopted. A create's `gid` is applied with fchown when the server may do so
//!   (silently kept as the server's group when that fails with `EPERM`), and the permission bits
//!   a client asks for are applied exactly (the server's umask is undone with fchmod).
//! - Locks are open-file-description locks (`F_OFD_SETLK`): two fids conflict as two processes
//!   would; a blocking request that would block answers `Blocked` and the client retries.
//! - Directory cookies are the file system's own getdents64 `d_off` values, which lseek(2)
//!   resumes from. Names that are not UTF-8 are left out of listings (9P names are UTF-8 and
//!   such a file could not be walked to).
//! - Extended attributes: `Txattrwalk` reads a value or the name list through a reopened
//!   descriptor; `Txattrcreate` collects the value and sets it at clunk (diod's `protocol.md`),
//!   removing the attribute when the size is 0 and the flags say `XATTR_REPLACE`, as Linux's
//!   v9fs sends a removexattr.
//! - A read-only export answers `EROFS` to every operation that would change the tree: open
//!   for writing or with `O_TRUNC`, create, write, setattr, remove, mkdir, symlink, mknod,
//!   link, rename, renameat, unlinkat, xattrcreate.

mod attr;
mod dirent;
mod fid;
mod flags;
mod sys;
mod xattr;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_9p::codec::{lock as lk, setattr, Attr, Flock, Qid, SetAttr, StatFs, NONUNAME};
use cairn_9p::errno::{
    Errno, EACCES, EBADF, EBUSY, EINVAL, EISDIR, ENOENT, ENOTDIR, EPERM, EROFS, EXDEV,
};
use cairn_9p::server::{dtype, Credentials, DirEntry, FileServer, LockStatus};
use cairn_rt::iobuf::IoBuf;

pub use fid::ExportFid;
use fid::{qid_of, qid_path, FileId, Kind, Location, OpenFile};
use flags::OpenFlags;
use sys::SysResult;

/// Stale file handle: a fid's name now holds another file.
const ESTALE: Errno = libc::ESTALE as Errno;

/// The most bytes one read returns (a short read is always allowed; this bounds the buffer).
const MAX_READ: usize = 16 << 20;

/// The most `..` steps [`Export::beneath_root`] climbs before deciding a directory is outside.
const MAX_DEPTH: usize = 4096;

/// Bytes of the getdents64 buffer one `readdir` fills.
const DIRENT_BUF: usize = 32 << 10;

/// How an [`Export`] serves its directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Refuse every change with `EROFS` (`--read-only`).
    pub read_only: bool,
}

/// A host directory served as a 9P file tree: the [`FileServer`] of
/// `cairn 9p serve --export DIR`.
///
/// It is cheap to clone (the root descriptor is shared), and `Send + Sync`, so each core can
/// serve its connections with its own clone.
#[derive(Clone, Debug)]
pub struct Export {
    root: Arc<OwnedFd>,
    root_id: FileId,
    /// The directory as given, and canonicalized: the attach names that select it.
    dir: PathBuf,
    canonical: PathBuf,
    options: ExportOptions,
}

/// `name` as a C string once checked to be a single name (no `/`, not `""`, `.` or `..`),
/// or the errno for it: `ENOENT` for `""` as Linux gives, `EINVAL` for the others.
fn component(name: &str) -> SysResult<CString> {
    match name {
        "" => Err(ENOENT),
        "." | ".." => Err(EINVAL),
        _ if name.contains('/') => Err(EINVAL),
        _ => sys::cstring(name),
    }
}

/// Maps an openat2 escape report to the errno the client gets (see the module doc).
fn escape(errno: Errno) -> Errno {
    if errno == EXDEV {
        EACCES
    } else {
        errno
    }
}

impl Export {
    /// Serves `dir` (which must be a directory) with `options`.
    pub fn new(dir: &Path, options: ExportOptions) -> io::Result<Export> {
        let path = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let errno = |e: Errno| io::Error::from_raw_os_error(e as i32);
        let root = sys::open_path(&path, libc::O_PATH | libc::O_DIRECTORY).map_err(errno)?;
        let st = sys::statx_fd(root.as_fd()).map_err(errno)?;
        Ok(Export {
            root: Arc::new(root),
            root_id: FileId::of(&st),
            dir: dir.to_path_buf(),
            canonical: std::fs::canonicalize(dir)?,
            options,
        })
    }

    /// The options the export was made with.
    pub fn options(&self) -> ExportOptions {
        self.options
    }

    fn root_dev(&self) -> u64 {
        self.root_id.dev
    }

    fn check_writable(&self) -> SysResult<()> {
        if self.options.read_only {
            Err(EROFS)
        } else {
            Ok(())
        }
    }

    /// A new fid for the root.
    fn root_fid(&self) -> SysResult<ExportFid> {
        let st = sys::statx_fd(self.root.as_fd())?;
        Ok(ExportFid::new(Arc::clone(&self.root), &st, self.root_dev(), None, true))
    }

    /// Whether the directory `dir` lies in the tree: climbing `..` from it reaches the root
    /// before the host's `/` (whose `..` is itself).
    fn beneath_root(&self, dir: BorrowedFd<'_>) -> SysResult<bool> {
        let mut id = FileId::of(&sys::statx_fd(dir)?);
        if id == self.root_id {
            return Ok(true);
        }
        let mut current = sys::open_parent(dir)?;
        for _ in 0..MAX_DEPTH {
            let up_id = FileId::of(&sys::statx_fd(current.as_fd())?);
            if up_id == self.root_id {
                return Ok(true);
            }
            if up_id == id {
                return Ok(false);
            }
            id = up_id;
            current = sys::open_parent(current.as_fd())?;
        }
        Ok(false)
    }

    /// A directory fid for its parent (`..`), never above the root.
    fn walk_up(&self, dir: &ExportFid) -> SysResult<ExportFid> {
        if dir.is_root || dir.id == self.root_id {
            return self.root_fid();
        }
        let up = sys::open_parent(dir.path_fd())?;
        let st = sys::statx_fd(up.as_fd())?;
        if FileId::of(&st) == self.root_id {
            return self.root_fid();
        }
        if !self.beneath_root(up.as_fd())? {
            return Err(EACCES);
        }
        Ok(ExportFid::new(Arc::new(up), &st, self.root_dev(), None, false))
    }

    /// A fid for `name` in directory `dir` (not following a symbolic link).
    fn child(&self, dir: &ExportFid, name: CString) -> SysResult<ExportFid> {
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let fd = sys::open_beneath(dir.path_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)
            .map_err(escape)?;
        let st = sys::statx_fd(fd.as_fd())?;
        let location = Location { parent: Arc::clone(&dir.fd), name };
        Ok(ExportFid::new(Arc::new(fd), &st, self.root_dev(), Some(location), false))
    }

    /// Where `fid`'s file sits now, checked to still hold its inode. A directory whose name is
    /// unknown or out of date is found again through its `..`.
    fn locate(&self, fid: &ExportFid) -> SysResult<Location> {
        if fid.is_root || fid.id == self.root_id {
            return Err(EBUSY);
        }
        let known = fid.location.borrow().clone();
        let failure = match known {
            Some(loc) => match sys::statx_name(loc.parent.as_fd(), &loc.name) {
                Ok(st) if FileId::of(&st) == fid.id => return Ok(loc),
                Ok(_) => ESTALE,
                Err(errno) => errno,
            },
            None => ESTALE,
        };
        if fid.kind != Kind::Dir {
            return Err(failure);
        }
        let parent = sys::open_parent(fid.path_fd())?;
        if !self.beneath_root(parent.as_fd())? {
            return Err(EACCES);
        }
        let name = self.find_name(parent.as_fd(), fid.id)?;
        let loc = Location { parent: Arc::new(parent), name };
        *fid.location.borrow_mut() = Some(loc.clone());
        Ok(loc)
    }

    /// The name under which directory `parent` holds the file `id`.
    fn find_name(&self, parent: BorrowedFd<'_>, id: FileId) -> SysResult<CString> {
        let dir = sys::open_beneath(parent, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let mut buf = vec![0u8; DIRENT_BUF];
        loop {
            let n = sys::getdents64(dir.as_fd(), &mut buf)?;
            if n == 0 {
                return Err(ESTALE);
            }
            for entry in dirent::Dirents::new(&buf[..n]) {
                if entry.ino != id.ino || entry.name == b"." || entry.name == b".." {
                    continue;
                }
                let Ok(name) = CString::new(entry.name) else { continue };
                if matches!(sys::statx_name(parent, &name), Ok(st) if FileId::of(&st) == id) {
                    return Ok(name);
                }
            }
        }
    }

    /// A real (not `O_PATH`) descriptor of `fid`'s file opened with host `flags`, checked to be
    /// the fid's inode (see the module doc).
    fn reopen(&self, fid: &ExportFid, flags: libc::c_int) -> SysResult<OwnedFd> {
        match fid.kind {
            Kind::Dir => sys::open_beneath(fid.path_fd(), c".", flags | libc::O_DIRECTORY, 0),
            Kind::Symlink => Err(libc::ELOOP as Errno),
            Kind::Regular | Kind::Special => {
                let loc = fid.location.borrow().clone().ok_or(ESTALE)?;
                let flags = flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
                let fd =
                    sys::open_beneath(loc.parent.as_fd(), &loc.name, flags, 0).map_err(escape)?;
                if FileId::of(&sys::statx_fd(fd.as_fd())?) != fid.id {
                    return Err(ESTALE);
                }
                Ok(fd)
            }
        }
    }

    /// Sets the permission bits of `fid`'s file.
    fn chmod(&self, fid: &ExportFid, mode: u32) -> SysResult<()> {
        match sys::fchmod_path(fid.path_fd(), mode) {
            Err(errno) if errno == libc::ENOSYS as Errno && fid.kind != Kind::Symlink => {
                let fd = self.reopen(fid, libc::O_RDONLY)?;
                sys::fchmod(fd.as_fd(), mode)
            }
            other => other,
        }
    }

    /// Gives a newly made file the group and permission bits the client asked for.
    fn settle_new(&self, fid: &ExportFid, mode: u32, gid: u32) -> SysResult<()> {
        let st = sys::statx_fd(fid.path_fd())?;
        if gid != NONUNAME && gid != st.stx_gid {
            match sys::fchown(fid.path_fd(), None, Some(gid)) {
                Err(errno) if errno == EPERM => {}
                other => other?,
            }
        }
        let st = sys::statx_fd(fid.path_fd())?;
        if fid.kind != Kind::Symlink && u32::from(st.stx_mode) & 0o7777 != mode & 0o7777 {
            self.chmod(fid, mode)?;
        }
        Ok(())
    }

    /// Runs `f` on `fid`'s open descriptor (`EBADF` if the fid is not open).
    fn with_open<T>(
        &self,
        fid: &ExportFid,
        f: impl FnOnce(&OpenFile) -> SysResult<T>,
    ) -> SysResult<T> {
        let open = fid.open.borrow();
        f(open.as_ref().ok_or(EBADF)?)
    }

    /// The qid of a directory entry, without a statx unless the file system gave no type.
    fn entry_qid(&self, dir: BorrowedFd<'_>, dir_id: FileId, entry: &dirent::RawDirent<'_>) -> Qid {
        let mut kind = entry.kind;
        if kind == dtype::DT_UNKNOWN {
            if let Ok(st) = CString::new(entry.name)
                .map_err(|_| EINVAL)
                .and_then(|name| sys::statx_name(dir, &name))
            {
                kind = match Kind::of_mode(u32::from(st.stx_mode)) {
                    Kind::Dir => dtype::DT_DIR,
                    Kind::Symlink => dtype::DT_LNK,
                    Kind::Regular => dtype::DT_REG,
                    Kind::Special => dtype::DT_UNKNOWN,
                };
            }
        }
        let ty = match kind {
            dtype::DT_DIR => Kind::Dir.qid_type(),
            dtype::DT_LNK => Kind::Symlink.qid_type(),
            _ => Kind::Regular.qid_type(),
        };
        let mut id = FileId { dev: dir_id.dev, ino: entry.ino };
        if dir_id == self.root_id && entry.name == b".." {
            id = self.root_id;
        }
        Qid { ty, version: 0, path: qid_path(self.root_dev(), id) }
    }

    fn do_open(&self, fid: &ExportFid, flags: u32) -> SysResult<(Qid, u32)> {
        if fid.open.borrow().is_some() || fid.xattr.borrow().is_some() {
            return Err(EBADF);
        }
        let request = OpenFlags::from_dotl(flags)?;
        if self.options.read_only && request.writes() {
            return Err(EROFS);
        }
        if request.directory && fid.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        if fid.kind == Kind::Dir && request.truncate {
            return Err(EISDIR);
        }
        let fd = self.reopen(fid, request.host())?;
        if fid.kind == Kind::Regular {
            // The O_NONBLOCK that guarded the open goes unless the client asked for it.
            sys::set_status_flags(fd.as_fd(), request.status)?;
            if request.truncate && request.access != libc::O_RDONLY {
                sys::ftruncate(fd.as_fd(), 0)?;
            }
        }
        *fid.open.borrow_mut() = Some(OpenFile { fd, access: request.access });
        Ok((self.qid(fid), 0))
    }

    fn do_create(
        &self,
        dir: &ExportFid,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> SysResult<(ExportFid, u32)> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let name = component(name)?;
        let request = OpenFlags::from_dotl(flags)?;
        let host = request.host() | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = sys::open_beneath(dir.path_fd(), &name, host, mode).map_err(escape)?;
        let st = sys::statx_fd(fd.as_fd())?;
        let path = fd.try_clone().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO) as Errno)?;
        let location = Location { parent: Arc::clone(&dir.fd), name };
        let fid = ExportFid::new(Arc::new(path), &st, self.root_dev(), Some(location), false);
        self.settle_new(&fid, mode, gid)?;
        *fid.open.borrow_mut() = Some(OpenFile { fd, access: request.access });
        Ok((fid, 0))
    }

    fn do_setattr(&self, fid: &ExportFid, attr: &SetAttr) -> SysResult<()> {
        let valid = attr.valid;
        if valid == 0 {
            return Ok(());
        }
        self.check_writable()?;
        if valid & setattr::MODE != 0 {
            self.chmod(fid, attr.mode)?;
        }
        let uid = (valid & setattr::UID != 0).then_some(attr.uid);
        let gid = (valid & setattr::GID != 0).then_some(attr.gid);
        if uid.is_some() || gid.is_some() {
            sys::fchown(fid.path_fd(), uid, gid)?;
        }
        if valid & setattr::SIZE != 0 {
            self.truncate(fid, attr.size)?;
        }
        if let Some(times) = attr::times_of(attr) {
            sys::utimens(fid.path_fd(), &times)?;
        }
        let others = setattr::MODE | setattr::UID | setattr::GID | setattr::SIZE;
        if valid & setattr::CTIME != 0 && valid & others == 0 && attr::times_of(attr).is_none() {
            // A chown to "no change" still stamps the change time (chown(2)).
            sys::fchown(fid.path_fd(), None, None)?;
        }
        Ok(())
    }

    fn truncate(&self, fid: &ExportFid, size: u64) -> SysResult<()> {
        match fid.kind {
            Kind::Dir => return Err(EISDIR),
            Kind::Symlink => return Err(EINVAL),
            Kind::Regular | Kind::Special => {}
        }
        {
            let open = fid.open.borrow();
            if let Some(file) = open.as_ref().filter(|f| f.access != libc::O_RDONLY) {
                return sys::ftruncate(file.fd.as_fd(), size);
            }
        }
        let fd = self.reopen(fid, libc::O_WRONLY)?;
        sys::ftruncate(fd.as_fd(), size)
    }

    fn do_readdir(&self, fid: &ExportFid, offset: u64, max: usize) -> SysResult<Vec<DirEntry>> {
        if fid.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        self.with_open(fid, |file| {
            let fd = file.fd.as_fd();
            sys::seek_to(fd, offset)?;
            let mut entries = Vec::new();
            let mut buf = vec![0u8; DIRENT_BUF];
            while entries.len() < max {
                let n = sys::getdents64(fd, &mut buf)?;
                if n == 0 {
                    break;
                }
                for entry in dirent::Dirents::new(&buf[..n]) {
                    if entries.len() == max {
                        break;
                    }
                    let Ok(name) = std::str::from_utf8(entry.name) else { continue };
                    if name.is_empty() {
                        continue;
                    }
                    entries.push(DirEntry {
                        qid: self.entry_qid(fid.path_fd(), fid.id, &entry),
                        offset: entry.next,
                        kind: entry.kind,
                        name: name.to_owned(),
                    });
                }
            }
            Ok(entries)
        })
    }

    fn do_mkdir(&self, dir: &ExportFid, name: &str, mode: u32, gid: u32) -> SysResult<Qid> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let name = component(name)?;
        sys::mkdirat(dir.path_fd(), &name, mode)?;
        let fid = self.child(dir, name)?;
        self.settle_new(&fid, mode, gid)?;
        Ok(self.qid(&fid))
    }

    fn do_symlink(&self, dir: &ExportFid, name: &str, target: &str, gid: u32) -> SysResult<Qid> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let name = component(name)?;
        let target = sys::cstring(target)?;
        sys::symlinkat(&target, dir.path_fd(), &name)?;
        let fid = self.child(dir, name)?;
        self.settle_new(&fid, 0o777, gid)?;
        Ok(self.qid(&fid))
    }

    fn do_mknod(
        &self,
        dir: &ExportFid,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    ) -> SysResult<Qid> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let kind = mode & libc::S_IFMT;
        if kind == libc::S_IFCHR || kind == libc::S_IFBLK {
            return Err(EPERM);
        }
        if ![0, libc::S_IFREG, libc::S_IFIFO, libc::S_IFSOCK].contains(&kind) {
            return Err(EINVAL);
        }
        let name = component(name)?;
        sys::mknodat(dir.path_fd(), &name, mode, libc::makedev(major, minor))?;
        let fid = self.child(dir, name)?;
        self.settle_new(&fid, mode, gid)?;
        Ok(self.qid(&fid))
    }

    fn do_link(&self, dir: &ExportFid, target: &ExportFid, name: &str) -> SysResult<()> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        if target.kind == Kind::Dir {
            return Err(EPERM);
        }
        let name = component(name)?;
        match sys::link_fd(target.path_fd(), dir.path_fd(), &name) {
            Err(errno) if errno == ENOENT => {
                let loc = self.locate(target)?;
                sys::linkat(loc.parent.as_fd(), &loc.name, dir.path_fd(), &name)
            }
            other => other,
        }
    }

    fn do_rename(&self, fid: &ExportFid, new_dir: Option<&ExportFid>, name: &str) -> SysResult<()> {
        self.check_writable()?;
        let name = component(name)?;
        let loc = self.locate(fid)?;
        let target = match new_dir {
            Some(dir) if dir.kind != Kind::Dir => return Err(ENOTDIR),
            Some(dir) => Arc::clone(&dir.fd),
            None => Arc::clone(&loc.parent),
        };
        sys::renameat(loc.parent.as_fd(), &loc.name, target.as_fd(), &name)?;
        *fid.location.borrow_mut() = Some(Location { parent: target, name });
        Ok(())
    }

    fn do_renameat(
        &self,
        old_dir: &ExportFid,
        old_name: &str,
        new_dir: &ExportFid,
        new_name: &str,
    ) -> SysResult<()> {
        self.check_writable()?;
        if old_dir.kind != Kind::Dir || new_dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        let old = component(old_name)?;
        let new = component(new_name)?;
        sys::renameat(old_dir.path_fd(), &old, new_dir.path_fd(), &new)
    }

    fn do_unlinkat(&self, dir: &ExportFid, name: &str, flags: u32) -> SysResult<()> {
        self.check_writable()?;
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        const AT_REMOVEDIR: u32 = 0x200;
        if flags & !AT_REMOVEDIR != 0 {
            return Err(EINVAL);
        }
        let name = component(name)?;
        let host = if flags & AT_REMOVEDIR != 0 { libc::AT_REMOVEDIR } else { 0 };
        sys::unlinkat(dir.path_fd(), &name, host)
    }

    fn do_remove(&self, fid: &ExportFid) -> SysResult<()> {
        self.check_writable()?;
        let loc = self.locate(fid)?;
        let flags = if fid.kind == Kind::Dir { libc::AT_REMOVEDIR } else { 0 };
        sys::unlinkat(loc.parent.as_fd(), &loc.name, flags)
    }

    fn do_readlink(&self, fid: &ExportFid) -> SysResult<String> {
        if fid.kind != Kind::Symlink {
            return Err(EINVAL);
        }
        let target = sys::readlink_fd(fid.path_fd())?;
        String::from_utf8(target).map_err(|_| libc::EILSEQ as Errno)
    }

    /// A host `flock` for a 9P lock request (`l_pid` 0, as OFD locks require).
    fn host_lock(lock: &Flock<'_>) -> SysResult<libc::flock> {
        let ty = match lock.ty {
            lk::RDLCK => libc::F_RDLCK,
            lk::WRLCK => libc::F_WRLCK,
            lk::UNLCK => libc::F_UNLCK,
            _ => return Err(EINVAL),
        };
        // SAFETY: `flock` is plain old data, for which all-zero bytes are valid.
        let mut host: libc::flock = unsafe { std::mem::zeroed() };
        host.l_type = ty as libc::c_short;
        host.l_whence = libc::SEEK_SET as libc::c_short;
        host.l_start = libc::off_t::try_from(lock.start).map_err(|_| EINVAL)?;
        host.l_len = libc::off_t::try_from(lock.length).map_err(|_| EINVAL)?;
        Ok(host)
    }

    fn do_lock(&self, fid: &ExportFid, lock: &Flock<'_>) -> SysResult<LockStatus> {
        let mut host = Self::host_lock(lock)?;
        self.with_open(fid, |file| {
            match sys::ofd_lock(file.fd.as_fd(), libc::F_OFD_SETLK, &mut host) {
                Ok(()) => Ok(LockStatus::Success),
                Err(errno) if errno == libc::EAGAIN as Errno || errno == EACCES => {
                    Ok(LockStatus::Blocked)
                }
                Err(errno) => Err(errno),
            }
        })
    }

    fn do_getlock(&self, fid: &ExportFid, lock: &Flock<'_>) -> SysResult<(u8, u64, u64, u32)> {
        let mut host = Self::host_lock(lock)?;
        self.with_open(fid, |file| sys::ofd_lock(file.fd.as_fd(), libc::F_OFD_GETLK, &mut host))?;
        if i32::from(host.l_type) == libc::F_UNLCK {
            return Ok((lk::UNLCK, lock.start, lock.length, lock.proc_id));
        }
        let ty = if i32::from(host.l_type) == libc::F_RDLCK { lk::RDLCK } else { lk::WRLCK };
        // An OFD lock has no owning process (`l_pid` is -1): 0 says "unknown".
        let pid = u32::try_from(host.l_pid).unwrap_or(0);
        Ok((ty, host.l_start as u64, host.l_len as u64, pid))
    }
}

/// The byte count of `n`, as the protocol's `u32`.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl FileServer for Export {
    type Fid = ExportFid;

    fn attach(&self, aname: &str, _who: &Credentials) -> Result<ExportFid, Errno> {
        let wanted = Path::new(aname);
        if aname.is_empty() || wanted == self.dir || wanted == self.canonical {
            self.root_fid()
        } else {
            Err(ENOENT)
        }
    }

    fn qid(&self, fid: &ExportFid) -> Qid {
        if let Ok(st) = sys::statx_fd(fid.path_fd()) {
            fid.qid.set(qid_of(self.root_dev(), &st));
        }
        fid.qid.get()
    }

    fn walk(&self, dir: &ExportFid, name: &str) -> Result<ExportFid, Errno> {
        if dir.kind != Kind::Dir {
            return Err(ENOTDIR);
        }
        if name == ".." {
            return self.walk_up(dir);
        }
        self.child(dir, component(name)?)
    }

    fn clone_fid(&self, fid: &ExportFid) -> Result<ExportFid, Errno> {
        Ok(fid.duplicate())
    }

    fn open(&self, fid: &ExportFid, flags: u32) -> Result<(Qid, u32), Errno> {
        self.do_open(fid, flags)
    }

    fn create(
        &self,
        dir: &ExportFid,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(ExportFid, u32), Errno> {
        self.do_create(dir, name, flags, mode, gid)
    }

    async fn read(&self, fid: &ExportFid, offset: u64, count: u32) -> Result<IoBuf, Errno> {
        if let Some(data) = xattr::read(fid, offset, count)? {
            return Ok(data);
        }
        self.with_open(fid, |file| {
            let want = usize::try_from(count).unwrap_or(MAX_READ).min(MAX_READ);
            let mut buf = IoBuf::with_capacity(want);
            let n = sys::pread(file.fd.as_fd(), &mut buf.tailroom_mut()[..want], offset)?;
            buf.claim_tailroom(n).map_err(|_| libc::EIO as Errno)?;
            Ok(buf)
        })
    }

    async fn write(&self, fid: &ExportFid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.check_writable()?;
        if let Some(n) = xattr::write(fid, offset, data)? {
            return Ok(n);
        }
        self.with_open(fid, |file| sys::pwrite(file.fd.as_fd(), data, offset).map(count))
    }

    fn readdir(&self, fid: &ExportFid, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        self.do_readdir(fid, offset, max)
    }

    fn getattr(&self, fid: &ExportFid) -> Result<Attr, Errno> {
        let st = sys::statx_fd(fid.path_fd())?;
        let attr = attr::attr_of(self.root_dev(), &st);
        fid.qid.set(attr.qid);
        Ok(attr)
    }

    fn setattr(&self, fid: &ExportFid, attr: &SetAttr) -> Result<(), Errno> {
        self.do_setattr(fid, attr)
    }

    fn clunk(&self, fid: ExportFid) {
        // A value collected by Txattrcreate is set now; the protocol has no reply to carry a
        // failure (Rclunk is empty and the fid is gone either way).
        let _ = xattr::commit(&fid);
    }

    fn remove(&self, fid: ExportFid) -> Result<(), Errno> {
        self.do_remove(&fid)
    }

    fn mkdir(&self, dir: &ExportFid, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        self.do_mkdir(dir, name, mode, gid)
    }

    fn symlink(&self, dir: &ExportFid, name: &str, target: &str, gid: u32) -> Result<Qid, Errno> {
        self.do_symlink(dir, name, target, gid)
    }

    fn mknod(
        &self,
        dir: &ExportFid,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    ) -> Result<Qid, Errno> {
        self.do_mknod(dir, name, mode, major, minor, gid)
    }

    fn readlink(&self, fid: &ExportFid) -> Result<String, Errno> {
        self.do_readlink(fid)
    }

    fn link(&self, dir: &ExportFid, target: &ExportFid, name: &str) -> Result<(), Errno> {
        self.do_link(dir, target, name)
    }

    fn rename(
        &self,
        fid: &ExportFid,
        new_dir: Option<&ExportFid>,
        name: &str,
    ) -> Result<(), Errno> {
        self.do_rename(fid, new_dir, name)
    }

    fn renameat(
        &self,
        old_dir: &ExportFid,
        old_name: &str,
        new_dir: &ExportFid,
        new_name: &str,
    ) -> Result<(), Errno> {
        self.do_renameat(old_dir, old_name, new_dir, new_name)
    }

    fn unlinkat(&self, dir: &ExportFid, name: &str, flags: u32) -> Result<(), Errno> {
        self.do_unlinkat(dir, name, flags)
    }

    fn statfs(&self, fid: &ExportFid) -> Result<StatFs, Errno> {
        Ok(attr::statfs_of(&sys::fstatfs(fid.path_fd())?))
    }

    fn fsync(&self, fid: &ExportFid, datasync: bool) -> Result<(), Errno> {
        self.with_open(fid, |file| sys::fsync(file.fd.as_fd(), datasync))
    }

    fn lock(&self, fid: &ExportFid, lock: &Flock<'_>, _flags: u32) -> Result<LockStatus, Errno> {
        self.do_lock(fid, lock)
    }

    fn getlock(&self, fid: &ExportFid, lock: &Flock<'_>) -> Result<(u8, u64, u64, u32), Errno> {
        self.do_getlock(fid, lock)
    }

    fn xattrwalk(&self, fid: &ExportFid, name: &str) -> Result<(ExportFid, u64), Errno> {
        let file = self.xattr_source(fid)?;
        let data = xattr::fetch(file.as_fd(), name)?;
        let size = data.len() as u64;
        let walked = fid.duplicate();
        *walked.xattr.borrow_mut() = Some(fid::Xattr::Read(data));
        Ok((walked, size))
    }

    fn xattrcreate(&self, fid: &ExportFid, name: &str, size: u64, flags: u32) -> Result<(), Errno> {
        self.check_writable()?;
        if fid.open.borrow().is_some() || fid.xattr.borrow().is_some() {
            return Err(EBADF);
        }
        let file = self.xattr_source(fid)?;
        *fid.xattr.borrow_mut() = Some(xattr::writer(file, name, size, flags)?);
        Ok(())
    }
}

impl Export {
    /// A descriptor through which `fid`'s extended attributes can be read and written.
    fn xattr_source(&self, fid: &ExportFid) -> SysResult<OwnedFd> {
        if fid.kind == Kind::Symlink {
            return Err(cairn_9p::errno::EOPNOTSUPP);
        }
        self.reopen(fid, libc::O_RDONLY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_names_are_checked_as_linux_would() {
        assert_eq!(component("").err(), Some(ENOENT));
        for bad in [".", "..", "a/b", "/", "a\0b"] {
            assert_eq!(component(bad).err(), Some(EINVAL), "{bad:?}");
        }
        assert_eq!(component("...").unwrap().as_bytes(), b"...");
        assert_eq!(component(".hidden").unwrap().as_bytes(), b".hidden");
        assert_eq!(escape(EXDEV), EACCES);
        assert_eq!(escape(ENOENT), ENOENT);
    }

    #[test]
    fn export_is_shareable_across_cores() {
        fn is_send_sync<T: Send + Sync + Clone>() {}
        is_send_sync::<Export>();
    }

    #[test]
    fn new_needs_an_existing_directory() {
        let missing =
            std::env::temp_dir().join(format!("cairn-export-missing-{}", std::process::id()));
        let err = Export::new(&missing, ExportOptions::default()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let file = std::env::temp_dir().join(format!("cairn-export-file-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let err = Export::new(&file, ExportOptions::default()).unwrap_err();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }
}
