//! Tests of the codec: hand-written byte vectors from the manual pages, round trips of every
//! message in both dialects, and property tests over arbitrary and truncated input.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const MSIZE: u32 = 8192;

fn qid(n: u64) -> Qid {
    Qid { ty: qid_type::QTDIR, version: n as u32 ^ 0x55, path: n.wrapping_mul(0x9E37_79B9) }
}

fn stat(s: &str) -> Stat<'_> {
    Stat {
        ty: 1,
        dev: 2,
        qid: qid(3),
        mode: dm::DMDIR | 0o755,
        atime: 4,
        mtime: 5,
        length: 6,
        name: s,
        uid: "glenda",
        gid: "sys",
        muid: "",
    }
}

fn flock(s: &str) -> Flock<'_> {
    Flock { ty: lock::WRLCK, start: 10, length: 20, proc_id: 30, client_id: s }
}

/// Builds request number `sel` (modulo the number of kinds) of `dialect` from the given fields.
fn build_t<'a>(
    sel: usize,
    dialect: Dialect,
    (n, w): (u32, u64),
    s: &'a str,
    t: &'a str,
    names: &[&'a str],
    data: &'a [u8],
) -> Tmessage<'a> {
    let l = dialect == Dialect::P2000L;
    let nu = if l { Some(n) } else { None };
    let names = WalkList::from_slice(&names[..names.len().min(MAXWELEM)]).unwrap();
    let common = [
        Tmessage::Version { msize: n, version: s },
        Tmessage::Auth { afid: n, uname: s, aname: t, n_uname: nu },
        Tmessage::Attach { fid: n, afid: NOFID, uname: s, aname: t, n_uname: nu },
        Tmessage::Flush { oldtag: n as u16 },
        Tmessage::Walk { fid: n, newfid: n ^ 1, names },
        Tmessage::Read { fid: n, offset: w, count: n >> 3 },
        Tmessage::Write { fid: n, offset: w, data },
        Tmessage::Clunk { fid: n },
        Tmessage::Remove { fid: n },
    ];
    let plain = [
        Tmessage::Open { fid: n, mode: open_mode::ORDWR | open_mode::OTRUNC },
        Tmessage::Create { fid: n, name: s, perm: n ^ dm::DMDIR, mode: open_mode::OREAD },
        Tmessage::Stat { fid: n },
        Tmessage::Wstat { fid: n, stat: stat(s) },
    ];
    let linux = [
        Tmessage::Statfs { fid: n },
        Tmessage::Lopen { fid: n, flags: n ^ 2 },
        Tmessage::Lcreate { fid: n, name: s, flags: 1, mode: 0o644, gid: n },
        Tmessage::Symlink { fid: n, name: s, symtgt: t, gid: 7 },
        Tmessage::Mknod { dfid: n, name: s, mode: 0o20644, major: 1, minor: 3, gid: 0 },
        Tmessage::Rename { fid: n, dfid: 9, name: t },
        Tmessage::Readlink { fid: n },
        Tmessage::Getattr { fid: n, request_mask: getattr::ALL ^ w },
        Tmessage::Setattr {
            fid: n,
            attr: SetAttr {
                valid: setattr::MODE | setattr::SIZE,
                mode: 0o600,
                uid: n,
                gid: 3,
                size: w,
                atime_sec: 1,
                atime_nsec: 2,
                mtime_sec: 3,
                mtime_nsec: 4,
            },
        },
        Tmessage::Xattrwalk { fid: n, newfid: 4, name: s },
        Tmessage::Xattrcreate { fid: n, name: s, attr_size: w, flags: 1 },
        Tmessage::Readdir { fid: n, offset: w, count: 4096 },
        Tmessage::Fsync { fid: n, datasync: 1 },
        Tmessage::Lock { fid: n, flags: lock::FLAGS_BLOCK, lock: flock(s) },
        Tmessage::Getlock { fid: n, lock: flock(t) },
        Tmessage::Link { dfid: n, fid: 5, name: s },
        Tmessage::Mkdir { dfid: n, name: s, mode: 0o755, gid: 100 },
        Tmessage::Renameat { olddirfid: n, oldname: s, newdirfid: 6, newname: t },
        Tmessage::Unlinkat { dirfd: n, name: s, flags: 0x200 },
    ];
    let own: &[Tmessage<'a>] = if l { &linux } else { &plain };
    let all: Vec<Tmessage<'a>> = common.iter().chain(own).copied().collect();
    all[sel % all.len()]
}

/// Builds reply number `sel` (modulo the number of kinds) of `dialect` from the given fields.
fn build_r<'a>(
    sel: usize,
    dialect: Dialect,
    (n, w): (u32, u64),
    s: &'a str,
    t: &'a str,
    nq: usize,
    data: &'a [u8],
) -> Rmessage<'a> {
    let qids: Vec<Qid> = (0..nq.min(MAXWELEM) as u64).map(|i| qid(w ^ i)).collect();
    let common = [
        Rmessage::Version { msize: n, version: s },
        Rmessage::Auth { aqid: qid(w) },
        Rmessage::Attach { qid: qid(w) },
        Rmessage::Flush,
        Rmessage::Walk { qids: WalkList::from_slice(&qids).unwrap() },
        Rmessage::Read { data },
        Rmessage::Write { count: n },
        Rmessage::Clunk,
        Rmessage::Remove,
    ];
    let plain = [
        Rmessage::Error { ename: s },
        Rmessage::Open { qid: qid(w), iounit: n },
        Rmessage::Create { qid: qid(w), iounit: n },
        Rmessage::Stat { stat: stat(t) },
        Rmessage::Wstat,
    ];
    let linux = [
        Rmessage::Lerror { ecode: n },
        Rmessage::Statfs {
            statfs: StatFs {
                ty: 0x01021997,
                bsize: 4096,
                blocks: w,
                bfree: 1,
                bavail: 2,
                files: 3,
                ffree: 4,
                fsid: 5,
                namelen: 255,
            },
        },
        Rmessage::Lopen { qid: qid(w), iounit: n },
        Rmessage::Lcreate { qid: qid(w), iounit: n },
        Rmessage::Symlink { qid: qid(w) },
        Rmessage::Mknod { qid: qid(w) },
        Rmessage::Rename,
        Rmessage::Readlink { target: t },
        Rmessage::Getattr {
            attr: Attr {
                valid: getattr::BASIC,
                qid: qid(w),
                mode: 0o100644,
                uid: n,
                gid: 2,
                nlink: 3,
                rdev: 4,
                size: w,
                blksize: 4096,
                blocks: 8,
                atime_sec: 9,
                atime_nsec: 10,
                mtime_sec: 11,
                mtime_nsec: 12,
                ctime_sec: 13,
                ctime_nsec: 14,
                btime_sec: 15,
                btime_nsec: 16,
                gen: 17,
                data_version: 18,
            },
        },
        Rmessage::Setattr,
        Rmessage::Xattrwalk { size: w },
        Rmessage::Xattrcreate,
        Rmessage::Readdir { data },
        Rmessage::Fsync,
        Rmessage::Lock { status: lock::BLOCKED },
        Rmessage::Getlock { lock: flock(s) },
        Rmessage::Link,
        Rmessage::Mkdir { qid: qid(w) },
        Rmessage::Renameat,
        Rmessage::Unlinkat,
    ];
    let own: &[Rmessage<'a>] = if dialect == Dialect::P2000L { &linux } else { &plain };
    let all: Vec<Rmessage<'a>> = common.iter().chain(own).copied().collect();
    all[sel % all.len()]
}

const KINDS_T: [usize; 2] = [9 + 4, 9 + 19];
const KINDS_R: [usize; 2] = [9 + 5, 9 + 20];
const DIALECTS: [Dialect; 2] = [Dialect::P2000, Dialect::P2000L];

fn encode_t(tag: u16, m: &Tmessage<'_>, d: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode_tmessage(tag, m, d, MSIZE, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn encode_r(tag: u16, m: &Rmessage<'_>, d: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode_rmessage(tag, m, d, MSIZE, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

#[test]
fn every_message_round_trips_in_both_dialects() {
    let names = ["usr", "glenda", "lib", "ü"];
    let mut seen_t = Vec::new();
    let mut seen_r = Vec::new();
    for (i, &d) in DIALECTS.iter().enumerate() {
        for sel in 0..KINDS_T[i] {
            let m = build_t(sel, d, (42, 1 << 40), "name", "", &names, b"payload");
            let wire = encode_t(7, &m, d);
            assert_eq!(frame_len(&wire), Some(wire.len()));
            assert_eq!(decode_tmessage(&wire, d, MSIZE), Ok((7, m)), "{m:?}");
            seen_t.push(m.msg_type());
        }
        for sel in 0..KINDS_R[i] {
            let m = build_r(sel, d, (42, 1 << 40), "name", "target", 3, b"payload");
            let wire = encode_r(9, &m, d);
            assert_eq!(decode_rmessage(&wire, d, MSIZE), Ok((9, m)), "{m:?}");
            seen_r.push(m.msg_type());
        }
    }
    // Every request and reply type of both dialects was exercised.
    for ty in 0..=255u8 {
        if type_dialects(ty).is_some() && ty != mtype::TERROR {
            assert!(seen_t.contains(&ty) || seen_r.contains(&ty), "type {ty} not covered");
        }
    }
    seen_t.sort_unstable();
    seen_t.dedup();
    seen_r.sort_unstable();
    seen_r.dedup();
    assert_eq!(seen_t.len() + seen_r.len(), 2 * 9 + 4 + 5 + 19 + 20);
}

#[test]
fn tversion_bytes() {
    let wire =
        encode_t(NOTAG, &Tmessage::Version { msize: 8192, version: "9P2000.L" }, Dialect::P2000L);
    let mut want = vec![21, 0, 0, 0, 100, 0xFF, 0xFF, 0x00, 0x20, 0, 0, 8, 0];
    want.extend_from_slice(b"9P2000.L");
    assert_eq!(wire, want);
    // Tversion decodes under either dialect, before one is chosen.
    for d in DIALECTS {
        assert_eq!(
            decode_tmessage(&want, d, MSIZE),
            Ok((NOTAG, Tmessage::Version { msize: 8192, version: "9P2000.L" }))
        );
    }
}

#[test]
fn tattach_bytes() {
    // 9P2000: size[4] Tattach tag[2] fid[4] afid[4] uname[s] aname[s]
    let mut want = vec![25, 0, 0, 0, 104, 1, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 6, 0];
    want.extend_from_slice(b"glenda");
    want.extend_from_slice(&[0, 0]);
    let m = Tmessage::Attach { fid: 1, afid: NOFID, uname: "glenda", aname: "", n_uname: None };
    assert_eq!(encode_t(1, &m, Dialect::P2000), want);
    assert_eq!(decode_tmessage(&want, Dialect::P2000, MSIZE), Ok((1, m)));
    // 9P2000.L adds n_uname[4].
    let mut want_l = want.clone();
    want_l[0] = 29;
    want_l.extend_from_slice(&[0xE8, 0x03, 0, 0]);
    let m_l =
        Tmessage::Attach { fid: 1, afid: NOFID, uname: "glenda", aname: "", n_uname: Some(1000) };
    assert_eq!(encode_t(1, &m_l, Dialect::P2000L), want_l);
    assert_eq!(decode_tmessage(&want_l, Dialect::P2000L, MSIZE), Ok((1, m_l)));
    // Each dialect's layout is wrong for the other.
    assert!(decode_tmessage(&want, Dialect::P2000L, MSIZE).is_err());
    assert!(decode_tmessage(&want_l, Dialect::P2000, MSIZE).is_err());
}

#[test]
fn twalk_bytes() {
    let want = [
        27, 0, 0, 0, 110, 2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 3, 0, b'u', b's', b'r', 3, 0, b'b',
        b'i', b'n',
    ];
    let m =
        Tmessage::Walk { fid: 1, newfid: 2, names: WalkList::from_slice(&["usr", "bin"]).unwrap() };
    for d in DIALECTS {
        assert_eq!(encode_t(2, &m, d), want);
        assert_eq!(decode_tmessage(&want, d, MSIZE), Ok((2, m)));
    }
}

#[test]
fn rread_bytes_and_header_only_form() {
    let want = [13, 0, 0, 0, 117, 5, 0, 2, 0, 0, 0, b'h', b'i'];
    let m = Rmessage::Read { data: b"hi" };
    assert_eq!(encode_r(5, &m, Dialect::P2000), want);
    let (tag, got) = decode_rmessage(&want, Dialect::P2000, MSIZE).unwrap();
    assert_eq!((tag, got), (5, m));
    // The payload is a slice of the buffer, not a copy.
    let Rmessage::Read { data } = got else { unreachable!() };
    assert_eq!(data.as_ptr(), want[RREAD_HEADER_LEN..].as_ptr());
    // Header then payload is the same message.
    let mut split = Vec::new();
    assert_eq!(encode_rread_header(5, 2, MSIZE, &mut split), Ok(RREAD_HEADER_LEN));
    split.extend_from_slice(b"hi");
    assert_eq!(split, want);
    assert!(encode_rread_header(5, MSIZE, MSIZE, &mut split).is_err());
    assert_eq!(split.len(), want.len());
}

#[test]
fn twrite_payload_is_borrowed_and_header_form_matches() {
    let data = [0xAB; 100];
    let m = Tmessage::Write { fid: 3, offset: 99, data: &data };
    let wire = encode_t(4, &m, Dialect::P2000L);
    let Ok((4, Tmessage::Write { data: got, .. })) = decode_tmessage(&wire, Dialect::P2000L, MSIZE)
    else {
        panic!("Twrite did not decode");
    };
    assert_eq!(got.as_ptr(), wire[TWRITE_HEADER_LEN..].as_ptr());
    let mut split = Vec::new();
    encode_twrite_header(4, 3, 99, 100, MSIZE, &mut split).unwrap();
    split.extend_from_slice(&data);
    assert_eq!(split, wire);
}

#[test]
fn rreaddir_header_and_dirents() {
    let entries = [
        Dirent { qid: qid(1), offset: 1, ty: 4, name: "." },
        Dirent { qid: qid(2), offset: 2, ty: 8, name: "file" },
    ];
    let mut payload = Vec::new();
    for e in &entries {
        assert_eq!(encode_dirent(e, &mut payload), Ok(e.wire_len()));
    }
    let got: Result<Vec<_>, _> = DirentIter::new(&payload).collect();
    assert_eq!(got.unwrap(), entries);
    let mut wire = Vec::new();
    encode_rreaddir_header(1, payload.len() as u32, MSIZE, &mut wire).unwrap();
    wire.extend_from_slice(&payload);
    assert_eq!(
        decode_rmessage(&wire, Dialect::P2000L, MSIZE),
        Ok((1, Rmessage::Readdir { data: &payload }))
    );
    // A cut entry is an error, and iteration stops after it.
    let mut it = DirentIter::new(&payload[..payload.len() - 1]);
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn directory_stats() {
    let stats = [stat("a"), stat("bb")];
    let mut payload = Vec::new();
    for s in &stats {
        assert_eq!(encode_stat(s, &mut payload), Ok(s.wire_len()));
    }
    let got: Result<Vec<_>, _> = StatIter::new(&payload).collect();
    assert_eq!(got.unwrap(), stats);
    assert!(StatIter::new(&payload[..5]).next().unwrap().is_err());
}

#[test]
fn stat_size_fields_are_checked() {
    let m = Rmessage::Stat { stat: stat("x") };
    let wire = encode_r(1, &m, Dialect::P2000);
    // Rstat body: n[2] at 7, the stat's own size[2] at 9.
    let n = u16::from_le_bytes([wire[7], wire[8]]);
    let own = u16::from_le_bytes([wire[9], wire[10]]);
    assert_eq!(n, own + 2);
    let mut bad = wire.clone();
    bad[9] -= 1; // inner size one short: a byte is left over inside stat[n]
    assert_eq!(
        decode_rmessage(&bad, Dialect::P2000, MSIZE),
        Err(DecodeError::BadStatSize { ty: mtype::RSTAT })
    );
    let mut bad = wire.clone();
    bad[9] += 1; // inner size runs past stat[n]
    assert_eq!(
        decode_rmessage(&bad, Dialect::P2000, MSIZE),
        Err(DecodeError::BadStatSize { ty: mtype::RSTAT })
    );
    let mut bad = wire;
    bad[7] += 1; // n runs past the message
    assert_eq!(
        decode_rmessage(&bad, Dialect::P2000, MSIZE),
        Err(DecodeError::FieldOverrun { ty: mtype::RSTAT })
    );
}

#[test]
fn framing_errors() {
    let wire = encode_t(1, &Tmessage::Clunk { fid: 1 }, Dialect::P2000);
    let d = Dialect::P2000;
    assert_eq!(
        decode_tmessage(&wire[..3], d, MSIZE),
        Err(DecodeError::Truncated { needed: HEADER_LEN, available: 3 })
    );
    assert_eq!(
        decode_tmessage(&wire[..9], d, MSIZE),
        Err(DecodeError::Truncated { needed: 11, available: 9 })
    );
    let mut long = wire.clone();
    long.push(0);
    assert_eq!(
        decode_tmessage(&long, d, MSIZE),
        Err(DecodeError::TrailingBytes { size: 11, available: 12 })
    );
    assert_eq!(decode_tmessage(&wire, d, 10), Err(DecodeError::TooLarge { size: 11, msize: 10 }));
    let mut small = wire.clone();
    small[0] = 6;
    assert_eq!(decode_tmessage(&small, d, MSIZE), Err(DecodeError::SizeTooSmall { size: 6 }));
    // A size field covering more body than the message has fields for.
    let mut extra = wire.clone();
    extra[0] = 12;
    extra.push(0);
    assert_eq!(
        decode_tmessage(&extra, d, MSIZE),
        Err(DecodeError::ExtraBody { ty: mtype::TCLUNK, extra: 1 })
    );
    let mut unknown = wire.clone();
    unknown[4] = 200;
    assert_eq!(decode_tmessage(&unknown, d, MSIZE), Err(DecodeError::UnknownType { ty: 200 }));
    unknown[4] = mtype::TERROR;
    assert_eq!(
        decode_tmessage(&unknown, d, MSIZE),
        Err(DecodeError::UnknownType { ty: mtype::TERROR })
    );
    // A reply is not a request, and the other way round.
    unknown[4] = mtype::RCLUNK;
    assert!(matches!(decode_tmessage(&unknown, d, MSIZE), Err(DecodeError::UnknownType { .. })));
    assert!(matches!(decode_rmessage(&wire, d, MSIZE), Err(DecodeError::UnknownType { .. })));
    // A message of the other dialect.
    let lopen = encode_t(1, &Tmessage::Lopen { fid: 1, flags: 0 }, Dialect::P2000L);
    assert_eq!(
        decode_tmessage(&lopen, Dialect::P2000, MSIZE),
        Err(DecodeError::WrongDialect { ty: mtype::TLOPEN, dialect: Dialect::P2000 })
    );
    // The header of a bad message is still readable for the error reply.
    assert_eq!(peek_header(&unknown), Some(Header { size: 11, ty: mtype::RCLUNK, tag: 1 }));
    assert_eq!(peek_header(&wire[..6]), None);
    assert_eq!(frame_len(&wire[..3]), None);
}

#[test]
fn body_errors() {
    let d = Dialect::P2000;
    // Twrite whose count runs past the end.
    let mut w = encode_t(1, &Tmessage::Write { fid: 1, offset: 0, data: b"abc" }, d);
    w[19] = 4;
    assert_eq!(decode_tmessage(&w, d, MSIZE), Err(DecodeError::FieldOverrun { ty: mtype::TWRITE }));
    // Twalk of 17 names.
    let mut walk = vec![0, 0, 0, 0, mtype::TWALK, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 17, 0];
    for _ in 0..17 {
        walk.extend_from_slice(&[1, 0, b'a']);
    }
    let len = walk.len() as u32;
    walk[..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        decode_tmessage(&walk, d, MSIZE),
        Err(DecodeError::TooManyWalkElements { ty: mtype::TWALK, count: 17 })
    );
    // Rwalk of 17 qids.
    let mut rwalk = vec![0, 0, 0, 0, mtype::RWALK, 0, 0, 17, 0];
    rwalk.extend_from_slice(&[0; 17 * QID_LEN]);
    let len = rwalk.len() as u32;
    rwalk[..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        decode_rmessage(&rwalk, d, MSIZE),
        Err(DecodeError::TooManyWalkElements { ty: mtype::RWALK, count: 17 })
    );
    // A string that is not UTF-8.
    let mut e = encode_r(1, &Rmessage::Error { ename: "ab" }, d);
    e[9] = 0xFF;
    assert_eq!(decode_rmessage(&e, d, MSIZE), Err(DecodeError::InvalidUtf8 { ty: mtype::RERROR }));
}

#[test]
fn tfsync_without_datasync_is_accepted() {
    let old = [11, 0, 0, 0, mtype::TFSYNC, 1, 0, 9, 0, 0, 0];
    assert_eq!(
        decode_tmessage(&old, Dialect::P2000L, MSIZE),
        Ok((1, Tmessage::Fsync { fid: 9, datasync: 0 }))
    );
}

#[test]
fn encode_errors_leave_the_buffer_alone() {
    let mut out = vec![1, 2, 3];
    let big = vec![0u8; MSIZE as usize];
    let d = Dialect::P2000L;
    let write = Tmessage::Write { fid: 1, offset: 0, data: &big };
    assert!(matches!(
        encode_tmessage(1, &write, d, MSIZE, &mut out),
        Err(EncodeError::TooLarge { .. })
    ));
    let fits = Tmessage::Write { fid: 1, offset: 0, data: &big[TWRITE_HEADER_LEN..] };
    let mut exact = Vec::new();
    assert_eq!(encode_tmessage(1, &fits, d, MSIZE, &mut exact), Ok(MSIZE as usize));
    let long = String::from_utf8(vec![b'x'; 70_000]).unwrap();
    let m = Tmessage::Mkdir { dfid: 1, name: &long, mode: 0, gid: 0 };
    assert_eq!(
        encode_tmessage(1, &m, d, u32::MAX, &mut out),
        Err(EncodeError::StringTooLong { len: 70_000 })
    );
    assert_eq!(
        encode_tmessage(1, &Tmessage::Stat { fid: 1 }, d, MSIZE, &mut out),
        Err(EncodeError::WrongDialect { ty: mtype::TSTAT, dialect: d })
    );
    let attach = Tmessage::Attach { fid: 1, afid: NOFID, uname: "", aname: "", n_uname: None };
    assert_eq!(
        encode_tmessage(1, &attach, d, MSIZE, &mut out),
        Err(EncodeError::NumericUser { dialect: d })
    );
    assert_eq!(out, [1, 2, 3]);
    // Appending after existing bytes (headroom) works and reports only what it added.
    assert_eq!(encode_tmessage(1, &Tmessage::Clunk { fid: 1 }, d, MSIZE, &mut out), Ok(11));
    assert_eq!(decode_tmessage(&out[3..], d, MSIZE), Ok((1, Tmessage::Clunk { fid: 1 })));
}

#[test]
fn version_negotiation() {
    let n = negotiate_version(65536, "9P2000.L", 8192);
    assert_eq!(n, Negotiated { dialect: Some(Dialect::P2000L), msize: 8192 });
    assert_eq!(n.reply(), Rmessage::Version { msize: 8192, version: "9P2000.L" });
    assert_eq!(negotiate_version(4096, "9P2000", 8192).dialect, Some(Dialect::P2000));
    assert_eq!(negotiate_version(4096, "9P2000", 8192).msize, 4096);
    assert_eq!(negotiate_version(8192, "9P2000.u", 8192).version_str(), "9P2000");
    assert_eq!(negotiate_version(8192, "9P2001", 8192).dialect, Some(Dialect::P2000));
    for bad in ["", "9P", "9P1999", "9P2000L", "NFSv4", "9Pabc", "P2000"] {
        assert_eq!(negotiate_version(8192, bad, 8192).version_str(), "unknown", "{bad}");
    }
    assert_eq!(negotiate_version(100, "9P2000.L", 8192).dialect, None);
    assert_eq!(Dialect::P2000.error_reply("no", 2), Rmessage::Error { ename: "no" });
    assert_eq!(Dialect::P2000L.error_reply("no", 2), Rmessage::Lerror { ecode: 2 });
}

fn arb_str() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9._ü-]{0,12}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ty in any::<u8>(),
        fix_size in any::<bool>(),
        msize in prop_oneof![Just(MSIZE), any::<u32>()],
    ) {
        let mut bytes = bytes;
        // Half the time make the header plausible so the body parsers get exercised.
        if fix_size && bytes.len() >= HEADER_LEN {
            let len = bytes.len() as u32;
            bytes[..4].copy_from_slice(&len.to_le_bytes());
            bytes[4] = ty;
        }
        for d in DIALECTS {
            let _ = decode_tmessage(&bytes, d, msize);
            let _ = decode_rmessage(&bytes, d, msize);
        }
        let _ = frame_len(&bytes);
        let _ = StatIter::new(&bytes).count();
        let _ = DirentIter::new(&bytes).count();
    }

    #[test]
    fn random_messages_round_trip(
        sel in any::<usize>(),
        l in any::<bool>(),
        tag in any::<u16>(),
        n in any::<u32>(),
        w in any::<u64>(),
        s in arb_str(),
        t in arb_str(),
        names in proptest::collection::vec(arb_str(), 0..=MAXWELEM),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let d = DIALECTS[usize::from(l)];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let tm = build_t(sel, d, (n, w), &s, &t, &names, &data);
        let wire = encode_t(tag, &tm, d);
        prop_assert_eq!(decode_tmessage(&wire, d, MSIZE), Ok((tag, tm)));
        let rm = build_r(sel, d, (n, w), &s, &t, names.len(), &data);
        let wire = encode_r(tag, &rm, d);
        prop_assert_eq!(decode_rmessage(&wire, d, MSIZE), Ok((tag, rm)));
    }

    #[test]
    fn strict_prefixes_are_truncated(
        sel in any::<usize>(),
        l in any::<bool>(),
        s in arb_str(),
        data in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let d = DIALECTS[usize::from(l)];
        let t_wire = encode_t(1, &build_t(sel, d, (5, 6), &s, "t", &["a", "b"], &data), d);
        let r_wire = encode_r(1, &build_r(sel, d, (5, 6), &s, "t", 2, &data), d);
        for (wire, is_t) in [(&t_wire, true), (&r_wire, false)] {
            for cut in 0..wire.len() {
                let prefix = &wire[..cut];
                let err = if is_t {
                    decode_tmessage(prefix, d, MSIZE).unwrap_err()
                } else {
                    decode_rmessage(prefix, d, MSIZE).unwrap_err()
                };
                let truncated = matches!(err, DecodeError::Truncated { .. });
                prop_assert!(truncated, "cut {} gave {:?}", cut, err);
                // frame_len either needs more bytes or names a length beyond the prefix.
                prop_assert!(frame_len(prefix).is_none_or(|len| len > cut));
            }
        }
    }
}
