//! The client against a scripted server over an in-memory transport, on a hosted core.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::task::{Poll, Waker};
use std::sync::mpsc;
use std::time::Duration;

use cairn_rt::event::{spawn_local, yield_now, EventManager};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::*;
use crate::codec::{
    decode_tmessage, encode_rmessage, mtype, Dialect, Qid, Rmessage, Tmessage, WalkList,
};
use crate::errno::{EACCES, ENOENT};
use crate::transport::TransportError;

/// One direction of an in-memory connection.
#[derive(Default)]
struct Pipe {
    queue: RefCell<VecDeque<SharedIoBuf>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Pipe {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// An in-memory transport: what one end sends, the other receives, whole.
struct MemTransport {
    rx: Rc<Pipe>,
    tx: Rc<Pipe>,
    closed: Cell<bool>,
    /// Whether it answers [`Transport::poll_recv`] (so the client's requests receive
    /// themselves).
    pollable: bool,
}

std::thread_local! {
    /// Whether the client ends that [`mem_pair`] makes on this thread are pollable: [`on_core`]
    /// runs each test both ways.
    static POLLED: Cell<bool> = const { Cell::new(false) };
}

/// A connection: the client's end (pollable as [`POLLED`] says), the server's end.
fn mem_pair() -> (Rc<MemTransport>, Rc<MemTransport>) {
    let (a, b) = (Rc::new(Pipe::default()), Rc::new(Pipe::default()));
    let pollable = POLLED.with(Cell::get);
    (
        Rc::new(MemTransport { rx: a.clone(), tx: b.clone(), closed: Cell::new(false), pollable }),
        Rc::new(MemTransport { rx: b, tx: a, closed: Cell::new(false), pollable: false }),
    )
}

impl MemTransport {
    fn poll_next(
        &self,
        cx: &mut core::task::Context<'_>,
    ) -> Poll<Result<Option<SharedIoBuf>, TransportError>> {
        if self.closed.get() {
            return Poll::Ready(Err(TransportError::Closed));
        }
        if let Some(m) = self.rx.queue.borrow_mut().pop_front() {
            return Poll::Ready(Ok(Some(m)));
        }
        if self.rx.closed.get() {
            return Poll::Ready(Ok(None));
        }
        *self.rx.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Transport for MemTransport {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_recv(
        &self,
        cx: &mut core::task::Context<'_>,
    ) -> Option<Poll<Result<Option<SharedIoBuf>, TransportError>>> {
        self.pollable.then(|| self.poll_next(cx))
    }

    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        if self.closed.get() {
            return Err(TransportError::Closed);
        }
        self.tx.queue.borrow_mut().push_back(message.into_contiguous());
        self.tx.wake();
        Ok(())
    }

    fn set_msize(&self, _msize: u32) {}

    fn close(&self) {
        self.closed.set(true);
        self.tx.closed.set(true);
        self.tx.wake();
        self.rx.wake();
    }
}

/// Runs `make()`'s future on fresh one-core hosted runtimes, once with client transports that
/// only `recv` and once with pollable ones (see [`mem_pair`]), checks that both give the same
/// output, and returns it.
fn on_core<F, Fut, R>(make: F) -> R
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + PartialEq + core::fmt::Debug + 'static,
{
    let received = on_core_once(make.clone(), false);
    let polled = on_core_once(make, true);
    assert_eq!(received, polled, "the receiver task and pollable requests disagree");
    polled
}

/// Runs `make()`'s future on a fresh one-core hosted runtime, with [`POLLED`] set to `polled`
/// there, and returns its output.
fn on_core_once<F, Fut, R>(make: F, polled: bool) -> R
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let make = std::sync::Mutex::new(Some(make));
    let rt = cairn_hosted::start(1, move |_| {
        let make = make.lock().unwrap().take().unwrap();
        POLLED.with(|p| p.set(polled));
        let tx = tx.clone();
        spawn_local(async move {
            let _ = tx.send(make().await);
            EventManager::current().runtime().shutdown();
        });
    })
    .unwrap();
    let out = rx.recv_timeout(Duration::from_secs(30)).expect("the test's task finished");
    rt.join().unwrap();
    out
}

/// What the scripted server saw, as `(tag, type)` pairs, plus free-form notes.
type Log = Rc<RefCell<Vec<(u16, u8)>>>;

/// Serves `transport` with `handler`, which appends encoded replies (maybe none, to hold a
/// request) for each request. `Tversion` is answered with `version` and msize 8192.
fn serve<H>(transport: Rc<MemTransport>, version: &'static str, mut handler: H) -> Log
where
    H: FnMut(u16, &Tmessage<'_>, &mut Vec<Vec<u8>>) + 'static,
{
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let seen = log.clone();
    spawn_local(async move {
        let dialect = if version == "9P2000" { Dialect::P2000 } else { Dialect::P2000L };
        while let Ok(Some(buf)) = transport.recv().await {
            let (tag, msg) = decode_tmessage(&buf, dialect, 8192).expect("the client's message");
            seen.borrow_mut().push((tag, msg.msg_type()));
            let mut replies = Vec::new();
            if let Tmessage::Version { .. } = msg {
                let mut out = Vec::new();
                encode_rmessage(
                    tag,
                    &Rmessage::Version { msize: 8192, version },
                    dialect,
                    8192,
                    &mut out,
                )
                .unwrap();
                replies.push(out);
            } else {
                handler(tag, &msg, &mut replies);
            }
            for r in replies {
                let _ = transport.send(IoBufChain::from(SharedIoBuf::from_vec(r)));
            }
        }
    });
    log
}

fn reply(tag: u16, msg: &Rmessage<'_>, dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    encode_rmessage(tag, msg, dialect, 8192, &mut out).unwrap();
    out
}

fn config(dialect: Dialect) -> ClientConfig {
    ClientConfig { msize: 8192, dialect, ..ClientConfig::default() }
}

const ROOT: Qid = Qid { ty: 0x80, version: 0, path: 1 };

/// Answers attach, walk (one qid per name), clunk and remove with success in 9P2000.L.
fn basic(tag: u16, msg: &Tmessage<'_>, out: &mut Vec<Vec<u8>>) {
    let l = Dialect::P2000L;
    match *msg {
        Tmessage::Attach { .. } => out.push(reply(tag, &Rmessage::Attach { qid: ROOT }, l)),
        Tmessage::Walk { ref names, .. } => {
            let mut qids = WalkList::new();
            for i in 0..names.len() {
                let _ = qids.push(Qid { ty: 0, version: 0, path: 10 + i as u64 });
            }
            out.push(reply(tag, &Rmessage::Walk { qids }, l));
        }
        Tmessage::Clunk { .. } => out.push(reply(tag, &Rmessage::Clunk, l)),
        Tmessage::Remove { .. } => out.push(reply(tag, &Rmessage::Remove, l)),
        _ => out.push(reply(tag, &Rmessage::Lerror { ecode: EACCES }, l)),
    }
}

#[test]
fn version_settles_dialect_and_msize() {
    let (dialect, msize, refused) = on_core(|| async {
        let (c, s) = mem_pair();
        serve(s, "9P2000", basic);
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let (c2, s2) = mem_pair();
        serve(s2, "unknown", basic);
        let refused = Client::connect(c2, config(Dialect::P2000L)).await.err();
        (client.dialect(), client.msize(), refused)
    });
    assert_eq!(dialect, Dialect::P2000, "a 9P2000 answer to a .L offer is spoken to in 9P2000");
    assert_eq!(msize, 8192);
    assert_eq!(refused, Some(EPROTONOSUPPORT));
}

#[test]
fn long_walks_are_split_into_walks_of_sixteen() {
    let walks = on_core(|| async {
        let (c, s) = mem_pair();
        let log = serve(s, "9P2000.L", basic);
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let root = client.attach("").await.unwrap();
        let names: Vec<String> = (0..40).map(|i| alloc::format!("d{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let fid = client.walk(&root, &names).await.unwrap();
        assert_ne!(fid.id(), root.id());
        client.clunk(fid).await.unwrap();
        let walks = log.borrow().iter().filter(|(_, t)| *t == mtype::TWALK).count();
        walks
    });
    assert_eq!(walks, 3, "40 names take walks of 16, 16 and 8");
}

#[test]
fn replies_out_of_order_reach_their_own_requests() {
    let results = on_core(|| async {
        let (c, s) = mem_pair();
        let held: Rc<RefCell<Vec<(u16, u64)>>> = Rc::new(RefCell::new(Vec::new()));
        let h = held.clone();
        serve(s, "9P2000.L", move |tag, msg, out| match *msg {
            Tmessage::Read { offset, .. } => {
                h.borrow_mut().push((tag, offset));
                if h.borrow().len() == 4 {
                    // Answer all four, last first, each with its offset as the data.
                    for (tag, offset) in h.borrow().iter().rev() {
                        let data = offset.to_le_bytes();
                        out.push(reply(*tag, &Rmessage::Read { data: &data }, Dialect::P2000L));
                    }
                }
            }
            _ => basic(tag, msg, out),
        });
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let pending: Vec<_> = (0..4u64)
            .map(|i| client.start(&Tmessage::Read { fid: 1, offset: i * 100, count: 8 }).unwrap())
            .collect();
        assert_eq!(client.in_flight(), 4);
        let mut results = Vec::new();
        for p in pending {
            let reply = p.await.unwrap();
            let data = reply.payload().unwrap();
            results.push(u64::from_le_bytes(data[..8].try_into().unwrap()));
        }
        assert_eq!(client.in_flight(), 0);
        results
    });
    assert_eq!(results, vec![0, 100, 200, 300]);
}

#[test]
fn flush_waits_for_rflush_and_discards_the_late_reply() {
    let (flushed, in_flight, log) = on_core(|| async {
        let (c, s) = mem_pair();
        let blocked: Rc<Cell<Option<u16>>> = Rc::new(Cell::new(None));
        let b = blocked.clone();
        let log = serve(s, "9P2000.L", move |tag, msg, out| match *msg {
            // A read that blocks until flushed.
            Tmessage::Read { .. } => b.set(Some(tag)),
            Tmessage::Flush { oldtag } => {
                assert_eq!(Some(oldtag), b.get());
                // flush(5): the original reply may come first; Rflush comes after it.
                out.push(reply(oldtag, &Rmessage::Read { data: b"late" }, Dialect::P2000L));
                out.push(reply(tag, &Rmessage::Flush, Dialect::P2000L));
            }
            _ => basic(tag, msg, out),
        });
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let read = client.start(&Tmessage::Read { fid: 1, offset: 0, count: 10 }).unwrap();
        for _ in 0..3 {
            yield_now().await;
        }
        let flushed = read.flush().await;
        let in_flight = client.in_flight();
        let log: Vec<u8> = log.borrow().iter().map(|(_, t)| *t).collect();
        (flushed, in_flight, log)
    });
    assert_eq!(flushed, Ok(()));
    assert_eq!(in_flight, 0, "both tags are free after Rflush");
    assert_eq!(log, vec![mtype::TVERSION, mtype::TREAD, mtype::TFLUSH]);
}

#[test]
fn dropping_a_request_flushes_it_in_the_background() {
    let (log, in_flight) = on_core(|| async {
        let (c, s) = mem_pair();
        let log = serve(s, "9P2000.L", move |tag, msg, out| match *msg {
            Tmessage::Read { .. } => {}
            Tmessage::Flush { .. } => out.push(reply(tag, &Rmessage::Flush, Dialect::P2000L)),
            _ => basic(tag, msg, out),
        });
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let read = client.start(&Tmessage::Read { fid: 1, offset: 0, count: 10 }).unwrap();
        yield_now().await;
        drop(read);
        for _ in 0..10 {
            yield_now().await;
        }
        let types: Vec<u8> = log.borrow().iter().map(|(_, t)| *t).collect();
        (types, client.in_flight())
    });
    assert_eq!(log, vec![mtype::TVERSION, mtype::TREAD, mtype::TFLUSH]);
    assert_eq!(in_flight, 0);
}

#[test]
fn errors_become_errnos_in_both_dialects() {
    let (plain, linux) = on_core(|| async {
        let (c, s) = mem_pair();
        serve(s, "9P2000", |tag, msg, out| match *msg {
            Tmessage::Attach { .. } => out.push(reply(
                tag,
                &Rmessage::Error { ename: "file does not exist" },
                Dialect::P2000,
            )),
            _ => basic(tag, msg, out),
        });
        let client = Client::connect(c, config(Dialect::P2000)).await.unwrap();
        let plain = client.attach("x").await.err();
        let (c, s) = mem_pair();
        serve(s, "9P2000.L", basic);
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let root = client.attach("").await.unwrap();
        let linux = client.open(&root, 0).await.err();
        (plain, linux)
    });
    assert_eq!(plain, Some(ENOENT));
    assert_eq!(linux, Some(EACCES));
}

#[test]
fn write_all_splits_by_msize_and_dropped_fids_are_clunked() {
    let (writes, bytes, clunks) = on_core(|| async {
        let (c, s) = mem_pair();
        let written = Rc::new(Cell::new(0usize));
        let w = written.clone();
        let log = serve(s, "9P2000.L", move |tag, msg, out| match *msg {
            Tmessage::Write { data, .. } => {
                w.set(w.get() + data.len());
                out.push(reply(
                    tag,
                    &Rmessage::Write { count: data.len() as u32 },
                    Dialect::P2000L,
                ));
            }
            _ => basic(tag, msg, out),
        });
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let root = client.attach("").await.unwrap();
        let file = client.walk(&root, &["f"]).await.unwrap();
        let data = vec![0x5a; 100_000];
        client.write_all(&file, 0, &data).await.unwrap();
        drop(file);
        for _ in 0..10 {
            yield_now().await;
        }
        let log = log.borrow();
        let writes = log.iter().filter(|(_, t)| *t == mtype::TWRITE).count();
        let clunks = log.iter().filter(|(_, t)| *t == mtype::TCLUNK).count();
        (writes, written.get(), clunks)
    });
    // 8192 - 24 = 8168 payload bytes per message: 100000 bytes take 13 writes.
    assert_eq!(writes, 13);
    assert_eq!(bytes, 100_000);
    assert_eq!(clunks, 1, "the dropped fid was clunked in the background");
}

#[test]
fn a_closed_connection_fails_waiting_requests() {
    let result = on_core(|| async {
        let (c, s) = mem_pair();
        let server = s.clone();
        serve(s, "9P2000.L", move |_, msg, _| {
            if let Tmessage::Read { .. } = msg {
                server.close();
            }
        });
        let client = Client::connect(c, config(Dialect::P2000L)).await.unwrap();
        let read = client.start(&Tmessage::Read { fid: 1, offset: 0, count: 1 }).unwrap();
        let first = read.await.err();
        let later = client.start(&Tmessage::Clunk { fid: 1 }).err();
        (first, later)
    });
    assert_eq!(result, (Some(crate::errno::ECONNRESET), Some(crate::errno::ECONNRESET)));
}
