//! 9P2000's own requests, translated onto the 9P2000.L-shaped [`FileServer`]: `Topen`,
//! `Tcreate`, `Tstat`, `Twstat` and directory reads in stat form.
//!
//! - open(5): the mode byte becomes Linux flags (`OREAD`, `OEXEC` -> `O_RDONLY`, `OWRITE` ->
//!   `O_WRONLY`, `ORDWR` -> `O_RDWR`, `OTRUNC` -> `O_TRUNC`); `ORCLOSE` is remembered and the
//!   file removed when the fid is clunked.
//! - create(5): a file is created exclusively, with the permissions Plan 9 computes from the
//!   directory's (`perm & (~0666 | dir.perm & 0666)`, `0777` for directories) and the
//!   directory's group; `DMDIR` makes a directory, which is then walked to and opened.
//! - stat(5): a [`Stat`] is built from [`FileServer::getattr`]; owners are the numeric ids
//!   written in decimal; the mode carries `DMDIR` and the 9P2000.u type bits (`DMSYMLINK`,
//!   `DMDEVICE`, ...) where Linux's `st_mode` says so.
//! - wstat: "don't touch" is `~0` for numbers and the empty string (stat(5)); a request that
//!   touches nothing asks for the file to be synced.
//! - read(5): a directory reads as whole stat entries, and each read must start at 0 or where
//!   the previous one ended.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::dispatch::{check_new_name, is_dir, MAX_READDIR_BATCHES};
use super::fail::{fails, Fail};
use super::fids::{DirCursor, FidEntry, OpenMode, PathName};
use super::session::{chain_of, Session};
use super::{DirEntry, FileServer};
use crate::codec::{
    dm, encode_rread_header, encode_stat, open_mode, qid_type, setattr, Attr, Qid, Rmessage,
    SetAttr, Stat,
};
use crate::errno::{EINVAL, EISDIR};
use crate::transport::Transport;
use cairn_rt::iobuf::SharedIoBuf;

/// Linux `O_TRUNC`.
const O_TRUNC: u32 = 0o1000;
/// Linux `O_CREAT`.
const O_CREAT: u32 = 0o100;
/// Linux `O_EXCL`.
const O_EXCL: u32 = 0o200;

/// Linux `st_mode` file-type bits and types.
mod st {
    pub(super) const S_IFMT: u32 = 0o170_000;
    pub(super) const S_IFSOCK: u32 = 0o140_000;
    pub(super) const S_IFLNK: u32 = 0o120_000;
    pub(super) const S_IFBLK: u32 = 0o060_000;
    pub(super) const S_IFDIR: u32 = 0o040_000;
    pub(super) const S_IFCHR: u32 = 0o020_000;
    pub(super) const S_IFIFO: u32 = 0o010_000;
    pub(super) const S_ISUID: u32 = 0o4000;
    pub(super) const S_ISGID: u32 = 0o2000;
}

/// The 9P2000.u extensions of the stat mode (Linux `net/9p`), used where a file is one.
mod dmu {
    pub(super) const DMSYMLINK: u32 = 0x0200_0000;
    pub(super) const DMDEVICE: u32 = 0x0080_0000;
    pub(super) const DMNAMEDPIPE: u32 = 0x0020_0000;
    pub(super) const DMSOCKET: u32 = 0x0010_0000;
    pub(super) const DMSETUID: u32 = 0x0008_0000;
    pub(super) const DMSETGID: u32 = 0x0004_0000;
}

/// The Linux open flags for a 9P2000 open mode byte (open(5)).
pub(crate) fn flags_of_mode(mode: u8) -> u32 {
    let access = match mode & 3 {
        open_mode::OWRITE => 1,
        open_mode::ORDWR => 2,
        // OREAD and OEXEC both read.
        _ => 0,
    };
    if mode & open_mode::OTRUNC != 0 {
        access | O_TRUNC
    } else {
        access
    }
}

/// The 9P2000 stat mode for a Linux `st_mode` and a qid type (stat(5), 9P2000.u).
pub(crate) fn dm_mode(st_mode: u32, qid_ty: u8) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & st::S_IFMT {
        st::S_IFDIR => dm::DMDIR,
        st::S_IFLNK => dmu::DMSYMLINK,
        st::S_IFCHR | st::S_IFBLK => dmu::DMDEVICE,
        st::S_IFIFO => dmu::DMNAMEDPIPE,
        st::S_IFSOCK => dmu::DMSOCKET,
        _ => 0,
    };
    if is_dir(qid_ty) {
        mode |= dm::DMDIR;
    }
    for (qt, bit) in [
        (qid_type::QTAPPEND, dm::DMAPPEND),
        (qid_type::QTEXCL, dm::DMEXCL),
        (qid_type::QTAUTH, dm::DMAUTH),
        (qid_type::QTTMP, dm::DMTMP),
    ] {
        if qid_ty & qt != 0 {
            mode |= bit;
        }
    }
    if st_mode & st::S_ISUID != 0 {
        mode |= dmu::DMSETUID;
    }
    if st_mode & st::S_ISGID != 0 {
        mode |= dmu::DMSETGID;
    }
    mode
}

/// A stat's owned parts, built from a file's attributes.
pub(crate) struct StatParts {
    qid: Qid,
    mode: u32,
    atime: u32,
    mtime: u32,
    length: u64,
    uid: String,
    gid: String,
}

impl StatParts {
    /// The parts of the stat of a file with attributes `attr`.
    pub(crate) fn of(attr: &Attr) -> StatParts {
        let mode = dm_mode(attr.mode, attr.qid.ty);
        StatParts {
            qid: attr.qid,
            mode,
            // 9P2000 times are 32-bit seconds.
            atime: attr.atime_sec.min(u64::from(u32::MAX)) as u32,
            mtime: attr.mtime_sec.min(u64::from(u32::MAX)) as u32,
            // stat(5): directories have length 0 by convention.
            length: if mode & dm::DMDIR != 0 { 0 } else { attr.size },
            uid: attr.uid.to_string(),
            gid: attr.gid.to_string(),
        }
    }

    /// The stat, named `name`; the last modifier is reported as the owner.
    pub(crate) fn stat<'a>(&'a self, name: &'a str) -> Stat<'a> {
        Stat {
            ty: 0,
            dev: 0,
            qid: self.qid,
            mode: self.mode,
            atime: self.atime,
            mtime: self.mtime,
            length: self.length,
            name,
            uid: &self.uid,
            gid: &self.gid,
            muid: &self.uid,
        }
    }
}

/// Whether a wstat's numeric field says "don't touch".
fn untouched_u32(v: u32) -> bool {
    v == u32::MAX
}

/// A wstat owner or group: a decimal number (this framework's ids are numeric).
fn parse_id(s: &str) -> Result<u32, Fail> {
    s.parse::<u32>().map_err(|_| fails::BAD_OWNER)
}

impl<S: FileServer, T: Transport> Session<S, T> {
    /// `Topen` (open(5)).
    pub(crate) fn open(&self, tag: u16, fid: u32, mode: u8) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        if entry.open_mode().is_some() {
            return Err(fails::ALREADY_OPEN);
        }
        let dir = is_dir(self.server.qid(entry.fid()).ty);
        let flags = flags_of_mode(mode);
        if dir && (flags & 3 != 0 || flags & O_TRUNC != 0) {
            return Err(EISDIR.into());
        }
        let (qid, iounit) = self.server.open(entry.fid(), flags)?;
        debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
        entry.set_open(OpenMode::from_flags(flags, dir || is_dir(qid.ty)));
        if mode & open_mode::ORCLOSE != 0 {
            entry.set_remove_on_clunk();
        }
        entry.set_dir_cursor(DirCursor::default());
        self.send_reply(tag, &Rmessage::Open { qid, iounit: self.iounit(iounit) });
        Ok(())
    }

    /// `Tcreate` (create(5)): `fid`, a directory, then names the new file, open with `mode`.
    pub(crate) fn create(
        &self,
        tag: u16,
        fid: u32,
        name: &str,
        perm: u32,
        mode: u8,
    ) -> Result<(), Fail> {
        check_new_name(name)?;
        let dir = self.fid(fid)?;
        if dir.open_mode().is_some() {
            return Err(fails::ALREADY_OPEN);
        }
        let dir_attr = self.server.getattr(dir.fid())?;
        let path = PathName::child(&dir.path(), name);
        let flags = flags_of_mode(mode);
        let (entry, qid, iounit) = if perm & dm::DMDIR != 0 {
            // A directory can only be opened for reading.
            if flags != 0 {
                return Err(EISDIR.into());
            }
            let bits = perm & (!0o777 | (dir_attr.mode & 0o777)) & 0o777;
            self.server.mkdir(dir.fid(), name, bits, dir_attr.gid)?;
            let state = self.server.walk(dir.fid(), name)?;
            let (qid, iounit) = match self.server.open(&state, 0) {
                Ok(opened) => opened,
                Err(errno) => {
                    self.server.clunk(state);
                    return Err(errno.into());
                }
            };
            let open = OpenMode { read: true, write: false, dir: true };
            (FidEntry::new_open(self.server.clone(), state, path, open), qid, iounit)
        } else {
            let bits = perm & (!0o666 | (dir_attr.mode & 0o666)) & 0o777;
            let flags = flags | O_CREAT | O_EXCL;
            let (state, iounit) = self.server.create(dir.fid(), name, flags, bits, dir_attr.gid)?;
            let qid = self.server.qid(&state);
            let open = OpenMode::from_flags(flags, false);
            (FidEntry::new_open(self.server.clone(), state, path, open), qid, iounit)
        };
        debug_assert_ne!(qid.path, 0, "qid path 0 from the file server");
        if mode & open_mode::ORCLOSE != 0 {
            entry.set_remove_on_clunk();
        }
        self.replace_fid(fid, entry);
        self.send_reply(tag, &Rmessage::Create { qid, iounit: self.iounit(iounit) });
        Ok(())
    }

    /// `Tstat` (stat(5)).
    pub(crate) fn stat(&self, tag: u16, fid: u32) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        let attr = self.server.getattr(entry.fid())?;
        debug_assert_ne!(attr.qid.path, 0, "qid path 0 from the file server");
        let parts = StatParts::of(&attr);
        let path = entry.path();
        self.send_reply(tag, &Rmessage::Stat { stat: parts.stat(path.name()) });
        Ok(())
    }

    /// `Twstat` (stat(5)): a new name renames the file in its directory; mode, length, times
    /// and numeric owner and group become one `setattr`.
    pub(crate) fn wstat(&self, tag: u16, fid: u32, stat: &Stat<'_>) -> Result<(), Fail> {
        let entry = self.fid(fid)?;
        let nothing = untouched_u32(stat.mode)
            && untouched_u32(stat.atime)
            && untouched_u32(stat.mtime)
            && stat.length == u64::MAX
            && stat.name.is_empty()
            && stat.uid.is_empty()
            && stat.gid.is_empty();
        if nothing {
            // stat(5): a wstat that changes nothing asks for the file to be made stable.
            self.server.fsync(entry.fid(), false)?;
            self.send_reply(tag, &Rmessage::Wstat);
            return Ok(());
        }
        let mut change = SetAttr::default();
        if !untouched_u32(stat.mode) {
            let attr = self.server.getattr(entry.fid())?;
            let was_dir = attr.mode & st::S_IFMT == st::S_IFDIR || is_dir(attr.qid.ty);
            if (stat.mode & dm::DMDIR != 0) != was_dir {
                return Err(fails::DMDIR_CHANGE);
            }
            change.valid |= setattr::MODE;
            change.mode = (attr.mode & st::S_IFMT) | (stat.mode & 0o777);
        }
        if stat.length != u64::MAX {
            change.valid |= setattr::SIZE;
            change.size = stat.length;
        }
        if !untouched_u32(stat.mtime) {
            change.valid |= setattr::MTIME | setattr::MTIME_SET;
            change.mtime_sec = u64::from(stat.mtime);
        }
        if !untouched_u32(stat.atime) {
            change.valid |= setattr::ATIME | setattr::ATIME_SET;
            change.atime_sec = u64::from(stat.atime);
        }
        if !stat.uid.is_empty() {
            change.valid |= setattr::UID;
            change.uid = parse_id(stat.uid)?;
        }
        if !stat.gid.is_empty() {
            change.valid |= setattr::GID;
            change.gid = parse_id(stat.gid)?;
        }
        let path = entry.path();
        if !stat.name.is_empty() && stat.name != path.name() {
            check_new_name(stat.name)?;
            self.server.rename(entry.fid(), None, stat.name)?;
            entry.set_path(PathName::renamed(&path, stat.name));
        }
        if change.valid != 0 {
            self.server.setattr(entry.fid(), &change)?;
        }
        self.send_reply(tag, &Rmessage::Wstat);
        Ok(())
    }

    /// A 9P2000 directory read (read(5)): whole stat entries, at most `count` bytes, from byte
    /// offset 0 or where the previous read of this fid ended. `.` and `..` are left out.
    pub(crate) fn read_dir_stats(
        &self,
        tag: u16,
        entry: &FidEntry<S>,
        offset: u64,
        count: u32,
    ) -> Result<(), Fail> {
        let mut cursor = entry.dir_cursor();
        if offset == 0 {
            cursor = DirCursor::default();
        } else if offset != cursor.next_offset {
            return Err(fails::BAD_DIR_OFFSET);
        }
        let budget = count as usize;
        let mut body = Vec::new();
        let mut full = false;
        'batches: for _ in 0..MAX_READDIR_BATCHES {
            // A stat entry with short names takes some 60 bytes.
            let want = ((budget - body.len()) / 48 + 1).min(256);
            let entries = match self.server.readdir(entry.fid(), cursor.cookie, want) {
                Ok(entries) => entries,
                Err(_) if !body.is_empty() => break,
                Err(errno) => return Err(errno.into()),
            };
            if entries.is_empty() {
                break;
            }
            for e in &entries {
                if e.name == "." || e.name == ".." {
                    cursor.cookie = e.offset;
                    continue;
                }
                let mark = body.len();
                if !self.append_stat(entry.fid(), e, &mut body) {
                    // Gone since it was listed, or unnameable: leave it out.
                    cursor.cookie = e.offset;
                    continue;
                }
                if body.len() > budget {
                    body.truncate(mark);
                    full = true;
                    break 'batches;
                }
                cursor.cookie = e.offset;
            }
        }
        if body.is_empty() && full {
            return Err(fails::COUNT_TOO_SMALL);
        }
        cursor.next_offset = offset.saturating_add(body.len() as u64);
        entry.set_dir_cursor(cursor);
        let mut header = Vec::with_capacity(crate::codec::RREAD_HEADER_LEN);
        encode_rread_header(tag, body.len() as u32, self.msize(), &mut header)
            .map_err(|_| Fail::from(EINVAL))?;
        let mut chain = chain_of(header);
        if !body.is_empty() {
            chain.push_back(SharedIoBuf::from_vec(body));
        }
        self.send_chain(chain);
        Ok(())
    }

    /// Appends the stat of directory entry `e` of `dir` to `out`; false if it cannot be had.
    fn append_stat(&self, dir: &S::Fid, e: &DirEntry, out: &mut Vec<u8>) -> bool {
        let Ok(state) = self.server.walk(dir, &e.name) else { return false };
        let attr = self.server.getattr(&state);
        self.server.clunk(state);
        let Ok(attr) = attr else { return false };
        let parts = StatParts::of(&attr);
        encode_stat(&parts.stat(&e.name), out).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_modes_map_to_linux_flags() {
        assert_eq!(flags_of_mode(open_mode::OREAD), 0);
        assert_eq!(flags_of_mode(open_mode::OWRITE), 1);
        assert_eq!(flags_of_mode(open_mode::ORDWR), 2);
        assert_eq!(flags_of_mode(open_mode::OEXEC), 0);
        assert_eq!(flags_of_mode(open_mode::OWRITE | open_mode::OTRUNC), 1 | O_TRUNC);
        assert_eq!(flags_of_mode(open_mode::OREAD | open_mode::ORCLOSE), 0);
    }

    #[test]
    fn stat_modes_carry_type_bits() {
        assert_eq!(dm_mode(st::S_IFDIR | 0o755, qid_type::QTDIR), dm::DMDIR | 0o755);
        assert_eq!(dm_mode(0o100_644, 0), 0o644);
        assert_eq!(dm_mode(st::S_IFLNK | 0o777, qid_type::QTSYMLINK), dmu::DMSYMLINK | 0o777);
        assert_eq!(dm_mode(0o100_600, qid_type::QTAPPEND), dm::DMAPPEND | 0o600);
        assert_eq!(dm_mode(0o104_755, 0), dmu::DMSETUID | 0o755);
    }

    #[test]
    fn stat_parts_write_numeric_owners_and_zero_directory_length() {
        let attr = Attr {
            qid: Qid { ty: qid_type::QTDIR, version: 0, path: 5 },
            mode: st::S_IFDIR | 0o700,
            uid: 1000,
            gid: 100,
            size: 4096,
            mtime_sec: u64::MAX,
            ..Attr::default()
        };
        let parts = StatParts::of(&attr);
        let stat = parts.stat("d");
        assert_eq!((stat.uid, stat.gid, stat.muid, stat.name), ("1000", "100", "1000", "d"));
        assert_eq!(stat.length, 0);
        assert_eq!(stat.mtime, u32::MAX);
        assert_eq!(stat.mode, dm::DMDIR | 0o700);
    }
}
