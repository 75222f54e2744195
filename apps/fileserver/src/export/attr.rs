//! Conversions between host metadata (`statx`, `statfs`) and 9P2000.L's `Rgetattr`,
//! `Tsetattr` and `Rstatfs` structures (diod's `protocol.md`).

use cairn_9p::codec::{getattr, setattr, Attr, SetAttr, StatFs};

use super::fid::qid_of;

/// The `Rgetattr` attributes of a host file from its statx result: everything stat(2) gives
/// (`getattr::BASIC`), and the birth time where the file system keeps one.
pub(crate) fn attr_of(root_dev: u64, st: &libc::statx) -> Attr {
    let mut valid = getattr::BASIC;
    let (btime_sec, btime_nsec) = if st.stx_mask & libc::STATX_BTIME != 0 {
        valid |= getattr::BTIME;
        (st.stx_btime.tv_sec as u64, u64::from(st.stx_btime.tv_nsec))
    } else {
        (0, 0)
    };
    Attr {
        valid,
        qid: qid_of(root_dev, st),
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        nlink: u64::from(st.stx_nlink),
        rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
        size: st.stx_size,
        blksize: u64::from(st.stx_blksize),
        blocks: st.stx_blocks,
        atime_sec: st.stx_atime.tv_sec as u64,
        atime_nsec: u64::from(st.stx_atime.tv_nsec),
        mtime_sec: st.stx_mtime.tv_sec as u64,
        mtime_nsec: u64::from(st.stx_mtime.tv_nsec),
        ctime_sec: st.stx_ctime.tv_sec as u64,
        ctime_nsec: u64::from(st.stx_ctime.tv_nsec),
        btime_sec,
        btime_nsec,
        gen: 0,
        data_version: 0,
    }
}

/// The `Rstatfs` of a host `statfs` result.
pub(crate) fn statfs_of(st: &libc::statfs) -> StatFs {
    // SAFETY: `fsid_t` is `struct { int __val[2]; }` (statfs(2)), the same size and layout as
    // `[c_int; 2]`; its field is private in libc, hence the transmute.
    let fsid: [libc::c_int; 2] = unsafe { std::mem::transmute(st.f_fsid) };
    StatFs {
        ty: st.f_type as u32,
        bsize: st.f_bsize as u32,
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
        fsid: u64::from(fsid[0] as u32) | (u64::from(fsid[1] as u32) << 32),
        namelen: st.f_namelen as u32,
    }
}

/// One timestamp of a `Tsetattr` as utimensat(2) takes it: `UTIME_OMIT` when `change` is not
/// in `valid`, `UTIME_NOW` when it is but `set` (the "time comes from the message" bit) is not.
fn timespec(valid: u32, change: u32, set: u32, sec: u64, nsec: u64) -> libc::timespec {
    if valid & change == 0 {
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }
    } else if valid & set == 0 {
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW }
    } else {
        libc::timespec { tv_sec: sec as libc::time_t, tv_nsec: nsec as libc::c_long }
    }
}

/// The `[atime, mtime]` pair utimensat(2) should apply for `attr`, or `None` if it asks for
/// neither time (diod's `protocol.md`: `ATIME`/`MTIME` say "change it", `ATIME_SET`/`MTIME_SET`
/// "to the value sent, not to now").
pub(crate) fn times_of(attr: &SetAttr) -> Option<[libc::timespec; 2]> {
    if attr.valid & (setattr::ATIME | setattr::MTIME) == 0 {
        return None;
    }
    Some([
        timespec(attr.valid, setattr::ATIME, setattr::ATIME_SET, attr.atime_sec, attr.atime_nsec),
        timespec(attr.valid, setattr::MTIME, setattr::MTIME_SET, attr.mtime_sec, attr.mtime_nsec),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_the_set_bits() {
        let mut attr = SetAttr { atime_sec: 7, atime_nsec: 8, mtime_sec: 9, ..Default::default() };
        assert!(times_of(&attr).is_none());
        attr.valid = setattr::ATIME | setattr::ATIME_SET | setattr::MTIME;
        let [a, m] = times_of(&attr).unwrap();
        assert_eq!((a.tv_sec, a.tv_nsec), (7, 8));
        assert_eq!(m.tv_nsec, libc::UTIME_NOW);
        attr.valid = setattr::MTIME | setattr::MTIME_SET;
        let [a, m] = times_of(&attr).unwrap();
        assert_eq!(a.tv_nsec, libc::UTIME_OMIT);
        assert_eq!((m.tv_sec, m.tv_nsec), (9, 0));
    }
}
