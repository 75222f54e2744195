//! Thin, safe wrappers over the Linux system calls the export makes, each relative to a
//! directory file descriptor and a single path component, each returning the raw errno.
//!
//! Every lookup goes through [`open_beneath`], which is openat2(2) with `RESOLVE_BENEATH`,
//! `RESOLVE_NO_SYMLINKS` and `RESOLVE_NO_MAGICLINKS` (openat2(2), "The `how.resolve` field"):
//! the kernel refuses any resolution that would leave the starting directory, follows no
//! symbolic link, and (with `O_PATH | O_NOFOLLOW`) hands back a descriptor of a trailing symbolic
//! link itself. Every other call here either takes a descriptor (`AT_EMPTY_PATH`) or a directory
//! descriptor plus a name that has no `/` and is not `.` or `..`, and none follows a trailing
//! symbolic link, so none can name a file outside the directory it is given.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use cairn_9p::errno::{Errno, EINVAL, EIO};

/// The outcome of a system call: its value, or the Linux errno it failed with.
pub(crate) type SysResult<T> = Result<T, Errno>;

/// `how.resolve` for every lookup: stay beneath the starting directory, follow no symbolic link
/// (magic `/proc` links included).
pub(crate) const RESOLVE: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// How often a call that the kernel interrupted (`EINTR`) or that raced a rename during
/// openat2's resolution (`EAGAIN`, openat2(2) "ERRORS") is tried before giving up.
const RETRIES: usize = 64;

/// The errno of the last failed call.
fn last_errno() -> Errno {
    let code = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    Errno::try_from(code).unwrap_or(EIO)
}

/// Runs `call` until it stops failing with `EINTR`, mapping `-1` to the errno.
fn retry<T: Copy + PartialOrd + Default>(mut call: impl FnMut() -> T) -> SysResult<T> {
    for _ in 0..RETRIES {
        let ret = call();
        if ret >= T::default() {
            return Ok(ret);
        }
        let errno = last_errno();
        if errno != libc::EINTR as Errno {
            return Err(errno);
        }
    }
    Err(libc::EINTR as Errno)
}

/// A C string of a file name (`EINVAL` if it holds a NUL byte, which no Linux name can).
pub(crate) fn cstring(name: &str) -> SysResult<CString> {
    CString::new(name).map_err(|_| EINVAL)
}

/// The empty path that `AT_EMPTY_PATH` calls take: "the descriptor itself".
const EMPTY: &CStr = c"";

/// The argument structure of openat2(2), `struct open_how` of `<linux/openat2.h>` (libc's own
/// is `#[non_exhaustive]`, so it cannot be built with a literal).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) of `name` relative to `dir` with `flags` (plus `O_CLOEXEC`) and [`RESOLVE`].
pub(crate) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> SysResult<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            u64::from(mode & 0o7777)
        } else {
            0
        },
        resolve: RESOLVE,
    };
    for _ in 0..RETRIES {
        // SAFETY: `name` is NUL-terminated and `how` is a live `open_how` of the size passed; the
        // kernel reads both and writes nothing.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            let fd = libc::c_int::try_from(ret).map_err(|_| EIO)?;
            // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let errno = last_errno();
        if errno != libc::EINTR as Errno && errno != libc::EAGAIN as Errno {
            return Err(errno);
        }
    }
    Err(libc::EAGAIN as Errno)
}

/// openat(2) of the parent directory (`..`) of directory `dir`, as an `O_PATH` descriptor.
///
/// openat2's `RESOLVE_BENEATH` refuses `..` out of the starting directory by design, so the
/// caller checks where the result lies (see `Export::beneath_root`).
pub(crate) fn open_parent(dir: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: the path is a NUL-terminated literal; openat reads it and returns a new descriptor.
    let fd = retry(|| unsafe { libc::openat(dir.as_raw_fd(), c"..".as_ptr(), flags) })?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// open(2) of an absolute or relative host path (the export's root, chosen by the operator).
pub(crate) fn open_path(path: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; open reads it and returns a new descriptor.
    let fd = retry(|| unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A zeroed `statx` result buffer.
fn statx_buf() -> libc::statx {
    // SAFETY: `statx` is plain old data (integers only), for which all-zero bytes are valid.
    unsafe { std::mem::zeroed() }
}

/// The fields the export asks statx(2) for.
const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// statx(2) of the file `fd` refers to itself (`AT_EMPTY_PATH`; a symbolic link is not
/// followed).
pub(crate) fn statx_fd(fd: BorrowedFd<'_>) -> SysResult<libc::statx> {
    statx_at(fd, EMPTY, libc::AT_EMPTY_PATH)
}

/// statx(2) of `name` in directory `dir`, not following a trailing symbolic link.
pub(crate) fn statx_name(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<libc::statx> {
    statx_at(dir, name, 0)
}

fn statx_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> SysResult<libc::statx> {
    let mut buf = statx_buf();
    let flags = flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT;
    // SAFETY: `name` is NUL-terminated and `buf` is a writable `statx` the kernel fills.
    retry(|| unsafe { libc::statx(dir.as_raw_fd(), name.as_ptr(), flags, STATX_MASK, &mut buf) })?;
    Ok(buf)
}

/// The device number of a `statx` result (`makedev(stx_dev_major, stx_dev_minor)`).
pub(crate) fn statx_dev(st: &libc::statx) -> u64 {
    libc::makedev(st.stx_dev_major, st.stx_dev_minor)
}

/// getdents64(2): fills `buf` with `struct linux_dirent64` records from the directory's current
/// position and returns how many bytes it wrote (0 at the end).
pub(crate) fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is writable.
    let n = retry(|| unsafe {
        libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), buf.as_mut_ptr(), buf.len())
    })?;
    usize::try_from(n).map_err(|_| EIO)
}

/// lseek(2) to absolute position `offset` (a directory cookie or a file offset).
pub(crate) fn seek_to(fd: BorrowedFd<'_>, offset: u64) -> SysResult<()> {
    let offset = libc::off_t::try_from(offset).map_err(|_| EINVAL)?;
    // SAFETY: lseek takes only integers.
    retry(|| unsafe { libc::lseek(fd.as_raw_fd(), offset, libc::SEEK_SET) })?;
    Ok(())
}

/// pread(2) into `buf` from `offset`; returns the bytes read.
pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
    let offset = libc::off_t::try_from(offset).map_err(|_| EINVAL)?;
    // SAFETY: the kernel writes at most `buf.len()` bytes into the writable `buf`.
    let n = retry(|| unsafe {
        libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset)
    })?;
    usize::try_from(n).map_err(|_| EIO)
}

/// pwrite(2) of `data` at `offset`; returns the bytes written.
pub(crate) fn pwrite(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> SysResult<usize> {
    let offset = libc::off_t::try_from(offset).map_err(|_| EINVAL)?;
    // SAFETY: the kernel reads at most `data.len()` bytes from `data`.
    let n = retry(|| unsafe {
        libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), offset)
    })?;
    usize::try_from(n).map_err(|_| EIO)
}

/// ftruncate(2).
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> SysResult<()> {
    let size = libc::off_t::try_from(size).map_err(|_| EINVAL)?;
    // SAFETY: ftruncate takes only integers.
    retry(|| unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
    Ok(())
}

/// fsync(2), or fdatasync(2) when `datasync`.
pub(crate) fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> SysResult<()> {
    // SAFETY: both take only a descriptor.
    retry(|| unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })?;
    Ok(())
}

/// fcntl(2) `F_SETFL`: replaces the descriptor's status flags.
pub(crate) fn set_status_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: F_SETFL takes an integer argument.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// fchmod(2) of an open (not `O_PATH`) descriptor.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: fchmod takes only integers.
    retry(|| unsafe { libc::fchmod(fd.as_raw_fd(), mode & 0o7777) })?;
    Ok(())
}

/// fchmodat2(2) (Linux 6.6) of the file `fd` itself (`AT_EMPTY_PATH`), which also accepts
/// `O_PATH` descriptors. `ENOSYS` on older kernels.
pub(crate) fn fchmod_path(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: the path is the empty NUL-terminated literal; the rest are integers.
    retry(|| unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            mode & 0o7777,
            libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// fchownat(2) of the file `fd` itself (`AT_EMPTY_PATH`, works on `O_PATH` descriptors); `None`
/// leaves that id alone (`-1`).
pub(crate) fn fchown(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: the path is the empty NUL-terminated literal; the rest are integers.
    retry(|| unsafe { libc::fchownat(fd.as_raw_fd(), EMPTY.as_ptr(), uid, gid, flags) })?;
    Ok(())
}

/// utimensat(2) of the file `fd` itself (`AT_EMPTY_PATH`, works on `O_PATH` descriptors, and
/// changes a symbolic link itself). `times` may hold `UTIME_NOW` and `UTIME_OMIT`.
pub(crate) fn utimens(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> SysResult<()> {
    // SAFETY: the path is the empty NUL-terminated literal and `times` two live timespecs,
    // which the kernel only reads. (The raw call, because C libraries reject an empty path.)
    retry(|| unsafe {
        libc::syscall(
            libc::SYS_utimensat,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// fstatfs(2) (accepts `O_PATH` descriptors).
pub(crate) fn fstatfs(fd: BorrowedFd<'_>) -> SysResult<libc::statfs> {
    // SAFETY: `statfs` is plain old data, for which all-zero bytes are valid.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel fills the writable `buf`.
    retry(|| unsafe { libc::fstatfs(fd.as_raw_fd(), &mut buf) })?;
    Ok(buf)
}

/// mkdirat(2) of `name` in `dir`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    retry(|| unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode & 0o7777) })?;
    Ok(())
}

/// symlinkat(2): a symbolic link `name` in `dir` holding `target` verbatim.
pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated; the kernel only reads them.
    retry(|| unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}

/// mknodat(2) of `name` in `dir`.
pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> SysResult<()> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    retry(|| unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })?;
    Ok(())
}

/// linkat(2) of the file `fd` itself (`AT_EMPTY_PATH`; needs `CAP_DAC_READ_SEARCH`, else the
/// kernel answers `ENOENT`) as `name` in `dir`.
pub(crate) fn link_fd(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated; the kernel only reads them.
    retry(|| unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// linkat(2) of `old` in `old_dir` as `new` in `new_dir`, not following a symbolic link.
pub(crate) fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated; the kernel only reads them.
    retry(|| unsafe {
        libc::linkat(old_dir.as_raw_fd(), old.as_ptr(), new_dir.as_raw_fd(), new.as_ptr(), 0)
    })?;
    Ok(())
}

/// renameat(2) of `old` in `old_dir` to `new` in `new_dir`.
pub(crate) fn renameat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated; the kernel only reads them.
    retry(|| unsafe {
        libc::renameat(old_dir.as_raw_fd(), old.as_ptr(), new_dir.as_raw_fd(), new.as_ptr())
    })?;
    Ok(())
}

/// unlinkat(2) of `name` in `dir` (`AT_REMOVEDIR` in `flags` for a directory).
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// readlinkat(2) of the symbolic link `fd` itself (an `O_PATH | O_NOFOLLOW` descriptor).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into the writable `buf`.
        let n = retry(|| unsafe {
            libc::readlinkat(fd.as_raw_fd(), EMPTY.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        })?;
        let n = usize::try_from(n).map_err(|_| EIO)?;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        if buf.len() >= 1 << 16 {
            return Err(libc::ENAMETOOLONG as Errno);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// fcntl(2) with an open-file-description lock command (`F_OFD_SETLK`, `F_OFD_GETLK`).
pub(crate) fn ofd_lock(
    fd: BorrowedFd<'_>,
    cmd: libc::c_int,
    lock: &mut libc::flock,
) -> SysResult<()> {
    // SAFETY: the OFD lock commands read and (GETLK) write the live `flock` passed.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), cmd, lock as *mut libc::flock) })?;
    Ok(())
}

/// fgetxattr(2) of an open descriptor into `buf` (an empty `buf` asks for the size).
pub(crate) fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into the writable `buf`.
    let n = retry(|| unsafe {
        libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    usize::try_from(n).map_err(|_| EIO)
}

/// flistxattr(2) of an open descriptor into `buf` (an empty `buf` asks for the size).
pub(crate) fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into the writable `buf`.
    let n =
        retry(|| unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
    usize::try_from(n).map_err(|_| EIO)
}

/// fsetxattr(2) of an open descriptor (`flags`: `XATTR_CREATE`, `XATTR_REPLACE`).
pub(crate) fn fsetxattr(
    fd: BorrowedFd<'_>,
    name: &CStr,
    value: &[u8],
    flags: libc::c_int,
) -> SysResult<()> {
    // SAFETY: the kernel reads at most `value.len()` bytes from `value`; `name` is
    // NUL-terminated.
    retry(|| unsafe {
        libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), flags)
    })?;
    Ok(())
}

/// fremovexattr(2) of an open descriptor.
pub(crate) fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    retry(|| unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}
