//! Extended attributes through 9P2000.L's `Txattrwalk` and `Txattrcreate` (diod's
//! `protocol.md`): a walked fid reads an attribute's value (or, for the empty name, the
//! NUL-separated list of names); a created one collects the value written to it and sets the
//! attribute when it is clunked.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use cairn_9p::errno::{Errno, EINVAL, EIO, ERANGE};
use cairn_rt::iobuf::IoBuf;

use super::fid::{ExportFid, Xattr};
use super::sys::{self, SysResult};

/// Linux's `XATTR_SIZE_MAX`: the largest value the kernel accepts.
const SIZE_MAX: u64 = 65536;

/// `E2BIG`: an attribute larger than the kernel allows.
const E2BIG: Errno = libc::E2BIG as Errno;

/// The value of attribute `name` of the open file `fd`, or all names when `name` is empty.
pub(crate) fn fetch(fd: BorrowedFd<'_>, name: &str) -> SysResult<Vec<u8>> {
    let cname = if name.is_empty() { None } else { Some(sys::cstring(name)?) };
    // The value may grow between asking its size and reading it: ERANGE means ask again.
    for _ in 0..8 {
        let size = match &cname {
            Some(cname) => sys::fgetxattr(fd, cname, &mut [])?,
            None => sys::flistxattr(fd, &mut [])?,
        };
        let mut buf = vec![0u8; size];
        let got = match &cname {
            Some(cname) => sys::fgetxattr(fd, cname, &mut buf),
            None => sys::flistxattr(fd, &mut buf),
        };
        match got {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(errno) if errno == ERANGE => continue,
            Err(errno) => return Err(errno),
        }
    }
    Err(ERANGE)
}

/// The state of a fid that `Txattrcreate` turned into a writer of attribute `name`.
pub(crate) fn writer(file: OwnedFd, name: &str, size: u64, flags: u32) -> SysResult<Xattr> {
    if size > SIZE_MAX {
        return Err(E2BIG);
    }
    let known = (libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32;
    if flags & !known != 0 {
        return Err(EINVAL);
    }
    let name = sys::cstring(name)?;
    let capacity = usize::try_from(size).map_err(|_| E2BIG)?;
    Ok(Xattr::Write {
        name,
        size,
        flags: flags as libc::c_int,
        data: Vec::with_capacity(capacity),
        file,
    })
}

/// A read of an attribute fid: `Some(bytes)`, or `None` if `fid` is not one.
pub(crate) fn read(fid: &ExportFid, offset: u64, count: u32) -> SysResult<Option<IoBuf>> {
    let xattr = fid.xattr.borrow();
    match xattr.as_ref() {
        None => Ok(None),
        Some(Xattr::Write { .. }) => Err(libc::EBADF as Errno),
        Some(Xattr::Read(data)) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
            let end = start.saturating_add(count as usize).min(data.len());
            Ok(Some(IoBuf::copy_from_slice(&data[start..end])))
        }
    }
}

/// A write to an attribute fid: `Some(count)`, or `None` if `fid` is not one.
pub(crate) fn write(fid: &ExportFid, offset: u64, bytes: &[u8]) -> SysResult<Option<u32>> {
    let mut xattr = fid.xattr.borrow_mut();
    match xattr.as_mut() {
        None => Ok(None),
        Some(Xattr::Read(_)) => Err(libc::EBADF as Errno),
        Some(Xattr::Write { size, data, .. }) => {
            let end = offset.checked_add(bytes.len() as u64).ok_or(EINVAL)?;
            if end > *size {
                return Err(ERANGE);
            }
            let (start, end) = (offset as usize, end as usize);
            if data.len() < end {
                data.resize(end, 0);
            }
            data[start..end].copy_from_slice(bytes);
            Ok(Some(u32::try_from(bytes.len()).map_err(|_| EIO)?))
        }
    }
}

/// At clunk: sets the attribute a writer fid collected (or removes it, for a size of 0 with
/// `XATTR_REPLACE`, Linux v9fs's removexattr). Nothing for other fids.
pub(crate) fn commit(fid: &ExportFid) -> SysResult<()> {
    let Some(Xattr::Write { name, size, flags, data, file }) = fid.xattr.borrow_mut().take() else {
        return Ok(());
    };
    if data.len() as u64 != size {
        return Err(EINVAL);
    }
    if size == 0 && flags == libc::XATTR_REPLACE {
        return sys::fremovexattr(file.as_fd(), &name);
    }
    sys::fsetxattr(file.as_fd(), &name, &data, flags)
}
