//! The open flags of `Tlopen` and `Tlcreate`, translated to the host's.
//!
//! 9P2000.L carries Linux's generic (x86) flag values, which diod's `protocol.md` lists as
//! `P9_DOTL_*`; they are decoded bit by bit here so the export is right on any host
//! architecture. Flags the export sets itself (`O_CLOEXEC`, `O_NOFOLLOW`, `O_NOCTTY`) or must
//! not honor (`O_DIRECT`, whose alignment rules the server's buffers do not meet; `O_NOATIME`,
//! which fails for files the server does not own; `O_ASYNC`) are dropped.

use cairn_9p::errno::{Errno, EINVAL};

/// `P9_DOTL_*` open flags (diod's `protocol.md`, Linux's asm-generic `fcntl.h`).
pub(crate) mod dotl {
    /// Access mode mask.
    pub const ACCMODE: u32 = 0o3;
    /// Write only.
    pub const WRONLY: u32 = 0o1;
    /// Read and write.
    pub const RDWR: u32 = 0o2;
    /// Truncate.
    pub const TRUNC: u32 = 0o1000;
    /// Append.
    pub const APPEND: u32 = 0o2000;
    /// Non-blocking.
    pub const NONBLOCK: u32 = 0o4000;
    /// Synchronized data writes.
    pub const DSYNC: u32 = 0o10000;
    /// Must be a directory.
    pub const DIRECTORY: u32 = 0o200000;
    /// Synchronized writes (includes `DSYNC`).
    pub const SYNC: u32 = 0o4010000;
}

/// A decoded open request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenFlags {
    /// `O_RDONLY`, `O_WRONLY` or `O_RDWR`.
    pub access: libc::c_int,
    /// Status flags to keep on the descriptor: `O_APPEND`, `O_NONBLOCK`, `O_DSYNC`, `O_SYNC`.
    pub status: libc::c_int,
    /// `O_DIRECTORY` was asked for.
    pub directory: bool,
    /// `O_TRUNC` was asked for.
    pub truncate: bool,
}

impl OpenFlags {
    /// Decodes 9P2000.L flags (`EINVAL` for access mode 3).
    pub fn from_dotl(flags: u32) -> Result<OpenFlags, Errno> {
        let access = match flags & dotl::ACCMODE {
            0 => libc::O_RDONLY,
            dotl::WRONLY => libc::O_WRONLY,
            dotl::RDWR => libc::O_RDWR,
            _ => return Err(EINVAL),
        };
        let mut status = 0;
        if flags & dotl::APPEND != 0 {
            status |= libc::O_APPEND;
        }
        if flags & dotl::NONBLOCK != 0 {
            status |= libc::O_NONBLOCK;
        }
        if flags & dotl::SYNC == dotl::SYNC {
            status |= libc::O_SYNC;
        } else if flags & dotl::DSYNC != 0 {
            status |= libc::O_DSYNC;
        }
        Ok(OpenFlags {
            access,
            status,
            directory: flags & dotl::DIRECTORY != 0,
            truncate: flags & dotl::TRUNC != 0,
        })
    }

    /// Whether the request would change the file (`EROFS` on a read-only export).
    pub fn writes(&self) -> bool {
        self.access != libc::O_RDONLY || self.truncate
    }

    /// The host flags for open: access mode and status flags (no `O_TRUNC`, which the export
    /// applies itself once it has checked that it opened the right file).
    pub fn host(&self) -> libc::c_int {
        self.access | self.status | if self.directory { libc::O_DIRECTORY } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_access_and_status() {
        let f = OpenFlags::from_dotl(dotl::RDWR | dotl::APPEND | dotl::TRUNC | 0o40000).unwrap();
        assert_eq!(f.access, libc::O_RDWR);
        assert_eq!(f.status, libc::O_APPEND);
        assert!(f.truncate && f.writes());
        assert_eq!(f.host(), libc::O_RDWR | libc::O_APPEND);
        let f = OpenFlags::from_dotl(dotl::DIRECTORY | dotl::SYNC).unwrap();
        assert_eq!(f.host(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_SYNC);
        assert!(!f.writes());
        assert_eq!(OpenFlags::from_dotl(3), Err(EINVAL));
    }
}
