//! One server, several trees: the attach name picks which file server a session's fids
//! belong to.
//!
//! `cairn 9p serve` offers the synthetic tree at attach name `cairn` and, when `--export` is
//! given, the host directory at every other attach name the export accepts (empty, or the
//! exported path as diod's clients send it). Plan 9 does the same with one server per
//! attach name (`aname` in attach(5)); here it is a [`FileServer`] that holds two and tags each
//! fid with the tree it came from. Operations that join two fids (rename into, link) across
//! trees answer `EXDEV`, as Linux does across file systems. With no second tree, every attach
//! name goes to the first, which refuses the names it does not serve.

use cairn_9p::codec::{Attr, Flock, Qid, SetAttr, StatFs};
use cairn_9p::errno::{Errno, EXDEV};
use cairn_9p::server::{Credentials, DirEntry, FileServer, LockStatus};
use cairn_rt::iobuf::IoBuf;

/// A fid of a [`Router`]: which tree it belongs to, and that tree's state for it.
pub enum RoutedFid<A, B> {
    /// A fid of the tree served at the special attach name.
    Named(A),
    /// A fid of the tree served at every other attach name.
    Other(B),
}

/// Serves tree `named` at one attach name and tree `other` (if any) at all others.
pub struct Router<A, B> {
    aname: String,
    aliases: Vec<(String, Vec<String>)>,
    named: A,
    other: Option<B>,
}

impl<A: FileServer, B: FileServer> Router<A, B> {
    /// Serves `named` at attach name `aname` and `other` (when given) at every other one.
    pub fn new(aname: &str, named: A, other: Option<B>) -> Self {
        Router { aname: aname.into(), aliases: Vec::new(), named, other }
    }

    /// Also serves the directory `path` of the named tree at attach name `alias` (diod's tools
    /// attach to `ctl` and expect `null` and `zero` at its root, which is the named tree's
    /// `dev/`).
    pub fn with_alias(mut self, alias: &str, path: &[&str]) -> Self {
        self.aliases.push((alias.into(), path.iter().map(|s| s.to_string()).collect()));
        self
    }
}

/// Applies one expression to whichever tree's server and fid state a fid belongs to.
macro_rules! route {
    ($self:ident, $fid:expr, |$srv:ident, $f:ident| $body:expr) => {
        match $fid {
            RoutedFid::Named($f) => {
                let $srv = &$self.named;
                $body
            }
            RoutedFid::Other($f) => match &$self.other {
                Some($srv) => $body,
                None => unreachable!("an Other fid exists only when the tree does"),
            },
        }
    };
}

/// Like [`route!`] for operations that yield a new fid state, re-tagging it with its tree.
macro_rules! route_new {
    ($self:ident, $fid:expr, |$srv:ident, $f:ident| $body:expr, $wrap:expr) => {
        match $fid {
            RoutedFid::Named($f) => {
                let $srv = &$self.named;
                $wrap($body, RoutedFid::Named)
            }
            RoutedFid::Other($f) => match &$self.other {
                Some($srv) => $wrap($body, RoutedFid::Other),
                None => unreachable!("an Other fid exists only when the tree does"),
            },
        }
    };
}

fn tag<T, U>(result: Result<T, Errno>, tag: impl FnOnce(T) -> U) -> Result<U, Errno> {
    result.map(tag)
}

fn tag_first<T, X, U>(
    result: Result<(T, X), Errno>,
    tag: impl FnOnce(T) -> U,
) -> Result<(U, X), Errno> {
    result.map(|(fid, x)| (tag(fid), x))
}

impl<A: FileServer, B: FileServer> FileServer for Router<A, B> {
    type Fid = RoutedFid<A::Fid, B::Fid>;

    fn attach(&self, aname: &str, who: &Credentials) -> Result<Self::Fid, Errno> {
        if aname == self.aname {
            return self.named.attach(aname, who).map(RoutedFid::Named);
        }
        if let Some((_, path)) = self.aliases.iter().find(|(alias, _)| alias == aname) {
            let mut fid = self.named.attach(&self.aname, who)?;
            for name in path {
                let next = self.named.walk(&fid, name)?;
                self.named.clunk(std::mem::replace(&mut fid, next));
            }
            return Ok(RoutedFid::Named(fid));
        }
        match &self.other {
            Some(other) => other.attach(aname, who).map(RoutedFid::Other),
            // With one tree, it decides which names it answers to.
            None => self.named.attach(aname, who).map(RoutedFid::Named),
        }
    }

    fn qid(&self, fid: &Self::Fid) -> Qid {
        route!(self, fid, |s, f| s.qid(f))
    }

    fn walk(&self, dir: &Self::Fid, name: &str) -> Result<Self::Fid, Errno> {
        route_new!(self, dir, |s, f| s.walk(f, name), tag)
    }

    fn clone_fid(&self, fid: &Self::Fid) -> Result<Self::Fid, Errno> {
        route_new!(self, fid, |s, f| s.clone_fid(f), tag)
    }

    fn open(&self, fid: &Self::Fid, flags: u32) -> Result<(Qid, u32), Errno> {
        route!(self, fid, |s, f| s.open(f, flags))
    }

    fn create(
        &self,
        dir: &Self::Fid,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(Self::Fid, u32), Errno> {
        route_new!(self, dir, |s, f| s.create(f, name, flags, mode, gid), tag_first)
    }

    async fn read(&self, fid: &Self::Fid, offset: u64, count: u32) -> Result<IoBuf, Errno> {
        match fid {
            RoutedFid::Named(f) => self.named.read(f, offset, count).await,
            RoutedFid::Other(f) => self.other_ref().read(f, offset, count).await,
        }
    }

    async fn write(&self, fid: &Self::Fid, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        match fid {
            RoutedFid::Named(f) => self.named.write(f, offset, data).await,
            RoutedFid::Other(f) => self.other_ref().write(f, offset, data).await,
        }
    }

    fn readdir(&self, fid: &Self::Fid, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        route!(self, fid, |s, f| s.readdir(f, offset, max))
    }

    fn getattr(&self, fid: &Self::Fid) -> Result<Attr, Errno> {
        route!(self, fid, |s, f| s.getattr(f))
    }

    fn setattr(&self, fid: &Self::Fid, attr: &SetAttr) -> Result<(), Errno> {
        route!(self, fid, |s, f| s.setattr(f, attr))
    }

    fn clunk(&self, fid: Self::Fid) {
        route!(self, fid, |s, f| s.clunk(f))
    }

    fn remove(&self, fid: Self::Fid) -> Result<(), Errno> {
        route!(self, fid, |s, f| s.remove(f))
    }

    fn mkdir(&self, dir: &Self::Fid, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        route!(self, dir, |s, f| s.mkdir(f, name, mode, gid))
    }

    fn symlink(&self, dir: &Self::Fid, name: &str, target: &str, gid: u32) -> Result<Qid, Errno> {
        route!(self, dir, |s, f| s.symlink(f, name, target, gid))
    }

    fn mknod(
        &self,
        dir: &Self::Fid,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    ) -> Result<Qid, Errno> {
        route!(self, dir, |s, f| s.mknod(f, name, mode, major, minor, gid))
    }

    fn readlink(&self, fid: &Self::Fid) -> Result<String, Errno> {
        route!(self, fid, |s, f| s.readlink(f))
    }

    fn link(&self, dir: &Self::Fid, target: &Self::Fid, name: &str) -> Result<(), Errno> {
        match (dir, target) {
            (RoutedFid::Named(d), RoutedFid::Named(t)) => self.named.link(d, t, name),
            (RoutedFid::Other(d), RoutedFid::Other(t)) => self.other_ref().link(d, t, name),
            _ => Err(EXDEV),
        }
    }

    fn rename(
        &self,
        fid: &Self::Fid,
        new_dir: Option<&Self::Fid>,
        name: &str,
    ) -> Result<(), Errno> {
        match (fid, new_dir) {
            (RoutedFid::Named(f), None) => self.named.rename(f, None, name),
            (RoutedFid::Named(f), Some(RoutedFid::Named(d))) => self.named.rename(f, Some(d), name),
            (RoutedFid::Other(f), None) => self.other_ref().rename(f, None, name),
            (RoutedFid::Other(f), Some(RoutedFid::Other(d))) => {
                self.other_ref().rename(f, Some(d), name)
            }
            _ => Err(EXDEV),
        }
    }

    fn renameat(
        &self,
        old_dir: &Self::Fid,
        old_name: &str,
        new_dir: &Self::Fid,
        new_name: &str,
    ) -> Result<(), Errno> {
        match (old_dir, new_dir) {
            (RoutedFid::Named(o), RoutedFid::Named(n)) => {
                self.named.renameat(o, old_name, n, new_name)
            }
            (RoutedFid::Other(o), RoutedFid::Other(n)) => {
                self.other_ref().renameat(o, old_name, n, new_name)
            }
            _ => Err(EXDEV),
        }
    }

    fn unlinkat(&self, dir: &Self::Fid, name: &str, flags: u32) -> Result<(), Errno> {
        route!(self, dir, |s, f| s.unlinkat(f, name, flags))
    }

    fn statfs(&self, fid: &Self::Fid) -> Result<StatFs, Errno> {
        route!(self, fid, |s, f| s.statfs(f))
    }

    fn fsync(&self, fid: &Self::Fid, datasync: bool) -> Result<(), Errno> {
        route!(self, fid, |s, f| s.fsync(f, datasync))
    }

    fn lock(&self, fid: &Self::Fid, lock: &Flock<'_>, flags: u32) -> Result<LockStatus, Errno> {
        route!(self, fid, |s, f| s.lock(f, lock, flags))
    }

    fn getlock(&self, fid: &Self::Fid, lock: &Flock<'_>) -> Result<(u8, u64, u64, u32), Errno> {
        route!(self, fid, |s, f| s.getlock(f, lock))
    }

    fn xattrwalk(&self, fid: &Self::Fid, name: &str) -> Result<(Self::Fid, u64), Errno> {
        route_new!(self, fid, |s, f| s.xattrwalk(f, name), tag_first)
    }

    fn xattrcreate(&self, fid: &Self::Fid, name: &str, size: u64, flags: u32) -> Result<(), Errno> {
        route!(self, fid, |s, f| s.xattrcreate(f, name, size, flags))
    }
}

impl<A, B> Router<A, B> {
    fn other_ref(&self) -> &B {
        self.other.as_ref().expect("an Other fid exists only when the tree does")
    }
}
