//! Helpers shared by the export tests: a temporary tree removed by a Drop guard, and short
//! ways to walk, open, read and write through the `FileServer` trait.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_9p::errno::Errno;
use cairn_9p::server::{Credentials, DirEntry, FileServer};
use cairn_fileserver::export::{Export, ExportFid, ExportOptions};
use cairn_rt::event::block_on_ready;

/// What `outside/secret` and `secret` (beside the export) hold: seeing it is an escape.
pub const SECRET: &[u8] = b"TOP SECRET: outside the export";

/// A temporary directory laid out as
///
/// ```text
/// base/
///   secret            (SECRET)
///   outside/secret    (SECRET)
///   dir/              (the exported directory)
/// ```
///
/// and removed, with everything in it, when dropped.
pub struct TempTree {
    pub base: PathBuf,
    pub dir: PathBuf,
    pub outside: PathBuf,
}

impl TempTree {
    pub fn new(tag: &str) -> TempTree {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let base = std::env::temp_dir().join(format!(
            "cairn-export-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dir = base.join("dir");
        let outside = base.join("outside");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(base.join("secret"), SECRET).unwrap();
        fs::write(outside.join("secret"), SECRET).unwrap();
        TempTree { base, dir, outside }
    }

    /// A path inside the exported directory.
    pub fn inside(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// An export of `dir`.
    pub fn export(&self, read_only: bool) -> Export {
        Export::new(&self.dir, ExportOptions { read_only }).unwrap()
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Credentials of a test client.
pub fn who() -> Credentials {
    Credentials { uname: "test".into(), n_uname: 0 }
}

/// The root fid of `export`.
pub fn root(export: &Export) -> ExportFid {
    export.attach("", &who()).unwrap()
}

/// Walks `names` from `from`, one step at a time, as the framework does for a Twalk.
pub fn walk(export: &Export, from: &ExportFid, names: &[&str]) -> Result<ExportFid, Errno> {
    let mut fid = export.clone_fid(from)?;
    for name in names {
        fid = export.walk(&fid, name)?;
    }
    Ok(fid)
}

/// Walks the `/`-separated `path` from the root.
pub fn walk_path(export: &Export, path: &str) -> Result<ExportFid, Errno> {
    let root = root(export);
    let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    walk(export, &root, &names)
}

/// Reads the whole open file `fid` from offset 0.
pub fn read_all(export: &Export, fid: &ExportFid) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let buf = block_on_ready(export.read(fid, out.len() as u64, 8192))?;
        if buf.is_empty() {
            return Ok(out);
        }
        out.extend_from_slice(buf.as_slice());
    }
    panic!("read_all: the file never ended");
}

/// Walks `path`, opens it read-only and reads it whole.
pub fn cat(export: &Export, path: &str) -> Result<Vec<u8>, Errno> {
    let fid = walk_path(export, path)?;
    export.open(&fid, 0)?;
    read_all(export, &fid)
}

/// Writes `data` at `offset` of the open `fid`.
pub fn write_at(export: &Export, fid: &ExportFid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
    block_on_ready(export.write(fid, offset, data))
}

/// Every entry of the directory `fid` (opened here), read `chunk` entries at a time.
pub fn list(export: &Export, dir: &ExportFid, chunk: usize) -> Vec<DirEntry> {
    let fid = export.clone_fid(dir).unwrap();
    export.open(&fid, 0).unwrap();
    let mut all: Vec<DirEntry> = Vec::new();
    let mut offset = 0;
    for _ in 0..1_000_000 {
        let batch = export.readdir(&fid, offset, chunk).unwrap();
        let Some(last) = batch.last() else { return all };
        assert!(batch.len() <= chunk);
        offset = last.offset;
        all.extend(batch);
    }
    panic!("list: the directory never ended");
}

/// Names of every entry of `dir` on the host, sorted (for "nothing changed" checks).
pub fn host_snapshot(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            use std::os::unix::fs::MetadataExt;
            out.push((entry.path(), meta.len() ^ u64::from(meta.mode()) << 40));
        }
    }
    out.sort();
    out
}
