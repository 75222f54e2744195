//! One 9P connection: the receive loop, version negotiation, flushes and replies.
//!
//! intro(5) and version(5): the first message of a connection is `Tversion`, which settles the
//! dialect and `msize`; a later `Tversion` starts the session over (every fid is clunked and
//! every outstanding request aborted, with no reply). After it, requests carry tags, many may
//! be outstanding at once, and replies may come in any order.
//!
//! The session reads one message at a time. A request that cannot wait (a walk, a stat, a
//! clunk) is answered before the next message is read; one that may wait (`Tread`, `Twrite`:
//! the file server's `async` calls) runs as its own task on the core ([`spawn_local`]) and is
//! recorded as in flight so that `Tflush` can cancel it ([`super::flush`]).
//!
//! Bad input never brings the session down: a message whose header is readable but whose body
//! does not decode is answered with an error under its tag; a message whose framing is broken
//! (a size field that disagrees with the bytes or exceeds `msize`) ends the connection, since
//! nothing after it can be trusted.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::task::{Context, Poll, Waker};

use alloc::boxed::Box;

use cairn_rt::event::{spawn_local, yield_now};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::fail::{fails, Fail};
use super::fids::{FidEntry, FidTable, MAX_FIDS};
use super::flush::{abortable, InFlight};
use super::stats::SessionStats;
use super::FileServer;
use crate::codec::{
    decode_tmessage, encode_rmessage, mtype, negotiate_version, peek_header, DecodeError, Dialect,
    Rmessage, Tmessage, IOHDRSZ, RREAD_HEADER_LEN,
};
use crate::transport::Transport;

/// Messages handled back to back before the receive loop lets other events run.
const YIELD_EVERY: u32 = 32;

/// How a connection is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The largest message the server accepts or sends; a client's `Tversion` may lower it
    /// (version(5)), never raise it.
    pub max_msize: u32,
}

impl Default for ServerConfig {
    /// 1 MiB of payload plus Plan 9's `IOHDRSZ` of header.
    fn default() -> Self {
        ServerConfig { max_msize: (1 << 20) + IOHDRSZ }
    }
}

/// Serves one connection: `server`'s tree over `transport`, on the calling core, until the
/// peer closes the connection, the transport fails, or the peer breaks the framing.
///
/// Must run on a started cairn core (it spawns the requests that may wait with
/// [`spawn_local`]). When it returns, every fid has been clunked, every outstanding request
/// dropped, and the transport closed.
pub async fn serve<S: FileServer, T: Transport>(
    server: Rc<S>,
    transport: Rc<T>,
    config: ServerConfig,
) {
    serve_with_stats(server, transport, config, Rc::new(SessionStats::new())).await
}

/// As [`serve`], counting what happens in `stats`, which the caller may read (on the same
/// core) while the connection runs and after it ends.
pub async fn serve_with_stats<S: FileServer, T: Transport>(
    server: Rc<S>,
    transport: Rc<T>,
    config: ServerConfig,
    stats: Rc<SessionStats>,
) {
    let session = Rc::new(Session::new(server, transport.clone(), config, stats));
    let mut handled = 0u32;
    loop {
        let message = match transport.recv().await {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => break,
        };
        if session.handle(message) == Flow::Close {
            break;
        }
        // A transport with a backlog is ready at every recv; let the requests this loop
        // started (and the rest of the core) run now and then (EbbRT's run-to-completion
        // events must stay short).
        handled = handled.wrapping_add(1);
        if handled % YIELD_EVERY == 0 {
            yield_now().await;
        }
    }
    session.reset();
    transport.close();
}

/// Whether the receive loop goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The state of one connection, shared by the receive loop and the request tasks.
pub(crate) struct Session<S: FileServer, T: Transport> {
    pub(crate) server: Rc<S>,
    transport: Rc<T>,
    max_msize: u32,
    pub(crate) stats: Rc<SessionStats>,
    dialect: Cell<Option<Dialect>>,
    msize: Cell<u32>,
    pub(crate) fids: RefCell<FidTable<FidEntry<S>>>,
    in_flight: RefCell<InFlight>,
}

impl<S: FileServer, T: Transport> Session<S, T> {
    fn new(server: Rc<S>, transport: Rc<T>, config: ServerConfig, stats: Rc<SessionStats>) -> Self {
        Session {
            server,
            transport,
            max_msize: config.max_msize,
            stats,
            dialect: Cell::new(None),
            msize: Cell::new(config.max_msize),
            fids: RefCell::new(FidTable::new(MAX_FIDS)),
            in_flight: RefCell::new(InFlight::default()),
        }
    }

    /// The dialect of the connection (9P2000 before one is settled, for error replies).
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect.get().unwrap_or(Dialect::P2000)
    }

    /// The negotiated `msize` (the configured maximum before `Tversion`).
    pub(crate) fn msize(&self) -> u32 {
        self.msize.get()
    }

    /// The most payload bytes one `Rread` or `Rreaddir` may carry.
    pub(crate) fn max_read(&self) -> u32 {
        self.msize().saturating_sub(RREAD_HEADER_LEN as u32)
    }

    /// The iounit to report for a file server's `iounit` (0: let the client use msize).
    pub(crate) fn iounit(&self, server_iounit: u32) -> u32 {
        if server_iounit == 0 {
            0
        } else {
            server_iounit.min(self.msize().saturating_sub(IOHDRSZ))
        }
    }

    /// Takes one whole message off the transport and answers or starts it.
    fn handle(self: &Rc<Self>, message: SharedIoBuf) -> Flow {
        let Some(header) = peek_header(&message) else { return Flow::Close };
        if usize::try_from(header.size).ok() != Some(message.len()) || header.size > self.msize() {
            return Flow::Close;
        }
        self.stats.request(header.ty);
        if header.ty == mtype::TVERSION {
            self.version(header.tag, &message);
            return Flow::Continue;
        }
        let Some(dialect) = self.dialect.get() else {
            self.send_error(header.tag, fails::NO_VERSION);
            return Flow::Continue;
        };
        if self.in_flight.borrow().contains(header.tag) {
            self.send_error(header.tag, fails::DUPLICATE_TAG);
            return Flow::Continue;
        }
        match decode_tmessage(&message, dialect, self.msize()) {
            Ok((tag, Tmessage::Flush { oldtag })) => self.flush(tag, oldtag),
            Ok((tag, request)) => {
                if let Err(fail) = self.dispatch(tag, request, &message) {
                    self.send_error(tag, fail);
                }
            }
            Err(error) => match decode_failure(error) {
                Some(fail) => self.send_error(header.tag, fail),
                None => return Flow::Close,
            },
        }
        Flow::Continue
    }

    /// `Tversion`: starts the session over and settles dialect and `msize` (version(5)).
    fn version(&self, tag: u16, message: &[u8]) {
        // Tversion decodes the same under either dialect.
        let (client_msize, version) = match decode_tmessage(message, Dialect::P2000L, u32::MAX) {
            Ok((_, Tmessage::Version { msize, version })) => (msize, version),
            _ => {
                self.send_error(tag, fails::BOTCH);
                return;
            }
        };
        self.reset();
        let negotiated = negotiate_version(client_msize, version, self.max_msize);
        self.dialect.set(negotiated.dialect);
        self.msize.set(if negotiated.dialect.is_some() {
            negotiated.msize
        } else {
            self.max_msize
        });
        let mut out = Vec::new();
        // An Rversion encodes under either dialect; it is small, so it always fits.
        if encode_rmessage(tag, &negotiated.reply(), Dialect::P2000, u32::MAX, &mut out).is_ok() {
            self.send_chain(chain_of(out));
        }
        if negotiated.dialect.is_some() {
            self.transport.set_msize(negotiated.msize);
        }
    }

    /// Aborts every outstanding request (no replies) and clunks every fid.
    fn reset(&self) {
        let aborts = self.in_flight.borrow_mut().take_all();
        self.stats.cancelled(aborts.len() as u64);
        for abort in aborts {
            abort.abort();
        }
        let fids = self.fids.borrow_mut().take_all();
        // Dropped outside the borrow: each last reference clunks its fid in the file server.
        drop(fids);
    }

    /// `Tflush` (flush(5)): cancels `oldtag` if it still waits, answering it with an
    /// "interrupted" error first, then answers the flush.
    fn flush(&self, tag: u16, oldtag: u16) {
        self.stats.flush();
        let pending = self.in_flight.borrow_mut().take(oldtag);
        if let Some(abort) = pending {
            abort.abort();
            self.stats.cancelled(1);
            self.send_error(oldtag, fails::INTERRUPTED);
        }
        self.send_reply(tag, &Rmessage::Flush);
    }

    /// Runs `work` as its own task, recorded in flight under `tag` until it replies: with the
    /// chain it returns, or the error.
    pub(crate) fn spawn_request(
        self: &Rc<Self>,
        tag: u16,
        work: impl Future<Output = Result<IoBufChain, Fail>> + 'static,
    ) {
        // Most requests are done at their first poll (a local file, dev/null): answer those at
        // once, without a task, an in-flight entry or another turn of the event loop. The
        // first poll uses a no-op waker; a request that is not done becomes a task, whose own
        // first poll looks again and registers the task's waker, so no wake-up is lost.
        let mut work = Box::pin(work);
        if let Poll::Ready(result) = work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            match result {
                Ok(chain) => self.send_chain(chain),
                Err(fail) => self.send_error(tag, fail),
            }
            return;
        }
        let session = self.clone();
        let id = self.in_flight.borrow_mut().next_id();
        let (task, abort) = abortable(async move {
            let result = work.await;
            // A cancelled request is no longer recorded and must not reply.
            if session.in_flight.borrow_mut().finish(tag, id) {
                match result {
                    Ok(chain) => session.send_chain(chain),
                    Err(fail) => session.send_error(tag, fail),
                }
            }
        });
        let in_flight = {
            let mut table = self.in_flight.borrow_mut();
            table.insert(tag, id, abort);
            table.len()
        };
        self.stats.in_flight(in_flight);
        // The task reports through the transport; its handle is not needed.
        drop(spawn_local(task));
    }

    /// Encodes and sends `reply` under `tag`; a reply too large for `msize` becomes an error.
    pub(crate) fn send_reply(&self, tag: u16, reply: &Rmessage<'_>) {
        let mut out = Vec::new();
        match encode_rmessage(tag, reply, self.dialect(), self.msize(), &mut out) {
            Ok(_) => self.send_chain(chain_of(out)),
            Err(_) => self.send_error(tag, fails::REPLY_TOO_LARGE),
        }
    }

    /// Sends the dialect's error reply for `fail` under `tag`.
    pub(crate) fn send_error(&self, tag: u16, fail: Fail) {
        self.stats.error();
        let mut out = Vec::new();
        // Every error text is short, and msize is at least MIN_MSIZE once negotiated; before
        // that the limit is the configured maximum.
        let limit = self.msize().max(crate::codec::MIN_MSIZE);
        if encode_rmessage(tag, &fail.reply(self.dialect()), self.dialect(), limit, &mut out)
            .is_ok()
        {
            self.send_chain(chain_of(out));
        }
    }

    /// Queues a whole encoded reply on the transport.
    pub(crate) fn send_chain(&self, chain: IoBufChain) {
        // A transport that fails to send has failed for receiving too; the loop ends there.
        let _ = self.transport.send(chain);
    }
}

/// A reply encoded in `out`, as a one-buffer chain (the vector is taken over, not copied).
pub(crate) fn chain_of(out: Vec<u8>) -> IoBufChain {
    IoBufChain::from(SharedIoBuf::from_vec(out))
}

/// What to answer a message whose body did not decode: an error under its tag, or `None`
/// when the framing itself is broken and the connection must end.
fn decode_failure(error: DecodeError) -> Option<Fail> {
    match error {
        DecodeError::Truncated { .. }
        | DecodeError::SizeTooSmall { .. }
        | DecodeError::TooLarge { .. }
        | DecodeError::TrailingBytes { .. } => None,
        DecodeError::UnknownType { .. } => Some(fails::BAD_TYPE),
        DecodeError::WrongDialect { .. } => Some(fails::WRONG_DIALECT),
        DecodeError::TooManyWalkElements { .. } => Some(fails::TOO_MANY_NAMES),
        DecodeError::FieldOverrun { .. }
        | DecodeError::ExtraBody { .. }
        | DecodeError::InvalidUtf8 { .. }
        | DecodeError::BadStatSize { .. } => Some(fails::BOTCH),
    }
}
