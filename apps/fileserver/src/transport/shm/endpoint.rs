//! One end of a shared-memory channel as a 9P [`Transport`]: sending into the tx ring,
//! receiving from the rx ring, and the two ways to wait that PROSE asks for.
//!
//! - [`ShmMode::Polling`], for a dedicated core: a waiting receiver (or a sender facing a full
//!   ring) is served by an idle handler of the core's event loop (EbbRT's polling device), which
//!   looks at the ring's indexes every turn; the core never blocks, and a message is seen
//!   within one turn.
//! - [`ShmMode::Blocking`], for a shared core: the same idle handler spins for [`SPIN_NS`],
//!   then the waiter sets its side's "sleeping" flag, looks once more, and sleeps on its eventfd
//!   doorbell, read through io_uring; with no waiter left the idle handler goes, so the core can
//!   block. The peer rings the doorbell only when it sees that flag set after publishing (a
//!   Dekker handshake with SeqCst fences on both sides), so a busy channel makes no system
//!   calls at all.
//!
//! Waiting goes through the idle handler rather than a task that yields in a loop: a task that
//! keeps re-queueing itself keeps the ready queue from draining, and the event loop hands its
//! queued io_uring submissions to the kernel only when it drains.
//!
//! The Unix socket the channel was set up over stays open beside it: its end-of-stream tells
//! each side that the other has gone, even if the other died without setting its closed flag.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use cairn_9p::codec::{frame_len, HEADER_LEN};
use cairn_9p::transport::{Transport, TransportError};
use cairn_hosted::net::unix::UnixStream;
use cairn_hosted::reactor::Op;
use cairn_rt::event::{
    add_idle_handler, remove_idle_handler, spawn_local, EventManager, IdleHandlerId,
};
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};
use io_uring::{opcode, types};

use super::region::{ring, Region, Side, SlotView};

/// How long a [`ShmMode::Blocking`] waiter spins before it sleeps on its doorbell.
pub const SPIN_NS: u64 = 50_000;

/// How a side waits for the other, chosen by the client at connect time and recorded in the
/// channel's header (PROSE, papers/003: polling for a dedicated core, a doorbell for a shared
/// one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmMode {
    /// Spin on the ring's indexes; never block.
    Polling,
    /// Spin briefly, then sleep on an eventfd doorbell.
    Blocking,
}

impl ShmMode {
    /// The word the header records.
    pub fn to_word(self) -> u32 {
        match self {
            ShmMode::Polling => 0,
            ShmMode::Blocking => 1,
        }
    }

    /// The mode a header word names.
    pub fn from_word(word: u32) -> Option<ShmMode> {
        match word {
            0 => Some(ShmMode::Polling),
            1 => Some(ShmMode::Blocking),
            _ => None,
        }
    }
}

/// What release hooks (which may run on any thread) need: the memory and the peer's doorbell.
pub(crate) struct Link {
    pub(crate) region: Region,
    pub(crate) side: Side,
    pub(crate) peer_bell: OwnedFd,
    pub(crate) blocking: bool,
}

impl Link {
    /// Tells the peer something changed (a message, a free slot, a freed payload run) if it
    /// is asleep on its doorbell.
    pub(crate) fn notify_peer(&self) {
        if !self.blocking {
            return;
        }
        Region::handshake_fence();
        let flag = self.region.sleeping(self.side.peer());
        if flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0 {
            ring(self.peer_bell.as_fd());
        }
    }

    /// Whether `ptr .. ptr + len` lies in this side's own (tx) payload region.
    fn in_tx_payload(&self, ptr: *const u8, len: usize) -> Option<u64> {
        let (base, size) = self.region.payload_range(self.side.tx());
        let offset = (ptr as usize).checked_sub(base as usize)?;
        (offset.checked_add(len)? <= size).then_some(offset as u64)
    }
}

/// The waiters and the doorbell task of one endpoint (blocking mode).
#[derive(Default)]
struct Bell {
    waiters: RefCell<Vec<Waker>>,
    task: RefCell<Option<Waker>>,
    armed: Cell<bool>,
}

impl Bell {
    fn wake_waiters(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// What a waiter waits for.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// A message in the rx ring (or the peer's close).
    Rx,
    /// Room to place a message of this many bytes.
    Tx(usize),
}

/// A waiter served by the idle handler.
struct Spinner {
    waker: Waker,
    want: Want,
    on_close: bool,
    /// When it stops spinning and sleeps on the doorbell (blocking mode).
    deadline: u64,
}

fn now_ns() -> u64 {
    EventManager::current().runtime().platform().now_ns()
}

/// The state an endpoint shares with its tasks.
struct Endpoint {
    /// A weak handle to itself, for the idle handler.
    me: Weak<Endpoint>,
    spinners: RefCell<Vec<Spinner>>,
    /// The waker of the latest [`Transport::poll_recv`] that found nothing (polling mode):
    /// served by the idle handler like a receiving spinner, but one at most.
    rx_waker: RefCell<Option<Waker>>,
    idle: Cell<Option<IdleHandlerId>>,
    link: Arc<Link>,
    mode: ShmMode,
    bell_fd: OwnedFd,
    socket: UnixStream,
    bell: Bell,
    queue: RefCell<VecDeque<IoBufChain>>,
    writer: RefCell<Option<Waker>>,
    msize: Cell<u32>,
    /// Next chunk to try when allocating payload.
    cursor: Cell<usize>,
    closed: Cell<bool>,
    failed: Cell<Option<TransportError>>,
    /// The socket ended: the peer is gone.
    peer_gone: Cell<bool>,
    /// The writer task has finished (closed and drained, or failed).
    writer_done: Cell<bool>,
    /// The writer task holds a message it took from the queue and waits for room to place it:
    /// a later message must queue behind it.
    in_hand: Cell<bool>,
}

/// Why a message could not be placed in the ring yet.
enum Placed {
    Sent,
    NoRoom(IoBufChain),
}

impl Endpoint {
    fn region(&self) -> &Region {
        &self.link.region
    }

    fn side(&self) -> Side {
        self.link.side
    }

    fn peer_closed(&self) -> bool {
        self.peer_gone.get()
            || self.region().closed(self.side().peer()).load(Ordering::Acquire) != 0
    }

    /// Whether waiting must end: the channel failed, the peer is gone, or (for a receiver)
    /// this side closed.
    fn ends(&self, on_close: bool) -> bool {
        on_close && self.closed.get() || self.failed.get().is_some() || self.peer_gone.get()
    }

    /// Whether what `want` waits for is there.
    fn ready_for(&self, want: Want) -> bool {
        let region = self.region();
        match want {
            Want::Rx => region.queued(self.side().rx()) != 0 || self.peer_closed(),
            Want::Tx(need) => {
                let dir = self.side().tx();
                region.free_slot(dir).is_some()
                    && (need <= region.geometry().inline_max()
                        || region.alloc_probe(dir, need, self.cursor.get()))
            }
        }
    }

    /// Whether a receiver's wait is over: a message is in the rx ring, or receiving ends.
    fn rx_over(&self) -> bool {
        self.ends(true) || self.ready_for(Want::Rx)
    }

    /// What [`Transport::recv`] returns if it can return without waiting: a message, the end of
    /// the channel, or its failure.
    fn take_now(&self) -> Option<Result<Option<SharedIoBuf>, TransportError>> {
        if self.closed.get() {
            return Some(Err(TransportError::Closed));
        }
        if let Some(e) = self.failed.get() {
            return Some(Err(e));
        }
        match self.try_take() {
            Ok(Some(message)) => return Some(Ok(Some(message))),
            Ok(None) => {}
            Err(e) => {
                let e = self.fail(e);
                self.wake_all();
                return Some(Err(e));
            }
        }
        if self.peer_closed() {
            // A message published just before the peer closed is still delivered.
            if let Ok(Some(message)) = self.try_take() {
                return Some(Ok(Some(message)));
            }
            return Some(Ok(None));
        }
        None
    }

    /// Waits until `want` is satisfied (or waiting ends, see [`Endpoint::ends`]): the core's
    /// idle handler looks at the rings every turn of the event loop, and in blocking mode a
    /// waiter still unsatisfied after [`SPIN_NS`] goes to sleep on the doorbell.
    async fn wait_for(&self, on_close: bool, want: Want) {
        let mode = self.mode;
        let deadline = match mode {
            ShmMode::Polling => u64::MAX,
            ShmMode::Blocking => now_ns().saturating_add(SPIN_NS),
        };
        poll_fn(|cx| {
            if self.ends(on_close) || self.ready_for(want) {
                return Poll::Ready(());
            }
            let waker = cx.waker().clone();
            self.spinners.borrow_mut().push(Spinner { waker, want, on_close, deadline });
            self.ensure_idle_handler();
            Poll::Pending
        })
        .await
    }

    /// Installs the idle handler that serves the spinners, if it is not installed.
    fn ensure_idle_handler(&self) {
        if self.idle.get().is_some() {
            return;
        }
        let weak = self.me.clone();
        let id = add_idle_handler(move || {
            if let Some(ep) = weak.upgrade() {
                ep.serve_spinners();
            }
        });
        self.idle.set(Some(id));
    }

    /// The idle handler's work: wakes the spinners whose wait is over, puts those past their
    /// spin deadline to sleep on the doorbell, and uninstalls itself when none is left (so a
    /// blocking-mode core can block; in polling mode only once the channel is over).
    fn serve_spinners(&self) {
        // A polling turn on which nothing arrived is the common case on a dedicated core: it
        // costs a few shared-memory loads, no clock read and no allocation (polling spinners
        // have no deadline, so there is nothing else to do).
        if self.mode == ShmMode::Polling
            && !self
                .spinners
                .borrow()
                .iter()
                .any(|s| self.ends(s.on_close) || self.ready_for(s.want))
        {
            let rx_ready = self.rx_waker.borrow().is_some() && self.rx_over();
            if !rx_ready && !self.ends(true) {
                return;
            }
        }
        if self.rx_waker.borrow().is_some() && self.rx_over() {
            if let Some(w) = self.rx_waker.take() {
                w.wake();
            }
        }
        // Polling spinners never sleep (their deadline is `u64::MAX`): no clock for them.
        let now = match self.mode {
            ShmMode::Polling => 0,
            ShmMode::Blocking => now_ns(),
        };
        let spinners = std::mem::take(&mut *self.spinners.borrow_mut());
        let mut still = Vec::with_capacity(spinners.len());
        for s in spinners {
            if self.ends(s.on_close) || self.ready_for(s.want) {
                s.waker.wake();
            } else if now >= s.deadline {
                self.sleep(s);
            } else {
                still.push(s);
            }
        }
        let mut spinners = self.spinners.borrow_mut();
        spinners.extend(still);
        // In polling mode the handler stays while the channel is open: a waiter comes back
        // after nearly every message, and installing the handler again each time costs more
        // than looking at an empty list.
        let keep = self.mode == ShmMode::Polling && !self.ends(true);
        if spinners.is_empty() && self.rx_waker.borrow().is_none() && !keep {
            if let Some(id) = self.idle.take() {
                remove_idle_handler(id);
            }
        }
    }

    /// Puts a spinner to sleep: sets this side's sleeping flag, looks once more (the peer
    /// reads the flag after publishing), and leaves the waker to the doorbell task.
    fn sleep(&self, s: Spinner) {
        let flag = self.region().sleeping(self.side());
        flag.store(1, Ordering::Relaxed);
        Region::handshake_fence();
        if self.ends(s.on_close) || self.ready_for(s.want) {
            flag.store(0, Ordering::Relaxed);
            s.waker.wake();
            return;
        }
        self.bell.waiters.borrow_mut().push(s.waker);
        self.bell.armed.set(true);
        if let Some(w) = self.bell.task.borrow_mut().take() {
            w.wake();
        }
    }

    /// Places one message in the tx ring: by reference if it already lies in the tx payload
    /// region, inline if it fits a slot, else copied into a fresh payload run.
    fn try_place(&self, mut chain: IoBufChain) -> Result<Placed, TransportError> {
        let region = self.region();
        let dir = self.side().tx();
        let len = chain.len();
        let Some((index, inline)) = region.free_slot(dir) else {
            return Ok(Placed::NoRoom(chain));
        };
        let geometry = region.geometry();
        if len < HEADER_LEN || len > geometry.payload_bytes() {
            return Err(TransportError::BadSize(len as u32));
        }
        // Prepend a small header into the headroom of a payload-region buffer behind it.
        if chain.segment_count() == 2 {
            let back = chain.pop_back().expect("two segments");
            let front_len = chain.len();
            let in_region = self.link.in_tx_payload(back.as_ptr(), back.len()).is_some();
            match back.try_into_unique() {
                Ok(mut unique) if in_region && unique.headroom() >= front_len => {
                    unique.retreat(front_len).expect("checked headroom");
                    chain.copy_to_slice(&mut unique.as_mut_slice()[..front_len]).expect("len");
                    chain = IoBufChain::from(unique.freeze());
                }
                Ok(unique) => chain.push_back(unique.freeze()),
                Err(shared) => chain.push_back(shared),
            }
        }
        // By reference: one segment in our payload region.
        if chain.segment_count() == 1 {
            let seg = chain.front().expect("one segment");
            let by_reference = self
                .link
                .in_tx_payload(seg.as_ptr(), seg.len())
                .and_then(|offset| Some((offset, region.run_covering(dir, offset, len as u32)?)));
            if let Some((offset, head)) = by_reference {
                region.retain_run(dir, head);
                region.publish(dir, index, len as u32, Some(offset));
                drop(chain);
                self.link.notify_peer();
                return Ok(Placed::Sent);
            }
        }
        if len <= geometry.inline_max() {
            // SAFETY: the slot's inline space (`inline_max` bytes at `inline`) belongs to this
            // sender until it is published below; the no-op hook lends it to one buffer that
            // is dropped before then.
            let mut dst = unsafe {
                IoBuf::from_external(
                    NonNull::new(inline).expect("mapped"),
                    geometry.inline_max(),
                    0..0,
                    |_, _| {},
                )
            };
            for slice in chain.slices() {
                dst.try_extend_from_slice(slice).expect("fits the slot");
            }
            drop(dst);
            region.publish(dir, index, len as u32, None);
            self.link.notify_peer();
            return Ok(Placed::Sent);
        }
        let Some(mut area) = self.alloc(0, len) else { return Ok(Placed::NoRoom(chain)) };
        for slice in chain.slices() {
            area.try_extend_from_slice(slice).expect("sized for the message");
        }
        let area = area.freeze();
        let offset = self.link.in_tx_payload(area.as_ptr(), len).expect("allocated there");
        let head = region.run_covering(dir, offset, len as u32).expect("just allocated");
        region.retain_run(dir, head);
        region.publish(dir, index, len as u32, Some(offset));
        drop(area);
        self.link.notify_peer();
        Ok(Placed::Sent)
    }

    /// A buffer over a fresh run of the tx payload region with `headroom` bytes of headroom
    /// and room for `len` bytes, or `None` if no run that large is free now.
    fn alloc(&self, headroom: usize, len: usize) -> Option<IoBuf> {
        let region = self.region();
        let dir = self.side().tx();
        let chunk = region.chunk_size();
        let total = headroom.checked_add(len)?;
        let n = total.div_ceil(chunk).max(1);
        let head = region.alloc_run(dir, n, self.cursor.get())?;
        self.cursor.set(head + n);
        let (base, _) = region.payload_range(dir);
        // SAFETY: `head * chunk` is inside the payload region (alloc_run returned a run of `n`
        // chunks within it).
        let start = unsafe { base.add(head * chunk) };
        let link = self.link.clone();
        // SAFETY: the run was free, so nobody reads or writes it; it is ours until the last
        // buffer over it drops and the hook releases our reference, and the peer reads it only
        // after we publish a descriptor of it, when our buffers over it are frozen. The memory
        // is initialised (a memory file reads as zeros) and mapped while `link` lives, which
        // the hook keeps.
        let mut buf = unsafe {
            IoBuf::from_external(
                NonNull::new(start).expect("mapped"),
                n * chunk,
                headroom..headroom,
                move |_, _| {
                    link.region.release_run(link.side.tx(), head);
                },
            )
        };
        buf.truncate(0);
        Some(buf)
    }

    /// Takes the next message from the rx ring, if one is there.
    fn try_take(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        let region = self.region();
        let dir = self.side().rx();
        let Some((index, view)) = region.next_slot(dir) else { return Ok(None) };
        let geometry = region.geometry();
        let msize = self.msize.get();
        let message = match view {
            SlotView::Inline { len, data } => {
                if (len as usize) < HEADER_LEN
                    || len > msize
                    || len as usize > geometry.inline_max()
                {
                    return Err(TransportError::BadSize(len));
                }
                // SAFETY: `data .. data + len` lies in the slot (len <= inline_max), which the
                // peer published and will not touch until we consume it below.
                let bytes = unsafe { std::slice::from_raw_parts(data, len as usize) };
                SharedIoBuf::copy_from_slice(bytes)
            }
            SlotView::Payload { len, offset } => {
                if (len as usize) < HEADER_LEN || len > msize {
                    return Err(TransportError::BadSize(len));
                }
                let head = region
                    .run_covering(dir, offset, len)
                    .ok_or(TransportError::Io(libc::EPROTO))?;
                let (base, _) = region.payload_range(dir);
                // SAFETY: run_covering checked that `offset + len` lies in the payload region.
                let start = unsafe { base.add(offset as usize) };
                let link = self.link.clone();
                // SAFETY: the peer published this run and holds it for us until we release our
                // reference in the hook; it does not write a run it has lent. The mapping lives
                // while `link` lives, which the hook keeps.
                unsafe {
                    SharedIoBuf::from_external(
                        NonNull::new(start).expect("mapped"),
                        len as usize,
                        0..len as usize,
                        move |_, _| {
                            if link.region.release_run(link.side.rx(), head) {
                                link.notify_peer();
                            }
                        },
                    )
                }
            }
            SlotView::Bad => return Err(TransportError::Io(libc::EPROTO)),
        };
        region.consume(dir, index);
        self.link.notify_peer();
        if frame_len(&message) != Some(message.len()) {
            return Err(TransportError::BadSize(frame_len(&message).unwrap_or(0) as u32));
        }
        Ok(Some(message))
    }

    fn fail(&self, e: TransportError) -> TransportError {
        if self.failed.get().is_none() {
            self.failed.set(Some(e));
        }
        e
    }

    fn wake_all(&self) {
        self.bell.wake_waiters();
        if let Some(w) = self.rx_waker.take() {
            w.wake();
        }
        for s in self.spinners.borrow_mut().drain(..) {
            s.waker.wake();
        }
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
        if let Some(w) = self.bell.task.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The writer task: places queued messages in order, waiting for ring or payload room. (A
/// message sent while nothing is queued goes into the ring directly, in `send`, if it fits.)
async fn write_queue(ep: Rc<Endpoint>) {
    drain_queue(&ep).await;
    ep.writer_done.set(true);
    if ep.failed.get().is_none() {
        // Closed and drained: tell the peer.
        ep.region().closed(ep.side()).store(1, Ordering::Release);
        ep.link.notify_peer();
    }
    // End the socket (the peer sees end-of-stream) and stop our own doorbell task.
    // SAFETY: shutdown has no memory arguments; the socket stays open until the endpoint drops.
    unsafe { libc::shutdown(ep.socket.as_fd().as_raw_fd(), libc::SHUT_RDWR) };
    ring(ep.bell_fd.as_fd());
    ep.wake_all();
}

/// Places queued messages until the transport is closed and drained, fails, or the peer goes.
async fn drain_queue(ep: &Endpoint) {
    loop {
        let next = poll_fn(|cx| {
            if let Some(chain) = ep.queue.borrow_mut().pop_front() {
                return Poll::Ready(Some(chain));
            }
            if ep.closed.get() || ep.failed.get().is_some() || ep.peer_gone.get() {
                return Poll::Ready(None);
            }
            *ep.writer.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let Some(mut chain) = next else { break };
        loop {
            match ep.try_place(chain) {
                Ok(Placed::Sent) => {
                    ep.in_hand.set(false);
                    break;
                }
                Ok(Placed::NoRoom(back)) => {
                    chain = back;
                    ep.in_hand.set(true);
                    ep.wait_for(false, Want::Tx(chain.len())).await;
                    if ep.peer_gone.get() || ep.failed.get().is_some() {
                        return;
                    }
                }
                Err(e) => {
                    ep.fail(e);
                    ep.queue.borrow_mut().clear();
                    ep.wake_all();
                    return;
                }
            }
        }
    }
}

/// The doorbell task (blocking mode): reads the eventfd whenever some waiter sleeps, and wakes
/// the waiters when it rings.
async fn ring_bell(ep: Rc<Endpoint>) {
    loop {
        let go = poll_fn(|cx| {
            if ep.writer_done.get() || ep.peer_gone.get() {
                return Poll::Ready(false);
            }
            if ep.bell.armed.get() {
                return Poll::Ready(true);
            }
            *ep.bell.task.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if !go {
            return;
        }
        let value = Box::new(0u64);
        let entry = opcode::Read::new(
            types::Fd(ep.bell_fd.as_raw_fd()),
            &*value as *const u64 as *mut u8,
            8,
        )
        .build();
        // SAFETY: the kernel writes 8 bytes into the boxed `value`, which the op keeps.
        let (_completion, _value) = unsafe { Op::start(entry, value) }.await;
        ep.bell.armed.set(false);
        ep.region().sleeping(ep.side()).store(0, Ordering::Relaxed);
        ep.bell.wake_waiters();
    }
}

/// Watches the setup socket: its end means the peer is gone.
async fn watch_peer(ep: Rc<Endpoint>) {
    // Nothing is sent on it after the handshake; whatever arrives is ignored.
    while let Ok(Some(_)) = ep.socket.recv().await {}
    ep.peer_gone.set(true);
    ep.wake_all();
}

/// One end of a shared-memory channel: a 9P [`Transport`] whose messages move through rings
/// in memory both processes map.
///
/// Made by [`connect`](super::connect) (client) or [`ShmListener::accept`](super::ShmListener::accept)
/// (server) on the core that will use it; dropping it closes it as [`Transport::close`] does.
pub struct ShmTransport {
    ep: Rc<Endpoint>,
}

impl ShmTransport {
    /// Builds an endpoint over a mapped channel and starts its tasks on the calling core.
    pub(crate) fn start(
        region: Region,
        side: Side,
        mode: ShmMode,
        bell_fd: OwnedFd,
        peer_bell: OwnedFd,
        socket: UnixStream,
        msize: u32,
    ) -> ShmTransport {
        let blocking = mode == ShmMode::Blocking;
        let ep = Rc::new_cyclic(|me| Endpoint {
            me: me.clone(),
            spinners: RefCell::new(Vec::new()),
            rx_waker: RefCell::new(None),
            idle: Cell::new(None),
            link: Arc::new(Link { region, side, peer_bell, blocking }),
            mode,
            bell_fd,
            socket,
            bell: Bell::default(),
            queue: RefCell::new(VecDeque::new()),
            writer: RefCell::new(None),
            msize: Cell::new(msize),
            cursor: Cell::new(0),
            closed: Cell::new(false),
            failed: Cell::new(None),
            peer_gone: Cell::new(false),
            writer_done: Cell::new(false),
            in_hand: Cell::new(false),
        });
        spawn_local(write_queue(ep.clone()));
        spawn_local(watch_peer(ep.clone()));
        if blocking {
            spawn_local(ring_bell(ep.clone()));
        }
        ShmTransport { ep }
    }

    /// The waiting mode of the channel.
    pub fn mode(&self) -> ShmMode {
        self.ep.mode
    }

    /// A buffer in this side's payload region, with `headroom` bytes of headroom and room for
    /// `len` bytes, or `None` if that much is not free now. A message whose payload is written
    /// into it (and whose header goes into the headroom, or chained in front) is sent by
    /// reference: the peer reads these bytes in place.
    pub fn alloc_payload(&self, headroom: usize, len: usize) -> Option<IoBuf> {
        self.ep.alloc(headroom, len)
    }

    /// Whether `buf` lies in the peer's payload region: a message received by reference.
    pub fn is_shared(&self, buf: &[u8]) -> bool {
        let (base, size) = self.ep.region().payload_range(self.ep.side().rx());
        let offset = (buf.as_ptr() as usize).wrapping_sub(base as usize);
        offset < size && offset + buf.len() <= size
    }

    /// Whether the transport is finished: closed (or failed, or its peer gone) with every
    /// queued message placed in the ring or dropped.
    pub fn is_finished(&self) -> bool {
        self.ep.writer_done.get()
    }

    /// Messages queued locally and not yet placed in the ring.
    pub fn queued(&self) -> usize {
        self.ep.queue.borrow().len()
    }

    /// Messages this side has published that the peer has not taken yet.
    pub fn in_ring(&self) -> u32 {
        self.ep.region().queued(self.ep.side().tx())
    }
}

impl Transport for ShmTransport {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        let ep = &self.ep;
        loop {
            if let Some(received) = ep.take_now() {
                return received;
            }
            ep.wait_for(true, Want::Rx).await;
        }
    }

    /// In polling mode, the idle handler watches the rx ring for the latest caller's waker, as
    /// it does for a waiting `recv`. Blocking mode has no `poll_recv` (its waiters go to sleep
    /// on the doorbell, which takes a `recv`).
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Result<Option<SharedIoBuf>, TransportError>>> {
        let ep = &self.ep;
        if ep.mode != ShmMode::Polling {
            return None;
        }
        if let Some(received) = ep.take_now() {
            return Some(Poll::Ready(received));
        }
        {
            let mut waker = ep.rx_waker.borrow_mut();
            match &*waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        ep.ensure_idle_handler();
        Some(Poll::Pending)
    }

    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        let ep = &self.ep;
        if let Some(e) = ep.failed.get() {
            return Err(e);
        }
        if ep.closed.get() {
            return Err(TransportError::Closed);
        }
        if ep.peer_gone.get() {
            return Err(TransportError::Io(libc::EPIPE));
        }
        // With nothing ahead of it, the message goes into the ring at once: no hop through the
        // writer task, whose turn would add to every message's latency.
        let message = if ep.queue.borrow().is_empty() && !ep.in_hand.get() {
            match ep.try_place(message) {
                Ok(Placed::Sent) => return Ok(()),
                Ok(Placed::NoRoom(back)) => back,
                Err(e) => {
                    // As when the writer task meets it: the channel fails.
                    ep.fail(e);
                    ep.queue.borrow_mut().clear();
                    ep.wake_all();
                    return Ok(());
                }
            }
        } else {
            message
        };
        ep.queue.borrow_mut().push_back(message);
        if let Some(w) = ep.writer.borrow_mut().take() {
            w.wake();
        }
        Ok(())
    }

    fn set_msize(&self, msize: u32) {
        self.ep.msize.set(msize);
    }

    fn close(&self) {
        let ep = &self.ep;
        if !ep.closed.replace(true) {
            ep.wake_all();
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let (Some(id), Some(_)) = (self.idle.take(), EventManager::try_current()) {
            remove_idle_handler(id);
        }
    }
}

impl Drop for ShmTransport {
    fn drop(&mut self) {
        self.close();
    }
}
