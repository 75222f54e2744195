//! Attaching, detaching and finding an interface's XDP program over rtnetlink (rtnetlink(7)):
//! `RTM_SETLINK` with a nested `IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS }`, and `RTM_GETLINK`
//! to read `IFLA_XDP_PROG_ID` back.
//!
//! A program attached this way stays attached after its process dies, so a device detaches
//! whatever a crashed run left (fd -1) before it attaches its own, and attaches with a BPF link
//! where the kernel has them ([`super::bpf`]), which dies with the process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_ROUTE: i32 = 0;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
/// Header sizes: `struct nlmsghdr`, `struct ifinfomsg`, `struct nlattr`.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const NLA_HDR: usize = 4;
/// Replies read before giving up on the one asked for.
const MAX_REPLIES: usize = 64;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A request under construction: header, `ifinfomsg`, attributes.
struct Request {
    bytes: Vec<u8>,
    nests: Vec<usize>,
}

impl Request {
    fn new(kind: u16, flags: u16, seq: u32, ifindex: u32) -> Request {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `finish`
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
                                                      // ifinfomsg: family AF_UNSPEC, pad, type, index, flags, change
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        Request { bytes, nests: Vec::new() }
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = NLA_HDR + payload.len();
        self.bytes.extend_from_slice(&(len as u16).to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(payload);
        self.bytes.resize(align4(self.bytes.len()), 0);
    }

    fn begin_nest(&mut self, kind: u16) {
        self.nests.push(self.bytes.len());
        self.attr(kind | NLA_F_NESTED, &[]);
    }

    fn end_nest(&mut self) {
        let start = self.nests.pop().expect("open nest");
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

/// Iterates the attributes in `bytes`: (type without flag bits, payload).
fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < NLA_HDR {
            return None;
        }
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDR || len > bytes.len() {
            return None;
        }
        let payload = &bytes[NLA_HDR..len];
        bytes = &bytes[align4(len).min(bytes.len())..];
        Some((kind, payload))
    })
}

/// An rtnetlink socket in the namespace of the thread that opened it.
pub(crate) struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

impl RouteSocket {
    /// Opens a route socket whose replies time out after two seconds.
    pub(crate) fn open() -> io::Result<RouteSocket> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_ROUTE)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval { tv_sec: 2, tv_usec: 0 };
        // SAFETY: SO_RCVTIMEO reads one `timeval` from the given pointer.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RouteSocket { fd, seq: 1 })
    }

    /// Sends `request` and hands each reply message with its sequence number (type, payload
    /// after the header) to `on_reply` until it returns `Some`.
    fn exchange<R>(
        &mut self,
        request: Vec<u8>,
        seq: u32,
        mut on_reply: impl FnMut(u16, &[u8]) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        // SAFETY: `request` is a readable buffer of its length; the kernel only reads it.
        let n =
            unsafe { libc::send(self.fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..MAX_REPLIES {
            // SAFETY: `buf` is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let reply_seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDR || len > rest.len() {
                    break;
                }
                if reply_seq == seq {
                    if let Some(result) = on_reply(kind, &rest[NLMSG_HDR..len]) {
                        return result;
                    }
                }
                rest = &rest[align4(len).min(rest.len())..];
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "no rtnetlink answer"))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Attaches program `prog_fd` to interface `ifindex` in mode `flags` (`XDP_FLAGS_*`), or
    /// detaches that mode's program when `prog_fd` is -1.
    pub(crate) fn set_xdp(&mut self, ifindex: u32, prog_fd: i32, flags: u32) -> io::Result<()> {
        let seq = self.next_seq();
        let mut request = Request::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifindex);
        request.begin_nest(IFLA_XDP);
        request.attr(IFLA_XDP_FD, &prog_fd.to_ne_bytes());
        request.attr(IFLA_XDP_FLAGS, &flags.to_ne_bytes());
        request.end_nest();
        self.exchange(request.finish(), seq, |kind, payload| {
            (kind == NLMSG_ERROR && payload.len() >= 4).then(|| {
                match i32::from_ne_bytes(payload[..4].try_into().expect("4 bytes")) {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(-e)),
                }
            })
        })
    }

    /// The id of the XDP program attached to interface `ifindex`, if any.
    pub(crate) fn xdp_program_id(&mut self, ifindex: u32) -> io::Result<Option<u32>> {
        let seq = self.next_seq();
        let request = Request::new(RTM_GETLINK, NLM_F_REQUEST, seq, ifindex);
        self.exchange(request.finish(), seq, |kind, payload| match kind {
            NLMSG_ERROR if payload.len() >= 4 => {
                let e = i32::from_ne_bytes(payload[..4].try_into().expect("4 bytes"));
                Some(Err(io::Error::from_raw_os_error(-e)))
            }
            NLMSG_DONE => Some(Ok(None)),
            _ if payload.len() >= IFINFO => {
                let xdp = attributes(&payload[IFINFO..]).find(|&(k, _)| k == IFLA_XDP);
                let id = xdp.and_then(|(_, nested)| {
                    attributes(nested)
                        .find(|&(k, p)| k == IFLA_XDP_PROG_ID && p.len() >= 4)
                        .map(|(_, p)| u32::from_ne_bytes(p[..4].try_into().expect("4 bytes")))
                });
                Some(Ok(id.filter(|&id| id != 0)))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setlink_request_nests_fd_and_flags() {
        let mut request = Request::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 9, 3);
        request.begin_nest(IFLA_XDP);
        request.attr(IFLA_XDP_FD, &(-1i32).to_ne_bytes());
        request.attr(IFLA_XDP_FLAGS, &2u32.to_ne_bytes());
        request.end_nest();
        let bytes = request.finish();
        assert_eq!(bytes.len(), NLMSG_HDR + IFINFO + 4 + 8 + 8);
        assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len());
        let attrs: Vec<_> = attributes(&bytes[NLMSG_HDR + IFINFO..]).collect();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].0, IFLA_XDP);
        let inner: Vec<_> = attributes(attrs[0].1).collect();
        assert_eq!(
            inner,
            [(IFLA_XDP_FD, &(-1i32).to_ne_bytes()[..]), (IFLA_XDP_FLAGS, &2u32.to_ne_bytes()[..])]
        );
    }

    #[test]
    fn loopback_has_no_xdp_program() {
        let mut socket = RouteSocket::open().unwrap();
        let lo = crate::netdev::iface::index("lo").unwrap();
        assert_eq!(socket.xdp_program_id(lo).unwrap(), None);
    }
}
