//! Linux errno values as 9P2000.L's `Rlerror` carries them, and the strings 9P2000's `Rerror`
//! carries for the same conditions.
//!
//! 9P2000.L (diod's `protocol.md`) sends the Linux errno number; plain 9P2000 (intro(5)) sends a
//! string. File servers in cairn report an [`Errno`] and the server framework picks the form the
//! connection's dialect wants, so a server is written once for both.

/// A Linux errno number, as `Rlerror` carries it.
pub type Errno = u32;

/// Operation not permitted.
pub const EPERM: Errno = 1;
/// No such file or directory.
pub const ENOENT: Errno = 2;
/// Interrupted: the reply to a request that `Tflush` cancelled.
pub const EINTR: Errno = 4;
/// Input/output error.
pub const EIO: Errno = 5;
/// Bad file descriptor: a fid that is not open, or open the wrong way.
pub const EBADF: Errno = 9;
/// Try again.
pub const EAGAIN: Errno = 11;
/// Out of memory.
pub const ENOMEM: Errno = 12;
/// Permission denied.
pub const EACCES: Errno = 13;
/// Device or resource busy.
pub const EBUSY: Errno = 16;
/// File exists.
pub const EEXIST: Errno = 17;
/// Cross-device link.
pub const EXDEV: Errno = 18;
/// Not a directory.
pub const ENOTDIR: Errno = 20;
/// Is a directory.
pub const EISDIR: Errno = 21;
/// Invalid argument.
pub const EINVAL: Errno = 22;
/// Too many open files.
pub const EMFILE: Errno = 24;
/// File too large.
pub const EFBIG: Errno = 27;
/// No space left on device.
pub const ENOSPC: Errno = 28;
/// Illegal seek.
pub const ESPIPE: Errno = 29;
/// Read-only file system.
pub const EROFS: Errno = 30;
/// Too many links.
pub const EMLINK: Errno = 31;
/// Broken pipe.
pub const EPIPE: Errno = 32;
/// Result too large.
pub const ERANGE: Errno = 34;
/// File name too long.
pub const ENAMETOOLONG: Errno = 36;
/// No locks available.
pub const ENOLCK: Errno = 37;
/// Function not implemented.
pub const ENOSYS: Errno = 38;
/// Directory not empty.
pub const ENOTEMPTY: Errno = 39;
/// Too many levels of symbolic links.
pub const ELOOP: Errno = 40;
/// No data available (no such extended attribute).
pub const ENODATA: Errno = 61;
/// Protocol error: a message that does not fit the protocol.
pub const EPROTO: Errno = 71;
/// Value too large for defined data type.
pub const EOVERFLOW: Errno = 75;
/// Operation not supported.
pub const EOPNOTSUPP: Errno = 95;
/// Address already in use.
pub const EADDRINUSE: Errno = 98;
/// Cannot assign requested address.
pub const EADDRNOTAVAIL: Errno = 99;
/// Network is unreachable.
pub const ENETUNREACH: Errno = 101;
/// Connection reset by peer.
pub const ECONNRESET: Errno = 104;
/// Transport endpoint is not connected.
pub const ENOTCONN: Errno = 107;
/// Connection timed out.
pub const ETIMEDOUT: Errno = 110;
/// Connection refused.
pub const ECONNREFUSED: Errno = 111;
/// No route to host.
pub const EHOSTUNREACH: Errno = 113;

/// The text 9P2000's `Rerror` carries for `errno`: Plan 9's wording where Plan 9 has the
/// condition (`file does not exist`, `permission denied`, ...), else the C library's
/// `strerror` text.
pub fn errno_string(errno: Errno) -> &'static str {
    match errno {
        EPERM => "operation not permitted",
        ENOENT => "file does not exist",
        EINTR => "interrupted",
        EIO => "i/o error",
        EBADF => "fid not open",
        EAGAIN => "resource temporarily unavailable",
        ENOMEM => "out of memory",
        EACCES => "permission denied",
        EBUSY => "device or resource busy",
        EEXIST => "file already exists",
        EXDEV => "cross-device link",
        ENOTDIR => "not a directory",
        EISDIR => "is a directory",
        EINVAL => "bad arg in system call",
        EMFILE => "too many open files",
        EFBIG => "file too large",
        ENOSPC => "file system full",
        ESPIPE => "illegal seek",
        EROFS => "read-only file system",
        EMLINK => "too many links",
        EPIPE => "i/o on hungup channel",
        ERANGE => "result too large",
        ENAMETOOLONG => "file name too long",
        ENOLCK => "no locks available",
        ENOSYS => "function not implemented",
        ENOTEMPTY => "directory not empty",
        ELOOP => "too many levels of symbolic links",
        ENODATA => "no data available",
        EPROTO => "protocol botch",
        EOVERFLOW => "value too large for defined data type",
        EOPNOTSUPP => "operation not supported",
        EADDRINUSE => "address in use",
        EADDRNOTAVAIL => "cannot assign requested address",
        ENETUNREACH => "network unreachable",
        ECONNRESET => "connection reset by peer",
        ENOTCONN => "not connected",
        ETIMEDOUT => "connection timed out",
        ECONNREFUSED => "connection refused",
        EHOSTUNREACH => "no route to host",
        _ => "i/o error",
    }
}

/// The errno a 9P2000 `Rerror` string stands for, for clients that want one number for both
/// dialects: the inverse of [`errno_string`], [`EIO`] for any other text.
pub fn errno_from_string(ename: &str) -> Errno {
    const KNOWN: [Errno; 39] = [
        EPERM,
        ENOENT,
        EINTR,
        EIO,
        EBADF,
        EAGAIN,
        ENOMEM,
        EACCES,
        EBUSY,
        EEXIST,
        EXDEV,
        ENOTDIR,
        EISDIR,
        EINVAL,
        EMFILE,
        EFBIG,
        ENOSPC,
        ESPIPE,
        EROFS,
        EMLINK,
        EPIPE,
        ERANGE,
        ENAMETOOLONG,
        ENOLCK,
        ENOSYS,
        ENOTEMPTY,
        ELOOP,
        ENODATA,
        EPROTO,
        EOVERFLOW,
        EOPNOTSUPP,
        EADDRINUSE,
        EADDRNOTAVAIL,
        ENETUNREACH,
        ECONNRESET,
        ENOTCONN,
        ETIMEDOUT,
        ECONNREFUSED,
        EHOSTUNREACH,
    ];
    KNOWN.into_iter().find(|&e| errno_string(e) == ename).unwrap_or(EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_map_back_to_their_errno() {
        for errno in [ENOENT, EACCES, EEXIST, ENOTEMPTY, EROFS, ECONNREFUSED, EINTR] {
            assert_eq!(errno_from_string(errno_string(errno)), errno);
        }
        assert_eq!(errno_from_string("some other text"), EIO);
    }
}
