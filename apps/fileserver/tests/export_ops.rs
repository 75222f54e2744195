//! Functional tests of the host directory export through the `FileServer` trait: create,
//! write, read, rename, remove, directories, listings with resumable cookies, attributes,
//! statfs, locks, links, extended attributes.

mod export_common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use cairn_9p::codec::{getattr, lock, qid_type, setattr, Flock, SetAttr};
use cairn_9p::errno::{EBADF, EBUSY, EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY};
use cairn_9p::server::{dtype, FileServer, LockStatus};
use export_common::*;

const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_DIRECTORY: u32 = 0o200000;

#[test]
fn create_write_read_and_reopen() {
    let tree = TempTree::new("create");
    let export = tree.export(false);
    let root = root(&export);
    let (fid, iounit) = export.create(&root, "hello.txt", O_RDWR, 0o640, u32::MAX).unwrap();
    assert_eq!(iounit, 0);
    assert_eq!(export.qid(&fid).ty, qid_type::QTFILE);
    assert_ne!(export.qid(&fid).path, 0);
    assert_eq!(write_at(&export, &fid, 0, b"hello, ").unwrap(), 7);
    assert_eq!(write_at(&export, &fid, 7, b"world").unwrap(), 5);
    assert_eq!(read_all(&export, &fid).unwrap(), b"hello, world");
    // Reads past the end are empty; reads are bounded by count.
    let tail = cairn_rt::event::block_on_ready(export.read(&fid, 100, 10)).unwrap();
    assert!(tail.is_empty());
    let part = cairn_rt::event::block_on_ready(export.read(&fid, 7, 3)).unwrap();
    assert_eq!(part.as_slice(), b"wor");
    export.clunk(fid);
    // The mode is exactly what was asked for, whatever the server's umask.
    let meta = fs::metadata(tree.inside("hello.txt")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(fs::read(tree.inside("hello.txt")).unwrap(), b"hello, world");
    // lcreate of an existing name fails; a walked fid opens it.
    assert_eq!(export.create(&root, "hello.txt", O_RDWR, 0o644, u32::MAX).err(), Some(EEXIST));
    assert_eq!(cat(&export, "hello.txt").unwrap(), b"hello, world");
    // The walk's qid and the created file's qid agree; open returns it too.
    let walked = walk_path(&export, "hello.txt").unwrap();
    let (qid, _) = export.open(&walked, 0).unwrap();
    assert_eq!(qid.path, meta.ino());
    // A fid opened for reading refuses writes, and an open fid cannot be opened again.
    assert_eq!(write_at(&export, &walked, 0, b"x").err(), Some(EBADF));
    assert_eq!(export.open(&walked, 0).err(), Some(EBADF));
    // An unopened fid can be neither read nor written.
    let unopened = walk_path(&export, "hello.txt").unwrap();
    assert_eq!(cairn_rt::event::block_on_ready(export.read(&unopened, 0, 10)).err(), Some(EBADF));
    assert_eq!(export.fsync(&unopened, false).err(), Some(EBADF));
}

#[test]
fn open_flags_truncate_append_and_directory() {
    let tree = TempTree::new("flags");
    fs::write(tree.inside("f"), b"0123456789").unwrap();
    fs::create_dir(tree.inside("d")).unwrap();
    let export = tree.export(false);
    let append = walk_path(&export, "f").unwrap();
    export.open(&append, O_WRONLY | O_APPEND).unwrap();
    write_at(&export, &append, 0, b"AB").unwrap();
    assert_eq!(fs::read(tree.inside("f")).unwrap(), b"0123456789AB");
    let trunc = walk_path(&export, "f").unwrap();
    export.open(&trunc, O_RDWR | O_TRUNC).unwrap();
    assert_eq!(fs::metadata(tree.inside("f")).unwrap().len(), 0);
    export.fsync(&trunc, true).unwrap();
    export.fsync(&trunc, false).unwrap();
    let d = walk_path(&export, "d").unwrap();
    assert_eq!(export.open(&d, O_WRONLY).err(), Some(EISDIR));
    assert_eq!(export.open(&d, O_TRUNC).err(), Some(EISDIR));
    let f = walk_path(&export, "f").unwrap();
    assert_eq!(export.open(&f, O_DIRECTORY).err(), Some(ENOTDIR));
    assert_eq!(export.open(&f, 3).err(), Some(EINVAL));
    export.open(&d, O_DIRECTORY).unwrap();
    assert_eq!(cairn_rt::event::block_on_ready(export.read(&d, 0, 10)).err(), Some(EISDIR));
    // Walking from a file is not possible.
    assert_eq!(export.walk(&f, "x").err(), Some(ENOTDIR));
    assert_eq!(export.walk(&f, "..").err(), Some(ENOTDIR));
}

#[test]
fn readdir_of_a_thousand_entries_resumes_from_cookies() {
    let tree = TempTree::new("readdir");
    let export = tree.export(false);
    let root = root(&export);
    export.mkdir(&root, "big", 0o755, u32::MAX).unwrap();
    let big = walk_path(&export, "big").unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..1000 {
        let name = format!("entry-{i:04}");
        if i % 10 == 0 {
            export.mkdir(&big, &name, 0o755, u32::MAX).unwrap();
        } else {
            let (fid, _) = export.create(&big, &name, O_WRONLY, 0o644, u32::MAX).unwrap();
            export.clunk(fid);
        }
        expected.insert(name);
    }
    for chunk in [1, 7, 64, 1000, 5000] {
        let entries = list(&export, &big, chunk);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let unique: BTreeSet<String> =
            names.iter().filter(|n| !n.starts_with('.')).map(|n| n.to_string()).collect();
        assert_eq!(unique, expected, "chunk {chunk}");
        assert_eq!(names.len(), 1002, "chunk {chunk}: each entry once, with . and ..");
        for e in &entries {
            assert_ne!(e.qid.path, 0);
            let want = if e.name.starts_with('.') || e.name.ends_with('0') {
                (dtype::DT_DIR, qid_type::QTDIR)
            } else {
                (dtype::DT_REG, qid_type::QTFILE)
            };
            assert_eq!((e.kind, e.qid.ty), want, "{}", e.name);
        }
    }
    // A cookie from one listing resumes in another fid (as a client's next Treaddir would).
    let first = list(&export, &big, 1000);
    let cut = 500;
    let fresh = export.clone_fid(&big).unwrap();
    export.open(&fresh, 0).unwrap();
    let rest = export.readdir(&fresh, first[cut].offset, 10_000).unwrap();
    let rest_names: Vec<&str> = rest.iter().map(|e| e.name.as_str()).collect();
    let want: Vec<&str> = first[cut + 1..].iter().map(|e| e.name.as_str()).collect();
    assert_eq!(rest_names, want);
    // Readdir qids agree with walked qids.
    let e = first.iter().find(|e| e.name == "entry-0042").unwrap();
    assert_eq!(e.qid.path, export.qid(&walk(&export, &big, &["entry-0042"]).unwrap()).path);
    // Readdir needs an open directory, and a directory.
    assert_eq!(export.readdir(&big, 0, 10).err(), Some(EBADF));
    let file = walk(&export, &big, &["entry-0001"]).unwrap();
    export.open(&file, 0).unwrap();
    assert_eq!(export.readdir(&file, 0, 10).err(), Some(ENOTDIR));
}

#[test]
fn mkdir_rename_renameat_remove_unlinkat() {
    let tree = TempTree::new("tree-ops");
    let export = tree.export(false);
    let root = root(&export);
    let qid = export.mkdir(&root, "a", 0o750, u32::MAX).unwrap();
    assert_eq!(qid.ty, qid_type::QTDIR);
    assert_eq!(fs::metadata(tree.inside("a")).unwrap().permissions().mode() & 0o7777, 0o750);
    assert_eq!(export.mkdir(&root, "a", 0o755, u32::MAX).err(), Some(EEXIST));
    let a = walk_path(&export, "a").unwrap();
    export.mkdir(&a, "b", 0o755, u32::MAX).unwrap();
    let (f, _) = export.create(&a, "f", O_RDWR, 0o600, u32::MAX).unwrap();
    write_at(&export, &f, 0, b"payload").unwrap();
    // Trename: within its directory, then into another; the fid follows the file.
    export.rename(&f, None, "g").unwrap();
    assert!(tree.inside("a/g").exists() && !tree.inside("a/f").exists());
    let b = walk_path(&export, "a/b").unwrap();
    export.rename(&f, Some(&b), "h").unwrap();
    assert_eq!(fs::read(tree.inside("a/b/h")).unwrap(), b"payload");
    export.rename(&f, Some(&root), "top").unwrap();
    assert_eq!(fs::read(tree.inside("top")).unwrap(), b"payload");
    // Trenameat.
    export.renameat(&root, "top", &a, "back").unwrap();
    assert_eq!(cat(&export, "a/back").unwrap(), b"payload");
    assert_eq!(export.renameat(&root, "missing", &a, "x").err(), Some(ENOENT));
    // A directory reached by `..` can be renamed (its name is found again).
    let a_by_dotdot = walk_path(&export, "a/b/..").unwrap();
    export.rename(&a_by_dotdot, None, "a2").unwrap();
    assert!(tree.inside("a2/b").is_dir());
    // Tunlinkat, Tremove.
    let a2 = walk_path(&export, "a2").unwrap();
    assert_eq!(export.unlinkat(&root, "a2", 0x200).err(), Some(ENOTEMPTY));
    export.unlinkat(&a2, "back", 0).unwrap();
    assert_eq!(export.unlinkat(&a2, "b", 0).err(), Some(libc::EISDIR as u32));
    export.unlinkat(&a2, "b", 0x200).unwrap();
    assert_eq!(export.unlinkat(&a2, "b", 0x1).err(), Some(EINVAL));
    export.remove(a2).unwrap();
    assert_eq!(fs::read_dir(&tree.dir).unwrap().count(), 0);
    assert_eq!(export.remove(export.clone_fid(&root).unwrap()).err(), Some(EBUSY));
    // Remove of a fid whose file is gone.
    let (gone, _) = export.create(&root, "gone", O_RDWR, 0o600, u32::MAX).unwrap();
    fs::remove_file(tree.inside("gone")).unwrap();
    assert_eq!(export.remove(gone).err(), Some(ENOENT));
}

#[test]
fn getattr_and_setattr_truncate_mode_owner_times() {
    let tree = TempTree::new("attrs");
    fs::write(tree.inside("f"), vec![7u8; 10_000]).unwrap();
    let export = tree.export(false);
    let fid = walk_path(&export, "f").unwrap();
    let attr = export.getattr(&fid).unwrap();
    assert_eq!(attr.valid & getattr::BASIC, getattr::BASIC);
    assert_eq!(attr.size, 10_000);
    assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(attr.nlink, 1);
    assert_eq!(attr.qid, export.qid(&fid));
    // Truncate through an unopened fid, then through an open one.
    export
        .setattr(&fid, &SetAttr { valid: setattr::SIZE, size: 123, ..Default::default() })
        .unwrap();
    assert_eq!(fs::metadata(tree.inside("f")).unwrap().len(), 123);
    let open = walk_path(&export, "f").unwrap();
    export.open(&open, O_RDWR).unwrap();
    export
        .setattr(&open, &SetAttr { valid: setattr::SIZE, size: 5, ..Default::default() })
        .unwrap();
    assert_eq!(export.getattr(&fid).unwrap().size, 5);
    // Mode.
    export
        .setattr(&fid, &SetAttr { valid: setattr::MODE, mode: 0o100604, ..Default::default() })
        .unwrap();
    assert_eq!(export.getattr(&fid).unwrap().mode, libc::S_IFREG | 0o604);
    // Times given, then "now".
    let times = SetAttr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1_000_000,
        atime_nsec: 5,
        mtime_sec: 2_000_000,
        mtime_nsec: 6,
        ..Default::default()
    };
    export.setattr(&fid, &times).unwrap();
    let attr = export.getattr(&fid).unwrap();
    assert_eq!((attr.atime_sec, attr.atime_nsec), (1_000_000, 5));
    assert_eq!((attr.mtime_sec, attr.mtime_nsec), (2_000_000, 6));
    let qid_before = export.qid(&fid);
    export.setattr(&fid, &SetAttr { valid: setattr::MTIME, ..Default::default() }).unwrap();
    let attr = export.getattr(&fid).unwrap();
    assert_eq!(attr.atime_sec, 1_000_000, "atime untouched");
    assert!(attr.mtime_sec > 1_600_000_000, "mtime is now");
    assert_ne!(export.qid(&fid).version, qid_before.version, "the qid version follows mtime");
    // ctime alone.
    let ctime = export.getattr(&fid).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    export.setattr(&fid, &SetAttr { valid: setattr::CTIME, ..Default::default() }).unwrap();
    let after = export.getattr(&fid).unwrap();
    assert!((after.ctime_sec, after.ctime_nsec) > (ctime.ctime_sec, ctime.ctime_nsec));
    // Owner (the tests run as root; as another user chown to others is refused).
    let owner =
        SetAttr { valid: setattr::UID | setattr::GID, uid: 1234, gid: 4321, ..Default::default() };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        export.setattr(&fid, &owner).unwrap();
        let meta = fs::metadata(tree.inside("f")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    } else {
        assert!(export.setattr(&fid, &owner).is_err());
    }
    // Directories cannot be truncated.
    let root = root(&export);
    let err = export.setattr(&root, &SetAttr { valid: setattr::SIZE, ..Default::default() });
    assert_eq!(err.err(), Some(EISDIR));
}

#[test]
fn statfs_reports_the_host_file_system() {
    let tree = TempTree::new("statfs");
    let export = tree.export(false);
    let st = export.statfs(&root(&export)).unwrap();
    assert!(st.bsize > 0 && st.blocks > 0 && st.bfree <= st.blocks);
    assert!(st.namelen >= 255);
    let mut host: libc::statfs = unsafe { std::mem::zeroed() };
    let path = std::ffi::CString::new(tree.dir.to_str().unwrap()).unwrap();
    // SAFETY: `path` is NUL-terminated and `host` a writable statfs.
    assert_eq!(unsafe { libc::statfs(path.as_ptr(), &mut host) }, 0);
    assert_eq!(st.ty, host.f_type as u32);
    assert_eq!(st.blocks, host.f_blocks);
}

#[test]
fn locks_conflict_between_fids_and_release() {
    let tree = TempTree::new("locks");
    fs::write(tree.inside("f"), b"lockable").unwrap();
    let export = tree.export(false);
    let one = walk_path(&export, "f").unwrap();
    let two = walk_path(&export, "f").unwrap();
    export.open(&one, O_RDWR).unwrap();
    export.open(&two, O_RDWR).unwrap();
    let flock = |ty, start, length| Flock { ty, start, length, proc_id: 42, client_id: "c" };
    assert_eq!(export.lock(&one, &flock(lock::WRLCK, 0, 4), 0).unwrap(), LockStatus::Success);
    assert_eq!(export.lock(&two, &flock(lock::RDLCK, 2, 2), 1).unwrap(), LockStatus::Blocked);
    // A range that does not overlap is free.
    assert_eq!(export.lock(&two, &flock(lock::WRLCK, 4, 0), 0).unwrap(), LockStatus::Success);
    let (ty, start, length, _) = export.getlock(&two, &flock(lock::RDLCK, 0, 1)).unwrap();
    assert_eq!((ty, start, length), (lock::WRLCK, 0, 4));
    let (ty, start, length, pid) = export.getlock(&one, &flock(lock::RDLCK, 0, 1)).unwrap();
    assert_eq!(
        (ty, start, length, pid),
        (lock::UNLCK, 0, 1, 42),
        "a fid's own lock is no conflict"
    );
    assert_eq!(export.lock(&one, &flock(lock::UNLCK, 0, 4), 0).unwrap(), LockStatus::Success);
    assert_eq!(export.lock(&two, &flock(lock::RDLCK, 0, 4), 0).unwrap(), LockStatus::Success);
    // Clunking a fid releases its locks.
    export.clunk(two);
    assert_eq!(export.lock(&one, &flock(lock::WRLCK, 0, 0), 0).unwrap(), LockStatus::Success);
    // Locks need an open fid and a known type.
    let unopened = walk_path(&export, "f").unwrap();
    assert_eq!(export.lock(&unopened, &flock(lock::RDLCK, 0, 1), 0).err(), Some(EBADF));
    assert_eq!(export.lock(&one, &flock(9, 0, 1), 0).err(), Some(EINVAL));
}

#[test]
fn symlink_readlink_link_and_mknod() {
    let tree = TempTree::new("links");
    fs::write(tree.inside("target"), b"linked").unwrap();
    let export = tree.export(false);
    let root = root(&export);
    let qid = export.symlink(&root, "sl", "target", u32::MAX).unwrap();
    assert_eq!(qid.ty, qid_type::QTSYMLINK);
    assert_eq!(fs::read_link(tree.inside("sl")).unwrap().to_str(), Some("target"));
    let sl = walk_path(&export, "sl").unwrap();
    assert_eq!(export.readlink(&sl).unwrap(), "target");
    assert_eq!(export.readlink(&root).err(), Some(EINVAL));
    let target = walk_path(&export, "target").unwrap();
    export.link(&root, &target, "hard").unwrap();
    assert_eq!(cat(&export, "hard").unwrap(), b"linked");
    assert_eq!(fs::metadata(tree.inside("target")).unwrap().nlink(), 2);
    assert_eq!(export.link(&root, &target, "hard").err(), Some(EEXIST));
    let fifo = export.mknod(&root, "fifo", libc::S_IFIFO | 0o620, 0, 0, u32::MAX).unwrap();
    assert_eq!(fifo.ty, qid_type::QTFILE);
    let meta = fs::symlink_metadata(tree.inside("fifo")).unwrap();
    assert_eq!(meta.mode(), libc::S_IFIFO | 0o620);
    // Opening a fifo with no writer does not block the server.
    let fifo = walk_path(&export, "fifo").unwrap();
    export.open(&fifo, 0).unwrap();
    let reg = export.mknod(&root, "plain", libc::S_IFREG | 0o644, 0, 0, u32::MAX).unwrap();
    assert_eq!(reg.ty, qid_type::QTFILE);
    // A created file can be given a group (the tests run as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        export.mkdir(&root, "grouped", 0o2775, 777).unwrap();
        let meta = fs::metadata(tree.inside("grouped")).unwrap();
        assert_eq!((meta.gid(), meta.mode() & 0o7777), (777, 0o2775));
    }
}

#[test]
fn extended_attributes_round_trip() {
    let tree = TempTree::new("xattr");
    fs::write(tree.inside("f"), b"x").unwrap();
    let export = tree.export(false);
    let fid = walk_path(&export, "f").unwrap();
    let writer = export.clone_fid(&fid).unwrap();
    export.xattrcreate(&writer, "user.cairn", 5, 0).unwrap();
    write_at(&export, &writer, 0, b"he").unwrap();
    write_at(&export, &writer, 2, b"llo").unwrap();
    assert!(write_at(&export, &writer, 5, b"!").is_err(), "past the announced size");
    export.clunk(writer);
    let (value, size) = export.xattrwalk(&fid, "user.cairn").unwrap();
    assert_eq!(size, 5);
    assert_eq!(read_all(&export, &value).unwrap(), b"hello");
    let (names, _) = export.xattrwalk(&fid, "").unwrap();
    let names = read_all(&export, &names).unwrap();
    assert!(names.split(|&b| b == 0).any(|n| n == b"user.cairn"));
    assert_eq!(export.xattrwalk(&fid, "user.missing").err(), Some(libc::ENODATA as u32));
    // Size 0 with XATTR_REPLACE removes it.
    let remover = export.clone_fid(&fid).unwrap();
    export.xattrcreate(&remover, "user.cairn", 0, libc::XATTR_REPLACE as u32).unwrap();
    export.clunk(remover);
    assert_eq!(export.xattrwalk(&fid, "user.cairn").err(), Some(libc::ENODATA as u32));
}
