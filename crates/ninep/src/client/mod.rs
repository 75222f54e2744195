//! An asynchronous 9P client on the cairn runtime, for 9P2000 and 9P2000.L, over any
//! [`Transport`].
//!
//! PROSE (papers/003) has a library-OS partition reach its controller's files, devices and
//! network through 9P; this is the side that asks. [`Client::connect`] negotiates the dialect
//! and `msize` (version(5)); [`Client::attach`] gives the root [`Fid`] of a tree (attach(5));
//! the other methods are the file operations, written once for both dialects where they have
//! the same meaning (`open` is `Topen` or `Tlopen`, a directory listing is a `Tread` of stat
//! structures or `Treaddir`, and so on).
//!
//! - Many requests may be in flight at once (intro(5)): each call takes a fresh tag, one
//!   receiver task hands replies to the waiting futures by tag ([`rpc`]). Large reads and writes
//!   are split by the fid's `iounit` (or `msize` less [`IOHDRSZ`](crate::codec::IOHDRSZ)) and
//!   pipelined, [`ClientConfig::window`] messages at a time.
//! - Walks of more than [`MAXWELEM`](crate::codec::MAXWELEM) names are split into several
//!   `Twalk`s (walk(5)).
//! - A request future dropped before its reply is flushed (flush(5)); [`Pending::flush`] does
//!   it explicitly and waits for the `Rflush`.
//! - Errors are Linux errnos: `Rlerror` carries one; a 9P2000 `Rerror` string is mapped with
//!   [`errno_from_string`](crate::errno::errno_from_string); a failed connection is
//!   `ECONNRESET` (or the transport's own errno).
//! - A [`Fid`] dropped without [`Client::clunk`] is clunked in the background.
//!
//! Payloads are not copied on the way in: [`Client::read`] returns a slice of the received
//! message. A written payload is copied once, into a buffer from the transport's
//! [`BufferSource`] when it has one (the shared-memory rings lend their shared region, so the
//! server then reads the bytes in place).

mod ops;
mod rpc;
mod tags;

#[cfg(test)]
mod tests;

use alloc::rc::{Rc, Weak};
use alloc::string::String;
use core::cell::Cell;

use crate::codec::{
    decode_rmessage, encode_tmessage, Dialect, Qid, Rmessage, Tmessage, MIN_MSIZE, NONUNAME, NOTAG,
};
use crate::errno::{Errno, EPROTO};
use crate::transport::Transport;

pub use ops::{DirEntry, FileInfo};
pub use rpc::{BufferSource, Pending, Reply, EMSGSIZE};

/// `EPROTONOSUPPORT`: the server speaks neither dialect offered.
pub const EPROTONOSUPPORT: Errno = 93;

/// What a client asks for when it connects and attaches.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The largest message to offer in `Tversion`; the server may lower it.
    pub msize: u32,
    /// The dialect to offer. A server that answers `9P2000` to a `9P2000.L` offer is spoken
    /// to in 9P2000.
    pub dialect: Dialect,
    /// `uname` of `Tattach`.
    pub uname: String,
    /// `n_uname` of a 9P2000.L `Tattach` ([`NONUNAME`] for none).
    pub n_uname: u32,
    /// Group of files and directories made with 9P2000.L `Tlcreate` and `Tmkdir`.
    pub gid: u32,
    /// Most read or write messages in flight for one large transfer.
    pub window: usize,
}

impl Default for ClientConfig {
    /// 1 MiB of payload per message, 9P2000.L, user `nobody`, eight messages in flight.
    fn default() -> Self {
        ClientConfig {
            msize: 1024 * 1024 + crate::codec::IOHDRSZ,
            dialect: Dialect::P2000L,
            uname: String::from("nobody"),
            n_uname: NONUNAME,
            gid: 0,
            window: 8,
        }
    }
}

/// Something that can forget a fid in the background (the connection that made it).
trait FidOwner {
    fn clunk_detached(&self, fid: u32);
}

impl<T: Transport> FidOwner for rpc::Inner<T> {
    fn clunk_detached(&self, fid: u32) {
        self.send_detached_clunk(fid);
    }
}

/// A fid of a connection: a file the server has agreed to name by this number.
///
/// Dropping it without [`Client::clunk`] or [`Client::remove`] sends a `Tclunk` in the
/// background.
pub struct Fid {
    id: u32,
    qid: Cell<Qid>,
    iounit: Cell<u32>,
    armed: Cell<bool>,
    owner: Weak<dyn FidOwner>,
}

impl Fid {
    /// The fid number on the wire.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The qid of the file it names (as of the walk, attach or create that made it).
    pub fn qid(&self) -> Qid {
        self.qid.get()
    }

    /// The `iounit` of the open that opened it; 0 when unopened or unknown.
    pub fn iounit(&self) -> u32 {
        self.iounit.get()
    }

    /// Stops the background clunk: the fid is gone on the server (clunked or removed).
    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl core::fmt::Debug for Fid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fid").field("id", &self.id).field("qid", &self.qid.get()).finish()
    }
}

impl Drop for Fid {
    fn drop(&mut self) {
        if self.armed.get() {
            if let Some(owner) = self.owner.upgrade() {
                owner.clunk_detached(self.id);
            }
        }
    }
}

/// A 9P client connection. Lives on the core that made it; dropping it closes the transport.
pub struct Client<T: Transport> {
    inner: Rc<rpc::Inner<T>>,
}

impl<T: Transport> Client<T> {
    /// Negotiates version and `msize` over a fresh `transport` (version(5)) and starts the
    /// receiver task on the calling core.
    ///
    /// Errors: `EPROTONOSUPPORT` if the server answers `unknown` or another dialect,
    /// `EPROTO` for a malformed answer or an `msize` below [`MIN_MSIZE`], or the transport's.
    pub async fn connect(transport: Rc<T>, config: ClientConfig) -> Result<Client<T>, Errno> {
        let offer =
            Tmessage::Version { msize: config.msize, version: config.dialect.version_str() };
        let mut wire = alloc::vec::Vec::new();
        encode_tmessage(NOTAG, &offer, config.dialect, config.msize, &mut wire)
            .map_err(|_| EPROTO)?;
        transport
            .send(cairn_rt::iobuf::IoBufChain::from(cairn_rt::iobuf::SharedIoBuf::from_vec(wire)))
            .map_err(rpc::transport_errno)?;
        let reply = match transport.recv().await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(crate::errno::ECONNRESET),
            Err(e) => return Err(rpc::transport_errno(e)),
        };
        let (tag, msg) =
            decode_rmessage(&reply, config.dialect, config.msize).map_err(|_| EPROTO)?;
        let (msize, version) = match msg {
            Rmessage::Version { msize, version } if tag == NOTAG => (msize, version),
            _ => return Err(EPROTO),
        };
        let dialect = match version {
            v if v == config.dialect.version_str() => config.dialect,
            crate::codec::VERSION_9P2000 => Dialect::P2000,
            _ => return Err(EPROTONOSUPPORT),
        };
        if msize < MIN_MSIZE || msize > config.msize {
            return Err(EPROTO);
        }
        transport.set_msize(msize);
        let inner = rpc::Inner::new(transport, dialect, msize, config);
        rpc::spawn_receiver(&inner);
        Ok(Client { inner })
    }

    /// The dialect the connection speaks.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The negotiated `msize`.
    pub fn msize(&self) -> u32 {
        self.inner.msize
    }

    /// The transport below.
    pub fn transport(&self) -> &Rc<T> {
        &self.inner.transport
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Requests in flight, flushed ones included until their `Rflush`.
    pub fn in_flight(&self) -> usize {
        self.inner.tags.borrow().in_flight()
    }

    /// Makes written payloads go into buffers from `source` (see [`BufferSource`]).
    pub fn set_buffer_source(&self, source: BufferSource) {
        *self.inner.buffers.borrow_mut() = Some(source);
    }

    /// Sends `msg` under a fresh tag and returns the future of its reply: the low-level call
    /// under every operation. Messages that make or drop fids are the caller's to account for.
    pub fn start(&self, msg: &Tmessage<'_>) -> Result<Pending<T>, Errno> {
        Pending::start(&self.inner, msg, None)
    }
}

impl<T: Transport> Drop for Client<T> {
    fn drop(&mut self) {
        self.inner.transport.close();
    }
}
