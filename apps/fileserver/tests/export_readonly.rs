//! A read-only export (`--read-only`) refuses every operation that would change the tree with
//! `EROFS` (issue 3: "a read-only export refuses every write"), and still serves reads.

mod export_common;

use std::fs;
use std::os::unix::fs::symlink;

use cairn_9p::codec::{lock, setattr, Flock, SetAttr};
use cairn_9p::errno::EROFS;
use cairn_9p::server::{FileServer, LockStatus};
use export_common::*;

#[test]
fn read_only_export_refuses_every_write() {
    let tree = TempTree::new("ro");
    fs::write(tree.inside("f"), b"read me").unwrap();
    fs::create_dir(tree.inside("d")).unwrap();
    fs::write(tree.inside("d/inner"), b"inner").unwrap();
    symlink("f", tree.inside("sl")).unwrap();
    let before = host_snapshot(&tree.base);
    let export = tree.export(true);
    assert!(export.options().read_only);
    let root = root(&export);
    let f = walk_path(&export, "f").unwrap();
    let d = walk_path(&export, "d").unwrap();

    // Opens that would write: write-only, read-write, truncate, append for writing.
    for flags in [1, 2, 0o1000, 0o1001, 0o2001, 0o1002] {
        let fid = walk_path(&export, "f").unwrap();
        assert_eq!(export.open(&fid, flags).err(), Some(EROFS), "open flags {flags:o}");
    }
    // Every other modifying operation.
    assert_eq!(export.create(&root, "new", 2, 0o644, u32::MAX).err(), Some(EROFS));
    assert_eq!(export.create(&root, "f", 2, 0o644, u32::MAX).err(), Some(EROFS));
    let reader = walk_path(&export, "f").unwrap();
    export.open(&reader, 0).unwrap();
    assert_eq!(write_at(&export, &reader, 0, b"x").err(), Some(EROFS));
    for valid in [
        setattr::MODE,
        setattr::UID,
        setattr::GID,
        setattr::SIZE,
        setattr::ATIME,
        setattr::MTIME,
        setattr::CTIME,
        setattr::ATIME | setattr::ATIME_SET,
        setattr::MTIME | setattr::MTIME_SET,
    ] {
        let attr = SetAttr { valid, mode: 0o777, ..Default::default() };
        assert_eq!(export.setattr(&f, &attr).err(), Some(EROFS), "setattr {valid:#x}");
    }
    assert_eq!(export.remove(walk_path(&export, "f").unwrap()).err(), Some(EROFS));
    assert_eq!(export.remove(walk_path(&export, "d").unwrap()).err(), Some(EROFS));
    assert_eq!(export.mkdir(&root, "newdir", 0o755, u32::MAX).err(), Some(EROFS));
    assert_eq!(export.symlink(&root, "newlink", "f", u32::MAX).err(), Some(EROFS));
    assert_eq!(
        export.mknod(&root, "fifo", libc::S_IFIFO | 0o644, 0, 0, u32::MAX).err(),
        Some(EROFS)
    );
    assert_eq!(export.link(&root, &f, "hard").err(), Some(EROFS));
    assert_eq!(export.rename(&f, None, "g").err(), Some(EROFS));
    assert_eq!(export.rename(&f, Some(&d), "g").err(), Some(EROFS));
    assert_eq!(export.renameat(&root, "f", &d, "g").err(), Some(EROFS));
    assert_eq!(export.unlinkat(&root, "f", 0).err(), Some(EROFS));
    assert_eq!(export.unlinkat(&root, "d", 0x200).err(), Some(EROFS));
    let xfid = walk_path(&export, "f").unwrap();
    assert_eq!(export.xattrcreate(&xfid, "user.x", 1, 0).err(), Some(EROFS));

    // Reading still works: files, listings, links, attributes, statfs, read locks.
    assert_eq!(read_all(&export, &reader).unwrap(), b"read me");
    assert_eq!(cat(&export, "d/inner").unwrap(), b"inner");
    let names: Vec<String> = list(&export, &root, 10).into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(export.readlink(&walk_path(&export, "sl").unwrap()).unwrap(), "f");
    assert_eq!(export.getattr(&f).unwrap().size, 7);
    export.statfs(&root).unwrap();
    export.fsync(&reader, false).unwrap();
    let rd = Flock { ty: lock::RDLCK, start: 0, length: 0, proc_id: 1, client_id: "c" };
    assert_eq!(export.lock(&reader, &rd, 0).unwrap(), LockStatus::Success);
    // A setattr that changes nothing is not a write.
    export.setattr(&f, &SetAttr::default()).unwrap();
    drop((reader, xfid));

    assert_eq!(host_snapshot(&tree.base), before, "the read-only export changed the tree");
}
