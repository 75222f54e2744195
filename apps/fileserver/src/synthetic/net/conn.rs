//! One conversation of `net/tcp` or `net/udp`: the directory `N` and what its files do.
//!
//! Plan 9's devip (ip(3)) keeps a conversation per directory; its `ctl` takes `connect`,
//! `announce` and `hangup`, its `data` carries the bytes, `listen` waits for calls on an
//! announced conversation, and `status`, `local` and `remote` describe it. Here a conversation
//! is a kernel socket of the serving host made through cairn-hosted (io_uring), one of:
//!
//! - a TCP stream (after `connect`, or a call taken through `listen`): `data` reads return the
//!   bytes received, at most `count` at a time (empty at end of stream); `data` writes send;
//! - a TCP listener (after `announce`): `listen` yields its calls;
//! - a UDP socket: after `connect`, writes send one datagram each to the remote and reads return
//!   one datagram each from it (truncated to `count`, as `recv` does); after `announce`, reads
//!   return datagrams from anyone and writes answer the sender of the last one read (Plan 9's
//!   "headers" mode, which prefixes addresses, is not offered).
//!
//! Flush-safety: receives and accepts run in [`Pump`]s and sends in a [`Writer`], so a request
//! dropped at any await point leaves the conversation whole (see [`crate::synthetic::wait`]).
//! A `connect` dropped while in progress puts the conversation back to `Closed`.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::{Rc, Weak};

use cairn_9p::errno::{Errno, EBUSY, ECONNRESET, EINVAL, ENOTCONN, EPIPE};
use cairn_hosted::net::{TcpListener, TcpStream, UdpSocket, MAX_DATAGRAM};
use cairn_rt::iobuf::IoBuf;

use super::addr;
use super::table::ConnTable;
use super::Proto;
use crate::synthetic::text::errno_of;
use crate::synthetic::wait::Pump;
use crate::synthetic::writer::{Sink, Writer};

/// A connected TCP stream.
struct StreamLink {
    stream: Rc<TcpStream>,
    receiver: Pump<io::Result<Option<IoBuf>>>,
    sender: Writer,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

impl StreamLink {
    fn new(stream: TcpStream) -> StreamLink {
        // Small writes are a client's messages: send them now rather than after Nagle's wait.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let remote = stream.peer_addr().ok();
        let stream = Rc::new(stream);
        StreamLink {
            receiver: Pump::new(),
            sender: Writer::new(Sink::Tcp(stream.clone())),
            stream,
            local,
            remote,
        }
    }
}

/// An announced TCP port.
struct ListenLink {
    listener: Rc<TcpListener>,
    calls: Pump<io::Result<TcpStream>>,
    local: Option<SocketAddr>,
}

/// A UDP socket, connected or announced.
struct DatagramLink {
    socket: Rc<UdpSocket>,
    receiver: Pump<io::Result<(IoBuf, SocketAddr)>>,
    local: Option<SocketAddr>,
    remote: Cell<Option<SocketAddr>>,
    announced: bool,
}

impl DatagramLink {
    fn new(socket: UdpSocket, remote: Option<SocketAddr>) -> DatagramLink {
        DatagramLink {
            local: socket.local_addr().ok(),
            socket: Rc::new(socket),
            receiver: Pump::new(),
            remote: Cell::new(remote),
            announced: remote.is_none(),
        }
    }
}

/// What a conversation is connected to.
enum Link {
    /// Fresh: nothing connected or announced yet.
    Idle,
    /// A `connect` is in progress.
    Connecting,
    Stream(StreamLink),
    Listen(ListenLink),
    Datagram(DatagramLink),
    /// Hung up: reads see end of file, writes fail.
    Hungup,
}

/// Bytes received and not yet read, and whether the stream has ended.
#[derive(Default)]
struct Received {
    pending: Option<IoBuf>,
    eof: bool,
}

/// One conversation: the directory `net/PROTO/N`.
pub(crate) struct Conn {
    proto: Proto,
    number: u32,
    link: RefCell<Link>,
    /// Bumped whenever `link` changes, so a request that waited across a change can tell.
    generation: Cell<u64>,
    received: RefCell<Received>,
    table: Weak<ConnTable>,
}

/// Puts a conversation back to `Idle` if the `connect` that set it `Connecting` is dropped.
struct ConnectGuard<'a> {
    conn: &'a Conn,
    generation: u64,
    armed: bool,
}

impl Drop for ConnectGuard<'_> {
    fn drop(&mut self) {
        if self.armed && self.conn.generation.get() == self.generation {
            self.conn.set_link(Link::Idle);
        }
    }
}

/// A command written to `ctl`.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Connect(SocketAddr),
    Announce(SocketAddr),
    Hangup,
}

impl Command {
    /// Parses one command line (surrounding white space, such as `echo`'s newline, ignored).
    fn parse(text: &str) -> Result<Command, Errno> {
        let mut words = text.split_whitespace();
        let verb = words.next().ok_or(EINVAL)?;
        let arg = words.next();
        if words.next().is_some() {
            return Err(EINVAL);
        }
        match (verb, arg) {
            ("connect", Some(a)) => Ok(Command::Connect(addr::parse(a, false)?)),
            ("announce", Some(a)) => Ok(Command::Announce(addr::parse(a, true)?)),
            ("hangup", None) => Ok(Command::Hangup),
            _ => Err(EINVAL),
        }
    }
}

/// The unspecified address of `addr`'s family, port 0: where a connected UDP socket binds.
fn any_of_family(addr: &SocketAddr) -> SocketAddr {
    let ip: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

impl Conn {
    /// A fresh conversation `number` of `table`.
    pub(crate) fn new(proto: Proto, number: u32, table: Weak<ConnTable>) -> Conn {
        Conn {
            proto,
            number,
            link: RefCell::new(Link::Idle),
            generation: Cell::new(0),
            received: RefCell::new(Received::default()),
            table,
        }
    }

    /// The protocol directory it lives in.
    pub(crate) fn proto(&self) -> Proto {
        self.proto
    }

    /// Its number `N`.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    fn set_link(&self, link: Link) {
        self.generation.set(self.generation.get() + 1);
        *self.received.borrow_mut() = Received::default();
        let old = self.link.replace(link);
        // Dropping the old link cancels its pumps and writer, which wakes their waiters.
        drop(old);
    }

    /// Makes this conversation the stream of a call accepted on another one's `listen`.
    pub(crate) fn take_call(&self, stream: TcpStream) {
        self.set_link(Link::Stream(StreamLink::new(stream)));
    }

    /// The text of `ctl` (and of `clone`, and of an answered `listen`): the number.
    pub(crate) fn ctl_text(&self) -> String {
        self.number.to_string()
    }

    /// The text of `status`: the state in a word (`Closed`, `Connecting`, `Established`,
    /// `Announced`, `Hungup`) and a newline, as Plan 9's status files start.
    pub(crate) fn status_text(&self) -> String {
        let word = match &*self.link.borrow() {
            Link::Idle => "Closed",
            Link::Connecting => "Connecting",
            Link::Stream(_) => "Established",
            Link::Listen(_) => "Announced",
            Link::Datagram(d) if d.announced => "Announced",
            Link::Datagram(_) => "Established",
            Link::Hungup => "Hungup",
        };
        format!("{word}\n")
    }

    /// The text of `local`: `HOST!PORT` and a newline (`::!0` when there is none).
    pub(crate) fn local_text(&self) -> String {
        addr::format(match &*self.link.borrow() {
            Link::Stream(s) => s.local,
            Link::Listen(l) => l.local,
            Link::Datagram(d) => d.local,
            _ => None,
        })
    }

    /// The text of `remote`, like [`local_text`](Self::local_text).
    pub(crate) fn remote_text(&self) -> String {
        addr::format(match &*self.link.borrow() {
            Link::Stream(s) => s.remote,
            Link::Datagram(d) => d.remote.get(),
            _ => None,
        })
    }

    /// Whether `listen` may be opened: the conversation is an announced TCP port.
    pub(crate) fn is_listening(&self) -> bool {
        matches!(&*self.link.borrow(), Link::Listen(_))
    }

    /// Carries out a command written to `ctl`.
    pub(crate) async fn ctl(&self, text: &str) -> Result<(), Errno> {
        let command = Command::parse(text)?;
        if command == Command::Hangup {
            self.set_link(Link::Hungup);
            return Ok(());
        }
        if !matches!(&*self.link.borrow(), Link::Idle | Link::Hungup) {
            return Err(EBUSY);
        }
        match (self.proto, command) {
            (Proto::Tcp, Command::Connect(a)) => self.connect_tcp(a).await,
            (Proto::Tcp, Command::Announce(a)) => {
                let listener = TcpListener::bind(a).map_err(|e| errno_of(&e))?;
                let local = listener.local_addr().ok();
                let listener = Rc::new(listener);
                self.set_link(Link::Listen(ListenLink { listener, calls: Pump::new(), local }));
                Ok(())
            }
            (Proto::Udp, Command::Connect(a)) => {
                let socket = UdpSocket::bind(any_of_family(&a)).map_err(|e| errno_of(&e))?;
                self.set_link(Link::Datagram(DatagramLink::new(socket, Some(a))));
                Ok(())
            }
            (Proto::Udp, Command::Announce(a)) => {
                let socket = UdpSocket::bind(a).map_err(|e| errno_of(&e))?;
                self.set_link(Link::Datagram(DatagramLink::new(socket, None)));
                Ok(())
            }
            (_, Command::Hangup) => unreachable!("handled above"),
        }
    }

    async fn connect_tcp(&self, to: SocketAddr) -> Result<(), Errno> {
        self.set_link(Link::Connecting);
        let mut guard = ConnectGuard { conn: self, generation: self.generation.get(), armed: true };
        let result = TcpStream::connect(to).await;
        guard.armed = false;
        if self.generation.get() != guard.generation {
            // Hung up while connecting: the new stream is dropped, unused.
            return Err(ECONNRESET);
        }
        match result {
            Ok(stream) => {
                self.set_link(Link::Stream(StreamLink::new(stream)));
                Ok(())
            }
            Err(e) => {
                self.set_link(Link::Idle);
                Err(errno_of(&e))
            }
        }
    }

    /// Reads `data`: at most `count` bytes of the stream, or one datagram.
    pub(crate) async fn read(&self, count: u32) -> Result<IoBuf, Errno> {
        if self.proto == Proto::Udp {
            return self.read_datagram(count).await;
        }
        // Each round either returns or consumes one completed receive.
        loop {
            {
                let mut received = self.received.borrow_mut();
                if let Some(buf) = received.pending.as_mut() {
                    let n = buf.len().min(count as usize);
                    let piece = buf.split_to(n);
                    if buf.is_empty() {
                        received.pending = None;
                    }
                    return Ok(piece);
                }
                if received.eof || count == 0 {
                    return Ok(IoBuf::new());
                }
            }
            let (pump, stream, generation) = match &*self.link.borrow() {
                Link::Stream(s) => (s.receiver.handle(), s.stream.clone(), self.generation.get()),
                Link::Hungup => return Ok(IoBuf::new()),
                _ => return Err(ENOTCONN),
            };
            let got = pump
                .next(move || {
                    let stream = stream.clone();
                    async move { stream.recv().await }
                })
                .await;
            if self.generation.get() != generation {
                // The link changed while waiting (hung up): look again.
                continue;
            }
            let mut received = self.received.borrow_mut();
            match got {
                None => received.eof = true,
                Some(Ok(Some(buf))) => received.pending = Some(buf),
                Some(Ok(None)) => received.eof = true,
                Some(Err(e)) => {
                    received.eof = true;
                    return Err(errno_of(&e));
                }
            }
        }
    }

    async fn read_datagram(&self, count: u32) -> Result<IoBuf, Errno> {
        // Each round either returns or consumes one received datagram (waiting in between).
        loop {
            let (pump, socket, generation) = match &*self.link.borrow() {
                Link::Datagram(d) => (d.receiver.handle(), d.socket.clone(), self.generation.get()),
                Link::Hungup => return Ok(IoBuf::new()),
                _ => return Err(ENOTCONN),
            };
            let got = pump
                .next(move || {
                    let socket = socket.clone();
                    async move { socket.recv_from(MAX_DATAGRAM).await }
                })
                .await;
            if self.generation.get() != generation {
                continue;
            }
            let (mut buf, from) = match got {
                None => return Ok(IoBuf::new()),
                Some(Ok(datagram)) => datagram,
                Some(Err(e)) => return Err(errno_of(&e)),
            };
            let link = self.link.borrow();
            let Link::Datagram(d) = &*link else { continue };
            if d.announced {
                d.remote.set(Some(from));
            } else if d.remote.get() != Some(from) {
                // Not from the connected peer: a connected socket would not have seen it.
                continue;
            }
            buf.truncate(count as usize);
            return Ok(buf);
        }
    }

    /// Writes `data`: sends the bytes (TCP) or one datagram (UDP).
    pub(crate) async fn write(&self, data: &[u8]) -> Result<u32, Errno> {
        enum Target {
            Stream(Rc<crate::synthetic::writer::WriterShared>),
            Datagram(Rc<UdpSocket>, SocketAddr),
        }
        let target = match &*self.link.borrow() {
            Link::Stream(s) => Target::Stream(s.sender.handle()),
            Link::Datagram(d) => match d.remote.get() {
                Some(to) => Target::Datagram(d.socket.clone(), to),
                None => return Err(ENOTCONN),
            },
            Link::Hungup => return Err(EPIPE),
            _ => return Err(ENOTCONN),
        };
        match target {
            Target::Stream(writer) => writer.write(IoBuf::copy_from_slice(data)).await?,
            // One send of a whole datagram: dropped before completion, it either went or not.
            Target::Datagram(socket, to) => {
                socket
                    .send_buf_to(IoBuf::copy_from_slice(data), to)
                    .await
                    .map_err(|e| errno_of(&e))?;
            }
        }
        Ok(data.len() as u32)
    }

    /// Waits for a call on this announced conversation (a read of `listen`).
    pub(crate) async fn accept(&self) -> Result<TcpStream, Errno> {
        // Each round either returns or waits for one accept to complete.
        loop {
            let (pump, listener, generation) = match &*self.link.borrow() {
                Link::Listen(l) => (l.calls.handle(), l.listener.clone(), self.generation.get()),
                _ => return Err(EINVAL),
            };
            let got = pump
                .next(move || {
                    let listener = listener.clone();
                    async move { listener.accept().await }
                })
                .await;
            if self.generation.get() != generation {
                continue;
            }
            match got {
                None => return Err(EINVAL),
                Some(Ok(stream)) => return Ok(stream),
                Some(Err(e)) => return Err(errno_of(&e)),
            }
        }
    }
}

impl Conn {
    /// Returns a call taken with [`accept`](Self::accept) but not answered, for the next
    /// `listen` read (if the conversation still listens; otherwise the call is dropped).
    pub(crate) fn put_back_call(&self, stream: TcpStream) {
        if let Link::Listen(l) = &*self.link.borrow() {
            l.calls.handle().put_back(Ok(stream));
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(table) = self.table.upgrade() {
            table.forget(self.number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_like_plan9_ctl_messages() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(Command::parse("connect 127.0.0.1!80\n"), Ok(Command::Connect(a)));
        assert_eq!(Command::parse("  connect 127.0.0.1:80 "), Ok(Command::Connect(a)));
        let any: SocketAddr = "0.0.0.0:564".parse().unwrap();
        assert_eq!(Command::parse("announce 564"), Ok(Command::Announce(any)));
        assert_eq!(Command::parse("announce *!564"), Ok(Command::Announce(any)));
        assert_eq!(Command::parse("hangup\n"), Ok(Command::Hangup));
        for bad in ["", "connect", "hangup now", "connect 1.2.3.4!80 5", "bind 80", "announce x"] {
            assert_eq!(Command::parse(bad), Err(EINVAL), "{bad:?}");
        }
    }
}
