//! What the server tests run on: a one-core cairn runtime on the test thread, an in-memory
//! [`Transport`] (two queues and a waker) and a client that encodes requests and decodes
//! replies with the codec.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::task::{Poll, Waker};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_rt::event::{spawn_local, yield_now, EventManager, JoinHandle, Runtime};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};
use cairn_rt::percore::{CoreGuard, CoreId};
use cairn_rt::platform::Platform;

use super::ramfs::RamFs;
use crate::codec::{
    decode_rmessage, encode_tmessage, Dialect, Qid, Rmessage, Tmessage, NOFID, NONUNAME, NOTAG,
};
use crate::server::{serve_with_stats, ServerConfig, SessionStats};
use crate::transport::{Transport, TransportError};

/// A platform of one core with nothing but a clock; blocking is a short sleep.
struct TestPlatform;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Platform for TestPlatform {
    fn core_count(&self) -> usize {
        1
    }
    fn now_ns(&self) -> u64 {
        epoch().elapsed().as_nanos() as u64
    }
    fn poll_devices(&self) -> usize {
        0
    }
    fn block(&self, _deadline_ns: Option<u64>) {
        std::thread::sleep(Duration::from_micros(50));
    }
    fn wake(&self, _core: CoreId) {}
}

static PLATFORM: TestPlatform = TestPlatform;

std::thread_local! {
    static CORE: RefCell<Option<(CoreGuard, &'static EventManager)>> =
        const { RefCell::new(None) };
}

/// Runs `future` to completion on this thread's core (made on first use).
pub(crate) fn run<F: Future + 'static>(future: F) -> F::Output {
    let em = CORE.with(|core| {
        core.borrow_mut()
            .get_or_insert_with(|| {
                let guard = CoreGuard::enter(0);
                let em = Runtime::new(&PLATFORM).start_core();
                (guard, em)
            })
            .1
    });
    em.block_on(future)
}

/// A transport whose other end is a [`TestClient`] in the same thread.
#[derive(Default)]
pub(crate) struct MemTransport {
    inbox: RefCell<VecDeque<SharedIoBuf>>,
    waker: RefCell<Option<Waker>>,
    peer_closed: Cell<bool>,
    closed: Cell<bool>,
    outbox: RefCell<VecDeque<IoBufChain>>,
    msize: Cell<u32>,
}

impl MemTransport {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

impl Transport for MemTransport {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        core::future::poll_fn(|cx| {
            if let Some(m) = self.inbox.borrow_mut().pop_front() {
                return Poll::Ready(Ok(Some(m)));
            }
            if self.peer_closed.get() || self.closed.get() {
                return Poll::Ready(Ok(None));
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        self.outbox.borrow_mut().push_back(message);
        Ok(())
    }

    fn set_msize(&self, msize: u32) {
        self.msize.set(msize);
    }

    fn close(&self) {
        self.closed.set(true);
        self.wake();
    }
}

/// How many times a test yields to the server before it decides a reply is not coming.
const PATIENCE: usize = 2000;

/// The client end of a [`MemTransport`], plus the session it talks to.
pub(crate) struct TestClient {
    pub(crate) transport: Rc<MemTransport>,
    pub(crate) fs: Rc<RamFs>,
    pub(crate) stats: Rc<SessionStats>,
    pub(crate) dialect: Dialect,
    pub(crate) msize: u32,
    session: JoinHandle<()>,
}

/// One reply as the transport carried it.
pub(crate) struct Reply {
    pub(crate) chain: IoBufChain,
    pub(crate) bytes: Vec<u8>,
    dialect: Dialect,
    msize: u32,
}

impl Reply {
    /// The decoded reply: tag and message.
    pub(crate) fn msg(&self) -> (u16, Rmessage<'_>) {
        decode_rmessage(&self.bytes, self.dialect, self.msize.max(1 << 16))
            .unwrap_or_else(|e| panic!("reply does not decode: {e} ({:?})", self.bytes))
    }

    /// The tag.
    pub(crate) fn tag(&self) -> u16 {
        self.msg().0
    }

    /// The error of an error reply: the text (9P2000) or the errno's (9P2000.L), and the errno
    /// (9P2000.L) or 0.
    pub(crate) fn error(&self) -> Option<(alloc::string::String, u32)> {
        match self.msg().1 {
            Rmessage::Error { ename } => Some((ename.into(), 0)),
            Rmessage::Lerror { ecode } => Some((crate::errno::errno_string(ecode).into(), ecode)),
            _ => None,
        }
    }
}

impl TestClient {
    /// Starts a session serving a fresh [`RamFs`] with `max_msize`, not yet versioned.
    pub(crate) fn start_raw(dialect: Dialect, max_msize: u32) -> TestClient {
        let transport = Rc::new(MemTransport::default());
        let fs = Rc::new(RamFs::new());
        let stats = Rc::new(SessionStats::new());
        let session = spawn_local(serve_with_stats(
            fs.clone(),
            transport.clone(),
            ServerConfig { max_msize },
            stats.clone(),
        ));
        TestClient { transport, fs, stats, dialect, msize: max_msize, session }
    }

    /// Starts a session, negotiates `dialect` with msize 8192, and attaches fid 0 to the root.
    pub(crate) async fn start(dialect: Dialect) -> TestClient {
        let mut client = Self::start_raw(dialect, ServerConfig::default().max_msize);
        client.version(8192, dialect.version_str()).await;
        let reply = client.attach(1, 0).await;
        assert!(matches!(reply.msg().1, Rmessage::Attach { .. }), "attach: {:?}", reply.msg());
        client
    }

    /// Sends a Tversion and checks the Rversion; afterwards the client speaks what it got.
    pub(crate) async fn version(
        &mut self,
        msize: u32,
        version: &str,
    ) -> (u32, alloc::string::String) {
        let reply = self.call(NOTAG, &Tmessage::Version { msize, version }).await;
        let Rmessage::Version { msize, version } = reply.msg().1 else {
            panic!("not an Rversion: {:?}", reply.msg())
        };
        if let Some(d) = Dialect::from_version(version).filter(|_| version != "unknown") {
            self.dialect = d;
            self.msize = msize;
        }
        (msize, version.into())
    }

    /// Tattach of `fid` to the root, without authentication.
    pub(crate) async fn attach(&self, tag: u16, fid: u32) -> Reply {
        let n_uname = (self.dialect == Dialect::P2000L).then_some(NONUNAME);
        let msg = Tmessage::Attach { fid, afid: NOFID, uname: "test", aname: "", n_uname };
        self.call(tag, &msg).await
    }

    /// Encodes `msg` and queues it to the server; returns the buffer it travels in.
    pub(crate) fn send(&self, tag: u16, msg: &Tmessage<'_>) -> SharedIoBuf {
        let mut out = Vec::new();
        encode_tmessage(tag, msg, self.dialect, self.msize, &mut out)
            .unwrap_or_else(|e| panic!("request does not encode: {e}"));
        self.send_raw(out)
    }

    /// Queues raw bytes to the server as one message.
    pub(crate) fn send_raw(&self, bytes: Vec<u8>) -> SharedIoBuf {
        let buf = SharedIoBuf::from_vec(bytes);
        self.transport.inbox.borrow_mut().push_back(buf.clone());
        self.transport.wake();
        buf
    }

    /// Closes the client's end: the server sees the end of the connection.
    pub(crate) fn hang_up(&self) {
        self.transport.peer_closed.set(true);
        self.transport.wake();
    }

    /// The msize the session gave the transport.
    pub(crate) fn transport_msize(&self) -> u32 {
        self.transport.msize.get()
    }

    /// Whether the server closed the transport.
    pub(crate) fn closed(&self) -> bool {
        self.transport.closed.get()
    }

    /// Whether the session has returned.
    pub(crate) fn finished(&self) -> bool {
        self.session.is_finished()
    }

    /// Lets the server run a while.
    pub(crate) async fn settle(&self) {
        for _ in 0..50 {
            yield_now().await;
        }
    }

    /// Replies waiting now, without waiting for more.
    pub(crate) fn take_replies(&self) -> Vec<Reply> {
        let chains: Vec<IoBufChain> = self.transport.outbox.borrow_mut().drain(..).collect();
        chains.into_iter().map(|c| self.reply_of(c)).collect()
    }

    fn reply_of(&self, chain: IoBufChain) -> Reply {
        let bytes = chain.to_vec();
        Reply { chain, bytes, dialect: self.dialect, msize: self.msize }
    }

    /// The next reply, waiting for it (a bounded number of yields).
    pub(crate) async fn next_reply(&self) -> Reply {
        for _ in 0..PATIENCE {
            if let Some(chain) = self.transport.outbox.borrow_mut().pop_front() {
                return self.reply_of(chain);
            }
            yield_now().await;
        }
        panic!("no reply from the server");
    }

    /// Sends `msg` with `tag` and returns the reply, which must carry the same tag.
    pub(crate) async fn call(&self, tag: u16, msg: &Tmessage<'_>) -> Reply {
        self.send(tag, msg);
        let reply = self.next_reply().await;
        assert_eq!(reply.tag(), tag, "reply {:?} to tag {tag}", reply.msg());
        reply
    }

    /// `call` of raw bytes; the reply's tag is not checked.
    pub(crate) async fn call_raw(&self, bytes: Vec<u8>) -> Reply {
        self.send_raw(bytes);
        self.next_reply().await
    }

    /// Walks `newfid` from `fid` along `names`; the qids of a successful full walk.
    pub(crate) async fn walk(&self, fid: u32, newfid: u32, names: &[&str]) -> Vec<Qid> {
        let names = crate::codec::WalkList::from_slice(names).expect("at most 16 names");
        let reply = self.call(1, &Tmessage::Walk { fid, newfid, names }).await;
        match reply.msg().1 {
            Rmessage::Walk { qids } => qids.to_vec(),
            other => panic!("walk: {other:?}"),
        }
    }

    /// Opens `fid` for `how` (a 9P2000 mode byte or 9P2000.L flags, by dialect).
    pub(crate) async fn open(&self, fid: u32, how: u32) -> Reply {
        let msg = match self.dialect {
            Dialect::P2000 => Tmessage::Open { fid, mode: how as u8 },
            Dialect::P2000L => Tmessage::Lopen { fid, flags: how },
        };
        self.call(1, &msg).await
    }

    /// Reads through `fid`; the payload.
    pub(crate) async fn read(&self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        let reply = self.call(1, &Tmessage::Read { fid, offset, count }).await;
        match reply.msg().1 {
            Rmessage::Read { data } => data.to_vec(),
            other => panic!("read: {other:?}"),
        }
    }

    /// Writes through `fid`; the count written.
    pub(crate) async fn write(&self, fid: u32, offset: u64, data: &[u8]) -> u32 {
        let reply = self.call(1, &Tmessage::Write { fid, offset, data }).await;
        match reply.msg().1 {
            Rmessage::Write { count } => count,
            other => panic!("write: {other:?}"),
        }
    }

    /// Clunks `fid`, which must succeed.
    pub(crate) async fn clunk(&self, fid: u32) {
        let reply = self.call(1, &Tmessage::Clunk { fid }).await;
        assert_eq!(reply.msg().1, Rmessage::Clunk);
    }
}
