//! The synthetic tree: a Plan 9 style file server of devices, runtime statistics and a
//! gateway to the host's network, served at attach name `cairn`.
//!
//! PROSE (papers/003) gives a library-OS partition its console, devices and network as 9P file
//! servers of its controller; this is that tree, modelled on Plan 9's cons(3) and ip(3):
//!
//! ```text
//! dev/null      reads: end of file; writes: taken whole and discarded (no copy, no allocation)
//! dev/zero      reads: `count` zero bytes
//! dev/random    reads: `count` bytes from getrandom(2)
//! dev/time      reads: "sec nsec ticks freq" as Plan 9 writes it (see `dev::time_text`)
//! dev/cons      reads: a line of the serving process's stdin; writes: to its stdout
//! stats/all     the runtime's event counters summed over cores: "cores N" then "name value"
//! stats/coreK   core K's counters, "name value" lines (EbbRT's per-core event manager)
//! net/tcp/...   TCP conversations in devip's clone/ctl/data/listen style (see `net`)
//! net/udp/...   UDP conversations, one datagram per read or write
//! ```
//!
//! Stats files are generated when opened: each open fid reads its own snapshot, so reads at
//! successive offsets agree with each other. Directory listings include `.` and `..`, with
//! cookies that stay valid while conversations come and go. Files are `0666` when writing does
//! something and `0444` otherwise, directories `0555`; every file is a regular file of size 0
//! (a client that saw a character device would open its own device instead), owned by the
//! serving process's user; access times are now and change times the server's start.
//!
//! Reads that wait (a conversation's `data` and `listen`, `dev/cons`) may be cancelled by
//! `Tflush` at any moment: the waiting is done by tasks of their own (module `wait`), so nothing is
//! lost or left half done.
//!
//! A `Synthetic` lives on one core (its sockets are on that core's io_uring): make one per core
//! that serves 9P, on that core.

mod cons;
mod dev;
mod fdio;
mod net;
mod stats;
mod text;
mod tree;
mod wait;
mod writer;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_9p::codec::{getattr, setattr, Attr, Qid, SetAttr, StatFs};
use cairn_9p::errno::{Errno, EACCES, EBADF, EINVAL, EISDIR, ENOENT, ENOTDIR, EPERM};
use cairn_9p::server::{Credentials, DirEntry, FileServer};
use cairn_rt::event::Runtime;
use cairn_rt::iobuf::IoBuf;

use cons::Console;
use net::{Conn, ConnTable, Proto};
use text::read_at;
use tree::{ConnFile, DevFile, Node, StatsFile, DEV_FILES, PROTOS};

/// The attach name the synthetic tree is served at (the empty name is taken too).
pub const ANAME: &str = "cairn";

/// Linux open flags the tree looks at.
const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_DIRECTORY: u32 = 0o200000;

/// The `f_type` Linux reports for v9fs mounts (`V9FS_MAGIC`).
const V9FS_MAGIC: u32 = 0x0102_1997;

/// Directory cookies: `.` and `..` take 1 and 2, fixed entries start at 3, and conversation `N`
/// of a protocol directory is `CONN_COOKIE + N`.
const FIRST_COOKIE: u64 = 3;
const CONN_COOKIE: u64 = 16;

/// How a fid was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Access {
    read: bool,
    write: bool,
}

/// The synthetic tree's state for one fid: the node it names and, once open, how.
///
/// Opening `net/*/clone` turns the fid into the new conversation's `ctl`, and answering a call
/// turns a `listen` fid into the new conversation's `ctl`, so the node can change.
pub struct SyntheticFid {
    node: RefCell<Node>,
    access: Cell<Option<Access>>,
    /// A stats file's text, taken when the fid was opened.
    snapshot: RefCell<Option<Rc<[u8]>>>,
}

impl SyntheticFid {
    fn new(node: Node) -> SyntheticFid {
        SyntheticFid {
            node: RefCell::new(node),
            access: Cell::new(None),
            snapshot: RefCell::new(None),
        }
    }

    fn node(&self) -> Node {
        self.node.borrow().clone()
    }
}

/// The synthetic file server (see the module documentation for the tree).
pub struct Synthetic {
    runtime: &'static Runtime,
    started: Duration,
    uid: u32,
    gid: u32,
    console: Console,
    tcp: Rc<ConnTable>,
    udp: Rc<ConnTable>,
}

impl Synthetic {
    /// The tree for the calling core, whose `stats/` shows `runtime`'s cores and whose
    /// `dev/cons` is this process's stdin and stdout (duplicated descriptors; if one cannot be
    /// duplicated, reads see end of file or writes fail with `EIO`).
    pub fn new(runtime: &'static Runtime) -> Synthetic {
        let input = std::io::stdin().as_fd().try_clone_to_owned().ok();
        let output = std::io::stdout().as_fd().try_clone_to_owned().ok();
        Synthetic::with_console(runtime, input, output)
    }

    /// Like [`new`](Self::new), with `dev/cons` reading `input` and writing `output` instead
    /// (a pipe in tests, a terminal elsewhere).
    pub fn with_console(
        runtime: &'static Runtime,
        input: Option<OwnedFd>,
        output: Option<OwnedFd>,
    ) -> Synthetic {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        // SAFETY: getuid and getgid take no arguments and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Synthetic {
            runtime,
            started,
            uid,
            gid,
            console: Console::new(input, output),
            tcp: ConnTable::new(Proto::Tcp),
            udp: ConnTable::new(Proto::Udp),
        }
    }

    fn table(&self, proto: Proto) -> &Rc<ConnTable> {
        match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
        }
    }

    /// The entry `name` of directory `dir`.
    fn lookup(&self, dir: &Node, name: &str) -> Option<Node> {
        match dir {
            Node::Root => match name {
                "dev" => Some(Node::DevDir),
                "stats" => Some(Node::StatsDir),
                "net" => Some(Node::NetDir),
                _ => None,
            },
            Node::DevDir => DEV_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| Node::Dev(*f)),
            Node::StatsDir => match name {
                "all" => Some(Node::Stats(StatsFile::All)),
                _ => {
                    let k: usize = name.strip_prefix("core")?.parse().ok()?;
                    let canonical = name == format!("core{k}");
                    (canonical && k < self.runtime.core_count())
                        .then_some(Node::Stats(StatsFile::Core(k)))
                }
            },
            Node::NetDir => PROTOS.iter().find(|p| p.name() == name).map(|p| Node::ProtoDir(*p)),
            Node::ProtoDir(p) => match name {
                "clone" => Some(Node::Clone(*p)),
                _ => {
                    let n: u32 = name.parse().ok()?;
                    if n.to_string() != name {
                        return None;
                    }
                    self.table(*p).get(n).map(Node::ConnDir)
                }
            },
            Node::ConnDir(c) => ConnFile::ALL
                .iter()
                .find(|f| f.name() == name)
                .map(|f| Node::ConnFile(c.clone(), *f)),
            _ => None,
        }
    }

    /// The entries of directory `dir` whose cookies come after `offset`, with their cookies
    /// (`.` and `..` not included).
    fn entries_after(&self, dir: &Node, offset: u64) -> Vec<(u64, String, Node)> {
        let fixed: Vec<(String, Node)> = match dir {
            Node::Root => vec![
                ("dev".into(), Node::DevDir),
                ("stats".into(), Node::StatsDir),
                ("net".into(), Node::NetDir),
            ],
            Node::DevDir => DEV_FILES.iter().map(|(n, f)| ((*n).into(), Node::Dev(*f))).collect(),
            Node::StatsDir => std::iter::once(("all".into(), Node::Stats(StatsFile::All)))
                .chain(
                    (0..self.runtime.core_count())
                        .map(|k| (format!("core{k}"), Node::Stats(StatsFile::Core(k)))),
                )
                .collect(),
            Node::NetDir => PROTOS.iter().map(|p| (p.name().into(), Node::ProtoDir(*p))).collect(),
            Node::ProtoDir(p) => vec![("clone".into(), Node::Clone(*p))],
            Node::ConnDir(c) => ConnFile::ALL
                .iter()
                .map(|f| (f.name().into(), Node::ConnFile(c.clone(), *f)))
                .collect(),
            _ => Vec::new(),
        };
        let mut entries: Vec<(u64, String, Node)> = fixed
            .into_iter()
            .enumerate()
            .map(|(i, (name, node))| (FIRST_COOKIE + i as u64, name, node))
            .filter(|(cookie, _, _)| *cookie > offset)
            .collect();
        if let Node::ProtoDir(p) = dir {
            let after =
                offset.checked_sub(CONN_COOKIE).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            for conn in self.table(*p).list_after(after) {
                let cookie = CONN_COOKIE + u64::from(conn.number());
                entries.push((cookie, conn.number().to_string(), Node::ConnDir(conn)));
            }
        }
        entries
    }

    fn attr_of(&self, node: &Node) -> Attr {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let (kind, nlink) = if node.is_dir() { (libc::S_IFDIR, 2) } else { (libc::S_IFREG, 1) };
        Attr {
            valid: getattr::BASIC,
            qid: node.qid(),
            mode: kind | node.permissions(),
            uid: self.uid,
            gid: self.gid,
            nlink,
            rdev: 0,
            size: 0,
            blksize: 8192,
            blocks: 0,
            atime_sec: now.as_secs(),
            atime_nsec: u64::from(now.subsec_nanos()),
            mtime_sec: self.started.as_secs(),
            mtime_nsec: u64::from(self.started.subsec_nanos()),
            ctime_sec: self.started.as_secs(),
            ctime_nsec: u64::from(self.started.subsec_nanos()),
            ..Attr::default()
        }
    }

    /// The text of a stats file now.
    fn stats_text(&self, file: StatsFile) -> String {
        match file {
            StatsFile::All => stats::all_text(self.runtime),
            StatsFile::Core(k) => stats::core_text(self.runtime, k),
        }
    }

    /// Answers the first read or write of an open `listen` fid of `conn`: waits for a call,
    /// makes a conversation of it and turns the fid into that conversation's `ctl`. Returns the
    /// new conversation (or, if another request answered the fid meanwhile, that one's).
    async fn answer_listen(&self, fid: &SyntheticFid, conn: &Conn) -> Result<Rc<Conn>, Errno> {
        let stream = conn.accept().await?;
        // From here to the end nothing waits, so a flush cannot split the answer.
        if let Node::ConnFile(answered, ConnFile::Ctl) = fid.node() {
            conn.put_back_call(stream);
            return Ok(answered);
        }
        let call = self.table(conn.proto()).create()?;
        call.take_call(stream);
        *fid.node.borrow_mut() = Node::ConnFile(call.clone(), ConnFile::Ctl);
        Ok(call)
    }

    fn check_open(fid: &SyntheticFid, write: bool) -> Result<(), Errno> {
        match fid.access.get() {
            Some(a) if (write && a.write) || (!write && a.read) => Ok(()),
            _ => Err(EBADF),
        }
    }
}

impl FileServer for Synthetic {
    type Fid = SyntheticFid;

    fn attach(&self, aname: &str, _who: &Credentials) -> Result<SyntheticFid, Errno> {
        match aname {
            ANAME | "" => Ok(SyntheticFid::new(Node::Root)),
            _ => Err(ENOENT),
        }
    }

    fn qid(&self, fid: &SyntheticFid) -> Qid {
        fid.node.borrow().qid()
    }

    fn walk(&self, dir: &SyntheticFid, name: &str) -> Result<SyntheticFid, Errno> {
        let node = dir.node.borrow();
        if !node.is_dir() {
            return Err(ENOTDIR);
        }
        let next = match name {
            ".." => node.parent(),
            "." => node.clone(),
            _ => self.lookup(&node, name).ok_or(ENOENT)?,
        };
        Ok(SyntheticFid::new(next))
    }

    fn clone_fid(&self, fid: &SyntheticFid) -> Result<SyntheticFid, Errno> {
        Ok(SyntheticFid::new(fid.node()))
    }

    fn open(&self, fid: &SyntheticFid, flags: u32) -> Result<(Qid, u32), Errno> {
        let access = match flags & O_ACCMODE {
            O_WRONLY => Access { read: false, write: true },
            O_RDWR => Access { read: true, write: true },
            _ => Access { read: true, write: false },
        };
        let node = fid.node();
        if node.is_dir() {
            if access.write {
                return Err(EISDIR);
            }
        } else if flags & O_DIRECTORY != 0 {
            return Err(ENOTDIR);
        }
        if access.write && !node.writable() {
            return Err(EACCES);
        }
        let node = match node {
            Node::Clone(p) => Node::ConnFile(self.table(p).create()?, ConnFile::Ctl),
            Node::ConnFile(c, ConnFile::Listen) if !c.is_listening() => return Err(EINVAL),
            Node::Stats(file) => {
                let text: Rc<[u8]> = self.stats_text(file).into_bytes().into();
                *fid.snapshot.borrow_mut() = Some(text);
                node
            }
            other => other,
        };
        let qid = node.qid();
        *fid.node.borrow_mut() = node;
        fid.access.set(Some(access));
        Ok((qid, 0))
    }

    async fn read(&self, fid: &SyntheticFid, offset: u64, count: u32) -> Result<IoBuf, Errno> {
        Self::check_open(fid, false)?;
        let node = fid.node();
        if node.is_dir() {
            return Err(EISDIR);
        }
        match node {
            Node::Dev(DevFile::Null) => Ok(IoBuf::new()),
            Node::Dev(DevFile::Zero) => Ok(dev::zeros(count)),
            Node::Dev(DevFile::Random) => dev::random(count),
            Node::Dev(DevFile::Time) => {
                let text = dev::time_text(self.runtime.platform().now_ns());
                Ok(read_at(text.as_bytes(), offset, count))
            }
            Node::Dev(DevFile::Cons) => self.console.read(count).await,
            Node::Stats(_) => {
                let snapshot = fid.snapshot.borrow();
                Ok(read_at(snapshot.as_deref().unwrap_or_default(), offset, count))
            }
            Node::ConnFile(c, ConnFile::Ctl) => Ok(read_at(c.ctl_text().as_bytes(), offset, count)),
            Node::ConnFile(c, ConnFile::Data) => c.read(count).await,
            Node::ConnFile(c, ConnFile::Listen) => {
                let call = self.answer_listen(fid, &c).await?;
                Ok(read_at(call.ctl_text().as_bytes(), offset, count))
            }
            Node::ConnFile(c, ConnFile::Local) => {
                Ok(read_at(c.local_text().as_bytes(), offset, count))
            }
            Node::ConnFile(c, ConnFile::Remote) => {
                Ok(read_at(c.remote_text().as_bytes(), offset, count))
            }
            Node::ConnFile(c, ConnFile::Status) => {
                Ok(read_at(c.status_text().as_bytes(), offset, count))
            }
            // An open clone fid is its conversation's ctl; directories were refused above.
            _ => Err(EBADF),
        }
    }

    async fn write(&self, fid: &SyntheticFid, _offset: u64, data: &[u8]) -> Result<u32, Errno> {
        // dev/null first, and with nothing but two cell reads: it is the benchmark's target.
        if let (Node::Dev(DevFile::Null), Some(Access { write: true, .. })) =
            (&*fid.node.borrow(), fid.access.get())
        {
            return Ok(data.len() as u32);
        }
        Self::check_open(fid, true)?;
        let ctl_write = |conn: Rc<Conn>| async move {
            let text = std::str::from_utf8(data).map_err(|_| EINVAL)?;
            conn.ctl(text).await?;
            Ok(data.len() as u32)
        };
        match fid.node() {
            Node::Dev(DevFile::Cons) => self.console.write(data).await,
            Node::ConnFile(c, ConnFile::Ctl) => ctl_write(c).await,
            Node::ConnFile(c, ConnFile::Data) => c.write(data).await,
            Node::ConnFile(c, ConnFile::Listen) => {
                let call = self.answer_listen(fid, &c).await?;
                ctl_write(call).await
            }
            _ => Err(EACCES),
        }
    }

    fn readdir(&self, fid: &SyntheticFid, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        let node = fid.node();
        if !node.is_dir() {
            return Err(ENOTDIR);
        }
        let mut out = Vec::new();
        let dots = [(1, ".", node.clone()), (2, "..", node.parent())];
        for (cookie, name, n) in dots {
            if cookie > offset {
                out.push(DirEntry {
                    qid: n.qid(),
                    offset: cookie,
                    kind: n.dtype(),
                    name: name.into(),
                });
            }
        }
        for (cookie, name, n) in self.entries_after(&node, offset) {
            if out.len() >= max {
                break;
            }
            out.push(DirEntry { qid: n.qid(), offset: cookie, kind: n.dtype(), name });
        }
        out.truncate(max);
        Ok(out)
    }

    fn getattr(&self, fid: &SyntheticFid) -> Result<Attr, Errno> {
        Ok(self.attr_of(&fid.node.borrow()))
    }

    /// Truncation (`O_TRUNC` or a size change, as shells send before writing `ctl`) and time
    /// changes are accepted and ignored, as a device does; ownership and modes cannot change.
    fn setattr(&self, _fid: &SyntheticFid, attr: &SetAttr) -> Result<(), Errno> {
        if attr.valid & (setattr::MODE | setattr::UID | setattr::GID) != 0 {
            return Err(EPERM);
        }
        Ok(())
    }

    fn remove(&self, fid: SyntheticFid) -> Result<(), Errno> {
        drop(fid);
        Err(EPERM)
    }

    fn statfs(&self, _fid: &SyntheticFid) -> Result<StatFs, Errno> {
        Ok(StatFs { ty: V9FS_MAGIC, bsize: 8192, namelen: 255, ..StatFs::default() })
    }
}
