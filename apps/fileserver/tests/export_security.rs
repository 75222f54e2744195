//! Security of the host directory export (issue 3, "Security: every escape attempt listed above
//! fails"): nothing outside the exported directory is reachable through `..`, through symbolic
//! links pointing out (absolute or relative), through a symbolic link swapped in during a walk,
//! through hard links, renames or creates.

mod export_common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_9p::codec::{qid_type, setattr, SetAttr};
use cairn_9p::errno::{EACCES, EEXIST, EINVAL, ELOOP, ENOENT, ENOTDIR, EPERM};
use cairn_9p::server::FileServer;
use export_common::*;

#[test]
fn attach_accepts_empty_and_exported_path_only() {
    let tree = TempTree::new("attach");
    let export = tree.export(false);
    let root_qid = export.qid(&root(&export));
    let dir = tree.dir.to_str().unwrap();
    for aname in ["", dir, &format!("{dir}/")] {
        let fid = export.attach(aname, &who()).unwrap();
        assert_eq!(export.qid(&fid), root_qid, "aname {aname:?}");
    }
    let outside = tree.outside.to_str().unwrap();
    for aname in ["/", "/etc", outside, &format!("{dir}/.."), "cairn"] {
        assert_eq!(export.attach(aname, &who()).err(), Some(ENOENT), "aname {aname:?}");
    }
}

#[test]
fn dotdot_at_root_stays_at_root() {
    let tree = TempTree::new("dotdot");
    fs::create_dir_all(tree.inside("a/b")).unwrap();
    let export = tree.export(false);
    let root = root(&export);
    let root_qid = export.qid(&root);
    let up = walk(&export, &root, &["..", "..", ".."]).unwrap();
    assert_eq!(export.qid(&up), root_qid);
    // Above the root there is only the root: the outside names do not exist.
    assert_eq!(walk(&export, &root, &["..", "secret"]).err(), Some(ENOENT));
    assert_eq!(walk(&export, &root, &["..", "outside", "secret"]).err(), Some(ENOENT));
    assert_eq!(walk(&export, &root, &["a", "..", "..", "secret"]).err(), Some(ENOENT));
    assert_eq!(walk(&export, &root, &["a", "b", "..", "..", "..", "outside"]).err(), Some(ENOENT));
    // Inside, `..` is the real parent.
    let a = walk(&export, &root, &["a"]).unwrap();
    let a_again = walk(&export, &root, &["a", "b", ".."]).unwrap();
    assert_eq!(export.qid(&a), export.qid(&a_again));
    // A listing of the root shows `..` as the root itself, not the directory above.
    let entries = list(&export, &root, 16);
    let dotdot = entries.iter().find(|e| e.name == "..").unwrap();
    assert_eq!(dotdot.qid.path, root_qid.path);
}

#[test]
fn names_with_slashes_or_dots_are_refused() {
    let tree = TempTree::new("names");
    fs::create_dir_all(tree.inside("a")).unwrap();
    let export = tree.export(false);
    let root = root(&export);
    for (name, errno) in
        [("", ENOENT), (".", EINVAL), ("../secret", EINVAL), ("a/..", EINVAL), ("/etc", EINVAL)]
    {
        assert_eq!(export.walk(&root, name).err(), Some(errno), "walk {name:?}");
        assert_eq!(export.mkdir(&root, name, 0o755, u32::MAX).err(), Some(errno), "{name:?}");
        assert_eq!(export.create(&root, name, 2, 0o644, u32::MAX).err(), Some(errno));
        assert_eq!(export.symlink(&root, name, "x", u32::MAX).err(), Some(errno));
        assert_eq!(export.unlinkat(&root, name, 0).err(), Some(errno));
    }
    assert_eq!(export.walk(&root, "a\0b").err(), Some(EINVAL));
    for name in ["..", "../x", "../../outside/new"] {
        assert_eq!(export.create(&root, name, 2, 0o644, u32::MAX).err(), Some(EINVAL));
        assert_eq!(export.mkdir(&root, name, 0o755, u32::MAX).err(), Some(EINVAL));
    }
    assert_eq!(fs::read_dir(&tree.outside).unwrap().count(), 1);
}

/// Symbolic links pointing out, absolute and relative, to files and to directories.
#[test]
fn symlinks_pointing_out_are_never_followed() {
    let tree = TempTree::new("symlinks");
    let abs_secret = tree.base.join("secret");
    symlink("/etc/passwd", tree.inside("passwd")).unwrap();
    symlink(&abs_secret, tree.inside("abs")).unwrap();
    symlink("../secret", tree.inside("rel")).unwrap();
    symlink(&tree.outside, tree.inside("absdir")).unwrap();
    symlink("../outside", tree.inside("reldir")).unwrap();
    symlink("..", tree.inside("parent")).unwrap();
    fs::create_dir(tree.inside("sub")).unwrap();
    symlink("../../secret", tree.inside("sub/deep")).unwrap();
    let export = tree.export(false);
    let root = root(&export);

    for link in ["passwd", "abs", "rel", "sub/deep"] {
        // Walking the name gives the link itself: lstat-like attributes, and no way to open it.
        let fid = walk_path(&export, link).unwrap();
        assert_eq!(export.qid(&fid).ty, qid_type::QTSYMLINK, "{link}");
        let attr = export.getattr(&fid).unwrap();
        assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFLNK, "{link}");
        assert_eq!(export.open(&fid, 0).err(), Some(ELOOP), "{link}");
        assert_eq!(cat(&export, link).err(), Some(ELOOP), "{link}");
        // The target is data the client resolves itself, stored as it was.
        let target = fs::read_link(tree.inside(link)).unwrap();
        assert_eq!(export.readlink(&fid).unwrap(), target.to_str().unwrap());
        assert_eq!(attr.size, target.as_os_str().len() as u64);
    }
    for link in ["absdir", "reldir", "parent"] {
        // Walking through a link to a directory outside fails at the link.
        assert_eq!(walk(&export, &root, &[link, "secret"]).err(), Some(ENOTDIR), "{link}");
        assert_eq!(walk(&export, &root, &[link, "outside", "secret"]).err(), Some(ENOTDIR));
        assert_eq!(walk(&export, &root, &[link, ".."]).err(), Some(ENOTDIR));
        let fid = walk(&export, &root, &[link]).unwrap();
        assert_eq!(export.open(&fid, 0o200000).err(), Some(ENOTDIR), "{link}");
        assert!(export.readdir(&fid, 0, 100).is_err());
        // Creating through it is refused too.
        assert_eq!(export.create(&fid, "new", 2, 0o644, u32::MAX).err(), Some(ENOTDIR));
        assert_eq!(export.mkdir(&fid, "new", 0o755, u32::MAX).err(), Some(ENOTDIR));
    }
    assert_eq!(fs::read_dir(&tree.outside).unwrap().count(), 1);
}

/// A create of a name that is a dangling link pointing out must not create the target.
#[test]
fn create_through_dangling_symlink_is_refused() {
    let tree = TempTree::new("dangling");
    symlink(tree.outside.join("planted"), tree.inside("abs")).unwrap();
    symlink("../outside/planted", tree.inside("rel")).unwrap();
    let export = tree.export(false);
    let root = root(&export);
    for name in ["abs", "rel"] {
        assert_eq!(export.create(&root, name, 2, 0o644, u32::MAX).err(), Some(EEXIST));
        assert_eq!(export.mkdir(&root, name, 0o755, u32::MAX).err(), Some(EEXIST));
        assert_eq!(
            export.mknod(&root, name, libc::S_IFIFO | 0o644, 0, 0, u32::MAX).err(),
            Some(EEXIST)
        );
    }
    assert!(!tree.outside.join("planted").exists());
}

/// Attribute changes through a fid of a link pointing out change the link, never the target.
#[test]
fn setattr_on_outward_symlink_leaves_target_alone() {
    let tree = TempTree::new("setattr-link");
    let secret = tree.outside.join("secret");
    symlink(&secret, tree.inside("link")).unwrap();
    let before = fs::metadata(&secret).unwrap();
    let export = tree.export(false);
    let fid = walk_path(&export, "link").unwrap();
    let truncate = SetAttr { valid: setattr::SIZE, size: 0, ..Default::default() };
    assert_eq!(export.setattr(&fid, &truncate).err(), Some(EINVAL));
    let chmod = SetAttr { valid: setattr::MODE, mode: 0o777, ..Default::default() };
    assert!(export.setattr(&fid, &chmod).is_err());
    let times = SetAttr {
        valid: setattr::ATIME | setattr::MTIME | setattr::ATIME_SET | setattr::MTIME_SET,
        atime_sec: 1000,
        mtime_sec: 2000,
        ..Default::default()
    };
    export.setattr(&fid, &times).unwrap();
    let chown =
        SetAttr { valid: setattr::UID | setattr::GID, uid: 4321, gid: 4321, ..Default::default() };
    let chowned = export.setattr(&fid, &chown);
    let after = fs::metadata(&secret).unwrap();
    assert_eq!(after.len(), SECRET.len() as u64);
    assert_eq!(after.mode(), before.mode());
    assert_eq!(after.mtime(), before.mtime());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    let link = fs::symlink_metadata(tree.inside("link")).unwrap();
    assert_eq!(link.mtime(), 2000);
    if chowned.is_ok() {
        assert_eq!(link.uid(), 4321);
    }
}

/// Hard links: a link made from a fid of an outward link is a link to the link, never to the
/// file outside; links can only be made into directories of the tree.
#[test]
fn hard_links_to_outside_files_cannot_be_made() {
    let tree = TempTree::new("hardlink");
    let secret = tree.outside.join("secret");
    symlink(&secret, tree.inside("abs")).unwrap();
    symlink(&tree.outside, tree.inside("outdir")).unwrap();
    fs::write(tree.inside("mine"), b"mine").unwrap();
    let export = tree.export(false);
    let root = root(&export);
    let abs = walk_path(&export, "abs").unwrap();
    export.link(&root, &abs, "hl").unwrap();
    let hl = walk_path(&export, "hl").unwrap();
    assert_eq!(export.qid(&hl).ty, qid_type::QTSYMLINK);
    assert_eq!(cat(&export, "hl").err(), Some(ELOOP));
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    // No link into a directory outside, nor under a name that climbs out.
    let mine = walk_path(&export, "mine").unwrap();
    let outdir = walk_path(&export, "outdir").unwrap();
    assert_eq!(export.link(&outdir, &mine, "stolen").err(), Some(ENOTDIR));
    assert_eq!(export.link(&root, &mine, "../outside/stolen").err(), Some(EINVAL));
    assert_eq!(export.link(&root, &mine, "..").err(), Some(EINVAL));
    // Directories cannot be linked at all.
    let sub = {
        export.mkdir(&root, "sub", 0o755, u32::MAX).unwrap();
        walk_path(&export, "sub").unwrap()
    };
    assert_eq!(export.link(&root, &sub, "sub2").err(), Some(EPERM));
    assert_eq!(fs::read_dir(&tree.outside).unwrap().count(), 1);
    assert_eq!(fs::read_dir(&tree.base).unwrap().count(), 3);
}

/// Renames cannot move a file out of the tree.
#[test]
fn renames_out_of_the_tree_are_refused() {
    let tree = TempTree::new("rename");
    symlink(&tree.outside, tree.inside("outdir")).unwrap();
    symlink("../outside", tree.inside("reloutdir")).unwrap();
    fs::write(tree.inside("f"), b"data").unwrap();
    let export = tree.export(false);
    let root = root(&export);
    let f = walk_path(&export, "f").unwrap();
    for link in ["outdir", "reloutdir"] {
        let out = walk_path(&export, link).unwrap();
        assert_eq!(export.rename(&f, Some(&out), "f").err(), Some(ENOTDIR));
        assert_eq!(export.renameat(&root, "f", &out, "f").err(), Some(ENOTDIR));
        assert_eq!(export.renameat(&out, "secret", &root, "got").err(), Some(ENOTDIR));
    }
    for name in ["../f", "../outside/f", "..", ".", ""] {
        assert!(export.rename(&f, None, name).is_err(), "{name:?}");
        assert!(export.renameat(&root, "f", &root, name).is_err(), "{name:?}");
        assert!(export.renameat(&root, name, &root, "g").is_err(), "{name:?}");
    }
    // The root itself cannot be renamed or removed.
    assert!(export.rename(&root, None, "x").is_err());
    assert!(export.remove(export.clone_fid(&root).unwrap()).is_err());
    // Renaming over an outward link replaces the link, inside the tree.
    export.renameat(&root, "f", &root, "outdir").unwrap();
    assert_eq!(fs::read(tree.inside("outdir")).unwrap(), b"data");
    assert_eq!(fs::read_dir(&tree.outside).unwrap().count(), 1);
    assert!(tree.dir.exists() && tree.base.join("secret").exists());
}

/// Removing or unlinking an outward link removes the link only.
#[test]
fn unlinking_outward_links_removes_only_the_link() {
    let tree = TempTree::new("unlink");
    symlink(&tree.outside, tree.inside("outdir")).unwrap();
    symlink(tree.outside.join("secret"), tree.inside("outfile")).unwrap();
    let export = tree.export(false);
    let root = root(&export);
    assert_eq!(export.unlinkat(&root, "outdir", 0x200).err(), Some(ENOTDIR));
    export.unlinkat(&root, "outdir", 0).unwrap();
    export.remove(walk_path(&export, "outfile").unwrap()).unwrap();
    assert_eq!(fs::read_dir(&tree.dir).unwrap().count(), 0);
    assert_eq!(fs::read(tree.outside.join("secret")).unwrap(), SECRET);
}

/// mknod of device nodes is refused: one inside the tree would reach a host device.
#[test]
fn device_nodes_cannot_be_made() {
    let tree = TempTree::new("mknod");
    let export = tree.export(false);
    let root = root(&export);
    // /dev/sda is 8:0, /dev/mem 1:1.
    assert_eq!(
        export.mknod(&root, "disk", libc::S_IFBLK | 0o666, 8, 0, u32::MAX).err(),
        Some(EPERM)
    );
    assert_eq!(
        export.mknod(&root, "mem", libc::S_IFCHR | 0o666, 1, 1, u32::MAX).err(),
        Some(EPERM)
    );
    assert_eq!(fs::read_dir(&tree.dir).unwrap().count(), 0);
}

/// A fid of a directory that a host process moved out of the tree cannot climb further out
/// with `..`.
#[test]
fn dotdot_from_a_directory_moved_out_is_refused() {
    let tree = TempTree::new("moved-out");
    fs::create_dir_all(tree.inside("a/b")).unwrap();
    let export = tree.export(false);
    let b = walk_path(&export, "a/b").unwrap();
    fs::rename(tree.inside("a/b"), tree.outside.join("b")).unwrap();
    assert_eq!(export.walk(&b, "..").err(), Some(EACCES));
}

/// Exchanges two names atomically (renameat2 `RENAME_EXCHANGE`).
fn exchange(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: both paths are NUL-terminated strings that live across the call.
    let ret = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    ret == 0
}

/// The TOCTOU race: a thread keeps exchanging a real directory and a symbolic link pointing
/// out under the same name while the export walks through that name, opens and reads. No read
/// may ever return the outside content. Bounded by iteration count and time.
#[test]
fn directory_swapped_for_symlink_during_walks_never_escapes() {
    let tree = TempTree::new("race");
    fs::create_dir(tree.inside("flip")).unwrap();
    fs::write(tree.inside("flip/secret"), b"inside").unwrap();
    fs::create_dir(tree.inside("flip/sub")).unwrap();
    fs::write(tree.inside("flip/sub/secret"), b"inside too").unwrap();
    fs::create_dir(tree.outside.join("sub")).unwrap();
    fs::write(tree.outside.join("sub/secret"), SECRET).unwrap();
    symlink("../outside", tree.inside("flop")).unwrap();
    let export = tree.export(false);
    let root = root(&export);

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        let (flip, flop) = (tree.inside("flip"), tree.inside("flop"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && swaps < 5_000_000 && Instant::now() < deadline {
                assert!(exchange(&flip, &flop));
                swaps += 1;
            }
            swaps
        })
    };

    let (mut inside_reads, mut refused) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(4);
    let paths: [&[&str]; 6] = [
        &["flip", "secret"],
        &["flop", "secret"],
        &["flip", "sub", "secret"],
        &["flop", "sub", "..", "secret"],
        &["flip", "sub", "..", "..", "flop", "secret"],
        &["flop", "..", "flip", "sub", "secret"],
    ];
    for i in 0..200_000usize {
        if Instant::now() > deadline {
            break;
        }
        let names = paths[i % paths.len()];
        let outcome = walk(&export, &root, names).and_then(|fid| {
            export.open(&fid, 0)?;
            read_all(&export, &fid)
        });
        match outcome {
            Ok(data) => {
                assert_ne!(data, SECRET, "escaped through {names:?}");
                assert!(data.starts_with(b"inside"), "{names:?}: {data:?}");
                inside_reads += 1;
            }
            Err(_) => refused += 1,
        }
        // Listing through the flipping name never shows the outside directory either.
        if i % 64 == 0 {
            if let Ok(dir) = walk(&export, &root, &["flip"]) {
                if export.open(&dir, 0).is_ok() {
                    let names: Vec<String> =
                        export.readdir(&dir, 0, 100).unwrap().into_iter().map(|e| e.name).collect();
                    assert!(names.contains(&"sub".to_string()) && names.contains(&"secret".into()));
                    assert_eq!(names.len(), 4, "{names:?}");
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = flipper.join().unwrap();
    eprintln!("race: {swaps} swaps, {inside_reads} inside reads, {refused} refused");
    assert!(swaps > 100, "the race did not run: {swaps} swaps");
    assert!(inside_reads > 0, "no walk ever succeeded ({refused} refused)");
    assert!(fs::read(tree.outside.join("secret")).unwrap() == SECRET);
}

/// A fid whose name a host process replaced with a link pointing out, between the walk and the
/// open, does not open the link's target: the export checks the inode it opened.
#[test]
fn file_replaced_between_walk_and_open_is_stale() {
    let tree = TempTree::new("stale");
    fs::write(tree.inside("f"), b"mine").unwrap();
    let export = tree.export(false);
    let fid = walk_path(&export, "f").unwrap();
    fs::remove_file(tree.inside("f")).unwrap();
    symlink(tree.outside.join("secret"), tree.inside("f")).unwrap();
    assert_eq!(export.open(&fid, 0).err(), Some(ELOOP));
    fs::remove_file(tree.inside("f")).unwrap();
    fs::write(tree.inside("f"), b"another file").unwrap();
    assert_eq!(export.open(&fid, 0).err(), Some(libc::ESTALE as u32));
    fs::remove_file(tree.inside("f")).unwrap();
    assert_eq!(export.open(&fid, 0).err(), Some(ENOENT));
}
