//! Unix-domain stream sockets on the core's io_uring, taking and giving IOBufs like
//! [`TcpStream`](super::TcpStream), plus descriptor passing (`SCM_RIGHTS`, unix(7)).
//!
//! A Unix socket is how two processes on one machine find each other: 9P is served over one
//! directly (`unix:PATH`), and the shared-memory transport of PROSE (papers/003, "shared memory
//! channels") uses one to hand over the memory file and the doorbells ([`UnixStream::send_fds`],
//! [`UnixStream::recv_fds`]) before the rings take over.
//!
//! The data path is the TCP stream's: one multishot receive into the core's provided-buffer
//! ring, a single-shot fallback into a fresh buffer when the ring is empty, and sends that
//! gather IOBuf chains in place with `sendmsg`. Unix sockets have no `SO_REUSEPORT` spreading,
//! so a [`UnixListener`] is one socket on one core.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::task::Poll;

use cairn_rt::iobuf::{IoBuf, IoBufChain, Segment};
use io_uring::{opcode, types};

use super::stream::StreamSocket;
use crate::reactor::{MultiOp, Op};

/// The listen backlog of [`UnixListener::bind`].
pub const UNIX_BACKLOG: i32 = 1024;

/// The most descriptors one [`UnixStream::send_fds`] or [`UnixStream::recv_fds`] carries.
pub const MAX_FDS: usize = 8;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A `sockaddr_un` for a filesystem path, boxed by its users so the kernel's pointer stays put.
struct UnixAddr {
    sun: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl UnixAddr {
    /// The address of `path`, which must fit `sun_path` with its terminating NUL (108 bytes).
    fn new(path: &Path) -> io::Result<UnixAddr> {
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: sockaddr_un is plain data for which all-zero bytes are valid.
        let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.is_empty() || bytes.len() >= sun.sun_path.len() || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unix socket path {path:?} is empty, too long or holds a NUL"),
            ));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in sun.sun_path.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        Ok(UnixAddr { sun, len })
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        &self.sun as *const libc::sockaddr_un as *const libc::sockaddr
    }
}

/// A new non-blocking, close-on-exec Unix stream socket.
fn new_unix_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory arguments.
    let fd = check(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listening Unix socket at a filesystem path, accepting on the core that uses it. One
/// multishot accept stays posted while it is used. Dropping it closes the socket and removes
/// the path it created.
pub struct UnixListener {
    // Declared before `fd` so the accept is cancelled before the socket closes.
    accepts: RefCell<Option<MultiOp<()>>>,
    fd: OwnedFd,
    path: PathBuf,
}

impl UnixListener {
    /// Binds and listens at `path`, which must not exist yet. Callable on any thread; the
    /// listener then belongs to the core that first accepts on it.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let addr = UnixAddr::new(path)?;
        let fd = new_unix_socket()?;
        // SAFETY: `addr` holds a valid sockaddr_un of length `addr.len`.
        check(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len) })?;
        // SAFETY: listen has no memory arguments.
        if let Err(e) = check(unsafe { libc::listen(fd.as_raw_fd(), UNIX_BACKLOG) }) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(UnixListener { accepts: RefCell::new(None), fd, path: path.to_path_buf() })
    }

    /// The path this listener accepts on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next connection. It stays on this core.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        poll_fn(|cx| loop {
            let mut accepts = self.accepts.borrow_mut();
            let op = match &mut *accepts {
                Some(op) if op.is_active() => op,
                _ => {
                    let entry = opcode::AcceptMulti::new(types::Fd(self.fd.as_raw_fd()))
                        .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                        .build();
                    // SAFETY: multishot accept points to no memory, and the op is dropped (and
                    // cancelled) before the listener's fd closes (field order).
                    accepts.insert(unsafe { MultiOp::start(entry, ()) })
                }
            };
            match op.poll_next(cx) {
                Poll::Ready(Some(c)) => {
                    return Poll::Ready(c.into_result().map(|fd| {
                        // SAFETY: a successful accept completion is a new descriptor we own.
                        UnixStream::from_owned_fd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
                    }));
                }
                // The multishot ended (e.g. after an error); post a new one.
                Poll::Ready(None) => continue,
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connected Unix stream socket of this core.
///
/// Receiving works as for [`TcpStream`](super::TcpStream): a multishot receive into the core's
/// provided-buffer ring, lent out as IOBufs without a copy. Descriptor passing
/// ([`send_fds`](Self::send_fds), [`recv_fds`](Self::recv_fds)) is for a handshake before the
/// byte stream is used: a plain receive would drop passed descriptors.
pub struct UnixStream {
    inner: StreamSocket,
}

impl UnixStream {
    /// Connects to the listener at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = Box::new(UnixAddr::new(path.as_ref())?);
        let fd = new_unix_socket()?;
        let entry =
            opcode::Connect::new(types::Fd(fd.as_raw_fd()), addr.as_ptr(), addr.len).build();
        // SAFETY: the address lives in the boxed `addr`, which the op keeps.
        let (c, _addr) = unsafe { Op::start(entry, addr) }.await;
        c.into_result()?;
        Ok(UnixStream::from_owned_fd(fd))
    }

    /// A connected pair of streams (`socketpair(2)`), for tests and for talking to a child.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into the array it is given.
        check(unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        })?;
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((UnixStream::from_owned_fd(a), UnixStream::from_owned_fd(b)))
    }

    /// Takes a connected Unix stream socket (made non-blocking here).
    pub fn from_owned_fd(fd: OwnedFd) -> UnixStream {
        // SAFETY: fcntl on a descriptor we own, with no memory arguments.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK == 0 {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        UnixStream { inner: StreamSocket::new(fd) }
    }

    /// The socket's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.inner.fd().as_fd()
    }

    /// Receives what has arrived: a buffer of the core's provided-buffer ring, or a fresh one
    /// when the ring has none. `None` once the peer has closed its side.
    pub async fn recv(&self) -> io::Result<Option<IoBuf>> {
        self.inner.recv().await
    }

    /// Receives into the tailroom of `buf`, which must have some, and returns it with the new
    /// bytes appended to its view. An unchanged length means the peer closed its side.
    pub async fn recv_into(&self, buf: IoBuf) -> io::Result<IoBuf> {
        self.inner.recv_into(buf).await
    }

    /// Sends every byte of `chain`, reading the buffers in place through a gather list.
    pub async fn send<B: Segment + 'static>(&self, chain: IoBufChain<B>) -> io::Result<()> {
        self.inner.send(chain).await
    }

    /// Sends one buffer with a plain `send`, reading it in place.
    pub async fn send_buf(&self, buf: IoBuf) -> io::Result<()> {
        self.inner.send_buf(buf).await
    }

    /// Sends `data` (at least one byte) with `fds` attached as one `SCM_RIGHTS` message
    /// (unix(7)). The receiver gets its own copies of the descriptors; ours stay open.
    pub async fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if data.is_empty() || fds.len() > MAX_FDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("send_fds needs 1.. bytes and at most {MAX_FDS} descriptors"),
            ));
        }
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let mut msg = Box::new(FdMessage::new(data.to_vec(), raw.len()));
        msg.set_fds(&raw);
        msg.fix_pointers();
        let entry = opcode::SendMsg::new(types::Fd(self.inner.fd().as_raw_fd()), &msg.header)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build();
        // SAFETY: the header, the data and the control buffer live in the boxed message, which
        // the op keeps until the kernel is done.
        let (c, msg) = unsafe { Op::start(entry, msg) }.await;
        let n = c.into_result()? as usize;
        // The descriptors went with the first byte; the rest (if a short send) goes plainly.
        if n < msg.data.len() {
            self.send_buf(IoBuf::copy_from_slice(&msg.data[n..])).await?;
        }
        Ok(())
    }

    /// Receives up to `max_len` bytes and the descriptors (at most [`MAX_FDS`]) that came with
    /// them, which are close-on-exec. An empty byte vector means the peer closed its side.
    /// Descriptors beyond the control buffer's room are an error (`MSG_CTRUNC`); the kernel has
    /// closed them.
    pub async fn recv_fds(&self, max_len: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        let mut msg = Box::new(FdMessage::new(vec![0; max_len.max(1)], MAX_FDS));
        msg.fix_pointers();
        let entry = opcode::RecvMsg::new(types::Fd(self.inner.fd().as_raw_fd()), &mut msg.header)
            .flags(libc::MSG_CMSG_CLOEXEC as u32)
            .build();
        // SAFETY: the header, the data buffer and the control buffer live in the boxed message,
        // which the op keeps until the kernel is done.
        let (c, msg) = unsafe { Op::start(entry, msg) }.await;
        let n = c.into_result()? as usize;
        let fds = msg.take_fds();
        if msg.header.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too many descriptors"));
        }
        let mut data = msg.data;
        data.truncate(n);
        Ok((data, fds))
    }

    /// Shuts down the sending side: the peer reads end-of-stream after the data sent so far.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.inner.shutdown_write()
    }
}

/// A `msghdr` with one data buffer and a control buffer for `SCM_RIGHTS`, boxed so the kernel's
/// pointers stay valid while it moves between futures.
struct FdMessage {
    header: libc::msghdr,
    iovec: libc::iovec,
    data: Vec<u8>,
    /// `u64`s keep the control buffer aligned for `cmsghdr`.
    control: Vec<u64>,
    control_len: usize,
}

impl FdMessage {
    /// Room for `data` and a control message of up to `fds` descriptors.
    fn new(data: Vec<u8>, fds: usize) -> FdMessage {
        // SAFETY: CMSG_SPACE is a pure computation.
        let control_len = unsafe { libc::CMSG_SPACE((fds * std::mem::size_of::<RawFd>()) as u32) };
        let control_len = control_len as usize;
        // SAFETY: msghdr and iovec are plain data for which all-zero bytes are valid.
        let (header, iovec) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        FdMessage { header, iovec, data, control: vec![0; control_len.div_ceil(8)], control_len }
    }

    /// Points the header at the data and the control buffer, where they now live.
    fn fix_pointers(&mut self) {
        self.iovec.iov_base = self.data.as_mut_ptr() as *mut libc::c_void;
        self.iovec.iov_len = self.data.len();
        self.header.msg_iov = &mut self.iovec;
        self.header.msg_iovlen = 1;
        self.header.msg_control = self.control.as_mut_ptr() as *mut libc::c_void;
        self.header.msg_controllen = self.control_len;
    }

    /// Writes one `SCM_RIGHTS` control message carrying `fds` (no more than `new` made room for).
    fn set_fds(&mut self, fds: &[RawFd]) {
        self.fix_pointers();
        let bytes = std::mem::size_of_val(fds);
        // SAFETY: the header points at a control buffer of `control_len` bytes, which
        // CMSG_SPACE sized for these descriptors, so the first cmsghdr and its data fit.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&self.header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(cmsg), bytes);
        }
    }

    /// The descriptors of every `SCM_RIGHTS` control message the kernel wrote, now owned.
    fn take_fds(&self) -> Vec<OwnedFd> {
        let mut fds = Vec::new();
        // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control messages into
        // the buffer the header points at; the CMSG_* macros walk them within that length.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&self.header);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg);
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(
                            data.add(i * std::mem::size_of::<RawFd>()) as *const RawFd,
                        );
                        // Each received descriptor is new in this process and ours to close.
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&self.header, cmsg);
            }
        }
        fds
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;
    use std::sync::mpsc;
    use std::time::Duration;

    use cairn_rt::event::{spawn_local, EventManager};

    use super::*;

    /// Runs `make()`'s future on a fresh one-core runtime and returns its output.
    fn on_core<F, Fut, T>(make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let make = std::sync::Mutex::new(Some(make));
        let rt = crate::start(1, move |_| {
            let make = make.lock().unwrap().take().unwrap();
            let tx = tx.clone();
            spawn_local(async move {
                let out = make().await;
                let _ = tx.send(out);
                EventManager::current().runtime().shutdown();
            });
        })
        .unwrap();
        let out = rx.recv_timeout(Duration::from_secs(30)).expect("the core's task finished");
        rt.join().unwrap();
        out
    }

    fn temp_socket_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("cairn-unix-{}-{name}", std::process::id()))
    }

    #[test]
    fn pair_carries_a_chain_both_ways() {
        let back = on_core(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let chain: IoBufChain = [&b"hello "[..], &b"unix"[..]]
                .iter()
                .map(|s| cairn_rt::iobuf::SharedIoBuf::copy_from_slice(s))
                .collect();
            a.send(chain).await.unwrap();
            a.shutdown_write().unwrap();
            let mut got = Vec::new();
            while let Some(buf) = b.recv().await.unwrap() {
                got.extend_from_slice(&buf);
            }
            got
        });
        assert_eq!(back, b"hello unix");
    }

    #[test]
    fn listener_accepts_and_removes_its_path_on_drop() {
        let path = temp_socket_path("accept");
        let _ = std::fs::remove_file(&path);
        let p = path.clone();
        let got = on_core(move || async move {
            let listener = UnixListener::bind(&p).unwrap();
            let client = UnixStream::connect(&p).await.unwrap();
            let server = listener.accept().await.unwrap();
            client.send_buf(IoBuf::copy_from_slice(b"ping")).await.unwrap();
            let buf = server.recv().await.unwrap().unwrap();
            buf.to_vec()
        });
        assert_eq!(got, b"ping");
        assert!(!path.exists(), "the listener removes its socket file");
        assert!(UnixListener::bind("").is_err());
    }

    #[test]
    fn a_descriptor_passes_with_its_message() {
        let (data, contents) = on_core(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut file = std::fs::File::from(memfd("cairn-unix-test").expect("memfd"));
            file.write_all(b"shared bytes").unwrap();
            a.send_fds(b"take this", &[file.as_fd()]).await.unwrap();
            let (data, mut fds) = b.recv_fds(64).await.unwrap();
            assert_eq!(fds.len(), 1);
            let mut received = std::fs::File::from(fds.pop().unwrap());
            received.rewind().unwrap();
            let mut contents = String::new();
            received.read_to_string(&mut contents).unwrap();
            (data, contents)
        });
        assert_eq!(data, b"take this");
        assert_eq!(contents, "shared bytes");
    }

    #[test]
    fn send_fds_refuses_an_empty_message() {
        let refused = on_core(|| async {
            let (a, _b) = UnixStream::pair().unwrap();
            a.send_fds(b"", &[a.as_fd()]).await.is_err()
        });
        assert!(refused);
    }

    /// A memfd for the tests.
    fn memfd(name: &str) -> io::Result<OwnedFd> {
        let name = std::ffi::CString::new(name).unwrap();
        // SAFETY: memfd_create reads the NUL-terminated name and returns a new descriptor.
        let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
        // SAFETY: the descriptor is new and ours.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
