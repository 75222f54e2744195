//! The export's state for one fid: a descriptor of the file it names, where the file sits
//! (a parent directory descriptor and a name), and, once opened, the open descriptor.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use cairn_9p::codec::{qid_type, Qid};

use super::sys;

/// A file's identity on the host: device and inode numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity in a statx result.
    pub fn of(st: &libc::statx) -> FileId {
        FileId { dev: sys::statx_dev(st), ino: st.stx_ino }
    }
}

/// What kind of file a fid names; fixed for the life of the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A regular file.
    Regular,
    /// A fifo, socket or device node.
    Special,
}

impl Kind {
    /// The kind of a Linux `st_mode`.
    pub fn of_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFREG => Kind::Regular,
            _ => Kind::Special,
        }
    }

    /// The qid type bits (intro(5); `QTSYMLINK` from 9P2000.u/.L).
    pub fn qid_type(self) -> u8 {
        match self {
            Kind::Dir => qid_type::QTDIR,
            Kind::Symlink => qid_type::QTSYMLINK,
            Kind::Regular | Kind::Special => qid_type::QTFILE,
        }
    }
}

/// The qid path of a host file: its inode number, with the device folded into the top bits
/// for files on another device than the export's root, and never 0 (fs.rs: some clients take a
/// path of 0 for "no file").
pub(crate) fn qid_path(root_dev: u64, id: FileId) -> u64 {
    let path = if id.dev == root_dev {
        id.ino
    } else {
        // Fibonacci hashing spreads the device number over the top 16 bits, which inode
        // numbers of ordinary file systems do not reach.
        id.ino
            ^ (id.dev.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_0000_0000_0000)
    };
    if path == 0 {
        1 << 63
    } else {
        path
    }
}

/// The qid of a host file from its statx result; the version is taken from the modification
/// time so that it changes when the file does.
pub(crate) fn qid_of(root_dev: u64, st: &libc::statx) -> Qid {
    let kind = Kind::of_mode(u32::from(st.stx_mode));
    let version = (st.stx_mtime.tv_sec as u32) ^ st.stx_mtime.tv_nsec.rotate_left(16);
    Qid { ty: kind.qid_type(), version, path: qid_path(root_dev, FileId::of(st)) }
}

/// Where a file sits: a descriptor of its parent directory and its name there.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    /// The parent directory (an `O_PATH` descriptor).
    pub parent: Arc<OwnedFd>,
    /// The file's name in it (one component: no `/`, not `.` or `..`).
    pub name: CString,
}

/// An open fid's descriptor.
#[derive(Debug)]
pub(crate) struct OpenFile {
    /// The descriptor, opened with the client's access mode.
    pub fd: OwnedFd,
    /// The Linux access mode it was opened with (`O_RDONLY`, `O_WRONLY`, `O_RDWR`).
    pub access: libc::c_int,
}

/// A fid made by `Txattrwalk` or turned by `Txattrcreate`: the attribute's bytes.
#[derive(Debug)]
pub(crate) enum Xattr {
    /// The value (or the NUL-separated name list) to read.
    Read(Vec<u8>),
    /// A value being written, set when the fid is clunked (diod's `protocol.md`).
    Write {
        /// Attribute name.
        name: CString,
        /// The size the client announced.
        size: u64,
        /// `XATTR_CREATE` / `XATTR_REPLACE`.
        flags: libc::c_int,
        /// The bytes written so far.
        data: Vec<u8>,
        /// An open descriptor of the file whose attribute it is.
        file: OwnedFd,
    },
}

/// The export's state for one fid (the `Fid` of its `FileServer` implementation).
///
/// It holds an `O_PATH` descriptor of the file (shared among clones), which pins the inode and
/// is what every attribute call uses (`AT_EMPTY_PATH`), and a [`Location`] used only to reopen
/// non-directories and to rename or remove the file.
#[derive(Debug)]
pub struct ExportFid {
    pub(crate) fd: Arc<OwnedFd>,
    pub(crate) id: FileId,
    pub(crate) kind: Kind,
    /// `None` for the root, and for a directory reached by `..` until it is needed.
    pub(crate) location: RefCell<Option<Location>>,
    pub(crate) is_root: bool,
    pub(crate) open: RefCell<Option<OpenFile>>,
    pub(crate) xattr: RefCell<Option<Xattr>>,
    /// The qid last seen, answered if a fresh statx fails.
    pub(crate) qid: std::cell::Cell<Qid>,
}

impl ExportFid {
    /// A fid naming the file `fd` refers to, described by `st`.
    pub(crate) fn new(
        fd: Arc<OwnedFd>,
        st: &libc::statx,
        root_dev: u64,
        location: Option<Location>,
        is_root: bool,
    ) -> ExportFid {
        ExportFid {
            fd,
            id: FileId::of(st),
            kind: Kind::of_mode(u32::from(st.stx_mode)),
            location: RefCell::new(location),
            is_root,
            open: RefCell::new(None),
            xattr: RefCell::new(None),
            qid: std::cell::Cell::new(qid_of(root_dev, st)),
        }
    }

    /// A second, unopened fid for the same file.
    pub(crate) fn duplicate(&self) -> ExportFid {
        ExportFid {
            fd: Arc::clone(&self.fd),
            id: self.id,
            kind: self.kind,
            location: RefCell::new(self.location.borrow().clone()),
            is_root: self.is_root,
            open: RefCell::new(None),
            xattr: RefCell::new(None),
            qid: std::cell::Cell::new(self.qid.get()),
        }
    }

    /// The `O_PATH` descriptor of the file.
    pub(crate) fn path_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qid_path_is_never_zero_and_separates_devices() {
        assert_eq!(qid_path(5, FileId { dev: 5, ino: 42 }), 42);
        assert_ne!(qid_path(5, FileId { dev: 5, ino: 0 }), 0);
        let other = qid_path(5, FileId { dev: 6, ino: 42 });
        assert_ne!(other, 42);
        assert_eq!(other & 0xFFFF_FFFF, 42);
        assert_ne!(
            qid_path(5, FileId { dev: 6, ino: 42 }),
            qid_path(5, FileId { dev: 7, ino: 42 })
        );
    }

    #[test]
    fn kinds_map_to_qid_types() {
        assert_eq!(Kind::of_mode(libc::S_IFDIR | 0o755).qid_type(), qid_type::QTDIR);
        assert_eq!(Kind::of_mode(libc::S_IFLNK | 0o777).qid_type(), qid_type::QTSYMLINK);
        assert_eq!(Kind::of_mode(libc::S_IFREG | 0o644).qid_type(), qid_type::QTFILE);
        assert_eq!(Kind::of_mode(libc::S_IFIFO | 0o644), Kind::Special);
    }
}
