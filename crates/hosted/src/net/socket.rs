//! Creating sockets and setting their options with plain system calls (setup, not the data path).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::addr::RawAddr;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new non-blocking, close-on-exec socket of `addr`'s family.
pub(crate) fn new_socket(addr: &SocketAddr, ty: libc::c_int) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket has no memory arguments.
    let fd =
        check(unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live c_int and its size is given.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as _,
        )
    })?;
    Ok(())
}

pub(crate) fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::from_socket_addr(addr);
    // SAFETY: `raw` holds a valid address of length `raw.len`.
    check(unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len) })?;
    Ok(())
}

pub(crate) fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: the kernel writes at most `raw.len` bytes into the storage and updates the length.
    check(unsafe { libc::getsockname(fd.as_raw_fd(), raw.as_mut_ptr(), &mut raw.len) })?;
    raw.to_socket_addr()
}

pub(crate) fn peer_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: as for getsockname.
    check(unsafe { libc::getpeername(fd.as_raw_fd(), raw.as_mut_ptr(), &mut raw.len) })?;
    raw.to_socket_addr()
}

pub(crate) fn shutdown(fd: &OwnedFd, how: libc::c_int) -> io::Result<()> {
    // SAFETY: shutdown has no memory arguments.
    check(unsafe { libc::shutdown(fd.as_raw_fd(), how) })?;
    Ok(())
}

/// A bound, listening TCP socket not yet tied to a core: it can be made on any thread and moved
/// to the core that will accept on it ([`TcpListener::from_socket`](super::TcpListener::from_socket)).
#[derive(Debug)]
pub struct ListenSocket {
    pub(crate) fd: OwnedFd,
}

impl ListenSocket {
    /// Binds and listens on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, so several sockets
    /// (one per core) can share the address.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<ListenSocket> {
        let fd = new_socket(&addr, libc::SOCK_STREAM)?;
        set_int_option(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int_option(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        bind(&fd, &addr)?;
        // SAFETY: listen has no memory arguments.
        check(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
        Ok(ListenSocket { fd })
    }

    /// The address it listens on (with the port the kernel chose, if 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.fd)
    }
}
