//! `net/`: a gateway to the serving host's network, shaped like Plan 9's devip (ip(3)).
//!
//! ```text
//! net/tcp/clone          open: a new conversation N; the fid is now N/ctl; read: "N"
//! net/tcp/N/ctl          write "connect HOST!PORT", "announce PORT", "hangup"; read: "N"
//! net/tcp/N/data         read: bytes received (empty at end); write: bytes to send
//! net/tcp/N/listen       on an announced N: read waits for a call, answers "M" (see below)
//! net/tcp/N/local        "HOST!PORT\n" of this end
//! net/tcp/N/remote       "HOST!PORT\n" of the other end
//! net/tcp/N/status       "Closed", "Connecting", "Established", "Announced" or "Hungup", "\n"
//! net/udp/...            the same; data carries one datagram per read or write
//! ```
//!
//! Dialing, as in Plan 9: open `clone` read-write and keep it open (it is the new
//! conversation's `ctl`), read it for `N`, write `connect 10.0.0.1!80` to it, open `N/data`.
//! `connect` is answered once the connection is made (or refused).
//!
//! Listening differs from Plan 9 in one step. Plan 9's open of `listen` blocks until a call
//! arrives; a 9P open cannot wait here (`FileServer::open` is synchronous), so the open of
//! `listen` only checks that `N` is announced, and the *first read* of the open `listen` fid
//! waits for the call. When it comes, a conversation `M` is made for it, the fid becomes `M`'s
//! `ctl`, and the read returns `"M"` (a first write waits the same way and then acts on `M`'s
//! ctl). So: write `announce 7000` to `N/ctl`, open `N/listen`, read it (blocks) to get `M`,
//! open `M/data`. A flushed first read takes no call: the call waits for the next reader.
//!
//! Addresses are numeric (see [`addr`]). Listeners are kernel sockets with `SO_REUSEPORT`
//! (cairn-hosted's), so two announcements of one port share its calls instead of failing.
//! Each [`Synthetic`](super::Synthetic) has its own conversations: the tree is served per core,
//! and a conversation's sockets live on that core's io_uring.

mod addr;
mod conn;
mod table;

pub(crate) use conn::Conn;
pub(crate) use table::ConnTable;

/// The protocol directories of `net/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// `net/tcp`.
    Tcp,
    /// `net/udp`.
    Udp,
}

impl Proto {
    /// The directory's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}
