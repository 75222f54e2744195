//! Sessions in plain 9P2000: attach, walk, open, create, read, write, stat, wstat, clunk,
//! remove, directory reads in stat form, and the fid rules of intro(5).

use alloc::string::String;
use alloc::vec::Vec;

use super::harness::{run, TestClient};
use crate::codec::{
    dm, mtype, open_mode, qid_type, Dialect, Rmessage, Stat, StatIter, Tmessage, WalkList, NOFID,
};

/// A wstat that touches nothing (stat(5)).
fn dont_touch() -> Stat<'static> {
    Stat {
        ty: u16::MAX,
        dev: u32::MAX,
        qid: crate::codec::Qid { ty: u8::MAX, version: u32::MAX, path: u64::MAX },
        mode: u32::MAX,
        atime: u32::MAX,
        mtime: u32::MAX,
        length: u64::MAX,
        name: "",
        uid: "",
        gid: "",
        muid: "",
    }
}

fn ename(reply: &super::harness::Reply) -> String {
    reply.error().unwrap_or_else(|| panic!("not an error: {:?}", reply.msg())).0
}

#[test]
fn attach_walk_open_write_read_and_clunk() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        let qids = c.walk(0, 1, &["hello"]).await;
        assert_eq!(qids.len(), 1);
        assert_eq!(qids[0].ty, qid_type::QTFILE);
        let reply = c.open(1, u32::from(open_mode::ORDWR)).await;
        let Rmessage::Open { qid, iounit } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!((qid, iounit), (qids[0], 0));
        assert_eq!(c.read(1, 0, 100).await, b"hello, world\n");
        assert_eq!(c.read(1, 7, 5).await, b"world");
        assert_eq!(c.write(1, 7, b"there").await, 5);
        assert_eq!(c.read(1, 0, 100).await, b"hello, there\n");
        assert_eq!(c.read(1, 100, 10).await, b"", "end of file");
        c.clunk(1).await;
        assert_eq!(
            ename(&c.call(2, &Tmessage::Read { fid: 1, offset: 0, count: 1 }).await),
            "unknown fid"
        );
        assert_eq!(c.fs.live_fids.get(), 1, "only the root is left");
    });
}

#[test]
fn a_walk_that_fails_after_its_first_name_returns_the_qids_so_far() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.fs.add_dir(&["dir"], "sub");
        let names = WalkList::from_slice(&["dir", "sub", "missing", "x"]).unwrap();
        let reply = c.call(1, &Tmessage::Walk { fid: 0, newfid: 1, names }).await;
        let Rmessage::Walk { qids } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!(qids.len(), 2);
        assert!(qids.iter().all(|q| q.ty == qid_type::QTDIR));
        // newfid was not brought into use.
        assert_eq!(ename(&c.call(2, &Tmessage::Clunk { fid: 1 }).await), "unknown fid");
        assert_eq!(c.fs.live_fids.get(), 1, "the intermediate fids were clunked");
        // A walk that fails at its first name is an error.
        let names = WalkList::from_slice(&["missing", "x"]).unwrap();
        let reply = c.call(3, &Tmessage::Walk { fid: 0, newfid: 1, names }).await;
        assert_eq!(ename(&reply), "file does not exist");
    });
}

#[test]
fn a_walk_onto_its_own_fid_moves_it_only_when_it_succeeds() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &[]).await;
        let names = WalkList::from_slice(&["dir", "missing"]).unwrap();
        let reply = c.call(1, &Tmessage::Walk { fid: 1, newfid: 1, names }).await;
        assert!(matches!(reply.msg().1, Rmessage::Walk { qids } if qids.len() == 1));
        // fid 1 still names the root: it can walk to /hello.
        let qids = c.walk(1, 1, &["hello"]).await;
        assert_eq!(qids.len(), 1);
        // ... and now names /hello, whose stat says so.
        let reply = c.call(2, &Tmessage::Stat { fid: 1 }).await;
        let Rmessage::Stat { stat } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!(stat.name, "hello");
    });
}

#[test]
fn walks_take_up_to_sixteen_names_and_refuse_seventeen() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        let names: Vec<&str> = (0..16).map(|i| if i % 2 == 0 { "dir" } else { ".." }).collect();
        assert_eq!(c.walk(0, 1, &names).await.len(), 16);
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&17u16.to_le_bytes());
        for _ in 0..17 {
            body.extend_from_slice(&3u16.to_le_bytes());
            body.extend_from_slice(b"dir");
        }
        let reply = c.call_raw(frame(mtype::TWALK, 44, &body)).await;
        assert_eq!(reply.tag(), 44);
        assert_eq!(ename(&reply), "too many names in walk");
    });
}

/// A whole message of type `ty` with `tag` around `body`.
pub(super) fn frame(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((7 + body.len()) as u32).to_le_bytes());
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn fid_rules_in_use_unknown_and_not_open() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        assert_eq!(ename(&c.attach(1, 0).await), "fid in use");
        c.walk(0, 1, &["hello"]).await;
        let names = WalkList::from_slice(&["dir"]).unwrap();
        let reply = c.call(2, &Tmessage::Walk { fid: 0, newfid: 1, names }).await;
        assert_eq!(ename(&reply), "fid in use");
        let reply = c.call(3, &Tmessage::Walk { fid: 9, newfid: 10, names }).await;
        assert_eq!(ename(&reply), "unknown fid");
        let reply = c.call(4, &Tmessage::Walk { fid: 0, newfid: NOFID, names }).await;
        assert_eq!(ename(&reply), "unknown fid");
        assert_eq!(
            ename(&c.call(5, &Tmessage::Read { fid: 1, offset: 0, count: 1 }).await),
            "fid not open"
        );
        c.open(1, u32::from(open_mode::OREAD)).await;
        let write = Tmessage::Write { fid: 1, offset: 0, data: b"x" };
        assert_eq!(ename(&c.call(6, &write).await), "fid not open for writing");
        assert_eq!(ename(&c.open(1, 0).await), "fid already open");
        // walk(5): an open fid cannot be walked.
        let reply = c.call(7, &Tmessage::Walk { fid: 1, newfid: 2, names: WalkList::new() }).await;
        assert_eq!(ename(&reply), "fid already open");
        let auth = Tmessage::Auth { afid: 5, uname: "u", aname: "", n_uname: None };
        assert_eq!(ename(&c.call(8, &auth).await), "authentication not required");
        let attach = Tmessage::Attach { fid: 5, afid: 6, uname: "u", aname: "", n_uname: None };
        assert_eq!(ename(&c.call(9, &attach).await), "unknown fid");
        let attach =
            Tmessage::Attach { fid: 5, afid: NOFID, uname: "u", aname: "no", n_uname: None };
        assert_eq!(ename(&c.call(10, &attach).await), "file does not exist");
    });
}

#[test]
fn directory_reads_return_whole_stats_and_insist_on_offset_continuity() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        let want: Vec<String> = (0..20).map(|i| alloc::format!("file-{i:02}")).collect();
        for name in &want {
            c.fs.add_file(&["dir"], name, name.as_bytes());
        }
        c.walk(0, 1, &["dir"]).await;
        c.open(1, 0).await;
        let mut seen = Vec::new();
        let mut offset = 0u64;
        for _ in 0..100 {
            let data = c.read(1, offset, 150).await;
            assert!(data.len() <= 150);
            if data.is_empty() {
                break;
            }
            for stat in StatIter::new(&data) {
                let stat = stat.expect("whole stat entries");
                assert_eq!(stat.length as usize, stat.name.len());
                assert_eq!((stat.uid, stat.gid), ("1000", "100"));
                seen.push(String::from(stat.name));
            }
            offset += data.len() as u64;
        }
        assert_eq!(seen, want, "every entry once, without . and ..");
        // An offset that is not where the last read ended is refused; 0 starts over.
        let bad = c.call(2, &Tmessage::Read { fid: 1, offset: 3, count: 150 }).await;
        assert_eq!(ename(&bad), "bad offset in directory read");
        let again = c.read(1, 0, 8192).await;
        assert_eq!(StatIter::new(&again).count(), 20);
        // A count that holds no entry at all is an error rather than an empty (end) read.
        let tiny = c.call(3, &Tmessage::Read { fid: 1, offset: 0, count: 10 }).await;
        assert_eq!(ename(&tiny), "count too small for a directory entry");
    });
}

#[test]
fn stat_reports_name_mode_length_and_numeric_owners() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        let reply = c.call(1, &Tmessage::Stat { fid: 0 }).await;
        let Rmessage::Stat { stat } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!(stat.name, "/");
        assert_eq!(stat.mode, dm::DMDIR | 0o755);
        assert_eq!(stat.length, 0);
        c.walk(0, 1, &["dir", "..", "hello"]).await;
        let reply = c.call(2, &Tmessage::Stat { fid: 1 }).await;
        let Rmessage::Stat { stat } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!((stat.name, stat.mode, stat.length), ("hello", 0o644, 13));
        assert_eq!((stat.uid, stat.gid, stat.muid, stat.mtime), ("1000", "100", "1000", 2000));
    });
}

#[test]
fn wstat_renames_truncates_and_changes_mode_and_mtime() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["hello"]).await;
        let stat = Stat { name: "renamed", length: 5, mode: 0o600, mtime: 12345, ..dont_touch() };
        let reply = c.call(1, &Tmessage::Wstat { fid: 1, stat }).await;
        assert_eq!(reply.msg().1, Rmessage::Wstat);
        assert!(!c.fs.exists(&["hello"]));
        assert_eq!(c.fs.contents(&["renamed"]).unwrap(), b"hello");
        let reply = c.call(2, &Tmessage::Stat { fid: 1 }).await;
        let Rmessage::Stat { stat } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!((stat.name, stat.mode, stat.mtime, stat.length), ("renamed", 0o600, 12345, 5));
        // All "don't touch": a request to sync.
        let syncs = c.fs.syncs.get();
        let reply = c.call(3, &Tmessage::Wstat { fid: 1, stat: dont_touch() }).await;
        assert_eq!(reply.msg().1, Rmessage::Wstat);
        assert_eq!(c.fs.syncs.get(), syncs + 1);
        // A file cannot become a directory; owners must be numeric.
        let stat = Stat { mode: dm::DMDIR | 0o755, ..dont_touch() };
        assert_eq!(
            ename(&c.call(4, &Tmessage::Wstat { fid: 1, stat }).await),
            "cannot change directory bit"
        );
        let stat = Stat { uid: "glenda", ..dont_touch() };
        assert_eq!(
            ename(&c.call(5, &Tmessage::Wstat { fid: 1, stat }).await),
            "unknown user or group"
        );
        let stat = Stat { gid: "7", ..dont_touch() };
        assert_eq!(c.call(6, &Tmessage::Wstat { fid: 1, stat }).await.msg().1, Rmessage::Wstat);
        assert_eq!(c.fs.last_setattr.get().unwrap().gid, 7);
    });
}

#[test]
fn create_makes_files_and_directories_with_plan9_permissions() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["dir"]).await;
        let create = Tmessage::Create { fid: 1, name: "new", perm: 0o777, mode: open_mode::ORDWR };
        let reply = c.call(1, &create).await;
        let Rmessage::Create { qid, .. } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        assert_eq!(qid.ty, qid_type::QTFILE);
        // fid 1 now names the new file, open for reading and writing.
        assert_eq!(c.write(1, 0, b"data").await, 4);
        assert_eq!(c.read(1, 0, 10).await, b"data");
        let reply = c.call(2, &Tmessage::Stat { fid: 1 }).await;
        let Rmessage::Stat { stat } = reply.msg().1 else { panic!("{:?}", reply.msg()) };
        // perm & (~0666 | dir.perm & 0666) with dir.perm 0755: 0777 & (~0666 | 0644) = 0755.
        assert_eq!((stat.name, stat.mode), ("new", 0o755));
        // A second create of the same name fails.
        c.walk(0, 2, &["dir"]).await;
        let again = Tmessage::Create { fid: 2, name: "new", perm: 0o644, mode: 0 };
        assert_eq!(ename(&c.call(3, &again).await), "file already exists");
        let mkdir = Tmessage::Create { fid: 2, name: "sub", perm: dm::DMDIR | 0o700, mode: 0 };
        let reply = c.call(4, &mkdir).await;
        assert!(matches!(reply.msg().1, Rmessage::Create { qid, .. } if qid.ty == qid_type::QTDIR));
        assert!(c.fs.exists(&["dir", "sub"]));
        assert_eq!(c.read(2, 0, 1000).await, b"", "an empty directory, open for reading");
        c.walk(0, 3, &["dir"]).await;
        for bad in ["", ".", "..", "a/b"] {
            let create = Tmessage::Create { fid: 3, name: bad, perm: 0o644, mode: 0 };
            assert_eq!(ename(&c.call(5, &create).await), "bad file name", "{bad:?}");
        }
    });
}

#[test]
fn orclose_removes_the_file_when_its_fid_is_clunked() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["hello"]).await;
        c.open(1, u32::from(open_mode::OREAD | open_mode::ORCLOSE)).await;
        assert!(c.fs.exists(&["hello"]));
        c.clunk(1).await;
        assert!(!c.fs.exists(&["hello"]));
        assert_eq!(c.fs.removes.get(), 1);
    });
}

#[test]
fn open_applies_otrunc_and_refuses_writing_a_directory() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["hello"]).await;
        c.open(1, u32::from(open_mode::OWRITE | open_mode::OTRUNC)).await;
        assert_eq!(c.fs.last_open_flags.get(), 1 | 0o1000);
        assert_eq!(c.fs.contents(&["hello"]).unwrap(), b"");
        c.walk(0, 2, &["dir"]).await;
        assert_eq!(ename(&c.open(2, u32::from(open_mode::OWRITE)).await), "is a directory");
    });
}

#[test]
fn remove_removes_and_clunks_even_when_it_fails() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["hello"]).await;
        assert_eq!(c.call(1, &Tmessage::Remove { fid: 1 }).await.msg().1, Rmessage::Remove);
        assert!(!c.fs.exists(&["hello"]));
        c.walk(0, 2, &[]).await;
        // The root cannot be removed, but the fid is clunked anyway.
        assert!(c.call(2, &Tmessage::Remove { fid: 2 }).await.error().is_some());
        assert_eq!(ename(&c.call(3, &Tmessage::Clunk { fid: 2 }).await), "unknown fid");
    });
}

#[test]
fn requests_of_9p2000_l_are_refused_in_9p2000() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        let reply = c.call_raw(frame(mtype::TGETATTR, 12, &[0; 12])).await;
        assert_eq!((reply.tag(), ename(&reply).as_str()), (12, "message not in this dialect"));
        let reply = c.call_raw(frame(200, 13, &[])).await;
        assert_eq!((reply.tag(), ename(&reply).as_str()), (13, "unknown message type"));
        let reply = c.call_raw(frame(mtype::TCLUNK, 14, &[1, 2])).await;
        assert_eq!((reply.tag(), ename(&reply).as_str()), (14, "protocol botch"));
        assert_eq!(reply.error().unwrap().1, 0);
        assert_eq!(c.stats.requests_of_type(mtype::TCLUNK), 1);
    });
}

#[test]
fn a_connection_holds_at_most_max_fids() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        for fid in 1..crate::server::MAX_FIDS as u32 {
            c.send(1, &Tmessage::Walk { fid: 0, newfid: fid, names: WalkList::new() });
            if fid % 256 == 0 {
                c.settle().await;
                assert!(c.take_replies().iter().all(|r| r.error().is_none()));
            }
        }
        c.settle().await;
        assert!(c.take_replies().iter().all(|r| r.error().is_none()));
        let extra = Tmessage::Walk { fid: 0, newfid: 1 << 20, names: WalkList::new() };
        let reply = c.call(2, &extra).await;
        assert_eq!(reply.error().unwrap(), ("too many fids".into(), 0));
        c.clunk(1).await;
        assert_eq!(c.walk(0, 1 << 20, &[]).await.len(), 0, "room again after a clunk");
    });
}
