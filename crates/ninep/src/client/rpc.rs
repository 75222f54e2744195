//! Requests in flight: sending a T-message under a fresh tag, the receiver task that hands each
//! reply to the future waiting on its tag, and flushing (flush(5)).
//!
//! Many requests may be outstanding on one connection (intro(5)); replies come back in any
//! order and are matched by tag. One receiver task per connection reads the transport and
//! stores each reply in its tag's slot, waking the [`Pending`] future that waits there.
//!
//! On a transport that can be polled for a message ([`Transport::poll_recv`]: the shared-memory
//! rings in polling mode), a request future waiting for its reply receives for the connection
//! itself, so the reply reaches it without a hop through the receiver task: the request polled
//! last is the *driver*, the receiver task stands aside while there is one, and it takes over
//! again when the driver finishes.
//!
//! A [`Pending`] request that is dropped before its reply is *flushed*: the client sends
//! `Tflush(oldtag)` and keeps the old tag reserved until the `Rflush` arrives, discarding the
//! original reply if it comes first (flush(5)). If that late reply made a fid (a walk), the fid
//! is clunked in the background so the server does not keep it.

use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

use super::tags::{FidPool, Slot, SlotState, TagTable};
use super::ClientConfig;
use crate::codec::{
    decode_rmessage, encode_tmessage, mtype, peek_header, Dialect, EncodeError, Rmessage, Tmessage,
};
use crate::errno::{errno_from_string, Errno, EAGAIN, ECONNRESET, EINVAL, EIO, EMFILE, EPROTO};
use crate::transport::{Transport, TransportError};

/// `EMSGSIZE`: a message would exceed the negotiated `msize`.
pub const EMSGSIZE: Errno = 90;

/// The errno a transport failure becomes for the caller.
pub(crate) fn transport_errno(e: TransportError) -> Errno {
    match e {
        TransportError::Truncated | TransportError::Closed => ECONNRESET,
        TransportError::BadSize(_) => EPROTO,
        TransportError::Io(errno) => u32::try_from(errno).unwrap_or(EIO),
    }
}

fn encode_errno(e: EncodeError) -> Errno {
    match e {
        EncodeError::TooLarge { .. } => EMSGSIZE,
        EncodeError::StringTooLong { .. } => crate::errno::ENAMETOOLONG,
        EncodeError::WrongDialect { .. } | EncodeError::NumericUser { .. } => EINVAL,
    }
}

/// Supplies buffers for outgoing payloads: `(headroom, len)` to an empty buffer with at least
/// `headroom` bytes of headroom and `len` bytes of tailroom. A transport with a shared region
/// (the shared-memory rings) lends its own memory, so a written payload is copied once, into
/// memory the server reads in place.
pub type BufferSource = Box<dyn Fn(usize, usize) -> Option<IoBuf>>;

/// What a connection's requests share: the transport, the negotiated terms, the tag and fid
/// tables.
pub(crate) struct Inner<T: Transport> {
    pub(crate) transport: Rc<T>,
    pub(crate) dialect: Dialect,
    pub(crate) msize: u32,
    pub(crate) config: ClientConfig,
    pub(crate) tags: RefCell<TagTable>,
    pub(crate) fids: RefCell<FidPool>,
    /// Set when the connection has failed or closed: every later request fails with it.
    pub(crate) dead: Cell<Option<Errno>>,
    pub(crate) buffers: RefCell<Option<BufferSource>>,
    /// Whether the transport can be polled for a message ([`Transport::poll_recv`]); cleared
    /// the first time it says it cannot.
    can_drive: Cell<bool>,
    /// The tag of the request future that receives for the connection now, if any.
    driver: Cell<Option<u16>>,
    /// The receiver task's waker, for handing receiving back to it.
    receiver: RefCell<Option<Waker>>,
}

impl<T: Transport> Inner<T> {
    pub(crate) fn new(
        transport: Rc<T>,
        dialect: Dialect,
        msize: u32,
        config: ClientConfig,
    ) -> Rc<Inner<T>> {
        Rc::new(Inner {
            transport,
            dialect,
            msize,
            config,
            tags: RefCell::new(TagTable::default()),
            fids: RefCell::new(FidPool::default()),
            dead: Cell::new(None),
            buffers: RefCell::new(None),
            can_drive: Cell::new(true),
            driver: Cell::new(None),
            receiver: RefCell::new(None),
        })
    }

    /// A fid number for a request that makes a fid.
    pub(crate) fn alloc_fid(&self) -> Result<u32, Errno> {
        self.fids.borrow_mut().alloc().ok_or(EMFILE)
    }

    pub(crate) fn release_fid(&self, fid: u32) {
        self.fids.borrow_mut().release(fid);
    }

    /// Encodes `msg` into one buffer.
    pub(crate) fn encode(&self, tag: u16, msg: &Tmessage<'_>) -> Result<IoBufChain, Errno> {
        let mut wire = Vec::new();
        encode_tmessage(tag, msg, self.dialect, self.msize, &mut wire).map_err(encode_errno)?;
        Ok(IoBufChain::from(SharedIoBuf::from_vec(wire)))
    }

    /// Reserves a tag for a request described by `slot`.
    fn reserve(&self, slot: Slot) -> Result<u16, Errno> {
        if let Some(errno) = self.dead.get() {
            return Err(errno);
        }
        self.tags.borrow_mut().insert(slot).ok_or(EAGAIN)
    }

    /// Sends a message built for `tag`; on failure the tag is freed.
    fn send_tagged(&self, tag: u16, message: IoBufChain) -> Result<(), Errno> {
        if let Err(e) = self.transport.send(message) {
            self.tags.borrow_mut().remove(tag);
            return Err(transport_errno(e));
        }
        Ok(())
    }

    /// Sends a request whose reply nobody waits for: a background `Tclunk` of `release` (the
    /// fid number is freed at the reply), or a `Tflush` (`flush_of`).
    fn send_detached(&self, msg: &Tmessage<'_>, release: Option<u32>, flush_of: Option<u16>) {
        let mut slot = Slot::new();
        slot.state = SlotState::Abandoned;
        slot.release_on_reply = release;
        slot.flush_of = flush_of;
        let Ok(tag) = self.reserve(slot) else { return };
        let sent = self.encode(tag, msg).and_then(|m| self.send_tagged(tag, m));
        if sent.is_err() {
            // Nothing went out: the fid and the flushed tag are free now.
            if let Some(fid) = release {
                self.release_fid(fid);
            }
            if let Some(old) = flush_of {
                self.finish_abandoned(old);
            }
        }
    }

    /// Clunks `fid` in the background; its number is free again at the `Rclunk`.
    pub(crate) fn send_detached_clunk(&self, fid: u32) {
        self.send_detached(&Tmessage::Clunk { fid }, Some(fid), None);
    }

    /// Frees an abandoned request's tag once nothing more can arrive for it, releasing the fid
    /// it would have made.
    fn finish_abandoned(&self, tag: u16) {
        let slot = self.tags.borrow_mut().remove(tag);
        if let Some(fid) = slot.and_then(|s| s.newfid) {
            self.release_fid(fid);
        }
    }

    /// The receiver task's work for one reply.
    fn dispatch(&self, reply: SharedIoBuf) {
        let Some(header) = peek_header(&reply) else { return };
        let mut tags = self.tags.borrow_mut();
        let Some(slot) = tags.get_mut(header.tag) else {
            // A reply to no request: ignore it (a confused server cannot hurt other requests).
            return;
        };
        let flush_of = slot.flush_of.take();
        match core::mem::replace(&mut slot.state, SlotState::Abandoned) {
            SlotState::Waiting => {
                slot.state = SlotState::Done(Ok(reply.clone()));
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
            SlotState::Abandoned => {
                let release = slot.release_on_reply.take();
                let is_flush = header.ty == mtype::RFLUSH;
                let late_fid = match header.ty {
                    mtype::RWALK | mtype::RATTACH => slot.newfid.take(),
                    _ => None,
                };
                let done = release.is_some() || is_flush || flush_of.is_some();
                if done {
                    tags.remove(header.tag);
                }
                drop(tags);
                if let Some(fid) = release {
                    self.release_fid(fid);
                }
                if let Some(fid) = late_fid {
                    // The flushed request made its fid after all: clunk it.
                    self.send_detached(&Tmessage::Clunk { fid }, Some(fid), None);
                }
                if let Some(old) = flush_of {
                    self.finish_abandoned(old);
                }
                return;
            }
            done @ SlotState::Done(_) => slot.state = done,
        }
        drop(tags);
        if let Some(old) = flush_of {
            self.finish_abandoned(old);
        }
    }

    /// Receives with `cx`'s waker through [`Transport::poll_recv`], dispatching every reply
    /// already here, until nothing more is (`Some(Poll::Pending)`: `cx` is woken at the next),
    /// the connection ends (`Some(Poll::Ready(()))`, every request failed), or `stop` says the
    /// caller has what it waited for (`Some(Poll::Ready(()))` too). `None`: the transport
    /// cannot be polled.
    fn pump(&self, cx: &mut Context<'_>, stop: impl Fn() -> bool) -> Option<Poll<()>> {
        loop {
            let Some(received) = self.transport.poll_recv(cx) else {
                self.can_drive.set(false);
                return None;
            };
            match received {
                Poll::Pending => return Some(Poll::Pending),
                Poll::Ready(Ok(Some(reply))) => {
                    self.dispatch(reply);
                    if stop() {
                        return Some(Poll::Ready(()));
                    }
                }
                Poll::Ready(Ok(None)) => {
                    self.fail(ECONNRESET);
                    return Some(Poll::Ready(()));
                }
                Poll::Ready(Err(e)) => {
                    self.fail(transport_errno(e));
                    return Some(Poll::Ready(()));
                }
            }
        }
    }

    /// The request under `tag`, whose reply has not come, receives for the connection (it
    /// becomes the driver, in place of any other). Returns whether its slot may have changed
    /// (something was dispatched, or the connection ended), so the caller looks again.
    fn drive(&self, tag: u16, cx: &mut Context<'_>) -> bool {
        if !self.can_drive.get() {
            return false;
        }
        self.driver.set(Some(tag));
        let done = || {
            self.tags
                .borrow_mut()
                .get_mut(tag)
                .is_none_or(|slot| !matches!(slot.state, SlotState::Waiting))
        };
        match self.pump(cx, done) {
            Some(Poll::Ready(())) => true,
            Some(Poll::Pending) => false,
            None => {
                self.driver.set(None);
                self.hand_back();
                false
            }
        }
    }

    /// The request under `tag` is finished or gone: if it was the driver, the receiver task
    /// receives again.
    fn stop_driving(&self, tag: u16) {
        if self.driver.get() == Some(tag) {
            self.driver.set(None);
            self.hand_back();
        }
    }

    /// Hands receiving back to the receiver task: registers its waker with the transport,
    /// dispatching what has come meanwhile, or wakes it if the connection is over (so it ends).
    fn hand_back(&self) {
        let Some(waker) = self.receiver.borrow().clone() else {
            // The receiver task has not run yet; it registers itself when it does.
            return;
        };
        if self.dead.get().is_some() || !self.can_drive.get() {
            waker.wake();
            return;
        }
        let mut cx = Context::from_waker(&waker);
        if self.pump(&mut cx, || false) != Some(Poll::Pending) {
            waker.wake();
        }
    }

    /// Ends every request: the connection is gone.
    fn fail(&self, errno: Errno) {
        self.dead.set(Some(errno));
        let wakers = self.tags.borrow_mut().fail_all(errno);
        for w in wakers {
            w.wake();
        }
    }

    /// Flushes `tag` (whose future is gone) without waiting: sends `Tflush`, or frees the tag
    /// at once if the reply is already here.
    fn abandon(&self, tag: u16) {
        let reply = {
            let mut tags = self.tags.borrow_mut();
            let Some(slot) = tags.get_mut(tag) else { return };
            slot.waker = None;
            match core::mem::replace(&mut slot.state, SlotState::Abandoned) {
                SlotState::Waiting if slot.flush_of.is_some() => {
                    // An abandoned flush needs no flush of its own; its Rflush frees both.
                    return;
                }
                SlotState::Waiting => None,
                SlotState::Done(r) => Some(r),
                SlotState::Abandoned => return,
            }
        };
        match reply {
            None => self.send_detached(&Tmessage::Flush { oldtag: tag }, None, Some(tag)),
            Some(reply) => {
                let slot = self.tags.borrow_mut().remove(tag);
                let Some(fid) = slot.and_then(|s| s.newfid) else { return };
                let made_fid = reply
                    .as_ref()
                    .ok()
                    .and_then(|r| peek_header(r))
                    .is_some_and(|h| h.ty != mtype::RLERROR && h.ty != mtype::RERROR);
                if made_fid {
                    self.send_detached(&Tmessage::Clunk { fid }, Some(fid), None);
                } else {
                    self.release_fid(fid);
                }
            }
        }
    }
}

/// The receiver task: reads replies until the transport ends, then fails what is left. On a
/// transport that can be polled, it receives only while no request future does (see the module
/// docs).
pub(crate) async fn receive<T: Transport>(transport: Rc<T>, inner: Weak<Inner<T>>) {
    let ended = poll_fn(|cx| {
        let Some(inner) = inner.upgrade() else { return Poll::Ready(true) };
        {
            let mut mine = inner.receiver.borrow_mut();
            match &*mine {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *mine = Some(cx.waker().clone()),
            }
        }
        if inner.driver.get().is_some() {
            // A request future receives; it hands back when it finishes.
            return Poll::Pending;
        }
        match inner.pump(cx, || false) {
            Some(Poll::Ready(())) => Poll::Ready(true),
            Some(Poll::Pending) => Poll::Pending,
            None => Poll::Ready(false),
        }
    })
    .await;
    if ended {
        return;
    }
    loop {
        let received = transport.recv().await;
        let Some(inner) = inner.upgrade() else { return };
        match received {
            Ok(Some(reply)) => inner.dispatch(reply),
            Ok(None) => return inner.fail(ECONNRESET),
            Err(e) => return inner.fail(transport_errno(e)),
        }
    }
}

/// Starts the receiver task of `inner` on the calling core.
pub(crate) fn spawn_receiver<T: Transport>(inner: &Rc<Inner<T>>) {
    spawn_local(receive(inner.transport.clone(), Rc::downgrade(inner)));
}

/// A reply: the whole message as received, decoded on demand (the decode borrows from it, so
/// an `Rread` payload is a slice of the receive buffer).
#[derive(Clone, Debug)]
pub struct Reply {
    buf: SharedIoBuf,
    dialect: Dialect,
    msize: u32,
}

impl Reply {
    /// The reply decoded; `EPROTO` if it does not decode.
    pub fn message(&self) -> Result<Rmessage<'_>, Errno> {
        decode_rmessage(&self.buf, self.dialect, self.msize).map(|(_, m)| m).map_err(|_| EPROTO)
    }

    /// The raw message, size field included.
    pub fn buf(&self) -> &SharedIoBuf {
        &self.buf
    }

    /// The payload of an `Rread` or `Rreaddir` as a slice of the received buffer (no copy).
    pub fn payload(&self) -> Result<SharedIoBuf, Errno> {
        let data = match self.message()? {
            Rmessage::Read { data } | Rmessage::Readdir { data } => data,
            _ => return Err(EPROTO),
        };
        let start = data.as_ptr() as usize - self.buf.as_ptr() as usize;
        let mut payload = self.buf.clone();
        payload.advance(start);
        payload.truncate(data.len());
        Ok(payload)
    }
}

/// The errno an error reply carries, if `buf` is one (`Rlerror`, or `Rerror` mapped with
/// [`errno_from_string`]).
fn error_of(buf: &SharedIoBuf, dialect: Dialect, msize: u32) -> Option<Errno> {
    let header = peek_header(buf)?;
    if header.ty != mtype::RLERROR && header.ty != mtype::RERROR {
        return None;
    }
    Some(match decode_rmessage(buf, dialect, msize) {
        Ok((_, Rmessage::Lerror { ecode })) => ecode,
        Ok((_, Rmessage::Error { ename })) => errno_from_string(ename),
        _ => EPROTO,
    })
}

/// A request in flight: resolves to its [`Reply`], or to the errno of an error reply or of a
/// failed connection. Dropping it before then flushes the request (flush(5)).
pub struct Pending<T: Transport> {
    inner: Rc<Inner<T>>,
    tag: Option<u16>,
}

impl<T: Transport> Pending<T> {
    /// Sends `msg` under a fresh tag. `newfid` is a fid the request makes: it is released if
    /// the request is abandoned (the caller releases it if the reply is an error).
    pub(crate) fn start(
        inner: &Rc<Inner<T>>,
        msg: &Tmessage<'_>,
        newfid: Option<u32>,
    ) -> Result<Pending<T>, Errno> {
        let mut slot = Slot::new();
        slot.newfid = newfid;
        let tag = inner.reserve(slot)?;
        let message = match inner.encode(tag, msg) {
            Ok(m) => m,
            Err(e) => {
                inner.tags.borrow_mut().remove(tag);
                return Err(e);
            }
        };
        inner.send_tagged(tag, message)?;
        Ok(Pending { inner: inner.clone(), tag: Some(tag) })
    }

    /// Sends a message the caller built with `build(tag)` (a `Twrite` header chained to its
    /// payload).
    pub(crate) fn start_built(
        inner: &Rc<Inner<T>>,
        build: impl FnOnce(u16) -> Result<IoBufChain, Errno>,
    ) -> Result<Pending<T>, Errno> {
        let tag = inner.reserve(Slot::new())?;
        let message = match build(tag) {
            Ok(m) => m,
            Err(e) => {
                inner.tags.borrow_mut().remove(tag);
                return Err(e);
            }
        };
        inner.send_tagged(tag, message)?;
        Ok(Pending { inner: inner.clone(), tag: Some(tag) })
    }

    /// The request's tag.
    pub fn tag(&self) -> Option<u16> {
        self.tag
    }

    /// Cancels the request: sends `Tflush` and waits for `Rflush` (flush(5)). A reply that
    /// arrives first is discarded. Returns once the tag is free again.
    pub async fn flush(mut self) -> Result<(), Errno> {
        let Some(tag) = self.tag.take() else { return Ok(()) };
        let inner = self.inner.clone();
        inner.stop_driving(tag);
        {
            let mut tags = inner.tags.borrow_mut();
            let Some(slot) = tags.get_mut(tag) else { return Ok(()) };
            if !matches!(slot.state, SlotState::Done(_)) {
                slot.waker = None;
                slot.state = SlotState::Abandoned;
            } else {
                // The reply is already here: nothing to flush, only to discard.
                drop(tags);
                inner.abandon(tag);
                return Ok(());
            }
        }
        let mut slot = Slot::new();
        slot.flush_of = Some(tag);
        let flush_tag = match inner.reserve(slot) {
            Ok(t) => t,
            Err(e) => {
                inner.finish_abandoned(tag);
                return Err(e);
            }
        };
        let sent = inner
            .encode(flush_tag, &Tmessage::Flush { oldtag: tag })
            .and_then(|m| inner.send_tagged(flush_tag, m));
        if let Err(e) = sent {
            inner.finish_abandoned(tag);
            return Err(e);
        }
        let flush = Pending { inner: inner.clone(), tag: Some(flush_tag) };
        flush.await.map(drop)
    }
}

impl<T: Transport> Future for Pending<T> {
    type Output = Result<Reply, Errno>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(tag) = self.tag else { return Poll::Ready(Err(EINVAL)) };
        let inner = self.inner.clone();
        let result = loop {
            // The waker is left out of the slot while this future receives itself: a reply it
            // dispatches to itself then wakes nobody (waking its own task would poll it again
            // for nothing).
            let waker = {
                let mut tags = inner.tags.borrow_mut();
                let Some(slot) = tags.get_mut(tag) else {
                    drop(tags);
                    self.tag = None;
                    inner.stop_driving(tag);
                    return Poll::Ready(Err(EIO));
                };
                match core::mem::replace(&mut slot.state, SlotState::Waiting) {
                    SlotState::Done(result) => {
                        tags.remove(tag);
                        break result;
                    }
                    other => {
                        slot.state = other;
                        slot.waker.take()
                    }
                }
            };
            // Receive for the connection rather than wait for the receiver task to.
            if !inner.drive(tag, cx) {
                if let Some(slot) = inner.tags.borrow_mut().get_mut(tag) {
                    slot.waker = match waker {
                        Some(w) if w.will_wake(cx.waker()) => Some(w),
                        _ => Some(cx.waker().clone()),
                    };
                }
                return Poll::Pending;
            }
        };
        self.tag = None;
        inner.stop_driving(tag);
        let buf = result?;
        if let Some(errno) = error_of(&buf, inner.dialect, inner.msize) {
            return Poll::Ready(Err(errno));
        }
        Poll::Ready(Ok(Reply { buf, dialect: inner.dialect, msize: inner.msize }))
    }
}

impl<T: Transport> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Some(tag) = self.tag.take() {
            self.inner.abandon(tag);
            self.inner.stop_driving(tag);
        }
    }
}
