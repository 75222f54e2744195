//! Sessions in 9P2000.L: lopen, lcreate, readdir, getattr, setattr, the directory-entry
//! calls, locks, xattrs, and the zero-copy paths of read and write.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use super::harness::{run, TestClient};
use super::plan9::frame;
use super::ramfs::S_IFREG;
use crate::codec::{
    getattr, lock, mtype, qid_type, setattr, Dialect, DirentIter, Flock, Rmessage, SetAttr,
    Tmessage, WalkList, IOHDRSZ, RREAD_HEADER_LEN,
};
use crate::errno::*;

fn errno(reply: &super::harness::Reply) -> u32 {
    reply.error().unwrap_or_else(|| panic!("not an error: {:?}", reply.msg())).1
}

#[test]
fn lopen_read_and_write_without_copying_payloads() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["hello"]).await;
        let reply = c.open(1, 2).await;
        assert!(matches!(reply.msg().1, Rmessage::Lopen { iounit: 0, .. }));
        let sent = c.send(2, &Tmessage::Write { fid: 1, offset: 0, data: b"HELLO" });
        let reply = c.next_reply().await;
        assert_eq!(reply.msg(), (2, Rmessage::Write { count: 5 }));
        // The file server saw the payload where it lay in the received message.
        let (ptr, len) = c.fs.last_write.get();
        let base = sent.as_ptr() as usize;
        assert_eq!((ptr, len), (base + crate::codec::TWRITE_HEADER_LEN, 5));
        assert_eq!(c.fs.contents(&["hello"]).unwrap(), b"HELLO, world\n");
        // The Rread is a header buffer with the file server's buffer chained behind it.
        c.send(3, &Tmessage::Read { fid: 1, offset: 0, count: 100 });
        let reply = c.next_reply().await;
        assert_eq!(reply.msg(), (3, Rmessage::Read { data: b"HELLO, world\n" }));
        let segments: Vec<_> = reply.chain.segments().collect();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].len(), RREAD_HEADER_LEN);
        assert_eq!(segments[1].as_ptr() as usize, c.fs.last_read_ptr.get());
        let s = c.stats.snapshot();
        assert_eq!((s.bytes_read, s.bytes_written), (13, 5));
    });
}

#[test]
fn reads_are_clamped_to_msize_and_iounit_to_msize_less_iohdrsz() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        let big = alloc::vec![7u8; 20000];
        c.fs.add_file(&[], "big", &big);
        c.walk(0, 1, &["big"]).await;
        c.fs.iounit.set(100_000);
        let reply = c.open(1, 0).await;
        assert!(
            matches!(reply.msg().1, Rmessage::Lopen { iounit, .. } if iounit == 8192 - IOHDRSZ)
        );
        let data = c.read(1, 0, 1 << 20).await;
        assert_eq!(data.len(), 8192 - RREAD_HEADER_LEN);
        c.fs.iounit.set(1000);
        c.walk(0, 2, &["big"]).await;
        let reply = c.open(2, 0).await;
        assert!(matches!(reply.msg().1, Rmessage::Lopen { iounit: 1000, .. }));
    });
}

#[test]
fn readdir_packs_whole_entries_and_continues_from_cookies() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        for i in 0..30 {
            c.fs.add_file(&["dir"], &alloc::format!("entry-{i:02}"), b"");
        }
        c.walk(0, 1, &["dir"]).await;
        c.open(1, 0o200000).await;
        let mut names = Vec::new();
        let mut offset = 0;
        for _ in 0..100 {
            let reply = c.call(2, &Tmessage::Readdir { fid: 1, offset, count: 128 }).await;
            let Rmessage::Readdir { data } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
            assert!(data.len() <= 128);
            if data.is_empty() {
                break;
            }
            for entry in DirentIter::new(data) {
                let entry = entry.expect("whole entries");
                names.push(String::from(entry.name));
                offset = entry.offset;
            }
        }
        assert_eq!(names.len(), 32);
        assert_eq!(&names[..2], [".", ".."]);
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), 32);
        // A count too small for one entry is an error, not an empty (end) reply.
        let reply = c.call(3, &Tmessage::Readdir { fid: 1, offset: 0, count: 20 }).await;
        assert_eq!(errno(&reply), EINVAL);
        // Not a directory, not open.
        c.walk(0, 2, &["hello"]).await;
        let reply = c.call(4, &Tmessage::Readdir { fid: 2, offset: 0, count: 1000 }).await;
        assert_eq!(errno(&reply), EBADF);
        c.open(2, 0).await;
        let reply = c.call(5, &Tmessage::Readdir { fid: 2, offset: 0, count: 1000 }).await;
        assert_eq!(errno(&reply), ENOTDIR);
        // A 9P2000.L directory is not read with Tread.
        let reply = c.call(6, &Tmessage::Read { fid: 1, offset: 0, count: 1000 }).await;
        assert_eq!(errno(&reply), EISDIR);
    });
}

#[test]
fn getattr_reports_only_what_was_asked() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["hello"]).await;
        let ask = getattr::MODE | getattr::SIZE | getattr::BTIME;
        let reply = c.call(1, &Tmessage::Getattr { fid: 1, request_mask: ask }).await;
        let Rmessage::Getattr { attr } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!(attr.valid, getattr::MODE | getattr::SIZE, "btime is not in BASIC");
        assert_eq!((attr.mode, attr.size), (S_IFREG | 0o644, 13));
        assert_ne!(attr.qid.path, 0);
        let change = SetAttr {
            valid: setattr::SIZE | setattr::MODE,
            size: 2,
            mode: 0o600,
            ..SetAttr::default()
        };
        let reply = c.call(2, &Tmessage::Setattr { fid: 1, attr: change }).await;
        assert_eq!(reply.msg().1, Rmessage::Setattr);
        assert_eq!(c.fs.contents(&["hello"]).unwrap(), b"he");
    });
}

#[test]
fn lcreate_makes_and_opens_a_file_in_place_of_the_directory_fid() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["dir"]).await;
        let create = Tmessage::Lcreate { fid: 1, name: "f", flags: 2, mode: 0o644, gid: 5 };
        let reply = c.call(1, &create).await;
        assert!(
            matches!(reply.msg().1, Rmessage::Lcreate { qid, .. } if qid.ty == qid_type::QTFILE)
        );
        assert_eq!(c.write(1, 0, b"abc").await, 3);
        assert_eq!(c.read(1, 1, 10).await, b"bc");
        let reply = c.call(2, &create).await;
        assert_eq!(errno(&reply), EBADF, "fid 1 is an open file now");
        c.walk(0, 2, &["dir"]).await;
        let reply = c
            .call(3, &Tmessage::Lcreate { fid: 2, name: "f", flags: 2, mode: 0o644, gid: 5 })
            .await;
        assert_eq!(errno(&reply), EEXIST);
    });
}

#[test]
fn directory_entry_calls_mkdir_symlink_readlink_rename_renameat_unlinkat() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        let reply = c.call(1, &Tmessage::Mkdir { dfid: 0, name: "m", mode: 0o700, gid: 0 }).await;
        assert!(matches!(reply.msg().1, Rmessage::Mkdir { qid } if qid.ty == qid_type::QTDIR));
        let link = Tmessage::Symlink { fid: 0, name: "l", symtgt: "hello", gid: 0 };
        assert!(matches!(c.call(2, &link).await.msg().1, Rmessage::Symlink { .. }));
        c.walk(0, 1, &["l"]).await;
        let reply = c.call(3, &Tmessage::Readlink { fid: 1 }).await;
        assert_eq!(reply.msg().1, Rmessage::Readlink { target: "hello" });
        c.walk(0, 2, &["m"]).await;
        let reply = c.call(4, &Tmessage::Rename { fid: 1, dfid: 2, name: "l2" }).await;
        assert_eq!(reply.msg().1, Rmessage::Rename);
        assert!(c.fs.exists(&["m", "l2"]));
        let renameat =
            Tmessage::Renameat { olddirfid: 2, oldname: "l2", newdirfid: 0, newname: "l3" };
        assert_eq!(c.call(5, &renameat).await.msg().1, Rmessage::Renameat);
        assert!(c.fs.exists(&["l3"]));
        let unlink = Tmessage::Unlinkat { dirfd: 0, name: "l3", flags: 0 };
        assert_eq!(c.call(6, &unlink).await.msg().1, Rmessage::Unlinkat);
        assert!(!c.fs.exists(&["l3"]));
        let unlink = Tmessage::Unlinkat { dirfd: 0, name: "..", flags: 0 };
        assert_eq!(errno(&c.call(7, &unlink).await), EINVAL);
        let mknod =
            Tmessage::Mknod { dfid: 0, name: "n", mode: 0o10644, major: 0, minor: 0, gid: 0 };
        assert_eq!(errno(&c.call(8, &mknod).await), EOPNOTSUPP, "the default");
        let link = Tmessage::Link { dfid: 0, fid: 2, name: "hard" };
        assert_eq!(errno(&c.call(9, &link).await), EOPNOTSUPP);
    });
}

#[test]
fn statfs_fsync_locks_and_xattrs() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        let reply = c.call(1, &Tmessage::Statfs { fid: 0 }).await;
        assert!(matches!(reply.msg().1, Rmessage::Statfs { statfs } if statfs.bsize == 4096));
        c.walk(0, 1, &["hello"]).await;
        c.open(1, 2).await;
        assert_eq!(
            c.call(2, &Tmessage::Fsync { fid: 1, datasync: 1 }).await.msg().1,
            Rmessage::Fsync
        );
        let want = Flock { ty: lock::WRLCK, start: 0, length: 10, proc_id: 42, client_id: "me" };
        let reply = c.call(3, &Tmessage::Lock { fid: 1, flags: 0, lock: want }).await;
        assert_eq!(reply.msg().1, Rmessage::Lock { status: lock::SUCCESS });
        let busy = Flock { start: 666, ..want };
        let reply = c.call(4, &Tmessage::Lock { fid: 1, flags: 0, lock: busy }).await;
        assert_eq!(reply.msg().1, Rmessage::Lock { status: lock::BLOCKED });
        let reply = c.call(5, &Tmessage::Getlock { fid: 1, lock: want }).await;
        assert_eq!(reply.msg().1, Rmessage::Getlock { lock: Flock { ty: lock::UNLCK, ..want } });
        let walk = Tmessage::Xattrwalk { fid: 0, newfid: 2, name: "user.test" };
        assert_eq!(c.call(6, &walk).await.msg().1, Rmessage::Xattrwalk { size: 5 });
        assert_eq!(c.read(2, 0, 100).await, b"value");
        let walk = Tmessage::Xattrwalk { fid: 0, newfid: 3, name: "user.none" };
        assert_eq!(errno(&c.call(7, &walk).await), ENODATA);
        let create = Tmessage::Xattrcreate { fid: 1, name: "user.x", attr_size: 1, flags: 0 };
        assert_eq!(errno(&c.call(8, &create).await), EOPNOTSUPP);
    });
}

#[test]
fn lerror_carries_errnos_for_bad_requests() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        let reply = c.call_raw(frame(mtype::TOPEN, 1, &[0, 0, 0, 0, 0])).await;
        assert_eq!((reply.tag(), errno(&reply)), (1, EOPNOTSUPP));
        let reply = c.call_raw(frame(99, 2, &[])).await;
        assert_eq!((reply.tag(), errno(&reply)), (2, EOPNOTSUPP));
        let reply = c.call_raw(frame(mtype::TGETATTR, 3, &[0; 4])).await;
        assert_eq!((reply.tag(), errno(&reply)), (3, EPROTO));
        let reply = c.call(4, &Tmessage::Getattr { fid: 77, request_mask: getattr::ALL }).await;
        assert_eq!(errno(&reply), EBADF);
        let walk =
            Tmessage::Walk { fid: 0, newfid: 1, names: WalkList::from_slice(&["a/b"]).unwrap() };
        assert_eq!(errno(&c.call(5, &walk).await), EINVAL);
        let auth = Tmessage::Auth { afid: 1, uname: "u", aname: "", n_uname: Some(0) };
        assert_eq!(errno(&c.call(6, &auth).await), ENOENT);
        c.walk(0, 1, &["hello"]).await;
        c.open(1, 0).await;
        let write = Tmessage::Write { fid: 1, offset: 0, data: b"x" };
        assert_eq!(errno(&c.call(7, &write).await), EBADF);
        assert_eq!(errno(&c.open(1, 0).await), EBADF);
    });
}

#[test]
fn a_broken_size_field_closes_the_connection() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        let mut bad = frame(mtype::TCLUNK, 1, &[0; 4]);
        bad[0] = 200;
        c.send_raw(bad);
        c.settle().await;
        assert!(c.take_replies().is_empty());
        assert!(c.finished());
        assert!(c.closed());
        assert_eq!(c.fs.live_fids.get(), 0);
    });
}
